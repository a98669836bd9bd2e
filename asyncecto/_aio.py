"""Small asyncio helpers shared by the pool and the Repo (internal)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ("finish",)


async def finish(work: Coroutine[Any, Any, None]) -> None:
    """Run cleanup ``work`` to its end, even if the caller is cancelled meanwhile.

    The work runs in a task of its own. A caller cancelled while waiting keeps waiting
    until the work is done, then re-raises the cancellation: nothing the caller does next
    can meet the connection the work is still using.
    """
    task = asyncio.get_running_loop().create_task(work)
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True  # anyio cancels again at every await: keep waiting for the work
    if cancelled:
        if task.done() and not task.cancelled() and task.exception() is not None:
            task.exception()  # retrieved; the cancellation wins
        raise asyncio.CancelledError
