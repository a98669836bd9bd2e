"""The Repo's supervisor: an anyio task group that runs background workers and restarts them.

It lives in a task of its own, so ``await repo.start()`` and ``await repo.stop()``
may be called from different tasks (an aiohttp startup and cleanup hook, say).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

import anyio

__all__ = ("Supervisor",)

logger = logging.getLogger("asyncecto")


class Supervisor:
    """Runs each worker forever, one-for-one: a crashed worker is logged and restarted with back-off.

    :ivar restarts: per worker, how many times it was restarted
    """

    def __init__(self, name: str, *, min_backoff: float = 0.1, max_backoff: float = 5.0) -> None:
        self.name = name
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.restarts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None

    async def start(self, workers: list[tuple[str, Callable[[], Awaitable[None]]]]) -> None:
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        # a fresh context: the workers must not inherit the caller's transaction or sandbox
        self._task = loop.create_task(self._run(workers, ready), context=contextvars.Context())
        await ready.wait()

    async def _run(self, workers: list[tuple[str, Callable[[], Awaitable[None]]]], ready: asyncio.Event) -> None:
        async with anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope
            for name, fn in workers:
                self.restarts[name] = 0
                tg.start_soon(self._supervise, name, fn, name=f"{self.name}:{name}")
            ready.set()

    async def _supervise(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await fn()
                logger.warning("repo %s: worker %s returned; restarting it", self.name, name)
            except Exception:
                logger.exception("repo %s: worker %s crashed; restarting it", self.name, name)
            if time.monotonic() - started > 30:
                failures = 0
            delay = min(self.min_backoff * 2**failures, self.max_backoff)
            failures += 1
            self.restarts[name] += 1
            await anyio.sleep(delay)

    async def stop(self) -> None:
        """Cancel every worker and wait for the task group to finish."""
        if self._scope is not None:
            self._scope.cancel()
        if self._task is not None:
            await self._task
        self._task = None
        self._scope = None
