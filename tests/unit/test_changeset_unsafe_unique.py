"""unsafe_validate_unique: the check built before any query, and its answer (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import embedded_schema, schema
from asyncecto.changeset import Changeset, add_error, cast, change, unsafe_validate_unique
from asyncecto.changeset._unsafe_unique import unique_check
from asyncecto.errors import ArgumentError


@schema("people")
class Person:
    id: int | None = None
    email: str | None = None
    nick: str | None = None


@embedded_schema
class Tag:
    name: str | None = None


class NoQueries:
    """A repo stand-in that fails the test if the check tries to query."""

    def exists(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected query: {args!r}")


def test_skips_the_query_without_a_change_a_value_or_with_a_prior_error() -> None:
    unchanged = unique_check(change(Person(email="a@x"), nick="n"), "email")
    assert unchanged.query is None and unchanged.answer(False).valid
    nil = unique_check(change(Person(email="a@x"), email=None), ["email", "nick"])
    assert nil.query is None and nil.answer(False).errors == ()
    errored = unique_check(add_error(cast(Person(), {"email": "a@x"}, ["email"]), "email", "is bad"), "email")
    assert errored.query is None
    result = errored.answer(False)
    assert result.errors == (("email", ("is bad", {})),)
    assert result.validations[-1] == ("email", ("unsafe_unique", {"fields": ["email"]}))


def test_the_check_is_pure_and_the_answer_sets_the_error() -> None:
    check = unique_check(change(Person(), email="a@x"), "email", error_key="login", message="taken", prefix="p")
    assert check.query is not None and check.prefix == "p"
    taken = check.answer(True)
    assert not taken.valid
    assert taken.errors == (("login", ("taken", {"validation": "unsafe_unique", "fields": ["email"]})),)
    with pytest.raises(ArgumentError, match="needs a Repo to ask"):
        unsafe_validate_unique(change(Person(), email="a@x"), "email", NoQueries())


def test_refuses_bad_arguments_naming_the_problem() -> None:
    repo = NoQueries()
    with pytest.raises(ArgumentError, match="unknown field 'mail' in Person"):
        unsafe_validate_unique(change(Person()), "mail", repo)
    with pytest.raises(ArgumentError, match="at least one field"):
        unsafe_validate_unique(change(Person()), [], repo)
    with pytest.raises(ArgumentError, match="schema changeset"):
        unsafe_validate_unique(Changeset(data={}, types={"email": str}), "email", repo)
    with pytest.raises(ArgumentError, match="embedded schema Tag"):
        unsafe_validate_unique(Changeset(data=Tag()), "name", repo)
