"""The server restarted or stopped under a running repo: R05 fast restart, R06 immediate restart, R07 down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asyncecto import Repo
from asyncecto.errors import ConnectionLostError, DatabaseUnavailableError

from .._cluster import Cluster, Mode
from .conftest import FACTOR, assert_clean, wait_active, wait_answering, wait_for

pytestmark = pytest.mark.chaos

MakeRepo = Callable[..., Awaitable[Repo]]
SUPERVISOR_CALM = {"pool_upkeep": 0, "telemetry": 0, "notifications": 0}


async def _warm(repo: Repo, n: int) -> None:
    """Open ``n`` connections (all idle afterwards)."""
    await asyncio.gather(*(repo.query("SELECT pg_sleep(0.05)") for _ in range(n)))
    assert repo.pool_stats()["idle"] == n


async def _restart_with_one_in_use(repo: Repo, server: Cluster, app: str, mode: Mode) -> list[BaseException]:
    """Restart the server while one connection runs a statement and the others are idle; what it raised."""
    caught: list[BaseException] = []

    async def in_use() -> None:
        try:
            await repo.query("SELECT pg_sleep(10)")
        except ConnectionLostError as exc:
            caught.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(in_use)
        await wait_active(server, app)
        await server.restart(mode)
    return caught


async def test_issue17_r05_fast_restart_fails_only_the_statement_in_flight(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    repo = await make_repo(pool_size=4)
    await _warm(repo, 4)
    caught = await _restart_with_one_in_use(repo, server, app, "fast")
    assert len(caught) == 1, "the statement in flight did not fail with ConnectionLostError"
    assert "terminating connection due to administrator command" in str(caught[0])
    # the idle connections died silently: every call after the restart works at the first try
    results = await asyncio.gather(*(repo.query("SELECT 1") for _ in range(8)))
    assert [r.rows for r in results] == [[(1,)]] * 8
    await assert_clean(repo, server, app, loop_errors)
    assert repo.supervisor_restarts == SUPERVISOR_CALM


async def test_issue17_r06_immediate_restart_fails_with_named_errors_and_recovers(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    repo = await make_repo(pool_size=4)
    await _warm(repo, 4)
    caught = await _restart_with_one_in_use(repo, server, app, "immediate")
    assert len(caught) == 1 and caught[0].__cause__ is not None
    await wait_answering(repo, "the immediate restart")
    await assert_clean(repo, server, app, loop_errors)
    assert repo.supervisor_restarts == SUPERVISOR_CALM


async def test_issue17_r07_server_down_refuses_at_once_and_recovers_after_start(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    repo = await make_repo(pool_size=3, pool_timeout=1)
    await _warm(repo, 3)
    caught = await _restart_with_one_in_use(repo, server, app, "fast")  # a restart first: the pool copes
    assert len(caught) == 1
    await server.stop("fast")
    try:

        async def drained() -> bool:
            return repo.pool_stats()["size"] == 0

        await wait_for(drained, 2, "the idle connections of a stopped server are dropped")
        for _ in range(10):
            began = time.monotonic()
            with pytest.raises(DatabaseUnavailableError) as info:
                await repo.query("SELECT 1")
            assert time.monotonic() - began < 0.5 * FACTOR, "a refused connection was waited for"
            assert isinstance(info.value.__cause__, OSError)  # ConnectionRefusedError
            assert f"127.0.0.1:{server.port}" in str(info.value) and "connection refused" in str(info.value)
            with pytest.raises(DatabaseUnavailableError):
                async with repo.transaction():
                    raise AssertionError("a transaction began on a stopped server")  # pragma: no cover
            stats = repo.pool_stats()
            assert (stats["size"], stats["idle"], stats["in_use"]) == (0, 0, 0), stats  # no slot drifts
    finally:
        await server.start()
    assert (await repo.query("SELECT 1")).rows == [(1,)]  # the first call after the start works
    await _warm(repo, 3)  # and the pool can grow back to its size
    await assert_clean(repo, server, app, loop_errors)


async def test_issue17_r07_pool_upkeep_rides_out_a_stopped_server(
    make_repo: MakeRepo, server: Cluster, app: str, caplog: pytest.LogCaptureFixture
) -> None:
    repo = await make_repo(pool_size=2, min_size=1)
    with caplog.at_level(logging.WARNING, logger="asyncecto"):
        await server.stop("fast")
        try:
            await anyio.sleep(3.5)  # three upkeep rounds or more, each finding no connection and no server
        finally:
            await server.start()
    await wait_for(lambda: _filled(repo), 3, "upkeep refills min_size after the start")
    said = [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name.startswith("asyncecto")]
    assert repo.supervisor_restarts == SUPERVISOR_CALM, said
    assert not any(r.levelno >= logging.ERROR for r in caplog.records), said  # no worker crash
    assert len(said) <= 2, said  # the same refill failure is not logged every round


async def _filled(repo: Repo) -> bool:
    return repo.pool_stats()["idle"] >= 1
