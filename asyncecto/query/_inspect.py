"""Render a query back as the DSL that builds it (never as SQL)."""

from __future__ import annotations

import itertools
from typing import Any

from asyncecto.schema import schema_info

from ._ast import And, Compare, Expr, FieldRef, IsNil, Param, Query

__all__ = ("render",)


def _expr(e: Expr) -> str:
    if isinstance(e, FieldRef):
        return f"b{e.binding}.{e.name}"
    if isinstance(e, Param):
        return repr(e.value)
    if isinstance(e, IsNil):
        return f"is_nil({_expr(e.arg)})"
    if isinstance(e, And):
        return " & ".join(f"({_expr(a)})" for a in e.args)
    return f"{_expr(e.left)} {e.op} {_expr(e.right)}"


def _keyword(e: Expr) -> str | None:
    if isinstance(e, Compare) and e.op == "==" and isinstance(e.left, FieldRef) and isinstance(e.right, Param):
        return f"{e.left.name}={e.right.value!r}"
    return None


def _filter(e: Expr) -> str:
    parts = [_keyword(a) for a in e.args] if isinstance(e, And) else [_keyword(e)]
    if all(p is not None for p in parts):
        return ", ".join(p for p in parts if p is not None)
    return f"lambda: {_expr(e)}"


def render(q: Query[Any]) -> str:
    src = q.source
    head = src.schema.__name__ if src.schema is not None else repr(src.table)
    if src.schema is not None and src.table != schema_info(src.schema).source:
        head = f"({src.table!r}, {head})"
    parts = [f"from_({head}{f', prefix={src.prefix!r}' if src.prefix else ''})"]
    for f in q.wheres:
        parts.append(f"{'where' if f.op == 'and' else 'or_where'}({_filter(f.expr)})")
    for direction, run in itertools.groupby(q.order_bys, key=lambda o: o.direction):
        names = [_expr(o.expr).split(".", 1)[-1] for o in run]
        arg = names[0] if len(names) == 1 else names
        parts.append(f"order_by({arg!r})" if direction == "asc" else f"order_by(desc={arg!r})")
    if q.limit is not None:
        parts.append(f"limit({q.limit.value!r})")
    if q.offset is not None:
        parts.append(f"offset({q.offset.value!r})")
    return " | ".join(parts)
