"""Who lends a task its connection: the adapter's pool, or the test sandbox the task runs in.

Ecto's ownership pool (``DBConnection.Ownership``): a layer between the Repo and the adapter's
pool. Statements, transactions and checkouts ask it for a connection and give it back to it.
Outside tests it passes straight through to the pool; once a sandbox (or manual mode) was set up
on the repo, it finds the sandbox owning the task's connection and takes a turn on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from asyncecto.errors import SandboxError

if TYPE_CHECKING:
    from asyncecto.adapters import Connection

    from ._core import RepoCore
    from ._sandbox import Sandbox

__all__ = ("UNBOXED", "Ownership")


class _Unboxed:
    def __repr__(self) -> str:
        return "UNBOXED"


#: a context marked with it runs on the pool, outside any sandbox (``asyncecto.testing.unboxed``)
UNBOXED: Any = _Unboxed()


class Ownership:
    """The Repo's connection lender: the pool, or the sandbox that owns this task's connection.

    :ivar shared: the sandbox every task uses, if one is open
    :ivar opening: a shared sandbox is opening (a second one is refused meanwhile)
    :ivar var: the sandbox of this context (``shared=False``, ``allow()``), or :data:`UNBOXED`
    :ivar mode: ``"manual"``: a statement outside any sandbox is refused (``asyncecto.testing.mode``)
    :ivar active: whether a sandbox or manual mode was ever set up (keeps the pool path cheap otherwise)
    :ivar open: sandboxes open on the repo
    """

    __slots__ = ("active", "core", "mode", "open", "opening", "shared", "var")

    def __init__(self, core: RepoCore) -> None:
        self.core = core
        self.shared: Sandbox | None = None
        self.opening = False
        self.var: contextvars.ContextVar[Any] = contextvars.ContextVar(f"asyncecto_sandbox_{id(core):x}", default=None)
        self.mode = "auto"
        self.active = False
        self.open = 0

    # -- lending ----------------------------------------------------------------------
    def checkout_nowait(self) -> Connection | None:
        """An idle pooled connection at once; ``None`` when there is none or a sandbox may own this task's
        (then ``await checkout()``)."""
        return None if self.active else self.core.adapter.checkout_nowait()

    async def checkout(self, what: str, sql: str | None = None) -> tuple[Connection, Sandbox | None]:
        """This task's connection and the sandbox that lent it (``None``: the pool).

        A sandbox's connection is in the sandbox's transaction; the caller takes a turn on it for
        ``what`` (``"a statement"``, ``"a transaction"``, ``"a checkout"``); raw ``sql`` that would
        end that transaction is refused first.

        :raises SandboxError: in manual mode with no sandbox for this task, or its sandbox has ended
        """
        sandbox = self.owner() if self.active else None
        if sandbox is None:
            return await self.core.adapter.checkout(), None
        if sql is not None:
            sandbox.check_sql(sql)
        return await sandbox.acquire(what), sandbox

    async def checkin(self, conn: Connection, sandbox: Sandbox | None) -> None:
        """Give back a connection from :meth:`checkout` (or :meth:`checkout_nowait`, with no sandbox)."""
        if sandbox is not None:
            sandbox.release()
            return
        adapter = self.core.adapter
        if not adapter.checkin_nowait(conn):
            await adapter.checkin(conn)

    # -- which sandbox ----------------------------------------------------------------
    def current(self) -> Sandbox | None:
        """The sandbox this context would use, open or ended: its own (``shared=False``), else the
        repo's shared one; ``None`` in an ``unboxed`` block or when there is none."""
        sb = self.var.get()
        if sb is UNBOXED:
            return None
        return self.shared if sb is None else sb

    def owner(self) -> Sandbox | None:
        """The sandbox this task's statements run in, if any.

        :raises SandboxError: in manual mode with no sandbox for this task, or its sandbox has ended
        """
        sb = self.current()
        if sb is None:
            if self.mode == "manual" and self.var.get() is not UNBOXED:
                task = asyncio.current_task()
                raise SandboxError(
                    self.core.name,
                    f"cannot find a sandbox for task {task.get_name() if task else None!r}: "
                    "the repo is in manual sandbox mode",
                    "open one for the test (the `sandbox` pytest fixture, or `async with sandbox(repo):`), "
                    "share one with every task (`sandbox(repo, shared=True)`), or let this task use an open "
                    "one (`with sb.allow():`); `unboxed(repo)` runs outside the sandbox",
                )
            return None
        if sb.state != "open":
            sb._check_open()
        return sb

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        """Statements in the block run on the pool, outside any test sandbox (and its transaction)."""
        core = self.core
        token = self.var.set(UNBOXED)
        bound = core.bound_var.get()
        bound_token = core.bound_var.set(None) if bound is not None and bound.sandbox is not None else None
        self.active = True
        try:
            yield
        finally:
            if bound_token is not None:
                with contextlib.suppress(ValueError):
                    core.bound_var.reset(bound_token)
            with contextlib.suppress(ValueError):
                self.var.reset(token)
