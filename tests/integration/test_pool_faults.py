"""Pool faults (issue 17): dead connections leave at once, cancellations are drained before reuse,
half-open links end in a named error, ``stop()`` cancels what still runs on the server, a server
refusing connections makes callers wait, and a reused connection carries no session state.

Every test opens its own repo under a unique ``application_name`` and only ever terminates the
backends that name shows (never another session of the shared server).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.errors import (
    AsyncEctoError,
    ConnectionLostError,
    DatabaseUnavailableError,
    PoolTimeoutError,
    StatementTimeoutError,
)
from asyncecto.query import fragment, from_, select
from asyncecto.repo import build_config
from asyncecto.repo._core import DEFAULT
from tests._gc import new_objects_only
from tests._pg import pg_pool

from .._cancellers import CANCELLERS, cancel_with
from .._proxy import PgProxy, upstream_of, url_through
from ..conftest import APP_NAME
from ..schemas import Weather

pytestmark = pytest.mark.no_sandbox  # real connections, killed and cancelled


def _app(tag: str) -> str:
    return f"{APP_NAME}-p17-{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the loop's exception handler (an unretrieved future, a task that died): nothing may."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    with new_objects_only():  # the collection walks what the test allocated, not the whole heap
        yield seen
        with warnings.catch_warnings(record=True) as caught:  # an asyncpg connection left unclosed says so here
            warnings.simplefilter("always")
            gc.collect()
    await asyncio.sleep(0)  # callbacks the collection scheduled
    loop.set_exception_handler(None)
    assert seen == [], seen
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def _poll(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Wait until ``check()`` holds (polled every 20 ms), at most ``within`` seconds; the time it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _active(admin: asyncpg.Connection, app: str) -> list[str]:
    """Statements still running on the server for the sessions of ``app``."""
    rows = await admin.fetch("SELECT query FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", app)
    return [r["query"] for r in rows]


async def _pids(admin: asyncpg.Connection, app: str) -> list[int]:
    return [r["pid"] for r in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)]


@contextlib.asynccontextmanager
async def _proxied(database_url: str, app: str, **options: Any) -> AsyncIterator[tuple[Repo, PgProxy]]:
    async with PgProxy(upstream_of(database_url)) as proxy:
        repo = Repo(url_through(database_url, port=proxy.port), server_settings={"application_name": app}, **options)
        async with repo:
            try:
                yield repo, proxy
            finally:
                proxy.pass_through()


# -- dead connections ----------------------------------------------------------------------------
async def test_issue17_dead_connections_leave_the_pool_at_once(database_url: str, admin: asyncpg.Connection) -> None:
    """Bullet 4: a connection the server ends is dropped as soon as asyncpg sees it close, counted ``lost``
    (no upkeep runs here: only the termination listener can do it); one in use fails with the server's
    reason and is dropped on its return."""
    app = _app("dead")
    adapter = PostgresAdapter(
        build_config(database_url, pool_size=3, server_settings={"application_name": app}).connection_settings()
    )
    pool = adapter.pool
    try:
        conns = [await pool.acquire() for _ in range(3)]
        for conn in conns[1:]:
            await pool.release(conn)
        busy = conns[0]
        assert (pool.total, pool.idle) == (3, 2)
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)

        async def idle_gone() -> bool:
            return pool.idle == 0

        await _poll(idle_gone, 5, "the killed idle connections left the pool")
        assert pool.total == 1  # the one in use stays counted until it comes back
        with pytest.raises(ConnectionLostError, match="administrator command"):
            await busy.fetch("SELECT 1", [], None)
        await pool.release(busy)
        stats = pool.stats.as_dict()
        assert (pool.total, pool.in_use, stats["lost"], stats["terminated"]) == (0, 0, 3, 0), stats
        conn = await pool.acquire()  # and the pool opens afresh
        assert await conn.fetch("SELECT 1", [], None) == [(1,)]
        await pool.release(conn)
    finally:
        await pool.close(1.0)
    assert pool.stats.lost == 3  # closing is not counted as lost


# -- cancellations drained before reuse ----------------------------------------------------------
@pytest.mark.parametrize("flavour", CANCELLERS)
async def test_issue17_cancelled_statement_is_drained_then_reused(
    flavour: str, database_url: str, admin: asyncpg.Connection
) -> None:
    """A statement cancelled by its caller: the connection comes back only once the server acknowledged
    the cancellation (never handed on mid-cancel), then it is reused, nothing runs on the server."""
    app = _app("drain")
    async with Repo(database_url, pool_size=1, server_settings={"application_name": app}) as repo:
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        await repo.insert(Weather(city="one row"))  # for the fragment to run on
        sleep = from_(Weather) | select(lambda w: fragment("pg_sleep(5)"))
        await cancel_with(flavour, lambda: repo.all(sleep), 0.3)
        await cancel_with(flavour, lambda: repo.all(sleep), 0.3)  # the drained connection serves again

        async def whole() -> bool:
            in_use: int = repo.pool_stats()["in_use"]  # repo comes from `async with Repo(...)`: typed Any
            return in_use == 0

        await _poll(whole, 2, "the connection came back")
        assert (await repo.query("SELECT pg_backend_pid()")).rows[0][0] == pid  # drained, not terminated
        assert await _active(admin, app) == []
        stats = repo.pool_stats()
        assert (stats["terminated"], stats["cleanup_timeouts"], stats["lost"]) == (0, 0, 0), stats


@pytest.mark.parametrize("flavour", ["statement timeout", "task.cancel", "anyio.move_on_after"])
async def test_issue17_r09_unanswered_cancellation_holds_neither_caller_nor_next_borrower(
    flavour: str, database_url: str
) -> None:
    """R09 on the shared server: the link goes silent mid-statement (a proxy blackholes it, as a frozen
    backend would), so the cancellation is never acknowledged. The caller still gets its error or
    cancellation at once; the connection is drained by the pool, terminated after cleanup_timeout and
    never handed on; the next borrower gets a fresh connection."""
    app = _app("r09")
    async with _proxied(database_url, app, pool_size=1, cleanup_timeout=0.5) as (repo, proxy):
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]

        async def statement() -> None:
            await repo.query("SELECT pg_sleep(3)", timeout=0.4 if flavour == "statement timeout" else DEFAULT)

        async def silence() -> None:
            await asyncio.sleep(0.15)
            proxy.blackhole()

        silencer = asyncio.create_task(silence())
        started = time.monotonic()
        if flavour == "statement timeout":
            with pytest.raises(StatementTimeoutError):
                await statement()
        else:
            await cancel_with(flavour, statement, 0.4)
        await silencer
        elapsed = time.monotonic() - started
        assert elapsed < 0.4 + 0.5 + 1.5, elapsed  # the drain grace (0.5 s) at most, not the whole cleanup
        proxy.pass_through()
        started = time.monotonic()
        next_pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        assert time.monotonic() - started < 0.5 + 2.0
        assert next_pid != pid  # the silent connection was terminated, never reused
        stats = repo.pool_stats()
        assert stats["cleanup_timeouts"] == 1 and stats["terminated"] >= 1 and stats["in_use"] == 0, stats


@pytest.mark.parametrize("flavour", CANCELLERS)
async def test_issue17_cancelled_connect_returns_its_slot(flavour: str, database_url: str) -> None:
    """A checkout cancelled while its new connection is being opened (the link is silent) costs no slot."""
    app = _app("open")
    async with _proxied(database_url, app, pool_size=2, connect_timeout=10) as (repo, proxy):
        pool = pg_pool(repo)
        held = await pool.acquire()  # the one connection open: the next checkout must open another
        proxy.blackhole()
        await cancel_with(flavour, lambda: repo.query("SELECT 1"), 0.3)
        assert (pool._opening, pool.total, pool.in_use) == (0, 1, 1)
        proxy.pass_through()
        await pool.release(held)
        rows = await asyncio.gather(*(repo.query("SELECT pg_sleep(0.1), 1") for _ in range(4)))
        assert [r.rows[0][1] for r in rows] == [1] * 4
        assert pool.total == 2 and pool.in_use == 0


# -- half-open links -----------------------------------------------------------------------------
async def test_issue17_r08_half_open_link_ends_in_a_named_error(database_url: str) -> None:
    """R08: a statement whose answer never comes (no client timer runs for the repo's default timeout)
    is ended by the pool after timeout + cleanup_timeout, with an error that says so; then the pool
    recovers."""
    app = _app("r08")
    async with _proxied(database_url, app, pool_size=2, timeout=0.3, cleanup_timeout=0.3) as (repo, proxy):
        await repo.query("SELECT 1")
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(ConnectionLostError, match=r"no answer from the server within 0\.6s") as info:
            await repo.all(Weather)
        assert time.monotonic() - started < 0.6 + 1.0 + 2.0  # the limit, one upkeep interval, a margin
        assert info.value.query is not None and "weather" in info.value.query
        proxy.pass_through()
        assert (await repo.query("SELECT 2")).rows == [(2,)]
        stats = repo.pool_stats()
        assert stats["in_use"] == 0 and stats["terminated"] >= 1 and stats["lost"] == 0, stats


async def test_issue17_r08_lifted_timeout_is_not_taken_for_a_half_open_link(database_url: str) -> None:
    """A call that asked for a longer limit than the repo's is not cut at timeout + cleanup_timeout."""
    app = _app("r08lift")
    async with Repo(
        database_url, pool_size=1, timeout=0.2, cleanup_timeout=0.2, server_settings={"application_name": app}
    ) as repo:
        assert (await repo.query("SELECT pg_sleep(1.6), 1", timeout=5)).rows[0][1] == 1
        assert repo.pool_stats()["terminated"] == 0


# -- stop ----------------------------------------------------------------------------------------
async def test_issue17_stop_cancels_server_side_statements(database_url: str, admin: asyncpg.Connection) -> None:
    """Bullet 5: past its timeout, stop() ends the connections still in use (their holders are told why)
    and cancels their statements on the server: nothing is left running there."""
    app = _app("stop")
    repo = Repo(database_url, pool_size=3, server_settings={"application_name": app})
    await repo.start()
    try:
        await repo.insert(Weather(city="x"))  # committed before the select starts: it has a row to sleep on
        tasks = [
            asyncio.create_task(repo.query("SELECT pg_sleep(30)", timeout=None)),
            asyncio.create_task(repo.all(from_(Weather) | select(lambda w: fragment("pg_sleep(30)")))),
        ]

        async def both_running() -> bool:
            return len(await _active(admin, app)) == 2

        await _poll(both_running, 5, "both statements run")
        started = time.monotonic()
        await repo.stop(timeout=0.3)
        assert time.monotonic() - started < 0.3 + 2.0 + 1.5
        for task in tasks:
            with pytest.raises(ConnectionLostError, match=r"repo\.stop\(\).*shutdown_timeout=0\.3s"):
                await task

        async def none_running() -> bool:
            return await _active(admin, app) == []

        await _poll(none_running, 1.5, "no statement of the stopped repo runs on the server")
    finally:
        await repo.stop(timeout=0)


# -- the server refuses connections (R19) --------------------------------------------------------
@contextlib.asynccontextmanager
async def _limited_role(admin: asyncpg.Connection, limit: int) -> AsyncIterator[str]:
    role = f"p17_limit_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}")
    try:
        yield role
    finally:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
        for _ in range(100):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role):
                break
            await asyncio.sleep(0.02)
        await admin.execute(f"DROP ROLE {role}")


