"""``repo.tenant(id)`` with PostgreSQL row-level security, for real: a database of its own with the
example migration (``examples/tenants``) applied by the owner, and a login role of its own (not a
superuser, so the policy applies to it) that the repo under test connects as. Both are dropped at
the end. Also the ``prepare_query`` pattern for a tenant or soft-delete filter with an opt-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

import asyncecto.migration
from asyncecto import Multi, QueryEvent, Repo, schema
from asyncecto.changeset import change
from asyncecto.errors import ArgumentError, DatabaseError, MultiError, StaleEntryError
from asyncecto.query import Query, from_, is_nil, where
from asyncecto.repo import build_config
from asyncecto.testing import sandbox

from .._isolation import token

MIGRATION = Path(__file__).resolve().parents[2] / "examples" / "tenants" / "20261208000001_tenant_notes_rls.py"
SETTING = "SELECT current_setting('app.tenant_id', true)"


@schema("tenant_notes")
class Note:
    id: int | None = None
    tenant_id: int | None = None
    body: str | None = None
    deleted_at: dt.datetime | None = None


class Urls:
    def __init__(self, owner: str, app: str, role: str) -> None:
        self.owner, self.app, self.role = owner, app, role


async def _setup(owner_url: str, role: str) -> None:
    assert await Repo(owner_url).storage_up() == "created"
    async with Repo(owner_url, pool_size=2, log=False) as owner:
        assert await asyncecto.migration.up(owner, 20261208000001, MIGRATION, log=False) == "ok"
        await owner.query(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        await owner.query(f'GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_notes TO "{role}"')
        await owner.query(f'GRANT USAGE ON SEQUENCE tenant_notes_id_seq TO "{role}"')


async def _teardown(owner_url: str, role: str) -> None:
    await Repo(owner_url).storage_down()  # the role's grants go with the database (also after a failed setup)
    cfg = build_config(owner_url)
    conn = await asyncpg.connect(**build_config(owner_url.replace(f"/{cfg.database}", "/postgres")).dsn_kwargs())
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def urls(database_url: str) -> Iterator[Urls]:
    cfg = build_config(database_url)
    suffix = f"{token()}_{uuid.uuid4().hex[:6]}"  # roles are per server: unique per run
    owner_url = database_url.replace(f"/{cfg.database}", f"/rls_{suffix}")
    role = f"rls_app_{suffix}"
    app_url = owner_url.replace(f"://{cfg.user}@", f"://{role}@")
    assert app_url != owner_url
    try:
        asyncio.run(_setup(owner_url, role))
        yield Urls(owner_url, app_url, role)
    finally:
        asyncio.run(_teardown(owner_url, role))


@pytest.fixture
async def owner(urls: Urls) -> AsyncIterator[Repo]:
    """The table's owner, a superuser: not subject to the policy (seeds and checks the rows)."""
    async with Repo(urls.owner, pool_size=2, log=False) as r:
        await r.query("TRUNCATE tenant_notes RESTART IDENTITY")
        await r.insert_all(
            Note,
            [
                {"tenant_id": 1, "body": "one-a"},
                {"tenant_id": 1, "body": "one-b"},
                {"tenant_id": 2, "body": "two-a"},
            ],
        )
        yield r


@pytest.fixture
async def repo(urls: Urls, owner: Repo) -> AsyncIterator[Repo]:
    """The application's repo, connected as the ordinary role; one connection, so every call
    reuses the connection an earlier tenant's transaction ran on."""
    async with Repo(urls.app, pool_size=1) as r:
        assert (await r.query("SELECT current_user")).rows[0][0] == urls.role
        yield r
        assert r.pool_stats()["in_use"] == 0
        await _no_setting_left(r)
    idle = await owner.query(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'",
        [urls.role],
    )
    assert idle.rows[0][0] == 0


async def _no_setting_left(r: Repo) -> None:
    """Outside any tenant block the pooled connection holds no tenant (empty, or never set)."""
    assert (await r.query(SETTING)).rows[0][0] in (None, "")


