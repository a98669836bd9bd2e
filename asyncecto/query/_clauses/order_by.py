"""``order_by`` and its directions, and the clauses built from order terms: ``group_by``,
``distinct``, ``first``/``last``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from .. import _expr
from .._ast import FieldRef, OrderBy, Param, Subquery
from .._query import Query
from .._sources import Step, check_field

_T = TypeVar("_T")

__all__ = (
    "asc",
    "asc_nulls_first",
    "asc_nulls_last",
    "desc",
    "desc_nulls_first",
    "desc_nulls_last",
    "DIRECTIONS",
    "distinct",
    "first",
    "group_by",
    "last",
    "order_by",
    "prepend_order_by",
    "reverse_order",
)


DIRECTIONS = ("asc", "desc", "asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last")


class _Directed:
    __slots__ = ("direction", "value")

    def __init__(self, direction: str, value: Any) -> None:
        self.direction = direction
        self.value = value


def _direction(name: str) -> Callable[[Any], _Directed]:
    def make(value: Any) -> _Directed:
        return _Directed(name, value)

    make.__name__ = name
    make.__doc__ = f"Order by ``value`` {name.replace('_', ' ').upper()}: ``order_by(lambda p: {name}(p.x))``."
    return make


asc = _direction("asc")


desc = _direction("desc")


asc_nulls_first = _direction("asc_nulls_first")


asc_nulls_last = _direction("asc_nulls_last")


desc_nulls_first = _direction("desc_nulls_first")


desc_nulls_last = _direction("desc_nulls_last")


def _order_terms(q: Query[Any], value: Any, direction: str, what: str) -> list[OrderBy]:
    if isinstance(value, _expr.Dynamic):
        value = _expr.E(_expr.to_expr(q, value, what))
    elif callable(value) and not isinstance(value, _expr.E | _Directed):
        value = _expr.apply(q, value, what)
    items = value if isinstance(value, list | tuple) else [value]
    terms: list[OrderBy] = []
    for item in items:
        d = direction
        if isinstance(item, _Directed):
            d, item = item.direction, item.value
        if isinstance(item, _expr.Dynamic):
            item = _expr.E(_expr.to_expr(q, item, what))
        if isinstance(item, str):
            check_field(q, item)
            terms.append(OrderBy(d, FieldRef(0, item)))
        elif isinstance(item, _expr.E | Subquery):  # a scalar subquery (Ecto's order_by: subquery(q))
            terms.append(OrderBy(d, _expr.node(item)))
        else:
            raise QueryError(f"{what} expects field names or expressions, got {item!r}")
    return terms


def order_by(fields: Any = None, /, **directions: Any) -> Step[Any]:
    """Order by fields or expressions; repeated calls append.

    ``order_by("name")``, ``order_by(["a", "b"])``, ``order_by(desc="inserted_at")``,
    ``order_by(lambda p: [desc(p.inserted_at), p.id])``. Directions: asc, desc and their
    ``_nulls_first``/``_nulls_last`` forms; keyword directions apply in the order written.
    """
    for d in directions:
        if d not in DIRECTIONS:
            raise QueryError(f"order_by got unknown direction {d!r}; use one of {', '.join(DIRECTIONS)}")
    if (fields is None or (isinstance(fields, list | tuple) and not fields)) and not directions:
        raise QueryError("order_by() needs at least one field")

    def step(q: Query[_T]) -> Query[_T]:
        terms = _order_terms(q, fields, "asc", "order_by") if fields is not None else []
        for d, value in directions.items():
            terms += _order_terms(q, value, d, "order_by")
        return attrs.evolve(q, order_bys=q.order_bys + tuple(terms))

    return step


def prepend_order_by(fields: Any = None, /, **directions: Any) -> Step[Any]:
    """Like :func:`order_by`, but the new terms come before the query's existing ones (Ecto's
    ``prepend_order_by``): ``from_(Post) | order_by("id") | prepend_order_by(desc="visits")``
    orders by ``visits DESC, id``.
    """
    append = order_by(fields, **directions)

    def step(q: Query[_T]) -> Query[_T]:
        added = append(attrs.evolve(q, order_bys=())).order_bys
        return attrs.evolve(q, order_bys=added + q.order_bys)

    return step


def reverse_order() -> Step[Any]:
    """Reverse every ``order_by`` direction (``asc`` to ``desc``, ``nulls_first`` to ``nulls_last``);
    with no ``order_by``, order by the primary key descending (Ecto's ``reverse_order``).

    ``from_(Post) | order_by(["visits", "id"]) | reverse_order()`` orders by ``visits DESC, id DESC``.
    """

    def step(q: Query[_T]) -> Query[_T]:
        if not q.order_bys:
            q = order_by(_pk_order(q, "reverse_order"))(q)
        return attrs.evolve(q, order_bys=tuple(OrderBy(_REVERSE[o.direction], o.expr) for o in q.order_bys))

    return step


def group_by(fields: Any, /) -> Step[Any]:
    """Group rows: ``group_by("city")``, ``group_by(["a", "b"])``, ``group_by(lambda p: p.city)``."""

    def step(q: Query[_T]) -> Query[_T]:
        terms = _order_terms(q, fields, "asc", "group_by")
        return attrs.evolve(q, group_bys=q.group_bys + tuple(t.expr for t in terms))

    return step


def distinct(value: Any = True, /) -> Step[Any]:
    """``distinct(True)`` for ``SELECT DISTINCT``; fields or expressions for ``DISTINCT ON (...)``,
    or a dict of directions (``distinct({"desc": "visits"})``).

    As in Ecto, ``DISTINCT ON`` expressions are also put first in ``ORDER BY``.
    """

    if isinstance(value, Mapping):
        for d in value:
            if d not in DIRECTIONS:
                raise QueryError(f"distinct got unknown direction {d!r}; use one of {', '.join(DIRECTIONS)}")

    def step(q: Query[_T]) -> Query[_T]:
        if isinstance(value, bool):
            return attrs.evolve(q, distinct=value)
        if isinstance(value, Mapping):  # directions, as order_by's keywords: distinct({"desc": "visits"})
            terms = [t for d, v in value.items() for t in _order_terms(q, v, d, "distinct")]
            return attrs.evolve(q, distinct=tuple(terms))
        return attrs.evolve(q, distinct=tuple(_order_terms(q, value, "asc", "distinct")))

    return step


def _pk_order(q: Query[Any], what: str) -> list[str]:
    schema = q.source.schema
    if schema is None or not schema_info(schema).primary_key:
        raise QueryError(f"{what}() needs an order_by or a schema with a primary key: {q!r}")
    return list(schema_info(schema).primary_key)


_REVERSE = {
    "asc": "desc",
    "desc": "asc",
    "asc_nulls_first": "desc_nulls_last",
    "asc_nulls_last": "desc_nulls_first",
    "desc_nulls_first": "asc_nulls_last",
    "desc_nulls_last": "asc_nulls_first",
}


def first(order: Any = None, /) -> Step[Any]:
    """Limit to one row, ordered by ``order``, else the query's order, else the primary key."""

    def step(q: Query[_T]) -> Query[_T]:
        if order is not None:
            q = order_by(order)(q)
        elif not q.order_bys:
            q = order_by(_pk_order(q, "first"))(q)
        return attrs.evolve(q, limit=Param(1), with_ties=False)

    return step


def last(order: Any = None, /) -> Step[Any]:
    """Limit to one row, ordered the reverse way of ``order``, the query's order, or the primary key."""

    def step(q: Query[_T]) -> Query[_T]:
        if order is not None:
            q = order_by(order)(q)  # appended to the existing order, then everything reversed (Ecto)
        elif not q.order_bys:
            q = order_by(_pk_order(q, "last"))(q)
        reversed_ = tuple(OrderBy(_REVERSE[o.direction], o.expr) for o in q.order_bys)
        return attrs.evolve(q, order_bys=reversed_, limit=Param(1), with_ties=False)

    return step
