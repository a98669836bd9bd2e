"""Backends ended under the repo: terminated (R01), killed (R06 crash restart), idle-in-transaction timeout (R13)."""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from asyncecto import Repo
from asyncecto.errors import ConnectionLostError

from .._cancellers import CANCELLERS, cancel_with
from .._cluster import Cluster
from .conftest import FACTOR, assert_clean, wait_active, wait_answering, wait_for

pytestmark = pytest.mark.chaos

MakeRepo = Callable[..., Awaitable[Repo]]


async def _rows(cluster: Cluster, app: str) -> int:
    return int((await cluster.fetch("SELECT count(*) FROM chaos_rows WHERE tag = $1", app))[0][0])


# -- R01 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inside", [False, True], ids=["pooled", "in-transaction"])
async def test_issue17_r01_terminated_statement_names_the_administrator_command(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]], inside: bool
) -> None:
    repo = await make_repo(pool_size=2)
    caught: list[BaseException] = []

    async def statement() -> None:
        try:
            if inside:
                async with repo.transaction():
                    await repo.query("INSERT INTO chaos_rows (tag) VALUES ($1)", [app])
                    await repo.query("SELECT pg_sleep(5)")
            else:
                await repo.query("SELECT pg_sleep(5)")
        except ConnectionLostError as exc:
            caught.append(exc)

    began = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(statement)
        (pid,) = await wait_active(server, app)
        assert await server.terminate(pid)
    elapsed = time.monotonic() - began
    assert len(caught) == 1, "the statement did not fail with ConnectionLostError"
    error = caught[0]
    assert "terminating connection due to administrator command" in str(error)
    assert "pg_sleep(5)" in str(error) and error.__cause__ is not None
    assert elapsed < 3 * FACTOR, "the caller waited for the statement instead of failing at once"
    assert repo.pool_stats()["in_use"] == 0  # the slot is freed at once, not at the next upkeep
    assert await _rows(server, app) == 0
    await assert_clean(repo, server, app, loop_errors)
    assert repo.supervisor_restarts == {"pool_upkeep": 0, "telemetry": 0, "notifications": 0}


# -- R06 (crash restart by SIGKILL; the pg_ctl "immediate" flavour is in test_restart.py) ------------------


async def test_issue17_r06_killed_backend_crash_restart_fails_only_with_named_errors(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]]
) -> None:
    repo = await make_repo(pool_size=4)
    outcomes: list[BaseException | None] = []

    async def op() -> None:
        try:
            await repo.query("SELECT pg_sleep(3)")
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(op)
        pids = await wait_active(server, app, 3)
        await server.signal(pids[0], signal.SIGKILL)  # the postmaster ends every session and recovers
    assert len(outcomes) == 3 and all(isinstance(o, ConnectionLostError) for o in outcomes), outcomes
    assert all(o is not None and o.__cause__ is not None for o in outcomes)

    await wait_answering(repo, "the crash restart")
    await server.wait_ready()
    await assert_clean(repo, server, app, loop_errors)
    assert repo.supervisor_restarts == {"pool_upkeep": 0, "telemetry": 0, "notifications": 0}


# -- R13 -------------------------------------------------------------------------------------------

IDLE_LIMIT = "SET idle_in_transaction_session_timeout = '150ms'"  # per session, reverted by the reset


@pytest.mark.parametrize("nested", [False, True], ids=["outermost", "savepoint"])
async def test_issue17_r13_idle_in_transaction_kill_reaches_the_user_named(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]], nested: bool
) -> None:
    repo = await make_repo(pool_size=2)

    async def idle_then_read() -> None:
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        await repo.query("INSERT INTO chaos_rows (tag) VALUES ($1)", [app])

        async def ended() -> bool:
            return pid not in await server.backend_pids(app)

        await wait_for(ended, 5, "the server ending the idle session")  # the idle-in-transaction timeout
        await repo.query("SELECT 1")

    with pytest.raises(ConnectionLostError) as info:
        async with repo.transaction():
            await repo.query(IDLE_LIMIT)
            if nested:
                async with repo.transaction():
                    await idle_then_read()
            else:
                await idle_then_read()
    assert info.value.sqlstate == "25P03"
    assert "terminating connection due to idle-in-transaction timeout" in str(info.value)
    assert "idle_in_transaction_session_timeout" in str(info.value)  # the hint
    assert repo.pool_stats()["in_use"] == 0
    assert await _rows(server, app) == 0
    await assert_clean(repo, server, app, loop_errors)


@pytest.mark.parametrize("canceller", list(CANCELLERS))
async def test_issue17_r13_idle_in_transaction_kill_then_cancelled_caller_sees_its_own_cancellation(
    make_repo: MakeRepo, server: Cluster, app: str, loop_errors: list[dict[str, Any]], canceller: str
) -> None:
    """The session dies while the block sleeps; the caller's scope then expires: the failed ROLLBACK on the
    dead connection must not replace the caller's cancellation, and the slot comes back."""
    repo = await make_repo(pool_size=2)
    pids: list[int] = []

    async def work() -> None:
        async with repo.transaction():
            await repo.query(IDLE_LIMIT)
            await repo.query("INSERT INTO chaos_rows (tag) VALUES ($1)", [app])
            pids.append((await repo.query("SELECT pg_backend_pid()")).rows[0][0])
            await anyio.sleep(5)

    await cancel_with(canceller, work, 0.6 * FACTOR)  # the server ends the session after 0.15 s idle
    assert repo.pool_stats()["in_use"] == 0

    async def gone() -> bool:
        return await server.fetch("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pids[0]) == []

    await wait_for(gone, 1, "the session was ended by idle_in_transaction_session_timeout")
    assert await _rows(server, app) == 0
    await assert_clean(repo, server, app, loop_errors)
