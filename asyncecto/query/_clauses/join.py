"""``join``: another source, by a condition or along an association."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from asyncecto._names import check_optional_name
from asyncecto.errors import QueryError

from .. import _expr
from .._assoc_join import assoc_join_on
from .._ast import Join, Source, Subquery
from .._query import Query
from .._sources import Step, name_binding, source_of

_T = TypeVar("_T")

__all__ = ("join",)


_JOIN_KINDS = ("inner", "left", "right", "full", "cross", "inner_lateral", "left_lateral", "cross_lateral")


def join(
    kind: str,
    target: Any,
    /,
    *,
    on: Any = None,
    as_: str | None = None,
    prefix: str | None = None,
) -> Step[Any]:
    """Join another source: ``join("left", Comment, on=lambda p, c: c.post_id == p.id, as_="c")``.

    ``kind`` is inner, left, right, full or cross. ``on`` is a function of every binding
    so far plus the new one (or ``field=other_field`` pairs are not supported: use a lambda).
    Rows of a left-joined source that matched nothing load as ``None``.
    """
    if kind not in _JOIN_KINDS:
        raise QueryError(f"unknown join kind {kind!r}; use one of {', '.join(_JOIN_KINDS)}")
    check_optional_name(prefix, "join prefix")
    is_assoc = callable(target) and not isinstance(target, type | Subquery | Source)
    if kind.startswith("cross") and on is not None:
        raise QueryError(f"a {kind} join takes no on= condition")
    if not kind.startswith("cross") and on is None and not is_assoc:
        article = "an" if kind == "inner" else "a"
        raise QueryError(f"{article} {kind} join needs on=, e.g. on=lambda p, c: c.post_id == p.id")

    def step(q: Query[_T]) -> Query[_T]:
        cond_fn = on
        if kind.endswith("_lateral") and not isinstance(target, Subquery):
            raise QueryError(f"an {kind} join needs subquery(query) as its target (use parent_as inside it)")
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
            src = source_of(target)
        if prefix is not None:
            src = attrs.evolve(src, prefix=prefix)
        index = len(q.sources)
        joined = attrs.evolve(q, joins=(*q.joins, Join(kind, src, None, as_)))
        if as_ is not None:
            joined = name_binding(joined, as_, index)
        cond = _expr.to_expr(joined, cond_fn, "join on") if cond_fn is not None else None
        if is_assoc and on is not None and cond is not None:  # extra conditions on an association join
            cond = _expr.node(_expr.E(cond) & _expr.E(_expr.to_expr(joined, on, "join on")))
        last = attrs.evolve(joined.joins[-1], on=cond)
        return attrs.evolve(joined, joins=(*joined.joins[:-1], last))

    return step
