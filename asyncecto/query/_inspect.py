"""Render a query back as the DSL that builds it (never as SQL)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import attrs

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
    SelectFields,
    Shape,
    Source,
    SourceRef,
    Splice,
    Subquery,
    TypeCast,
)

if TYPE_CHECKING:
    from ._query import Query

__all__ = ("render", "render_expr")


def _takes(assocs: Any) -> list[tuple[str, Any]]:
    """Nested field lists as they are written: ``("comments", ["id", {...}])`` pairs."""
    return [(n, [*t.fields, *([dict(_takes(t.assocs))] if t.assocs else [])]) for n, t in assocs]


def _plain_fields(sel: Any) -> bool:
    """A field list written as ``select([...])``: a struct of the ``from`` source."""
    return isinstance(sel, SelectFields) and not sel.as_map and sel.binding == 0


def render_expr(e: Any) -> str:
    """An expression as the Python that builds it (bindings shown as ``b0``, ``b1`` …)."""
    if isinstance(e, FieldRef):
        return f"b{e.binding}.{e.name}"
    if isinstance(e, SourceRef):
        return f"b{e.binding}"
    if isinstance(e, SelectFields):
        listed = repr([*e.fields, *([dict(_takes(e.assocs))] if e.assocs else [])])
        if e.as_map or e.binding:
            return f"{'map_' if e.as_map else 'struct'}(b{e.binding}, {listed})"
        return listed
    if isinstance(e, Param):
        return repr(e.value)
    if isinstance(e, IsNil):
        return f"is_nil({render_expr(e.arg)})"
    if isinstance(e, And):
        return " & ".join(f"({render_expr(a)})" for a in e.args)
    if isinstance(e, Or):
        return " | ".join(f"({render_expr(a)})" for a in e.args)
    if isinstance(e, Not):
        return f"~({render_expr(e.arg)})"
    if isinstance(e, Compare | Arith):
        return f"{render_expr(e.left)} {e.op} {render_expr(e.right)}"
    if isinstance(e, Neg):
        return f"-({render_expr(e.arg)})"
    if isinstance(e, In):
        return f"{render_expr(e.left)}.in_({render_expr(e.right)})"
    if isinstance(e, Like):
        return f"{render_expr(e.left)}.{e.op}({render_expr(e.right)})"
    if isinstance(e, Fragment):
        sql = "?".join(p.replace("?", "\\?") for p in e.parts)
        cols = [f"columns={list(e.columns)!r}"] if e.columns else []
        return f"fragment({', '.join([repr(sql), *(render_expr(a) for a in e.args), *cols])})"
    if isinstance(e, Func):
        name = {"sum": "sum_", "min": "min_", "max": "max_"}.get(e.name, e.name)
        args = [render_expr(a) for a in e.args] + (["distinct=True"] if e.distinct else [])
        return f"{name}({', '.join(args)})"
    if isinstance(e, TypeCast):
        return f"type_({render_expr(e.arg)}, {getattr(e.type, '__name__', None) or repr(e.type)})"
    if isinstance(e, Subquery):
        return f"subquery({render(e.query)})"
    if isinstance(e, ParentRef):
        return f"parent_as({e.name!r}).{e.field}"
    if isinstance(e, Quantified):
        return f"{e.quantifier.lower()}_({render_expr(e.arg)})"
    if isinstance(e, Exists):
        return f"exists({render_expr(e.arg)})"
    if isinstance(e, JsonPath):
        return render_expr(e.arg) + "".join(
            f"[{k!r}]" if isinstance(k, str | int) else f"[{render_expr(k)}]" for k in e.path
        )
    if isinstance(e, Contains):
        return f"{render_expr(e.left)}.contains({render_expr(e.right)})"
    if isinstance(e, HasKey):
        method = {"?": "has_key", "?|": "has_any_keys", "?&": "has_all_keys"}[e.op]
        return f"{render_expr(e.arg)}.{method}({render_expr(e.keys)})"
    if isinstance(e, Now):
        return f"{'ago' if e.amount < 0 else 'from_now'}({abs(e.amount)!r}, {e.unit!r})"
    if isinstance(e, IntervalAdd):
        fn = "date_add" if e.date else "datetime_add"
        return f"{fn}({render_expr(e.arg)}, {render_expr(e.amount)}, {e.unit!r})"
    if isinstance(e, AssocPath):  # a join on an association path, as written: ``lambda p: p.tags``
        owner = e.links[0][1]
        return f"b{owner.binding if isinstance(owner, FieldRef) else 0}.{e.name}"
    if isinstance(e, PathColumn):
        return f"{e.table}.{e.column}"
    if isinstance(e, Ident):
        return f"table({e.name!r})" if e.table else f"identifier({e.name!r})"
    if isinstance(e, Const):
        return f"constant({e.value!r})"
    if isinstance(e, Splice):
        return f"splice({list(e.values)!r})"
    if isinstance(e, FilterAgg):
        return f"filter_({render_expr(e.agg)}, {render_expr(e.cond)})"
    if isinstance(e, Over):
        if e.window is not None:
            return f"over({render_expr(e.func)}, {e.window!r})"
        opts = []
        if e.partition_by:
            opts.append(f"partition_by=[{', '.join(render_expr(x) for x in e.partition_by)}]")
        if e.order_by:
            opts.append(f"order_by=[{', '.join(f'{o.direction}({render_expr(o.expr)})' for o in e.order_by)}]")
        if isinstance(e.frame, Frame):
            f = e.frame
            excl = f", exclude={f.exclude!r}" if f.exclude else ""
            opts.append(f"frame={f.kind}_between({f.start!r}, {f.end!r}{excl})")
        elif e.frame is not None:
            opts.append(f"frame={render_expr(e.frame)}")
        return f"over({', '.join([render_expr(e.func), *opts])})"
    if isinstance(e, Shape) and e.kind == "merge":
        return f"{render_expr(e.items[0])} merged with {render_expr(e.items[1])}"
    if isinstance(e, Shape):
        items = [render_expr(i) for i in e.items]
        if e.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(e.keys, items, strict=True)) + "}"
        if e.kind == "list":
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(e)


def _keyword(e: Expr) -> str | None:
    keyword = isinstance(e, Compare) and e.op == "==" and isinstance(e.left, FieldRef) and e.left.binding == 0
    if keyword and isinstance(e.right, Param):  # type: ignore[union-attr]
        return f"{e.left.name}={e.right.value!r}"  # type: ignore[union-attr]
    return None


def _filter(e: Expr) -> str:
    parts = [_keyword(a) for a in e.args] if isinstance(e, And) else [_keyword(e)]
    if all(p is not None for p in parts):
        return ", ".join(p for p in parts if p is not None)
    return f"lambda: {render_expr(e)}"


def _source(src: Source) -> str:
    if src.query is not None:
        return f"subquery({render(src.query)})"
    if src.fragment is not None:
        frag = render_expr(src.fragment)
        return f"({frag}, {src.schema.__name__})" if src.schema is not None else frag
    if src.hints:
        return _source(attrs.evolve(src, hints=())) + f", hints={list(src.hints)!r}"
    head = src.schema.__name__ if src.schema is not None else repr(src.table)
    if src.schema is not None and src.table != schema_info(src.schema).source:
        head = f"({src.table!r}, {head})"
    return head + (f", prefix={src.prefix!r}" if src.prefix else "")


def render(q: Query[Any]) -> str:
    names = {i: n for n, i in q.aliases.items()}
    parts = [f"from_({_source(q.source)}{f', as_={names[0]!r}' if 0 in names else ''})"]
    for j in q.joins:
        on = f", on=lambda: {render_expr(j.on)}" if j.on is not None else ""
        alias = f", as_={j.name!r}" if j.name else ""
        parts.append(f"join({j.kind!r}, {_source(j.source)}{on}{alias})")
    for f in q.wheres:
        parts.append(f"{'where' if f.op == 'and' else 'or_where'}({_filter(f.expr)})")
    if q.group_bys:
        parts.append(f"group_by(lambda: [{', '.join(render_expr(g) for g in q.group_bys)}])")
    for f in q.havings:
        parts.append(f"{'having' if f.op == 'and' else 'or_having'}(lambda: {render_expr(f.expr)})")
    if q.distinct is True:
        parts.append("distinct(True)")
    elif isinstance(q.distinct, tuple) and q.distinct:
        parts.append(f"distinct(lambda: [{', '.join(render_expr(d.expr) for d in q.distinct)}])")
    if isinstance(q.select, Shape) and q.select.kind == "merge":
        base, extra = q.select.items
        if not (isinstance(base, SourceRef) and base.binding == 0):
            parts.append(
                f"select({render_expr(base)})" if _plain_fields(base) else f"select(lambda: {render_expr(base)})"
            )
        parts.append(f"select_merge(lambda: {render_expr(extra)})")
    elif q.select is not None:
        sel = q.select
        parts.append(f"select({render_expr(sel)})" if _plain_fields(sel) else f"select(lambda: {render_expr(sel)})")
    for direction, run in itertools.groupby(q.order_bys, key=lambda o: o.direction):
        items = list(run)
        if all(isinstance(o.expr, FieldRef) and o.expr.binding == 0 for o in items):
            names_ = [o.expr.name for o in items]  # type: ignore[union-attr]
            arg = names_[0] if len(names_) == 1 else names_
            parts.append(f"order_by({arg!r})" if direction == "asc" else f"order_by({direction}={arg!r})")
        else:
            exprs = ", ".join(render_expr(o.expr) for o in items)
            parts.append(f"order_by({direction}=lambda: [{exprs}])")
    if q.limit is not None:
        parts.append(f"limit({q.limit.value!r})")
    if q.offset is not None:
        parts.append(f"offset({q.offset.value!r})")
    if q.lock is not None:
        if isinstance(q.lock, Fragment):
            parts.append(f"lock(lambda: {render_expr(q.lock)})")
        else:
            parts.append(f"lock({q.lock!r})")
    for name, over in q.windows:
        spec = []
        if over.partition_by:
            spec.append(f"'partition_by': lambda: [{', '.join(render_expr(x) for x in over.partition_by)}]")
        if over.order_by:
            spec.append(
                f"'order_by': lambda: [{', '.join(f'{o.direction}({render_expr(o.expr)})' for o in over.order_by)}]"
            )
        parts.append(f"windows({name}={{{', '.join(spec)}}})")
    for kind, other in q.combinations:
        fn = {"except": "except_"}.get(kind, kind)
        parts.append(f"{fn}({render(other)})")
    modes = {name: (materialized, operation) for name, materialized, operation in q.cte_modes}
    for name, cte in q.ctes:
        materialized, operation = modes.get(name, (None, "all"))
        extra = f", materialized={materialized!r}" if materialized is not None else ""
        extra += f", operation={operation!r}" if operation != "all" else ""
        parts.append(f"with_cte({name!r}, as_={render(cte)}{extra}{', recursive=True' if q.recursive_ctes else ''})")
    if q.with_ties:
        parts.append("with_ties()")
    if q.updates:
        parts.append("update(" + ", ".join(f"{op}={{{n!r}: {render_expr(v)}}}" for op, n, v in q.updates) + ")")
    if q.preloads:
        joined = _has_binding(q.preloads)
        parts.append(f"preload({'lambda: ' if joined else ''}{', '.join(_preload(n) for n in q.preloads)})")
    if q.prefix is not None:
        parts.append(f"put_query_prefix({q.prefix!r})")
    return " | ".join(parts)


def _has_binding(nodes: Any) -> bool:
    return any(n.binding is not None or _has_binding(n.children) for n in nodes)


def _preload(n: Any) -> str:
    """One preload node as the spec that builds it: ``'comments'``, ``{'comments': 'author'}``,
    ``{'comments': (Query<...>, 'author')}``, ``{'comments': b1}``."""
    inner = None
    if n.children:
        items = [_preload(c) for c in n.children]
        inner = items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"
    head = f"b{n.binding}" if n.binding is not None else (repr(n.query) if n.query is not None else None)
    value = inner if head is None else (head if inner is None else f"({head}, {inner})")
    return repr(n.name) if value is None else f"{{{n.name!r}: {value}}}"