async def test_issue17_r19_connection_limit_makes_callers_wait(database_url: str, admin: asyncpg.Connection) -> None:
    """R19: a role allowed 2 connections, a pool of 5. Callers beyond 2 wait for a connection instead of
    failing with "too many connections"; past their timeout they get PoolTimeoutError naming the refusal
    (chained); once the limit is lifted the pool grows."""
    async with _limited_role(admin, 2) as role:
        app = _app("r19")
        url = url_through(database_url, user=role)
        async with Repo(url, pool_size=5, pool_timeout=5, server_settings={"application_name": app}) as repo:
            rows = await asyncio.gather(*(repo.query("SELECT pg_sleep(0.15), $1::int", [i]) for i in range(5)))
            assert [r.rows[0][1] for r in rows] == list(range(5))
            stats = repo.pool_stats()
            assert stats["connect_failures"] >= 1 and stats["size"] == 2 and stats["in_use"] == 0, stats

            await asyncio.sleep(1.1)  # the pool tries to grow again
            holders = [asyncio.create_task(repo.query("SELECT pg_sleep(1.2)")) for _ in range(2)]

            async def both_held() -> bool:
                return repo.pool_stats()["in_use"] == 2

            await _poll(both_held, 1.0, "both connections held")
            with pytest.raises(PoolTimeoutError, match="too many connections") as info:
                await pg_pool(repo).acquire(0.5)
            cause = info.value.__cause__
            assert isinstance(cause, DatabaseUnavailableError) and cause.sqlstate == "53300"
            await asyncio.gather(*holders)

            await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
            await asyncio.sleep(1.1)
            await asyncio.gather(*(repo.query("SELECT pg_sleep(0.3)") for _ in range(5)))
            assert repo.pool_stats()["size"] == 5


