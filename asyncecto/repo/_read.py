"""The read path: plan → SQL (cached per plan) → rows → results (loader cached per shape).

Also the bulk operations that are planned like queries: ``exists``, ``aggregate``,
``update_all`` and ``delete_all``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError, CastError, MultipleResultsError, QueryError
from asyncecto.query._ast import Compare, FieldRef, Filter, Fragment, Param
from asyncecto.query._clauses.exclude import used_clauses
from asyncecto.query._clauses.update import update
from asyncecto.query._clauses.where import where
from asyncecto.query._placeholder import BoundQuery
from asyncecto.query._plan import Col, Params, Planned, ReadValue
from asyncecto.query._planner import plan
from asyncecto.query._query import Query
from asyncecto.query._sources import check_field as _check_field
from asyncecto.query._sources import to_query
from asyncecto.schema import is_schema, schema_info
from asyncecto.schema._define import utc_now

from ._core import DEFAULT, RepoCore
from ._loader import Loader
from ._plan_sql import compiled, fetch_all, query_prefix
from ._preload import run_with_preloads

__all__ = (
    "aggregate",
    "all_",
    "by_clauses",
    "delete_all",
    "exists",
    "get",
    "get_by",
    "one",
    "to_sql",
    "update_all",
    "with_updates",
)

_INT_TYPES = (t.Integer, t.Id)
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_INT8_MIN, _INT8_MAX = -(2**63), 2**63 - 1
_AGGREGATES = ("count", "sum", "avg", "min", "max")


def to_sql(core: RepoCore, queryable: Any, op: str, prefix: str | None = None) -> tuple[str, list[Any]]:
    if op not in ("all", "update_all", "delete_all"):
        raise ArgumentError(f"to_sql operation must be 'all', 'update_all' or 'delete_all', got {op!r}")
    q = to_query(queryable)
    if op != "all":
        _check_bulk(q, op)
    planned, params = plan(q, op, prefix=query_prefix(core, prefix, q))
    return compiled(core, planned)[0], params


async def all_(
    core: RepoCore, queryable: Any, prefix: str | None, timeout: Any, on_preloader_spawn: Any = DEFAULT
) -> list[Any]:
    if type(queryable) is BoundQuery and not queryable.prepared.query.preloads:
        return await _prepared_all(core, queryable, prefix, timeout)
    q = to_query(queryable)
    if q.preloads:
        return await run_with_preloads(core, q, prefix, timeout, on_preloader_spawn)
    return await fetch_all(core, q, prefix, timeout)


async def _prepared_all(core: RepoCore, bound: BoundQuery[Any], prefix: str | None, timeout: Any) -> list[Any]:
    """A prepared query's rows: its plan (made once per prefix) with the call's values bound."""
    bound_plan = _bind_prepared(core, bound, prefix, "all", _same)
    if bound_plan is None:  # values that make other SQL: as unprepared
        return await fetch_all(core, bound.query(), prefix, timeout)
    planned, params = bound_plan
    sql, loader = compiled(core, planned)
    _, results = await core.run("fetch", sql, params, timeout, planned.table, loader)
    assert results is not None
    return results


def _bind_prepared(
    core: RepoCore,
    bound: BoundQuery[Any],
    prefix: str | None,
    op: str,
    shape: Callable[[Query[Any]], Query[Any]],
    key: Hashable = None,
) -> tuple[Planned, Params] | None:
    """The prepared plan of ``bound`` for ``op`` and its parameters, or ``None``: the call then runs as
    unprepared, which also raises what it would (a bad prefix after a bad value, as the build comes first)."""
    call = core.call_var.get()
    if call is not None and not call.query_cache:  # query_cache=False: no cached plan of any kind
        return None
    prepared = bound.prepared
    try:
        entry = prepared.plan(op, query_prefix(core, prefix, prepared.query), shape, key)
    except Exception:  # raised again, in its place, by the unprepared path
        return None
    params = entry.bind(bound.args)
    return None if params is None else (entry.planned, params)


def _same(q: Query[Any]) -> Query[Any]:
    return q


async def one(core: RepoCore, queryable: Any, prefix: str | None, timeout: Any) -> Any:
    q = queryable if type(queryable) is BoundQuery else to_query(queryable)
    rows = await all_(core, q, prefix, timeout)
    if len(rows) > 1:
        raise MultipleResultsError(to_query(q), len(rows))
    return rows[0] if rows else None


def _single_pk(schema: type, action: str) -> str:
    info = schema_info(schema)
    if len(info.primary_key) != 1:
        raise ArgumentError(
            f"{action} requires the schema {info.name} to have exactly one primary key, "
            f"got: {list(info.primary_key)}; use get_by with every key field instead"
        )
    return info.primary_key[0]


async def get(core: RepoCore, queryable: Any, id: Any, prefix: str | None, timeout: Any) -> Any:
    if id is None:
        raise ArgumentError("cannot perform get because the given value is None; pass the primary key to look up")
    if is_schema(queryable):
        return await _get_fast(core, queryable, id, prefix, timeout)
    q = to_query(queryable)
    if q.source.schema is None:
        raise QueryError(f"get expects a query from a schema: {q!r}")
    pk = _single_pk(q.source.schema, "get")
    info = schema_info(q.source.schema)
    pk_type = info.fields[pk].type
    try:
        t.dump_value(pk_type, t.cast_value(pk_type, id, field=pk, schema=info.name), field=pk, schema=info.name)
    except CastError as exc:
        if isinstance(exc.__cause__, t.Unstorable):
            return None  # as get(Schema, id): an id no row can have is not found
        raise
    return await one(core, q | where({pk: id}), prefix, timeout)


async def _get_fast(core: RepoCore, schema: type, id: Any, prefix: str | None, timeout: Any) -> Any:
    """``get(Schema, id)``: the plan, SQL, loader and key type are cached per schema and prefix."""
    eff = query_prefix(core, prefix)
    key = ("get", schema, eff)
    entry = core.cache_get(key)
    if entry is not None:
        pk, pk_type = entry[3], entry[2]
    else:
        pk = _single_pk(schema, "get")
        pk_type = schema_info(schema).fields[pk].type
    if type(id) is int and type(pk_type) in _INT_TYPES:
        if not _INT4_MIN <= id <= _INT4_MAX:  # rare: the key column may be `integer`; let the query type it
            if not _INT8_MIN <= id <= _INT8_MAX:
                return None  # no integer column holds it: no such row
            return await one(core, to_query(schema) | where({pk: id}), prefix, timeout)
        value = given = id  # cast and dump of an int by an integer type is the identity
    else:
        name = schema.__name__
        try:
            given = t.cast_value(pk_type, id, field=pk, schema=name)
            value = t.dump_value(pk_type, given, field=pk, schema=name)
        except CastError as exc:
            if isinstance(exc.__cause__, t.Unstorable):
                return None  # a key PostgreSQL cannot store (out of range, a NUL in a string) names no row
            raise

    def build() -> tuple[str, Loader, t.Type[Any], str, str]:
        q = to_query(schema)
        q = Query(q.source, (Filter("and", Compare("==", FieldRef(0, pk), Param(id))),))  # id checked above
        planned, _ = plan(q, "all", prefix=eff)
        sql, loader = compiled(core, planned)
        assert loader is not None
        return sql, loader, pk_type, pk, planned.table

    sql, loader, _, _, table = entry if entry is not None else core.cached(key, build)
    sent = [value] if given is value else Params([value], [given])  # an int key is its own cast value
    _, structs = await core.run("fetch", sql, sent, timeout, table, loader)
    assert structs is not None
    if len(structs) > 1:
        raise MultipleResultsError(f"get({schema.__name__}, {id!r})", len(structs))
    return structs[0] if structs else None


async def get_by(
    core: RepoCore,
    queryable: Any,
    clauses: Mapping[str, Any] | Sequence[tuple[str, Any]],
    prefix: str | None,
    timeout: Any,
) -> Any:
    return await one(core, by_clauses(queryable, clauses, "get_by"), prefix, timeout)


def by_clauses(
    queryable: Any, clauses: Mapping[str, Any] | Sequence[tuple[str, Any]], method: str = "all_by"
) -> Query[Any]:
    """``queryable`` filtered on every ``field == value`` of ``clauses`` (``get_by``, ``all_by``)."""
    given = dict(clauses)
    if not given:
        raise ArgumentError(f"{method} needs at least one field=value clause")
    return to_query(queryable) | where(given)


def with_updates(q: Query[Any], ops: Mapping[str, Mapping[str, Any]], timestamps: bool) -> Query[Any]:
    """``q`` with ``update_all``'s changes (and ``updated_at`` with ``timestamps``) merged in."""
    if ops:
        q = update(**ops)(q)
    if timestamps:
        q = _with_updated_at(q)
    return q


