"""The planner: a Query becomes a parameter-free, hashable plan plus its dumped parameters.

Two queries of the same shape (same clauses, other values) give equal plans, so
the adapter compiles SQL once per plan and the driver reuses its prepared statement.
Parameters are cast to the type of what they are compared with (``p.visits > "3"``
sends 3) and dumped; a bad value raises ``CastError`` before any I/O.
"""

from __future__ import annotations

from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from ._ast import (
    And,
    Arith,
    Compare,
    Expr,
    FieldRef,
    Fragment,
    Func,
    In,
    IsNil,
    Like,
    Neg,
    Not,
    Or,
    Param,
    Query,
    SelectFields,
    Shape,
    SourceRef,
    TypeCast,
)

__all__ = (
    "Col",
    "PAnd",
    "PArith",
    "PCast",
    "PCompare",
    "PFragment",
    "PFunc",
    "PIn",
    "PIsNil",
    "PLike",
    "PNeg",
    "PNot",
    "POr",
    "PSource",
    "ParamRef",
    "Planned",
    "ReadShape",
    "ReadStruct",
    "ReadValue",
    "plan",
)


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


@attrs.frozen
class POr:
    args: tuple[PExpr, ...]


@attrs.frozen
class PNot:
    arg: PExpr


@attrs.frozen
class PArith:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PNeg:
    arg: PExpr


@attrs.frozen
class PIn:
    left: PExpr
    right: PExpr


@attrs.frozen
class PLike:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PFragment:
    parts: tuple[str, ...]
    args: tuple[PExpr, ...]


@attrs.frozen
class PFunc:
    name: str
    args: tuple[PExpr, ...]
    distinct: bool = False
    star: bool = False


@attrs.frozen
class PCast:
    """A parameter with an explicit SQL type (``$1::bigint``)."""

    arg: PExpr
    db_type: str


PExpr = Col | ParamRef | PCompare | PIsNil | PAnd | POr | PNot | PArith | PNeg | PIn | PLike | PFragment | PFunc | PCast


@attrs.frozen
class ReadStruct:
    """Columns ``start:start+len(fields)`` make a struct; ``nullable`` (outer joins): all NULL → ``None``."""

    schema: type
    fields: tuple[str, ...]
    table: str
    prefix: str | None
    nullable: bool


@attrs.frozen
class ReadValue:
    """One column, loaded by ``type`` when known."""

    type: Any


@attrs.frozen
class ReadShape:
    kind: str
    items: tuple[Any, ...]
    keys: tuple[str, ...] = ()


@attrs.frozen
class PSource:
    table: str
    prefix: str | None


@attrs.frozen
class Planned:
    """A planned query: everything the adapter needs to write SQL, and no parameter values.

    ``columns`` are the selected expressions in order; ``reader`` says how a row of them
    becomes the result (a struct, a value, or tuples/lists/dicts of those).
    """

    op: str
    sources: tuple[PSource, ...]
    columns: tuple[PExpr, ...]
    reader: Any
    joins: tuple[tuple[str, PExpr | None], ...] = ()
    wheres: tuple[tuple[str, PExpr], ...] = ()
    group_bys: tuple[PExpr, ...] = ()
    havings: tuple[tuple[str, PExpr], ...] = ()
    order_bys: tuple[tuple[str, PExpr], ...] = ()
    distinct: tuple[tuple[str, PExpr], ...] | bool = False
    limit: ParamRef | None = None
    offset: ParamRef | None = None
    lock: str | None = None
    updates: tuple[tuple[str, str, PExpr], ...] = ()

    # kept for the adapter's single-source fast paths and for loaders
    @property
    def table(self) -> str:
        return self.sources[0].table

    @property
    def prefix(self) -> str | None:
        return self.sources[0].prefix


def _numeric(typ: t.Type[Any] | None) -> bool:
    return isinstance(typ, t.Integer | t.Id | t.Float | t.Decimal)