async def _bodies(r: Repo) -> list[str]:
    return sorted(str(n.body) for n in await r.all(Note))


async def test_a_tenant_reads_only_its_rows_even_with_hand_written_sql(repo: Repo, owner: Repo) -> None:
    two = await owner.get_by_or_raise(Note, body="two-a")
    async with repo.tenant(1) as given:
        assert given == 1 and repo.current_tenant() == 1
        assert await _bodies(repo) == ["one-a", "one-b"]
        raw = await repo.query("SELECT body FROM tenant_notes ORDER BY body")
        assert raw.rows == [("one-a",), ("one-b",)]
        assert (await repo.query("SELECT count(*) FROM tenant_notes WHERE tenant_id = 2")).rows == [(0,)]
        assert await repo.get(Note, two.id) is None
        assert await repo.aggregate(Note, "count") == 2
        assert not await repo.exists(from_(Note) | where(tenant_id=2))
        assert (await repo.query(SETTING)).rows == [("1",)]
    async with repo.tenant(2):
        assert await _bodies(repo) == ["two-a"]
    assert repo.current_tenant() is None


async def test_outside_the_block_nothing_is_visible_and_no_setting_is_left(repo: Repo) -> None:
    async with repo.tenant(1):
        assert len(await repo.all(Note)) == 2
    assert await repo.all(Note) == []
    assert (await repo.query("SELECT count(*) FROM tenant_notes")).rows == [(0,)]
    await _no_setting_left(repo)
    async with repo.tenant(1), repo.tenant(None):  # an explicit block without a tenant
        assert await repo.all(Note) == []


async def test_a_tenant_cannot_write_another_tenants_rows(repo: Repo, owner: Repo) -> None:
    two = await owner.get_by_or_raise(Note, body="two-a")
    async with repo.tenant(1):
        mine = await repo.insert(Note(tenant_id=1, body="one-c"))
        with pytest.raises(DatabaseError) as refused:
            await repo.insert(Note(tenant_id=2, body="smuggled"))
        assert refused.value.sqlstate == "42501"  # new row violates row-level security policy
        with pytest.raises(DatabaseError):
            await repo.query("INSERT INTO tenant_notes (tenant_id, body) VALUES (2, 'raw')")
        with pytest.raises(StaleEntryError):
            await repo.update(change(two, body="hijacked"))
        with pytest.raises(StaleEntryError):
            await repo.delete(two)
        assert (await repo.update_all(Note, set={"body": "touched"}))[0] == 3  # its own three
        assert (await repo.query("UPDATE tenant_notes SET body = 'raw' WHERE tenant_id = 2")).num_rows == 0
        assert (await repo.query("DELETE FROM tenant_notes WHERE tenant_id = 2")).num_rows == 0
        await repo.delete(mine)
        assert (await repo.delete_all(Note))[0] == 2
    assert await owner.get_by_or_raise(Note, id=two.id) == two  # untouched
    assert await owner.aggregate(Note, "count") == 1