async def exists(core: RepoCore, queryable: Any, prefix: str | None, timeout: Any) -> bool:
    if type(queryable) is BoundQuery:
        bound_plan = _bind_prepared(core, queryable, prefix, "exists", _exists_query)
        if bound_plan is not None:
            ready, bound_params = bound_plan
            ready_sql = core.cached(ready, lambda: core.adapter.compile(ready))
            found, _ = await core.run("fetchrow", ready_sql, bound_params, timeout, ready.table)
            return found is not None
    q = _exists_query(to_query(queryable))
    planned, params = plan(q, "exists", prefix=query_prefix(core, prefix, q))
    sql = core.cached(planned, lambda: core.adapter.compile(planned))
    row, _ = await core.run("fetchrow", sql, params, timeout, planned.table)
    return row is not None


def _exists_query(q: Query[Any]) -> Query[Any]:
    """``q`` as ``exists`` runs it: ``SELECT TRUE``, no order or limit."""
    true = Fragment(("TRUE",), ())
    return attrs.evolve(
        q,
        select=None,
        order_bys=(),
        distinct=False,
        limit=None,
        with_ties=False,
        # every combined query selects TRUE too, as Ecto's exists? rewrites them
        combinations=tuple((k, attrs.evolve(o, select=true, order_bys=())) for k, o in q.combinations),
    )


