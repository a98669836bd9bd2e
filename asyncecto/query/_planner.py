"""The planner: a Query becomes a parameter-free, hashable plan plus its dumped parameters.

Two queries of the same shape (same clauses, other values) give equal plans, so
the adapter compiles SQL once per plan and the driver reuses its prepared statement.
"""

from __future__ import annotations

from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from ._ast import And, Compare, Expr, FieldRef, IsNil, Param, Query

__all__ = ("Col", "PAnd", "PCompare", "PIsNil", "ParamRef", "Planned", "plan")


@attrs.frozen
class ParamRef:
    """The ``$index`` parameter (1-based)."""

    index: int


@attrs.frozen
class Col:
    """A column of the ``binding``-th source."""

    binding: int
    column: str


@attrs.frozen
class PCompare:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PIsNil:
    arg: PExpr


@attrs.frozen
class PAnd:
    args: tuple[PExpr, ...]


PExpr = Col | ParamRef | PCompare | PIsNil | PAnd


@attrs.frozen
class Planned:
    """A planned query: everything the adapter needs to write SQL, and no parameter values."""

    op: str
    table: str
    prefix: str | None
    schema: type | None
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    wheres: tuple[tuple[str, PExpr], ...] = ()
    order_bys: tuple[tuple[str, PExpr], ...] = ()
    limit: ParamRef | None = None
    offset: ParamRef | None = None


class _Planner:
    def __init__(self, q: Query[Any]) -> None:
        self.q = q
        self.params: list[Any] = []
        self.schema = q.source.schema
        self.info = schema_info(self.schema) if self.schema is not None else None

    def field(self, ref: FieldRef) -> tuple[Col, t.Type[Any] | None]:
        if ref.binding != 0:
            raise QueryError(f"unknown binding {ref.binding} in query {self.q!r}")
        if self.info is None:
            return Col(0, ref.name), None
        f = self.info.fields.get(ref.name)
        if f is None or f.virtual:
            known = ", ".join(n for n, x in self.info.fields.items() if not x.virtual)
            raise QueryError(f"field {ref.name!r} does not exist in schema {self.info.name}; fields are: {known}")
        return Col(0, f.source), f.type

    def param(self, value: Any, typ: t.Type[Any] | None, name: str | None) -> ParamRef:
        if typ is not None:
            schema_name = self.info.name if self.info else None
            value = t.dump_value(
                typ, t.cast_value(typ, value, field=name, schema=schema_name), field=name, schema=schema_name
            )
        self.params.append(value)
        return ParamRef(len(self.params))

    def expr(self, e: Expr) -> PExpr:
        if isinstance(e, FieldRef):
            return self.field(e)[0]
        if isinstance(e, Param):
            return self.param(e.value, None, None)
        if isinstance(e, IsNil):
            return PIsNil(self.expr(e.arg))
        if isinstance(e, And):
            return PAnd(tuple(self.expr(a) for a in e.args))
        if isinstance(e, Compare):
            if isinstance(e.left, FieldRef) and isinstance(e.right, Param):
                col, typ = self.field(e.left)
                if e.op == "in":
                    values = e.right.value
                    if not isinstance(values, list | tuple):
                        raise QueryError(f"in_ expects a list of values for {e.left.name}, got {values!r}")
                    return PCompare("in", col, self.param(values, t.Array(typ) if typ else None, e.left.name))
                return PCompare(e.op, col, self.param(e.right.value, typ, e.left.name))
            return PCompare(e.op, self.expr(e.left), self.expr(e.right))
        raise QueryError(f"cannot plan expression {e!r}")


def plan(q: Query[Any], op: str = "all", *, prefix: str | None = None) -> tuple[Planned, list[Any]]:
    """Plan ``q`` for ``op``; ``prefix`` is the per-call or repo default prefix.

    Prefix precedence: the query's own (``from_(..., prefix=)``), then the schema's, then ``prefix``.
    """
    p = _Planner(q)
    src = q.source
    if p.info is not None:
        persisted = p.info.persisted
        fields = tuple(f.name for f in persisted)
        columns = tuple(f.source for f in persisted)
        eff_prefix = src.prefix or p.info.prefix or prefix
    else:
        raise QueryError(f"queries without a schema need a select clause: {q!r}")
    wheres = tuple((f.op, p.expr(f.expr)) for f in q.wheres)
    orders = tuple((o.direction, p.expr(o.expr)) for o in q.order_bys)
    lim = p.param(q.limit.value, None, None) if q.limit is not None else None
    off = p.param(q.offset.value, None, None) if q.offset is not None else None
    planned = Planned(op, src.table, eff_prefix, src.schema, fields, columns, wheres, orders, lim, off)
    return planned, p.params
