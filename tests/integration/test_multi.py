"""Multi: named operations in one transaction; failures roll everything back."""

from __future__ import annotations

from typing import Any

import anyio
import asyncpg
import pytest

from asyncecto import Multi, Repo
from asyncecto.changeset import Changeset, cast, change, unique_constraint, validate_required
from asyncecto.errors import ArgumentError, ConnectionLostError, ConstraintError, MultiError, Rollback
from asyncecto.query import from_, select, where

from ..conftest import APP_NAME
from ..schemas import Post, User, Weather

pytestmark = pytest.mark.usefixtures("repo")


def weather_cs(params: dict[str, Any]) -> Changeset[Weather]:
    return cast(Weather(), params, ["city", "temp_lo"]) | validate_required("city")


async def test_every_operation_kind_and_the_changes_dict(repo: Repo, admin: asyncpg.Connection) -> None:
    printed: list[Any] = []
    m = (
        Multi.new()
        | Multi.insert("krakow", weather_cs({"city": "Kraków", "temp_lo": "1"}))
        | Multi.insert("oslo", Weather(city="Oslo", temp_lo=-5))
        | Multi.update("warmer", lambda ch: change(ch["krakow"], temp_lo=3))
        | Multi.put("limit", 0)
        | Multi.all("cold", lambda ch: from_(Weather) | where(lambda w: w.temp_lo < ch["limit"]))
        | Multi.one("one", from_(Weather) | where(city="Kraków"))
        | Multi.exists("any_lisbon", from_(Weather) | where(city="Lisbon"))
        | Multi.update_all("bump", from_(Weather), inc={"temp_lo": 1})
        | Multi.inspect(only=["limit"], printer=printed.append)
        | Multi.run("count", lambda r, ch: r.aggregate(from_(Weather), "count"))
        | Multi.insert_or_update("upsert", lambda ch: change(ch["oslo"], city="Bergen"))
        | Multi.delete("gone", lambda ch: ch["upsert"])
        | Multi.delete_all("rest", from_(Weather) | where(city="Nowhere"))
    )
    changes = await repo.transaction(m)
    assert list(changes) == [
        "krakow", "oslo", "warmer", "limit", "cold", "one", "any_lisbon", "bump", "count", "upsert", "gone", "rest",
    ]  # fmt: skip
    assert changes["warmer"].temp_lo == 3
    assert [w.city for w in changes["cold"]] == ["Oslo"]
    assert changes["one"].temp_lo == 3
    assert changes["any_lisbon"] is False
    assert changes["bump"] == (2, None)
    assert changes["count"] == 2
    assert changes["upsert"].city == "Bergen"
    assert changes["rest"] == (0, None)
    assert printed == [{"limit": 0}]
    assert [tuple(r) for r in await admin.fetch("SELECT city, temp_lo FROM weather")] == [("Kraków", 4)]


async def test_an_invalid_changeset_fails_before_begin(repo: Repo, admin: asyncpg.Connection) -> None:
    sent: list[str] = []
    repo.telemetry.attach(lambda e: sent.append(e.sql), name="multi-preflight")
    m = Multi.new() | Multi.insert("ok", Weather(city="a")) | Multi.insert("bad", weather_cs({"temp_lo": "2"}))
    with pytest.raises(MultiError) as info:
        await repo.transaction(m)
    err = info.value
    assert err.operation == "bad" and err.changes == {}
    assert isinstance(err.value, Changeset) and err.value.action == "insert"
    assert err.value.errors == (("city", ("can't be blank", {"validation": "required"})),)
    await repo.telemetry.flush()
    assert sent == []
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_error_operation_fails_before_anything_runs(repo: Repo) -> None:
    m = Multi.new() | Multi.put("a", 1) | Multi.error("stop", {"reason": "no"})
    with pytest.raises(MultiError) as info:
        await repo.transaction(m)
    assert (info.value.operation, info.value.value, info.value.changes) == ("stop", {"reason": "no"}, {})


