"""A connection pool on asyncpg that resets a connection only when its state needs it: the checkout
and the checkin (the connections' care between checkouts is :mod:`._pool_upkeep`'s).

asyncpg's own pool sends a reset query on every release (a round trip). Here a
connection goes straight back to the idle queue unless it is inside a transaction
or was used for raw SQL that may have changed session state; then it is reset with
a deadline, and terminated if the reset fails or is interrupted.

Resets and closing run in tasks of their own (``asyncecto._aio.finish``): a caller
cancelled meanwhile (by ``task.cancel()``, ``asyncio.timeout`` or an anyio cancel scope)
waits for the cleanup to end and is then cancelled, so no connection is ever left
neither returned nor terminated, nor used while its cleanup still runs.

Faults: a connection still cancelling a statement when it comes back is drained by a pool-owned
task (counted in use until done, terminated after ``reset_timeout``). A server refusing new
connections (53300 too many clients, 57P03 starting up) makes callers wait for a connection,
within the pool timeout, instead of failing at once; so does a repo asking for the primary
(``target_session_attrs=read-write``/``primary``) while no server of its host list is one (a failover
under way: see ``_failover``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import anyio

from asyncecto.errors import DatabaseUnavailableError, PoolTimeoutError, RepoStateError

from ._connection import PgConnection, run_after_connect_again
from ._pool_stats import PoolStats
from ._pool_upkeep import PoolUpkeep, expire_statement_caches

__all__ = ("PgConnection", "Pool", "PoolStats", "expire_statement_caches")

logger = logging.getLogger("asyncecto.pool")

#: SQLSTATEs of a server that cannot take a connection now but will: too many clients, starting up
_REFUSALS = frozenset({"53300", "57P03"})
#: after a refusal, how long no new connection is tried while the pool holds some
_CEILING_TIME = 1.0
#: while no server of the host list is the primary (a failover under way): how long until the next try
_PRIMARY_PAUSE = 0.2
#: a caller whose statement is being cancelled waits this long for the cancellation to finish
#: before the pool takes the connection over (it keeps counting it in use until then)
_DRAIN_GRACE = 0.5


class Pool(PoolUpkeep):
    """A bounded LIFO pool of :class:`PgConnection`: a checkout takes the connection returned last.

    LIFO, as asyncpg's own pool: a sequential workload keeps reusing one warm connection (its
    socket, buffers and the server backend's caches) instead of rotating through every idle one,
    and the connections it does not need sit idle at the other end of the queue, where the upkeep
    closes them past ``max_idle_time``.

    :param connect: opens a new raw connection (already set up)
    :param reset_timeout: the bound on every cleanup (``cleanup_timeout``)
    :param busy_limit: a statement with no answer for that long is taken for a half-open link and
        its connection terminated (``timeout + cleanup_timeout``; ``None``: never)
    """

    # -- checkout ---------------------------------------------------------------
    def acquire_nowait(self) -> PgConnection | None:
        """An idle connection at once, or ``None`` when one must be opened or waited for."""
        if self._closed:
            raise RepoStateError("check out a connection", "closed")
        idle = self._idle
        while idle:
            conn = idle.pop()  # LIFO: the most recently returned (the oldest idle ones stay at the left)
            if conn.raw.is_closed():
                self._discard(conn)
                continue
            self.stats.checkouts += 1
            return conn
        return None

    def _may_open(self) -> bool:
        if len(self._all) + self._opening >= self.size:
            return False
        return not self._all or time.monotonic() >= self._ceiling_until

    async def acquire(self, timeout: float | None = None) -> PgConnection:
        """Check out a connection, waiting up to ``timeout`` (default: the pool timeout).

        :raises PoolTimeoutError: none became free in time (``__cause__``: the server's refusal, if any)
        :raises DatabaseUnavailableError: no connection could be opened (a refusal for want of room
            or while the server starts is retried, with backoff, until the timeout)
        """
        conn = self.acquire_nowait()
        if conn is not None:
            return conn
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        refused: DatabaseUnavailableError | None = None
        backoff = 0.05
        while True:
            if self._may_open():
                try:
                    conn = await self._open()
                except DatabaseUnavailableError as exc:
                    if exc.sqlstate not in _REFUSALS and not self._awaiting_primary(exc):
                        raise
                    refused = exc
                    self.stats.connect_failures += 1
                    pause = _CEILING_TIME if exc.sqlstate in _REFUSALS else _PRIMARY_PAUSE
                    self._ceiling_until = time.monotonic() + pause
                    if not self._all:  # nothing to wait for: try again, with backoff, until the deadline
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise
                        await anyio.sleep(min(backoff, remaining))
                        backoff = min(backoff * 2, 0.8)
                        self._ceiling_until = 0.0
                        conn = self.acquire_nowait()
                        if conn is not None:
                            return conn
                        continue
                else:
                    self.stats.checkouts += 1
                    return conn
            conn = await self._wait(deadline, budget, refused)
            if conn is not None:
                self.stats.checkouts += 1
                return conn
            conn = self.acquire_nowait()  # raises once the pool is closed
            if conn is not None:
                return conn

    def _awaiting_primary(self, exc: DatabaseUnavailableError) -> bool:
        """Whether a failed connect may be a failover under way (the repo asks for a writable server,
        and none answered, or the one that did is shutting down): then callers wait, within the pool
        timeout, for a standby's promotion instead of failing at once."""
        return self.failover.enabled and exc.sqlstate in (None, "57P01", "57P02")

    async def _wait(
        self, deadline: float, budget: float, refused: DatabaseUnavailableError | None
    ) -> PgConnection | None:
        """Wait as a waiter until a connection is handed over (it), a slot frees or the ceiling after
        a refusal ends (``None``: look again), or the deadline (``PoolTimeoutError``)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(budget, refused)
        if len(self._all) + self._opening < self.size:  # only the ceiling keeps us from opening
            remaining = min(remaining, max(self._ceiling_until - time.monotonic(), 0.0))
        fut: asyncio.Future[PgConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            # asyncio.wait, not asyncio.timeout: the pool never cancels its caller's task
            await asyncio.wait((fut,), timeout=remaining)
        except BaseException:
            self._drop_waiter(fut)
            raise
        if not fut.done():
            self._drop_waiter(fut)
            if time.monotonic() >= deadline:
                raise self._timeout(budget, refused)
            return None
        return fut.result()

    def _timeout(self, budget: float, refused: DatabaseUnavailableError | None) -> PoolTimeoutError:
        self.stats.timeouts += 1
        error = PoolTimeoutError(budget, self.size)
        if refused is not None:  # the message says why the pool could not grow; the cause is chained
            head, _, fix = str(error).partition("\n\nfix: ")
            also = f"{refused.fix}; or " if refused.fix else ""
            error.args = (
                f"{head}; the server refused a new connection meanwhile: {refused.message}\n\nfix: {also}{fix}",
            )
            error.__cause__ = refused
        return error

    def _drop_waiter(self, fut: asyncio.Future[PgConnection | None]) -> None:
        """Forget a waiter that gave up; a connection already handed to it goes back."""
        if fut.done() and not fut.cancelled():
            conn = fut.result()
            if conn is not None:
                self._put_back(conn)
            elif self._waiters:
                self._wake_one(None)
        else:
            fut.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)

    # -- checkin ----------------------------------------------------------------
    def release_nowait(self, conn: PgConnection) -> bool:
        """Return a connection that needs no reset; ``False`` (and nothing done) if it needs one."""
        raw = conn.raw
        if raw.is_closed():
            self._discard(conn)
            return True
        if conn.failed_over:
            self.close_drained(conn)
            return True
        if conn.dirty or conn.interrupted or raw.is_in_transaction() or conn.cancelling():
            return False
        self._put_back(conn)
        return True

    async def release(self, conn: PgConnection) -> None:
        """Return a connection; reset it first only if its state needs it.

        A connection still cancelling a statement is drained by a pool-owned task: the caller
        waits for it at most a short grace, then goes on (its error or cancellation is not held
        up by a server that does not answer).
        """
        if conn.raw.is_closed():
            self._discard(conn)
            return
        if conn.failed_over:
            self.close_drained(conn)
            return
        if conn.cancelling():
            task = asyncio.get_running_loop().create_task(self._drain_and_put_back(conn))
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)
            with anyio.CancelScope(shield=True):  # an anyio scope cancelled meanwhile does not spin us
                await asyncio.wait((task,), timeout=min(_DRAIN_GRACE, self.reset_timeout))
            return
        if conn.dirty or conn.interrupted or conn.raw.is_in_transaction():
            await self._shielded(self._reset_and_put_back(conn))
            return
        self._put_back(conn)

    async def _drain_and_put_back(self, conn: PgConnection) -> None:
        """Wait for the server to acknowledge the cancellation (within ``reset_timeout``), then release."""
        try:
            await conn.drain(self.reset_timeout)
        except BaseException as exc:
            if isinstance(exc, TimeoutError):
                self.cleanup_timed_out(conn, "cancelling its statement")
            else:
                self.terminate(conn)
            if not isinstance(exc, Exception):
                raise
            return
        await self.release(conn)

    def cleanup_timed_out(self, conn: PgConnection, what: str) -> None:
        """A cleanup on ``conn`` outlasted ``cleanup_timeout``: log, count and terminate it."""
        logger.warning(
            "%s did not finish within cleanup_timeout=%.1fs; connection pid=%s terminated",
            what,
            self.reset_timeout,
            conn.pid,
        )
        self.stats.cleanup_timeouts += 1
        self.terminate(conn)

    async def _reset_and_put_back(self, conn: PgConnection) -> None:
        """Roll back and reset session state within ``reset_timeout``; on any failure, terminate.

        The reset is asyncpg's (advisory locks, cursors, LISTEN, settings) plus ``DISCARD TEMP``:
        temporary tables do not outlive the checkout that made them.
        """
        self.stats.resets += 1
        try:
            async with asyncio.timeout(self.reset_timeout):
                raw = conn.raw
                if conn.cancelling():
                    await conn.drain(self.reset_timeout)
                if raw.is_in_transaction():
                    # roll back ourselves: asyncpg's reset() would warn about an active transaction
                    self.stats.rollbacks += 1
                    await raw.execute("ROLLBACK")
                elif conn.interrupted:
                    # a cut-short exchange can leave the server inside an implicit transaction that
                    # asyncpg does not see; a BEGIN there would join it (or fail with 25001)
                    await raw.execute("ROLLBACK")
                if conn.pooled:  # a transaction pooler's connection keeps no session state of ours
                    conn.restore_session()
                elif conn.dirty:
                    await raw.reset()
                    await raw.execute("DISCARD TEMP")
                    await run_after_connect_again(raw)  # the reset undid its SETs
        except BaseException as exc:
            if isinstance(exc, TimeoutError):
                self.cleanup_timed_out(conn, f"resetting connection pid={conn.pid}")
            else:
                if not isinstance(exc, asyncio.CancelledError):
                    logger.warning("resetting connection pid=%s failed; terminating it", conn.pid, exc_info=True)
                self.terminate(conn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        conn.dirty = False
        conn.interrupted = False
        conn.lifted = False
        self._put_back(conn)

    def terminate(self, conn: PgConnection, why: str | None = None) -> None:
        """Close a connection at once and drop it from the pool (it is never reused)."""
        if not conn.closing:
            self.stats.terminated += 1
        conn.terminate(why)
        self._discard(conn)
