"""Issue 16, defects 6, 7 and 16: ``Rollback`` is a control-flow signal, not an error; a failing
ROLLBACK never replaces the exception (or cancellation) leaving a transaction; a statement from
another event loop (Starlette's synchronous ``TestClient``) is refused with the fix."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from asyncecto import Multi, Repo
from asyncecto.errors import (
    AsyncEctoError,
    ConnectionLostError,
    MultiError,
    RepoStateError,
    Rollback,
    SandboxError,
)
from asyncecto.integrations.starlette import exception_handlers
from asyncecto.repo._core import executor_of
from asyncecto.testing import Sandbox

from .._wait import eventually
from ..schemas import Weather

# ------------------------------------------------------------------------------------------------
# defect 6: Rollback is not an error
# ------------------------------------------------------------------------------------------------


def test_defect_6_rollback_is_a_control_signal_not_an_error() -> None:
    assert issubclass(Rollback, BaseException)
    assert not issubclass(Rollback, Exception)
    assert not issubclass(Rollback, AsyncEctoError)


async def _count(admin: Any) -> int:
    n: int = await admin.fetchval("SELECT count(*) FROM weather")
    return n


BOTH_WAYS = pytest.mark.parametrize(
    "where", ["sandbox", pytest.param("database", marks=pytest.mark.no_sandbox)]
)  # savepoints in the test sandbox, and real BEGIN/ROLLBACK


@BOTH_WAYS
async def test_defect_6_rollback_is_not_caught_by_except_asyncectoerror_and_rolls_back(
    repo: Repo, admin: Any, where: str
) -> None:
    async def work(r: Repo) -> str:
        await r.insert(Weather(city="never"))
        try:
            r.rollback("undone")
        except AsyncEctoError:  # a handler for the library's errors around code that rolls back
            return "swallowed"
        except Exception:  # and a catch-all
            return "swallowed"

    assert await repo.transaction(work) == "undone"
    async with repo.transaction() as tx:
        await repo.insert(Weather(city="never either"))
        with contextlib.suppress(Exception):  # a catch-all around code that rolls back
            repo.rollback(7)
    assert (tx.rolled_back, tx.value) == (True, 7)
    assert await _count(admin) == 0


@BOTH_WAYS
async def test_rollback_in_nested_blocks_rolls_back_its_own_level(repo: Repo, admin: Any, where: str) -> None:
    async with repo.transaction() as outer:
        await repo.insert(Weather(city="outer"))
        async with repo.transaction() as inner:
            await repo.insert(Weather(city="inner"))
            with contextlib.suppress(Exception):
                repo.rollback("inner only")

        async def nested(r: Repo) -> str:
            await r.insert(Weather(city="nested fn"))
            with contextlib.suppress(AsyncEctoError):
                r.rollback("nested fn")
            return "committed"

        assert await repo.transaction(nested) == "nested fn"
        await repo.insert(Weather(city="after"))
    assert (inner.rolled_back, inner.value, outer.rolled_back) == (True, "inner only", False)
    assert sorted(c for (c,) in await admin.fetch("SELECT city FROM weather")) == ["after", "outer"]


@BOTH_WAYS
async def test_rollback_inside_a_multi_step_with_a_catch_all_fails_the_multi(
    repo: Repo, admin: Any, where: str
) -> None:
    def step(r: Repo, changes: dict[Any, Any]) -> str:
        try:
            r.rollback("refused")
        except Exception:  # pragma: no cover - the defect
            return "swallowed"

    with pytest.raises(MultiError) as info:
        await repo.transaction(Multi.new() | Multi.insert("w", Weather(city="no")) | Multi.run("check", step))
    assert (info.value.operation, info.value.value) == ("check", "refused")
    assert await _count(admin) == 0


@BOTH_WAYS
@pytest.mark.parametrize("group", ["anyio", "asyncio"])
async def test_rollback_inside_a_task_group_body_rolls_back_quietly(
    repo: Repo, admin: Any, group: str, where: str
) -> None:
    """The task group wraps the host's Rollback in a BaseExceptionGroup: still a rollback, not a leak."""

    async def sleeper() -> None:
        await asyncio.sleep(10)

    async with repo.transaction() as tx:
        await repo.insert(Weather(city="never"))
        if group == "anyio":
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                repo.rollback("from a task group")
        else:
            async with asyncio.TaskGroup() as atg:
                atg.create_task(sleeper())
                repo.rollback("from a task group")
    assert (tx.rolled_back, tx.value) == (True, "from a task group")
    assert await _count(admin) == 0

    async def body(r: Repo) -> str:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            r.rollback("fn")
        return "committed"

    assert await repo.transaction(body) == "fn"

    # a Multi step doing the same fails the Multi with the value
    async def step(r: Repo, changes: dict[Any, Any]) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            r.rollback("in a multi")

    with pytest.raises(MultiError) as info:
        await repo.transaction(Multi.new() | Multi.insert("w", Weather(city="no")) | Multi.run("check", step))
    assert info.value.value == "in a multi"
    assert await _count(admin) == 0


