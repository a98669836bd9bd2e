"""unsafe_validate_unique's nulls_distinct= and repo_opts= against PostgreSQL (Ecto 3.11)."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.changeset import cast, change, unsafe_validate_unique
from asyncecto.errors import ArgumentError
from asyncecto.repo import QueryEvent

from ..schemas import User

pytestmark = pytest.mark.usefixtures("repo")

_TAKEN = ("email", ("has already been taken", {"validation": "unsafe_unique", "fields": ["email"]}))


async def test_nulls_distinct_false_compares_none_as_a_value(repo: Repo) -> None:
    sent: list[str] = []
    repo.telemetry.attach(lambda e: sent.append(e.sql), name="nulls-distinct")
    await repo.insert(User(email=None))
    cs = change(User(email="a@example.com"), email=None)

    # the default (nulls are distinct, as in SQL): no query, no error
    await repo.telemetry.flush()
    before = len(sent)
    assert (await unsafe_validate_unique(cs, "email", repo)).valid
    await repo.telemetry.flush()
    assert len(sent) == before

    # nulls_distinct=False: the NULL row clashes (email IS NULL)
    taken = await unsafe_validate_unique(cs, "email", repo, nulls_distinct=False)
    assert taken.valid is False and taken.errors == (_TAKEN,)
    await repo.telemetry.flush()
    assert len(sent) == before + 1 and "IS NULL" in sent[-1]


async def test_nulls_distinct_false_without_a_null_row_and_with_other_fields(repo: Repo) -> None:
    await repo.insert(User(email="a@example.com", score=1))
    cs = change(User(email="x@example.com"), email=None)
    assert (await unsafe_validate_unique(cs, "email", repo, nulls_distinct=False)).valid
    # a NULL and a value together: the NULL is matched with IS NULL, the value with =
    await repo.insert(User(email=None, score=7))
    both = change(User(email="x@example.com", score=0), email=None, score=7)
    assert not (await unsafe_validate_unique(both, ["email", "score"], repo, nulls_distinct=False)).valid
    other = change(User(email="x@example.com", score=0), email=None, score=8)
    assert (await unsafe_validate_unique(other, ["email", "score"], repo, nulls_distinct=False)).valid


async def test_loaded_struct_with_null_does_not_count_itself(repo: Repo) -> None:
    me = await repo.insert(User(email=None, score=3))
    cs = change(me, score=4)
    cs = change(cs, email=None)  # no change to email: nothing to check
    assert (await unsafe_validate_unique(cs, "email", repo, nulls_distinct=False)).valid
    import attrs

    forced = attrs.evolve(change(me, score=4), changes={"email": None, "score": 4})
    assert (await unsafe_validate_unique(forced, "email", repo, nulls_distinct=False)).valid
    await repo.insert(User(email=None))
    assert not (await unsafe_validate_unique(forced, "email", repo, nulls_distinct=False)).valid


async def test_repo_opts_reach_the_query(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append, name="repo-opts")
    await repo.insert(User(email="a@example.com"))
    cs = cast(User(), {"email": "a@example.com"}, ["email"])

    taken = await unsafe_validate_unique(cs, "email", repo, repo_opts={"timeout": 5, "telemetry_options": {"k": 1}})
    assert taken.errors == (_TAKEN,)
    await repo.telemetry.flush()
    assert events[-1].options == {"k": 1} and "users" in events[-1].sql

    # repo_opts' prefix is used (no users table in schema "archive")...
    with pytest.raises(Exception, match="archive"):
        await unsafe_validate_unique(cs, "email", repo, repo_opts={"prefix": "archive"})
    # ... and prefix= wins over it
    again = await unsafe_validate_unique(cs, "email", repo, prefix="public", repo_opts={"prefix": "archive"})
    assert again.errors == (_TAKEN,)


async def test_bad_options_are_refused_at_the_call(repo: Repo) -> None:
    cs = change(User(), email="a@example.com")
    with pytest.raises(ArgumentError, match="nulls_distinct=True or False, got 'no'"):
        unsafe_validate_unique(cs, "email", repo, nulls_distinct="no")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="repo_opts to be a mapping"):
        unsafe_validate_unique(cs, "email", repo, repo_opts=[("timeout", 5)])  # type: ignore[arg-type]
