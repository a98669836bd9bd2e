"""The planner: a Query becomes a parameter-free, hashable plan plus its dumped parameters.

Two queries of the same shape (same clauses, other values) give equal plans, so
the adapter compiles SQL once per plan and the driver reuses its prepared statement.
Parameters are cast to the type of what they are compared with (``p.visits > "3"``
sends 3) and dumped; a bad value raises ``CastError`` before any I/O.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.errors import CastError, QueryError
from asyncecto.schema import schema_info

from ._ast import (
    And,
    Arith,
    AssocPath,
    Compare,
    Const,
    Contains,
    Exists,
    Expr,
    FieldRef,
    FilterAgg,
    Fragment,
    Frame,
    Func,
    HasKey,
    Ident,
    In,
    IntervalAdd,
    IsNil,
    JsonPath,
    Like,
    Neg,
    Not,
    Now,
    Or,
    Over,
    Param,
    ParentRef,
    PathColumn,
    Quantified,
    SelectedAs,
    SelectFields,
    Shape,
    SourceRef,
    Splice,
    Subquery,
    TypeCast,
)
from ._clauses.cte import fragment_cte
from ._param_types import INT4, INT8, INTEGER_ARGS, LiteralMode, beyond_int4, cast_type_of, fits, literal_db_type, shift
from ._placeholder import Placeholder
from ._plan import (
    Col,
    PAliasRef,
    PAnd,
    ParamRef,
    Params,
    PArith,
    PArray,
    PAssocPath,
    PCast,
    PCompare,
    PConst,
    PExists,
    PExpr,
    PFilter,
    PFragment,
    PFrame,
    PFunc,
    PIdent,
    PIn,
    PInterval,
    PIsNil,
    PJsonPath,
    Planned,
    PLike,
    PNeg,
    PNot,
    POp,
    POr,
    POver,
    PParentCol,
    PPathCol,
    PQuantified,
    PSelectedAs,
    PSource,
    PSourceAlias,
    PSplice,
    PSubquery,
    PWindow,
)
from ._plan_select import plan_select
from ._query import Query

__all__ = ("dump_param", "plan")


class _Planner:
    def __init__(
        self,
        q: Query[Any],
        prefix: str | None,
        params: list[Any] | None = None,
        depth: int = 0,
        cte_names: frozenset[str] = frozenset(),
    ) -> None:
        self.q = q
        self.cte_names = cte_names | {name for name, _ in q.ctes}
        self.prefix = prefix
        self.depth = depth
        self.params: list[Any] = Params() if params is None else params
        #: the values before dumping, parallel to ``params`` (when it is a :class:`Params`)
        self.cast_params: list[Any] | None = getattr(self.params, "cast", None)
        #: planning a prepared query: where each placeholder went (``_prepared``), else ``None``
        self.recipes: list[Any] | None = getattr(self.params, "recipes", None)
        self.parent: _Planner | None = None
        self.selected_aliases: set[str] = set()
        #: for ``INSERT … SELECT``: the type (and name for errors) of the field each selected key fills
        self.insert_target: dict[Any, tuple[t.Type[Any] | None, str | None]] | None = None
        self.sources = q.sources
        self.infos = [schema_info(s.schema) if s.schema is not None else None for s in self.sources]
        self.subquery_keys: dict[int, tuple[str, ...]] = {
            i: s.query.select.keys
            for i, s in enumerate(self.sources)
            if s.query is not None and isinstance(s.query.select, Shape)
        }
        self.value_types: dict[int, dict[str, t.Type[Any]]] = {
            i: dict(zip(s.values.fields, s.values.types, strict=True))
            for i, s in enumerate(self.sources)
            if s.values is not None and s.schema is None
        }
        for i in self.value_types:
            self.subquery_keys[i] = tuple(self.value_types[i])
        self.prefixes = [
            None
            if s.table in self.cte_names and s.query is None and s.values is None
            else s.prefix or (info.prefix if info is not None else None) or prefix
            for s, info in zip(self.sources, self.infos, strict=True)
        ]

    def sub_prefix(self, q: Query[Any]) -> str | None:
        """A nested query's prefix: its own ``put_query_prefix``, else the enclosing query's."""
        return q.prefix if q.prefix is not None else self.prefix

    # -- fields and parameters -------------------------------------------------------------
    def field(self, ref: FieldRef) -> tuple[Col, t.Type[Any] | None, str]:
        if not 0 <= ref.binding < len(self.sources):
            raise QueryError(f"unknown binding {ref.binding} in query {self.q!r}")
        info = self.infos[ref.binding]
        keys = self.subquery_keys.get(ref.binding)
        if keys is not None and ref.name not in keys:
            raise QueryError(f"field {ref.name!r} is not available in the subquery, which selects: {', '.join(keys)}")
        if info is None:
            typ = self.value_types.get(ref.binding, {}).get(ref.name)
            return Col(ref.binding, ref.name), typ, ref.name
        f = info.fields.get(ref.name)
        if f is None or f.virtual:
            known = ", ".join(n for n, x in info.fields.items() if not x.virtual)
            raise QueryError(f"field {ref.name!r} does not exist in schema {info.name}; fields are: {known}")
        return Col(ref.binding, f.source), f.type, f"{info.name}.{ref.name}"

    def param(self, value: Any, typ: t.Type[Any] | None, name: str | None, kind: Any = "value") -> ParamRef:
        if isinstance(value, Placeholder):
            if self.recipes is None:
                raise QueryError(
                    f"{self.q!r} is a prepared query's template, with {value!r} in place of a value; "
                    "run the prepared query with its values instead: repo.all(prepared(...))"
                )
            # a prepared query's parameter: bound per call (``_prepared``), as dump_param does here
            self.recipes.append((len(self.params), kind, value.index, typ, name))
            value = cast = None
        else:
            value, cast = dump_param(value, typ, name)
        self.params.append(value)
        if self.cast_params is not None:
            self.cast_params.append(cast)
        return ParamRef(len(self.params))

    def literal(self, value: Any, mode: LiteralMode) -> PExpr:
        """A parameter nothing in the query types: cast to its value's own SQL type (part of the plan)."""
        if isinstance(value, Placeholder):
            return self.param(value, None, None, ("literal", mode))  # bound only where it takes no cast
        db_type = literal_db_type(value, mode)
        ref = self.param(value, None, None)
        return PCast(ref, db_type, exact=True) if db_type else ref

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
            if e.name in ("min", "max", "sum") and e.args:
                return self.type_of(e.args[0])
            if e.name == "coalesce":
                return next((x for x in map(self.type_of, e.args) if x[0] is not None), (None, None))
            return None, None
        if isinstance(e, Arith):
            # only a fractional operand types arithmetic: an integer result compares with 1.5 as well as with 2
            sides = [self.type_of(e.left), self.type_of(e.right)]
            for side_type in sides:
                if isinstance(side_type[0], t.Float | t.Decimal):
                    return side_type
            return next((s for s in sides if s[0] is not None), (None, None))
        if isinstance(e, Neg | IntervalAdd):
            return self.type_of(e.arg)
        if isinstance(e, JsonPath):
            return t.Any(), None  # a value compared with a JSON path is sent as JSON
        if isinstance(e, FilterAgg):
            return self.type_of(e.agg)
        if isinstance(e, Over):
            return self.type_of(e.func)
        if isinstance(e, SelectedAs) and e.expr is not None:
            return self.type_of(e.expr)
        if isinstance(e, ParentRef):
            planner = self.parent
            while planner is not None:
                ref_binding = planner.q.aliases.get(e.name)
                if ref_binding is not None:
                    return planner.type_of(FieldRef(ref_binding, e.field))
                planner = planner.parent
        if isinstance(e, Subquery):
            inner = e.query.select
            if inner is not None and not isinstance(inner, Shape | SourceRef | SelectFields):
                return _Planner(e.query, self.sub_prefix(e.query), [], self.depth + 1).type_of(inner)
        return None, None

    # -- expressions ----------------------------------------------------------------------
    def expr(
        self,
        e: Expr,
        expected: tuple[t.Type[Any] | None, str | None] = (None, None),
        literal: LiteralMode = "own",
    ) -> PExpr:
        if isinstance(e, Param):
            if expected[0] is not None:
                return self.param(e.value, *expected)
            return self.literal(e.value, literal)
        if isinstance(e, Now):
            now: Any = shift(_dt.datetime.now(_dt.UTC), e.amount, e.unit)
            kind: Any = "value"
            if self.recipes is not None:  # a prepared query takes the time at each call
                now, kind = Placeholder(-1, "now"), ("now", e.amount, e.unit)
            if expected[0] is None:  # nothing typed to compare with: say what the value is
                return PCast(self.param(now, t.UtcDatetimeUsec(), None, kind), "timestamptz")
            return self.param(now, expected[0], expected[1], kind)
        if isinstance(e, JsonPath):
            if all(isinstance(k, str | int) for k in e.path):
                return PJsonPath(self.expr(e.arg), self.param([str(k) for k in e.path], None, None))
            items = tuple(  # a field in the path: ARRAY[$1, p0."key"::text]
                self.param(str(k), None, None) if isinstance(k, str | int) else PCast(self.expr(k), "text", exact=True)
                for k in e.path
            )
            return PJsonPath(self.expr(e.arg), PArray(items, "text"))
        if isinstance(e, Contains):
            return self.contains(e)
        if isinstance(e, HasKey):
            arg = self.expr(e.arg)
            keys = e.keys
            if isinstance(keys, Param):
                _no_placeholder(keys.value, "has_key/has_any_keys/has_all_keys")
                if e.op == "?" and not isinstance(keys.value, str):
                    raise QueryError(f"has_key expects a key string, got {keys.value!r}")
                ref = self.param(keys.value, None, None)
                return POp(e.op, arg, PCast(ref, "text" if e.op == "?" else "text[]", exact=True))
            return POp(e.op, arg, self.expr(keys))
        if isinstance(e, IntervalAdd):
            return PInterval(self.expr(e.arg), self.expr(e.amount), e.unit, e.date)
        if isinstance(e, Ident):
            return self.ident(e)
        if isinstance(e, Const):
            return PConst(e.value, type(e.value).__name__)
        if isinstance(e, Splice):
            return PSplice(tuple(self.literal(v, "fragment") for v in e.values))
        if isinstance(e, Subquery):
            return PSubquery(self.nested(e.query))
        if isinstance(e, Exists):
            return PExists(PSubquery(self.nested(e.arg.query, exists=True)))  # the subquery as written
        if isinstance(e, Quantified):
            return PQuantified(e.quantifier, PSubquery(self.nested(e.arg.query)))
        if isinstance(e, FilterAgg):
            return PFilter(self.expr(e.agg), self.expr(e.cond))
        if isinstance(e, ParentRef):
            return self.parent_col(e)
        if isinstance(e, SelectedAs):
            if e.expr is None:
                if e.alias not in self.selected_aliases:
                    raise QueryError(
                        f"selected_as({e.alias!r}) refers to an alias the select does not define: {self.q!r}"
                    )
                return PAliasRef(e.alias)
            self.selected_aliases.add(e.alias)
            return PSelectedAs(self.expr(e.expr, expected), e.alias)
        if isinstance(e, Over):
            window: str | PWindow
            if e.window is not None:
                if not any(n == e.window for n, _ in self.q.windows):
                    raise QueryError(f"unknown window {e.window!r} in {self.q!r}; define it with windows(...)")
                window = e.window
            else:
                window = self.window(e)
            return POver(self.expr(e.func), window)
        if isinstance(e, FieldRef):
            return self.field(e)[0]
        if isinstance(e, AssocPath):
            tables = tuple((self.ident(p.table), p.tag) for p in e.tables)
            links = tuple((self.expr(a), self.expr(b)) for a, b in e.links)
            return PAssocPath(tables, links, tuple(self.expr(c) for c in e.conds))
        if isinstance(e, PathColumn):
            return PPathCol(e.table, e.column)
        if isinstance(e, TypeCast):
            typ = t.resolve(e.type)
            inner = self.expr(e.arg, (typ, None))
            db_type = cast_type_of(typ)
            return PCast(inner, db_type) if db_type else inner
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
            if e.columns:
                raise QueryError(
                    f"fragment(..., columns={list(e.columns)!r}) names the columns of a fragment used as a source "
                    f"(from_ or join); drop columns= where it is an expression, in {self.q!r}"
                )
            return PFragment(e.parts, tuple(self.expr(a, literal="fragment") for a in e.args))
        if isinstance(e, Func):
            return self.func(e)
        if isinstance(e, SourceRef | SelectFields):
            raise QueryError(f"a whole source can only be selected, not used in an expression: {self.q!r}")
        raise QueryError(f"cannot plan expression {e!r}")

    def ident(self, e: Ident) -> PIdent:
        """An identifier; a table one under its own prefix, else its binding's effective prefix."""
        if e.table:
            return PIdent(e.name, e.prefix or self.prefixes[e.binding])
        return PIdent(e.name)

    def values(self, v: Any, binding: int) -> tuple[tuple[str, ...], tuple[tuple[PExpr, ...], ...]]:
        """A values source: each cell a parameter cast to its column's SQL type."""
        rows = []
        for row in v.rows:
            cells: list[PExpr] = []
            for name, typ, value in zip(v.fields, v.types, row, strict=True):
                ref = self.param(value, typ, f"values.{name}")
                cast = cast_type_of(typ)
                cells.append(PCast(ref, cast) if cast else ref)
            rows.append(tuple(cells))
        info = self.infos[binding]
        columns = tuple(info.fields[n].source for n in v.fields) if info is not None else v.fields
        return columns, tuple(rows)

    def parent_col(self, ref: ParentRef) -> PParentCol:
        planner = self.parent
        while planner is not None:
            binding = planner.q.aliases.get(ref.name)
            if binding is not None:
                col, _typ, _name = planner.field(FieldRef(binding, ref.field))
                return PParentCol(planner.depth, binding, planner.sources[binding].table, col.column)
            planner = planner.parent
        raise QueryError(f"could not find named binding parent_as({ref.name!r}) in any enclosing query of {self.q!r}")

    def plan_query(self, op: str) -> Planned:
        return _plan_query(self, op)

    def window(self, over: Over) -> PWindow:
        return PWindow(
            tuple(self.expr(p) for p in over.partition_by),
            tuple((o.direction, self.expr(o.expr)) for o in over.order_by),
            self.frame(over.frame),
        )

    def frame(self, frame: Expr | Frame | None) -> PExpr | PFrame | None:
        if frame is None:
            return None
        if isinstance(frame, Frame):
            return PFrame(frame.kind, frame.start, frame.end, frame.exclude)
        return self.expr(frame)

    def contains(self, e: Contains) -> PExpr:
        """``x.contains(v)`` by ``x``'s type: an array's element (``= ANY``) or elements (``@>``), or JSON (``@>``)."""
        typ, name = self.type_of(e.left)
        value = e.right.value if isinstance(e.right, Param) else None
        _no_placeholder(value, "contains (a list and one element make different SQL)")
        if isinstance(typ, t.Array):
            if isinstance(e.right, Param) and isinstance(value, list | tuple):
                left = self.expr(e.left)
                return POp("@>", left, self.param(list(value), typ, name))
            return PIn(self.expr(e.right, (typ.of, name), "inferred"), self.expr(e.left))
        if isinstance(typ, t.Map | t.Any) or isinstance(e.left, JsonPath):
            if isinstance(e.right, Param):
                if not isinstance(value, dict | list | tuple):
                    raise QueryError(
                        f"contains on the JSON value {name or 'expression'} expects a dict or a list (sent as jsonb), "
                        f"got {value!r}; for a key or a string element use has_key()"
                    )
                left = self.expr(e.left)
                ref = self.param(list(value) if isinstance(value, tuple) else value, None, None)
                return POp("@>", left, PCast(ref, "jsonb", exact=True))
            return POp("@>", self.expr(e.left), self.expr(e.right))
        raise QueryError(
            f"contains needs an array or a JSON (map) field, got {name or 'an expression'} of type {typ!r}; "
            "for other types use fragment()"
        )

    def nested(self, q: Query[Any], exists: bool = False, source: bool = False) -> Planned:
        """A subquery's plan: same parameter list, its own aliases (one level deeper)."""
        if exists and q.select is None:
            q = attrs.evolve(q, select=Const(True))  # EXISTS (SELECT TRUE …)
        child = _Planner(q, self.sub_prefix(q), self.params, self.depth + 1, self.cte_names)
        child.parent = self
        if source or exists:
            return child.plan_query("subquery")
        op = "all"
        if not exists and q.select is None and q.sources[0].schema is not None:
            raise QueryError(f"a subquery used as a value needs a select of one column: {q!r}")
        return child.plan_query(op)

    def func(self, e: Func) -> PFunc:
        """A call; a value in ``coalesce`` (or ``lag``/``lead``'s default) takes its first typed argument's type."""
        typed = e.args if e.name == "coalesce" else e.args[:1] if e.name in ("lag", "lead") else ()
        typ: tuple[t.Type[Any] | None, str | None] = (None, None)
        for a in typed:
            if not isinstance(a, Param):
                typ = self.type_of(a)
                if typ[0] is not None:
                    break
        mode: LiteralMode = "inferred" if any(not isinstance(a, Param) for a in typed) else "own"
        args = []
        for i, a in enumerate(e.args):
            if isinstance(a, Param) and (e.name == "coalesce" or (e.name in ("lag", "lead") and i == 2)):
                args.append(self.expr(a, typ if fits(typ[0], a) else (None, None), mode))
            elif (e.name, i) in INTEGER_ARGS:
                args.append(self.expr(a, literal="inferred"))  # the function's signature types it
            else:
                args.append(self.expr(a))
        return PFunc(e.name, tuple(args), e.distinct, e.star)

    def _binary(self, op: str, left: Expr, right: Expr, cls: type[PCompare] | type[PArith]) -> PExpr:
        # a parameter (or ago/from_now) takes the type of the other side
        lt = self.type_of(left) if isinstance(right, Param | Now) else (None, None)
        rt = self.type_of(right) if isinstance(left, Param | Now) else (None, None)
        if beyond_int4(lt[0], right):
            lt = (None, None)
        if beyond_int4(rt[0], left):
            rt = (None, None)
        if cls is PArith or isinstance(left, Arith) or isinstance(right, Arith):
            # arithmetic: a parameter takes the other operand's type only if it fits it (1.5 next to an integer
            # field stays a float); otherwise it is typed by its own value
            if not fits(lt[0], right):
                lt = (None, None)
            if not fits(rt[0], left):
                rt = (None, None)
        # a parameter beside an expression is typed by PostgreSQL from it (a schemaless column's own type)
        left_mode: LiteralMode = "own" if isinstance(right, Param) else "inferred"
        right_mode: LiteralMode = "own" if isinstance(left, Param) else "inferred"
        return cls(op, self.expr(left, rt, left_mode), self.expr(right, lt, right_mode))

    def _in(self, e: In) -> PExpr:
        if isinstance(e.right, Subquery):
            return PIn(self.expr(e.left), PSubquery(self.nested(e.right.query)))
        if isinstance(e.right, Param):
            values = e.right.value
            typ, name = self.type_of(e.left)
            if isinstance(values, Placeholder):  # a prepared query's list: checked and cast per call
                right = self.param(values, t.Array(typ) if typ is not None else None, name, ("in", typ))
                return PIn(self.expr(e.left), right)
            if not isinstance(values, list | tuple):
                raise QueryError(f"in_ expects a list of values for {name or 'the expression'}, got {values!r}")
            if type(typ) in (t.Integer, t.Id) and values and all(type(v) is int for v in values):
                wide = [v for v in values if not -INT4 <= v < INT4]
                if wide:  # as for a comparison: typed by the values, so the answer is true, not an error
                    big = all(-INT8 <= v < INT8 for v in wide)
                    ref = self.param(list(values), None, None)
                    return PIn(self.expr(e.left), PCast(ref, "bigint[]" if big else "numeric[]", exact=True))
            right = self.param(list(values), t.Array(typ) if typ is not None else None, name)
            return PIn(self.expr(e.left), right)
        arr, name = self.type_of(e.right)
        elem = arr.of if isinstance(arr, t.Array) else None
        return PIn(self.expr(e.left, (elem, name), "inferred"), self.expr(e.right))