async def test_rollback_from_a_child_task_is_refused_not_leaked(repo: Repo, admin: Any) -> None:
    async def child() -> None:
        repo.rollback("from a child")

    async with repo.transaction() as tx:
        await repo.insert(Weather(city="kept"))
        with pytest.raises(RepoStateError, match="another task"):
            await asyncio.create_task(child())
    assert tx.rolled_back is False
    assert await _count(admin) == 1


# ------------------------------------------------------------------------------------------------
# defect 7: a failing ROLLBACK never replaces what leaves the transaction
# ------------------------------------------------------------------------------------------------

Block = Callable[[], AbstractAsyncContextManager[None]]


async def _kill_own_backend(repo: Repo, admin: asyncpg.Connection) -> int:
    """Terminate the backend of the repo's connection pinned to this task (a connection this test opened)."""
    pid: int = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    bound = executor_of(repo).bound()
    assert bound is not None
    for _ in range(200):  # until the client has seen the connection close
        if bound.conn.is_closed():
            break
        await asyncio.sleep(0.01)
    return pid


async def _exit_by_value_error(block: Block) -> None:
    with pytest.raises(ValueError, match="the user's error"):
        async with block():
            raise ValueError("the user's error")


async def _exit_by_task_cancel(block: Block) -> None:
    entered = asyncio.Event()

    async def work() -> None:
        async with block():
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def _exit_by_asyncio_timeout(block: Block) -> None:
    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(0.5):
            async with block():
                await asyncio.sleep(30)
    assert not isinstance(info.value, AsyncEctoError)  # asyncio's own TimeoutError


async def _exit_by_move_on_after(block: Block) -> None:
    with anyio.move_on_after(0.5) as scope:
        async with block():
            await anyio.sleep(30)
    assert scope.cancelled_caught


async def _exit_by_fail_after(block: Block) -> None:
    with pytest.raises(TimeoutError) as info:
        with anyio.fail_after(0.5):
            async with block():
                await anyio.sleep(30)
    assert not isinstance(info.value, AsyncEctoError)


async def _exit_by_cancel_scope(block: Block) -> None:
    with anyio.CancelScope() as scope:
        async with block():
            scope.cancel()
            await anyio.sleep(30)
    assert scope.cancelled_caught


EXITS: dict[str, Callable[[Block], Awaitable[None]]] = {
    "ValueError": _exit_by_value_error,
    "task.cancel": _exit_by_task_cancel,
    "asyncio.timeout": _exit_by_asyncio_timeout,
    "anyio.move_on_after": _exit_by_move_on_after,
    "anyio.fail_after": _exit_by_fail_after,
    "anyio.CancelScope.cancel": _exit_by_cancel_scope,
}


async def _assert_pool_whole(repo: Repo, admin: asyncpg.Connection, killed: int) -> None:
    stats = repo.pool_stats()
    assert stats["in_use"] == 0, stats
    # every connection works: the killed one was discarded, never handed out again
    pids = await asyncio.gather(*(repo.query("SELECT pg_backend_pid(), pg_sleep(0.05)") for _ in range(5)))
    assert killed not in {r.rows[0][0] for r in pids}
    assert repo.pool_stats()["in_use"] == 0
    assert await _count(admin) == 0