async def aggregate(
    core: RepoCore, queryable: Any, func: str, field_name: str | None, prefix: str | None, timeout: Any
) -> Any:
    """``func`` over the query's rows; wrapped in a subquery when it has limit, offset or distinct (as Ecto)."""
    if func not in _AGGREGATES:
        raise ArgumentError(f"unknown aggregate {func!r}; use one of {', '.join(_AGGREGATES)}")
    if field_name is None and func != "count":
        raise ArgumentError(f"aggregate {func!r} needs a field, e.g. aggregate(q, {func!r}, 'visits')")
    found = _prepared_aggregate(core, queryable, field_name, prefix) if type(queryable) is BoundQuery else None
    params: list[Any]
    if found is not None:
        planned, params, wrap, column, typ = found
    else:
        q = to_query(queryable)
        shaped, op, wrap = _aggregate_query(q, field_name)
        planned, params = plan(shaped, op, prefix=query_prefix(core, prefix, shaped))
        column, typ = _aggregate_column(q, planned, wrap, field_name)
    sql = core.cached(
        ("aggregate", func, column, wrap, planned),
        lambda: core.adapter.compile_aggregate(planned, func, column, wrap),
    )
    row, _ = await core.run("fetchrow", sql, params, timeout, planned.table)
    value = row[0] if row is not None else None
    if func == "count":
        return value or 0
    if value is not None and func in ("min", "max") and typ is not None and not getattr(typ, "load_is_identity", False):
        return typ.load(value)
    return value


def _aggregate_query(q: Query[Any], field_name: str | None) -> tuple[Query[Any], str, bool]:
    """``(query, operation, wrap)`` as ``aggregate`` plans ``q``: in place (the field, or ``*``, the only
    column), or, with limit, offset, distinct or a combination, the query as it is, wrapped in a subquery."""
    if q.group_bys:
        raise QueryError(f"cannot aggregate on query with group_by: {q!r}")
    wrap = q.limit is not None or q.offset is not None or q.distinct is not False or bool(q.combinations)
    if wrap:
        return q, "all", True
    if field_name is not None:
        _check_field(q, field_name)
        return attrs.evolve(q, select=FieldRef(0, field_name), order_bys=()), "aggregate", False
    return attrs.evolve(q, select=None, order_bys=()), "aggregate", False


