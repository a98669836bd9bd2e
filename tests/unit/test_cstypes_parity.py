"""Ecto parity: schemaless change/2, empty_values/0, unsafe_validate_unique's new options (the
pure check) and Ecto.Type's helpers (is_primitive, embed_as, format_type, includes, trim)."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from asyncecto import schema
from asyncecto import types as t
from asyncecto.changeset import (
    Changeset,
    cast,
    change,
    empty_values,
    validate_exclusion,
    validate_inclusion,
)
from asyncecto.changeset._unsafe_unique import unique_check
from asyncecto.errors import ArgumentError, SchemaError


@schema("people")
class Person:
    id: int | None = None
    email: str | None = None
    nick: str | None = None


class Cents(t.BaseType[int]):
    """A custom type: equal ignores the sign, embeds its dumped value, formats itself."""

    name = "cents"
    db_type = "bigint"

    def equal(self, a: Any, b: Any) -> bool:
        return bool(abs(a) == abs(b))

    def embed_as(self, format: str) -> str:
        return "dump" if format == "json" else "self"

    def format(self) -> str:
        return "#Cents<bigint>"


# -- change((data, types), changes) ----------------------------------------------------------


def test_schemaless_change_compares_with_the_types_and_does_not_cast() -> None:
    types = {"title": "string", "n": t.Integer(), "price": "decimal"}
    cs = change(({"title": "a", "n": 1, "price": decimal.Decimal("1.0")}, types), title="a", n=2)
    assert isinstance(cs, Changeset) and cs.valid and cs.errors == ()
    assert cs.changes == {"n": 2}
    assert cs.data == {"title": "a", "n": 1, "price": decimal.Decimal("1.0")}
    assert cs.types == {"title": t.String(), "n": t.Integer(), "price": t.Decimal()}
    # equal by type: 1.00 == 1.0 is no change; no casting: "3" stays a string
    assert change(cs, {"price": decimal.Decimal("1.00"), "n": "3"}).changes == {"n": "3"}
    # changing back to the data's value drops the change
    assert change(cs, n=1).changes == {}
    assert change(({}, {"a": "string"})).changes == {}


def test_schemaless_change_works_with_cast_and_validations() -> None:
    cs = change(({}, {"a": "string", "b": "integer"}), a="x") | validate_inclusion("a", ["x", "y"])
    cs = cast(cs, {"b": "5"}, ["b"])
    assert cs.valid and cs.changes == {"a": "x", "b": 5}


def test_schemaless_change_refuses_unknown_fields_and_bad_pairs() -> None:
    with pytest.raises(ArgumentError, match="unknown field 'c'; the known fields are: a"):
        change(({}, {"a": "string"}), c=1)
    with pytest.raises(ArgumentError, match=r"a \(data, types\) pair"):
        change(({}, "string"), a=1)
    with pytest.raises(ArgumentError, match=r"a \(data, types\) pair"):
        change(({}, {"a": "string"}, 3), a=1)
    with pytest.raises(SchemaError, match="'nope'"):
        change(({}, {"a": "nope"}), a=1)


# -- empty_values() -------------------------------------------------------------------------


def test_empty_values_is_the_default_list_and_a_fresh_copy() -> None:
    assert empty_values() == [""]
    mine = empty_values()
    mine.append("n/a")
    assert empty_values() == [""]
    assert list(cast(Person(), {}, []).empty_values) == empty_values()
    cs = cast(Person(nick="z"), {"email": "n/a", "nick": " "}, ["email", "nick"], empty_values=[*empty_values(), "n/a"])
    assert cs.changes == {"nick": None}


# -- unsafe_validate_unique: nulls_distinct=, repo_opts= (the pure check) ------------------


def test_nulls_distinct_false_checks_none_values() -> None:
    cs = change(Person(email="a@x"), email=None)
    assert unique_check(cs, "email").query is None
    check = unique_check(cs, "email", nulls_distinct=False)
    assert check.query is not None
    assert "is_nil" in repr(check.query) or "IS NULL" in repr(check.query).upper()
    assert unique_check(change(Person(), nick="n"), "email", nulls_distinct=False).query is None  # no change


def test_repo_opts_and_prefix_go_to_the_repo() -> None:
    cs = change(Person(), email="a@x")
    check = unique_check(cs, "email", repo_opts={"timeout": 5, "prefix": "a"})
    assert check.repo_opts == {"timeout": 5, "prefix": "a"} and check.prefix == "a"
    both = unique_check(cs, "email", prefix="b", repo_opts={"prefix": "a"})
    assert both.repo_opts == {"prefix": "b"} and both.prefix == "b"
    assert unique_check(cs, "email").repo_opts == {}
    with pytest.raises(ArgumentError, match="repo_opts to be a mapping of option names"):
        unique_check(cs, "email", repo_opts={1: 2})  # type: ignore[dict-item]
    with pytest.raises(ArgumentError, match="nulls_distinct=True or False"):
        unique_check(cs, "email", nulls_distinct=None)  # type: ignore[arg-type]


# -- Ecto.Type helpers ---------------------------------------------------------------------


def test_is_primitive() -> None:
    for spec in ("integer", "id", "float", "decimal", "boolean", "string", "binary", "binary_id", "map", "any"):
        assert t.is_primitive(spec), spec
    for spec in ("date", "time", "time_usec", "naive_datetime", "utc_datetime_usec", "duration"):
        assert t.is_primitive(spec), spec
    assert t.is_primitive(t.Array(t.UUID())) and t.is_primitive(t.Map(t.Integer())) and t.is_primitive(list[int])
    assert not t.is_primitive(t.UUID())  # Ecto.UUID is a custom type
    assert not t.is_primitive(t.Enum(["a", "b"]))  # parameterized
    assert not t.is_primitive(Cents())

    class Upper(t.String):
        pass

    assert not t.is_primitive(Upper())
    with pytest.raises(SchemaError, match="unknown type name"):
        t.is_primitive("nope")


def test_embed_as() -> None:
    assert t.embed_as(t.Integer()) == "self" and t.embed_as("utc_datetime", "json") == "self"
    assert t.embed_as(Cents()) == "dump" and t.embed_as(Cents(), "xml") == "self"

    class Odd(t.BaseType[int]):
        name = "odd"

        def embed_as(self, format: str) -> str:
            return "values"

    with pytest.raises(ArgumentError, match=r"odd.embed_as\('json'\) must return \"self\" or \"dump\", got 'values'"):
        t.embed_as(Odd())
    with pytest.raises(ArgumentError, match="format as a string"):
        t.embed_as(t.Integer(), 1)  # type: ignore[arg-type]


def test_format_type() -> None:
    assert t.format_type(t.Array(t.Integer())) == "array(integer)"
    assert t.format_type("utc_datetime") == "utc_datetime"
    assert t.format_type(int) == "integer"
    assert t.format_type(Cents()) == "#Cents<bigint>"


def test_includes_uses_the_types_equal() -> None:
    assert t.includes(t.Decimal(), decimal.Decimal("1.0"), [decimal.Decimal("1.00")])
    assert t.includes(Cents(), -5, [1, 5]) and not t.includes(Cents(), 4, [1, 5])
    assert t.includes("integer", None, [None]) and not t.includes("integer", None, [1])
    assert not t.includes("string", "a", [])
    assert t.includes("string", "a", {"a", "b"})
    with pytest.raises(ArgumentError, match="collection of values"):
        t.includes("string", "a", "abc")


def test_validate_inclusion_and_exclusion_compare_by_type() -> None:
    types = {"c": Cents()}
    cs = change(({}, types), c=-5)
    assert (cs | validate_inclusion("c", [5])).valid
    assert not (cs | validate_exclusion("c", [5])).valid
    assert not (cs | validate_inclusion("c", [4])).valid
    # no field type (a plain list of strings) still works
    assert (change(Person(), nick="x") | validate_inclusion("nick", ["x"])).valid


def test_trim() -> None:
    assert t.trim(t.String(), "  hi ") == "hi "
    assert t.trim("string", "\t\n x") == "x"
    assert t.trim(t.Binary(), "  hi") == "  hi"
    assert t.trim(t.Integer(), 3) == 3 and t.trim("string", None) is None


def test_cast_trims_with_the_field_type_by_default() -> None:
    types = {"s": "string", "b": "binary", "tags": t.Array(t.String())}
    cs = cast(({"s": "x"}, types), {"s": "   ", "b": b"  ", "tags": [" ", "a"]}, ["s", "b", "tags"])
    assert cs.valid and cs.changes == {"s": None, "b": b"  ", "tags": ["a"]}
    # a binary field's string is not trimmed, so whitespace is not empty: bytes expected
    bad = cast(({}, types), {"b": "   "}, ["b"])
    assert bad.errors == (("b", ("is invalid", {"type": "binary", "validation": "cast"})),)
    # a given trim_values is used for every field
    own = cast(({}, types), {"b": "   "}, ["b"], trim_values=str.strip)
    assert own.valid and own.changes == {}
