# ruff: noqa: F811  (blog and barrier: fixtures imported from test_preload_parallel)
"""Parallel sibling preloads cancelled from outside, every way a caller can: ``task.cancel()``,
``asyncio.timeout``, anyio's ``move_on_after`` and ``CancelScope.cancel()``.

The siblings wait at the barrier of ``test_preload_parallel`` (an advisory lock held by the
admin), so each cancellation arrives while all of them are running in the server. Afterwards
the caller saw its own outcome, no sibling finished, the server stopped the blocked queries,
every connection came back and the pool still serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg
import pytest

from asyncecto import Repo

from ..assoc_schemas import Post
from .test_preload_parallel import (  # noqa: F401  (blog and barrier are fixtures)
    DEADLINE,
    PRELOAD_WAYS,
    SIBLINGS,
    barrier,
    blog,
    load,
    probe_log,
    probed,
    wait_for_waiters,
    waiters,
)

pytestmark = pytest.mark.no_sandbox  # real commits and connections


async def _all_stopped(repo: Repo, admin: asyncpg.Connection, token: str, key: int) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while await waiters(admin, key):  # the server was told to stop the blocked queries
        assert loop.time() < give_up, "a cancelled sibling preload kept running in the server"
        await asyncio.sleep(0.01)
    assert await probe_log(lambda sql, p: admin.fetch(sql, *p), token) == []  # none of them finished
    assert repo.pool_stats()["in_use"] == 0
    assert len(await repo.all(Post)) == 2  # the pool still serves


async def _when_waiting(admin: asyncpg.Connection, key: int, cancel: Callable[[], object]) -> None:
    await wait_for_waiters(admin, len(SIBLINGS), key)
    cancel()


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_task_cancel_stops_every_sibling(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    work = asyncio.ensure_future(
        load(repo, way, probed(blog["token"], dict.fromkeys(SIBLINGS, barrier)), blog["post_ids"])
    )
    await _when_waiting(admin, barrier, work.cancel)
    with pytest.raises(asyncio.CancelledError):
        await work
    assert work.cancelled()
    await _all_stopped(repo, admin, blog["token"], barrier)


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_asyncio_timeout_stops_every_sibling_and_raises_timeout_error(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    async def caller() -> str:
        try:
            async with asyncio.timeout(None) as scope:
                watcher = asyncio.ensure_future(
                    _when_waiting(admin, barrier, lambda: scope.reschedule(asyncio.get_running_loop().time()))
                )
                await load(repo, way, probed(blog["token"], dict.fromkeys(SIBLINGS, barrier)), blog["post_ids"])
        except TimeoutError:
            await watcher
            me = asyncio.current_task()
            assert me is not None and me.cancelling() == 0  # the timeout's cancellation was consumed, nothing more
            return "timed out"
        return "finished"

    assert await caller() == "timed out"
    await _all_stopped(repo, admin, blog["token"], barrier)


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_anyio_move_on_after_stops_every_sibling(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    outcome = "finished"
    with anyio.move_on_after(None) as scope:
        watcher = asyncio.ensure_future(
            _when_waiting(admin, barrier, lambda: setattr(scope, "deadline", anyio.current_time()))
        )
        await load(repo, way, probed(blog["token"], dict.fromkeys(SIBLINGS, barrier)), blog["post_ids"])
        outcome = "not cancelled"
    await watcher
    assert scope.cancelled_caught and outcome == "finished"
    await _all_stopped(repo, admin, blog["token"], barrier)


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_anyio_cancel_scope_cancel_stops_every_sibling(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    reached = False
    with anyio.CancelScope() as scope:
        watcher = asyncio.ensure_future(_when_waiting(admin, barrier, scope.cancel))
        await load(repo, way, probed(blog["token"], dict.fromkeys(SIBLINGS, barrier)), blog["post_ids"])
        reached = True
    await watcher
    assert scope.cancelled_caught and not reached
    await _all_stopped(repo, admin, blog["token"], barrier)
