"""Pipe steps that build a :class:`Query`: ``from_``, ``where``, ``order_by``, ``limit``, ``offset``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError
from asyncecto.schema import is_schema, schema_info

from ._ast import And, Compare, Expr, FieldRef, Filter, OrderBy, Param, Query, Source

__all__ = ("from_", "limit", "offset", "or_where", "order_by", "where")

_T = TypeVar("_T")
Step = Callable[[Query[_T]], Query[_T]]


def from_(
    queryable: type[_T] | tuple[str, type[_T]] | Query[_T],
    *,
    prefix: str | None = None,
    where: Mapping[str, Any] | None = None,
    order_by: Any = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Query[_T]:
    """Start a query from a schema, a ``(table, Schema)`` pair, or an existing query.

    The keyword form gives the same query as the pipe form::

        from_(Weather, where={"city": "Kraków"}, limit=5)
        from_(Weather) | where(city="Kraków") | limit(5)
    """
    q = to_query(queryable)
    if prefix is not None:
        q = attrs.evolve(q, source=attrs.evolve(q.source, prefix=prefix))
    if where is not None:
        q = _where("and", where, {})(q)
    if order_by is not None:
        q = globals()["order_by"](order_by)(q)
    if limit is not None:
        q = globals()["limit"](limit)(q)
    if offset is not None:
        q = globals()["offset"](offset)(q)
    return q


def to_query(queryable: Any) -> Query[Any]:
    """A :class:`Query` for any queryable (schema, ``(table, Schema)``, query)."""
    if isinstance(queryable, Query):
        return queryable
    if is_schema(queryable):
        info = schema_info(queryable)
        if info.source is None:
            raise QueryError(f"cannot query embedded schema {info.name}: it has no table")
        return Query(Source(info.source, queryable, None))
    if (
        isinstance(queryable, tuple)
        and len(queryable) == 2
        and isinstance(queryable[0], str)
        and is_schema(queryable[1])
    ):
        if schema_info(queryable[1]).embedded:
            raise QueryError(f"cannot query embedded schema {queryable[1].__name__}: it has no table")
        return Query(Source(queryable[0], queryable[1], None))
    raise QueryError(
        f"cannot build a query from {queryable!r}; expected a schema class, a (table, Schema) pair or a Query"
    )


def _check_field(q: Query[Any], name: str) -> None:
    schema = q.source.schema
    if schema is None:
        return
    info = schema_info(schema)
    if name not in info.fields or info.fields[name].virtual:
        known = ", ".join(n for n, f in info.fields.items() if not f.virtual)
        raise QueryError(f"field {name!r} does not exist in schema {info.name}; fields are: {known}")


def _where(op: str, clauses: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> Step[Any]:
    given = {**(clauses or {}), **kw}
    if not given:
        raise QueryError("where() needs at least one field=value filter")

    def step(q: Query[_T]) -> Query[_T]:
        parts: list[Expr] = []
        for name, value in given.items():
            _check_field(q, name)
            if value is None:
                raise QueryError(
                    f"comparing {name} with None is forbidden as it is unsafe; "
                    f"use is_nil() to check whether a field is NULL"
                )
            parts.append(Compare("==", FieldRef(0, name), Param(value)))
        expr = parts[0] if len(parts) == 1 else And(tuple(parts))
        return attrs.evolve(q, wheres=(*q.wheres, Filter(op, expr)))  # type: ignore[arg-type]

    return step


def where(clauses: Mapping[str, Any] | None = None, /, **fields: Any) -> Step[Any]:
    """Keep rows whose fields all equal the given values (ANDed with earlier filters).

    Values are cast to each field's type and sent as parameters.
    """
    return _where("and", clauses, fields)


def or_where(clauses: Mapping[str, Any] | None = None, /, **fields: Any) -> Step[Any]:
    """Like :func:`where`, but ORed with the filters before it; its own fields are ANDed.

    ``where(city="Kraków") | or_where(city="Oslo", temp_lo=0)`` keeps Kraków, and Oslo at 0.
    """
    return _where("or", clauses, fields)


def order_by(fields: str | Iterable[str] | None = None, /, **directions: str | Iterable[str]) -> Step[Any]:
    """Order by fields: ``order_by("name")``, ``order_by(["a", "b"])``, ``order_by(desc="inserted_at")``.

    Keyword directions (``asc=``, ``desc=``) apply in the order they are written.
    """

    def names(v: Any) -> list[str]:
        if v is None:
            return []
        return [v] if isinstance(v, str) else list(v)

    for direction in directions:
        if direction not in ("asc", "desc"):
            raise QueryError(f"order_by got unknown direction {direction!r}; use asc= or desc=")
    spec = [("asc", n) for n in names(fields)]
    for direction, value in directions.items():
        spec += [(direction, n) for n in names(value)]
    if not spec:
        raise QueryError("order_by() needs at least one field")

    def step(q: Query[_T]) -> Query[_T]:
        for _d, n in spec:
            _check_field(q, n)
        extra = tuple(OrderBy(d, FieldRef(0, n)) for d, n in spec)  # type: ignore[arg-type]
        return attrs.evolve(q, order_bys=q.order_bys + extra)

    return step


def _count(name: str, n: Any) -> Param:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"{name}() expects a non-negative integer, got {n!r}")
    return Param(n)


def limit(n: int, /) -> Step[Any]:
    """Return at most ``n`` rows (the last ``limit`` wins)."""
    p = _count("limit", n)
    return lambda q: attrs.evolve(q, limit=p)


def offset(n: int, /) -> Step[Any]:
    """Skip the first ``n`` rows (the last ``offset`` wins)."""
    p = _count("offset", n)
    return lambda q: attrs.evolve(q, offset=p)
