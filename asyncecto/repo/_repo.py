"""``Repo``: the public API. Each method is a thin entry point into the read or write path.

Shared options (keyword-only, on every call that talks to the database):

- ``timeout``: seconds this call may take; the client cancels the statement on the server when
  it runs out. Without it the repo's ``timeout`` applies, enforced by the server itself
  (``statement_timeout``, set when a connection opens) so that no timer is armed per query.
  That server limit applies to every statement; create the Repo with ``timeout=None`` to
  lift it.
- ``prefix``: the PostgreSQL schema to use instead of the struct's, schema's or repo's
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NoReturn, TypeVar, overload

import attrs

from asyncecto._names import check_optional_name
from asyncecto.changeset import Changeset
from asyncecto.errors import (
    ArgumentError,
    NoResultsError,
    QueryError,
    RepoStateError,
    Rollback,
    TransactionConflictError,
)
from asyncecto.multi import Multi
from asyncecto.query import Query
from asyncecto.query._ast import FieldRef, Filter, In, Param
from asyncecto.query._build import to_query
from asyncecto.query._insert import ConflictTarget, OnConflict
from asyncecto.schema import Meta, meta, schema_info

from . import _copy, _insert_all, _read, _write
from ._core import DEFAULT, RepoCore
from ._loader import load_struct
from ._multi import run_multi
from ._notifications import DEFAULT_MAX_QUEUE, Subscription, check_channel, check_payload, listener_of
from ._transaction import Checkout, Transaction

__all__ = ("QueryResult", "Repo")

_T = TypeVar("_T")
Queryable = type[_T] | Query[_T] | tuple[str, type[_T]]


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


async def _with_retry(attempt: Callable[[], Awaitable[Any]], retries: int) -> Any:
    """``attempt()``, again (after a short, growing pause) on a serialization failure or deadlock."""
    for n in range(retries):
        try:
            return await attempt()
        except TransactionConflictError:
            await asyncio.sleep(0.005 * 2**n * (1 + random.random()))
    return await attempt()  # the last try: its conflict propagates


class Repo(RepoCore):
    """A pooled connection to PostgreSQL, run by a supervisor task group.

    .. code-block:: python

        repo = Repo("postgres://postgres@localhost/ecto_simple", pool_size=10)
        async with repo:
            w = await repo.insert(Weather(temp_lo=0, temp_hi=23))
            w = await repo.get(Weather, w.id)

    :param url: ``postgres://``, ``postgresql://`` or ``ecto://`` URL (default: ``$DATABASE_URL``);
        options may also be given as URL query parameters, which win over keyword options
    :param name: a name for logs and telemetry (default: the database name)
    :param options: ``pool_size``, ``pool_timeout``, ``timeout``, ``connect_timeout``,
        ``shutdown_timeout``, ``cleanup_timeout``, ``ssl``, ``prefix``, ``log``, ``server_settings`` …
        (see :class:`asyncecto.repo.RepoConfig`); timeouts are seconds
    """

    # -- reads --------------------------------------------------------------------
    async def all(self, queryable: Queryable[_T], *, prefix: str | None = None, timeout: Any = DEFAULT) -> list[_T]:
        """Every row the query matches, as structs."""
        return await _read.all_(self, queryable, prefix, timeout)

    @overload
    async def preload(
        self,
        structs: list[_T],
        *preloads: Any,
        force: bool = ...,
        prefix: str | None = ...,
        timeout: Any = ...,
        in_parallel: bool = ...,
    ) -> list[_T]: ...
    @overload
    async def preload(
        self,
        structs: _T,
        *preloads: Any,
        force: bool = ...,
        prefix: str | None = ...,
        timeout: Any = ...,
        in_parallel: bool = ...,
    ) -> _T: ...
    async def preload(
        self,
        structs: Any,
        *preloads: Any,
        force: bool = False,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        in_parallel: bool = True,
    ) -> Any:
        """``structs`` (a struct, a list or ``None``) with associations loaded; copies, never in place.

        ``await repo.preload(post, "comments")``, ``repo.preload(posts, "comments", "author")``,
        nested ``{"comments": "author"}``, custom queries ``{"comments": query}``. Loaded
        associations are skipped unless ``force=True``. Sibling associations load in parallel
        outside a transaction (``in_parallel=False`` turns that off) and in turn inside one.
        """
        from ._preload import preload

        return await preload(
            self, structs, preloads, force=force, prefix=prefix, timeout=timeout, in_parallel=in_parallel
        )

    async def one(self, queryable: Queryable[_T], *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T | None:
        """The single row the query matches, or ``None``.

        :raises MultipleResultsError: more than one row matched (no implicit LIMIT is added)
        """
        return await _read.one(self, queryable, prefix, timeout)  # type: ignore[no-any-return]

    async def one_or_raise(self, queryable: Queryable[_T], *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T:
        """Like :meth:`one`, but raises :class:`NoResultsError` when nothing matched."""
        found = await _read.one(self, queryable, prefix, timeout)
        if found is None:
            raise NoResultsError(to_query(queryable))
        return found  # type: ignore[no-any-return]

    async def get(
        self, queryable: Queryable[_T], id: Any, *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> _T | None:
        """The struct whose primary key is ``id`` (cast to the key's type, so ``"42"`` works), or ``None``.

        :raises ArgumentError: ``id`` is ``None``, or the schema has no single primary key
        """
        return await _read.get(self, queryable, id, prefix, timeout)  # type: ignore[no-any-return]

    async def get_or_raise(
        self, queryable: Queryable[_T], id: Any, *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> _T:
        """Like :meth:`get`, but raises :class:`NoResultsError` when no row has that key."""
        found = await _read.get(self, queryable, id, prefix, timeout)
        if found is None:
            q = to_query(queryable)
            raise NoResultsError(f"{q!r} with primary key {id!r}")
        return found  # type: ignore[no-any-return]

    async def get_by(
        self,
        queryable: Queryable[_T],
        clauses: Mapping[str, Any] | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        **fields: Any,
    ) -> _T | None:
        """The struct matching every ``field=value`` clause, or ``None``.

        Clauses come as keywords (``get_by(User, email=e)``) or a mapping
        (``get_by(User, {"email": e})``), the latter for fields named like an option.

        :raises MultipleResultsError: more than one row matched
        """
        return await _read.get_by(self, queryable, {**(clauses or {}), **fields}, prefix, timeout)  # type: ignore[no-any-return]

    async def get_by_or_raise(
        self,
        queryable: Queryable[_T],
        clauses: Mapping[str, Any] | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        **fields: Any,
    ) -> _T:
        """Like :meth:`get_by`, but raises :class:`NoResultsError` when nothing matched."""
        given = {**(clauses or {}), **fields}
        found = await _read.get_by(self, queryable, given, prefix, timeout)
        if found is None:
            raise NoResultsError(f"{to_query(queryable)!r} with {given!r}")
        return found  # type: ignore[no-any-return]

    def to_sql(self, *args: Any, prefix: str | None = None) -> tuple[str, list[Any]]:
        """The SQL text and parameters a query would send (no database needed).

        ``to_sql(query)`` for ``all``; ``to_sql("update_all", query)`` or ``to_sql("delete_all", query)``.

        >>> from asyncecto import Repo, schema
        >>> @schema("weather")
        ... class Weather:
        ...     city: str | None = None
        >>> Repo("postgres://localhost/db").to_sql(Weather)
        ('SELECT w0."id", w0."city" FROM "weather" AS w0', [])
        """
        if len(args) == 2 and isinstance(args[0], str):
            op, queryable = args
        elif len(args) == 1:
            op, queryable = "all", args[0]
        else:
            raise ArgumentError("to_sql takes a query, or an operation and a query: to_sql('update_all', q)")
        return _read.to_sql(self, queryable, op, prefix)

    async def explain(
        self,
        queryable: Queryable[Any],
        op: str = "all",
        /,
        *,
        analyze: bool = False,
        verbose: bool = False,
        costs: bool = True,
        buffers: bool = False,
        format: str = "text",
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> Any:
        """PostgreSQL's plan for a query: text (one string) or ``format="json"`` (parsed).

        ``analyze=True`` runs the statement; it is refused for ``update_all``/``delete_all``,
        which would change rows.
        """
        for name, flag in (("analyze", analyze), ("verbose", verbose), ("costs", costs), ("buffers", buffers)):
            if not isinstance(flag, bool):
                raise ArgumentError(f"explain option {name} must be True or False, got {flag!r}")
        if format not in ("text", "json", "yaml", "xml"):
            raise ArgumentError(f"explain format must be text, json, yaml or xml, got {format!r}")
        if analyze and op != "all":
            raise ArgumentError(f"explain(analyze=True) would run {op} and change rows; explain it without analyze")
        sql, params = _read.to_sql(self, queryable, op, prefix)
        explain = self.adapter.explain_sql(sql, analyze, verbose, costs, buffers, format)
        (_columns, rows, _status), _ = await self.run("query", explain, params, timeout, None)
        if format == "json":
            return rows[0][0]
        return "\n".join(r[0] for r in rows)

    async def exists(self, queryable: Queryable[Any], *, prefix: str | None = None, timeout: Any = DEFAULT) -> bool:
        """Whether the query matches any row (``SELECT TRUE … LIMIT 1``; select and order are dropped)."""
        return await _read.exists(self, queryable, prefix, timeout)

    async def aggregate(
        self,
        queryable: Queryable[Any],
        func: str,
        field: str | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> Any:
        """``count`` (of rows, or of a field's non-NULL values), ``sum``, ``avg``, ``min`` or ``max``.

        A query with ``limit``, ``offset`` or ``distinct`` is wrapped in a subquery first;
        ``group_by`` is refused. ``count`` of no rows is 0; the others are ``None``.
        """
        return await _read.aggregate(self, queryable, func, field, prefix, timeout)

    async def update_all(
        self,
        queryable: Queryable[Any],
        *,
        set: Mapping[str, Any] | None = None,
        inc: Mapping[str, Any] | None = None,
        push: Mapping[str, Any] | None = None,
        pull: Mapping[str, Any] | None = None,
        timestamps: bool = False,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> tuple[int, list[Any] | None]:
        """Update every matching row; ``(count, returned)`` where returned comes from the query's select.

        Changes merge with any ``update(...)`` step in the query. Values may be functions of
        the bindings (``set={"visits": lambda p: p.visits * 2}``). Timestamps are not touched
        unless ``timestamps=True``, which sets the schema's ``updated_at`` to now.
        """
        ops = {k: v for k, v in (("set", set), ("inc", inc), ("push", push), ("pull", pull)) if v}
        return await _read.update_all(self, queryable, ops, prefix, timeout, timestamps)

    async def delete_all(
        self, queryable: Queryable[Any], *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> tuple[int, list[Any] | None]:
        """Delete every matching row; ``(count, returned)`` where returned comes from the query's select."""
        return await _read.delete_all(self, queryable, prefix, timeout)

    # -- writes -------------------------------------------------------------------
    @overload
    async def insert(
        self,
        value: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> _T: ...
    @overload
    async def insert(
        self,
        value: _T,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> _T: ...
    async def insert(
        self,
        value: Any,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> Any:
        """Insert a struct or a changeset's data with its changes; returns the loaded struct.

        Fields that are ``None`` are left to the database's defaults. The generated
        primary key and ``read_after_writes`` fields come back via ``RETURNING``.

        An upsert (``on_conflict=``, as in :meth:`insert_all`) returns the given values with
        the stored primary key, and ``meta(result).inserted`` tells a new row (``True``) from
        a conflicting one that was updated or kept (``False``); ``returning=True`` reads the
        row as stored. A conflict query whose ``where`` matched nothing is stale (see :meth:`update`).

        :param returning: ``True`` for every field, or field names to read back
        :raises InvalidChangesetError: the changeset is invalid (nothing is sent)
        :raises CastError: a value does not fit its field's type (nothing is sent)
        :raises ConstraintError: a database constraint fired that the changeset did not declare
        """
        upsert = None
        if on_conflict not in (None, "raise") or conflict_target is not None:
            stale = _write.Stale(allow_stale, stale_error_field, stale_error_message)
            upsert = _write.Upsert(on_conflict, conflict_target, stale)
        return await _write.insert(self, value, prefix, returning, timeout, upsert)

    async def insert_all(
        self,
        target: type[Any] | str | tuple[str, type[Any]],
        entries: Sequence[Mapping[str, Any]] | Query[Any],
        *,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        placeholders: Mapping[str, Any] | None = None,
        timestamps: bool = False,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> tuple[int, list[Any] | None]:
        """Insert many rows at once; ``(count, returned)`` (``returned`` is ``None`` without ``returning``).

        ``target`` is a schema (values are dumped by field type, names mapped to columns), a
        table name (values sent as they are), or ``(table, Schema)``. ``entries`` is a list of
        dicts with the same keys, or a query selecting a dict (``INSERT … SELECT``). No
        changesets, validations or associations; only a UUID primary key is generated, and
        timestamps only with ``timestamps=True``. An empty list sends nothing.

        ``on_conflict``: ``"raise"`` (default), ``"nothing"``, ``"replace_all"``,
        ``("replace", fields)``, ``("replace_all_except", fields)``, an update dict
        (``{"set": {...}, "inc": {...}}``) or an update query; all but ``"nothing"`` need
        ``conflict_target`` (fields, or :func:`asyncecto.unsafe_fragment`). The stored row keeps
        its primary key (and ``inserted_at``). Returned structs say ``meta(s).inserted``.

        >>> await repo.insert_all(Post, [{"title": "a"}, {"title": "b"}], returning=["id"])  # doctest: +SKIP
        (2, [Post(id=1, ...), Post(id=2, ...)])

        :param placeholders: values sent once and used in rows as ``placeholder(key)``
        :param timestamps: fill the schema's ``inserted_at``/``updated_at`` (and set ``updated_at``
            when an upsert updates)
        :raises ArgumentError: bad options or rows (nothing is sent)
        """
        return await _insert_all.insert_all(
            self,
            target,
            entries,
            returning=returning,
            on_conflict=on_conflict,
            conflict_target=conflict_target,
            placeholders=placeholders,
            timestamps=timestamps,
            prefix=prefix,
            timeout=timeout,
        )

    async def update(
        self,
        changeset: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        force: bool = False,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> _T:
        """Write a changeset's changes to its struct's row; with no changes nothing is sent.

        :param force: update (and bump ``updated_at``) even with no changes
        :param allow_stale: return the struct unchanged instead of raising when no row matched
        :param stale_error_field: when no row matched, raise ``InvalidChangesetError`` with this
            field's error ``stale_error_message`` (metadata ``stale: True``) instead
        :raises ArgumentError: given a struct instead of a changeset
        :raises StaleEntryError: no row has the struct's primary key (or the lock version moved on)
        """
        stale = _write.Stale(allow_stale, stale_error_field, stale_error_message)
        return await _write.update(self, changeset, prefix, returning, force, stale, timeout)  # type: ignore[no-any-return]

    @overload
    async def delete(
        self,
        value: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> _T: ...
    @overload
    async def delete(
        self,
        value: _T,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> _T: ...
    async def delete(
        self,
        value: Any,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
    ) -> Any:
        """Delete a struct's row; returns the struct with state ``"deleted"``.

        :param stale_error_field: as for :meth:`update`
        :raises StaleEntryError: no row has the struct's primary key
        """
        stale = _write.Stale(allow_stale, stale_error_field, stale_error_message)
        return await _write.delete(self, value, prefix, returning, stale, timeout)

    async def insert_or_update(
        self,
        changeset: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        timeout: Any = DEFAULT,
    ) -> _T:
        """Insert when the changeset's struct is ``built``, update when it is ``loaded``."""
        return await _write.insert_or_update(self, changeset, prefix, returning, timeout)  # type: ignore[no-any-return]

    @overload
    async def reload(
        self, structs: list[_T], *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> list[_T | None]: ...
    @overload
    async def reload(self, structs: _T, *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T | None: ...
    async def reload(self, structs: Any, *, prefix: str | None = None, timeout: Any = DEFAULT) -> Any:
        """Read structs again by primary key, from their own source and prefix (or ``prefix=``).

        A list keeps its order, with ``None`` where a row no longer exists.
        """
        check_optional_name(prefix, "prefix")
        many = isinstance(structs, list)
        items: list[Any] = structs if many else [structs]
        if not items:
            return []
        schema = type(items[0])
        if any(type(s) is not schema for s in items):
            raise ArgumentError(
                f"reload expects structs of one schema, got {sorted({type(s).__name__ for s in items})}"
            )
        pk = _read._single_pk(schema, "reload")
        ids = [getattr(s, pk) for s in items]
        if any(i is None for i in ids):
            raise ArgumentError(f"cannot reload a struct whose primary key {pk!r} is None")
        m: Meta = meta(items[0])
        q: Query[Any] = to_query((m.source, schema))
        q = attrs.evolve(
            q,
            source=attrs.evolve(q.source, prefix=prefix if prefix is not None else m.prefix),
            wheres=(Filter("and", In(FieldRef(0, pk), Param(ids))),),
        )
        found = {getattr(s, pk): s for s in await _read.all_(self, q, None, timeout)}
        result = [found.get(i) for i in ids]
        return result if many else result[0]

    async def reload_or_raise(self, struct: _T, *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T:
        """Like :meth:`reload` for one struct, but raises when its row no longer exists."""
        found = await self.reload(struct, prefix=prefix, timeout=timeout)
        if found is None:
            raise NoResultsError(f"could not reload {struct!r}, maybe it doesn't exist or was deleted")
        return found

    # -- transactions -------------------------------------------------------------
    @overload
    def transaction(
        self, fn: None = None, /, *, isolation: str | None = None, read_only: bool = False, retry: int = 0
    ) -> Transaction: ...
    @overload
    def transaction(
        self, fn: Multi, /, *, isolation: str | None = None, read_only: bool = False, retry: int = 0
    ) -> Awaitable[dict[Any, Any]]: ...
    @overload
    def transaction(
        self,
        fn: Callable[..., Awaitable[_T]],
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
    ) -> Awaitable[_T]: ...
    def transaction(
        self,
        fn: Callable[..., Awaitable[Any]] | Multi | None = None,
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
    ) -> Any:
        """A transaction: ``async with repo.transaction():``, ``await repo.transaction(fn)`` or
        ``await repo.transaction(multi)`` (the Multi's changes dict, or ``MultiError``).

        Every repo call in the block, from this task, uses its connection. An exception rolls
        back and propagates; ``repo.rollback(value)`` rolls back and ends the block quietly
        (``await repo.transaction(fn)`` then returns ``value``). A transaction inside another
        is a savepoint: its failure rolls back only its own work.

        :param fn: an async function taking the repo (or nothing); its result is returned
        :param isolation: ``read_committed``, ``repeatable_read`` or ``serializable``
        :param read_only: ``BEGIN … READ ONLY``
        :param retry: re-run ``fn`` (or the Multi) up to this many more times when the transaction
            fails with a serialization failure or a deadlock (``TransactionConflictError``)
        """
        if retry < 0:
            raise ArgumentError(f"retry= is how many more times to run the transaction, got {retry!r}; use 0 or more")
        if retry:
            if fn is None:
                raise ArgumentError(
                    "retry= needs a function (or Multi) to run again: await repo.transaction(fn, retry=3)"
                )
            if self.in_transaction():
                raise ArgumentError(
                    "retry= works on the outermost transaction only: inside another one, the conflict has "
                    "already aborted the outer transaction; put retry= on the outermost repo.transaction(...)"
                )
            return _with_retry(lambda: self.transaction(fn, isolation=isolation, read_only=read_only), retry)
        if isinstance(fn, Multi):
            return run_multi(self, fn, isolation, read_only)
        tx = Transaction(self, isolation, read_only)
        return tx if fn is None else tx.run(fn)

    def rollback(self, value: Any = None) -> NoReturn:
        """Roll back the innermost transaction of this task; ``transaction(fn)`` returns ``value``.

        It raises :class:`~asyncecto.errors.Rollback`, a ``BaseException`` (as ``CancelledError`` is):
        ``except Exception`` between here and the block lets it pass.

        :raises RepoStateError: outside of a transaction, or in a task other than the transaction's
        """
        bound = self.bound()
        if bound is None or bound.depth == 0:
            raise RepoStateError("call rollback", "outside of a transaction", "call it inside repo.transaction()")
        self._check_owner(bound)  # a child task's Rollback would end the child, not the block
        raise Rollback(value, self)

    def in_transaction(self) -> bool:
        """Whether this task is inside a transaction of this repo."""
        bound = self.bound()
        return bound is not None and bound.depth > 0

    def checkout(self) -> Checkout:
        """``async with repo.checkout():`` pins one connection to this task (no transaction)."""
        return Checkout(self)

    async def stream(
        self,
        queryable: Queryable[_T],
        *,
        max_rows: int = 500,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
    ) -> AsyncIterator[_T]:
        """Rows of a query through a server-side cursor, ``max_rows`` at a time, inside a transaction.

        ``timeout`` bounds each batch's fetch (the repo's server-side limit applies otherwise).

        .. code-block:: python

            async with repo.transaction():
                async for post in repo.stream(from_(Post)):
                    ...

        :raises RepoStateError: outside of a transaction, or iterated after it ended
        """
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ArgumentError(f"max_rows must be a positive integer, got {max_rows!r}")
        bound = self.bound()
        if bound is None or bound.depth == 0:
            raise RepoStateError(
                "stream", "outside of a transaction", "iterate the stream inside `async with repo.transaction():`"
            )

        q = to_query(queryable)
        if q.preloads:
            raise QueryError(f"preloads are not supported on streams; preload each batch instead: {q!r}")
        sql, loader, params = _read.prepared_all(self, q, prefix)
        self._check_owner(bound)
        batches = bound.conn.batches(sql, params, max_rows, None if timeout is DEFAULT else timeout)
        try:
            while True:
                if not bound.active:
                    raise RepoStateError(
                        "iterate stream", "past its transaction", "a stream can only be iterated inside its transaction"
                    )
                self._check_owner(bound)  # every batch: a child task must not take over the cursor
                try:
                    rows = await batches.__anext__()
                except StopAsyncIteration:
                    return
                for item in loader(rows) if loader is not None else rows:
                    yield item
        finally:
            await batches.aclose()

    async def query(self, sql: str, params: Sequence[Any] = (), /, *, timeout: Any = DEFAULT) -> QueryResult:
        """Run raw SQL with ``$1``-style parameters (never format values into ``sql``).

        The connection is reset before it is reused, since raw SQL may change session state.

        :raises ArgumentError: ``sql`` is a ``COPY … TO STDOUT``/``FROM STDIN``, whose rows this
            call cannot carry: use :meth:`copy_to` / :meth:`copy_from`
        """
        direction = self.adapter.copy_stdio(sql) if isinstance(sql, str) else None
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
        (columns, rows, status), _ = await self.run("query", sql, list(params), timeout, None)
        num = self.adapter.rows_of_status(status, len(rows))
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
            self, source, params, format=format, header=header, output=output, prefix=prefix, timeout=timeout
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
        return await _copy.copy_from(self, target, rows, prefix=prefix, timeout=timeout)

    def load(self, schema: type[_T], data: Mapping[str, Any] | tuple[Sequence[str], Sequence[Any]]) -> _T:
        """A loaded struct from a row: a mapping (``dict``, a record) or ``(columns, values)``.

        Unknown columns are ignored; values go through each type's ``load``.
        """
        info = schema_info(schema)
        if isinstance(data, tuple):
            columns, values = data
            data = dict(zip(columns, values, strict=True))
        if not hasattr(data, "keys"):
            raise ArgumentError(f"load expects a mapping or (columns, values), got {data!r}")
        m = None if info.embedded or info.source is None else Meta("loaded", info.source, info.prefix)
        return load_struct(schema, data, m)  # type: ignore[no-any-return]

    # -- notifications ------------------------------------------------------------
    def listen(self, channel: str, /, *channels: str, max_queue: int = DEFAULT_MAX_QUEUE) -> Subscription:
        """Notifications sent on ``channel`` (and ``channels``), from one connection the repo keeps for them.

        .. code-block:: python

            async with repo.listen("events") as feed:    # returns once LISTEN is in effect
                await repo.notify("events", "hello")
                async for n in feed:                      # Notification(channel, payload, pid)
                    print(n.payload)

        A plain ``async for n in repo.listen("events"):`` works too. The iteration ends when the repo
        stops. After the connection drops, the repo reconnects and listens again; notifications sent
        meanwhile are lost. When a reader falls ``max_queue`` notifications behind, the oldest unread
        one is dropped (``feed.dropped``, ``listener_stats()["dropped"]``).

        :raises RepoStateError: the repo is not running
        :raises ArgumentError: a channel is not a non-empty str of at most 63 bytes
        :raises DatabaseUnavailableError: (on entry) the listener connection cannot be opened
        """
        self._check("listen")
        names = tuple(dict.fromkeys(check_channel(c, self.adapter) for c in (channel, *channels)))
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ArgumentError(f"max_queue must be a positive integer, got {max_queue!r}")
        listener = listener_of(self)
        if listener is None:  # pragma: no cover - a running repo always has one
            raise RepoStateError("listen", self.state)
        return Subscription(listener, names, max_queue)

    async def notify(self, channel: str, payload: str = "", *, timeout: Any = DEFAULT) -> None:
        """Send ``payload`` on ``channel`` (``SELECT pg_notify($1, $2)``).

        Inside a transaction it is delivered when the transaction commits, and never if it rolls back
        (so never from the test sandbox, whose transaction always rolls back).

        :raises ArgumentError: the channel is not a non-empty str of at most 63 bytes, or the payload
            is not a str of at most 7999 bytes
        """
        check_channel(channel, self.adapter)
        check_payload(payload, self.adapter)
        await self.run("execute", self.adapter.notify_sql(), [channel, payload], timeout, None)

    def listener_stats(self) -> dict[str, Any]:
        """The listener's state: ``connected``, ``pid`` (its server process, or ``None``), ``reconnects``,
        ``channels`` (LISTENed now, sorted), ``subscribers`` and ``dropped`` (notifications over all feeds)."""
        listener = listener_of(self)
        if listener is None:
            return {"connected": False, "pid": None, "reconnects": 0, "channels": [], "subscribers": 0, "dropped": 0}
        return listener.stats()

    # -- storage ------------------------------------------------------------------
    async def storage_up(self) -> str:
        """Create the database (``"created"``, or ``"already_up"``); the repo need not be started."""
        return await self.adapter.storage_up()

    async def storage_down(self) -> str:
        """Drop the database (``"dropped"``, or ``"already_down"``); the repo need not be started."""
        return await self.adapter.storage_down()
