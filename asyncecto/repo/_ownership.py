"""Who lends a task its connection: the adapter's pool, or the test sandbox the task runs in.

Ecto's ownership pool (``DBConnection.Ownership``): a layer between the Repo and the adapter's
pool. Statements, transactions and checkouts ask it for a connection and give it back to it.
Outside tests it passes straight through to the pool; once a sandbox (or manual mode) was set up
on the repo, it finds the sandbox owning the task's connection and takes a turn on it.

What it lends is a :class:`Lease`: the connection, whether it is inside a transaction already
(then the borrower's outermost block is a savepoint), and a statement guard. A :class:`PoolLease`
is a plain pooled connection; a :class:`SandboxLease` is the sandbox's connection, in its
transaction, each statement outside a block behind the sandbox's savepoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from asyncecto._aio import finish
from asyncecto.errors import SandboxError

if TYPE_CHECKING:
    from asyncecto.adapters import Connection, RepoAdapter

    from ._core import RepoCore
    from ._sandbox import Sandbox

__all__ = ("UNBOXED", "Lease", "Ownership", "PoolLease", "SandboxLease")


class _Unboxed:
    def __repr__(self) -> str:
        return "UNBOXED"


#: a context marked with it runs on the pool, outside any sandbox (``asyncecto.testing.unboxed``)
UNBOXED: Any = _Unboxed()


class Lease:
    """A connection lent by the ownership layer, and what its borrower must do around statements.

    The hooks of this base class do nothing: as such it stands for a connection the caller holds
    already (``RepoCore.run(pinned=)``); the lenders are :class:`PoolLease` and :class:`SandboxLease`.

    :ivar conn: the connection
    """

    __slots__ = ("conn",)

    #: the connection is inside the lender's transaction already: the borrower's outermost
    #: ``repo.transaction()`` is a savepoint, and raw transaction control is refused
    in_transaction = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def check_sql(self, sql: str) -> None:
        """Refuse raw ``sql`` that would end the lender's transaction (nothing to refuse on the pool)."""

    async def before_statement(self) -> None:
        """Before a statement outside any block of the borrower: mark where its failure rolls back to."""

    async def undo_statement(self) -> None:
        """After such a statement failed: roll back to the mark, runs to its end even if cancelled."""

    async def restore_timeout(self) -> None:
        """After a statement that lifted the statement timeout: put the configured one back, if the
        connection is not reset before its next borrower."""

    def checkin_nowait(self) -> bool:
        """Give the connection back if that needs no I/O; ``False``: ``await checkin()``."""
        raise NotImplementedError

    async def checkin(self) -> None:
        """Give the connection back."""
        raise NotImplementedError


class PoolLease(Lease):
    """A connection of the adapter's pool: no transaction of its own, nothing to guard; its
    release resets it (a lifted timeout, a transaction left open)."""

    __slots__ = ("adapter",)

    def __init__(self, conn: Connection, adapter: RepoAdapter) -> None:
        self.conn = conn
        self.adapter = adapter

    def checkin_nowait(self) -> bool:
        return self.adapter.checkin_nowait(self.conn)

    async def checkin(self) -> None:
        if not self.adapter.checkin_nowait(self.conn):
            await self.adapter.checkin(self.conn)


class SandboxLease(Lease):
    """A turn on a test sandbox's connection, which stays in the sandbox's transaction.

    :ivar sandbox: the lender; its lock is held until :meth:`checkin`
    """

    __slots__ = ("sandbox",)

    in_transaction = True

    def __init__(self, conn: Connection, sandbox: Sandbox) -> None:
        self.conn = conn
        self.sandbox = sandbox

    def check_sql(self, sql: str) -> None:
        self.sandbox.check_sql(sql)

    async def before_statement(self) -> None:
        await self.sandbox.before_statement(self.conn)

    async def undo_statement(self) -> None:
        await finish(self.sandbox.undo_statement(self.conn))

    async def restore_timeout(self) -> None:
        # the sandbox's connection is not released (and reset) until the test ends
        await self.conn.set_statement_timeout(self.sandbox.core.config.timeout)

    def checkin_nowait(self) -> bool:
        self.sandbox.release()
        return True

    async def checkin(self) -> None:
        self.sandbox.release()


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
    def checkout_nowait(self) -> Lease | None:
        """An idle pooled connection at once; ``None`` when there is none or a sandbox may own this task's
        (then ``await checkout()``)."""
        if self.active:
            return None
        conn = self.core.adapter.checkout_nowait()
        return None if conn is None else PoolLease(conn, self.core.adapter)

    async def checkout(self, what: str, sql: str | None = None) -> Lease:
        """This task's connection: the pool's, or a turn on the sandbox's that owns the task.

        A sandbox's connection is in the sandbox's transaction; the caller takes a turn on it for
        ``what`` (``"a statement"``, ``"a transaction"``, ``"a checkout"``); raw ``sql`` that would
        end that transaction is refused first. Give it back with the lease's ``checkin``.

        :raises SandboxError: in manual mode with no sandbox for this task, or its sandbox has ended
        """
        sandbox = self.owner() if self.active else None
        if sandbox is None:
            adapter = self.core.adapter
            return PoolLease(await adapter.checkout(), adapter)
        if sql is not None:
            sandbox.check_sql(sql)
        return SandboxLease(await sandbox.acquire(what), sandbox)

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
        # a connection lent inside the sandbox's transaction is left alone in the block
        bound_token = core.bound_var.set(None) if bound is not None and bound.lease.in_transaction else None
        self.active = True
        try:
            yield
        finally:
            if bound_token is not None:
                with contextlib.suppress(ValueError):
                    core.bound_var.reset(bound_token)
            with contextlib.suppress(ValueError):
                self.var.reset(token)