def _no_placeholder(value: Any, where: str) -> None:
    if isinstance(value, Placeholder):
        raise QueryError(
            f"prepare(): parameter {value.name!r} is used in {where}, whose SQL depends on the value; "
            "it cannot be a prepared parameter: build this query without prepare(), or pass a constant"
        )


def dump_param(value: Any, typ: t.Type[Any] | None, name: str | None) -> tuple[Any, Any]:
    """``(sent, cast)``: a parameter's value cast to ``typ`` and dumped (``name``: ``Schema.field`` for
    errors), or, untyped, sent as it is; a bad value raises :class:`CastError`."""
    cast = value
    if typ is not None:
        schema, _, fname = name.rpartition(".") if name else (None, None, None)
        try:
            cast = t.cast_value(typ, value, field=fname, schema=schema or None)
        except CastError as refused:
            # an internal value the type dumps as it is (a float's inf or NaN, which cast keeps
            # out of outside input) is a value the column holds: written and compared as insert does
            try:
                cast = t.dump_value(typ, value, field=fname, schema=schema or None)
            except CastError:
                raise refused from None
        value = t.dump_value(typ, cast, field=fname, schema=schema or None)
    elif type(value) is str and ("\x00" in value or not value.isascii()):
        t.dump_value(t.String(), value, field=name)  # untyped text still cannot hold a NUL: CastError
    return value, cast