async def test_a_failure_midway_rolls_back_what_ran_and_reports_it(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(User(email="taken@example.com"))

    def duplicate(changes: dict[str, Any]) -> Changeset[User]:
        return change(User(), email="taken@example.com") | unique_constraint("email", name="users_email_key")

    m = (
        Multi.new()
        | Multi.insert("w", Weather(city="kept?"))
        | Multi.insert("user", duplicate)
        | Multi.insert("never", Weather(city="never"))
    )
    with pytest.raises(MultiError) as info:
        await repo.transaction(m)
    err = info.value
    assert err.operation == "user"
    assert err.value.errors[0][1][0] == "has already been taken"
    assert list(err.changes) == ["w"] and err.changes["w"].city == "kept?"
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    assert not repo.in_transaction()


async def test_run_fails_the_multi_with_repo_rollback_or_an_exception(repo: Repo, admin: asyncpg.Connection) -> None:
    async def refuse(r: Repo, changes: dict[str, Any]) -> None:
        r.rollback({"why": "refused", "saw": sorted(changes)})

    m = Multi.new() | Multi.insert("w", Weather(city="x")) | Multi.run("check", refuse)
    with pytest.raises(MultiError) as info:
        await repo.transaction(m)
    assert info.value.operation == "check"
    assert info.value.value == {"why": "refused", "saw": ["w"]}
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0

    def boom(r: Repo, changes: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(MultiError) as raised:
        await repo.transaction(Multi.new() | Multi.insert("w", Weather(city="y")) | Multi.run("boom", boom))
    assert raised.value.operation == "boom" and isinstance(raised.value.value, RuntimeError)
    assert raised.value.__cause__ is raised.value.value and list(raised.value.changes) == ["w"]
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_an_undeclared_constraint_fails_the_multi_with_the_error(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(User(email="a@example.com"))
    m = (
        Multi.new()
        | Multi.insert("w", Weather(city="x"))
        | Multi.insert("dup", User(email="a@example.com"))
        | Multi.insert("never", Weather(city="never"))
    )
    with pytest.raises(MultiError) as raised:
        await repo.transaction(m)
    assert raised.value.operation == "dup" and isinstance(raised.value.value, ConstraintError)
    assert list(raised.value.changes) == ["w"]
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_merge_builds_operations_at_run_time(repo: Repo) -> None:
    def more(changes: dict[str, Any]) -> Multi:
        child: Multi = Multi.new() | Multi.insert("child", Post(title=f"about {changes['w'].city}"))
        return child

    changes = await repo.transaction(Multi.new() | Multi.insert("w", Weather(city="Oslo")) | Multi.merge(more))
    assert changes["child"].title == "about Oslo"

    clash = Multi.new() | Multi.put("w", 1) | Multi.merge(lambda ch: Multi.new() | Multi.put("w", 2))
    with pytest.raises(ArgumentError, match="found in both: 'w'"):
        await repo.transaction(clash)


async def test_empty_multi_and_multi_inside_a_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    assert await repo.transaction(Multi.new()) == {}
    async with repo.transaction():
        await repo.insert(Weather(city="outer"))
        with pytest.raises(MultiError):
            await repo.transaction(Multi.new() | Multi.insert("a", Weather(city="inner")) | Multi.run("x", _refuse))
        await repo.insert(Weather(city="outer 2"))
    assert sorted(r[0] for r in await admin.fetch("SELECT city FROM weather")) == ["outer", "outer 2"]


def _refuse(r: Repo, changes: dict[str, Any]) -> None:
    r.rollback("no")


def test_building_refuses_duplicates_and_conflicting_actions() -> None:
    m = Multi.new() | Multi.put("a", 1)
    with pytest.raises(ArgumentError, match="'a' is already a member of the Multi"):
        m | Multi.put("a", 2)
    loaded_cs = Changeset(data=Weather(), action="update")
    with pytest.raises(ArgumentError, match="action already set to 'update' when trying to insert"):
        Multi.insert("x", loaded_cs)
    with pytest.raises(ArgumentError, match="expects a changeset"):
        Multi.update(Multi.new(), "x", Weather())
    with pytest.raises(ArgumentError, match="cannot merge Multi; the following operations were found in both: 'a'"):
        Multi.append(m, Multi.new() | Multi.put("a", 3))
    both = Multi.prepend(m, Multi.new() | Multi.put("b", 2))
    assert both.names == ["b", "a"]
    assert [(n, k) for n, (k, *_r) in both.to_list()] == [("b", "put"), ("a", "put")]
    assert Multi.put(Multi.new(), "direct", 1).names == ["direct"]
    with pytest.raises(ArgumentError, match="expects a function"):
        Multi.run("r", 42)


async def test_reads_via_select(repo: Repo) -> None:
    await repo.insert(Weather(city="a", temp_lo=1))
    changes = await repo.transaction(Multi.new() | Multi.all("cities", from_(Weather) | select(lambda w: w.city)))
    assert changes == {"cities": ["a"]}


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_backend_killed_midway_raises_connection_lost_and_nothing_is_visible(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    async def kill_own_backend(r: Repo, changes: dict[str, Any]) -> None:
        pid = (await r.query("SELECT pg_backend_pid()")).rows[0][0]
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await r.query("SELECT 1")

    m = (
        Multi.new()
        | Multi.insert("a", Weather(city="a"))
        | Multi.insert("b", Weather(city="b"))
        | Multi.run("kill", kill_own_backend)
        | Multi.insert("d", Weather(city="d"))
    )
    with pytest.raises(ConnectionLostError):
        await repo.transaction(m)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    assert repo.pool_stats()["in_use"] == 0
    assert (await repo.transaction(Multi.new() | Multi.insert("again", Weather(city="ok"))))["again"].id


async def test_cancelled_by_an_anyio_scope_midway_writes_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    async def slow(r: Repo, changes: dict[str, Any]) -> None:
        await r.query("SELECT pg_sleep(5)")

    m = Multi.new() | Multi.insert("a", Weather(city="a")) | Multi.run("slow", slow)
    with anyio.move_on_after(0.2) as scope:
        await repo.transaction(m)
    assert scope.cancelled_caught
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    for _ in range(100):
        if repo.pool_stats()["in_use"] == 0:
            break
        await anyio.sleep(0.01)
    idle = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        "AND application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()",
        APP_NAME,
    )
    assert idle == 0
    assert repo.pool_stats()["rollbacks"] == 0  # the transaction rolled back itself, not the pool


# -- regressions from review ----------------------------------------------------------------


async def test_rollback_or_an_exception_in_merge_or_inspect_fails_the_multi(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    def refuse(changes: dict[str, Any]) -> Multi:
        repo.rollback("nope")

    m = Multi.new() | Multi.insert("a", Weather(city="A")) | Multi.merge(refuse)
    with pytest.raises(MultiError) as raised:
        await repo.transaction(m)
    assert raised.value.value == "nope" and list(raised.value.changes) == ["a"]

    def crash(changes: dict[str, Any]) -> None:
        raise ZeroDivisionError

    with pytest.raises(MultiError) as raised:
        await repo.transaction(Multi.new() | Multi.insert("a", Weather(city="A")) | Multi.inspect(printer=crash))
    assert isinstance(raised.value.value, ZeroDivisionError)

    with pytest.raises(MultiError) as raised:
        await repo.transaction(Multi.new() | Multi.insert("w", lambda ch: repo.rollback("in a function")))
    assert (raised.value.operation, raised.value.value) == ("w", "in a function")
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_schema_classes_are_queryables_not_functions(repo: Repo) -> None:
    await repo.insert(Weather(city="a"))
    changes = await repo.transaction(
        Multi.new() | Multi.all("all", Weather) | Multi.exists("any", Weather) | Multi.delete_all("gone", Weather)
    )
    assert [w.city for w in changes["all"]] == ["a"] and changes["any"] is True and changes["gone"] == (1, None)
    with pytest.raises(ArgumentError, match="the class"):
        Multi.insert("w", Weather)


async def test_another_repos_rollback_is_not_caught(repo: Repo, database_url: str, admin: asyncpg.Connection) -> None:
    other = Repo(database_url, pool_size=2)
    async with other:
        async with other.transaction() as tx:
            await other.insert(Weather(city="other"))
            with pytest.raises(Rollback):
                await repo.transaction(Multi.new() | Multi.run("x", lambda r, ch: other.rollback(5)))
            with pytest.raises(Rollback):
                await repo.transaction(lambda: other.rollback(6))
            other.rollback(7)
        assert tx.rolled_back and tx.value == 7
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_nested_merges_cannot_reuse_a_name(repo: Repo) -> None:
    def inner(changes: dict[str, Any]) -> Multi:
        nested: Multi = Multi.new() | Multi.merge(lambda c: Multi.new() | Multi.put("x", "nested"))
        return nested

    with pytest.raises(ArgumentError, match="found in both: 'x'"):
        await repo.transaction(Multi.new() | Multi.merge(inner) | Multi.put("x", "outer"))


async def test_inspect_only_a_single_name_and_retry_must_not_be_negative(repo: Repo) -> None:
    printed: list[Any] = []
    await repo.transaction(Multi.new() | Multi.put("answer", 42) | Multi.inspect(only="answer", printer=printed.append))
    assert printed == [{"answer": 42}]
    with pytest.raises(ArgumentError, match="use 0 or more"):
        repo.transaction(Multi.new(), retry=-1)


async def test_insert_or_update_follows_the_struct_state(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="action already set to 'delete' when trying to insert_or_update"):
        Multi.insert_or_update("x", Changeset(data=Weather(), action="delete"))
    bad = cast(Weather(), {"temp_lo": "x"}, ["temp_lo"])
    with pytest.raises(MultiError) as raised:
        await repo.transaction(Multi.new() | Multi.insert_or_update("x", bad))
    assert raised.value.value.action == "insert"


async def test_insert_all_with_rows_or_a_function_of_the_changes(repo: Repo, admin: asyncpg.Connection) -> None:
    m = (
        Multi.new()
        | Multi.insert("post", Post(title="parent"))
        | Multi.insert_all("cities", Weather, [{"city": "A"}, {"city": "B"}])
        | Multi.insert_all(
            "named",
            Weather,
            lambda ch: [{"city": f"{ch['post'].title}-{i}"} for i in range(2)],
            returning=["city"],
        )
        | Multi.insert_all("raw", "weather", [{"city": "C", "temp_lo": 1}], on_conflict="nothing")
    )
    changes = await repo.transaction(m)
    assert changes["cities"] == (2, None)
    count, returned = changes["named"]
    assert count == 2 and [w.city for w in returned] == ["parent-0", "parent-1"]
    assert changes["raw"] == (1, None)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 5


async def test_a_failing_insert_all_rolls_back_the_multi(repo: Repo, admin: asyncpg.Connection) -> None:
    m = (
        Multi.new()
        | Multi.insert_all("first", User, [{"email": "a@x"}, {"email": "b@x"}], timestamps=True)
        | Multi.insert_all("dup", User, [{"email": "a@x"}], timestamps=True)
    )
    with pytest.raises(MultiError) as info:
        await repo.transaction(m)
    assert info.value.operation == "dup" and info.value.changes == {"first": (2, None)}
    assert await admin.fetchval("SELECT count(*) FROM users") == 0
    with pytest.raises(ArgumentError, match="unknown field"):  # bad rows: refused, the Multi raises
        await repo.transaction(Multi.new() | Multi.insert_all("bad", Weather, [{"city": "a"}, {"town": "b"}]))
    with pytest.raises(ArgumentError, match="expected 3 argument"):
        Multi.new() | Multi.insert_all("missing", Weather)
