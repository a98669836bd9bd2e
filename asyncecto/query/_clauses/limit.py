"""``limit`` (optionally ``with_ties``) and ``offset``."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .._ast import Param
from .._placeholder import Placeholder
from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("limit", "offset", "with_ties")


def _count(name: str, n: Any) -> Param:
    if isinstance(n, Placeholder):
        return Param(n)  # a prepared query's parameter: checked as below at each call
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"{name}() expects a non-negative integer, got {n!r}")
    return Param(n)


def limit(n: int, /, *, with_ties: bool = False) -> Step[Any]:
    """Return at most ``n`` rows (the last ``limit`` wins; it drops an earlier ``with_ties``).

    ``with_ties=True`` also returns the rows tied with the last one (``FETCH FIRST n ROWS WITH TIES``;
    needs an ``order_by``).
    """
    p = _count("limit", n)
    return lambda q: attrs.evolve(q, limit=p, with_ties=with_ties)


def with_ties(value: bool = True, /) -> Step[Any]:
    """Turn ``with_ties`` on (or off) for the query's ``limit``."""

    def step(q: Query[_T]) -> Query[_T]:
        if q.limit is None:
            raise QueryError(f"with_ties needs a limit: {q!r}")
        return attrs.evolve(q, with_ties=value)

    return step


def offset(n: int, /) -> Step[Any]:
    """Skip the first ``n`` rows (the last ``offset`` wins)."""
    p = _count("offset", n)
    return lambda q: attrs.evolve(q, offset=p)
