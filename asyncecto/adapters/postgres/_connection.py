"""One pooled asyncpg connection: the statement path every query takes (the text check, the
bookkeeping the pool's checks read, driver errors translated, a cut-short exchange remembered for the
release to roll back), COPY in and out, and the cancellation and termination the pool drives."""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
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

import asyncpg

from asyncecto.adapters import CopyIn, CopyOut
from asyncecto.errors import AsyncEctoError, ConnectionLostError, StaleStatementError

from ._errors import COPY_ENCODE_ERRORS, DRIVER_ERRORS, copy_encode_error, server_ended, translate, translate_copy
from ._insert_sql import inline_params
from ._pooling import begin_with_timeout, is_begin, refuse, timeout_ms
from ._sql import quote_name
from ._tap import Tap
from ._text import check_statement

__all__ = ("AfterConnectConnection", "PgConnection", "after_connect", "run_after_connect_again")


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


#: every open connection of this process: a stale statement on one drops the caches of all
_live: weakref.WeakSet[PgConnection] = weakref.WeakSet()


def _stale(exc: BaseException, sql: str) -> StaleStatementError:
    """The library's error for "cached plan must not change result type" inside a transaction."""
    return StaleStatementError(
        "cached plan must not change result type: a table this statement reads was altered "
        "(by another process) after the statement was prepared on this connection, and the failure "
        "aborted the transaction it ran in",
        sqlstate=getattr(exc, "sqlstate", None) or "0A000",
        query=sql,
        fix="every statement cache was dropped: run the whole transaction again (repo.transaction(fn, retry=1); "
        "outside a transaction asyncecto re-runs the statement by itself); better, migrate while the "
        "application is stopped, or add columns rather than change their types while it runs",
    )


