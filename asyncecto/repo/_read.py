"""The read path: plan (cached) → SQL (cached per plan) → rows → structs (loader cached per shape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asyncecto import types as t
from asyncecto.errors import ArgumentError, MultipleResultsError, QueryError
from asyncecto.query._ast import Compare, FieldRef, Filter, Param, Query
from asyncecto.query._build import to_query, where
from asyncecto.query._planner import Planned, plan
from asyncecto.schema import Meta, is_schema, schema_info

from ._core import RepoCore
from ._loader import Loader, build_loader

__all__ = ("all_", "get", "get_by", "one", "to_sql")

_INT_TYPES = (t.Integer, t.Id)


def _prefix(core: RepoCore, prefix: str | None) -> str | None:
    return prefix if prefix is not None else core.config.prefix


def _compiled(core: RepoCore, planned: Planned) -> tuple[str, Loader]:
    def build() -> tuple[str, Loader]:
        assert planned.schema is not None
        meta = Meta("loaded", planned.table, planned.prefix)
        return core.adapter.compile(planned), build_loader(planned.schema, planned.fields, meta)

    return core.cached(planned, build)


def to_sql(core: RepoCore, queryable: Any, prefix: str | None = None) -> tuple[str, list[Any]]:
    planned, params = plan(to_query(queryable), "all", prefix=_prefix(core, prefix))
    return _compiled(core, planned)[0], params


async def all_(core: RepoCore, queryable: Any, prefix: str | None, timeout: Any) -> list[Any]:
    planned, params = plan(to_query(queryable), "all", prefix=_prefix(core, prefix))
    sql, loader = _compiled(core, planned)
    _, structs = await core.run("fetch", sql, params, timeout, planned.table, loader)
    assert structs is not None
    return structs


async def one(core: RepoCore, queryable: Any, prefix: str | None, timeout: Any) -> Any:
    q = to_query(queryable)
    rows = await all_(core, q, prefix, timeout)
    if len(rows) > 1:
        raise MultipleResultsError(q, len(rows))
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
    return await one(core, q | where({pk: id}), prefix, timeout)


async def _get_fast(core: RepoCore, schema: type, id: Any, prefix: str | None, timeout: Any) -> Any:
    """``get(Schema, id)``: the plan, SQL, loader and key type are cached per schema and prefix."""
    eff = _prefix(core, prefix)

    def build() -> tuple[str, Loader, t.Type[Any], str, str]:
        pk = _single_pk(schema, "get")
        q = to_query(schema)
        q = Query(q.source, (Filter("and", Compare("==", FieldRef(0, pk), Param(id))),))
        planned, _ = plan(q, "all", prefix=eff)
        sql, loader = _compiled(core, planned)
        info = schema_info(schema)
        return sql, loader, info.fields[pk].type, pk, planned.table

    key = ("get", schema, eff)
    entry = core.cache_get(key)
    sql, loader, pk_type, pk, table = entry if entry is not None else core.cached(key, build)
    if type(id) is int and type(pk_type) in _INT_TYPES:
        value = id  # cast and dump of an int by an integer type is the identity
    else:
        name = schema.__name__
        value = t.dump_value(pk_type, t.cast_value(pk_type, id, field=pk, schema=name), field=pk, schema=name)
    _, structs = await core.run("fetch", sql, [value], timeout, table, loader)
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
    given = dict(clauses)
    if not given:
        raise ArgumentError("get_by needs at least one field=value clause")
    return await one(core, to_query(queryable) | where(given), prefix, timeout)