class _Planner:
    def __init__(self, q: Query[Any], prefix: str | None) -> None:
        self.q = q
        self.params: list[Any] = []
        self.sources = q.sources
        self.infos = [schema_info(s.schema) if s.schema is not None else None for s in self.sources]
        self.prefixes = [
            s.prefix or (info.prefix if info is not None else None) or prefix
            for s, info in zip(self.sources, self.infos, strict=True)
        ]

    # -- fields and parameters -------------------------------------------------------------
    def field(self, ref: FieldRef) -> tuple[Col, t.Type[Any] | None, str]:
        if not 0 <= ref.binding < len(self.sources):
            raise QueryError(f"unknown binding {ref.binding} in query {self.q!r}")
        info = self.infos[ref.binding]
        if info is None:
            return Col(ref.binding, ref.name), None, ref.name
        f = info.fields.get(ref.name)
        if f is None or f.virtual:
            known = ", ".join(n for n, x in info.fields.items() if not x.virtual)
            raise QueryError(f"field {ref.name!r} does not exist in schema {info.name}; fields are: {known}")
        return Col(ref.binding, f.source), f.type, f"{info.name}.{ref.name}"

    def param(self, value: Any, typ: t.Type[Any] | None, name: str | None) -> ParamRef:
        if typ is not None:
            schema, _, fname = name.rpartition(".") if name else (None, None, None)
            value = t.dump_value(
                typ, t.cast_value(typ, value, field=fname, schema=schema or None), field=fname, schema=schema or None
            )
        self.params.append(value)
        return ParamRef(len(self.params))

    def type_of(self, e: Expr) -> tuple[t.Type[Any] | None, str | None]:
        """The type an expression has (for casting what it is compared with), and a name for errors."""
        if isinstance(e, FieldRef):
            _col, typ, name = self.field(e)
            return typ, name
        if isinstance(e, TypeCast):
            return t.resolve(e.type), None
        if isinstance(e, Func):
            if e.name == "count":
                return t.Integer(), None
            if e.name in ("min", "max", "sum", "coalesce") and e.args:
                return self.type_of(e.args[0])
            return None, None
        if isinstance(e, Arith):
            left = self.type_of(e.left)
            return left if left[0] is not None else self.type_of(e.right)
        if isinstance(e, Neg):
            return self.type_of(e.arg)
        return None, None

    # -- expressions ----------------------------------------------------------------------
    def expr(self, e: Expr, expected: tuple[t.Type[Any] | None, str | None] = (None, None)) -> PExpr:
        if isinstance(e, Param):
            return self.param(e.value, *expected)
        if isinstance(e, FieldRef):
            return self.field(e)[0]
        if isinstance(e, TypeCast):
            typ = t.resolve(e.type)
            inner = self.expr(e.arg, (typ, None))
            db_type = getattr(typ, "db_type", None)
            return PCast(inner, db_type) if isinstance(inner, ParamRef) and db_type else inner
        if isinstance(e, Compare):
            if e.op == "in":
                return self._in(In(e.left, e.right))
            return self._binary(e.op, e.left, e.right, PCompare)
        if isinstance(e, Arith):
            return self._binary(e.op, e.left, e.right, PArith)
        if isinstance(e, Like):
            return PLike(e.op, self.expr(e.left), self.expr(e.right, (t.String(), None)))
        if isinstance(e, In):
            return self._in(e)
        if isinstance(e, IsNil):
            return PIsNil(self.expr(e.arg))
        if isinstance(e, And):
            return PAnd(tuple(self.expr(a) for a in e.args))
        if isinstance(e, Or):
            return POr(tuple(self.expr(a) for a in e.args))
        if isinstance(e, Not):
            return PNot(self.expr(e.arg))
        if isinstance(e, Neg):
            return PNeg(self.expr(e.arg, expected))
        if isinstance(e, Fragment):
            return PFragment(e.parts, tuple(self.expr(a) for a in e.args))
        if isinstance(e, Func):
            return PFunc(e.name, tuple(self.expr(a) for a in e.args), e.distinct, e.star)
        if isinstance(e, SourceRef | SelectFields):
            raise QueryError(f"a whole source can only be selected, not used in an expression: {self.q!r}")
        raise QueryError(f"cannot plan expression {e!r}")

    def _binary(self, op: str, left: Expr, right: Expr, cls: type[PCompare] | type[PArith]) -> PExpr:
        # a parameter takes the type of the other side
        lt = self.type_of(left) if isinstance(right, Param) else (None, None)
        rt = self.type_of(right) if isinstance(left, Param) else (None, None)
        if cls is PArith and op in ("*", "/") and not _numeric(lt[0]):
            lt = (None, None)
        return cls(op, self.expr(left, rt), self.expr(right, lt))

    def _in(self, e: In) -> PExpr:
        if isinstance(e.right, Param):
            values = e.right.value
            typ, name = self.type_of(e.left)
            if not isinstance(values, list | tuple):
                raise QueryError(f"in_ expects a list of values for {name or 'the expression'}, got {values!r}")
            right = self.param(list(values), t.Array(typ) if typ is not None else None, name)
            return PIn(self.expr(e.left), right)
        arr, name = self.type_of(e.right)
        elem = arr.of if isinstance(arr, t.Array) else None
        return PIn(self.expr(e.left, (elem, name)), self.expr(e.right))

    # -- select ---------------------------------------------------------------------------
    def select(self, shape: Any, columns: list[PExpr]) -> Any:
        if shape is None:
            shape = SourceRef(0)
        if isinstance(shape, SourceRef | SelectFields):
            binding = shape.binding
            info = self.infos[binding]
            if info is None:
                raise QueryError(f"queries without a schema need a select clause: {self.q!r}")
            names = shape.fields if isinstance(shape, SelectFields) else tuple(f.name for f in info.persisted)
            for n in names:
                columns.append(Col(binding, info.fields[n].source))
            nullable = binding > 0 and self.q.joins[binding - 1].kind in ("left", "full")
            if binding > 0 and self.q.joins[binding - 1].kind == "right":
                nullable = False
            if binding == 0 and any(j.kind in ("right", "full") for j in self.q.joins):
                nullable = True
            src = self.sources[binding]
            return ReadStruct(src.schema, tuple(names), src.table, self.prefixes[binding], nullable)  # type: ignore[arg-type]
        if isinstance(shape, Shape):
            items = tuple(self.select(i, columns) for i in shape.items)
            return ReadShape(shape.kind, items, shape.keys)
        typ, _name = self.type_of(shape)
        columns.append(self.expr(shape))
        return ReadValue(typ)