def plan(q: Query[Any], op: str = "all", *, prefix: str | None = None) -> tuple[Planned, list[Any]]:
    """Plan ``q`` for ``op`` (``all``, ``exists``, ``aggregate``, ``update_all``, ``delete_all``).

    ``prefix`` is the call's (or the repo's, which the Repo passes when neither the call nor
    the query has one); without it, the query's own (``put_query_prefix``). A source's
    ``from_(..., prefix=)`` comes first, then its schema's, then that prefix. Nested queries
    (subqueries, CTEs, combinations) use their own query prefix, else the enclosing one.
    Parameters are numbered as the SQL text meets them.
    """
    p = _Planner(q, prefix if prefix is not None else q.prefix)
    return p.plan_query(op), p.params


def _plan_query(p: _Planner, op: str) -> Planned:
    q = p.q
    modes = {name: (materialized, operation) for name, materialized, operation in q.cte_modes}
    ctes = tuple((name, _plan_cte(p, cq, modes.get(name, (None, "all"))[1])) for name, cq in q.ctes)
    columns: list[PExpr] = []
    updates: tuple[tuple[str, str, PExpr], ...] = ()
    if op == "update_all":  # planned first: SET comes before WHERE in the SQL text
        updates = tuple(_plan_update(p, o, name, value) for o, name, value in q.updates)
        if not updates:
            raise QueryError(f"update_all needs at least one field to update: {q!r}")
    distinct: tuple[tuple[str, PExpr], ...] | bool = (
        q.distinct if isinstance(q.distinct, bool) else tuple((d.direction, p.expr(d.expr)) for d in q.distinct)
    )
    bulk = op in ("update_all", "delete_all")  # their RETURNING comes last in the text
    if bulk and q.source.fragment is not None:
        raise QueryError(
            f"{op} needs a table to change, not a fragment source (mapped onto a schema or not): {q!r}; "
            "start from the schema or (table, Schema) and filter with where(...)"
        )
    selects = op in ("all", "subquery")
    reader = plan_select(p, q.select, columns) if not bulk and (q.select is not None or selects) else None
    subqueries: dict[int, Planned] = {}
    value_sources: dict[int, tuple[tuple[str, ...], tuple[tuple[PExpr, ...], ...]]] = {}
    fragments: dict[int, PFragment] = {}
    if q.source.query is not None:
        subqueries[0] = p.nested(q.source.query, source=True)
    if q.source.values is not None:
        value_sources[0] = p.values(q.source.values, 0)
    if q.source.fragment is not None:
        fragments[0] = _fragment_source(p, q.source.fragment)
    join_list = []
    for i, j in enumerate(q.joins, 1):
        if j.source.query is not None:
            subqueries[i] = p.nested(j.source.query, source=True)
        if j.source.values is not None:
            value_sources[i] = p.values(j.source.values, i)
        if j.source.fragment is not None:
            fragments[i] = _fragment_source(p, j.source.fragment)
        join_list.append((j.kind, p.expr(j.on) if j.on is not None else None))
    joins = tuple(join_list)
    wheres = tuple((f.op, p.expr(f.expr)) for f in q.wheres)
    if bulk and q.select is not None:
        reader = plan_select(p, q.select, columns)
    group_bys = tuple(p.expr(g) for g in q.group_bys)
    havings = tuple((f.op, p.expr(f.expr)) for f in q.havings)
    windows = tuple((name, p.window(over)) for name, over in q.windows)
    combinations = tuple(
        (kind, _Planner(other, p.sub_prefix(other), p.params, p.depth, p.cte_names).plan_query("all"))
        for kind, other in q.combinations
    )
    orders = tuple((o.direction, p.expr(o.expr)) for o in q.order_bys)
    lim = off = None
    if q.with_ties:  # OFFSET … FETCH FIRST … WITH TIES: the offset comes first in the text
        off = p.param(q.offset.value, None, None, "count") if q.offset is not None else None
        lim = p.param(q.limit.value, None, None, "count") if q.limit is not None else None
    else:
        lim = p.param(q.limit.value, None, None, "count") if q.limit is not None else None
        off = p.param(q.offset.value, None, None, "count") if q.offset is not None else None
    if q.with_ties and not q.order_bys:
        raise QueryError(f"with_ties needs an order_by: {q!r}")
    sources = tuple(
        PSource(
            s.table,
            pre if s.query is None and s.values is None and s.fragment is None else None,
            subqueries.get(i),
            value_sources.get(i),
            fragments.get(i),
            s.hints,
        )
        for i, (s, pre) in enumerate(zip(q.sources, p.prefixes, strict=True))
    )
    return Planned(
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
        _plan_lock(q),
        updates,
        q.with_ties,
        combinations,
        windows,
        ctes,
        q.recursive_ctes,
        p.depth,
        tuple(modes.get(name, (None, "all"))[0] for name, _ in q.ctes) if modes else (),
    )