@pytest.mark.no_sandbox
@pytest.mark.parametrize("nested", [False, True], ids=["outermost", "savepoint"])
@pytest.mark.parametrize("how", list(EXITS))
async def test_defect_7_a_failing_rollback_never_replaces_the_exception_leaving_a_transaction(
    repo: Repo, admin: asyncpg.Connection, how: str, nested: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Backend killed inside the block, then the block ends by an error or a cancellation: that
    error or cancellation is what the caller gets (an anyio one stays in its scope); the ROLLBACK's
    failure is logged; the dead connection is discarded and the pool stays whole."""
    killed: list[int] = []

    @contextlib.asynccontextmanager
    async def block() -> AsyncIterator[None]:
        async with repo.transaction():
            await repo.insert(Weather(city="lost"))
            if nested:
                async with repo.transaction():
                    await repo.insert(Weather(city="lost too"))
                    killed.append(await _kill_own_backend(repo, admin))
                    yield
            else:
                killed.append(await _kill_own_backend(repo, admin))
                yield

    with caplog.at_level(logging.WARNING, logger="asyncecto"):
        await EXITS[how](block)
    failed = [r.getMessage() for r in caplog.records if "ROLLBACK" in r.getMessage() and "failed" in r.getMessage()]
    assert len(failed) == (2 if nested else 1), [r.getMessage() for r in caplog.records]
    await _assert_pool_whole(repo, admin, killed[0])


@pytest.mark.no_sandbox
async def test_a_failing_rollback_is_noted_on_the_users_exception(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="the user's error") as info:
        async with repo.transaction():
            await _kill_own_backend(repo, admin)
            raise ValueError("the user's error")
    notes = getattr(info.value, "__notes__", [])
    assert any("ROLLBACK failed" in n and "terminating connection due to administrator command" in n for n in notes)


async def _ended_by_the_server(admin: asyncpg.Connection, pid: int) -> None:
    """Wait until the server has ended the session ``pid`` (its idle-in-transaction timeout)."""

    async def gone() -> bool:
        return not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

    await eventually(gone, f"the server ending session {pid}")


@pytest.mark.no_sandbox
@pytest.mark.parametrize("nested", [False, True], ids=["outermost", "savepoint"])
async def test_defect_7_idle_in_transaction_timeout_reaches_the_user_with_the_servers_reason(
    repo: Repo, admin: asyncpg.Connection, nested: bool
) -> None:
    async def idle_then_read() -> None:
        await repo.insert(Weather(city="lost"))
        await _ended_by_the_server(admin, pid)
        await repo.all(Weather)

    with pytest.raises(ConnectionLostError) as info:
        async with repo.transaction():
            # per session, never in the server's configuration; reverted when the connection is reset
            await repo.query("SET idle_in_transaction_session_timeout = '150ms'")
            pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
            if nested:
                async with repo.transaction():
                    await idle_then_read()
            else:
                await idle_then_read()
    assert info.value.sqlstate == "25P03"
    assert "terminating connection due to idle-in-transaction timeout" in str(info.value)
    assert repo.pool_stats()["in_use"] == 0
    assert await _count(admin) == 0
    assert (await repo.query("SELECT 1")).rows == [(1,)]


@pytest.mark.no_sandbox
async def test_a_killed_backend_names_the_servers_reason_at_the_next_statement(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    with pytest.raises(ConnectionLostError) as info:
        async with repo.transaction():
            await _kill_own_backend(repo, admin)
            await repo.all(Weather)
    assert info.value.sqlstate == "57P01"
    assert "terminating connection due to administrator command" in str(info.value)
    assert repo.pool_stats()["in_use"] == 0


# ------------------------------------------------------------------------------------------------
# defect 16: a statement from another event loop (Starlette's synchronous TestClient)
# ------------------------------------------------------------------------------------------------


def _weather_app(repo: Repo) -> FastAPI:
    app = FastAPI(exception_handlers=exception_handlers)

    @app.get("/weather")
    async def cities() -> list[str | None]:
        return [w.city for w in await repo.all(Weather)]

    @app.post("/weather")
    async def add() -> dict[str, int | None]:
        async with repo.transaction():
            w = await repo.insert(Weather(city="from the app"))
        return {"id": w.id}

    @app.get("/checkout")
    async def checkout() -> int:
        async with repo.checkout():
            return len(await repo.all(Weather))

    return app


# Starlette's TestClient warns that it would rather run on httpx2 (not installed)
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
async def test_defect_16_starlette_testclient_inside_the_sandbox_raises_sandbox_error_naming_the_async_client(
    repo: Repo, sandbox: Sandbox | None
) -> None:
    from starlette.testclient import TestClient

    assert sandbox is not None
    await repo.insert(Weather(city="the test's"))
    with TestClient(_weather_app(repo)) as client:  # runs the app in a thread, on an event loop of its own
        for method, path in [("GET", "/weather"), ("POST", "/weather"), ("GET", "/checkout")]:
            with pytest.raises(SandboxError) as info:
                client.request(method, path)
            message = str(info.value)
            assert "another event loop than the sandbox's" in message and "TestClient" in message
            assert "transport = httpx.ASGITransport(app=app)" in message
            assert 'async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:' in message
    # the sandbox is untouched: the test goes on in its own loop, and the async client works
    assert [w.city for w in await repo.all(Weather)] == ["the test's"]
    transport = httpx.ASGITransport(app=_weather_app(repo))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/weather")).status_code == 200
        assert (await client.get("/weather")).json() == ["the test's", "from the app"]


@pytest.mark.no_sandbox
async def test_defect_16_the_repo_used_from_another_event_loop_raises_a_library_error(repo: Repo) -> None:
    def elsewhere(call: Callable[[], Awaitable[Any]]) -> BaseException | None:
        async def attempt() -> BaseException | None:
            try:
                await call()
            except BaseException as exc:  # returned to the test's loop to be checked there
                return exc
            return None

        return asyncio.run(attempt())

    async def in_transaction() -> None:
        async with repo.transaction():
            pass  # pragma: no cover - refused on entry

    async def listen() -> None:
        async with repo.listen("integrity_txn"):
            pass  # pragma: no cover - refused on entry

    for call in (lambda: repo.all(Weather), in_transaction, listen):
        error = await asyncio.to_thread(elsewhere, call)
        assert isinstance(error, RepoStateError), repr(error)
        assert "repo is running on another event loop" in str(error)
        assert "httpx.ASGITransport(app=app)" in str(error)
    assert repo.pool_stats()["in_use"] == 0
    assert await repo.all(Weather) == []


@pytest.mark.no_sandbox
async def test_idle_in_transaction_timeout_before_commit_names_the_servers_reason(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    with pytest.raises(ConnectionLostError) as info:
        async with repo.transaction():
            await repo.query("SET idle_in_transaction_session_timeout = '150ms'")
            pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
            await repo.insert(Weather(city="lost"))
            await _ended_by_the_server(admin, pid)  # the block's end is the next statement
    assert info.value.sqlstate == "25P03"
    assert "terminating connection due to idle-in-transaction timeout" in str(info.value)
    assert "idle_in_transaction_session_timeout" in str(info.value)  # the hint
    assert repo.pool_stats()["in_use"] == 0
    assert await _count(admin) == 0


async def test_a_telemetry_handler_raising_rollback_is_detached_like_a_failing_one(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    def rolls_back(event: Any) -> None:
        raise Rollback("not a handler's business")

    name = repo.telemetry.attach(rolls_back, name="rolls_back")
    with caplog.at_level(logging.ERROR, logger="asyncecto"):
        await repo.all(Weather)
        await repo.telemetry.flush()

        def logged() -> bool:  # by whichever met it first: the flush or the delivery worker
            return any("telemetry handler 'rolls_back' failed" in r.getMessage() for r in caplog.records)

        await eventually(logged, "the failing handler logged")
    assert sum("telemetry handler 'rolls_back' failed" in r.getMessage() for r in caplog.records) == 1
    assert repo.telemetry.detach(name) is False  # already detached
    assert repo.state == "running" and repo.supervisor_restarts.get("telemetry") == 0
    assert await repo.all(Weather) == []