def _aggregate_column(
    q: Query[Any], planned: Planned, wrap: bool, field_name: str | None
) -> tuple[int | None, t.Type[Any] | None]:
    """The aggregated column (``None``: ``*``) and its type, for loading ``min``/``max``."""
    if field_name is None:
        return None, None
    if wrap:
        return _subquery_column(q, planned, field_name)
    assert isinstance(planned.reader, ReadValue)
    return 0, planned.reader.type


def _prepared_aggregate(
    core: RepoCore, bound: BoundQuery[Any], field_name: str | None, prefix: str | None
) -> tuple[Planned, Params, bool, int | None, t.Type[Any] | None] | None:
    """A prepared call's aggregate plan and parameters, or ``None`` (then as unprepared)."""
    template = bound.prepared.query
    try:
        _shaped, op, wrap = _aggregate_query(template, field_name)
    except Exception:  # raised again, in its place, by the unprepared path
        return None
    bound_plan = _bind_prepared(
        core, bound, prefix, op, lambda q: _aggregate_query(q, field_name)[0], ("aggregate", field_name)
    )
    if bound_plan is None:
        return None
    planned, params = bound_plan
    try:
        column, typ = _aggregate_column(template, planned, wrap, field_name)
    except Exception:  # as above
        return None
    return planned, params, wrap, column, typ


def _subquery_column(q: Query[Any], planned: Planned, field_name: str) -> tuple[int, t.Type[Any] | None]:
    """Which of the wrapped query's columns holds ``field_name`` of the ``from`` source, and its type."""
    _check_field(q, field_name)
    schema = q.source.schema
    source_name = schema_info(schema).fields[field_name].source if schema is not None else field_name
    typ = schema_info(schema).fields[field_name].type if schema is not None else None
    for i, col in enumerate(planned.columns):
        if isinstance(col, Col) and col.binding == 0 and col.column == source_name:
            return i, typ
    raise QueryError(
        f"cannot aggregate {field_name!r}: the query's select does not include it, and a query with "
        f"limit, offset or distinct is aggregated over what it selects: {q!r}"
    )


def _check_bulk(q: Query[Any], op: str) -> None:
    bad = used_clauses(
        q, ["order_by", "group_by", "having", "limit", "offset", "distinct", "lock", "combinations", "windows"]
    )
    if op == "delete_all" and q.updates:
        bad.append("update")
    if bad:
        raise QueryError(
            f"`{op}` allows only `where` and `join` expressions (and select for RETURNING), got {', '.join(bad)}; "
            f"remove them with exclude({', '.join(map(repr, bad))}): {q!r}"
        )


async def _bulk(core: RepoCore, q: Query[Any], op: str, prefix: str | None, timeout: Any) -> tuple[int, Any]:
    _check_bulk(q, op)
    planned, params = plan(q, op, prefix=query_prefix(core, prefix, q))
    sql, loader = compiled(core, planned)
    if q.select is None:
        count, _ = await core.run("execute", sql, params, timeout, planned.table)
        return count, None
    _, results = await core.run("fetch", sql, params, timeout, planned.table, loader)
    return len(results or []), results


async def update_all(
    core: RepoCore,
    queryable: Any,
    ops: Mapping[str, Mapping[str, Any]],
    prefix: str | None,
    timeout: Any,
    timestamps: bool = False,
) -> tuple[int, Any]:
    q = with_updates(to_query(queryable), ops, timestamps)
    return await _bulk(core, q, "update_all", prefix, timeout)


async def delete_all(core: RepoCore, queryable: Any, prefix: str | None, timeout: Any) -> tuple[int, Any]:
    return await _bulk(core, to_query(queryable), "delete_all", prefix, timeout)


def _with_updated_at(q: Query[Any]) -> Query[Any]:
    """``q`` also setting its schema's ``updated_at`` to now (``update_all(..., timestamps=True)``)."""
    schema = q.source.schema
    info = schema_info(schema) if schema is not None else None
    if info is None or info.updated_at is None:
        name = info.name if info is not None else f"table {q.source.table!r}"
        raise ArgumentError(
            f"update_all(timestamps=True) needs a schema with an updated_at timestamp, and {name} has none; "
            "fix: declare timestamps() on the schema, or set the column yourself"
        )
    if any(name == info.updated_at for _op, name, _v in q.updates):
        return q
    assert info.timestamp_type is not None
    return update(set={info.updated_at: info.timestamp_type.cast(utc_now())})(q)
