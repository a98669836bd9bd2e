"""The five ways a caller gives up on work, shared by the fault tests: ``task.cancel()``,
``asyncio.timeout``, anyio's ``move_on_after``, ``fail_after`` and ``CancelScope.cancel``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import pytest

from asyncecto.errors import AsyncEctoError

__all__ = ("CANCELLERS", "Work", "assert_own_timeout", "cancel_with")

Work = Callable[[], Coroutine[Any, Any, Any]]


def assert_own_timeout(exc: BaseException) -> None:
    """A scope's own ``TimeoutError``, never a library error standing in for it."""
    assert type(exc) is TimeoutError, repr(exc)
    assert not isinstance(exc, AsyncEctoError)


async def _by_move_on_after(work: Work, after: float) -> None:
    with anyio.move_on_after(after) as scope:
        await work()
    assert scope.cancelled_caught


async def _by_fail_after(work: Work, after: float) -> None:
    with pytest.raises(TimeoutError) as info:
        with anyio.fail_after(after):
            await work()
    assert_own_timeout(info.value)


async def _by_cancel_scope(work: Work, after: float) -> None:
    with anyio.CancelScope() as scope:
        handle = asyncio.get_running_loop().call_later(after, scope.cancel)
        try:
            await work()
        finally:
            handle.cancel()
    assert scope.cancelled_caught


async def _by_asyncio_timeout(work: Work, after: float) -> None:
    with pytest.raises(TimeoutError) as info:
        async with asyncio.timeout(after):
            await work()
    assert_own_timeout(info.value)


async def _by_task_cancel(work: Work, after: float) -> None:
    task = asyncio.create_task(work())
    await asyncio.sleep(after)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


#: name -> canceller(work, after): runs ``work`` and gives up on it after ``after`` seconds, asserting
#: that the caller sees its own cancellation (anyio: the scope caught it; asyncio: its TimeoutError or
#: a cancelled task)
CANCELLERS: dict[str, Callable[[Work, float], Awaitable[None]]] = {
    "anyio.move_on_after": _by_move_on_after,
    "anyio.fail_after": _by_fail_after,
    "anyio.CancelScope.cancel": _by_cancel_scope,
    "asyncio.timeout": _by_asyncio_timeout,
    "task.cancel": _by_task_cancel,
}


async def cancel_with(name: str, work: Work, after: float) -> None:
    """Run ``work`` under the canceller ``name``; afterwards nothing of it is left on this task."""
    await CANCELLERS[name](work, after)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0, "a cancellation escaped its scope"
