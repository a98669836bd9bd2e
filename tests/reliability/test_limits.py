"""The server refuses connections: too many clients for the role (53300), R19.

A pool that already holds connections queues its callers for them instead of failing (bounded by
``pool_timeout``); a pool that holds none retries with back-off within ``pool_timeout``, then names the
limit. A refused open never costs a slot, and the pool grows once the limit is lifted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asyncecto import Repo
from asyncecto.errors import DatabaseUnavailableError, PoolTimeoutError

from .._cluster import Cluster
from .conftest import FACTOR, assert_clean, wait_for

pytestmark = pytest.mark.chaos

MakeRepo = Callable[..., Awaitable[Repo]]


async def _role(server: Cluster, limit: int) -> str:
    """A new login role allowed ``limit`` sessions; the URL for it."""
    role = f"r19_{uuid.uuid4().hex[:10]}"
    await server.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}")
    return role


def _url(server: Cluster, role: str) -> str:
    return f"postgres://{role}@127.0.0.1:{server.port}/postgres"


async def _burst(repo: Repo, n: int) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = []

    async def op() -> None:
        try:
            await repo.query("SELECT pg_sleep(0.3)")
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(op)
    return outcomes


async def _grows_to(repo: Repo, size: int) -> None:
    async def grown() -> bool:
        outcomes = await _burst(repo, size)
        assert outcomes == [None] * size, outcomes
        return repo.pool_stats()["size"] == size

    await wait_for(grown, 5, f"the pool grows to {size} once the limit is lifted")


async def test_issue17_r19_refused_growth_never_costs_a_slot(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    role = await _role(server, 2)
    repo = await make_repo(_url(server, role), pool_size=5, pool_timeout=3)
    # how many opens the server refuses depends on how the five race (each counts the others already
    # registered, itself included), so none may succeed at once; whatever failed names the limit
    outcomes = await _burst(repo, 5)
    for outcome in outcomes:
        if outcome is not None:
            assert isinstance(outcome, DatabaseUnavailableError) and outcome.sqlstate == "53300", repr(outcome)
            assert f'too many connections for role "{role}"' in str(outcome) and outcome.__cause__ is not None
    stats = repo.pool_stats()
    assert stats["in_use"] == 0 and stats["size"] == stats["idle"] <= 2, stats
    assert len(await server.backend_pids(app)) == stats["size"]
    await server.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    await _grows_to(repo, 5)  # no slot was lost to the refused opens
    await assert_clean(repo, server, app, loop_errors)


async def test_issue17_r19_callers_wait_for_the_live_connections_under_the_limit(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    role = await _role(server, 2)
    repo = await make_repo(_url(server, role), pool_size=5, pool_timeout=3)
    outcomes = await _burst(repo, 5)
    assert outcomes == [None] * 5, outcomes  # three waited for the two connections the server allows
    stats = repo.pool_stats()
    assert stats["connect_failures"] >= 1, stats
    assert stats["in_use"] == 0 and stats["size"] == stats["idle"] == 2, stats
    await server.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    await _grows_to(repo, 5)
    await assert_clean(repo, server, app, loop_errors)


async def test_issue17_r19_no_connection_allowed_retries_then_names_the_limit(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    role = await _role(server, 1)
    repo = await make_repo(_url(server, role), pool_size=3, min_size=0, pool_timeout=1)
    await server.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
    began = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as info:
        await repo.query("SELECT 1")
    elapsed = time.monotonic() - began
    assert info.value.sqlstate == "53300" and info.value.__cause__ is not None
    assert f'too many connections for role "{role}"' in str(info.value)
    assert elapsed >= 0.5, f"raised after {elapsed:.2f}s: not retried within pool_timeout=1"
    assert elapsed < 2.0 * FACTOR, f"raised after {elapsed:.2f}s: not bounded by pool_timeout=1"
    stats = repo.pool_stats()
    assert (stats["size"], stats["in_use"]) == (0, 0) and stats["connect_failures"] >= 2, stats
    await server.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    await assert_clean(repo, server, app, loop_errors)


async def test_issue17_r19_queued_caller_times_out_naming_the_limit(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    role = await _role(server, 1)
    repo = await make_repo(_url(server, role), pool_size=3, pool_timeout=0.5)
    held = asyncio.Event()
    done = anyio.Event()

    async def holder() -> None:
        async with repo.checkout():
            await repo.query("SELECT 1")
            held.set()
            await done.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await held.wait()
        try:
            with pytest.raises(PoolTimeoutError) as info:
                await repo.query("SELECT 1")
        finally:
            done.set()
    assert isinstance(info.value.__cause__, DatabaseUnavailableError), repr(info.value.__cause__)
    assert info.value.__cause__.sqlstate == "53300"
    assert "too many connections" in str(info.value)
    await assert_clean(repo, server, app, loop_errors)
