"""``union``, ``except_``, ``intersect`` (and their ``_all`` forms): combining queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .._query import Query
from .._sources import Step, to_query

_T = TypeVar("_T")

__all__ = ("except_", "except_all", "intersect", "intersect_all", "union", "union_all")


def _combine(kind: str) -> Callable[[Any], Step[Any]]:
    def combinator(other: Any, /) -> Step[Any]:
        def step(q: Query[_T]) -> Query[_T]:
            return attrs.evolve(q, combinations=(*q.combinations, (kind, to_query(other))))

        return step

    combinator.__name__ = kind
    combinator.__doc__ = (
        f"``{kind.upper().replace('_', ' ')}`` with another query (same select shape); the outer order_by, "
        "limit and offset apply to the combined rows (an order_by field of the first source is written as "
        "its output column name)."
    )
    return combinator


union = _combine("union")


union_all = _combine("union_all")


except_ = _combine("except")


except_all = _combine("except_all")


intersect = _combine("intersect")


intersect_all = _combine("intersect_all")
