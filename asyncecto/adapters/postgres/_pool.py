"""A connection pool on asyncpg that resets a connection only when its state needs it.

asyncpg's own pool sends a reset query on every release (a round trip). Here a
connection goes straight back to the idle queue unless it is inside a transaction
or was used for raw SQL that may have changed session state; then it is reset with
a deadline, and terminated if the reset fails or is interrupted.

Resets and closing run in tasks of their own (``asyncecto._aio.finish``): a caller
cancelled meanwhile (by ``task.cancel()``, ``asyncio.timeout`` or an anyio cancel scope)
waits for the cleanup to end and is then cancelled, so no connection is ever left
neither returned nor terminated, nor used while its cleanup still runs.

Faults: a connection the server or the network closes is dropped the moment asyncpg notices
(a termination listener), and counted ``lost``; one still cancelling a statement when it comes
back is drained by a pool-owned task (counted in use until done, terminated after
``reset_timeout``); one waiting longer than ``busy_limit`` for an answer (a half-open link)
is terminated by the upkeep. A server refusing new connections (53300 too many clients,
57P03 starting up) makes callers wait for a connection, within the pool timeout, instead of
failing at once. ``close`` past its timeout cancels the stuck statements on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from typing import Any

import anyio
import asyncpg

from asyncecto._aio import finish
from asyncecto.adapters import CopyIn, CopyOut
from asyncecto.errors import (
    AsyncEctoError,
    ConnectionLostError,
    DatabaseUnavailableError,
    PoolTimeoutError,
    RepoStateError,
)

from ._errors import COPY_ENCODE_ERRORS, DRIVER_ERRORS, copy_encode_error, server_ended, translate, translate_copy
from ._insert_sql import inline_params
from ._sql import quote_name
from ._tap import Tap
from ._text import check_statement

__all__ = ("PgConnection", "Pool", "PoolStats", "expire_statement_caches")

logger = logging.getLogger("asyncecto.pool")

#: every live pool of this process (the migrator expires their statement caches after DDL)
_live_pools: weakref.WeakSet[Pool] = weakref.WeakSet()


async def expire_statement_caches() -> int:
    """Drop asyncpg's prepared-statement and type caches on every connection of every live pool.

    Called after migrations: a statement prepared before an ``ALTER`` would otherwise fail
    inside a transaction with "cached plan must not change result type". This is what
    asyncpg's own pool does on that error (in use or idle, statements in flight keep their
    reference); no I/O. Returns how many connections were expired.
    """
    count = 0
    for pool in list(_live_pools):
        for conn in list(pool._all):
            await conn.raw.reload_schema_state()
            count += 1
    return count


class _Seen:
    """Rows read from an iterable as a COPY goes, keeping the last one (the row a failure is in)."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.last: tuple[Any, ...] | None = None
        self.count = 0

    def each(self) -> Any:
        if isinstance(self.records, AsyncIterable):
            return self._async()
        return self._sync()

    def _sync(self) -> Iterator[Any]:
        for row in self.records:
            self.last, self.count = row, self.count + 1
            yield row

    async def _async(self) -> AsyncIterator[Any]:
        async for row in self.records:
            self.last, self.count = row, self.count + 1
            yield row


def _touches_session(sql: str) -> bool:
    """Whether ``sql`` names what may change the session beyond the statement: a session advisory lock,
    ``set_config(…, false)``, the statement timeout. Such a statement (from a ``fragment()``, say) gets
    its connection reset on release and no half-open check; a false positive only costs that reset
    (``pg_advisory_xact_lock`` does not match). Plain substring tests: ~0.4 µs for a typical statement."""
    text = sql.lower()
    return "advisory_lock" in text or "set_config" in text or "statement_timeout" in text