def _plan_lock(q: Query[Any]) -> str | PFragment | None:
    """The lock clause; a fragment's ``?`` arguments are sources, written as their table aliases."""
    if not isinstance(q.lock, Fragment):
        return q.lock
    args: list[PExpr] = []
    for a in q.lock.args:
        if not isinstance(a, SourceRef):
            raise QueryError(
                f"a lock fragment's ? arguments must be sources (lambda p: fragment('FOR UPDATE OF ?', p)), "
                f"got {a!r} in {q!r}; PostgreSQL takes no parameters in a lock clause"
            )
        args.append(PSourceAlias(a.binding))
    return PFragment(q.lock.parts, tuple(args))


def _plan_cte(p: _Planner, cq: Query[Any], operation: str) -> Planned:
    """A CTE's body: its query planned for ``operation``, or (``as_=fragment(...)``) the fragment as is."""
    child = _Planner(cq, p.sub_prefix(cq), p.params, p.depth, p.cte_names)
    frag = fragment_cte(cq)
    if frag is None:
        return child.plan_query(operation)
    return Planned("fragment", (), (_fragment_source(child, frag),), None, depth=p.depth)


def _fragment_source(p: _Planner, frag: Fragment) -> PFragment:
    planned = p.expr(attrs.evolve(frag, columns=()))
    assert isinstance(planned, PFragment)
    return attrs.evolve(planned, columns=frag.columns)


def _plan_update(p: _Planner, op: str, name: str, value: Expr) -> tuple[str, str, PExpr]:
    col, typ, full = p.field(FieldRef(0, name))
    info = p.infos[0]
    f = info.fields.get(name) if info is not None else None
    if f is not None and f.writable != "always":  # field(writable="insert" | "never")
        raise QueryError(f"cannot update non-updatable field {name!r} in query {p.q!r}")
    if op in ("push", "pull"):
        typ = typ.of if isinstance(typ, t.Array) else None
    return op, col.column, p.expr(value, (typ, full), "inferred")  # untyped: the column types it
