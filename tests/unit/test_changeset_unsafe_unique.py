"""unsafe_validate_unique: the decisions taken before any query (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import embedded_schema, schema
from asyncecto.changeset import Changeset, add_error, cast, change, unsafe_validate_unique
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


async def test_skips_the_query_without_a_change_a_value_or_with_a_prior_error() -> None:
    repo = NoQueries()
    unchanged = change(Person(email="a@x"), nick="n")
    assert (await unsafe_validate_unique(unchanged, "email", repo)).valid
    nil = change(Person(email="a@x"), email=None)
    assert (await unsafe_validate_unique(nil, ["email", "nick"], repo)).errors == ()
    errored = add_error(cast(Person(), {"email": "a@x"}, ["email"]), "email", "is bad")
    result = await unsafe_validate_unique(errored, "email", repo)
    assert result.errors == (("email", ("is bad", {})),)
    assert result.validations[-1] == ("email", ("unsafe_unique", {"fields": ["email"]}))


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