class PgConnection:
    """One pooled asyncpg connection; every driver error leaves it translated.

    :ivar dirty: set when session state may have changed (raw SQL); forces a reset on release
    :ivar busy_since: when the statement in flight was sent (``time.monotonic()``), 0.0 when none
    :ivar lifted: the statement timeout was changed for this checkout (no half-open check)
    :ivar ended_by: why the pool closed the connection, said in the error its holder sees
    :ivar closing: asyncecto itself closed it (else its end is counted ``lost``)
    :ivar interrupted: a statement was cut short (cancelled, timed out): the server may still be in
        the implicit transaction of its unfinished exchange while asyncpg reports it idle, so the
        release sends a ``ROLLBACK`` before the connection is reused
    """

    __slots__ = (
        "busy_since",
        "closing",
        "dirty",
        "ended_by",
        "interrupted",
        "last_used",
        "lifted",
        "pid",
        "raw",
        "tap",
    )

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw
        self.dirty = False
        self.interrupted = False
        self.busy_since = 0.0
        self.lifted = False
        self.ended_by: str | None = None
        self.closing = False
        self.last_used = time.monotonic()
        self.pid: int = raw.get_server_pid()
        self.tap = Tap.install(raw)

    def _error(
        self, exc: BaseException, sql: str | None = None, params: Sequence[Any] = (), *, copy: bool = False
    ) -> AsyncEctoError:
        """The asyncecto error for a driver error; a lost connection says why the server (or the pool)
        ended it."""
        if isinstance(exc, TimeoutError):
            self.interrupted = True
        error = translate_copy(exc, sql or "") if copy else translate(exc, sql, params)
        if isinstance(error, ConnectionLostError):
            if self.ended_by is not None:
                return ConnectionLostError(f"connection lost: {self.ended_by}", query=sql)
            said = self.tap.last_words if self.tap is not None and error.sqlstate is None else None
            if said is not None:
                return server_ended(said[0], said[1], sql)
        return error

    def _sent(self, sql: str) -> None:
        """Bookkeeping before a statement goes out: its start time, and whether it dirties the session."""
        if not self.lifted and _touches_session(sql):
            self.dirty = self.lifted = True
        self.busy_since = time.monotonic()

    async def _call(
        self, method: Callable[..., Awaitable[Any]], sql: str, params: Sequence[Any], timeout: float | None
    ) -> Any:
        """``method`` of the driver for one statement, with what every statement gets: the text
        check, the bookkeeping, driver errors translated, a cut-short exchange remembered."""
        check_statement(sql)
        self._sent(sql)
        try:
            return await method(sql, *params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        except BaseException:
            self.interrupted = True
            raise
        finally:
            self.busy_since = 0.0

    def fetch(self, sql: str, params: Sequence[Any], timeout: float | None) -> Coroutine[Any, Any, list[Any]]:
        return self._call(self.raw.fetch, sql, params, timeout)

    def fetchrow(self, sql: str, params: Sequence[Any], timeout: float | None) -> Coroutine[Any, Any, Any]:
        return self._call(self.raw.fetchrow, sql, params, timeout)

    async def execute(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Run a statement returning no rows; the number of rows it affected."""
        status: str = await self._call(self.raw.execute, sql, params, timeout)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    def command(self, sql: str, params: Sequence[Any], timeout: float | None) -> Coroutine[Any, Any, str]:
        """Run a statement; its command tag (``"COMMIT"``, or ``"ROLLBACK"`` for a failed transaction)."""
        return self._call(self.raw.execute, sql, params, timeout)

    async def query(self, sql: str, params: Sequence[Any], timeout: float | None) -> tuple[list[str], list[Any], str]:
        """Raw SQL: column names, rows and the command status (``"SELECT 2"``)."""
        check_statement(sql)
        self._sent(sql)
        self.dirty = True
        try:
            stmt = await self.raw.prepare(sql, timeout=timeout)
            rows = await stmt.fetch(*params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        except BaseException:
            self.interrupted = True
            raise
        finally:
            self.busy_since = 0.0
        columns = [a.name for a in stmt.get_attributes()]
        return columns, rows, stmt.get_statusmsg() or ""

    async def batches(
        self, sql: str, params: Sequence[Any], size: int, timeout: float | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """Rows of a server-side cursor, ``size`` at a time (the connection must be in a transaction)."""
        check_statement(sql)
        try:
            self._sent(sql)
            try:
                cursor = await self.raw.cursor(sql, *params, timeout=timeout)
            finally:
                self.busy_since = 0.0
            while True:
                self.busy_since = time.monotonic()
                try:
                    rows = await cursor.fetch(size, timeout=timeout)
                finally:
                    self.busy_since = 0.0
                if rows:
                    yield rows
                if len(rows) < size:
                    return
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        except BaseException:
            self.interrupted = True
            raise

    async def copy(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Bulk-load rows with ``COPY … FROM STDIN`` (binary); the number of rows loaded."""
        rows: CopyIn = params[0]
        for name in (rows.table, rows.prefix or "", *rows.columns):
            check_statement(name, "the COPY target name")
        records = rows.records
        seen = _Seen(records) if not isinstance(records, Sequence) else None
        try:
            status: str = await self.raw.copy_records_to_table(
                rows.table,
                records=seen.each() if seen is not None else records,
                columns=rows.columns,
                schema_name=rows.prefix,
                timeout=timeout,
            )
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, copy=True) from exc
        except AsyncEctoError:
            raise  # a row's own dump failed (copy_from reading an iterable): already the library's error
        except COPY_ENCODE_ERRORS as exc:  # asyncpg could not encode a value: the COPY was abandoned
            if seen is None:
                raise copy_encode_error(exc, sql, rows.table, rows.columns, records) from exc  # type: ignore[arg-type]
            last: list[tuple[Any, ...]] = [seen.last] if seen.last is not None else []
            raise copy_encode_error(exc, sql, rows.table, rows.columns, last, seen.count) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def copy_out(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Write a query's rows to a sink with ``COPY … TO STDOUT``; the number of rows."""
        out: CopyOut = params[0]
        check_statement(out.query)
        try:
            query = await self._inline(out.query, out.params, timeout) if out.params else out.query
            status: str = await self.raw.copy_from_query(
                query,
                output=out.sink,
                timeout=timeout,
                format=out.format,
                header=True if out.header else None,
            )
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, copy=True) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def _inline(self, query: str, params: Sequence[Any], timeout: float | None) -> str:
        """``query`` with its parameters written in as literals the server quoted, each cast to the
        type the server gives the parameter (COPY takes no parameters)."""
        stmt = await self.raw.prepare(query, timeout=timeout)
        types = []
        for typ in stmt.get_parameters():
            name = "_" + typ.name[:-2] if typ.name.endswith("[]") else typ.name
            types.append(f"{quote_name(typ.schema)}.{quote_name(name)}")
        if not types:
            return query
        cols = ", ".join(f"quote_nullable(${i}::{typ}::text)" for i, typ in enumerate(types, 1))
        quoted = await self.raw.fetchrow(f"SELECT {cols}", *params, timeout=timeout)
        return inline_params(query, [f"{text}::{typ}" for text, typ in zip(quoted, types, strict=True)])

    async def set_statement_timeout(self, seconds: float | None) -> None:
        """Change the server's ``statement_timeout`` for this session (``None``: no limit) until release."""
        self.dirty = True  # the reset on release restores the connection's default
        self.lifted = True  # the half-open check does not know this call's limit
        ms = "0" if seconds is None else str(max(1, round(seconds * 1000)))
        try:
            await self.raw.execute("SELECT set_config('statement_timeout', $1, false)", ms)
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc

    def is_closed(self) -> bool:
        return bool(self.raw.is_closed())

    def in_transaction(self) -> bool:
        return bool(self.raw.is_in_transaction())

    def cancelling(self) -> bool:
        """Whether asyncpg is still cancelling a statement (its next statement would wait for that)."""
        # asyncpg private API, as asyncpg's own pool uses it (the version range is pinned in pyproject)
        is_cancelling = getattr(getattr(self.raw, "_protocol", None), "_is_cancelling", None)
        return is_cancelling is not None and bool(is_cancelling())

    async def drain(self, timeout: float) -> None:
        """Wait until the server acknowledged the cancellation in flight; ``TimeoutError`` after ``timeout``."""
        protocol = getattr(self.raw, "_protocol", None)
        if protocol is not None and self.cancelling():
            async with asyncio.timeout(timeout):
                await protocol._wait_for_cancellation()

    def terminate(self, why: str | None = None) -> None:
        """Close the socket at once; ``why`` is what its holder's next error says."""
        if why is not None and self.ended_by is None:
            self.ended_by = why
        self.closing = True
        self.raw.terminate()


class PoolStats:
    """Counters a test or a dashboard can read (``repo.pool_stats()``).

    :ivar checkouts: connections handed out
    :ivar opened: connections opened
    :ivar resets: releases that reset session state (raw SQL, a transaction left open)
    :ivar rollbacks: releases that found a transaction still open (the pool rolled it back)
    :ivar terminated: connections asyncecto closed at once (a failed or late cleanup, a half-open link, stop)
    :ivar timeouts: checkouts that gave up after the pool timeout
    :ivar cleanup_timeouts: cleanups (rollback, reset, a cancellation to drain) that outlasted
        ``cleanup_timeout``; each terminated its connection
    :ivar lost: connections the server or the network closed (``pg_terminate_backend``, a restart,
        a broken link), dropped from the pool as soon as asyncpg noticed
    :ivar connect_failures: new connections the server refused for want of room (53300 too many
        clients) or while starting up or recovering (57P03); callers waited instead
    """

    __slots__ = (
        "checkouts",
        "cleanup_timeouts",
        "connect_failures",
        "lost",
        "opened",
        "resets",
        "rollbacks",
        "terminated",
        "timeouts",
    )

    def __init__(self) -> None:
        self.checkouts = 0
        self.opened = 0
        self.resets = 0
        self.rollbacks = 0
        self.terminated = 0
        self.timeouts = 0
        self.cleanup_timeouts = 0
        self.lost = 0
        self.connect_failures = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


#: SQLSTATEs of a server that cannot take a connection now but will: too many clients, starting up
_REFUSALS = frozenset({"53300", "57P03"})
#: after a refusal, how long no new connection is tried while the pool holds some
_CEILING_TIME = 1.0
#: a caller whose statement is being cancelled waits this long for the cancellation to finish
#: before the pool takes the connection over (it keeps counting it in use until then)
_DRAIN_GRACE = 0.5
#: how long ``close`` waits for a fresh connection to cancel the statements still running
_CANCEL_CONNECT_TIMEOUT = 2.0


class Pool:
    """A bounded FIFO pool of :class:`PgConnection`.

    :param connect: opens a new raw connection (already set up)
    :param reset_timeout: the bound on every cleanup (``cleanup_timeout``)
    :param busy_limit: a statement with no answer for that long is taken for a half-open link and
        its connection terminated (``timeout + cleanup_timeout``; ``None``: never)
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        size: int,
        min_size: int,
        timeout: float,
        max_idle_time: float,
        reset_timeout: float = 5.0,
        busy_limit: float | None = None,
    ) -> None:
        self._connect = connect
        self.size = size
        self.min_size = min_size
        self.timeout = timeout
        self.max_idle_time = max_idle_time
        self.reset_timeout = reset_timeout
        self.busy_limit = busy_limit
        self._idle: deque[PgConnection] = deque()
        self._all: set[PgConnection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[PgConnection | None]] = deque()
        self._closed = False
        self._released = asyncio.Event()
        #: pool-owned cleanup tasks (draining a cancellation); ``close`` waits for them
        self._cleanups: set[asyncio.Task[None]] = set()
        #: after the server refused a connection: no new one is opened before ``_ceiling_until``
        self._ceiling_until = 0.0
        self._fill_error: str | None = None  # the upkeep's last refill failure, logged once
        self.stats = PoolStats()
        _live_pools.add(self)

    # -- checkout ---------------------------------------------------------------
    @property
    def in_use(self) -> int:
        return len(self._all) - len(self._idle)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def total(self) -> int:
        return len(self._all)

    def acquire_nowait(self) -> PgConnection | None:
        """An idle connection at once, or ``None`` when one must be opened or waited for."""
        if self._closed:
            raise RepoStateError("check out a connection", "closed")
        idle = self._idle
        while idle:
            conn = idle.popleft()
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
                    if exc.sqlstate not in _REFUSALS:
                        raise
                    refused = exc
                    self.stats.connect_failures += 1
                    self._ceiling_until = time.monotonic() + _CEILING_TIME
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

    async def _open(self) -> PgConnection:
        self._opening += 1
        try:
            raw = await self._connect()
        except BaseException:
            self._opening -= 1
            if self._waiters:
                self._wake_one(None)  # the slot is free again: let a waiter try it
            raise
        self._opening -= 1
        conn = PgConnection(raw)
        raw.add_termination_listener(lambda _raw: self._ended(conn))
        self._all.add(conn)
        self.stats.opened += 1
        return conn

    def _ended(self, conn: PgConnection) -> None:
        """asyncpg saw the connection close: an idle one leaves the pool now."""
        if conn in self._idle:
            self._discard(conn)
        else:
            self._count_lost(conn)

    def _count_lost(self, conn: PgConnection) -> None:
        """Count a connection closed by the server or the network (not by asyncecto) once."""
        if not conn.closing:
            conn.closing = True
            self.stats.lost += 1

    # -- checkin ----------------------------------------------------------------
    def release_nowait(self, conn: PgConnection) -> bool:
        """Return a connection that needs no reset; ``False`` (and nothing done) if it needs one."""
        raw = conn.raw
        if raw.is_closed():
            self._discard(conn)
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

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to its end; a caller cancelled meanwhile waits for it, then is cancelled."""
        await finish(work)

    def _put_back(self, conn: PgConnection) -> None:
        conn.last_used = time.monotonic()
        conn.busy_since = 0.0
        if self._closed:
            self._close_one(conn)
            self._released.set()
            return
        if not self._wake_one(conn):
            self._idle.append(conn)
        self._released.set()

    def _wake_one(self, value: PgConnection | None) -> bool:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(value)
                return True
        return False

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
                if conn.dirty:
                    await raw.reset()
                    await raw.execute("DISCARD TEMP")
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

    def _discard(self, conn: PgConnection) -> None:
        self._count_lost(conn)
        if not conn.raw.is_closed():
            conn.raw.terminate()  # never dropped open: its socket would outlive it
        self._all.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        self._released.set()
        if self._waiters:
            self._wake_one(None)

    # -- upkeep and shutdown ----------------------------------------------------
    async def fill(self) -> None:
        """Open connections until ``min_size`` are held."""
        while not self._closed and len(self._all) + self._opening < self.min_size:
            conn = await self._open()
            self._put_back(conn)

    async def upkeep(self, interval: float = 1.0) -> None:
        """Forever: drop broken idle connections, close long-idle ones, end connections whose statement
        got no answer within ``busy_limit`` (a half-open link), keep ``min_size`` open."""
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            for conn in list(self._idle):
                if conn.raw.is_closed():
                    self._discard(conn)
                elif (
                    self.max_idle_time and now - conn.last_used > self.max_idle_time and len(self._all) > self.min_size
                ):
                    self._idle.remove(conn)
                    self._close_one(conn)
            limit = self.busy_limit
            if limit is not None:
                for conn in list(self._all):
                    since = conn.busy_since
                    if since and not conn.lifted and now - since > limit and not conn.raw.is_closed():
                        why = (
                            f"no answer from the server within {limit:g}s (timeout + cleanup_timeout; "
                            "a half-open link?); asyncecto closed the connection"
                        )
                        logger.warning("connection pid=%s: %s", conn.pid, why)
                        self.stats.terminated += 1
                        conn.terminate(why)  # its holder gets ConnectionLostError and returns it
            if not self._all or now >= self._ceiling_until:
                await self._refill()

    async def _refill(self) -> None:
        """``fill``; a failure is logged (once until it changes or heals), never raised: the upkeep
        carries on and the next checkout reports the error to its caller."""
        try:
            await self.fill()
        except DatabaseUnavailableError as exc:
            text = str(exc)
            if text != self._fill_error:
                logger.warning("could not open a connection to keep min_size=%d: %s", self.min_size, text)
            self._fill_error = text
        else:
            self._fill_error = None

    def _close_one(self, conn: PgConnection) -> None:
        self._all.discard(conn)
        conn.terminate()

    async def close(self, timeout: float) -> None:
        """Refuse new checkouts, wait up to ``timeout`` for checked-out connections, then close all.

        Past ``timeout``, the connections still checked out are terminated (their holders get
        ``ConnectionLostError`` naming the stop) and their statements are cancelled on the server
        from a fresh connection, so nothing keeps running there. Cancelling the caller does not
        interrupt the closing.
        """
        self._closed = True
        while self._waiters:
            self._wake_one(None)
        await self._shielded(self._close(timeout))

    async def _close(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self.in_use:
                    self._released.clear()
                    await self._released.wait()
        except TimeoutError:
            logger.warning("closing pool with %d connection(s) still checked out; terminating them", self.in_use)
        idle = list(self._idle)
        self._idle.clear()
        stuck = [conn for conn in self._all if conn not in idle and not conn.raw.is_closed()]
        for conn in stuck:  # first the sockets: a holder learns why at once, and sends nothing more
            self.stats.terminated += 1
            conn.terminate(f"repo.stop() ended it after shutdown_timeout={timeout:g}s")
        for task in list(self._cleanups):  # drains of connections just terminated
            task.cancel()
        for conn in list(self._all):
            self._all.discard(conn)
            if conn in idle:
                conn.closing = True
                try:
                    async with asyncio.timeout(1.0):
                        await conn.raw.close()
                    continue
                except BaseException:
                    pass
            conn.terminate()
        if stuck:
            await self._cancel_on_server([conn.pid for conn in stuck])

    async def _cancel_on_server(self, pids: list[int]) -> None:
        """Cancel what the backends ``pids`` still run, from a fresh connection (best effort: logged)."""
        raw: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(_CANCEL_CONNECT_TIMEOUT):
                raw = await self._connect()
                cancelled = await raw.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_cancel_backend(p)) FROM unnest($1::int[]) AS p", pids
                )
                await raw.close()
            logger.warning("repo.stop(): cancelled %s statement(s) still running on the server", cancelled)
        except Exception:
            logger.warning("repo.stop(): could not cancel the statements of pids %s on the server", pids, exc_info=True)
        finally:
            if raw is not None and not raw.is_closed():
                raw.terminate()
