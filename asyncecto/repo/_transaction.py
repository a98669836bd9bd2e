"""Transactions and checkouts: a connection pinned to the task for a block of work.

``async with repo.transaction():`` checks a connection out, sends ``BEGIN``, and binds the
connection to the current task (a context variable), so every repo call in the block
uses it. A nested block is a ``SAVEPOINT``: a failure inside it rolls back to the
savepoint only, and the outer transaction goes on. Commit, rollback and the release of
the connection run in a task of their own behind ``asyncio.shield``: cancelling the
caller cannot leave a connection idle in a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from asyncecto.errors import ArgumentError, Rollback

from ._core import DEFAULT, Bound, RepoCore, current_connection

__all__ = ("Checkout", "Transaction")

_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
    "read_uncommitted": "READ UNCOMMITTED",
}


async def _shielded(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile."""
    task = asyncio.get_running_loop().create_task(work)
    await asyncio.shield(task)


class Transaction:
    """``async with repo.transaction() as tx:`` — or ``await repo.transaction(fn)``.

    :ivar rolled_back: whether the block ended by ``repo.rollback(value)``
    :ivar value: the value given to ``repo.rollback``
    """

    def __init__(self, core: RepoCore, isolation: str | None = None, read_only: bool = False) -> None:
        if isolation is not None and isolation not in _ISOLATION:
            raise ArgumentError(f"unknown isolation level {isolation!r}; use one of {', '.join(_ISOLATION)}")
        self.core = core
        self.isolation = isolation
        self.read_only = read_only
        self.rolled_back = False
        self.value: Any = None
        self._bound: Bound | None = None
        self._savepoint: str | None = None
        self._token: Any = None

    def _begin_sql(self) -> str:
        sql = "BEGIN"
        if self.isolation:
            sql += f" ISOLATION LEVEL {_ISOLATION[self.isolation]}"
        if self.read_only:
            sql += " READ ONLY"
        return sql

    async def __aenter__(self) -> Transaction:
        core = self.core
        core._check("begin a transaction")
        bound = core.bound()
        if bound is not None and bound.depth > 0:
            core._check_owner(bound)
            if self.isolation or self.read_only:
                raise ArgumentError("isolation and read_only apply to the outermost transaction only")
            bound.depth += 1
            self._bound = bound
            self._savepoint = f"asyncecto_{bound.depth}"
            await core.run("execute", f"SAVEPOINT {self._savepoint}", (), DEFAULT, None, pinned=bound.conn)
            return self
        if bound is not None:  # inside a checkout: begin on its connection
            core._check_owner(bound)
            bound.depth = 1
            self._bound = bound
            await core.run("execute", self._begin_sql(), (), DEFAULT, None, pinned=bound.conn)
            return self
        conn = core.adapter.checkout_nowait() or await core.adapter.checkout()
        self._bound = Bound(core, conn, asyncio.current_task(), 1)
        try:
            await core.run("execute", self._begin_sql(), (), DEFAULT, None, pinned=conn)
        except BaseException:
            self._bound.active = False
            await _shielded(core.adapter.checkin(conn))
            raise
        self._token = current_connection.set(self._bound)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        bound = self._bound
        assert bound is not None
        if isinstance(exc, Rollback):
            self.rolled_back, self.value = True, exc.value
        failed = exc is not None
        if self._savepoint is not None:
            await _shielded(self._end_savepoint(bound, failed))
        else:
            if self._token is not None:
                current_connection.reset(self._token)
            await _shielded(self._end(bound, failed))
        return isinstance(exc, Rollback)

    async def _end_savepoint(self, bound: Bound, failed: bool) -> None:
        name = self._savepoint
        try:
            if failed:
                await self.core.run("execute", f"ROLLBACK TO SAVEPOINT {name}", (), DEFAULT, None, pinned=bound.conn)
            await self.core.run("execute", f"RELEASE SAVEPOINT {name}", (), DEFAULT, None, pinned=bound.conn)
        finally:
            bound.depth -= 1

    async def _end(self, bound: Bound, failed: bool) -> None:
        core = self.core
        owns_connection = self._token is not None
        try:
            await core.run("execute", "ROLLBACK" if failed else "COMMIT", (), DEFAULT, None, pinned=bound.conn)
        finally:
            bound.depth = 0
            if owns_connection:
                bound.active = False
                await core.adapter.checkin(bound.conn)  # a connection still in a transaction is reset

    async def run(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        """Run ``fn(repo)`` (or ``fn()``) in the transaction; its result, or the rollback value."""
        async with self:
            result = fn(self.core) if _takes_repo(fn) else fn()
            return await result
        return self.value


def _takes_repo(fn: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


class Checkout:
    """``async with repo.checkout():`` — pin one connection to the task without a transaction."""

    def __init__(self, core: RepoCore) -> None:
        self.core = core
        self._bound: Bound | None = None
        self._token: Any = None

    async def __aenter__(self) -> Checkout:
        core = self.core
        core._check("check out a connection")
        if core.bound() is not None:
            return self  # nested: reuse the pinned connection
        conn = core.adapter.checkout_nowait() or await core.adapter.checkout()
        self._bound = Bound(core, conn, asyncio.current_task(), 0)
        self._token = current_connection.set(self._bound)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._bound is None:
            return
        current_connection.reset(self._token)
        self._bound.active = False
        await _shielded(self.core.adapter.checkin(self._bound.conn))
