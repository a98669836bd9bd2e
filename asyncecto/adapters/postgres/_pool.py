"""A connection pool on asyncpg that resets a connection only when its state needs it.

asyncpg's own pool sends a reset query on every release (a round trip). Here a
connection goes straight back to the idle queue unless it is inside a transaction
or was used for raw SQL that may have changed session state; then it is reset with
a deadline, and terminated if the reset fails or is interrupted.

Resets and closing run in tasks of their own (``asyncecto._aio.finish``): a caller
cancelled meanwhile (by ``task.cancel()``, ``asyncio.timeout`` or an anyio cancel scope)
waits for the cleanup to end and is then cancelled, so no connection is ever left
neither returned nor terminated, nor used while its cleanup still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
import asyncpg

from asyncecto._aio import finish
from asyncecto.adapters import CopyIn, CopyOut
from asyncecto.errors import AsyncEctoError, ConnectionLostError, PoolTimeoutError, RepoStateError

from ._errors import COPY_ENCODE_ERRORS, DRIVER_ERRORS, server_ended, translate, translate_copy
from ._insert import inline_params
from ._sql import quote_name
from ._tap import Tap

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


class PgConnection:
    """One pooled asyncpg connection; every driver error leaves it translated.

    :ivar dirty: set when session state may have changed (raw SQL); forces a reset on release
    """

    __slots__ = ("dirty", "last_used", "pid", "raw", "tap")

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw
        self.dirty = False
        self.last_used = time.monotonic()
        self.pid: int = raw.get_server_pid()
        self.tap = Tap.install(raw)

    def _error(
        self, exc: BaseException, sql: str | None = None, params: Sequence[Any] = (), *, copy: bool = False
    ) -> AsyncEctoError:
        """The asyncecto error for a driver error; a lost connection says why the server ended it."""
        error = translate_copy(exc, sql or "") if copy else translate(exc, sql, params)
        if isinstance(error, ConnectionLostError) and error.sqlstate is None and self.tap is not None:
            said = self.tap.last_words
            if said is not None:
                return server_ended(said[0], said[1], sql)
        return error

    async def fetch(self, sql: str, params: Sequence[Any], timeout: float | None) -> list[Any]:
        try:
            return await self.raw.fetch(sql, *params, timeout=timeout)  # type: ignore[no-any-return]
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc

    async def fetchrow(self, sql: str, params: Sequence[Any], timeout: float | None) -> Any:
        try:
            return await self.raw.fetchrow(sql, *params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc

    async def execute(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Run a statement returning no rows; the number of rows it affected."""
        try:
            status: str = await self.raw.execute(sql, *params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def command(self, sql: str, params: Sequence[Any], timeout: float | None) -> str:
        """Run a statement; its command tag (``"COMMIT"``, or ``"ROLLBACK"`` for a failed transaction)."""
        try:
            tag: str = await self.raw.execute(sql, *params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        return tag

    async def query(self, sql: str, params: Sequence[Any], timeout: float | None) -> tuple[list[str], list[Any], str]:
        """Raw SQL: column names, rows and the command status (``"SELECT 2"``)."""
        self.dirty = True
        try:
            stmt = await self.raw.prepare(sql, timeout=timeout)
            rows = await stmt.fetch(*params, timeout=timeout)
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        columns = [a.name for a in stmt.get_attributes()]
        return columns, rows, stmt.get_statusmsg() or ""

    async def batches(
        self, sql: str, params: Sequence[Any], size: int, timeout: float | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """Rows of a server-side cursor, ``size`` at a time (the connection must be in a transaction)."""
        try:
            cursor = await self.raw.cursor(sql, *params, timeout=timeout)
            while True:
                rows = await cursor.fetch(size, timeout=timeout)
                if rows:
                    yield rows
                if len(rows) < size:
                    return
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc

    async def copy(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Bulk-load rows with ``COPY … FROM STDIN`` (binary); the number of rows loaded."""
        rows: CopyIn = params[0]
        try:
            status: str = await self.raw.copy_records_to_table(
                rows.table, records=rows.records, columns=rows.columns, schema_name=rows.prefix, timeout=timeout
            )
        except (*DRIVER_ERRORS, *COPY_ENCODE_ERRORS) as exc:
            raise self._error(exc, sql, copy=True) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def copy_out(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Write a query's rows to a sink with ``COPY … TO STDOUT``; the number of rows."""
        out: CopyOut = params[0]
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
        ms = "0" if seconds is None else str(max(1, round(seconds * 1000)))
        try:
            await self.raw.execute("SELECT set_config('statement_timeout', $1, false)", ms)
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc

    def is_closed(self) -> bool:
        return bool(self.raw.is_closed())

    def in_transaction(self) -> bool:
        return bool(self.raw.is_in_transaction())

    def terminate(self) -> None:
        self.raw.terminate()


class PoolStats:
    """Counters a test or a dashboard can read (``repo.pool_stats()``)."""

    __slots__ = ("checkouts", "opened", "resets", "rollbacks", "terminated", "timeouts")

    def __init__(self) -> None:
        self.checkouts = 0
        self.opened = 0
        self.resets = 0
        self.rollbacks = 0  # releases that found a transaction still open (the pool rolled it back)
        self.terminated = 0
        self.timeouts = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Pool:
    """A bounded FIFO pool of :class:`PgConnection`.

    :param connect: opens a new raw connection (already set up)
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
    ) -> None:
        self._connect = connect
        self.size = size
        self.min_size = min_size
        self.timeout = timeout
        self.max_idle_time = max_idle_time
        self.reset_timeout = reset_timeout
        self._idle: deque[PgConnection] = deque()
        self._all: set[PgConnection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[PgConnection | None]] = deque()
        self._closed = False
        self._released = asyncio.Event()
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

    async def acquire(self, timeout: float | None = None) -> PgConnection:
        """Check out a connection, waiting up to ``timeout`` (default: the pool timeout)."""
        conn = self.acquire_nowait()
        if conn is not None:
            return conn
        if len(self._all) + self._opening < self.size:
            conn = await self._open()
            self.stats.checkouts += 1
            return conn
        return await self._wait(self.timeout if timeout is None else timeout)

    async def _wait(self, timeout: float) -> PgConnection:
        deadline = time.monotonic() + timeout
        while True:
            fut: asyncio.Future[PgConnection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    conn = await fut
            except TimeoutError:
                self._drop_waiter(fut)
                self.stats.timeouts += 1
                raise PoolTimeoutError(timeout, self.size) from None
            except BaseException:
                self._drop_waiter(fut)
                raise
            if conn is not None:
                self.stats.checkouts += 1
                return conn
            if self._closed:
                raise RepoStateError("check out a connection", "closed")
            # a slot was freed: open a connection in it, or take an idle one
            if self._idle or len(self._all) + self._opening < self.size:
                return await self.acquire(max(deadline - time.monotonic(), 0.0))

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
        self._all.add(conn)
        self.stats.opened += 1
        return conn

    # -- checkin ----------------------------------------------------------------
    def release_nowait(self, conn: PgConnection) -> bool:
        """Return a connection that needs no reset; ``False`` (and nothing done) if it needs one."""
        raw = conn.raw
        if raw.is_closed():
            self._discard(conn)
            return True
        if conn.dirty or raw.is_in_transaction():
            return False
        self._put_back(conn)
        return True

    async def release(self, conn: PgConnection) -> None:
        """Return a connection; reset it first only if its state needs it."""
        if conn.raw.is_closed():
            self._discard(conn)
            return
        if conn.dirty or conn.raw.is_in_transaction():
            await self._shielded(self._reset_and_put_back(conn))
            return
        self._put_back(conn)

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to its end; a caller cancelled meanwhile waits for it, then is cancelled."""
        await finish(work)

    def _put_back(self, conn: PgConnection) -> None:
        conn.last_used = time.monotonic()
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
        """Roll back and reset session state within ``reset_timeout``; on any failure, terminate."""
        self.stats.resets += 1
        try:
            async with asyncio.timeout(self.reset_timeout):
                raw = conn.raw
                if raw.is_in_transaction():
                    # roll back ourselves: asyncpg's reset() would warn about an active transaction
                    self.stats.rollbacks += 1
                    await raw.execute("ROLLBACK")
                if conn.dirty:
                    await raw.reset()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                logger.warning("resetting connection pid=%s failed; terminating it", conn.pid, exc_info=True)
            self.terminate(conn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        conn.dirty = False
        self._put_back(conn)

    def terminate(self, conn: PgConnection) -> None:
        """Close a connection at once and drop it from the pool (it is never reused)."""
        self.stats.terminated += 1
        conn.raw.terminate()
        self._discard(conn)

    def _discard(self, conn: PgConnection) -> None:
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
        """Forever: drop broken idle connections, close long-idle ones, keep ``min_size`` open."""
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
            await self.fill()

    def _close_one(self, conn: PgConnection) -> None:
        self._all.discard(conn)
        conn.raw.terminate()

    async def close(self, timeout: float) -> None:
        """Refuse new checkouts, wait up to ``timeout`` for checked-out connections, then close all.

        Cancelling the caller does not interrupt the closing.
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
        for conn in list(self._all):
            self._all.discard(conn)
            if conn in idle:
                try:
                    async with asyncio.timeout(1.0):
                        await conn.raw.close()
                    continue
                except BaseException:
                    pass
            conn.raw.terminate()
