"""The Repo's raw SQL: ``query`` and the ``COPY`` of rows out (``copy_to``) and in (``copy_from``)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import attrs

from asyncecto.errors import (
    ArgumentError,
)

from . import _copy
from ._api_reads import Queryable
from ._core import DEFAULT, RepoCore

__all__ = ("QueryResult", "RawSQL")

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


class RawSQL:
    """Raw SQL and bulk copies."""

    _executor: RepoCore

    async def query(self, sql: str, params: Sequence[Any] = (), /, *, timeout: Any = DEFAULT) -> QueryResult:
        """Run raw SQL with ``$1``-style parameters (never format values into ``sql``).

        The connection is reset before it is reused, since raw SQL may change session state.

        :raises ArgumentError: ``sql`` is a ``COPY … TO STDOUT``/``FROM STDIN``, whose rows this
            call cannot carry: use :meth:`copy_to` / :meth:`copy_from`
        """
        direction = self._executor.adapter.copy_stdio(sql) if isinstance(sql, str) else None
        if direction is not None:
            fix = (
                "repo.copy_to(query_or_sql, format='csv') returns the rows as bytes (or writes them to output=)"
                if direction == "out"
                else "repo.copy_from(Schema_or_table, rows) loads rows with COPY"
            )
            raise ArgumentError(
                f"repo.query cannot run {sql.strip()[:60]!r}: a COPY {'to' if direction == 'out' else 'from'} "
                f"the client streams rows that query() would drop; fix: {fix}"
            )
        (columns, rows, status), _ = await self._executor.run("query", sql, list(params), timeout, None)
        num = self._executor.adapter.rows_of_status(status, len(rows))
        return QueryResult(columns, [tuple(r) for r in rows], num, status)

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

        :raises ArgumentError: an unknown format, ``header`` without CSV, or a COPY statement as ``source``
        """
        return await _copy.copy_to(
            self._executor, source, params, format=format, header=header, output=output, prefix=prefix, timeout=timeout
        )

    async def copy_from(
        self,
        target: type[Any] | str | tuple[str, type[Any]],
        rows: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> int:
        """Load rows with ``COPY … FROM STDIN`` (binary); the number of rows loaded.

        ``target`` and ``rows`` are as for :meth:`insert_all` (a schema dumps each value by its
        field's type and fills a generated UUID key; a table name sends values as they are), but
        ``rows`` may also be any iterable or async iterable, read as the load goes. A value the
        column cannot hold or a violated constraint fails the whole load (nothing is written) with
        the mapped :class:`~asyncecto.errors.DatabaseError`, naming the row and column.

        .. code-block:: python

            await repo.copy_from(Post, ({"title": t} for t in titles))

        :raises CastError: a value does not fit its field's type (before it is sent)
        """
        return await _copy.copy_from(self._executor, target, rows, prefix=prefix, timeout=timeout)
