"""A frozen backend (SIGSTOP): the caller's timeout or cancellation returns in bounded time (R09).

A stopped backend cannot act on a cancel request, so asyncpg would wait for it forever; the connection
must be terminated (never reused) instead. Every stopped backend is continued in a ``finally``, and by
a timer too, so that a regression fails the bound instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import StatementTimeoutError

from .._cancellers import cancel_with
from .._cluster import Cluster
from .conftest import FACTOR, assert_clean, wait_for

pytestmark = pytest.mark.chaos

MakeRepo = Callable[..., Awaitable[Repo]]


@contextmanager
def thawing(pids: list[int], after: float) -> Iterator[None]:
    """SIGCONT every pid of ``pids`` (filled in by the block) after ``after`` seconds, and always at the end."""

    def thaw() -> None:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    handle = asyncio.get_running_loop().call_later(after, thaw)
    try:
        yield
    finally:
        handle.cancel()
        thaw()


async def test_issue17_r09_frozen_backend_statement_timeout_returns_at_once(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    cleanup = 1.5 * FACTOR  # longer than the bound: waiting for the cleanup would fail the test
    repo = await make_repo(pool_size=2, cleanup_timeout=cleanup, pool_timeout=5)
    await repo.query("SELECT 1")
    (pid,) = await server.backend_pids(app)
    bound = 1.0 * FACTOR
    with thawing([pid], cleanup + 2):
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(StatementTimeoutError) as info:
            await repo.query("SELECT 1", timeout=0.2)
        elapsed = time.monotonic() - began
        assert elapsed < bound, f"the timeout of 0.2s returned after {elapsed:.2f}s"
        assert "SELECT 1" in str(info.value)
        # still frozen: another connection serves, and the frozen one is terminated once its cancel
        # request has waited cleanup_timeout (it can never complete), never handed out again
        other = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        assert other != pid

        async def terminated() -> bool:
            return repo.pool_stats()["terminated"] >= 1

        await wait_for(terminated, 3, "the frozen connection is terminated after cleanup_timeout")
        assert (await repo.query("SELECT pg_backend_pid()")).rows[0][0] != pid
    await wait_for(lambda: _gone(server, pid), 2, "the frozen backend ends once continued")
    await assert_clean(repo, server, app, loop_errors)


async def _gone(server: Cluster, pid: int) -> bool:
    return await server.fetch("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid) == []


POINTS = [("statement", c) for c in ("anyio.move_on_after", "anyio.fail_after", "asyncio.timeout", "task.cancel")]
POINTS += [("commit", c) for c in ("anyio.move_on_after", "asyncio.timeout")]


@pytest.mark.parametrize(("point", "canceller"), POINTS, ids=[f"{p}-{c}" for p, c in POINTS])
async def test_issue17_r09_frozen_backend_in_transaction_cleanup_is_bounded(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]], point: str, canceller: str
) -> None:
    repo = await make_repo(pool_size=2, cleanup_timeout=0.5)
    pids: list[int] = []

    async def work() -> None:
        async with repo.transaction():
            await repo.query("INSERT INTO chaos_rows (tag) VALUES ($1)", [app])
            pids.append((await repo.query("SELECT pg_backend_pid()")).rows[0][0])
            os.kill(pids[0], signal.SIGSTOP)
            if point == "statement":
                await repo.query("SELECT 1")  # no answer; then ROLLBACK gets none either
            # point == "commit": the block ends normally, COMMIT gets no answer

    scope, cleanup = 0.3, 0.5
    bound = (scope + cleanup + 1.0) * FACTOR
    with thawing(pids, bound + 0.5):
        began = time.monotonic()
        await cancel_with(canceller, work, scope)
        elapsed = time.monotonic() - began
        assert elapsed < bound, f"returned after {elapsed:.2f}s, bound {bound:.2f}s"
        # still frozen: the frozen connection is never handed out again
        assert (await repo.query("SELECT pg_backend_pid()")).rows[0][0] != pids[0]
    await wait_for(lambda: _gone(server, pids[0]), 2, "the frozen backend ends once continued")
    if point == "commit":  # the COMMIT sits in the socket: the backend may run it once continued (unknown)
        await assert_clean(repo, server, app, loop_errors)
        return

    async def rolled_back() -> bool:
        rows = await server.fetch("SELECT count(*) FROM chaos_rows WHERE tag = $1", app)
        return int(rows[0][0]) == 0

    await wait_for(rolled_back, 1, "the frozen transaction's row is rolled back")
    await assert_clean(repo, server, app, loop_errors)
