"""The Repo's reads: ``all``, ``get``, ``preload``, ``aggregate`` …, and ``update_all``/``delete_all``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, overload

from asyncecto.changeset import Changeset
from asyncecto.changeset._unsafe_unique import UniqueCheck
from asyncecto.errors import (
    ArgumentError,
    NoResultsError,
)
from asyncecto.query import Query
from asyncecto.query._sources import to_query
from asyncecto.schema import Meta, schema_info

from . import _read
from ._core import DEFAULT, RepoCore
from ._loader import load_struct
from ._preload import preload

__all__ = ("Queryable", "Reads")

_T = TypeVar("_T")
Queryable = type[_T] | Query[_T] | tuple[str, type[_T]]


class Reads:
    """Reading structs: queries, preloads, bulk updates and deletes."""

    _executor: RepoCore

    async def all(
        self,
        queryable: Queryable[_T],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        on_preloader_spawn: Any = DEFAULT,
    ) -> list[_T]:
        """Every row the query matches, as structs (``on_preloader_spawn``: see :meth:`preload`)."""
        return await _read.all_(self._executor, queryable, prefix, timeout, on_preloader_spawn)

    @overload
    async def preload(
        self,
        structs: list[_T],
        *preloads: Any,
        force: bool = ...,
        prefix: str | None = ...,
        timeout: Any = ...,
        in_parallel: bool = ...,
        on_preloader_spawn: Any = ...,
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
        on_preloader_spawn: Any = ...,
    ) -> _T: ...
    async def preload(
        self,
        structs: Any,
        *preloads: Any,
        force: bool = False,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        in_parallel: bool = True,
        on_preloader_spawn: Any = DEFAULT,
    ) -> Any:
        """``structs`` (a struct, a list or ``None``) with associations loaded; copies, never in place.

        ``await repo.preload(post, "comments")``, ``repo.preload(posts, "comments", "author")``,
        nested ``{"comments": "author"}``, custom queries ``{"comments": query}``. Loaded
        associations are skipped unless ``force=True``. Sibling associations load in parallel
        outside a transaction (``in_parallel=False`` turns that off) and in turn inside one.

        A preload function ``{"comments": fn}`` is given the parents' keys (``fn(ids)``, or
        ``fn(ids, association)``), sync or async, and returns the children: structs matched
        to their parents by the related key, or ``(owner key, struct)`` tuples (required for
        many_to_many). ``on_preloader_spawn`` (default: the repo's option) is called with no
        arguments (sync or async) at the start of each parallel child task, e.g. to set tracing
        context; it is not called when the associations load in turn.
        """
        return await preload(
            self._executor,
            structs,
            preloads,
            force=force,
            prefix=prefix,
            timeout=timeout,
            in_parallel=in_parallel,
            on_preloader_spawn=on_preloader_spawn,
        )

    async def one(self, queryable: Queryable[_T], *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T | None:
        """The single row the query matches, or ``None``.

        :raises MultipleResultsError: more than one row matched (no implicit LIMIT is added)
        """
        return await _read.one(self._executor, queryable, prefix, timeout)  # type: ignore[no-any-return]

    async def one_or_raise(self, queryable: Queryable[_T], *, prefix: str | None = None, timeout: Any = DEFAULT) -> _T:
        """Like :meth:`one`, but raises :class:`NoResultsError` when nothing matched."""
        found = await _read.one(self._executor, queryable, prefix, timeout)
        if found is None:
            raise NoResultsError(to_query(queryable))
        return found  # type: ignore[no-any-return]

    async def get(
        self, queryable: Queryable[_T], id: Any, *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> _T | None:
        """The struct whose primary key is ``id`` (cast to the key's type, so ``"42"`` works), or ``None``.

        :raises ArgumentError: ``id`` is ``None``, or the schema has no single primary key
        """
        return await _read.get(self._executor, queryable, id, prefix, timeout)  # type: ignore[no-any-return]

    async def get_or_raise(
        self, queryable: Queryable[_T], id: Any, *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> _T:
        """Like :meth:`get`, but raises :class:`NoResultsError` when no row has that key."""
        found = await _read.get(self._executor, queryable, id, prefix, timeout)
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
        return await _read.get_by(self._executor, queryable, {**(clauses or {}), **fields}, prefix, timeout)  # type: ignore[no-any-return]

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
        found = await _read.get_by(self._executor, queryable, given, prefix, timeout)
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
        return _read.to_sql(self._executor, queryable, op, prefix)

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
        sql, params = _read.to_sql(self._executor, queryable, op, prefix)
        explain = self._executor.adapter.explain_sql(sql, analyze, verbose, costs, buffers, format)
        (_columns, rows, _status), _ = await self._executor.run("query", explain, params, timeout, None)
        if format == "json":
            return rows[0][0]
        return "\n".join(r[0] for r in rows)

    async def exists(self, queryable: Queryable[Any], *, prefix: str | None = None, timeout: Any = DEFAULT) -> bool:
        """Whether the query matches any row (``SELECT TRUE … LIMIT 1``; select and order are dropped)."""
        return await _read.exists(self._executor, queryable, prefix, timeout)

    async def _unsafe_unique(self, check: UniqueCheck) -> Changeset[Any]:
        """Run a changeset's ``unsafe_validate_unique`` check (built by ``asyncecto.changeset``)."""
        taken = check.query is not None and await self.exists(check.query, prefix=check.prefix)
        return check.answer(taken)

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
        return await _read.aggregate(self._executor, queryable, func, field, prefix, timeout)

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
        return await _read.update_all(self._executor, queryable, ops, prefix, timeout, timestamps)

    async def delete_all(
        self, queryable: Queryable[Any], *, prefix: str | None = None, timeout: Any = DEFAULT
    ) -> tuple[int, list[Any] | None]:
        """Delete every matching row; ``(count, returned)`` where returned comes from the query's select."""
        return await _read.delete_all(self._executor, queryable, prefix, timeout)

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
