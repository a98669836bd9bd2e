"""Failover (issue 20) against real servers: a primary with a ``pg_basebackup`` streaming standby
(``tests/_replica.py``), and pairs of private clusters made read-only with ``ALTER SYSTEM``.

- ``target_session_attrs`` picks the server libpq would: the primary for ``read-write``/``primary``,
  the standby for ``standby``/``prefer-standby``/``read-only``, whatever the order of the host list.
- Promote the standby and stop the old primary under a load of concurrent callers: the calls in
  flight on the old primary fail with ``FailoverError`` (a COMMIT in flight: ``CommitOutcomeUnknownError``,
  whose cause is one), new calls reach the promoted server within seconds without restarting the repo,
  ``transaction(fn, retry=3)`` goes through, one failover event.
- The primary turns read-only (SQLSTATE 25006): the caller gets ``FailoverError``, the pool drains the
  old server (idle connections closed, the one in use closed at its checkin) and re-targets.
- With no writable server at all, callers wait for one within the pool timeout; cancelling them
  (asyncio and anyio, five ways) leaves nothing checked out.

Definition asserted below: a call on a repo asking for a writable server (``read-write``/``primary``)
raises ``FailoverError`` when its server answered read-only (25006) or ended the session as it shut
down (57P01/57P02/57P03: a fast or immediate stop); a link lost without the server saying why stays a
plain ``ConnectionLostError``; a COMMIT in flight is ``CommitOutcomeUnknownError`` and is never retried.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseUnavailableError,
    FailoverError,
    PoolTimeoutError,
)
from asyncecto.repo import FailoverEvent

from .._cancellers import CANCELLERS, cancel_with
from .._cluster import Cluster
from .._gc import new_objects_only
from .._proxy import PgProxy
from .._replica import Replication, unavailable_reason

pytestmark = pytest.mark.no_sandbox  # private servers, stopped, promoted and made read-only

FACTOR = float(os.environ.get("ASYNCECTO_TIMING_FACTOR", "1"))
ROWS_DDL = "CREATE TABLE fo_rows (id serial PRIMARY KEY, tag text NOT NULL, port int NOT NULL)"
INSERT = "INSERT INTO fo_rows (tag, port) VALUES ($1, inet_server_port())"


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Nothing may reach the loop's exception handler (a task that died unseen, an unretrieved future),
    and no asyncpg connection may be left unclosed (its ResourceWarning at collection)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    with new_objects_only():
        yield seen
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert seen == [], seen
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def _skip_without_servers() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _url(*ports: int, target: str | None = None) -> str:
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return f"postgres://postgres@{hosts}/postgres" + (f"?target_session_attrs={target}" if target else "")


def _app() -> str:
    return f"ae-failover-{uuid.uuid4().hex[:10]}"


def _dead_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within * FACTOR:
            raise AssertionError(f"not within {within * FACTOR:.1f}s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - began


async def _port_of(repo: Repo) -> int:
    port: int = (await repo.query("SELECT inet_server_port()")).rows[0][0]
    return port


async def _true(value: bool) -> bool:
    return value


async def _whole(repo: Repo) -> bool:
    stats = repo.pool_stats()
    return stats["in_use"] == 0 and stats["size"] == stats["idle"]


async def _sessions(cluster: Cluster, app: str) -> list[str]:
    return [r["state"] for r in await cluster.activity(app)]


# --- which server a target picks ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    """A primary and one streaming standby, only read from by the tests that use it."""
    _skip_without_servers()
    rep = Replication.launch(standbys=1, max_connections=40)
    try:
        yield rep
    finally:
        rep.destroy()


@pytest.mark.parametrize("standby_first", [True, False])
@pytest.mark.parametrize(
    ("target", "on_standby"),
    [
        ("read-write", False),
        ("primary", False),
        ("standby", True),
        ("prefer-standby", True),
        ("read-only", True),
    ],
)
async def test_target_session_attrs_picks_the_server(
    replication: Replication, target: str, on_standby: bool, standby_first: bool
) -> None:
    primary, standby = replication.primary.port, replication.standbys[0].port
    ports = (standby, primary) if standby_first else (primary, standby)
    async with Repo(_url(*ports, target=target), pool_size=2) as repo:
        rows = (await repo.query("SELECT inet_server_port(), pg_is_in_recovery()")).rows
        assert rows == [(standby if on_standby else primary, on_standby)]
        assert repo.pool_stats()["failovers"] == 0


async def test_any_takes_the_first_that_answers_and_dead_hosts_are_skipped(replication: Replication) -> None:
    primary, standby = replication.primary.port, replication.standbys[0].port
    async with Repo(_url(_dead_port(), standby, primary, target="any"), pool_size=1) as repo:
        assert await _port_of(repo) == standby
    async with Repo(_url(_dead_port(), standby, primary, target="read-write"), pool_size=1) as repo:
        assert await _port_of(repo) == primary
    async with Repo(_url(primary, _dead_port(), target="prefer-standby"), pool_size=1) as repo:
        assert await _port_of(repo) == primary  # no standby answers: any server


async def test_no_server_of_the_wanted_kind_names_the_target_and_the_hosts(replication: Replication) -> None:
    standby = replication.standbys[0].port
    dead = _dead_port()
    repo = Repo(_url(standby, target="read-write"), pool_size=1)
    with pytest.raises(DatabaseUnavailableError) as info:
        await repo.start()
    text = str(info.value)
    assert f"cannot connect to PostgreSQL at any of 127.0.0.1:{standby}" in text
    assert "target_session_attrs=read-write" in text
    assert "every server that answered is not a server that accepts writes" in text
    assert "fix: during a failover, wait for the standby's promotion" in text
    assert repo.state == "new"

    repo = Repo(_url(dead, standby, target="primary"), pool_size=1)
    with pytest.raises(DatabaseUnavailableError) as info:
        await repo.start()
    # asyncpg reports the refused host over the mismatched one; both hosts are named
    assert f"at any of 127.0.0.1:{dead}, 127.0.0.1:{standby}" in str(info.value)
    assert "target_session_attrs=primary" in str(info.value)


# --- promote the standby, stop the old primary, under load -------------------------------------------------


@pytest.fixture
async def fresh_replication() -> AsyncIterator[Replication]:
    _skip_without_servers()
    rep = await Replication.start(standbys=1, max_connections=60)
    try:
        yield rep
    finally:
        await rep.close()


async def test_promote_and_stop_under_load(fresh_replication: Replication) -> None:
    primary, standby = fresh_replication.primary, fresh_replication.standbys[0]
    await primary.execute(ROWS_DDL)
    await fresh_replication.wait_replayed()
    app = _app()
    repo = Repo(
        _url(standby.port, primary.port, target="read-write"),
        pool_size=8,
        min_size=2,
        pool_timeout=10.0,
        server_settings={"application_name": app},
    )
    events: list[FailoverEvent] = []
    repo.telemetry.attach(events.append, name="failovers", event="failover")
    async with repo:
        assert await _port_of(repo) == primary.port
        done = asyncio.Event()
        failures: list[BaseException] = []
        successes: dict[int, int] = {}

        async def writer(n: int) -> None:
            while not done.is_set():
                try:

                    async def body() -> int:
                        await repo.query("SELECT pg_sleep(0.02)")
                        return (await repo.query(INSERT + " RETURNING port", [f"w{n}"])).rows[0][0]  # type: ignore[no-any-return]

                    port = await repo.transaction(body)
                    successes[port] = successes.get(port, 0) + 1
                except (FailoverError, CommitOutcomeUnknownError) as exc:
                    failures.append(exc)
                    await asyncio.sleep(0.05)

        attempts: list[int] = []

        async def long_retried() -> int:
            async def body() -> int:
                attempts.append(await _port_of(repo))
                # the first attempt is in flight (on the old primary) when it stops; a retry does not wait
                await repo.query("SELECT pg_sleep($1::float8)", [30.0 if len(attempts) == 1 else 0.0])
                return (await repo.query(INSERT + " RETURNING port", ["retried"])).rows[0][0]  # type: ignore[no-any-return]

            return await repo.transaction(body, retry=3)

        sent = asyncio.Event()

        async def in_flight() -> None:  # surely on the old primary when it stops, whatever the writers do
            try:
                sent.set()
                await repo.query("SELECT pg_sleep(30)")
            except (FailoverError, CommitOutcomeUnknownError) as exc:
                failures.append(exc)

        held = asyncio.create_task(in_flight())  # before the writers: a pooled connection is free for it
        await _wait_for(lambda: _true(sent.is_set()), 5.0, "the in-flight call was sent")
        writers = [asyncio.create_task(writer(n)) for n in range(24)]

        async def writing() -> bool:
            return bool(successes)

        await _wait_for(writing, 5.0, "the writers commit")
        assert set(successes) == {primary.port}
        retried = asyncio.create_task(long_retried())
        await _wait_for(lambda: _true(bool(attempts)), 5.0, "the long transaction started")
        await standby.promote()
        await primary.stop("fast")
        stopped_at = time.monotonic()
        await asyncio.wait_for(held, 20 * FACTOR)

        # the retried transaction lost its connection mid-statement and ran again on the new primary
        assert await asyncio.wait_for(retried, 20 * FACTOR) == standby.port
        assert attempts[0] == primary.port and attempts[-1] == standby.port, attempts

        async def new_calls_work() -> bool:
            try:
                return await _port_of(repo) == standby.port
            except FailoverError:
                return False  # a connection of the old server not yet seen closed

        took = await _wait_for(new_calls_work, 5.0, "a new call reached the promoted server")
        before = successes.get(standby.port, 0)
        await asyncio.sleep(0.5)
        done.set()
        await asyncio.gather(*writers)
        assert time.monotonic() - stopped_at < 10 * FACTOR
        assert took < 5.0 * FACTOR
        assert successes.get(standby.port, 0) > before  # the load went on, on the promoted server

        # every failure is the named error: FailoverError, or (COMMIT in flight) an unknown outcome caused by one
        assert failures, "no call was in flight when the old primary stopped"
        for exc in failures:
            cause = exc if isinstance(exc, FailoverError) else exc.__cause__
            assert isinstance(cause, FailoverError), repr(exc)
            assert cause.server in (f"127.0.0.1:{primary.port}", None), cause.server
            assert "stopped being the primary" in str(cause)
            assert cause.sqlstate == "57P01", cause  # admin_shutdown: pg_ctl stop -m fast
            assert "retry=3" in str(cause)
        # (which kind a run gets depends on where each writer was when the server stopped: all may be COMMITs)
        assert all(isinstance(exc, FailoverError | CommitOutcomeUnknownError) for exc in failures)

        # twenty calls in a row, no error; rows written after the failover are on the promoted server
        for _ in range(20):
            assert await _port_of(repo) == standby.port
        rows = await standby.fetch("SELECT count(*) FROM fo_rows WHERE tag = 'retried'")
        assert rows[0][0] == 1
        await repo.telemetry.flush()
        assert len(events) == 1, events
        assert (events[0].old_server, events[0].new_server) == (
            f"127.0.0.1:{primary.port}",
            f"127.0.0.1:{standby.port}",
        )
        assert events[0].reason == "new_primary"
        assert repo.pool_stats()["failovers"] == 1
        await _wait_for(lambda: _whole(repo), 2.0, f"pool whole: {repo.pool_stats()}")
        assert set(await _sessions(standby, app)) <= {"idle"}


# --- the primary turns read-only (25006) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    """Two independent writable servers with the same table (each test resets them writable)."""
    _skip_without_servers()
    a = Cluster.launch(max_connections=40)
    try:
        b = Cluster.launch(max_connections=40)
        try:
            yield a, b
        finally:
            b.destroy()
    finally:
        a.destroy()


async def _read_only(cluster: Cluster, on: bool) -> None:
    """``default_transaction_read_only`` for the whole server, and wait until new sessions see it."""
    if on:
        await cluster.execute("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        await cluster.execute("ALTER SYSTEM RESET default_transaction_read_only")
    await cluster.execute("SELECT pg_reload_conf()")
    want = "on" if on else "off"

    async def seen() -> bool:
        return bool((await cluster.fetch("SHOW default_transaction_read_only"))[0][0] == want)

    await _wait_for(seen, 5.0, f"default_transaction_read_only = {want}")
    await asyncio.sleep(0.1)  # the pool's sessions got the SIGHUP too


@pytest.fixture
async def pair(clusters: tuple[Cluster, Cluster]) -> AsyncIterator[tuple[Cluster, Cluster]]:
    for cluster in clusters:
        await _read_only(cluster, False)
        await cluster.execute("DROP TABLE IF EXISTS fo_rows")
        await cluster.execute(ROWS_DDL)
    yield clusters
    for cluster in clusters:
        await _read_only(cluster, False)


async def test_read_only_primary_drains_and_retargets(pair: tuple[Cluster, Cluster]) -> None:
    a, b = pair
    app = _app()
    repo = Repo(_url(a.port, b.port, target="read-write"), pool_size=4, server_settings={"application_name": app})
    events: list[FailoverEvent] = []
    repo.telemetry.attach(events.append, event="failover")
    async with repo:
        await asyncio.gather(*(repo.query("SELECT pg_sleep(0.05)") for _ in range(4)))
        assert repo.pool_stats()["idle"] == 4
        assert await _port_of(repo) == a.port

        holding, release = asyncio.Event(), asyncio.Event()

        async def hold() -> int:
            port = 0
            async with repo.transaction():
                port = await _port_of(repo)
                holding.set()
                await release.wait()
            return port

        holder = asyncio.create_task(hold())
        await holding.wait()
        await _read_only(a, True)

        with pytest.raises(FailoverError) as info:
            await repo.query(INSERT, ["refused"])
        err = info.value
        assert err.sqlstate == "25006"
        assert err.server == f"127.0.0.1:{a.port}"
        assert f"the server 127.0.0.1:{a.port} stopped being the primary during the call: it is read-only now" in str(
            err
        )
        assert "repo.transaction(fn, retry=3)" in str(err)

        # the idle connections of the old server were closed at once; the one in use stays its holder's
        stats = repo.pool_stats()
        assert stats["drained"] == 4 and stats["in_use"] == 1 and stats["idle"] == 0, stats

        async def write(r: Any) -> int:
            return (await r.query(INSERT + " RETURNING port", ["after"])).rows[0][0]  # type: ignore[no-any-return]

        assert await repo.transaction(write, retry=3) == b.port
        assert await _port_of(repo) == b.port

        release.set()
        assert await holder == a.port  # its transaction ended normally ...
        await _wait_for(lambda: _whole(repo), 2.0, "pool whole")
        await _wait_for(  # ... and its connection was closed at the checkin
            lambda: _no_sessions(a, app), 2.0, "no session left on the read-only server"
        )
        await repo.telemetry.flush()
        assert [(e.old_server, e.new_server, e.reason, e.drained) for e in events] == [
            (f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}", "read_only", 4)
        ]
        assert repo.pool_stats()["failovers"] == 1
        assert [r[0] for r in await b.fetch("SELECT tag FROM fo_rows")] == ["after"]
        assert [r[0] for r in await a.fetch("SELECT tag FROM fo_rows")] == []


async def _no_sessions(cluster: Cluster, app: str) -> bool:
    return await _sessions(cluster, app) == []


async def test_a_read_only_answer_on_a_repo_that_accepts_any_server_is_the_callers_own(
    pair: tuple[Cluster, Cluster],
) -> None:
    a, b = pair
    async with Repo(_url(a.port, b.port), pool_size=2) as repo:
        await _read_only(a, True)
        with pytest.raises(Exception) as info:
            await repo.query(INSERT, ["refused"])
        assert not isinstance(info.value, FailoverError)
        assert getattr(info.value, "sqlstate", None) == "25006"
        assert repo.pool_stats()["drained"] == 0
        assert await _port_of(repo) == a.port


async def test_waiting_for_a_primary_and_cancelled_leaves_nothing_checked_out(pair: tuple[Cluster, Cluster]) -> None:
    a, b = pair
    app = _app()
    repo = Repo(
        _url(a.port, b.port, target="read-write"),
        pool_size=3,
        pool_timeout=1.0,
        server_settings={"application_name": app},
    )
    events: list[FailoverEvent] = []
    repo.telemetry.attach(events.append, event="failover")
    async with repo:
        assert await _port_of(repo) == a.port
        await _read_only(b, True)
        await _read_only(a, True)
        with pytest.raises(FailoverError):
            await repo.query(INSERT, ["refused"])

        # no server accepts writes now: callers wait for one (a promotion), and give up five ways
        for name in CANCELLERS:
            await cancel_with(name, lambda: repo.query("SELECT 1"), 0.3)
            assert await _whole(repo), (name, repo.pool_stats())
        tasks = [asyncio.create_task(repo.query("SELECT 1")) for _ in range(6)]
        await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(task.cancelled() for task in tasks)
        assert await _whole(repo), repo.pool_stats()

        # nobody gives up: after the pool timeout the error says what is missing
        began = time.monotonic()
        with pytest.raises((DatabaseUnavailableError, PoolTimeoutError)) as info:
            await repo.query("SELECT 1")
        assert 0.9 <= time.monotonic() - began < 3 * FACTOR
        assert "target_session_attrs=read-write" in str(info.value)

        # b is promoted (writable again): the next call reaches it, without restarting the repo
        await _read_only(b, False)
        assert await _port_of(repo) == b.port
        await repo.telemetry.flush()
        assert [(e.old_server, e.new_server, e.reason) for e in events] == [
            (f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}", "read_only")
        ]
        assert await _whole(repo)
        await _wait_for(lambda: _no_sessions(a, app), 2.0, "no session left on the read-only server")


async def test_which_lost_connections_are_failover_errors(pair: tuple[Cluster, Cluster]) -> None:
    """The definition: the server ending the session (57P01: a shutdown, or pg_terminate_backend, which
    says the same words) is a FailoverError; a link cut without a word from the server is a plain
    ConnectionLostError. Neither moves the pool while the same server still answers."""
    a, b = pair
    app = _app()
    async with PgProxy(("127.0.0.1", a.port)) as proxy:
        repo = Repo(
            _url(proxy.port, b.port, target="read-write"), pool_size=2, server_settings={"application_name": app}
        )
        async with repo:
            sleeping = asyncio.create_task(repo.query("SELECT pg_sleep(5)"))
            await _wait_for(lambda: _busy(a, app), 5.0, "the statement runs")
            proxy.reset()
            with pytest.raises(ConnectionLostError) as lost:
                await sleeping
            assert not isinstance(lost.value, FailoverError)

            sleeping = asyncio.create_task(repo.query("SELECT pg_sleep(5)"))
            await _wait_for(lambda: _busy(a, app), 5.0, "the statement runs")
            for pid in await a.backend_pids(app):
                await a.terminate(pid)
            with pytest.raises(FailoverError) as ended:
                await sleeping
            assert ended.value.sqlstate == "57P01"
            assert "terminating connection due to administrator command" in str(ended.value)

            assert await _port_of(repo) == a.port  # the same server: no failover
            await repo.telemetry.flush()
            stats = repo.pool_stats()
            assert stats["failovers"] == 0 and stats["drained"] == 0, stats
            await _wait_for(lambda: _whole(repo), 2.0, "pool whole")


async def _busy(cluster: Cluster, app: str) -> bool:
    return "active" in await _sessions(cluster, app)


@pytest.mark.parametrize("canceller", ["task.cancel", "anyio.move_on_after"])
async def test_a_cancelled_connect_ends_on_its_own_and_is_closed(
    pair: tuple[Cluster, Cluster], canceller: str, loop_errors: list[dict[str, Any]]
) -> None:
    """Cancelling a caller whose connection is being opened (here: the link answers nothing) returns at
    once; asyncpg's connect is not cut midway (that left an unretrieved future), it ends by its
    connect_timeout and leaves nothing open."""
    from asyncecto.adapters.postgres import _orphans

    a, b = pair
    async with PgProxy(("127.0.0.1", a.port)) as proxy:
        repo = Repo(_url(proxy.port, b.port, target="read-write"), pool_size=2, min_size=0, connect_timeout=1.0)
        async with repo:
            proxy.blackhole()
            began = time.monotonic()
            await cancel_with(canceller, lambda: repo.query("SELECT 1"), 0.2)
            assert time.monotonic() - began < 1.0 * FACTOR  # the caller did not wait for the connect
            assert len(_orphans) == 1
            await _wait_for(lambda: _true(not _orphans), 3.0, "the abandoned connect ended")
            assert await _whole(repo) and repo.pool_stats()["size"] == 0
            proxy.pass_through()
            assert await _port_of(repo) == a.port
    assert loop_errors == []
