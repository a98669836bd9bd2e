"""Dynamic repos (Ecto's ``put_dynamic_repo/1``, ``get_dynamic_repo/0``): ``repo.using(other)``
runs every call on ``repo`` on ``other`` for the current context, over two real databases (the
run's own and a second one created here with ``storage_up`` and dropped at the end)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from asyncecto import Multi, QueryEvent, Repo, has_many, schema
from asyncecto.errors import ArgumentError, MultiError, RepoStateError
from asyncecto.query import from_, where
from asyncecto.repo import build_config
from asyncecto.testing import sandbox

from .._isolation import token


@schema("dyn_posts")
class DynPost:
    id: int | None = None
    title: str | None = None
    comments: list[DynComment] = has_many("DynComment", foreign_key="post_id")


@schema("dyn_comments")
class DynComment:
    id: int | None = None
    post_id: int | None = None
    text: str | None = None


DDL = (
    "CREATE TABLE IF NOT EXISTS dyn_posts (id bigserial PRIMARY KEY, title text)",
    "CREATE TABLE IF NOT EXISTS dyn_comments (id bigserial PRIMARY KEY, post_id bigint REFERENCES dyn_posts(id), "
    "text text)",
)
CLEAN = "TRUNCATE dyn_comments, dyn_posts RESTART IDENTITY"


async def _setup(url: str, create: bool) -> None:
    if create:
        assert await Repo(url).storage_up() == "created"
    async with Repo(url, pool_size=1) as r:
        for statement in DDL:
            await r.query(statement)


async def _teardown(main_url: str, second_url: str) -> None:
    async with Repo(main_url, pool_size=1) as r:
        await r.query("DROP TABLE IF EXISTS dyn_comments, dyn_posts")
    await Repo(second_url).storage_down()


@pytest.fixture(scope="module")
def second_url(database_url: str) -> Iterator[str]:
    """A second database on the same server, named for this run; the main one gets the same tables."""
    name = build_config(database_url).database
    other = f"dyn_{token()}_{uuid.uuid4().hex[:6]}"
    url = database_url.replace(f"/{name}", f"/{other}")
    try:
        asyncio.run(_setup(database_url, False))
        asyncio.run(_setup(url, True))
        yield url
    finally:
        asyncio.run(_teardown(database_url, url))


@pytest.fixture
async def main(database_url: str, second_url: str) -> AsyncIterator[Repo]:
    async with Repo(database_url, pool_size=3, name="main") as r:
        await r.query(CLEAN)
        yield r
        assert r.pool_stats()["in_use"] == 0


@pytest.fixture
async def tenant(second_url: str) -> AsyncIterator[Repo]:
    async with Repo(second_url, pool_size=3, name="tenant") as r:
        await r.query(CLEAN)
        yield r
        assert r.pool_stats()["in_use"] == 0


async def _db(repo: Repo) -> str:
    return str((await repo.query("SELECT current_database()")).rows[0][0])


async def _titles(repo: Repo) -> list[str | None]:
    return [p.title for p in await repo.all(from_(DynPost) | where(lambda p: p.id > 0))]


async def test_using_runs_every_call_on_the_other_repo_and_restores_on_exit(main: Repo, tenant: Repo) -> None:
    main_db, tenant_db = main.config.database, tenant.config.database
    assert main.get_dynamic_repo() is main
    with main.using(tenant) as got:
        assert got is tenant
        assert main.get_dynamic_repo() is tenant
        assert await _db(main) == tenant_db
        await main.insert(DynPost(title="in tenant"))
        assert await _titles(main) == ["in tenant"]
        assert await main.aggregate(DynPost, "count") == 1
        # the repo's own lifecycle and configuration stay its own
        assert main.name == "main" and main.config.database == main_db and main.state == "running"
    assert main.get_dynamic_repo() is main
    assert await _db(main) == main_db
    assert await _titles(main) == []
    assert await _titles(tenant) == ["in tenant"]
    async with main.using(tenant):  # the async spelling
        assert await _db(main) == tenant_db
    assert await _db(main) == main_db


async def test_put_dynamic_repo_returns_the_previous_one(main: Repo, tenant: Repo) -> None:
    async def in_a_task() -> None:  # its own context: what it puts is gone when it ends
        assert main.put_dynamic_repo(tenant) is main
        assert await _db(main) == tenant.config.database
        assert main.put_dynamic_repo(tenant) is tenant
        assert main.put_dynamic_repo(main) is tenant  # back to itself
        assert main.get_dynamic_repo() is main
        assert await _db(main) == main.config.database
        main.put_dynamic_repo(tenant)

    await asyncio.create_task(in_a_task())
    assert main.get_dynamic_repo() is main


async def test_nesting_and_exceptions_restore_the_repo_in_effect(main: Repo, tenant: Repo) -> None:
    with main.using(tenant):
        with main.using(main):
            assert await _db(main) == main.config.database
            with main.using(tenant):
                assert main.get_dynamic_repo() is tenant
            assert main.get_dynamic_repo() is main
        assert main.get_dynamic_repo() is tenant
        with pytest.raises(RuntimeError, match="boom"), main.using(main):
            raise RuntimeError("boom")
        assert main.get_dynamic_repo() is tenant
    assert main.get_dynamic_repo() is main
    scope = main.using(tenant)
    with scope, pytest.raises(ArgumentError, match="already entered"), scope:
        pass
    assert main.get_dynamic_repo() is main


async def test_two_tasks_with_different_dynamic_repos_at_once(main: Repo, tenant: Repo) -> None:
    both = anyio.Event()
    arrived = 0
    seen: dict[str, list[str]] = {"main": [], "tenant": []}

    async def worker(label: str, target: Repo) -> None:
        nonlocal arrived
        with main.using(target):
            for _ in range(5):
                seen[label].append(await _db(main))
                arrived += 1
                if arrived == 2:
                    both.set()
                await both.wait()  # both tasks are inside their blocks together
                async with anyio.create_task_group() as tg:  # spawned tasks inherit the dynamic repo
                    tg.start_soon(lambda: _check(target))

    async def _check(target: Repo) -> None:
        assert main.get_dynamic_repo() is target
        assert await _db(main) == target.config.database

    outside = asyncio.create_task(asyncio.sleep(0))  # spawned before: never sees a dynamic repo
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "tenant", tenant)
        tg.start_soon(worker, "main", main)
    await outside
    assert seen == {"main": [main.config.database] * 5, "tenant": [tenant.config.database] * 5}


async def test_transactions_rollback_and_multi_go_to_the_dynamic_repo(main: Repo, tenant: Repo) -> None:
    with main.using(tenant):
        async with main.transaction():
            assert main.in_transaction() and tenant.in_transaction()
            await main.insert(DynPost(title="kept"))
        async with main.transaction() as tx:
            await main.insert(DynPost(title="rolled back"))
            main.rollback("undo")
        assert tx.rolled_back and tx.value == "undo"

        async def body(r: Repo) -> str:
            await r.insert(DynPost(title="fn"))
            return await _db(r)

        assert await main.transaction(body) == tenant.config.database

        async def note(r: Repo, changes: dict[str, Any]) -> str:
            return await _db(r)

        changes = await main.transaction(
            Multi.new() | Multi.insert("post", DynPost(title="multi")) | Multi.run("db", note)
        )
        assert changes["db"] == tenant.config.database

        async def refuse(r: Repo, changes: dict[str, Any]) -> None:
            main.rollback("no")  # through the calling repo: the Multi's rollback all the same

        with pytest.raises(MultiError) as info:
            await main.transaction(Multi.new() | Multi.insert("p", DynPost(title="never")) | Multi.run("r", refuse))
        assert info.value.operation == "r" and info.value.value == "no"
    assert sorted(map(str, await _titles(tenant))) == ["fn", "kept", "multi"]
    assert await _titles(main) == []


async def test_preload_stream_insert_all_and_bulk_calls_go_to_the_dynamic_repo(main: Repo, tenant: Repo) -> None:
    with main.using(tenant):
        count, posts = await main.insert_all(DynPost, [{"title": "a"}, {"title": "b"}], returning=True)
        assert count == 2 and posts is not None
        await main.insert_all(DynComment, [{"post_id": posts[0].id, "text": "c1"}, {"post_id": posts[1].id}])
        loaded = await main.preload(await main.all(from_(DynPost) | where(lambda p: p.id > 0)), "comments")
        assert sorted(len(p.comments) for p in loaded) == [1, 1]
        async with main.transaction():
            assert [p.title async for p in main.stream(from_(DynPost), max_rows=1)] == ["a", "b"]
        assert (await main.update_all(DynPost, set={"title": "z"}))[0] == 2
        assert await main.exists(from_(DynPost) | where(title="z"))
        assert (await main.delete_all(DynComment))[0] == 2
    assert await main.aggregate(DynPost, "count") == 0
    assert await tenant.aggregate(DynPost, "count") == 2


async def test_telemetry_of_dynamic_calls_reaches_the_dynamic_repos_handlers(main: Repo, tenant: Repo) -> None:
    mine: list[QueryEvent] = []
    theirs: list[QueryEvent] = []
    main.telemetry.attach(mine.append)
    tenant.telemetry.attach(theirs.append)
    with main.using(tenant):
        await main.all(DynPost)
    await main.telemetry.flush()
    await tenant.telemetry.flush()
    assert [e.repo for e in theirs] == ["tenant"] and mine == []


async def test_a_sandbox_on_the_dynamic_repo_holds_the_calls_made_through_the_repo(main: Repo, tenant: Repo) -> None:
    async with sandbox(tenant):
        with main.using(tenant):
            await main.insert(DynPost(title="sandboxed"))
            assert await _titles(main) == ["sandboxed"]
    assert await _titles(tenant) == []


async def test_a_non_repo_a_stopped_repo_and_a_read_only_one_are_refused(
    main: Repo, tenant: Repo, second_url: str
) -> None:
    with pytest.raises(ArgumentError, match="expects a Repo, got 42"):
        main.using(42)
    with pytest.raises(ArgumentError, match="expects a Repo"):
        main.put_dynamic_repo("postgres://localhost/other")
    stopped = Repo(second_url, pool_size=1)
    with pytest.raises(RepoStateError, match=r"dynamic repo.*repo is new"):
        main.using(stopped)
    async with stopped:
        with main.using(stopped):
            pass
    with pytest.raises(RepoStateError, match="repo is closed"):
        main.put_dynamic_repo(stopped)
    assert main.get_dynamic_repo() is main
    async with Repo(second_url, pool_size=1, read_only=True) as ro:
        with pytest.raises(ArgumentError, match=r"read-only repo .* cannot be the dynamic repo"):
            main.using(ro)


async def test_a_dynamic_repo_stopped_while_in_effect_refuses_calls_by_its_state(main: Repo, second_url: str) -> None:
    other = Repo(second_url, pool_size=1, name="short-lived")
    await other.start()
    with main.using(other):
        assert await _db(main) == other.config.database
        await other.stop()
        with pytest.raises(RepoStateError, match="repo is closed"):
            await main.all(DynPost)
    assert await _db(main) == main.config.database


async def test_the_repo_never_started_can_route_to_running_ones(database_url: str, tenant: Repo) -> None:
    template = Repo(database_url)  # Ecto's pattern: a repo module used only through dynamic repos
    with template.using(tenant):
        assert await _db(template) == tenant.config.database
    with pytest.raises(RepoStateError, match="repo is new"):
        await template.all(DynPost)