async def test_transactions_set_the_tenant_once_right_after_begin(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    async with repo.tenant(2), repo.transaction():
        assert await _bodies(repo) == ["two-a"]
        await repo.insert(Note(tenant_id=2, body="two-b"))
        assert await _bodies(repo) == ["two-a", "two-b"]
    await repo.telemetry.flush()
    sqls = [e.sql.split(" ")[0] if e.sql != "SELECT set_config($1, $2, true)" else "set_config" for e in events]
    assert sqls == ["BEGIN", "set_config", "SELECT", "INSERT", "SELECT", "COMMIT"]
    assert events[1].params == ("app.tenant_id", "2")
    events.clear()
    async with repo.tenant(2):  # outside a transaction: a short one around the statement
        await repo.all(Note)
    await repo.telemetry.flush()
    assert [e.sql.split(" ")[0] for e in events] == ["BEGIN", "SELECT", "SELECT", "COMMIT"]


async def test_a_transaction_begun_outside_the_block_and_nested_tenants(repo: Repo) -> None:
    async with repo.transaction():
        assert await repo.all(Note) == []
        async with repo.tenant(1):
            assert len(await repo.all(Note)) == 2
            async with repo.tenant(2), repo.transaction():  # a savepoint holding tenant 2
                assert await _bodies(repo) == ["two-a"]
            assert len(await repo.all(Note)) == 2  # tenant 1 again
            with pytest.raises(RuntimeError):
                async with repo.tenant(2), repo.transaction():
                    assert await _bodies(repo) == ["two-a"]
                    raise RuntimeError("rolled back to the savepoint")
            assert await _bodies(repo) == ["one-a", "one-b"]
        assert await repo.all(Note) == []  # the block ended inside the transaction
        assert (await repo.query(SETTING)).rows[0][0] == ""


async def test_multi_insert_all_stream_and_checkout_run_as_the_tenant(repo: Repo, owner: Repo) -> None:
    async def count(r: Repo, changes: Mapping[str, Any]) -> int:
        return int((await r.query("SELECT count(*) FROM tenant_notes")).rows[0][0])

    async with repo.tenant(1):
        changes = await repo.transaction(
            Multi.new() | Multi.insert("note", Note(tenant_id=1, body="one-m")) | Multi.run("count", count)
        )
        assert changes["count"] == 3
        with pytest.raises(MultiError) as failed:
            await repo.transaction(Multi.new() | Multi.insert("other", Note(tenant_id=2, body="no")))
        assert isinstance(failed.value.value, DatabaseError)
        assert (await repo.insert_all(Note, [{"tenant_id": 1, "body": f"bulk{i}"} for i in range(3)]))[0] == 3
        with pytest.raises(DatabaseError):
            await repo.insert_all(Note, [{"tenant_id": 1, "body": "ok"}, {"tenant_id": 2, "body": "no"}])
        async with repo.transaction():
            streamed = [n.tenant_id async for n in repo.stream(from_(Note), max_rows=2)]
        assert streamed == [1] * 6
        async with repo.checkout():
            assert len(await repo.all(Note)) == 6
            assert (await repo.query(SETTING)).rows == [("1",)]
    assert await owner.aggregate(from_(Note) | where(tenant_id=2), "count") == 1


async def test_two_tasks_with_different_tenants_at_once(urls: Urls, owner: Repo) -> None:
    async with Repo(urls.app, pool_size=2) as shared:
        both = anyio.Event()
        arrived = 0
        seen: dict[int, list[list[str]]] = {1: [], 2: []}

        async def worker(tenant: int) -> None:
            nonlocal arrived
            async with shared.tenant(tenant):
                arrived += 1
                if arrived == 2:
                    both.set()
                await both.wait()
                for _ in range(3):
                    seen[tenant].append(await _bodies(shared))
                    async with shared.transaction():
                        seen[tenant].append(await _bodies(shared))

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, 1)
            tg.start_soon(worker, 2)
        assert seen == {1: [["one-a", "one-b"]] * 6, 2: [["two-a"]] * 6}
        assert shared.pool_stats()["in_use"] == 0


async def test_the_sandbox_keeps_no_tenant_past_the_block(urls: Urls, owner: Repo) -> None:
    async with Repo(urls.app, pool_size=1) as r, sandbox(r):
        async with r.tenant(1):
            await r.insert(Note(tenant_id=1, body="sandboxed"))
            assert len(await r.all(Note)) == 3
        assert await r.all(Note) == []
        assert (await r.query(SETTING)).rows[0][0] in (None, "")
    assert await owner.aggregate(Note, "count") == 3  # rolled back


# -- cancellation ----------------------------------------------------------------------------------
async def _cancelled_inside(repo: Repo, how: str, in_transaction: bool) -> None:
    started = anyio.Event()

    async def slow() -> None:
        async with repo.tenant(1):
            if in_transaction:
                async with repo.transaction():
                    await repo.all(Note)
                    started.set()
                    await repo.query("SELECT pg_sleep(30)")
            else:
                started.set()
                await repo.query("SELECT pg_sleep(30)")

    if how == "asyncio":
        task = asyncio.create_task(slow())
        await started.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    elif how == "anyio_move_on":
        with anyio.move_on_after(0.3) as scope:
            await slow()
        assert scope.cancelled_caught
    else:
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await started.wait()
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    assert repo.pool_stats()["in_use"] == 0
    assert repo.current_tenant() is None
    await _no_setting_left(repo)
    assert await repo.all(Note) == []


