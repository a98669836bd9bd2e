"""``from_`` (the pipe form's start and the keyword form) and ``put_query_prefix``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

from asyncecto._names import check_name, check_optional_name
from asyncecto.errors import QueryError

from .._ast import Source, Subquery
from .._expr import E
from .._query import Query
from .._sources import Step, name_binding, to_query, with_hints
from . import combination
from .cte import recursive_ctes, with_cte
from .exclude import exclude
from .join import KIND_NAMES, join
from .limit import limit, offset, with_ties
from .lock import lock
from .order_by import distinct, group_by, order_by, prepend_order_by
from .preload import preload
from .select import select, select_merge
from .update import update
from .where import having, or_having, or_where, where
from .windows import windows

_T = TypeVar("_T")

__all__ = ("from_", "has_named_binding", "put_query_prefix", "with_named_binding")


#: ``join``-family keywords and the join kind each adds (``join`` is an inner join, as in Ecto)
_JOIN_KEYWORDS = {"join": "inner", **KIND_NAMES}


@overload
def from_(
    queryable: type[_T] | tuple[str | E, type[_T]] | Query[_T],
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
    queryable: type[_T] | tuple[str | E, type[_T]] | Query[_T] | str | Source | Subquery | E,
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[Any]:
    """Start a query from a schema, a ``(table, Schema)`` pair, an existing query, a table name
    (schemaless: it needs a select), ``values(...)``, a ``subquery(...)``, a ``fragment(...)``
    (``columns=`` names its columns) or a ``(fragment(...), Schema)`` pair (its rows read as the
    schema's fields, Ecto's ``{fragment(...), Schema}``).

    The keyword form (Ecto's keyword query syntax) gives the same query as the pipe form; the
    keywords apply in the order written, each as its pipe step with the value as argument::

        from_(Weather, where=lambda w: w.prcp > 0, order_by="city", limit=5)
        from_(Weather) | where(lambda w: w.prcp > 0) | order_by("city") | limit(5)

    Keywords: every step taking one value (``where``, ``or_where``, ``having``, ``or_having``,
    ``select``, ``select_merge``, ``distinct``, ``group_by``, ``limit``, ``with_ties``, ``offset``,
    ``lock``, ``preload``, ``recursive_ctes``, ``exclude``, ``union`` and the other combinations:
    a query or a list of them); ``order_by``/``prepend_order_by`` (a dict is directions:
    ``order_by={"desc": "visits"}``); ``update`` and ``windows`` (a dict of their keywords);
    ``with_cte`` (a dict of name to query, or to a dict of ``with_cte`` options);
    ``join`` (a ``join(...)`` step, or as the join keywords) and ``inner_join``, ``left_join``,
    ``right_join``, ``full_join``, ``cross_join`` and the ``_lateral_join`` forms, each a target,
    a ``(target, on)`` pair, a ``(target, {"on": ..., "as_": ..., "prefix": ...})`` pair, or a list::

        from_(Post, left_join=(Comment, {"on": lambda p, c: c.post_id == p.id, "as_": "c"}),
              where=lambda p, c: c.id != None, preload=["comments"])
    """
    q = to_query(queryable)
    if prefix is not None:
        q = attrs.evolve(q, source=attrs.evolve(q.source, prefix=check_name(prefix, "prefix")))
    if as_ is not None:
        q = name_binding(q, as_, 0)
    if "hints" in clauses:  # hints=["TABLESAMPLE SYSTEM(50)"]: SQL after the source's alias (Ecto's hints:)
        q = with_hints(q, 0, clauses.pop("hints"))
    for key, value in clauses.items():
        if key in _JOIN_KEYWORDS:
            q = _keyword_joins(q, key, value)
        elif key in _STEPS:
            q = _STEPS[key](value)(q)
        else:
            raise QueryError(f"unsupported {key!r} in keyword query expression; known keywords: {', '.join(KEYWORDS)}")
    return q


def _keyword_joins(q: Query[_T], key: str, value: Any) -> Query[_T]:
    kind = _JOIN_KEYWORDS[key]
    items = value if isinstance(value, list) else [value]
    for item in items:
        if key == "join" and callable(item) and not isinstance(item, type):
            q = item(q)  # a join(...) step
            continue
        target, opts = item, {}
        if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], str):
            target, spec = item
            opts = dict(spec) if isinstance(spec, Mapping) else {"on": spec}
        unknown = set(opts) - {"on", "as_", "prefix", "hints"}
        if unknown:
            raise QueryError(f"{key}= got unknown join options {sorted(unknown)}; use on, as_, prefix and hints")
        q = join(kind, target, **opts)(q)
    return q


def has_named_binding(queryable: Any, name: str, /) -> bool:
    """Whether the query has a binding named ``name`` (an ``as_`` of its ``from_`` or a join):
    Ecto's ``has_named_binding?``.

    >>> from asyncecto import schema
    >>> @schema("notes")
    ... class Note:
    ...     text: str | None = None
    >>> has_named_binding(from_(Note, as_="n"), "n"), has_named_binding(Note, "n")
    (True, False)
    """
    return name in to_query(queryable).aliases


def with_named_binding(name: str, fn: Callable[..., Query[Any]], /) -> Step[Any]:
    """Call ``fn(query)`` (or ``fn(query, name)``) only if the query has no binding ``name``; ``fn``
    must add it (Ecto's ``with_named_binding``)::

        q | with_named_binding("c", lambda q: q | join("left", Comment, on=..., as_="c"))
    """
    check_name(name, "binding name")
    if not callable(fn):
        raise QueryError(f"with_named_binding expects a function of the query, got {fn!r}")

    def step(q: Query[_T]) -> Query[_T]:
        if name in q.aliases:
            return q
        try:
            arity = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            arity = 1
        result = fn(q, name) if arity == 2 else fn(q)
        if not isinstance(result, Query) or name not in result.aliases:
            raise QueryError(
                f"with_named_binding expected the function to return a query with a binding named {name!r}; "
                f"it returned {result!r}"
            )
        return result

    return step


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


def _mapping_step(name: str, fn: Callable[..., Step[Any]]) -> Callable[[Any], Step[Any]]:
    def make(value: Any) -> Step[Any]:
        if not isinstance(value, Mapping):
            raise QueryError(f"{name}= expects a dict of {name}() keywords, got {value!r}")
        return fn(**value)

    return make


def _order_step(fn: Callable[..., Step[Any]]) -> Callable[[Any], Step[Any]]:
    return lambda value: fn(**value) if isinstance(value, Mapping) else fn(value)


def _ctes(value: Any) -> Step[Any]:
    if not isinstance(value, Mapping):
        raise QueryError(f"with_cte= expects a dict of CTE name to query (or to with_cte options), got {value!r}")
    steps = [
        with_cte(name, **spec) if isinstance(spec, Mapping) else with_cte(name, as_=spec)
        for name, spec in value.items()
    ]

    def step(q: Query[_T]) -> Query[_T]:
        for s in steps:
            q = s(q)
        return q

    return step


def _combination(fn: Callable[[Any], Step[Any]]) -> Callable[[Any], Step[Any]]:
    def make(value: Any) -> Step[Any]:
        steps = [fn(v) for v in (value if isinstance(value, list) else [value])]

        def step(q: Query[_T]) -> Query[_T]:
            for s in steps:
                q = s(q)
            return q

        return step

    return make


def _exclude(value: Any) -> Step[Any]:
    return exclude(*value) if isinstance(value, list | tuple) else exclude(value)


_STEPS: dict[str, Callable[[Any], Step[Any]]] = {
    "where": where,
    "or_where": or_where,
    "select": select,
    "select_merge": select_merge,
    "distinct": distinct,
    "order_by": _order_step(order_by),
    "prepend_order_by": _order_step(prepend_order_by),
    "group_by": group_by,
    "having": having,
    "or_having": or_having,
    "limit": limit,
    "with_ties": with_ties,
    "offset": offset,
    "lock": lock,
    "preload": preload,
    "update": _mapping_step("update", update),
    "windows": _mapping_step("windows", windows),
    "with_cte": _ctes,
    "recursive_ctes": recursive_ctes,
    "exclude": _exclude,
    "union": _combination(combination.union),
    "union_all": _combination(combination.union_all),
    "except_": _combination(combination.except_),
    "except_all": _combination(combination.except_all),
    "intersect": _combination(combination.intersect),
    "intersect_all": _combination(combination.intersect_all),
}

#: every keyword ``from_`` takes, in the order of Ecto's keyword list
KEYWORDS = ("as_", "prefix", *_JOIN_KEYWORDS, *_STEPS)
