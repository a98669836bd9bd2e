"""Chaos tests (marker ``chaos``): kill, freeze, restart and cut off a **private** PostgreSQL.

One cluster for the whole run (``tests/_cluster.py``), never the shared server: a stopped backend
can hold locks, a restart would end every other test's sessions. Each test leaves the cluster
running (the ``server`` fixture starts it again otherwise) and names its sessions with its own
``application_name`` (the ``app`` fixture), so it only ever touches its own backends.

Timing bounds are multiplied by ``$ASYNCECTO_TIMING_FACTOR`` (default 1; 3 in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from asyncecto import Repo
from asyncecto.errors import ConnectionLostError, DatabaseUnavailableError

from .._cluster import Cluster, unavailable_reason

FACTOR = float(os.environ.get("ASYNCECTO_TIMING_FACTOR", "1"))

#: the table every test may write to (rows tagged with the test's app name)
ROWS_DDL = "CREATE TABLE IF NOT EXISTS chaos_rows (id serial PRIMARY KEY, tag text NOT NULL)"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The run's private cluster (skipped, naming what to install, when no server programs exist)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    c = Cluster.launch(max_connections=60)
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
async def server(cluster: Cluster) -> AsyncIterator[Cluster]:
    """The private cluster, running and answering; started again after a test that left it down."""
    if not cluster.running:
        await cluster.start()
    await cluster.wait_ready()
    await cluster.execute(ROWS_DDL)
    yield cluster
    if not cluster.running:
        await cluster.start()
    await cluster.wait_ready()


@pytest.fixture
def app(request: pytest.FixtureRequest) -> str:
    """This test's ``application_name`` (its sessions, and its rows' tag): unique per test, < 64 bytes."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    return "ae-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:48] + "-" + digest


@pytest.fixture
async def make_repo(server: Cluster, app: str) -> AsyncIterator[Callable[..., Awaitable[Repo]]]:
    """``await make_repo(url=None, **options)``: a started Repo on the private cluster, named ``app``;
    stopped (bounded) at teardown."""
    repos: list[Repo] = []

    async def make(url: str | None = None, **options: Any) -> Repo:
        options.setdefault("server_settings", {"application_name": app})
        repo = Repo(url or server.url, **options)
        await repo.start()
        repos.append(repo)
        return repo

    yield make
    for repo in repos:
        with anyio.move_on_after(15):
            await repo.stop(timeout=1)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the event loop's exception handler during the test (must stay empty)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    loop.set_exception_handler(previous)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a backend for the block; SIGCONT always, whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took. Fails naming ``what`` after ``timeout * FACTOR``."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout * FACTOR:
            raise AssertionError(f"not within {timeout * FACTOR:.1f}s: {what}")
        await anyio.sleep(0.02)
    return time.monotonic() - began


async def wait_active(cluster: Cluster, app: str, count: int = 1, *, wait_event_type: str | None = None) -> list[int]:
    """The pids of ``app``'s sessions running a statement, once ``count`` of them are."""
    pids: list[int] = []

    async def check() -> bool:
        rows = await cluster.activity(app)
        pids[:] = [
            r["pid"]
            for r in rows
            if r["state"] == "active" and (wait_event_type is None or r["wait_event_type"] == wait_event_type)
        ]
        return len(pids) >= count

    await wait_for(check, 5, f"{count} active session(s) of {app}")
    return pids


async def wait_answering(repo: Repo, what: str) -> None:
    """Wait (5 s at most) until ``repo`` answers again after a crash or restart; every refusal on the way
    is a lost connection or the server's "starting up / recovering" (57P03)."""
    seen: list[ConnectionLostError | DatabaseUnavailableError] = []

    async def answers() -> bool:
        try:
            await repo.query("SELECT 1")
        except (ConnectionLostError, DatabaseUnavailableError) as exc:
            seen.append(exc)
            return False
        return True

    await wait_for(answers, 5, f"the repo answers again after {what}")
    for exc in seen:
        assert isinstance(exc, ConnectionLostError) or exc.sqlstate == "57P03", repr(exc)


async def assert_clean(repo: Repo, cluster: Cluster, app: str, loop_errors: list[dict[str, Any]]) -> None:
    """The leak check: within 1 s the pool is whole (nothing checked out, ``size == idle``), no session of
    ``app`` is running or idle in a transaction, the next query works, and the loop saw no error."""

    async def whole() -> bool:
        stats = repo.pool_stats()
        if stats["in_use"] != 0 or stats["size"] != stats["idle"]:
            return False
        states = {r["state"] for r in await cluster.activity(app)}
        return states <= {"idle"}

    try:
        await wait_for(whole, 1.0, "pool whole and no busy session")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {repo.pool_stats()} {await cluster.activity(app)}") from None
    assert (await repo.query("SELECT 1")).rows == [(1,)]
    gc.collect()
    assert loop_errors == []
