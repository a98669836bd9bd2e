"""The Repo's reads: ``all``, ``get``, ``preload``, ``aggregate`` …, and ``update_all``/``delete_all``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar, cast, overload

from asyncecto.changeset import Changeset
from asyncecto.changeset._unsafe_unique import UniqueCheck
from asyncecto.errors import (
    ArgumentError,
    NoResultsError,
    Rollback,
)
from asyncecto.query import Query
from asyncecto.query._placeholder import BoundQuery
from asyncecto.query._sources import to_query
from asyncecto.schema import Meta, schema_info

from . import _read
from ._core import DEFAULT, RepoCore
from ._loader import load_struct
from ._options import SHARED_OPTIONS, CallHooks, Resolved
from ._preload import preload
from ._routing import routed

__all__ = ("LogOption", "Queryable", "Reads")

_T = TypeVar("_T")
Queryable = type[_T] | Query[_T] | tuple[str, type[_T]] | BoundQuery[_T]  # BoundQuery: prepare(...)(*args)
#: ``log=``: ``False`` silences the call's query log, a level name (``"info"``) overrides the repo's
LogOption = bool | str | None


class Reads(CallHooks):
    """Reading structs: queries, preloads, bulk updates and deletes.

    Every method here that runs a query takes the shared options ``prefix``, ``timeout``,
    ``log`` (``False`` or a level name) and ``telemetry_options`` (a mapping, found in each
    telemetry event's ``options``), plus the names the repo declares in ``query_options``.
    """

    _executor: RepoCore

    def _plain(self, options: Mapping[str, Any], log: LogOption, telemetry_options: Any) -> bool:
        """No option needs resolving: the call takes the direct path."""
        return not options and log is None and telemetry_options is None and not self._hooked()

    def _prep(
        self,
        operation: str,
        method: str,
        queryable: Any,
        prefix: str | None,
        timeout: Any,
        log: LogOption,
        telemetry_options: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> Resolved:
        if type(queryable) is BoundQuery and type(self).prepare_query is CallHooks.prepare_query:
            # no hook to show the query to: the prepared call goes on as it is, to its prepared plan
            query: Any = queryable
        else:
            query = to_query(queryable)
        return self._resolve(operation, method, query, prefix, timeout, log, telemetry_options, options)

    @routed
    async def all(
        self,
        queryable: Queryable[_T],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        on_preloader_spawn: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> list[_T]:
        """Every row the query matches, as structs (``on_preloader_spawn``: see :meth:`preload`).

        .. code-block:: python

            posts = await repo.all(from_(Post) | where(published=True), log=False)
        """
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.all_(core, queryable, prefix, timeout, on_preloader_spawn)
        r = self._prep("all", "all", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call), core.preload_prepare(self._preload_prepare(r.options)):
            return await _read.all_(core, r.query, r.prefix, r.timeout, on_preloader_spawn)

    @routed
    async def all_by(
        self,
        queryable: Queryable[_T],
        clauses: Mapping[str, Any] | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> list[_T]:
        """Every struct matching every ``field=value`` clause (Ecto's ``Repo.all_by``).

        Clauses come as keywords or a mapping, as for :meth:`get_by`; ``None`` values are
        refused (use ``is_nil`` in a query). Keywords named in ``query_options`` are options.

        .. code-block:: python

            drafts = await repo.all_by(Post, author_id=7, draft=True)
            drafts = await repo.all_by(Post, {"author_id": 7, "draft": True})
        """
        given, options = self._split_fields(clauses, fields)
        if not given:
            raise ArgumentError("all_by needs at least one field=value clause; use repo.all(queryable) for every row")
        q = _read.by_clauses(queryable, given)
        return await self.all(
            q, prefix=prefix, timeout=timeout, log=log, telemetry_options=telemetry_options, **options
        )

    def _split_fields(
        self, clauses: Mapping[str, Any] | None, fields: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(clauses, options)``: keywords named in ``query_options`` are options, the rest clauses."""
        declared = type(self).query_options
        options = {k: v for k, v in fields.items() if k in declared}
        given = {**(clauses or {}), **{k: v for k, v in fields.items() if k not in declared}}
        return given, options

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
        log: LogOption = ...,
        telemetry_options: Mapping[str, Any] | None = ...,
        **options: Any,
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
        log: LogOption = ...,
        telemetry_options: Mapping[str, Any] | None = ...,
        **options: Any,
    ) -> _T: ...
    @routed
    async def preload(
        self,
        structs: Any,
        *preloads: Any,
        force: bool = False,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        in_parallel: bool = True,
        on_preloader_spawn: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
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

        ``default_options("preload")`` applies; each association's query goes through
        ``prepare_query("all", query, {..., "ecto_query": "preload"})``, with the names in
        ``query_options`` passed here (``repo.preload(post, "comments", with_hidden=True)``).
        """
        core = self._executor
        self._check_options("preload", options)
        shared = {k: v for k, v in options.items() if k in SHARED_OPTIONS}
        r = self._resolve("preload", "preload", None, prefix, timeout, log, telemetry_options, shared)
        given = {**options, **r.options}
        with core.call_options(r.call), core.preload_prepare(self._preload_prepare(given)):
            return await preload(
                core,
                structs,
                preloads,
                force=force,
                prefix=r.prefix,
                timeout=r.timeout,
                in_parallel=in_parallel,
                on_preloader_spawn=on_preloader_spawn,
            )

    @routed
    async def one(
        self,
        queryable: Queryable[_T],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T | None:
        """The single row the query matches, or ``None``.

        :raises MultipleResultsError: more than one row matched (no implicit LIMIT is added)
        """
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.one(core, queryable, prefix, timeout)  # type: ignore[no-any-return]
        r = self._prep("all", "one", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.one(core, r.query, r.prefix, r.timeout)  # type: ignore[no-any-return]

    async def one_or_raise(
        self,
        queryable: Queryable[_T],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T:
        """Like :meth:`one`, but raises :class:`NoResultsError` when nothing matched."""
        found = await self.one(
            queryable, prefix=prefix, timeout=timeout, log=log, telemetry_options=telemetry_options, **options
        )
        if found is None:
            raise NoResultsError(to_query(queryable))
        return found

    @routed
    async def get(
        self,
        queryable: Queryable[_T],
        id: Any,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T | None:
        """The struct whose primary key is ``id`` (cast to the key's type, so ``"42"`` works), or ``None``.

        :raises ArgumentError: ``id`` is ``None``, or the schema has no single primary key
        """
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.get(core, queryable, id, prefix, timeout)  # type: ignore[no-any-return]
        if id is None:  # before the hooks, as Ecto
            return await _read.get(core, queryable, id, prefix, timeout)  # type: ignore[no-any-return]
        r = self._prep("all", "get", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.get(core, r.query, id, r.prefix, r.timeout)  # type: ignore[no-any-return]

    async def get_or_raise(
        self,
        queryable: Queryable[_T],
        id: Any,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T:
        """Like :meth:`get`, but raises :class:`NoResultsError` when no row has that key."""
        found = await self.get(
            queryable, id, prefix=prefix, timeout=timeout, log=log, telemetry_options=telemetry_options, **options
        )
        if found is None:
            q = to_query(queryable)
            raise NoResultsError(f"{q!r} with primary key {id!r}")
        return found

    @routed
    async def get_by(
        self,
        queryable: Queryable[_T],
        clauses: Mapping[str, Any] | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> _T | None:
        """The struct matching every ``field=value`` clause, or ``None``.

        Clauses come as keywords (``get_by(User, email=e)``) or a mapping
        (``get_by(User, {"email": e})``), the latter for fields named like an option
        (keywords named in the repo's ``query_options`` are options).

        :raises MultipleResultsError: more than one row matched
        """
        given, options = self._split_fields(clauses, fields)
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.get_by(core, queryable, given, prefix, timeout)  # type: ignore[no-any-return]
        q = _read.by_clauses(queryable, given, "get_by")
        r = self._prep("all", "get_by", q, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.one(core, r.query, r.prefix, r.timeout)  # type: ignore[no-any-return]

    async def get_by_or_raise(
        self,
        queryable: Queryable[_T],
        clauses: Mapping[str, Any] | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> _T:
        """Like :meth:`get_by`, but raises :class:`NoResultsError` when nothing matched."""
        found = await self.get_by(
            queryable, clauses, prefix=prefix, timeout=timeout, log=log, telemetry_options=telemetry_options, **fields
        )
        if found is None:
            given, _ = self._split_fields(clauses, fields)
            raise NoResultsError(f"{to_query(queryable)!r} with {given!r}")
        return found

    def to_sql(self, *args: Any, prefix: str | None = None, **options: Any) -> tuple[str, list[Any]]:
        """The SQL text and parameters a query would send (no database needed; ``prepare_query`` runs).

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
        if not options and not self._hooked():
            return _read.to_sql(self._executor, queryable, op, prefix)
        if op not in ("all", "update_all", "delete_all"):
            raise ArgumentError(f"to_sql operation must be 'all', 'update_all' or 'delete_all', got {op!r}")
        r = self._prep(op, "to_sql", queryable, prefix, DEFAULT, None, None, options)
        return _read.to_sql(self._executor, r.query, op, r.prefix)

    async def explain(
        self,
        queryable: Queryable[Any],
        op: str = "all",
        /,
        *,
        analyze: bool = False,
        verbose: bool = False,
        costs: bool = True,
        settings: bool | None = None,
        buffers: bool = False,
        timing: bool | None = None,
        summary: bool | None = None,
        format: str = "text",
        plan: str = "custom",
        wrap_in_transaction: bool = True,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """PostgreSQL's plan for a query: text (one string) or ``format="json"`` (parsed).

        As Ecto's ``Ecto.Adapters.SQL.explain``: the flags ``analyze verbose costs settings
        buffers timing summary`` (``None`` leaves PostgreSQL's default), ``plan="custom"`` or
        ``"fallback_generic"`` (the generic plan, with NULL parameters; cannot ``analyze``), and
        ``wrap_in_transaction`` (default ``True``: the explain runs in a transaction that is
        rolled back). ``analyze=True`` is refused for ``update_all``/``delete_all``.

        .. code-block:: python

            plan = await repo.explain(q, analyze=True, timing=False, summary=True)
        """
        flags = {
            "analyze": analyze,
            "verbose": verbose,
            "costs": costs,
            "settings": settings,
            "buffers": buffers,
            "timing": timing,
            "summary": summary,
            "wrap_in_transaction": wrap_in_transaction,
        }
        for name, flag in flags.items():
            if not isinstance(flag, bool) and not (flag is None and name in ("settings", "timing", "summary")):
                raise ArgumentError(f"explain option {name} must be True or False, got {flag!r}")
        if format not in ("text", "json", "yaml", "xml"):
            raise ArgumentError(f"explain format must be text, json, yaml or xml, got {format!r}")
        if plan not in ("custom", "fallback_generic"):
            raise ArgumentError(f"explain plan must be 'custom' or 'fallback_generic', got {plan!r}")
        if plan == "fallback_generic" and analyze:
            raise ArgumentError("explain(analyze=True) cannot be used with plan='fallback_generic'; drop one of them")
        if analyze and op != "all":
            raise ArgumentError(f"explain(analyze=True) would run {op} and change rows; explain it without analyze")
        if op not in ("all", "update_all", "delete_all"):
            raise ArgumentError(f"explain operation must be 'all', 'update_all' or 'delete_all', got {op!r}")
        core = self._executor
        r = self._prep(op, "explain", queryable, prefix, timeout, log, telemetry_options, options)
        sql, params = _read.to_sql(core, r.query, op, r.prefix)
        sent: dict[str, object] = {k: v for k, v in flags.items() if v is not None and k != "wrap_in_transaction"}
        sent["format"] = format

        async def run() -> list[Any]:
            with core.call_options(r.call):
                if plan == "custom":
                    (_c, rows, _s), _ = await core.run(
                        "query", core.adapter.explain_sql(sql, sent), params, r.timeout, None
                    )
                    return list(rows)
                got: list[Any] = []
                for statement in core.adapter.explain_generic_sql(sql, len(params), sent):
                    (_c, rows, _s), _ = await core.run("query", statement, [], r.timeout, None)
                    got = list(rows) if statement.startswith("EXPLAIN") else got
                return got

        if wrap_in_transaction or plan == "fallback_generic":
            repo = cast(Any, self)

            async def rolled_back() -> NoReturn:
                raise Rollback(await run(), repo)

            rows = await repo.transaction(rolled_back)
        else:
            rows = await run()
        if format == "json":
            return rows[0][0]
        return "\n".join(r[0] for r in rows)

    @routed
    async def exists(
        self,
        queryable: Queryable[Any],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> bool:
        """Whether the query matches any row (``SELECT TRUE … LIMIT 1``; select and order are dropped)."""
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.exists(core, queryable, prefix, timeout)
        r = self._prep("all", "exists", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.exists(core, r.query, r.prefix, r.timeout)

    async def _unsafe_unique(self, check: UniqueCheck) -> Changeset[Any]:
        """Run a changeset's ``unsafe_validate_unique`` check (built by ``asyncecto.changeset``)."""
        opts = dict(check.repo_opts)
        if check.prefix is not None:
            opts["prefix"] = check.prefix
        taken = check.query is not None and await self.exists(check.query, **opts)
        return check.answer(taken)

    @routed
    async def aggregate(
        self,
        queryable: Queryable[Any],
        func: str,
        field: str | None = None,
        /,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """``count`` (of rows, or of a field's non-NULL values), ``sum``, ``avg``, ``min`` or ``max``.

        A query with ``limit``, ``offset`` or ``distinct`` is wrapped in a subquery first;
        ``group_by`` is refused. ``count`` of no rows is 0; the others are ``None``.
        """
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.aggregate(core, queryable, func, field, prefix, timeout)
        r = self._prep("all", "aggregate", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.aggregate(core, r.query, func, field, r.prefix, r.timeout)

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
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> tuple[int, list[Any] | None]:
        """Update every matching row; ``(count, returned)`` where returned comes from the query's select.

        Changes merge with any ``update(...)`` step in the query. Values may be functions of
        the bindings (``set={"visits": lambda p: p.visits * 2}``). Timestamps are not touched
        unless ``timestamps=True``, which sets the schema's ``updated_at`` to now.
        ``prepare_query("update_all", ...)`` sees the query with the changes merged in.
        """
        ops = {k: v for k, v in (("set", set), ("inc", inc), ("push", push), ("pull", pull)) if v}
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.update_all(core, queryable, ops, prefix, timeout, timestamps)
        q = _read.with_updates(to_query(queryable), ops, timestamps)
        r = self._prep("update_all", "update_all", q, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.update_all(core, r.query, {}, r.prefix, r.timeout)

    async def delete_all(
        self,
        queryable: Queryable[Any],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> tuple[int, list[Any] | None]:
        """Delete every matching row; ``(count, returned)`` where returned comes from the query's select.

        Query-style keywords are refused (``delete_all(Post, where=...)`` would otherwise read as a
        scoped delete): build the query instead, ``delete_all(from_(Post) | where(...))``.
        """
        core = self._executor
        if self._plain(options, log, telemetry_options):
            return await _read.delete_all(core, queryable, prefix, timeout)
        r = self._prep("delete_all", "delete_all", queryable, prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _read.delete_all(core, r.query, r.prefix, r.timeout)

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
        m = (
            None
            if info.embedded or info.source is None
            else Meta("loaded", info.source, info.prefix, context=info.context)
        )
        return load_struct(schema, data, m)  # type: ignore[no-any-return]
