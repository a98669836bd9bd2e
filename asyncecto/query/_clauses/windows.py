"""``windows``: named windows for ``over``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto._names import check_name
from asyncecto.errors import QueryError

from .. import _expr, _functions
from .._ast import Over
from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("windows",)


def windows(**definitions: Mapping[str, Any]) -> Step[Any]:
    """Name windows for :func:`over`: ``windows(w={"partition_by": lambda p: p.city, "order_by": ...})``.

    ``"frame"`` is ``rows_between(-2, 0)`` & co. or ``fragment("ROWS 3 PRECEDING")``.
    """

    for name in definitions:
        check_name(name, "window name")

    def step(q: Query[_T]) -> Query[_T]:
        defs = list(q.windows)
        for name, spec in definitions.items():
            if any(n == name for n, _ in defs):
                raise QueryError(f"window {name!r} is defined twice in {q!r}")
            unknown = set(spec) - {"partition_by", "order_by", "frame"}
            if unknown:
                raise QueryError(f"unknown window options {sorted(unknown)}; use partition_by, order_by and frame")
            parts = spec.get("partition_by")
            orders = spec.get("order_by")
            frame = spec.get("frame")
            if callable(parts):
                parts = _expr.apply(q, parts, "windows")
            if callable(orders):
                orders = _expr.apply(q, orders, "windows")
            if callable(frame) and not isinstance(frame, _expr.E):
                frame = _expr.apply(q, frame, "windows")
            over = _functions.over(_functions.count(), partition_by=parts, order_by=orders, frame=frame).node
            assert isinstance(over, Over)
            defs.append((name, over))
        return attrs.evolve(q, windows=tuple(defs))

    return step
