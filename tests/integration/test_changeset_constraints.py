"""Declared constraints, optimistic locking and prepare_changes against PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import attrs
import pytest

from asyncecto import Repo
from asyncecto.changeset import (
    Changeset,
    add_error,
    assoc_constraint,
    cast,
    change,
    check_constraint,
    exclusion_constraint,
    foreign_key_constraint,
    no_assoc_constraint,
    optimistic_lock,
    prepare_changes,
    put_change,
    unique_constraint,
    unsafe_validate_unique,
)
from asyncecto.errors import ArgumentError, ConstraintError, InvalidChangesetError, StaleEntryError

from ..schemas import Account, Booking, User, Weather

pytestmark = pytest.mark.usefixtures("repo")


async def test_declared_unique_constraint_becomes_a_changeset_error(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(User(email="a@example.com"))
    cs = cast(User(), {"email": "a@example.com"}, ["email"]) | unique_constraint("email", name="users_email_key")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    bad = info.value.changeset
    assert info.value.action == "insert"
    assert bad.action == "insert" and bad.valid is False
    assert bad.errors == (
        ("email", ("has already been taken", {"constraint": "unique", "constraint_name": "users_email_key"})),
    )
    assert await admin.fetchval("SELECT count(*) FROM users") == 1


async def test_undeclared_constraint_raises_constraint_error_naming_the_fix(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await repo.insert(User(email="a@example.com"))
    # declared under Ecto's default name (users_email_index), but PostgreSQL named it users_email_key
    cs = cast(User(), {"email": "a@example.com"}, ["email"]) | unique_constraint("email")
    with pytest.raises(ConstraintError) as info:
        await repo.insert(cs)
    text = str(info.value)
    assert "users_email_key" in text and "users_email_index" in text
    assert await admin.fetchval("SELECT count(*) FROM users") == 1


async def test_constraint_matching_by_suffix_prefix_and_regex(repo: Repo) -> None:
    await repo.insert(User(email="a@example.com"))
    for kwargs in (
        {"name": "_email_key", "match": "suffix"},
        {"name": "users_", "match": "prefix"},
        {"name": re.compile(r"users_.*_key")},
    ):
        cs = change(User(), email="a@example.com") | unique_constraint("email", **kwargs)
        with pytest.raises(InvalidChangesetError) as info:
            await repo.insert(cs)
        assert info.value.changeset.errors[0][1][1]["constraint_name"] == "users_email_key"


async def test_unique_constraint_on_update_with_custom_message_and_error_key(repo: Repo) -> None:
    await repo.insert(User(email="a@example.com"))
    b = await repo.insert(User(email="b@example.com"))
    cs = change(b, email="a@example.com") | unique_constraint(
        "email", name="users_email_key", message="is taken", error_key="login"
    )
    with pytest.raises(InvalidChangesetError) as info:
        await repo.update(cs)
    assert info.value.changeset.errors[0] == (
        "login",
        ("is taken", {"constraint": "unique", "constraint_name": "users_email_key"}),
    )


async def test_foreign_key_check_and_exclusion_constraints(repo: Repo) -> None:
    fk = change(Account(), owner_id=999) | foreign_key_constraint("owner_id")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(fk)
    assert info.value.changeset.errors == (
        ("owner_id", ("does not exist", {"constraint": "foreign", "constraint_name": "accounts_owner_id_fkey"})),
    )

    check = change(Account(), balance=-5) | check_constraint("balance", name="accounts_balance_check")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(check)
    assert info.value.changeset.errors == (
        ("balance", ("is invalid", {"constraint": "check", "constraint_name": "accounts_balance_check"})),
    )

    await repo.insert(Booking(room=1))
    excl = change(Booking(), room=1) | exclusion_constraint("room")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(excl)
    assert info.value.changeset.errors == (
        (
            "room",
            (
                "violates an exclusion constraint",
                {"constraint": "exclusion", "constraint_name": "bookings_room_exclusion"},
            ),
        ),
    )


async def test_constraint_of_another_kind_does_not_match(repo: Repo) -> None:
    await repo.insert(User(email="a@example.com"))
    cs = change(User(), email="a@example.com") | check_constraint("email", name="users_email_key")
    with pytest.raises(ConstraintError):
        await repo.insert(cs)


def test_constraint_declarations_refuse_bad_arguments() -> None:
    with pytest.raises(ArgumentError, match="check_constraint needs name="):
        change(Account()) | check_constraint("balance")
    with pytest.raises(ArgumentError, match="invalid match"):
        change(User()) | unique_constraint("email", match="middle")
    with pytest.raises(ArgumentError, match="regex"):
        change(User()) | unique_constraint("email", name=re.compile("x"), match="suffix")
    with pytest.raises(ArgumentError, match="schema changeset"):
        Changeset(data={}, types={"email": str}) | unique_constraint("email")


async def test_declared_constraint_in_transaction_leaves_the_outer_transaction_usable_only_via_savepoint(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await repo.insert(User(email="a@example.com"))
    async with repo.transaction():
        await repo.insert(Weather(city="kept"))
        async with repo.transaction():  # a savepoint: the failed insert rolls back to it
            with pytest.raises(InvalidChangesetError):
                await repo.insert(
                    change(User(), email="a@example.com") | unique_constraint("email", name="users_email_key")
                )
            await repo.rollback()
        await repo.insert(Weather(city="also kept"))
    assert await admin.fetchval("SELECT count(*) FROM weather") == 2


# -- optimistic locking ---------------------------------------------------------------------


async def test_optimistic_lock_bumps_the_version_and_refuses_a_stale_struct(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    acc = await repo.insert(Account(balance=10, lock_version=1))
    first = await repo.update(change(acc, balance=20) | optimistic_lock("lock_version"))
    assert (first.balance, first.lock_version) == (20, 2)
    assert tuple(await admin.fetchrow("SELECT balance, lock_version FROM accounts")) == (20, 2)

    stale = change(acc, balance=30) | optimistic_lock("lock_version")  # acc still says version 1
    with pytest.raises(StaleEntryError):
        await repo.update(stale)
    assert tuple(await admin.fetchrow("SELECT balance, lock_version FROM accounts")) == (20, 2)

    with pytest.raises(StaleEntryError):
        await repo.delete(optimistic_lock(acc, "lock_version"))
    await repo.delete(optimistic_lock(first, "lock_version"))
    assert await admin.fetchval("SELECT count(*) FROM accounts") == 0


async def test_optimistic_lock_with_no_changes_sends_nothing(repo: Repo) -> None:
    acc = await repo.insert(Account(balance=10, lock_version=1))
    same = await repo.update(optimistic_lock(acc, "lock_version"))
    assert same.lock_version == 1
    forced = await repo.update(optimistic_lock(acc, "lock_version"), force=True)
    assert forced.lock_version == 2


async def test_optimistic_lock_custom_incrementer_and_rollover(repo: Repo) -> None:
    acc = await repo.insert(Account(balance=1, lock_version=2_147_483_647))
    rolled = await repo.update(change(acc, balance=2) | optimistic_lock("lock_version"))
    assert rolled.lock_version == 1
    by_ten = await repo.update(
        change(rolled, balance=3) | optimistic_lock("lock_version", incrementer=lambda v: v + 10)
    )
    assert by_ten.lock_version == 11


# -- prepare_changes ------------------------------------------------------------------------


async def test_prepare_changes_runs_inside_the_write_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    seen: list[Any] = []

    async def count_weather(cs: Changeset[Any]) -> Changeset[Any]:
        seen.append((cs.repo is not None, repo.in_transaction()))
        await cs.repo.query("INSERT INTO weather (city) VALUES ('audit')")
        return put_change(cs, "title", str(cs.changes["title"]).upper())

    from ..schemas import Post

    post = await repo.insert(change(Post(), title="hello") | prepare_changes(count_weather))
    assert post.title == "HELLO"
    assert seen == [(True, True)]
    assert await admin.fetchval("SELECT count(*) FROM weather") == 1


async def test_prepare_changes_is_rolled_back_with_a_failed_write(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(User(email="a@example.com"))

    async def audit(cs: Changeset[Any]) -> Changeset[Any]:
        await cs.repo.query("INSERT INTO weather (city) VALUES ('audit')")
        return cs

    cs = (
        change(User(), email="a@example.com")
        | prepare_changes(audit)
        | unique_constraint("email", name="users_email_key")
    )
    with pytest.raises(InvalidChangesetError):
        await repo.insert(cs)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_prepare_changes_not_run_for_invalid_or_empty_changesets(repo: Repo) -> None:
    calls: list[str] = []

    def note(cs: Changeset[Any]) -> Changeset[Any]:
        calls.append("ran")
        return cs

    w = await repo.insert(Weather(city="x"))
    same = await repo.update(change(w) | prepare_changes(note))
    assert same is w and calls == []
    invalid = cast(Weather(), {"temp_lo": "cold"}, ["temp_lo"]) | prepare_changes(note)
    with pytest.raises(InvalidChangesetError):
        await repo.insert(invalid)
    assert calls == []


def test_prepare_changes_refuses_a_non_callable() -> None:
    with pytest.raises(ArgumentError, match="function of the changeset"):
        change(Weather()) | prepare_changes(42)


async def test_stale_error_field_turns_a_stale_write_into_a_changeset_error(repo: Repo) -> None:
    acc = await repo.insert(Account(balance=10, lock_version=1))
    await repo.update(change(acc, balance=20) | optimistic_lock("lock_version"))
    stale = change(acc, balance=30) | optimistic_lock("lock_version")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.update(stale, stale_error_field="lock_version")
    assert info.value.changeset.errors == (("lock_version", ("is stale", {"stale": True})),)
    assert info.value.action == "update"

    with_opts = attrs.evolve(stale, repo_opts={"stale_error_field": "balance", "stale_error_message": "moved on"})
    with pytest.raises(InvalidChangesetError) as info:
        await repo.update(with_opts)
    assert info.value.changeset.errors == (("balance", ("moved on", {"stale": True})),)

    with pytest.raises(InvalidChangesetError) as info:
        await repo.delete(optimistic_lock(acc, "lock_version"), stale_error_field="id", stale_error_message="gone")
    assert info.value.changeset.errors == (("id", ("gone", {"stale": True})),)


# -- unsafe_validate_unique -----------------------------------------------------------------


async def test_unsafe_validate_unique_queries_only_when_it_must(repo: Repo) -> None:
    sent: list[str] = []
    repo.telemetry.attach(lambda e: sent.append(e.sql), name="unsafe-unique")
    taken = await repo.insert(User(email="a@example.com"))

    cs = await unsafe_validate_unique(cast(User(), {"email": "a@example.com"}, ["email"]), "email", repo)
    assert cs.valid is False
    assert cs.errors == (("email", ("has already been taken", {"validation": "unsafe_unique", "fields": ["email"]})),)
    assert ("email", ("unsafe_unique", {"fields": ["email"]})) in cs.validations

    free = await unsafe_validate_unique(change(User(), email="b@example.com"), ["email"], repo, message="taken")
    assert free.valid and free.errors == ()

    # the loaded struct itself does not count as a duplicate
    itself = await unsafe_validate_unique(change(taken, email="a@example.com", score=1), "email", repo)
    assert itself.valid
    mine = await unsafe_validate_unique(
        attrs.evolve(change(taken, score=1), changes={"email": "a@example.com"}), "email", repo
    )
    assert mine.valid

    await repo.telemetry.flush()
    before = len(sent)
    # no change to the field, a None value, or a prior error: no query at all
    assert (await unsafe_validate_unique(change(taken, score=3), "email", repo)).valid
    assert (await unsafe_validate_unique(change(User(), email=None), "email", repo)).valid
    prior = cast(User(), {"email": "a@example.com", "score": "x"}, ["email", "score"])
    prior = add_error(prior, "email", "is bad")
    assert [f for f, _ in (await unsafe_validate_unique(prior, "email", repo)).errors].count("email") == 1
    await repo.telemetry.flush()
    assert len(sent) == before


async def test_unsafe_validate_unique_with_error_key_and_query(repo: Repo) -> None:
    await repo.insert(User(email="a@example.com", score=1))
    from asyncecto.query import from_, where

    scoped = from_(User) | where(score=2)
    cs = await unsafe_validate_unique(change(User(), email="a@example.com"), "email", repo, query=scoped)
    assert cs.valid
    cs = await unsafe_validate_unique(change(User(), email="a@example.com"), "email", repo, error_key="login")
    assert cs.errors[0][0] == "login"
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        await unsafe_validate_unique(change(User()), "nope", repo)


async def test_assoc_and_no_assoc_constraints(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(change(Account(), owner_id=999) | assoc_constraint("owner"))
    assert info.value.changeset.errors == (
        ("owner", ("does not exist", {"constraint": "assoc", "constraint_name": "accounts_owner_id_fkey"})),
    )

    owner = await repo.insert(User(email="o@example.com"))
    await repo.insert(Account(owner_id=owner.id))
    with pytest.raises(InvalidChangesetError) as info:
        await repo.delete(change(owner) | no_assoc_constraint("accounts", name="accounts_owner_id_fkey"))
    assert info.value.action == "delete"
    assert info.value.changeset.errors == (
        (
            "accounts",
            (
                "are still associated with this entry",
                {"constraint": "no_assoc", "constraint_name": "accounts_owner_id_fkey"},
            ),
        ),
    )
    assert await admin.fetchval("SELECT count(*) FROM users") == 1

    with pytest.raises(ArgumentError, match="needs name="):
        change(owner) | no_assoc_constraint("accounts")
    with pytest.raises(ArgumentError, match="foreign key field 'author_id'"):
        change(Account()) | assoc_constraint("author")
    custom = change(Account()) | assoc_constraint("holder", foreign_key="owner_id")
    assert custom.constraints[-1].constraint == "accounts_owner_id_fkey"