def plan(q: Query[Any], op: str = "all", *, prefix: str | None = None) -> tuple[Planned, list[Any]]:
    """Plan ``q`` for ``op`` (``all``, ``update_all``, ``delete_all``); ``prefix`` is the call's or repo's.

    Prefix precedence: the source's own (``from_(..., prefix=)``), then its schema's, then ``prefix``.
    Parameters are numbered in the order clauses appear in the SQL.
    """
    p = _Planner(q, prefix)
    columns: list[PExpr] = []
    updates: tuple[tuple[str, str, PExpr], ...] = ()
    if op == "update_all":  # planned first: SET comes before WHERE in the SQL text
        updates = tuple(_plan_update(p, o, name, value) for o, name, value in q.updates)
        if not updates:
            raise QueryError(f"update_all needs at least one field to update: {q!r}")
    reader = p.select(q.select, columns) if q.select is not None or op == "all" else None
    distinct: tuple[tuple[str, PExpr], ...] | bool = (
        q.distinct if isinstance(q.distinct, bool) else tuple((d.direction, p.expr(d.expr)) for d in q.distinct)
    )
    joins = tuple((j.kind, p.expr(j.on) if j.on is not None else None) for j in q.joins)
    wheres = tuple((f.op, p.expr(f.expr)) for f in q.wheres)
    group_bys = tuple(p.expr(g) for g in q.group_bys)
    havings = tuple((f.op, p.expr(f.expr)) for f in q.havings)
    orders = tuple((o.direction, p.expr(o.expr)) for o in q.order_bys)
    lim = p.param(q.limit.value, None, None) if q.limit is not None else None
    off = p.param(q.offset.value, None, None) if q.offset is not None else None
    sources = tuple(PSource(s.table, pre) for s, pre in zip(q.sources, p.prefixes, strict=True))
    planned = Planned(
        op,
        sources,
        tuple(columns),
        reader,
        joins,
        wheres,
        group_bys,
        havings,
        orders,
        distinct,
        lim,
        off,
        q.lock,
        updates,
    )
    return planned, p.params


def _plan_update(p: _Planner, op: str, name: str, value: Expr) -> tuple[str, str, PExpr]:
    col, typ, full = p.field(FieldRef(0, name))
    if op in ("push", "pull"):
        typ = typ.of if isinstance(typ, t.Array) else None
    return op, col.column, p.expr(value, (typ, full))
