"""Small asyncio helpers shared by the pool and the Repo (internal).

Rule for cleanup code: never two :func:`finish` calls in sequence in one ``except``/``finally``
(the first re-raises the caller's cancellation and the second never runs); group the cleanup
into one job and finish that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio

from asyncecto.errors import ConnectionLostError

__all__ = ("finish", "run_all")

logger = logging.getLogger("asyncecto")

#: how long ``finish`` still waits for the work once ``abandon`` has cut its connection
_AFTER_ABANDON = 1.0

#: work given up on (still running after abandon): kept referenced until it ends
_orphans: set[asyncio.Task[None]] = set()


async def run_all(jobs: Sequence[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Run ``jobs`` as concurrent child tasks; the first failure cancels the rest and is raised
    as itself (not wrapped in an exception group)."""
    try:
        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(job)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        first = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
        raise first from None


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


async def finish(
    work: Coroutine[Any, Any, None], *, limit: float | None = None, abandon: Callable[[], None] | None = None
) -> None:
    """Run cleanup ``work`` to its end, even if the caller is cancelled meanwhile.

    The work runs in a task of its own. Not cancelled, the caller waits for it and gets its
    result or error. Cancelled (anyio scope, ``asyncio.timeout``, ``task.cancel()``), the caller
    keeps waiting, shielded, at most ``limit`` seconds more; then ``abandon()`` cuts the work's
    connection and the work gets one more second. Then the caller's own cancellation is raised
    as itself (anyio knows its cancellations by their message), the work's error dropped.
    Nothing here calls ``uncancel()``: the count belongs to whoever cancelled.
    """
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
    me = asyncio.current_task()
    before = me.cancelling() if me is not None else 0
    caught: asyncio.CancelledError | None = None
    try:
        await asyncio.shield(task)  # unshielded from anyio: the first cancellation is seen here
    except asyncio.CancelledError as exc:
        if not task.done() or me is None or me.cancelling() > before:
            caught = exc
    if caught is not None and not task.done():
        caught = await _wait_shielded(task, limit) or caught
        if not task.done() and abandon is not None:
            abandon()  # the work's pending I/O fails at once
            caught = await _wait_shielded(task, _AFTER_ABANDON) or caught
        if not task.done():
            logger.warning("cleanup still running %.1fs after its connection was cut; left behind", _AFTER_ABANDON)
            _orphans.add(task)
            task.add_done_callback(_forget)
    if caught is not None:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the cancellation wins
        raise caught
    if task.cancelled():  # the work was cancelled, its caller was not: never a bare CancelledError
        try:
            task.result()
        except asyncio.CancelledError as exc:
            raise ConnectionLostError("the connection's cleanup was interrupted (its task was cancelled)") from exc
    task.result()


async def _wait_shielded(task: asyncio.Task[None], limit: float | None) -> asyncio.CancelledError | None:
    """Wait for ``task`` at most ``limit`` seconds, shielded from anyio scopes (whose cancellation is
    re-delivered at every wakeup: no busy loop here); the last native cancellation met, if any."""
    caught: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True) as scope:
        if limit is not None:
            scope.deadline = anyio.current_time() + limit
        while not task.done():
            try:
                await asyncio.wait({task})  # never cancels the work, never raises its error
            except asyncio.CancelledError as exc:
                if scope.cancel_called:
                    break  # our own deadline: the scope uncancels what it cancelled
                if not task.done():
                    caught = exc  # another task.cancel(): kept, raised once the work is done
    return caught


def _forget(task: asyncio.Task[None]) -> None:
    _orphans.discard(task)
    if not task.cancelled():
        task.exception()
