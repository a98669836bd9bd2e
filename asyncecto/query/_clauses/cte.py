"""``with_cte``: common table expressions."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from asyncecto._names import check_name
from asyncecto.errors import QueryError

from .._query import Query
from .._sources import Step, to_query

_T = TypeVar("_T")

__all__ = ("with_cte",)


def with_cte(name: str, /, *, as_: Any, recursive: bool | None = None) -> Step[Any]:
    """A common table expression: ``with_cte("tree", as_=query)``; read it with ``from_(("tree", Schema))``
    or ``join(..., ("tree", Schema), ...)``. ``recursive=True`` makes every CTE of the query recursive.
    """
    check_name(name, "CTE name")

    def step(q: Query[_T]) -> Query[_T]:
        if any(n == name for n, _ in q.ctes):
            raise QueryError(f"CTE {name!r} is defined twice in {q!r}")
        changes: dict[str, Any] = {"ctes": (*q.ctes, (name, to_query(as_)))}
        if recursive is not None:
            changes["recursive_ctes"] = recursive
        return attrs.evolve(q, **changes)

    return step