async def test_issue17_r19_no_connection_at_all_retries_until_the_timeout(
    database_url: str, admin: asyncpg.Connection
) -> None:
    """With no connection to wait for, opening is retried (with backoff) until the timeout, then the
    server's refusal is raised, named; a refusal that ends meanwhile gives the caller its connection."""
    async with _limited_role(admin, 0) as role:
        app = _app("r19zero")
        config = build_config(
            url_through(database_url, user=role), min_size=0, server_settings={"application_name": app}
        )
        pool = PostgresAdapter(config.connection_settings()).pool
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError, match="too many connections") as info:
                await pool.acquire(0.6)
            assert 0.5 < time.monotonic() - started < 0.6 + 1.5
            assert info.value.sqlstate == "53300" and pool.stats.connect_failures >= 2
            assert (pool.total, pool._opening) == (0, 0)

            async def lift() -> None:
                await asyncio.sleep(0.3)
                await admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")

            lifter = asyncio.create_task(lift())
            conn = await pool.acquire(5.0)
            await lifter
            assert await conn.fetch("SELECT 1", [], None) == [(1,)]
            await pool.release(conn)
        finally:
            await pool.close(1.0)


# -- R17: cancelled pool waiters -----------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["task.cancel", "anyio.CancelScope.cancel"])
async def test_issue17_r17_waiter_cancelled_as_the_connection_is_handed_to_it(flavour: str, database_url: str) -> None:
    """R17: the holder returns the connection and the waiter it is handed to is cancelled in the same
    tick (500 seeded rounds, 3 waiters each, others cancelled at random): the connection is never lost
    nor duplicated, no connection is opened, the same backend serves on."""
    app = _app("r17")
    rng = random.Random(17)
    async with Repo(database_url, pool_size=1, pool_timeout=5, server_settings={"application_name": app}) as repo:
        pool = pg_pool(repo)
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        opened = pool.stats.opened
        scopes: list[anyio.CancelScope] = []
        got: list[int] = []

        async def waiter() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                conn = await pool.acquire()
                got.append(conn.pid)
                assert pool.release_nowait(conn)  # no await in between: nothing can cancel us here

        for _ in range(500):
            holder = await pool.acquire()
            scopes.clear()
            got.clear()
            tasks = [asyncio.create_task(waiter()) for _ in range(3)]
            for _ in range(3):  # each waiter runs up to its wait
                await asyncio.sleep(0)
            assert len(pool._waiters) == 3
            doomed = [0] + [i for i in (1, 2) if rng.random() < 0.5]
            assert pool.release_nowait(holder)  # handed to waiter 0 …
            for i in doomed:  # … which is cancelled before it runs
                if flavour == "task.cancel":
                    tasks[i].cancel()
                else:
                    scopes[i].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert (pool.in_use, pool.total, len(pool._waiters)) == (0, 1, 0)
            assert len(got) == 3 - len(doomed)
        assert pool.stats.opened == opened
        assert (await repo.query("SELECT pg_backend_pid()")).rows[0][0] == pid


