"""``from_`` (the pipe form's start and the keyword form) and ``put_query_prefix``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

from asyncecto._names import check_name, check_optional_name
from asyncecto.errors import QueryError

from .._ast import Source, Subquery
from .._expr import E
from .._query import Query
from .._sources import Step, name_binding, to_query, with_hints
from .limit import limit, offset
from .lock import lock
from .order_by import distinct, group_by, order_by
from .select import select
from .where import having, or_where, where

_T = TypeVar("_T")

__all__ = ("from_", "put_query_prefix")


_KEYWORDS = (
    "as_",
    "prefix",
    "where",
    "or_where",
    "select",
    "order_by",
    "group_by",
    "having",
    "distinct",
    "limit",
    "offset",
    "lock",
    "join",
)


@overload
def from_(
    queryable: type[_T] | tuple[str, type[_T]] | Query[_T],
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[_T]: ...
@overload
def from_(
    queryable: str | Source | Subquery | E,
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[Any]: ...
def from_(
    queryable: type[_T] | tuple[str, type[_T]] | Query[_T] | str | Source | Subquery | E,
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[Any]:
    """Start a query from a schema, a ``(table, Schema)`` pair, an existing query, a table name
    (schemaless: it needs a select), ``values(...)`` or a ``subquery(...)``.

    The keyword form gives the same query as the pipe form::

        from_(Weather, where=lambda w: w.prcp > 0, order_by="city", limit=5)
        from_(Weather) | where(lambda w: w.prcp > 0) | order_by("city") | limit(5)

    Keywords: ``where``, ``or_where``, ``select``, ``order_by``, ``group_by``, ``having``,
    ``distinct``, ``limit``, ``offset``, ``lock``, ``join`` (a ``join(...)`` step or a list of them).
    """
    q = to_query(queryable)
    if prefix is not None:
        q = attrs.evolve(q, source=attrs.evolve(q.source, prefix=check_name(prefix, "prefix")))
    if as_ is not None:
        q = name_binding(q, as_, 0)
    if "hints" in clauses:  # hints=["TABLESAMPLE SYSTEM(50)"]: SQL after the source's alias (Ecto's hints:)
        q = with_hints(q, 0, clauses.pop("hints"))
    for key, value in clauses.items():
        if key not in _KEYWORDS:
            raise QueryError(f"unsupported {key!r} in keyword query expression; known keywords: {', '.join(_KEYWORDS)}")
        if key == "join":
            for step in value if isinstance(value, list | tuple) else [value]:
                q = step(q)
            continue
        q = _STEPS[key](value)(q)
    return q


def put_query_prefix(prefix: str | None) -> Step[Any]:
    """The PostgreSQL schema for every table of the query that has none of its own (Ecto's
    ``put_query_prefix``): below ``from_``/``join`` ``prefix=`` and a schema's ``prefix``, and
    replaced by a call's ``prefix=``. ``None`` removes it.

    >>> from asyncecto import schema
    >>> @schema("notes")
    ... class Note:
    ...     text: str | None = None
    >>> from_(Note) | put_query_prefix("archive")
    Query<from_(Note) | put_query_prefix('archive')>
    """
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise QueryError(f"put_query_prefix expects a schema name or None, got {prefix!r}")
    check_optional_name(prefix, "query prefix")

    def step(q: Query[_T]) -> Query[_T]:
        return attrs.evolve(q, prefix=prefix)

    return step


_STEPS: dict[str, Callable[[Any], Step[Any]]] = {
    "where": where,
    "or_where": or_where,
    "select": select,
    "order_by": order_by,
    "group_by": group_by,
    "having": having,
    "distinct": distinct,
    "limit": limit,
    "offset": offset,
    "lock": lock,
}
