"""Issue 21: a transaction's COMMIT and checkin run in the caller's task (``finish_inline``): no task
per COMMIT while nothing cancels it, and still :func:`finish`'s guarantees when something does — the
caller waits for the cleanup, then gets its own cancellation; the work's future is never cancelled;
nothing stays checked out or idle in a transaction. Both cancellation styles, at each await point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from typing import Any

import asyncpg
import pytest

from asyncecto import schema
from asyncecto._aio import finish, finish_inline
from asyncecto.errors import ConnectionLostError

from .test_cancel_points import FLAVOURS, _commit_running, cancel_at, loop_errors, make_repo, pg, rows, settle, tables

__all__ = ("loop_errors", "pg", "tables")  # fixtures shared with the cancel points (loop_errors: autouse)


@contextlib.contextmanager
def tasks_created() -> Iterator[list[Coroutine[Any, Any, Any]]]:
    """The coroutines wrapped in a task while the block runs (the loop's task factory counts them)."""
    loop = asyncio.get_running_loop()
    made: list[Coroutine[Any, Any, Any]] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield made
    finally:
        loop.set_task_factory(previous)


class Steps:
    """A cleanup of three waits, each on a future the test resolves: ``at`` is set at each wait."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []
        self.reached = [asyncio.Event() for _ in range(3)]
        self.done: list[int] = []
        self.tasks: set[asyncio.Task[None] | None] = set()

    async def work(self) -> None:
        loop = asyncio.get_running_loop()
        for i in range(3):
            fut: asyncio.Future[None] = loop.create_future()
            self.futures.append(fut)
            self.tasks.add(asyncio.current_task())
            self.reached[i].set()
            await fut
            self.tasks.add(asyncio.current_task())
            self.done.append(i)

    def answer(self, i: int, after: float = 0.02) -> None:
        asyncio.get_running_loop().call_later(after, lambda: self.futures[i].set_result(None))


async def test_finish_inline_runs_the_work_in_the_callers_task_and_makes_no_task() -> None:
    steps = Steps()

    async def answer_all() -> None:
        for i in range(3):
            await steps.reached[i].wait()
            steps.answer(i, 0.0)

    helper = asyncio.create_task(answer_all())
    with tasks_created() as made:
        await finish_inline(steps.work())
    await helper
    assert made == [] and steps.done == [0, 1, 2]
    assert steps.tasks == {asyncio.current_task()}
    with tasks_created() as made:  # finish, for comparison, makes one
        steps = Steps()
        helper = asyncio.create_task(answer_all())
        await finish(steps.work())
    await helper
    assert len(made) == 2  # the helper and finish's task


@pytest.mark.parametrize("point", [0, 1, 2])
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_finish_inline_cancelled_at_each_wait_finishes_the_work_then_cancels(flavour: str, point: int) -> None:
    steps = Steps()

    async def answer_all() -> None:
        for i in range(3):
            await steps.reached[i].wait()
            if i == point:
                await asyncio.sleep(0.05)  # the cancellation lands while the work waits here
            steps.answer(i)

    helper = asyncio.create_task(answer_all())

    async def body() -> None:
        await finish_inline(steps.work(), limit=5)

    took = await cancel_at(flavour, body, steps.reached[point].wait)
    await helper
    assert steps.done == [0, 1, 2]  # the whole cleanup ran, after the cancellation came
    assert not any(f.cancelled() for f in steps.futures)  # the work's futures were never cancelled
    assert len(steps.tasks) == 2  # the caller's task up to the cancellation, a task of its own after
    assert took < 2


async def test_finish_inline_reports_a_work_cancelled_by_someone_else() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    async def work() -> None:
        await fut

    loop.call_soon(fut.cancel)  # the driver's own future cancelled (not the caller)
    with pytest.raises(ConnectionLostError, match="cleanup was interrupted") as info:
        await finish_inline(work())
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_finish_inline_raises_the_works_error_and_passes_bare_yields() -> None:
    async def work() -> None:
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.001)
        raise ValueError("the work's own error")

    with tasks_created() as made, pytest.raises(ValueError, match="own error"):
        await finish_inline(work())
    assert made == []


async def test_finish_inline_after_a_cancelled_work_gives_up_at_its_limit() -> None:
    gate = asyncio.Event()
    cut: list[bool] = []

    async def work() -> None:
        await gate.wait()

    def abandon() -> None:
        cut.append(True)
        gate.set()

    task = asyncio.create_task(finish_inline(work(), limit=0.1, abandon=abandon))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cut == [True] and task.cancelled()


# ------------------------------------------------------------------------------------------------
# on a real transaction
# ------------------------------------------------------------------------------------------------


@schema("p17_cancel")
class Note:
    id: int | None = None
    note: str | None = None


async def test_a_commit_nobody_cancels_makes_no_task(tables: str, pg: asyncpg.Connection) -> None:
    repo = make_repo(tables, pool_size=2)
    async with repo:
        await repo.all(Note)  # warm: the pool opened its connection
        with tasks_created() as made:
            async with repo.transaction() as tx:
                await repo.insert(Note(id=1, note="x"))
        assert made == [] and tx.committed
        # raw SQL makes the connection dirty: the checkin's reset (I/O) runs through finish, in tasks
        resets = repo.pool_stats()["resets"]
        with tasks_created() as made:
            async with repo.transaction():
                await repo.query("SET LOCAL work_mem = '8MB'")
        assert len(made) == 2 and repo.pool_stats()["resets"] == resets + 1
        # a nested transaction (an insert with children inside a transaction): SAVEPOINT, RELEASE inline
        with tasks_created() as made:
            async with repo.transaction(), repo.transaction() as inner:
                await repo.insert(Note(id=2, note="y"))
        assert made == [] and inner.committed
        assert await rows(pg) == 2
        await settle(repo, pg)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_commit_cancelled_with_a_reset_to_follow_ends_clean(
    tables: str, pg: asyncpg.Connection, flavour: str
) -> None:
    # the cancellation comes at COMMIT (0.5 s, a deferred trigger); the rest — COMMIT's answer, then the
    # checkin's reset (a raw statement made the connection dirty) — runs in a task; the caller waits
    repo = make_repo(tables, pool_size=2)
    txs: list[Any] = []

    async def body() -> None:
        async with repo.transaction() as tx:
            txs.append(tx)
            await repo.query("CREATE TEMP TABLE p21_scratch (x int)")
            await repo.query("INSERT INTO p17_slow (id) VALUES (1)")

    async with repo:
        resets = repo.pool_stats()["resets"]
        took = await cancel_at(flavour, body, lambda: _commit_running(pg))
        assert took > 0.2 and txs[0].committed is True
        assert await rows(pg, "p17_slow") == 1
        await settle(repo, pg)  # returned, nothing idle in a transaction
        assert repo.pool_stats()["resets"] == resets + 1 and repo.pool_stats()["terminated"] == 0
        assert (await repo.query("SELECT to_regclass('pg_temp.p21_scratch') IS NULL")).rows[0][0] is True


async def test_finish_inline_moved_work_sees_its_own_tasks_cancellation() -> None:
    # once moved, the work's task may itself be cancelled (a loop shutting down): the work sees it
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def work() -> None:
        try:
            await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    caller = asyncio.create_task(finish_inline(work(), limit=5))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    (rest,) = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_rest"]  # type: ignore[union-attr]
    rest.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled() and rest.cancelled()
    assert seen == ["cancelled"] and not fut.cancelled()