# -- R23: a reused connection is clean -----------------------------------------------------------
_STATE = (
    "SELECT pg_backend_pid(), current_setting('search_path'), current_setting('TimeZone'), "
    "current_setting('statement_timeout'), "
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
    "(SELECT count(*) FROM pg_listening_channels()), (SELECT count(*) FROM pg_cursors), "
    "to_regclass('pg_temp.p17_scratch') IS NULL"
)


async def test_issue17_r23_reused_connection_is_clean(database_url: str, admin: asyncpg.Connection) -> None:
    """R23: settings, advisory locks, LISTEN, a held cursor, a temporary table and an open transaction
    left on a connection are all gone when the same backend is checked out next."""
    app = _app("r23")
    async with Repo(database_url, pool_size=1, server_settings={"application_name": app}) as repo:
        clean = (await repo.query(_STATE)).rows[0]
        assert clean[4:6] == (0, 0) and clean[7] is True
        async with repo.checkout():
            for sql in (
                "SET search_path TO archive",
                "SET TIME ZONE 'Asia/Tokyo'",
                "SET statement_timeout = 1234",
                "SELECT pg_advisory_lock(17023)",
                "LISTEN p17_channel",
                "BEGIN",
                "DECLARE p17_cursor CURSOR WITH HOLD FOR SELECT 1",
                "COMMIT",
                "CREATE TEMP TABLE p17_scratch (x int)",
                "BEGIN",
                "INSERT INTO p17_scratch VALUES (1)",
            ):
                await repo.query(sql)
            dirty = (await repo.query(_STATE)).rows[0]
            assert dirty[1:] == ("archive", "Asia/Tokyo", "1234ms", 1, 1, clean[6] + 1, False)
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in trans%'",
                app,
            )
            == 0
        )
        assert (await repo.query(_STATE)).rows[0] == clean  # the same backend, as it was
        stats = repo.pool_stats()
        assert stats["terminated"] == 0 and stats["rollbacks"] == 1, stats


