"""Small asyncio helpers shared by the pool and the Repo (internal)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio

__all__ = ("finish", "run_all")


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


async def finish(work: Coroutine[Any, Any, None]) -> None:
    """Run cleanup ``work`` to its end, even if the caller is cancelled meanwhile.

    The work runs in a task of its own. A caller cancelled while waiting keeps waiting
    until the work is done, then re-raises the cancellation: nothing the caller does next
    can meet the connection the work is still using.
    """
    task = asyncio.get_running_loop().create_task(work)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError as exc:
            # kept to be raised again as itself: anyio knows its own cancellations by their message
            cancelled = exc
            if task.done():
                break
            # anyio cancels again at every await: keep waiting for the work
    if cancelled is not None:
        if task.done() and not task.cancelled() and task.exception() is not None:
            task.exception()  # retrieved; the cancellation wins
        raise cancelled
