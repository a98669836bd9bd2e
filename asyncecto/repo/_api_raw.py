"""The Repo's raw SQL: ``query``, ``stream_query`` (a cursor) and the ``COPY`` of rows out
(``copy_to``) and in (``copy_from``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Literal, TypeVar, overload

import attrs

from asyncecto.errors import (
    ArgumentError,
)

from . import _copy
from ._api_reads import LogOption, Queryable
from ._core import DEFAULT, NO_CALL_OPTIONS, RepoCore
from ._options import CallHooks
from ._routing import routed_raw

__all__ = ("QueryResult", "RawSQL", "format_table")

_T = TypeVar("_T")


@attrs.frozen
class QueryResult:
    """The result of raw SQL run with :meth:`Repo.query`.

    :ivar columns: column names; :ivar rows: rows as tuples
    :ivar num_rows: rows returned, or affected for INSERT/UPDATE/DELETE
    :ivar command: the command status, e.g. ``"INSERT 0 1"``
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    num_rows: int
    command: str


class RawSQL(CallHooks):
    """Raw SQL and bulk copies."""

    _executor: RepoCore

    @routed_raw
    async def query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        /,
        *,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> QueryResult:
        """Run raw SQL with ``$1``-style parameters (never format values into ``sql``).

        The connection is reset before it is reused, since raw SQL may change session state.
        ``log=False`` silences this call's log line; ``telemetry_options`` reach the telemetry
        event's ``options``; ``default_options("query")`` applies (``prepare_query`` does not).
        With read replicas (``Repo(replicas=...)``), raw SQL runs on the primary unless the call
        says ``replica=True`` (outside a transaction: then on a healthy replica, as a read).

        .. code-block:: python

            result = await repo.query("SELECT $1::int + 1", [41], log=False)
            assert result.rows == [(42,)]

        :raises ArgumentError: ``sql`` is a ``COPY … TO STDOUT``/``FROM STDIN``, whose rows this
            call cannot carry: use :meth:`copy_to` / :meth:`copy_from`
        """
        self._refuse_copy(sql, "query")
        core = self._executor
        r = self._resolve("query", "query", None, None, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            (columns, rows, status), _ = await core.run("query", sql, list(params), r.timeout, None)
        num = core.adapter.rows_of_status(status, len(rows))
        return QueryResult(columns, [tuple(r) for r in rows], num, status)

    async def stream_query(
        self,
        sql: str,
        params: Sequence[Any] = (),
        /,
        *,
        max_rows: int = 500,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        """Rows of raw SQL (a ``SELECT`` or ``VALUES``) as tuples, through a server-side cursor
        fetched ``max_rows`` at a time; like :meth:`stream`, inside a transaction only (Ecto's
        ``Ecto.Adapters.SQL.stream``). Each fetch emits a telemetry event; ``timeout`` bounds each.

        .. code-block:: python

            async with repo.transaction():
                async for (id, title) in repo.stream_query("SELECT id, title FROM posts WHERE id > $1", [0]):
                    ...

        :raises RepoStateError: outside of a transaction, or iterated after it ended
        :raises ArgumentError: a bad ``max_rows``, or a ``COPY`` statement (use :meth:`copy_to`)
        """
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ArgumentError(f"max_rows must be a positive integer, got {max_rows!r}")
        if not isinstance(sql, str):
            raise ArgumentError(f"stream_query takes SQL text, got {sql!r}; for a query use repo.stream(query)")
        self._refuse_copy(sql, "stream_query")
        core = self._executor
        bound = core.require_transaction("stream_query")
        r = self._resolve("stream", "stream_query", None, None, timeout, log, telemetry_options, options)
        bound.lease.check_sql(sql)
        bound.conn.dirty = True  # raw SQL may change the session: the release resets it
        call = None if r.call is NO_CALL_OPTIONS else r.call
        async with aclosing(core.stream_batches(bound, sql, list(params), max_rows, r.timeout, None, call)) as batches:
            async for rows in batches:
                for row in rows:
                    yield tuple(row)

    async def table_exists(
        self,
        table: str,
        /,
        *,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> bool:
        """Whether ``table`` exists in the current schema (Ecto's ``table_exists?``).

        .. code-block:: python

            assert await repo.table_exists("posts")
        """
        if not isinstance(table, str) or not table:
            raise ArgumentError(f"table_exists takes a table name, got {table!r}")
        core = self._executor
        r = self._resolve("query", "table_exists", None, None, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            (_c, rows, _s), _ = await core.run("query", core.adapter.table_exists_sql(None, table), [], r.timeout, None)
        return bool(rows[0][0])

    @staticmethod
    def format_table(result: QueryResult) -> str:
        """An ASCII table of a :meth:`query` result (Ecto's ``format_table/1``); ``None`` prints
        as empty, no columns as ``""``.

        .. code-block:: python

            print(repo.format_table(await repo.query("SELECT 1 AS a")))
            # +---+
            # | a |
            # +---+
            # | 1 |
            # +---+
        """
        if not isinstance(result, QueryResult):
            raise ArgumentError(f"format_table takes a QueryResult from repo.query, got {result!r}")
        return format_table(result)

    def _refuse_copy(self, sql: Any, method: str) -> None:
        direction = self._executor.adapter.copy_stdio(sql) if isinstance(sql, str) else None
        if direction is not None:
            fix = (
                "repo.copy_to(query_or_sql, format='csv') returns the rows as bytes (or writes them to output=)"
                if direction == "out"
                else "repo.copy_from(Schema_or_table, rows) loads rows with COPY"
            )
            raise ArgumentError(
                f"repo.{method} cannot run {sql.strip()[:60]!r}: a COPY {'to' if direction == 'out' else 'from'} "
                f"the client streams rows that {method}() would drop; fix: {fix}"
            )

    @overload
    async def copy_to(
        self,
        source: Queryable[Any] | str,
        params: Sequence[Any] = (),
        /,
        *,
        format: Literal["text", "csv", "binary"] = "text",
        header: bool = False,
        output: None = None,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> bytes: ...

    @overload
    async def copy_to(
        self,
        source: Queryable[Any] | str,
        params: Sequence[Any] = (),
        /,
        *,
        format: Literal["text", "csv", "binary"] = "text",
        header: bool = False,
        output: Any,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> int: ...

    async def copy_to(
        self,
        source: Queryable[Any] | str,
        params: Sequence[Any] = (),
        /,
        *,
        format: Literal["text", "csv", "binary"] = "text",
        header: bool = False,
        output: Any = None,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> bytes | int:
        """Copy a query's rows out with ``COPY … TO STDOUT``, in PostgreSQL's ``format``.

        ``source`` is a query, a schema (its table's rows) or SQL text (a ``SELECT``; its ``$1``
        parameters are ``params``, quoted into the statement by the server since COPY takes
        none). Without ``output`` the data comes back as ``bytes``; with it, each chunk goes to
        ``output.write`` or ``output(chunk)`` (either may be async) as it arrives, and the row
        count is returned. ``header=True`` starts CSV with the column names. For structs, use
        :meth:`stream`.

        .. code-block:: python

            csv = await repo.copy_to(from_(Post) | where(lambda p: p.draft == False), format="csv")
            with open("posts.copy", "wb") as f:
                await repo.copy_to(Post, format="binary", output=f)

        ``log``/``telemetry_options`` as for :meth:`query`; ``default_options("copy_to")`` applies.

        :raises ArgumentError: an unknown format, ``header`` without CSV, or a COPY statement as ``source``
        """
        core = self._executor
        r = self._resolve("copy_to", "copy_to", None, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _copy.copy_to(
                core, source, params, format=format, header=header, output=output, prefix=r.prefix, timeout=r.timeout
            )

    async def copy_from(
        self,
        target: type[Any] | str | tuple[str, type[Any]],
        rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> int:
        """Load rows with ``COPY … FROM STDIN`` (binary); the number of rows loaded.

        ``target`` and ``rows`` are as for :meth:`insert_all` (a schema dumps each value by its
        field's type and fills a generated UUID key; a table name sends values as they are), but
        ``rows`` may also be any iterable or async iterable, read as the load goes. A value the
        column cannot hold or a violated constraint fails the whole load (nothing is written) with
        the mapped :class:`~asyncecto.errors.DatabaseError`, naming the row and column.

        .. code-block:: python

            await repo.copy_from(Post, ({"title": t} for t in titles))

        ``log``/``telemetry_options`` as for :meth:`query`; ``default_options("copy_from")`` applies.

        :raises CastError: a value does not fit its field's type (before it is sent)
        """
        core = self._executor
        r = self._resolve("copy_from", "copy_from", None, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _copy.copy_from(core, target, rows, prefix=r.prefix, timeout=r.timeout)


def format_table(result: QueryResult) -> str:
    """An ASCII table of ``result``'s columns and rows (see :meth:`RawSQL.format_table`)."""
    if not result.columns:
        return ""
    cells = [["" if v is None else str(v) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(result.columns)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: list[str]) -> str:
        return "|" + "|".join(f" {v.ljust(w)} " for v, w in zip(values, widths, strict=True)) + "|"

    body = [line(row) for row in cells]
    return "\n".join([sep, line(list(result.columns)), sep, *([*body, sep] if body else [])])