async def test_issue17_r23_session_state_set_in_a_fragment_is_reset(
    database_url: str, admin: asyncpg.Connection
) -> None:
    """A query (not raw SQL) whose fragment takes a session advisory lock or sets a session setting
    gets its connection reset on release; a plain query does not."""
    app = _app("r23frag")
    async with Repo(database_url, pool_size=1, server_settings={"application_name": app}) as repo:
        await repo.insert(Weather(city="one row"))
        resets = repo.pool_stats()["resets"]
        await repo.all(from_(Weather) | select(lambda w: w.city))
        assert repo.pool_stats()["resets"] == resets  # nothing to reset after a plain query
        await repo.all(from_(Weather) | select(lambda w: fragment("pg_try_advisory_lock(17024)")))
        await repo.all(from_(Weather) | select(lambda w: fragment("set_config('TimeZone', 'Asia/Tokyo', false)")))
        assert repo.pool_stats()["resets"] == resets + 2
        locks = await admin.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND a.application_name = $1",
            app,
        )
        assert locks == 0
        assert (await repo.query("SELECT current_setting('TimeZone')")).rows[0][0] != "Asia/Tokyo"


@pytest.mark.parametrize("flavour", ["task.cancel", "anyio.move_on_after"])
async def test_issue17_a_cut_short_statement_leaves_no_transaction_for_the_next_borrower(
    database_url: str, flavour: str
) -> None:
    """A statement cancelled mid-exchange can leave the server in the implicit transaction of its
    unfinished extended-protocol exchange while asyncpg reports the connection idle; the next
    borrower's ``BEGIN ISOLATION LEVEL SERIALIZABLE`` then failed with 25001 (a plain ``BEGIN``
    silently joined the leftover work). The release now rolls such a connection back."""
    app = _app("cut-short")
    rng = random.Random(7)
    failures: list[str] = []
    async with Repo(database_url, pool_size=1, server_settings={"application_name": app}, log=False) as repo:
        for _ in range(300):
            delay = rng.uniform(0, 0.002)
            if flavour == "task.cancel":
                task = asyncio.create_task(repo.all(from_(Weather) | select(lambda w: w.id)))
                asyncio.get_running_loop().call_later(delay, task.cancel)
                await asyncio.wait({task})
                if not task.cancelled() and task.exception() is not None:
                    failures.append(f"the read failed: {task.exception()!r}")
            else:
                with anyio.move_on_after(delay):
                    await repo.all(from_(Weather) | select(lambda w: w.id))
            try:
                async with repo.transaction(isolation="serializable"):
                    await repo.query("SELECT 1")
            except AsyncEctoError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
        assert repo.pool_stats()["in_use"] == 0
    assert failures == []
