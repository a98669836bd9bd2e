"""``update``: the changes ``repo.update_all`` makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .. import _expr
from .._ast import Expr
from .._query import Query
from .._sources import Step, check_field

_T = TypeVar("_T")

__all__ = ("update",)


_UPDATE_OPS = ("set", "inc", "push", "pull")


def update(**ops: Mapping[str, Any]) -> Step[Any]:
    """The changes for ``repo.update_all``: ``update(set={"title": "x"}, inc={"visits": 1})``.

    Values may be plain values (sent as parameters) or functions of the bindings
    (``set={"visits": lambda p: p.visits * 2}``). Also ``push``/``pull`` for array fields.
    """
    for op in ops:
        if op not in _UPDATE_OPS:
            raise QueryError(f"unknown update operation {op!r}; use one of {', '.join(_UPDATE_OPS)}")

    def step(q: Query[_T]) -> Query[_T]:
        items: list[tuple[str, str, Expr]] = list(q.updates)
        for op, values in ops.items():
            for name, value in values.items():
                check_field(q, name)
                if any(n == name for _o, n, _v in items):
                    raise QueryError(f"field {name!r} is updated twice in {q!r}")
                if callable(value) and not isinstance(value, _expr.E):
                    node = _expr.to_expr(q, value, "update")
                else:
                    node = _expr.node(value)
                items.append((op, name, node))
        return attrs.evolve(q, updates=tuple(items))

    return step
