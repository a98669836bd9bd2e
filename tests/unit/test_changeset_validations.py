"""Validations: Ecto's default messages and metadata, pipe and direct forms (no database)."""

from __future__ import annotations

import decimal
import re

import pytest

from asyncecto import schema
from asyncecto.changeset import (
    cast,
    change,
    traverse_errors,
    validate_acceptance,
    validate_change,
    validate_confirmation,
    validate_exclusion,
    validate_format,
    validate_inclusion,
    validate_length,
    validate_number,
    validate_required,
    validate_subset,
    validations,
)
from asyncecto.errors import ArgumentError


@schema("users")
class User:
    id: int | None = None
    name: str | None = None
    email: str | None = None
    age: int | None = None
    balance: decimal.Decimal | None = None
    role: str | None = None
    tags: list[str] | None = None
    avatar: bytes | None = None
    prefs: dict[str, object] | None = None
    password: str | None = None


def errors(cs: object) -> list[tuple[str, tuple[str, dict[str, object]]]]:
    return list(cs.errors)  # type: ignore[attr-defined]


def test_required_pipe_and_direct_forms() -> None:
    cs = cast(User(), {"name": "  ", "email": "a@b.c"}, ["name", "email"]) | validate_required(["name", "email"])
    assert errors(cs) == [("name", ("can't be blank", {"validation": "required"}))]
    assert not cs.valid and "name" not in cs.changes and cs.required == ("name", "email")
    direct = validate_required(cast(User(), {}, ["name"]), "name", message="needed")
    assert errors(direct) == [("name", ("needed", {"validation": "required"}))]
    assert validate_required(change(User(name="kept")), ["name"]).valid


def test_required_adds_no_second_error_and_refuses_unknown_fields() -> None:
    cs = cast(User(), {"age": "x"}, ["age"]) | validate_required("age")
    assert [f for f, _ in cs.errors] == ["age"]
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        change(User()) | validate_required(["nope"])


def test_format() -> None:
    cs = change(User(), email="nope") | validate_format("email", r"@")
    assert errors(cs) == [("email", ("has invalid format", {"validation": "format"}))]
    assert (change(User(), email="a@b") | validate_format("email", re.compile("@"))).valid
    assert (change(User()) | validate_format("email", "@")).valid  # no change: skipped
    with pytest.raises(ArgumentError):
        change(User(), age=3) | validate_format("age", r"\d")


def test_inclusion_exclusion_subset() -> None:
    cs = change(User(), role="root") | validate_inclusion("role", ["user", "admin"])
    assert errors(cs) == [("role", ("is invalid", {"validation": "inclusion", "enum": ["user", "admin"]}))]
    cs = change(User(), name="admin") | validate_exclusion("name", ["admin", "root"])
    assert errors(cs) == [("name", ("is reserved", {"validation": "exclusion", "enum": ["admin", "root"]}))]
    cs = change(User(), tags=["a", "z"]) | validate_subset("tags", ["a", "b"])
    assert errors(cs) == [("tags", ("has an invalid entry", {"validation": "subset", "enum": ["a", "b"]}))]
    assert (change(User(), tags=["a"]) | validate_subset("tags", ["a", "b"])).valid