class PgConnection:
    """One pooled asyncpg connection; every driver error leaves it translated.

    :ivar dirty: set when session state may have changed (raw SQL); forces a reset on release
    :ivar busy_since: when the statement in flight was sent (``time.monotonic()``), 0.0 when none
    :ivar lifted: the statement timeout was changed for this checkout (no half-open check)
    :ivar ended_by: why the pool closed the connection, said in the error its holder sees
    :ivar closing: asyncecto itself closed it (else its end is counted ``lost``)
    :ivar server: the server it reached (``host:port`` or a socket path), for failover
    :ivar failed_over: the pool moved to another primary while this connection was in use: it is
        closed at its checkin, and a lost link then is a :class:`~asyncecto.errors.FailoverError`
    :ivar classify: the pool's failover check of each translated error (``None``: no check)
    :ivar interrupted: a statement was cut short (cancelled, timed out): the server may still be in
        the implicit transaction of its unfinished exchange while asyncpg reports it idle, so the
        release sends a ``ROLLBACK`` before the connection is reused
    :ivar pooled: behind a transaction-mode pooler: no session state is relied on; statements that
        need a session are refused; the statement timeout is ``SET LOCAL`` after each ``BEGIN`` and a
        client-side limit (a cancel request on expiry) outside transactions
    :ivar default_timeout: the repo's statement timeout (used when ``pooled``)
    :ivar session_timeout: the statement timeout in effect for this checkout (used when ``pooled``)
    """

    __slots__ = (
        "__weakref__",
        "busy_since",
        "classify",
        "closing",
        "default_timeout",
        "dirty",
        "ended_by",
        "failed_over",
        "interrupted",
        "last_used",
        "lifted",
        "pid",
        "pooled",
        "raw",
        "server",
        "session_timeout",
        "tap",
    )

    def __init__(self, raw: asyncpg.Connection, *, pooled: bool = False, default_timeout: float | None = None) -> None:
        self.raw = raw
        self.pooled = pooled
        self.default_timeout = self.session_timeout = default_timeout
        self.dirty = False
        self.interrupted = False
        self.busy_since = 0.0
        self.lifted = False
        self.ended_by: str | None = None
        self.closing = False
        self.last_used = time.monotonic()
        self.pid: int = raw.get_server_pid()
        self.tap = Tap.install(raw)
        self.server = "?"
        self.failed_over = False
        self.classify: Callable[[PgConnection, AsyncEctoError], AsyncEctoError] | None = None
        _live.add(self)

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
                error = server_ended(said[0], said[1], sql)
        if self.classify is not None:  # the pool watches for failovers (a writable target_session_attrs)
            error = self.classify(self, error)
        return error

    def _sent(self, sql: str) -> None:
        """Bookkeeping before a statement goes out: its start time, and whether it dirties the session."""
        if not self.lifted and not self.pooled and _touches_session(sql):
            self.dirty = self.lifted = True
        self.busy_since = time.monotonic()

    def _pooled_statement(self, sql: str, timeout: float | None) -> tuple[str, float | None]:
        """Behind a transaction pooler: refuse what needs a session; a ``BEGIN`` also sets the
        statement timeout for its transaction; outside a transaction the limit is the client's."""
        if is_begin(sql):
            if self.session_timeout is None and not self.lifted:
                return sql, timeout  # timeout=None: the role's or database's own statement_timeout applies
            return begin_with_timeout(sql, self.session_timeout), timeout
        refuse(sql)
        return sql, self._limit(timeout)

    def _limit(self, timeout: float | None) -> float | None:
        """The client-side limit of a statement: the caller's, else (behind a transaction pooler, outside
        a transaction, where no ``SET LOCAL`` applies) the checkout's statement timeout."""
        if timeout is not None or not self.pooled or self.raw.is_in_transaction():
            return timeout
        return self.session_timeout

    def restore_session(self) -> None:
        """The release: a pooled connection's statement timeout goes back to the repo's."""
        self.session_timeout = self.default_timeout

    async def _call(
        self, method: Callable[..., Awaitable[Any]], sql: str, params: Sequence[Any], timeout: float | None
    ) -> Any:
        """``method`` of the driver for one statement, with what every statement gets: the text
        check, the bookkeeping, driver errors translated, a cut-short exchange remembered."""
        check_statement(sql)
        if self.pooled:
            sql, timeout = self._pooled_statement(sql, timeout)
        self._sent(sql)
        try:
            try:
                return await method(sql, *params, timeout=timeout)
            except asyncpg.InvalidCachedStatementError as exc:
                # another process altered a table this connection had a statement prepared for:
                # asyncpg retried where it could; drop every cache and re-run once if not in a transaction
                await self._expire_caches()
                if self.raw.is_in_transaction():
                    raise _stale(exc, sql) from exc
                return await method(sql, *params, timeout=timeout)
        except asyncpg.InvalidCachedStatementError as exc:
            raise _stale(exc, sql) from exc
        except DRIVER_ERRORS as exc:
            raise self._error(exc, sql, params) from exc
        except BaseException:
            self.interrupted = True
            raise
        finally:
            self.busy_since = 0.0

    async def _expire_caches(self) -> None:
        """Drop the prepared statements and type caches of this connection and of every live pool's
        connections (they prepared the same statements before the same ``ALTER``)."""
        for conn in list(_live):
            if not conn.raw.is_closed():
                await conn.raw.reload_schema_state()  # no I/O; statements in flight keep their reference

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

    async def uncached(self, kind: str, sql: str, params: Sequence[Any], timeout: float | None) -> Any:
        """``fetch``/``fetchrow``/``execute`` through a statement prepared for this call only (not
        kept in asyncpg's statement cache; closed once unreferenced): a call's ``query_cache=False``."""

        async def run(text: str, *args: Any, timeout: float | None) -> Any:
            stmt = await self.raw.prepare(text, timeout=timeout)
            if kind == "fetchrow":
                return await stmt.fetchrow(*args, timeout=timeout)
            rows = await stmt.fetch(*args, timeout=timeout)
            return rows if kind == "fetch" else stmt.get_statusmsg() or ""

        result = await self._call(run, sql, params, timeout)
        if kind != "execute":
            return result
        tail = str(result).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def query(self, sql: str, params: Sequence[Any], timeout: float | None) -> tuple[list[str], list[Any], str]:
        """Raw SQL: column names, rows and the command status (``"SELECT 2"``)."""

        async def prepare_and_fetch(text: str, *args: Any, timeout: float | None) -> tuple[Any, list[Any]]:
            if not self.pooled:  # raw SQL may change the session: the release resets it
                self.dirty = True
            stmt = await self.raw.prepare(text, timeout=timeout)
            return stmt, await stmt.fetch(*args, timeout=timeout)

        stmt, rows = await self._call(prepare_and_fetch, sql, params, timeout)
        columns = [a.name for a in stmt.get_attributes()]
        return columns, rows, stmt.get_statusmsg() or ""

    async def batches(
        self, sql: str, params: Sequence[Any], size: int, timeout: float | None = None
    ) -> AsyncGenerator[list[Any], None]:
        """Rows of a server-side cursor, ``size`` at a time (the connection must be in a transaction)."""
        check_statement(sql)
        if self.pooled:
            refuse(sql)
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
        except asyncpg.InvalidCachedStatementError as exc:  # a cursor runs in a transaction: aborted
            await self._expire_caches()
            raise _stale(exc, sql) from exc
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
                timeout=self._limit(timeout),
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
        if self.pooled:
            refuse(out.query)
        timeout = self._limit(timeout)
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
        ms = timeout_ms(seconds)
        local = "false"
        if self.pooled:  # no session to set: this checkout's transactions (SET LOCAL) and client limits
            self.session_timeout = seconds
            if not self.raw.is_in_transaction():
                return
            local = "true"
        try:
            await self.raw.execute(f"SELECT set_config('statement_timeout', $1, {local})", ms)
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc

    def on_notice(self, fn: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``fn(severity, message)`` for each NOTICE/WARNING/INFO the server sends on this
        connection (e.g. ``RAISE NOTICE``); returns the function that stops it."""

        def listener(_raw: Any, message: Any) -> None:
            fn(str(getattr(message, "severity", "NOTICE")), str(getattr(message, "message", message)))

        self.raw.add_log_listener(listener)

        def remove() -> None:
            if not self.raw.is_closed():
                self.raw.remove_log_listener(listener)

        return remove

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


class AfterConnectConnection:
    """The connection handed to the ``after_connect`` option: run SQL on a new connection.

    .. code-block:: python

        async def after_connect(conn):
            await conn.execute("SET search_path TO app, public")

        repo = Repo(url, after_connect=after_connect)

    Behind a transaction pooler (``pooler="transaction"``) it runs once per connection to the pooler,
    on whichever server connection the pooler picks: a session-level ``SET`` there is refused
    (:class:`~asyncecto.errors.UnsupportedInTransactionPoolingError`); set such things on the role or
    database (``ALTER ROLE app SET search_path = app, public``).
    """

    __slots__ = ("_pooled", "_raw")

    def __init__(self, raw: asyncpg.Connection, pooled: bool = False) -> None:
        self._raw = raw
        self._pooled = pooled

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> str:
        """Run ``sql`` with ``$1``-style ``params``; the command status (``"SET"``)."""
        if self._pooled:
            refuse(sql)
        status: str = await self._raw.execute(sql, *params)
        return status

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` as tuples."""
        if self._pooled:
            refuse(sql)
        return [tuple(r) for r in await self._raw.fetch(sql, *params)]


AfterConnect = Callable[[AfterConnectConnection], Any]

#: each connection's ``after_connect``, run again after a session reset (``RESET ALL``) undid it
_HOOKS: weakref.WeakKeyDictionary[asyncpg.Connection, AfterConnect] = weakref.WeakKeyDictionary()


async def after_connect(raw: asyncpg.Connection, fn: AfterConnect, pooled: bool = False) -> None:
    """Run ``fn`` (sync or async) on a new connection, and again after each session reset (none
    behind a transaction pooler: ``pooled``, where session statements are refused)."""
    result = fn(AfterConnectConnection(raw, pooled))
    if inspect.isawaitable(result):
        await result
    _HOOKS[raw] = fn


async def run_after_connect_again(raw: asyncpg.Connection) -> None:
    """After the pool's session reset: restore what ``after_connect`` set (a no-op without one)."""
    fn = _HOOKS.get(raw)
    if fn is not None:
        await after_connect(raw, fn)