@pytest.mark.parametrize("in_transaction", [False, True], ids=["statement", "transaction"])
@pytest.mark.parametrize("how", ["asyncio", "anyio_move_on", "anyio_cancel_scope"])
async def test_cancelling_inside_a_tenant_block_leaves_no_connection_nor_setting(
    repo: Repo, how: str, in_transaction: bool
) -> None:
    await _cancelled_inside(repo, how, in_transaction)


# -- refusals --------------------------------------------------------------------------------------
def test_bad_tenant_ids_and_setting_names_are_refused() -> None:
    r = Repo("postgres://localhost/never")
    for bad in (True, 1.5, b"1", [1]):
        with pytest.raises(ArgumentError, match="tenant's id as an int, a str or a UUID"):
            r.tenant(bad)
    with pytest.raises(ArgumentError, match="NUL"):
        r.tenant("a\x00b")
    for name in ("tenant_id", "app.", "app.tenant-id", "1app.x", 5):
        with pytest.raises(ArgumentError, match="custom setting name with a prefix"):
            r.tenant(1, setting=name)  # type: ignore[arg-type]
    scope = r.tenant(uuid.UUID(int=7), setting="myapp.account")
    with scope:
        assert r.current_tenant() == uuid.UUID(int=7)
        with pytest.raises(ArgumentError, match="already entered"), scope:
            pass
    assert r.current_tenant() is None


async def test_another_setting_name(repo: Repo) -> None:
    async with repo.tenant("acme", setting="myapp.account"):
        assert (await repo.query("SELECT current_setting('myapp.account', true)")).rows == [("acme",)]
        assert await repo.all(Note) == []  # the policy reads app.tenant_id
    assert (await repo.query("SELECT current_setting('myapp.account', true)")).rows[0][0] in (None, "")


# -- the prepare_query pattern: a tenant filter and a soft-delete filter, each with an opt-out -----
class ScopedRepo(Repo):
    """Every query on ``Note`` gets the current tenant's filter (``all_tenants=True`` opts out) and
    hides soft-deleted rows (``with_deleted=True`` opts out)."""

    query_options = frozenset({"all_tenants", "with_deleted"})

    def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> tuple[Query[Any], Any]:
        if query.source.schema is not Note:
            return query, options
        if not options.get("all_tenants"):
            tenant = self.current_tenant()
            if tenant is None:
                raise ArgumentError(f"{operation} on notes outside repo.tenant(...): pass all_tenants=True")
            query = query | where(tenant_id=tenant)
        if not options.get("with_deleted"):
            query = query | where(lambda n: is_nil(n.deleted_at))
        return query, options


async def test_prepare_query_filters_by_tenant_and_soft_delete_with_opt_outs(urls: Urls, owner: Repo) -> None:
    # the owner bypasses RLS: the filter alone scopes the queries
    await owner.update_all(from_(Note) | where(body="one-b"), set={"deleted_at": dt.datetime.now(dt.UTC)})
    async with ScopedRepo(urls.owner, pool_size=1, log=False) as scoped:
        async with scoped.tenant(1):
            assert await _bodies(scoped) == ["one-a"]
            assert sorted(str(n.body) for n in await scoped.all(Note, with_deleted=True)) == ["one-a", "one-b"]
            assert await scoped.aggregate(Note, "count", all_tenants=True) == 2
            assert len(await scoped.all(Note, all_tenants=True, with_deleted=True)) == 3
            assert (await scoped.update_all(Note, set={"body": "x"}))[0] == 1
        with pytest.raises(ArgumentError, match="all_tenants=True"):
            await scoped.all(Note)
        assert len(await scoped.all(Note, all_tenants=True, with_deleted=True)) == 3
