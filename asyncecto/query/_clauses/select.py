"""``select`` and ``select_merge``: what each row becomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from .. import _expr, _take
from .._ast import SelectFields, Shape, SourceRef
from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("select", "select_merge")


def select(value: Any, /) -> Step[Any]:
    """What each row becomes: ``select(lambda p: p)``, ``select(lambda p: (p.id, p.title))``,
    ``select(lambda p: {"id": p.id})``, or field names ``select(["id", "title"])`` for a partial struct
    (Ecto's ``struct(p, fields)``; ``map_(p, fields)`` in a lambda gives a dict). A dict entry lists the
    fields of a preloaded association's rows: ``select(["id", {"comments": ["id", "body"]}])``.

    A query has one select; a second raises (use ``exclude("select")`` first).
    """

    def step(q: Query[_T]) -> Query[_T]:
        if q.select is not None:
            raise QueryError(
                f"only one select expression is allowed in query {q!r}; use exclude('select') before selecting again"
            )
        if isinstance(value, list | tuple) and value and all(isinstance(v, str | Mapping) for v in value):
            shape: Any = _take.select_fields(q, value)
        else:
            shape = _expr.to_select(q, value)
        return attrs.evolve(q, select=shape)

    return step


def select_merge(value: Any, /) -> Step[Any]:
    """Merge a dict of expressions into the select: into the struct (its fields, e.g. virtual ones) or a dict.

    ``select_merge(lambda p: {"comment_count": count(c.id)})``; with no select it merges into the ``from`` struct.
    """

    def step(q: Query[_T]) -> Query[_T]:
        extra = _expr.to_select(q, value)
        if not (isinstance(extra, Shape) and extra.kind == "dict"):
            raise QueryError(f"select_merge expects a dict of expressions, got {value!r}")
        base = q.select if q.select is not None else SourceRef(0)
        target = base.items[0] if isinstance(base, Shape) and base.kind == "merge" else base
        into_map = isinstance(target, SelectFields) and target.as_map  # map_(p, fields): any key merges
        if isinstance(target, SourceRef | SelectFields) and not into_map:
            schema = q.sources[target.binding].schema
            if schema is not None:
                info = schema_info(schema)
                for key in extra.keys:
                    if key not in info.fields:
                        raise QueryError(
                            f"select_merge cannot set {key!r}: {info.name} has no such field; known fields: "
                            f"{', '.join(info.fields)} (declare a virtual field to hold computed values)"
                        )
        elif not (into_map or (isinstance(target, Shape) and target.kind == "dict")):
            raise QueryError(f"select_merge can merge into a struct or a dict select, not {q.select!r}")
        if isinstance(base, Shape) and base.kind == "merge":
            merged = Shape("dict", base.items[1].items + extra.items, base.items[1].keys + extra.keys)
            return attrs.evolve(q, select=Shape("merge", (base.items[0], merged)))
        return attrs.evolve(q, select=Shape("merge", (base, extra)))

    return step
