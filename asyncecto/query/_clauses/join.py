"""``join``: another source, by a condition or along an association."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto._names import check_optional_name
from asyncecto.errors import QueryError

from .. import _expr
from .._assoc_join import assoc_join_on
from .._ast import And, Compare, Const, Expr, FieldRef, Join, Or, Param, Source, Splice, Subquery
from .._query import Query
from .._sources import Step, check_field, name_binding, source_of, with_hints

_T = TypeVar("_T")

__all__ = ("join",)


_JOIN_KINDS = ("inner", "left", "right", "full", "cross", "inner_lateral", "left_lateral", "cross_lateral")
#: the ``<kind>_join`` names (``from_`` keywords, ``exclude`` names) and the kind each stands for
KIND_NAMES = {f"{kind}_join": kind for kind in _JOIN_KINDS}


def join(
    kind: str,
    target: Any,
    /,
    *,
    on: Any = None,
    as_: str | None = None,
    prefix: str | None = None,
    hints: Any = None,
) -> Step[Any]:
    """Join another source: ``join("left", Comment, on=lambda p, c: c.post_id == p.id, as_="c")``.

    ``kind`` is inner, left, right, full or cross (and the ``_lateral`` forms). ``on`` is a
    function of every binding so far plus the new one, a dynamic, ``True``, or (Ecto's keyword
    ``on: [post_id: p.id]``) a dict of the joined source's fields to values or functions of the
    bindings: ``on={"post_id": lambda p: p.id}``.
    Rows of a left-joined source that matched nothing load as ``None``.

    The target is a schema, a table name, an association (``lambda p: p.comments``),
    ``subquery(q)``, ``values(...)``, ``fragment("...")`` (written as is, in parentheses when
    it starts with SELECT), or a query with only ``where`` clauses (as Ecto: its source is
    joined and its conditions join ``on``). ``hints=["TABLESAMPLE SYSTEM(50)"]`` is SQL
    written after the joined table's alias.
    """
    if kind not in _JOIN_KINDS:
        raise QueryError(f"unknown join kind {kind!r}; use one of {', '.join(_JOIN_KINDS)}")
    check_optional_name(prefix, "join prefix")
    is_assoc = callable(target) and not isinstance(target, type | Subquery | Source | Query | _expr.E)
    if kind.startswith("cross") and on is not None:
        raise QueryError(f"a {kind} join takes no on= condition")
    if not kind.startswith("cross") and on is None and not is_assoc:
        article = "an" if kind == "inner" else "a"
        raise QueryError(f"{article} {kind} join needs on=, e.g. on=lambda p, c: c.post_id == p.id")

    extra: Expr | None = None
    tgt = target
    if isinstance(target, Query):
        tgt, extra = _where_only(target)
        if extra is not None and kind.startswith("cross"):  # no ON to hold its conditions
            tgt, extra = Subquery(target), None

    def step(q: Query[_T]) -> Query[_T]:
        cond_fn = on
        if kind.endswith("_lateral") and not isinstance(target, Subquery) and not _is_fragment(target):
            raise QueryError(
                f"an {kind} join needs subquery(query) or fragment(...) as its target (use parent_as inside it)"
            )
        if is_assoc:
            ref = _expr.apply(q, target, "join")
            if not isinstance(ref, _expr.AssocRef):
                raise QueryError(
                    "a join on an association takes a function returning one, "
                    f"such as lambda p: p.comments; got {ref!r}"
                )
            if kind.startswith("cross"):
                raise QueryError(f"a {kind} join cannot join an association; use inner or left")
            src = Source(ref.assoc.related.__schema__.source, ref.assoc.related)
            cond_fn = assoc_join_on(q, ref, len(q.sources))
        else:
            src = source_of(tgt)
        if prefix is not None:
            src = attrs.evolve(src, prefix=prefix)
        index = len(q.sources)
        joined = attrs.evolve(q, joins=(*q.joins, Join(kind, src, None, as_)))
        if as_ is not None:
            joined = name_binding(joined, as_, index)
        if hints is not None:
            joined = with_hints(joined, index, hints)
        cond: Expr | None
        if isinstance(cond_fn, Mapping):
            cond = _keyword_on(joined, cond_fn, index)
        else:
            cond = _expr.to_expr(joined, cond_fn, "join on") if cond_fn is not None else None
        if is_assoc and on is not None and cond is not None:  # extra conditions on an association join
            more = _keyword_on(joined, on, index) if isinstance(on, Mapping) else _expr.to_expr(joined, on, "join on")
            cond = _expr.node(_expr.E(cond) & _expr.E(more))
        if extra is not None and cond is not None:  # a joined query's wheres, on its new binding
            cond = _expr.node(_expr.E(cond) & _expr.E(_rebind(extra, index)))
        last = attrs.evolve(joined.joins[-1], on=cond)
        return attrs.evolve(joined, joins=(*joined.joins[:-1], last))

    return step


def _is_fragment(target: Any) -> bool:
    return isinstance(target, _expr.E) or (isinstance(target, Source) and target.fragment is not None)


_WHERE_ONLY = ("wheres", "source", "aliases", "prefix")


def _where_only(target: Query[Any]) -> tuple[Source, Expr | None]:
    """A query joined as a target (Ecto's ``join: c in ^query``): its source, and its wheres as one condition."""
    empty: Query[Any] = Query(target.source)
    other = [f.name for f in attrs.fields(Query) if f.name not in _WHERE_ONLY]
    if target.joins or any(getattr(target, n) != getattr(empty, n) for n in other):
        raise QueryError(f"queries in joins can only have where conditions; use subquery(query) to join {target!r}")
    src = target.source
    if target.prefix is not None and src.prefix is None and src.query is None and src.values is None:
        src = attrs.evolve(src, prefix=target.prefix)  # its put_query_prefix stays with its table
    return src, _filters(target)


def _filters(target: Query[Any]) -> Expr | None:
    cond: Expr | None = None
    for f in target.wheres:
        if cond is None:
            cond = f.expr
        elif f.op == "and":
            cond = And((cond, f.expr))
        else:
            cond = Or((cond, f.expr))
    return cond


def _rebind(e: Any, index: int) -> Any:
    """``e`` with binding 0 moved to ``index`` (a joined query's conditions); subqueries keep theirs."""
    if isinstance(e, FieldRef):
        return FieldRef(index, e.name) if e.binding == 0 else e
    if isinstance(e, Subquery | Query | Param | Const | Splice):
        return e  # a subquery keeps its own bindings; a value is not an expression
    if isinstance(e, tuple):
        return tuple(_rebind(x, index) for x in e)
    if attrs.has(type(e)):
        changes = {}
        for f in attrs.fields(type(e)):
            value = getattr(e, f.name)
            new = _rebind(value, index)
            if new is not value:
                changes[f.name] = new
        return attrs.evolve(e, **changes) if changes else e
    return e


def _keyword_on(q: Query[Any], pairs: Mapping[Any, Any], index: int) -> Expr:
    """``on={"post_id": lambda p: p.id, "kind": "x"}``: each field of the joined source equals its value."""
    if not pairs:
        raise QueryError("join on= got an empty dict; give field=value pairs or a function of the bindings")
    terms: list[Expr] = []
    for name, value in pairs.items():
        if not isinstance(name, str):
            raise QueryError(f"join on= keys are field names of the joined source, got {name!r}")
        check_field(q, name, index)
        if isinstance(value, _expr.Dynamic) or (callable(value) and not isinstance(value, _expr.E)):
            value = _expr.E(_expr.to_expr(q, value, "join on"))
        if value is None:
            raise QueryError(
                f"comparing joined field {name!r} with None is forbidden as it is unsafe; "
                "use is_nil() in a function of the bindings instead"
            )
        terms.append(Compare("==", FieldRef(index, name), _expr.node(value)))
    return terms[0] if len(terms) == 1 else And(tuple(terms))
