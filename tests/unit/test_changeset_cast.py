"""cast and the changeset accessors (no database)."""

from __future__ import annotations

import pytest

from asyncecto import field, schema
from asyncecto.changeset import (
    Changeset,
    add_error,
    apply_action,
    apply_changes,
    cast,
    change,
    changed,
    delete_change,
    fetch_change,
    fetch_field,
    field_missing,
    force_change,
    get_change,
    get_field,
    put_change,
    traverse_errors,
    update_change,
)
from asyncecto.errors import ArgumentError, CastError, InvalidChangesetError


@schema("users")
class User:
    id: int | None = None
    name: str | None = None
    age: int | None = None
    score: float | None = 1.5
    tags: list[str] | None = None
    secret: str | None = field(redact=True, default=None)


def test_cast_casts_permitted_params_and_ignores_the_rest() -> None:
    cs = cast(User(), {"name": "Ada", "age": "36", "admin": True}, ["name", "age"])
    assert cs.changes == {"name": "Ada", "age": 36}
    assert cs.valid and cs.errors == ()
    assert cs.params == {"name": "Ada", "age": "36", "admin": True}


def test_cast_records_only_values_that_differ() -> None:
    cs = cast(User(name="Ada", age=36), {"name": "Ada", "age": "37"}, ["name", "age"])
    assert cs.changes == {"age": 37}
    assert cast(User(name="Ada"), {"name": "Ada"}, ["name"], force_changes=True).changes == {"name": "Ada"}


def test_cast_failure_is_an_error_not_an_exception() -> None:
    cs = cast(User(), {"age": "old", "name": "x"}, ["age", "name"])
    assert not cs.valid
    assert cs.errors == (("age", ("is invalid", {"type": "integer", "validation": "cast"})),)
    assert cs.changes == {"name": "x"}
    custom = cast(User(), {"age": "old"}, ["age"], message=lambda f, meta: f"{f} must be a number")
    assert custom.errors[0][1][0] == "age must be a number"


def test_empty_values_become_the_default() -> None:
    cs = cast(User(name="Ada", score=3.0), {"name": "  ", "score": ""}, ["name", "score"])
    assert cs.changes == {"name": None, "score": 1.5}
    assert cast(User(), {"name": "-"}, ["name"], empty_values=["-"]).changes == {}
    assert cast(User(), {"tags": ["a", "", "b"]}, ["tags"]).changes == {"tags": ["a", "b"]}


def test_cast_refuses_bad_params_and_unknown_fields() -> None:
    with pytest.raises(CastError, match="mapping"):
        cast(User(), ["name"], ["name"])
    with pytest.raises(CastError, match="string keys"):
        cast(User(), {1: "x"}, ["name"])
    with pytest.raises(ArgumentError, match="unknown field 'nope' given to cast"):
        cast(User(), {}, ["nope"])
    with pytest.raises(ArgumentError, match="got the class User"):
        cast(User, {}, ["name"])


def test_cast_onto_a_changeset_merges() -> None:
    cs = cast(User(), {"name": "Ada"}, ["name"])
    cs = cast(cs, {"age": "x"}, ["age"])
    assert cs.changes == {"name": "Ada"}
    assert not cs.valid and cs.params == {"name": "Ada", "age": "x"}


def test_schemaless_cast() -> None:
    cs = cast(({"q": None, "page": 1}, {"q": str, "page": int}), {"q": "books", "page": "2"}, ["q", "page"])
    assert cs.changes == {"q": "books", "page": 2}
    assert apply_changes(cs) == {"q": "books", "page": 2}
    assert "data=dict" in repr(cs)


def test_field_and_change_accessors() -> None:
    cs = cast(User(name="Ada", age=1), {"age": "2"}, ["age"])
    assert get_field(cs, "age") == 2 and get_field(cs, "name") == "Ada" and get_field(cs, "tags", []) == []
    assert fetch_field(cs, "age") == ("changes", 2) and fetch_field(cs, "name") == ("data", "Ada")
    assert get_change(cs, "age") == 2 and get_change(cs, "name", "none") == "none"
    assert fetch_change(cs, "age") == 2
    with pytest.raises(KeyError):
        fetch_change(cs, "name")
    with pytest.raises(KeyError):
        fetch_field(cs, "nope")
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        get_field(cs, "nope")


def test_put_force_delete_update_change() -> None:
    cs = change(User(name="Ada"))
    assert put_change(cs, "name", "Ada").changes == {}
    assert put_change(cs, "name", "Bob").changes == {"name": "Bob"}
    assert put_change(put_change(cs, "name", "Bob"), "name", "Ada").changes == {}
    assert force_change(cs, "name", "Ada").changes == {"name": "Ada"}
    assert delete_change(put_change(cs, "name", "Bob"), "name").changes == {}
    assert update_change(put_change(cs, "name", "bob"), "name", str.upper).changes == {"name": "BOB"}
    assert update_change(cs, "name", str.upper) is cs


def test_errors_traverse_and_apply_action() -> None:
    cs = add_error(change(User()), "name", "should be at least %{count} character(s)", count=3, validation="length")
    cs = add_error(cs, "name", "is reserved")
    assert not cs.valid
    assert traverse_errors(cs) == {"name": ["should be at least 3 character(s)", "is reserved"]}
    assert traverse_errors(cs, lambda msg, keys: keys.get("validation")) == {"name": ["length", None]}
    with pytest.raises(InvalidChangesetError) as info:
        apply_action(cs, "validate")
    assert info.value.changeset.action == "validate"
    assert apply_action(change(User(), name="x"), "validate") == User(name="x")


def test_changed_and_field_missing() -> None:
    cs = cast(User(name="Ada"), {"name": "Bob"}, ["name"])
    assert changed(cs, "name") and changed(cs, "name", from_="Ada", to="Bob")
    assert not changed(cs, "name", to="Eve") and not changed(cs, "age")
    assert field_missing(cs, "age") and not field_missing(cs, "name")
    assert field_missing(cast(User(), {"name": " "}, ["name"]), "name")


def test_redacted_changes_are_hidden_in_repr() -> None:
    cs = cast(User(), {"secret": "hunter2"}, ["secret"])
    assert "hunter2" not in repr(cs) and "**redacted**" in repr(cs)
    assert isinstance(cs, Changeset)
