"""Waiting for a condition instead of sleeping for a guess (test support).

A fixed sleep is either too short on a loaded machine (the test fails) or too long everywhere (the suite
crawls); these poll the condition itself and fail, naming it, only after a generous deadline.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

__all__ = ("eventually", "statement_running")

#: seconds before a wait gives up: far above any healthy wait, so a loaded machine never trips it
DEADLINE = 15.0


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, *, timeout: float = DEADLINE) -> None:
    """Poll ``check`` (sync or async) until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await anyio.sleep(0.01)


async def statement_running(admin: Any, query: str, *, timeout: float = DEADLINE) -> int:
    """Wait until a session of this database is running ``query`` (its text starts so); its pid.

    ``admin`` is a connection of its own (an ``asyncpg.Connection``), not the one running ``query``.
    """
    pids: list[int] = []

    async def check() -> bool:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND starts_with(query, $1) AND pid <> pg_backend_pid()",
            query,
        )
        pids[:] = [row["pid"] for row in rows]
        return bool(pids)

    await eventually(check, f"a session running {query!r}", timeout=timeout)
    return pids[0]
