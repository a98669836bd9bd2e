"""Transactions and checkouts: a connection pinned to the task for a block of work.

``async with repo.transaction():`` checks a connection out, sends ``BEGIN``, and binds the
connection to the current task (the repo's own context variable), so every call to that
repo in the block uses it. A nested block is a ``SAVEPOINT``: a failure inside it rolls
back to the savepoint only, and the outer transaction goes on. Commit, rollback and the
release of the connection run to their end even if the caller is cancelled (the caller
waits for them, then is cancelled); a ``BEGIN`` or ``SAVEPOINT`` that fails or is
interrupted is undone the same way before the error propagates. Cleanup (ROLLBACK, ROLLBACK TO
and RELEASE SAVEPOINT, the release reset, a COMMIT whose caller was cancelled) gets at most the
repo's ``cleanup_timeout``: then the connection is terminated, never reused, and the server rolls
back when it notices. A ROLLBACK that fails while an exception or a cancellation leaves the block
(the connection died, say) never replaces it: the failure is logged and noted on it.
``repo.rollback(value)`` raises :class:`Rollback`, a ``BaseException``, which the block catches,
also inside a task group's exception group.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asyncecto._aio import finish, finish_inline
from asyncecto.errors import (
    ArgumentError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    Rollback,
    StatementTimeoutError,
    TransactionAbortedError,
)

from ._core import DEFAULT, Bound, RepoCore
from ._tenant_apply import savepoint_ended

if TYPE_CHECKING:
    from ._ownership import Lease

__all__ = ("Checkout", "Transaction", "own_rollback")

logger = logging.getLogger("asyncecto.transaction")

#: the isolation levels ``repo.transaction(isolation=...)`` takes
ISOLATION_LEVELS = ("read_committed", "repeatable_read", "serializable", "read_uncommitted")


class Transaction:
    """``async with repo.transaction() as tx:`` — or ``await repo.transaction(fn)``.

    :ivar rolled_back: whether the block ended by ``repo.rollback(value)``
    :ivar value: the value given to ``repo.rollback``
    :ivar committed: whether the server confirmed the block's COMMIT (for a nested block, its
        RELEASE SAVEPOINT). A caller cancelled during COMMIT still gets its cancellation; this
        tells it the outcome: ``False`` means rolled back, or unknown if the connection was lost
    """

    def __init__(self, core: RepoCore, isolation: str | None = None, read_only: bool = False) -> None:
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise ArgumentError(f"unknown isolation level {isolation!r}; use one of {', '.join(ISOLATION_LEVELS)}")
        self.core = core
        self.isolation = isolation
        self.read_only = read_only
        self.rolled_back = False
        self.committed = False
        self.value: Any = None
        self._bound: Bound | None = None
        self._savepoint: str | None = None
        self._token: Any = None
        self._lent: Lease | None = None  # lent inside a transaction to this block, given back at its end
        self._tenant_before: tuple[str, str] | None = None  # repo.tenant's setting when the savepoint began

    def _begin_sql(self) -> str:
        return self.core.adapter.begin_sql(self.isolation, self.read_only)

    async def _exec(self, bound: Bound, sql: str, budget: float | None = None) -> str:
        """Run ``sql`` on the transaction's connection; its command tag.

        ``budget`` (seconds) bounds it on the client: on expiry the connection is terminated
        (never reused) and :class:`ConnectionLostError` raised.
        """
        core = self.core
        if budget is None:
            return str((await core.run("command", sql, (), DEFAULT, None, pinned=bound.conn))[0])
        if budget <= 0:
            self._cut(bound, sql)
            raise ConnectionLostError(f"no time left for {sql} within cleanup_timeout; the connection was terminated")
        try:
            tag, _ = await core.run("command", sql, (), DEFAULT, None, pinned=bound.conn, client_timeout=budget)
        except StatementTimeoutError as exc:
            if exc.sqlstate is not None:  # the server's statement_timeout: the connection is fine
                raise
            self._cut(bound, sql)
            raise ConnectionLostError(
                f"{sql} got no answer within {budget:.2f}s; the connection was terminated and is not reused"
            ) from exc
        return str(tag)

    def _cut(self, bound: Bound, what: str) -> None:
        """Terminate the connection whose ``what`` overran its deadline (no I/O; the server rolls back)."""
        conn = bound.conn
        if conn.is_closed():
            return
        logger.warning(
            "repo %s: %s did not finish within cleanup_timeout=%.1fs; connection pid=%s terminated",
            self.core.name,
            what,
            self.core.config.cleanup_timeout,
            getattr(conn, "pid", "?"),
        )
        conn.terminate()

    def _budget(self) -> Callable[[], float]:
        """Seconds left of a cleanup deadline starting now."""
        deadline = time.monotonic() + self.core.config.cleanup_timeout
        return lambda: deadline - time.monotonic()

    async def _finish(self, bound: Bound, work: Coroutine[Any, Any, None], what: str, inline: bool = False) -> None:
        """``finish`` cleanup ``work`` on ``bound``'s connection within cleanup_timeout once cancelled.

        ``inline``: ``finish_inline`` (no task unless a cancellation comes), for the work of the common
        path only — COMMIT, SAVEPOINT, RELEASE: statements on the pinned connection, nothing bound to the
        task across an ``await`` (see ``finish_inline``); a checkin that needs I/O goes through ``finish``.
        """
        run = finish_inline if inline else finish
        await run(work, limit=self.core.config.cleanup_timeout, abandon=lambda: self._cut(bound, what))

    async def __aenter__(self) -> Transaction:
        core = self.core
        core._check("begin a transaction")
        core._check_loop("begin a transaction")
        bound = core.bound()
        if bound is not None and bound.depth > 0:
            core._check_owner(bound)
            if self.isolation or self.read_only:
                raise ArgumentError("isolation and read_only apply to the outermost transaction only")
            name = f"asyncecto_{bound.depth + 1}"
            await self._open_savepoint(bound, name)  # on failure nothing changed
            bound.depth += 1
            self._bound, self._savepoint = bound, name
            return self
        if (
            bound is not None and bound.lease.in_transaction
        ):  # a checkout lent in a transaction (a sandbox): a savepoint
            core._check_owner(bound)
            await self._open_savepoint(bound, "asyncecto_1")
            bound.depth = 1
            self._bound, self._savepoint = bound, "asyncecto_1"
            return self
        if bound is not None:  # inside a checkout: begin on its connection
            core._check_owner(bound)
            try:
                await self._exec(bound, self._begin_sql())
            except BaseException:
                # the server may have begun: roll back (or leave the reset to the checkout's release)
                bound.conn.dirty = True
                rollback = core.adapter.rollback_sql()
                await self._finish(bound, self._quiet(bound, rollback, self._budget()), rollback)
                raise
            bound.depth = 1
            self._bound = bound
            return self
        ownership = core.ownership
        lease = ownership.checkout_nowait() or await ownership.checkout("a transaction")
        if lease.in_transaction:  # a sandbox's connection, in the sandbox's transaction already
            return await self._enter_lent(lease)
        new = Bound(core, lease, asyncio.current_task(), 1)
        try:
            await self._exec(new, self._begin_sql())
        except BaseException:
            # BEGIN may have reached the server though the call failed (cancelled in flight, say):
            # roll back, as inside a checkout, then check the connection in: one job, so that a
            # caller cancelled meanwhile still returns the connection
            new.active = False
            rollback = core.adapter.rollback_sql()

            async def undo() -> None:
                try:
                    await self._quiet(new, rollback, self._budget())
                finally:
                    await lease.checkin()

            await self._finish(new, undo(), rollback)
            raise
        self._bound = new
        self._token = core.bound_var.set(new)
        return self

    async def _enter_lent(self, lease: Lease) -> Transaction:
        # the outermost transaction on a connection lent inside a transaction (a test sandbox's) is
        # a savepoint; isolation and read_only cannot apply to one and are ignored (the lender's
        # own transaction has them)
        new = Bound(self.core, lease, asyncio.current_task(), 1)
        try:
            await self._open_savepoint(new, "asyncecto_1")
        except BaseException:
            new.active = False
            await lease.checkin()
            raise
        self._bound, self._savepoint, self._lent = new, "asyncecto_1", lease
        self._token = self.core.bound_var.set(new)
        return self

    async def _open_savepoint(self, bound: Bound, name: str) -> None:
        # in the sandbox, a SAVEPOINT interrupted in flight would abort its transaction with nothing
        # to roll back to: it runs to its end, and a caller cancelled meanwhile releases it
        made = False
        adapter = self.core.adapter
        savepoint = adapter.savepoint_sql(name)
        self._tenant_before = bound.tenant

        async def work() -> None:
            nonlocal made
            await self._exec(bound, savepoint)
            made = True

        try:
            await self._finish(bound, work(), savepoint, inline=True)
        except asyncio.CancelledError:
            if made:
                release = adapter.release_sql(name)
                await self._finish(bound, self._quiet(bound, release, self._budget()), release)
            raise

    async def _quiet(self, bound: Bound, sql: str, budget: Callable[[], float]) -> None:
        # on failure the connection is marked dirty (or terminated): its release resets or drops it
        with contextlib.suppress(Exception):
            await self._exec(bound, sql, budget())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        bound = self._bound
        assert bound is not None
        signal, rest = own_rollback(exc, self.core.repo)
        if signal is not None:
            self.rolled_back, self.value = True, signal.value
        failed = exc is not None
        if self._savepoint is not None:
            try:
                await self._cleanup(self._end_savepoint(bound, failed), exc)
            finally:
                if self._lent is not None:
                    bound.active = False
                    await self._lent.checkin()
                    self._reset_token()
        else:
            try:
                await self._cleanup(self._end(bound, failed), exc)
            finally:
                self._reset_token()
                self._note_commit()
        if signal is None:
            return False
        if rest is None:
            return True
        # a task group's exception group: the rollback was ours, its other errors go on
        context = rest.__context__
        try:
            raise rest
        finally:
            rest.__context__ = context

    async def _cleanup(self, work: Coroutine[Any, Any, None], exc: BaseException | None) -> None:
        """Run the block's end (``work``). If it fails while ``exc`` leaves the block, ``exc`` still does
        (also when the caller is cancelled meanwhile): the failure is logged and noted on ``exc``."""
        bound = self._bound
        assert bound is not None
        what = self.core.adapter.commit_sql() if exc is None and self._savepoint is None else "the transaction's end"
        if exc is None:
            # COMMIT and checkin, or RELEASE SAVEPOINT: inline, a task only if a cancellation comes
            await self._finish(bound, work, what, inline=True)
            return
        leaving = exc

        async def guarded() -> None:
            try:
                await work
            except Exception as failure:  # reported here: a cancellation of the caller must not drop it
                self._cleanup_failed(failure, leaving)

        await self._finish(bound, guarded(), what)

    def _cleanup_failed(self, failure: Exception, exc: BaseException) -> None:
        adapter = self.core.adapter
        what = adapter.rollback_to_sql(self._savepoint) if self._savepoint is not None else adapter.rollback_sql()
        logger.warning(
            "repo %s: the transaction's %s failed while %s left the block, which goes on",
            self.core.name,
            what,
            type(exc).__name__,
            exc_info=failure,
        )
        exc.add_note(f"asyncecto: the transaction's {what} failed as well: {failure}")
        bound = self._bound
        if self._savepoint is not None and bound is not None and not bound.conn.is_closed():
            # the savepoint's work may still be in the outer transaction, which must never commit it
            bound.conn.terminate()

    def _reset_token(self) -> None:
        if self._token is not None:
            try:
                self.core.bound_var.reset(self._token)
            except ValueError:  # exited in another context (e.g. a generator finished elsewhere)
                self.core.bound_var.set(None)

    async def _end_savepoint(self, bound: Bound, failed: bool) -> None:
        name = self._savepoint
        assert name is not None
        adapter = self.core.adapter
        rollback_to, release = adapter.rollback_to_sql(name), adapter.release_sql(name)
        left = self._budget()
        try:
            if failed:
                await self._exec(bound, rollback_to, left())
                await self._exec(bound, release, left())
                return
            try:
                await self._exec(bound, release, left())
            except TransactionAbortedError as exc:
                # a statement in the block failed and its error was caught: undo the block, not more
                await self._exec(bound, rollback_to, left())
                await self._exec(bound, release, left())
                raise _rolled_back("the transaction's savepoint") from exc
            self.committed = True
        finally:
            bound.depth -= 1
            if bound.tenant != self._tenant_before:  # repo.tenant changed inside: the enclosing one's again
                await savepoint_ended(self.core, bound, self._tenant_before, self.committed)

    async def _end(self, bound: Bound, failed: bool) -> None:
        owns_connection = self._token is not None
        config, adapter = self.core.config, self.core.adapter
        try:
            if failed:
                await self._exec(bound, adapter.rollback_sql(), config.cleanup_timeout)
            else:
                # the server's statement_timeout ends a slow COMMIT first, with a definite answer;
                # the client's deadline is for a server that does not answer at all
                budget = None if config.timeout is None else config.timeout + config.cleanup_timeout
                try:
                    commit = adapter.commit_sql()
                    tag = await self._exec(bound, commit, budget)
                    if adapter.commit_rolled_back(tag):  # the server's answer to a commit in a failed transaction
                        raise _rolled_back(commit)
                    self.committed = True
                except ConnectionLostError as exc:
                    raise CommitOutcomeUnknownError(
                        "the connection was lost while COMMIT was in flight: the transaction may or may not "
                        f"have committed; nothing was retried. Read the data back to find out ({exc.message})",
                        sqlstate=exc.sqlstate,
                        hint=exc.hint,
                    ) from exc
        finally:
            bound.depth = 0
            bound.tenant = None  # transaction-local: gone with the transaction
            if owns_connection:
                bound.active = False
                lease = bound.lease
                if not lease.checkin_nowait():  # one still in a transaction is reset: I/O, in a task of
                    await finish(lease.checkin())  # its own (this may run inline: see finish_inline)

    def _note_commit(self) -> None:
        """Read replicas' read-your-writes: the caller's context reads from a replica that has replayed this
        COMMIT (``asyncecto.repo._routing``; no statement is sent)."""
        router = self.core.router
        if router is not None and self.committed and not self.read_only and router.captures():
            router.note_write()

    async def run(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        """Run ``fn(repo)`` (or ``fn()``) in the transaction; its result, or the rollback value."""
        async with self:
            result = fn(self.core.repo) if _takes_repo(fn) else fn()
            return await result
        return self.value


def own_rollback(exc: BaseException | None, core: object) -> tuple[Rollback | None, BaseException | None]:
    """``(the Rollback of core's repo.rollback() that exc carries, what is left of exc to raise)``.

    The Rollback may be ``exc`` itself, or inside the exception group a task group raises when
    ``repo.rollback()`` is called in its body; another repo's Rollback is not ``core``'s.
    """
    if isinstance(exc, Rollback):
        return (exc, None) if _same_repo(exc.repo, core) else (None, exc)
    if isinstance(exc, BaseExceptionGroup):
        match, rest = exc.split(lambda e: isinstance(e, Rollback) and _same_repo(e.repo, core))
        if match is not None:
            first: BaseException = match
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            assert isinstance(first, Rollback)
            return first, rest
    return None, exc


def _same_repo(signalled: object, repo: object) -> bool:
    """Whether ``repo.rollback()`` on ``signalled`` is meant for ``repo``'s transaction: the same repo,
    or two repos whose calls run on the same executor here (a dynamic repo, ``repo.using(other)``)."""
    if signalled is None or signalled is repo:
        return True
    mine = getattr(signalled, "_executor", None)
    return mine is not None and mine is getattr(repo, "_executor", None)


def _rolled_back(at: str) -> TransactionAbortedError:
    return TransactionAbortedError(
        f"the transaction was rolled back at {at}, not committed: a statement in it failed and its error "
        "was caught inside the block; nothing of the block was kept\n\nfix: let the error end the block, or "
        "run the statement that may fail in a nested `async with repo.transaction():` (a savepoint)",
        sqlstate="25P02",
    )


def _takes_repo(fn: Callable[..., Any]) -> bool:
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
        core._check_loop("check out a connection")
        if core.bound() is not None:
            return self  # nested: reuse the pinned connection
        ownership = core.ownership
        lease = ownership.checkout_nowait() or await ownership.checkout("a checkout")
        self._bound = Bound(core, lease, asyncio.current_task(), 0)
        self._token = core.bound_var.set(self._bound)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._bound is None:
            return
        bound = self._bound
        bound.active = False
        try:
            if not bound.lease.checkin_nowait():
                await finish(bound.lease.checkin())
        finally:
            try:
                self.core.bound_var.reset(self._token)
            except ValueError:  # exited in another context
                self.core.bound_var.set(None)
