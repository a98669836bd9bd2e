"""A half-open link (R08): the proxy keeps every socket open and forwards nothing.

The server never answers and never closes, so nothing but the client's own deadlines can end a call.
Each call must fail with a named error within (pool_timeout + timeout + cleanup_timeout + one upkeep
round) x 1.2, ``stop()`` must return, and once the link forwards again the repo recovers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest

from asyncecto import Repo
from asyncecto.errors import (
    AsyncEctoError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    PoolTimeoutError,
    StatementTimeoutError,
)

from .._cluster import Cluster
from .._proxy import PgProxy
from .conftest import FACTOR, assert_clean, wait_for


async def _in_use(repo: Repo) -> bool:
    return repo.pool_stats()["in_use"] == 1


pytestmark = pytest.mark.chaos

#: short deadlines, so that the bound is a few seconds
OPTIONS: dict[str, Any] = {"timeout": 1.0, "pool_timeout": 1.0, "cleanup_timeout": 0.5, "connect_timeout": 1.0}
UPKEEP = 1.0  # the pool's upkeep round
BOUND = (OPTIONS["pool_timeout"] + OPTIONS["timeout"] + OPTIONS["cleanup_timeout"] + UPKEEP) * 1.2 * FACTOR


@asynccontextmanager
async def proxied(server: Cluster, app: str, size: int) -> AsyncIterator[tuple[PgProxy, Repo]]:
    """A proxy to the private cluster (in the test's own task: its task group cannot span fixture tasks) and
    a repo through it with ``size`` connections open; the repo stops before the proxy closes."""
    async with PgProxy(("127.0.0.1", server.port)) as proxy:
        repo = Repo(
            f"postgres://postgres@127.0.0.1:{proxy.port}/postgres",
            pool_size=size,
            server_settings={"application_name": app},
            **OPTIONS,
        )
        await repo.start()
        try:
            await asyncio.gather(*(repo.query("SELECT pg_sleep(0.05)") for _ in range(size)))
            assert repo.pool_stats()["idle"] == size
            yield proxy, repo
        finally:
            proxy.pass_through()
            with anyio.move_on_after(15):
                await repo.stop(timeout=1)


@contextmanager
def watchdog(proxy: PgProxy, after: float) -> Iterator[None]:
    """After ``after`` seconds, close every link of ``proxy`` (the clients see EOF): a regression then fails
    the time bound instead of hanging the run (a shielded cleanup would wait on a blackholed link forever)."""

    def cut() -> None:
        proxy.pass_through()
        proxy.reset()

    handle = asyncio.get_running_loop().call_later(after, cut)
    try:
        yield
    finally:
        handle.cancel()


def _assert_named_half_open(exc: BaseException) -> None:
    """A library error; a lost connection says that the server did not answer."""
    assert isinstance(exc, AsyncEctoError), repr(exc)
    assert isinstance(exc, PoolTimeoutError | StatementTimeoutError | ConnectionLostError), repr(exc)
    if isinstance(exc, ConnectionLostError):
        assert "no answer" in str(exc), str(exc)


async def test_issue17_r08_half_open_link_fails_pool_queries_with_named_errors(
    server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    outcomes: list[BaseException | None] = []
    async with proxied(server, app, 3) as (proxy, repo):

        async def op() -> None:
            try:
                await repo.query("SELECT 1")
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)

        proxy.blackhole()
        began = time.monotonic()
        with watchdog(proxy, BOUND + 1):
            async with anyio.create_task_group() as tg:
                for _ in range(9):
                    tg.start_soon(op)
        elapsed = time.monotonic() - began
        proxy.pass_through()
        assert len(outcomes) == 9, f"{9 - len(outcomes)} of 9 calls still hung after {elapsed:.1f}s"
        assert elapsed < BOUND, f"took {elapsed:.2f}s, bound {BOUND:.2f}s"
        for outcome in outcomes:
            assert outcome is not None, "a query answered through a blackholed link"
            _assert_named_half_open(outcome)
        await assert_clean(repo, server, app, loop_errors)


POINTS = ["statement", "commit"]


@pytest.mark.parametrize("point", POINTS)
async def test_issue17_r08_half_open_link_inside_a_transaction(
    server: Cluster, app: str, loop_errors: list[dict[str, Any]], point: str
) -> None:
    caught: list[BaseException] = []
    async with proxied(server, app, 2) as (proxy, repo):
        began = time.monotonic()
        with watchdog(proxy, BOUND + 1):
            try:
                async with repo.transaction():
                    await repo.query("INSERT INTO chaos_rows (tag) VALUES ($1)", [app])
                    proxy.blackhole()
                    began = time.monotonic()
                    if point == "statement":
                        await repo.query("SELECT 1")
            except AsyncEctoError as exc:
                caught.append(exc)
        elapsed = time.monotonic() - began
        proxy.pass_through()
        assert caught, f"the transaction still hung after {elapsed:.1f}s"
        assert elapsed < BOUND, f"took {elapsed:.2f}s, bound {BOUND:.2f}s"
        if point == "commit":
            assert isinstance(caught[0], CommitOutcomeUnknownError), repr(caught[0])  # never "rolled back"
        else:
            _assert_named_half_open(caught[0])
        # the server never saw a COMMIT: once the socket closed, it rolled back
        assert (await server.fetch("SELECT count(*) FROM chaos_rows WHERE tag = $1", app))[0][0] == 0
        await assert_clean(repo, server, app, loop_errors)


async def test_issue17_r08_stop_returns_while_the_link_is_half_open(
    server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    caught: list[BaseException] = []
    async with proxied(server, app, 2) as (proxy, repo):

        async def in_flight() -> None:
            try:
                await repo.query("SELECT 1")
            except ConnectionLostError as exc:
                caught.append(exc)

        async with anyio.create_task_group() as tg:
            proxy.blackhole()
            tg.start_soon(in_flight)
            await wait_for(lambda: _in_use(repo), 5, "the statement sent into the silent link")
            began = time.monotonic()
            with watchdog(proxy, 10):
                await repo.stop(timeout=0.5)
            elapsed = time.monotonic() - began
        proxy.pass_through()
        # the wait, then the sockets are closed; besides, at most a cleanup and a bounded attempt to reach
        # the server (to cancel what still runs there)
        bound = (0.5 + OPTIONS["cleanup_timeout"] + OPTIONS["connect_timeout"] + 1.5) * FACTOR
        assert elapsed < bound, f"stop took {elapsed:.2f}s, bound {bound:.2f}s"
        assert repo.state == "closed"
        assert len(caught) == 1, "the statement in flight did not fail with ConnectionLostError"
        assert loop_errors == []
