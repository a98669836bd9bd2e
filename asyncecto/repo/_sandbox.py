"""The test sandbox: one connection in a transaction that is rolled back at the end.

Ecto's ``Ecto.Adapters.SQL.Sandbox``. While a sandbox is open on a repo, the repo's
statements run on the sandbox's connection instead of the pool: from every task when
the sandbox is *shared* (the default), else from the task that opened it and the tasks it
spawns (they inherit its context). Tasks take turns on the connection, one statement
(or one transaction, or one checkout) at a time. A statement outside a transaction runs
behind a savepoint, so a failed statement leaves the test's transaction usable; a
``repo.transaction()`` becomes a savepoint. Nothing is ever committed.

The public entry points are in :mod:`asyncecto.testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asyncecto._aio import finish
from asyncecto.errors import ArgumentError, AsyncEctoError, SandboxError, SandboxOwnershipTimeoutError

if TYPE_CHECKING:
    from asyncecto.adapters import Connection

    from ._core import RepoCore

__all__ = ("Sandbox",)

logger = logging.getLogger("asyncecto")

#: the isolation levels a sandbox's transaction may have
_ISOLATION = ("read_committed", "repeatable_read", "serializable")

#: the statement-level savepoint's name
_SAVEPOINT = "asyncecto_sandbox"


class Sandbox:
    """One connection in a transaction, shared by the tasks of a test, rolled back at the end.

    :ivar shared: whether every task uses it (else this context and the tasks it spawns)
    :ivar state: ``"new"``, ``"open"`` or ``"closed"``
    :ivar statements: statements run behind the per-statement savepoint
    """

    def __init__(
        self,
        core: RepoCore,
        *,
        shared: bool = True,
        isolation: str | None = None,
        wait_timeout: float | None = None,
        ownership_timeout: float | None = None,
    ) -> None:
        if isolation is not None and isolation not in _ISOLATION:
            raise ArgumentError(f"unknown isolation level {isolation!r}; use one of {', '.join(_ISOLATION)}")
        if wait_timeout is not None and (isinstance(wait_timeout, bool) or not wait_timeout > 0):
            raise ArgumentError(f"wait_timeout must be a positive number of seconds, got {wait_timeout!r}")
        if ownership_timeout is not None and (
            isinstance(ownership_timeout, bool)
            or not isinstance(ownership_timeout, int | float)
            or not ownership_timeout > 0
        ):
            raise ArgumentError(
                f"ownership_timeout must be a positive number of seconds or None, got {ownership_timeout!r}"
            )
        self.core = core
        self.shared = shared
        self.ownership_timeout = None if ownership_timeout is None else float(ownership_timeout)
        self.timed_out = False
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.Task[None] | None = None
        self.isolation = isolation
        if wait_timeout is None:  # long enough for a statement the server lets run its full time
            wait_timeout = core.config.pool_timeout + (core.config.timeout or 0)
        self.wait_timeout = float(wait_timeout)
        self.state = "new"
        self.statements = 0
        self.conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        self._holding = "a statement"
        self._savepoint_open = False
        self._token: Any = None

    def __repr__(self) -> str:
        mode = "shared" if self.shared else "private"
        return f"Sandbox<{self.state} {mode} repo={self.core.name}>"

    @property
    def repo(self) -> Any:
        """The repo this sandbox is open on."""
        return self.core.repo

    # -- opening and closing --------------------------------------------------------
    def _fail(self, problem: str, fix: str) -> SandboxError:
        return SandboxError(self.core.name, problem, fix)

    async def __aenter__(self) -> Sandbox:
        core = self.core
        if self.state != "new":
            raise self._fail(f"cannot open a sandbox that is {self.state}", "create a new one: sandbox(repo)")
        if core.state != "running":
            raise self._fail(
                f"cannot open a sandbox: the repo is {core.state}",
                "start the repo first (`async with repo:` or `await repo.start()`), then open the sandbox",
            )
        if core.bound() is not None:
            raise self._fail(
                "cannot open a sandbox inside a transaction or checkout",
                "open the sandbox first, then begin transactions inside it",
            )
        owners = core.ownership
        inside = owners.current()
        if inside is not None and inside.state == "open":
            raise self._fail(
                "this task is already in a sandbox",
                "use the sandbox you have (one per test); `unboxed(repo)` runs outside it",
            )
        if self.shared and (owners.shared is not None or owners.opening):
            raise self._fail(
                "the repo already has a shared sandbox",
                "close it before opening another; only one shared sandbox may be open per repo at a time "
                "(use sandbox(repo, shared=False) for per-task sandboxes)",
            )
        if self.shared:
            owners.opening = True  # a second shared sandbox opening meanwhile is refused
        try:
            conn = core.adapter.checkout_nowait() or await core.adapter.checkout()
            begin = core.adapter.begin_sql(self.isolation, False)
            try:
                await conn.execute(begin, (), None)
            except BaseException:
                conn.dirty = True
                await finish(core.adapter.checkin(conn))
                raise
        finally:
            if self.shared:
                owners.opening = False
        self.conn = conn
        self.state = "open"
        owners.open += 1
        if self.shared:
            owners.shared = self
        else:
            self._token = owners.var.set(self)
        owners.active = True
        if self.ownership_timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(self.ownership_timeout, self._expire)
        return self

    def _expire(self) -> None:
        """The owner held the connection past ``ownership_timeout``: take it back (Ecto logs it)."""
        self._timer = None
        if self.state != "open":
            return
        self.timed_out = True
        logger.error(
            "sandbox %r: owner timed out because it owned the connection for longer than %gs "
            "(set via the ownership_timeout option)",
            self,
            self.ownership_timeout,
        )
        self._expiry = asyncio.get_running_loop().create_task(self._close(False, wait=0.0))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await finish(self._close(exc is None))
            await self._expired(exc is None)
        finally:
            self._unbind()

    async def _expired(self, report: bool) -> None:
        """After an ownership timeout: wait for the take-back, then report it to the owner."""
        if self._expiry is not None:
            await asyncio.shield(self._expiry)
            owners = self.core.ownership
            if owners.shared is self:
                owners.shared = None
        if self.timed_out and report:
            assert self.ownership_timeout is not None
            raise SandboxOwnershipTimeoutError(self.core.name, self.ownership_timeout)

    def _unbind(self) -> None:
        # in the caller's context: the close itself runs in a task of its own
        if self._token is not None:
            with contextlib.suppress(ValueError):
                self.core.ownership.var.reset(self._token)
            self._token = None

    async def close(self) -> None:
        """Roll back everything and give the connection back (``async with`` does it for you)."""
        try:
            await finish(self._close(True))
            await self._expired(True)
        finally:
            self._unbind()

    async def _close(self, report: bool, wait: float | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.state != "open":
            return
        core, conn = self.core, self.conn
        assert conn is not None
        held_by: str | None = None
        if wait is not None and self._lock.locked():
            held_by = self._describe_holder()  # the ownership timeout: a statement in flight is cut
        else:
            try:
                async with asyncio.timeout(self.wait_timeout):
                    await self._lock.acquire()  # statements of other tasks in flight end first
            except TimeoutError:
                held_by = self._describe_holder()
        self.state = "closed"
        owners = core.ownership
        owners.open -= 1
        if self.shared and owners.shared is self and wait is None:
            owners.shared = None  # after an ownership timeout it stays, refusing use, until the owner exits
        try:
            if held_by is not None:
                conn.terminate()  # in use by another task: it can be neither rolled back nor reused
            else:
                try:
                    await conn.execute(core.adapter.rollback_sql(), (), None)
                except AsyncEctoError:
                    conn.dirty = True  # the release resets or terminates it
            await core.adapter.checkin(conn)
        finally:
            if held_by is None:
                self._lock.release()
        if held_by is not None and report:
            raise self._fail(
                f"the sandbox was closed while {held_by} still used its connection "
                f"(waited {self.wait_timeout:g}s); the connection was terminated, nothing was committed",
                "await (or cancel) the tasks your test starts before the test ends",
            )

    def _describe_holder(self) -> str:
        task = self._holder
        name = task.get_name() if task is not None else "another task"
        return f"task {name!r} (in {self._holding})"

    @contextlib.contextmanager
    def allow(self) -> Iterator[None]:
        """Let the current task (and the tasks it spawns) use this sandbox, like Ecto's ``allow/3``.

        A private sandbox (``shared=False``) is seen by the task that opened it and its child
        tasks; a task started elsewhere (a worker pool, a server) enters it with::

            with sb.allow():
                await repo.all(Post)
        """
        self._check_open()
        owners = self.core.ownership
        token = owners.var.set(self)
        owners.active = True
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                owners.var.reset(token)

    # -- taking turns on the connection -------------------------------------------
    async def acquire(self, what: str = "a statement") -> Connection:
        """Wait for the connection (another task may be using it); release it with :meth:`release`.

        :raises SandboxError: the sandbox has ended, or the connection stayed busy for ``wait_timeout``
        """
        self._check_open()
        try:
            async with asyncio.timeout(self.wait_timeout):
                await self._lock.acquire()
        except TimeoutError:
            if self._holding == "a statement":
                fix = (
                    "a statement of another task ran longer than wait_timeout: make it faster, or raise "
                    "the wait with sandbox(repo, wait_timeout=...)"
                )
            else:
                fix = (
                    "a task that holds a transaction or checkout open must not wait for another task's queries "
                    "(they queue behind it): end the transaction before awaiting them, or run that work in the "
                    "same task"
                )
            raise self._fail(
                f"waited {self.wait_timeout:g}s for the sandbox's connection, held by {self._describe_holder()}", fix
            ) from None
        if self.state != "open":
            self._lock.release()
            self._check_open()
        self._holder = asyncio.current_task()
        self._holding = what
        assert self.conn is not None
        return self.conn

    def release(self) -> None:
        """Let the next task use the connection."""
        self._holder = None
        self._lock.release()

    def _check_open(self) -> None:
        if self.timed_out:
            assert self.ownership_timeout is not None
            raise SandboxOwnershipTimeoutError(self.core.name, self.ownership_timeout)
        if self.state != "open":
            raise self._fail(
                "the sandbox has ended: its transaction was rolled back and its connection returned",
                "run queries only while the sandbox is open; await the tasks a test starts before it ends",
            )

    def check_sql(self, sql: str) -> None:
        """Refuse raw transaction control, which would end (or commit) the sandbox's transaction."""
        first = self.core.adapter.transaction_control(sql)
        if first is not None:
            raise self._fail(
                f"raw {first} cannot run in the sandbox: it would end the sandbox's transaction "
                f"(statement: {sql.strip()[:80]!r})",
                "use `async with repo.transaction():` (a savepoint in the sandbox), or run the test "
                "without the sandbox (@pytest.mark.no_sandbox)",
            )

    # -- the per-statement savepoint ------------------------------------------------
    async def before_statement(self, conn: Connection) -> None:
        """Mark the point a failing statement rolls back to (one round trip).

        It runs to its end even if the caller is cancelled: a savepoint command interrupted
        in flight would abort the sandbox's transaction with nothing to roll back to.
        """
        await finish(self._mark(conn))

    async def _mark(self, conn: Connection) -> None:
        sql = self.core.adapter.remark_sql(_SAVEPOINT, not self._savepoint_open)
        self._savepoint_open = False
        await conn.execute(sql, (), None)
        self._savepoint_open = True
        self.statements += 1

    async def undo_statement(self, conn: Connection) -> None:
        """Roll back the failed statement only; the test's earlier work stays."""
        if not self._savepoint_open or self.timed_out:
            return
        try:
            await conn.execute(self.core.adapter.rollback_to_sql(_SAVEPOINT), (), None)
        except Exception:  # the statement's own error is the one to report; the next one meets this
            self._savepoint_open = False
            logger.warning("sandbox %r: rolling back a failed statement failed", self, exc_info=True)