@pytest.mark.parametrize(
    ("value", "opts", "message", "keys"),
    [
        ("ab", {"min": 3}, "should be at least %{count} character(s)", {"count": 3, "kind": "min", "type": "string"}),
        ("abcd", {"max": 3}, "should be at most %{count} character(s)", {"count": 3, "kind": "max", "type": "string"}),
        ("ab", {"is_": 3}, "should be %{count} character(s)", {"count": 3, "kind": "is", "type": "string"}),
        (
            "é",
            {"max": 1, "count": "bytes"},
            "should be at most %{count} byte(s)",
            {"count": 1, "kind": "max", "type": "binary"},
        ),
        (["a"], {"min": 2}, "should have at least %{count} item(s)", {"count": 2, "kind": "min", "type": "list"}),
        (["a", "b"], {"is_": 1}, "should have %{count} item(s)", {"count": 1, "kind": "is", "type": "list"}),
        ({"a": 1}, {"min": 2}, "should have at least %{count} item(s)", {"count": 2, "kind": "min", "type": "map"}),
        (b"abc", {"max": 2}, "should be at most %{count} byte(s)", {"count": 2, "kind": "max", "type": "binary"}),
    ],
)
def test_length_messages_and_metadata(
    value: object, opts: dict[str, object], message: str, keys: dict[str, object]
) -> None:
    fieldname = {str: "name", list: "tags", dict: "prefs", bytes: "avatar"}[type(value)]  # type: ignore[index]
    cs = change(User(), **{fieldname: value}) | validate_length(fieldname, **opts)
    assert errors(cs) == [(fieldname, (message, {**keys, "validation": "length"}))]


def test_length_passes_and_interpolates() -> None:
    assert (change(User(), name="abc") | validate_length("name", min=1, max=3)).valid
    cs = change(User(), name="a") | validate_length("name", min=2)
    assert traverse_errors(cs) == {"name": ["should be at least 2 character(s)"]}
    with pytest.raises(ArgumentError):
        change(User()) | validate_length("name")


@pytest.mark.parametrize(
    ("kind", "bound", "message"),
    [
        ("less_than", 5, "must be less than %{number}"),
        ("greater_than", 50, "must be greater than %{number}"),
        ("less_than_or_equal_to", 9, "must be less than or equal to %{number}"),
        ("greater_than_or_equal_to", 11, "must be greater than or equal to %{number}"),
        ("equal_to", 11, "must be equal to %{number}"),
        ("not_equal_to", 10, "must be not equal to %{number}"),
    ],
)
def test_number_messages(kind: str, bound: int, message: str) -> None:
    cs = change(User(), age=10) | validate_number("age", **{kind: bound})
    assert errors(cs) == [("age", (message, {"validation": "number", "kind": kind, "number": bound}))]


def test_number_first_failure_only_decimals_and_bad_options() -> None:
    cs = change(User(), age=10) | validate_number("age", greater_than=20, less_than=5)
    assert len(cs.errors) == 1 and cs.errors[0][1][1]["kind"] == "greater_than"
    assert (change(User(), balance=decimal.Decimal("1.5")) | validate_number("balance", greater_than=1)).valid
    with pytest.raises(ArgumentError, match="unknown or no checks"):
        change(User(), age=1) | validate_number("age", bigger=1)


def test_confirmation() -> None:
    params = {"password": "secret", "password_confirmation": "other"}
    cs = cast(User(), params, ["password"]) | validate_confirmation("password")
    assert errors(cs) == [("password_confirmation", ("does not match confirmation", {"validation": "confirmation"}))]
    ok = cast(User(), {"password": "s", "password_confirmation": "s"}, ["password"]) | validate_confirmation("password")
    assert ok.valid
    missing = cast(User(), {"password": "s"}, ["password"]) | validate_confirmation("password", required=True)
    assert errors(missing) == [("password_confirmation", ("can't be blank", {"validation": "required"}))]


def test_acceptance() -> None:
    cs = cast(User(), {"terms": "false"}, []) | validate_acceptance("terms")
    assert errors(cs) == [("terms", ("must be accepted", {"validation": "acceptance"}))]
    assert (cast(User(), {"terms": "true"}, []) | validate_acceptance("terms")).valid
    assert (cast(User(), {}, []) | validate_acceptance("terms")).valid


def test_validate_change_and_reflection() -> None:
    def no_spaces(field: str, value: str) -> list[tuple[str, object]]:
        return [(field, ("contains spaces", {"validation": "no_spaces"}))] if " " in value else []

    cs = change(User(), name="a b") | validate_change("name", no_spaces) | validate_length("name", max=10)
    assert errors(cs) == [("name", ("contains spaces", {"validation": "no_spaces"}))]
    assert [(f, spec[0]) for f, spec in validations(cs)] == [("name", "length")]
