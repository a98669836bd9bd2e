"""The pool: no reset round trip for clean connections, resets when needed, timeouts, recovery."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.errors import PoolTimeoutError, StatementTimeoutError
from tests._pg import pg_pool

from .._wait import eventually, statement_running
from ..schemas import Weather

pytestmark = pytest.mark.no_sandbox  # real commits and connections


async def backend_query(admin: asyncpg.Connection, pid: int) -> str:
    q: str = await admin.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
    return q


async def test_release_of_a_clean_connection_sends_nothing(database_url: str, admin: asyncpg.Connection) -> None:
    async with Repo(database_url, pool_size=1) as repo:
        w = await repo.insert(Weather(city="x"))
        await repo.get(Weather, w.id)
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        before = repo.pool_stats()["resets"]
        await repo.get(Weather, w.id)
        await repo.get(Weather, w.id)
        # the last statement the backend saw is our SELECT: no reset query followed it
        assert (await backend_query(admin, pid)).startswith('SELECT w0."id"')
        assert repo.pool_stats()["resets"] == before
        assert repo.pool_stats()["opened"] == 1


async def test_raw_sql_session_state_is_reset_before_reuse(database_url: str) -> None:
    async with Repo(database_url, pool_size=1) as repo:
        await repo.query("SET search_path TO archive")
        assert repo.pool_stats()["resets"] == 1
        r = await repo.query("SHOW search_path")
        assert r.rows[0][0] != "archive"


async def test_connection_left_in_a_transaction_is_rolled_back(database_url: str, admin: asyncpg.Connection) -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
    try:
        async with Repo(database_url, pool_size=1) as repo:
            await repo.query("BEGIN")
            await repo.query("CREATE TEMP TABLE IF NOT EXISTS t_marker (x int)")
            # BEGIN's connection was rolled back on release, so the next statement ran outside a transaction
            r = await repo.query(
                "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
                "AND datname = current_database()"
            )
            assert r.rows[0][0] == 0
            assert repo.pool_stats()["in_use"] == 0
    finally:
        loop.set_exception_handler(None)
    assert loop_errors == []  # asyncecto rolled back itself; asyncpg never had to


async def test_pool_timeout_when_every_connection_is_busy(database_url: str, admin: asyncpg.Connection) -> None:
    async with Repo(database_url, pool_size=1, pool_timeout=0.2) as repo:
        await admin.execute("SELECT pg_advisory_lock(1821)")  # the busy query waits for it until we let go
        busy = asyncio.create_task(repo.query("SELECT pg_advisory_xact_lock(1821)"))
        try:
            await statement_running(admin, "SELECT pg_advisory_xact_lock(1821)")
            with pytest.raises(PoolTimeoutError) as info:
                await repo.all(Weather)
        finally:
            await admin.execute("SELECT pg_advisory_unlock(1821)")
        assert isinstance(info.value, TimeoutError) and info.value.pool_size == 1
        await busy
        assert (await repo.query("SELECT 1")).rows == [(1,)]  # a waiter succeeds once the holder is done
        assert repo.pool_stats()["in_use"] == 0


async def test_waiters_get_connections_in_turn(database_url: str) -> None:
    async with Repo(database_url, pool_size=2, pool_timeout=5) as repo:
        results = await asyncio.gather(*(repo.query("SELECT $1::int", [i]) for i in range(20)))
        assert [r.rows[0][0] for r in results] == list(range(20))
        stats = repo.pool_stats()
        assert stats["size"] <= 2 and stats["in_use"] == 0


async def test_killed_idle_connection_is_replaced_silently(database_url: str, admin: asyncpg.Connection) -> None:
    async with Repo(database_url, pool_size=2) as repo:
        await asyncio.gather(repo.query("SELECT pg_sleep(0.05)"), repo.query("SELECT pg_sleep(0.05)"))
        pids = [
            r["pid"]
            for r in await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        ]
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            return not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids)

        await eventually(gone, "the killed backends gone")
        for i in range(5):
            assert (await repo.query("SELECT $1::int", [i])).rows == [(i,)]


async def test_cancelled_query_returns_its_connection(database_url: str, admin: asyncpg.Connection) -> None:
    async with Repo(database_url, pool_size=1) as repo:
        task = asyncio.create_task(repo.query("SELECT pg_sleep(5)"))
        await statement_running(admin, "SELECT pg_sleep(5)")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert repo.pool_stats()["in_use"] == 0
        assert (await repo.query("SELECT 1")).rows == [(1,)]
        active = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active' "
            "AND datname = current_database()"
        )
        assert active == 0


async def test_repo_timeout_is_enforced_by_the_server(database_url: str) -> None:
    async with Repo(database_url, pool_size=1, timeout=0.2) as repo:
        with pytest.raises(StatementTimeoutError) as info:
            await repo.query("SELECT pg_sleep(2)")
        assert info.value.sqlstate == "57014" and isinstance(info.value, TimeoutError)
        assert (await repo.query("SELECT 1")).rows == [(1,)]  # the connection is still good


async def test_per_call_timeout_cancels_on_the_client(database_url: str) -> None:
    async with Repo(database_url, pool_size=1) as repo:
        started = asyncio.get_running_loop().time()
        with pytest.raises(StatementTimeoutError):
            await repo.query("SELECT pg_sleep(3)", timeout=0.2)
        assert asyncio.get_running_loop().time() - started < 2
        assert (await repo.query("SELECT 1")).rows == [(1,)]


async def test_caller_cancelled_during_reset_loses_no_connection(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_reset = asyncpg.Connection.reset
    resetting = asyncio.Event()

    async def slow_reset(self: asyncpg.Connection, *, timeout: float | None = None) -> None:
        resetting.set()
        await asyncio.sleep(0.3)
        await real_reset(self, timeout=timeout)

    monkeypatch.setattr(asyncpg.Connection, "reset", slow_reset)
    async with Repo(database_url, pool_size=1, pool_timeout=3) as repo:
        task = asyncio.create_task(repo.query("SELECT 1"))  # raw SQL: reset on release
        await resetting.wait()
        task.cancel()  # the caller gives up while its connection is being reset
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await repo.query("SELECT 2")).rows == [(2,)]  # the reset finished and the slot came back
        stats = repo.pool_stats()
        assert stats["terminated"] == 0 and stats["size"] == 1


async def test_a_failed_open_wakes_a_waiter(database_url: str) -> None:
    async with Repo(database_url, pool_size=2, pool_timeout=3) as repo:
        pool = pg_pool(repo)
        real_connect = pool._connect
        calls = 0
        opening = asyncio.Event()

        async def flaky_connect() -> object:
            nonlocal calls
            calls += 1
            if calls == 1:
                opening.set()
                await asyncio.sleep(0.2)  # the scenario: an open that takes a while, then fails
                raise OSError("connection refused (simulated)")
            return await real_connect()

        pool._connect = flaky_connect
        held = await pool.acquire()  # the one already open
        failing = asyncio.create_task(pool.acquire())  # opens the second: fails after 0.2 s
        await opening.wait()
        started = asyncio.get_running_loop().time()
        waiter = asyncio.create_task(pool.acquire())  # pool full (1 held + 1 opening): waits
        with pytest.raises(OSError):
            await failing
        conn = await waiter
        assert asyncio.get_running_loop().time() - started < 1.5  # woken, not timed out after 3 s
        await pool.release(conn)
        await pool.release(held)


async def test_per_call_timeout_longer_than_the_repo_default(database_url: str) -> None:
    async with Repo(database_url, pool_size=1, timeout=0.3) as repo:
        assert (await repo.query("SELECT pg_sleep(0.6), 1", timeout=2)).rows[0][1] == 1
        assert (await repo.query("SELECT pg_sleep(0.6), 2", timeout=None)).rows[0][1] == 2
        # the connection's own default came back after the call
        assert (await repo.query("SHOW statement_timeout")).rows == [("300ms",)]
        with pytest.raises(StatementTimeoutError):
            await repo.query("SELECT pg_sleep(0.6)")


async def test_a_connection_released_mid_transaction_is_rolled_back_and_counted(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    """The positive control for the cancellation tests' ``rollbacks == 0``: raw SQL that leaves
    a transaction open is rolled back by the pool on release, and counted."""
    assert repo.pool_stats()["rollbacks"] == 0
    async with repo.checkout():
        await repo.query("BEGIN")
        await repo.query("INSERT INTO weather (city) VALUES ('left open')")
    assert repo.pool_stats()["rollbacks"] == 1
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
