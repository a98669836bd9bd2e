"""``where``/``or_where`` and ``having``/``or_having``: filters, ANDed or ORed with the earlier ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .. import _expr
from .._ast import And, Compare, Expr, FieldRef, Filter
from .._query import Query
from .._sources import Step, check_field

_T = TypeVar("_T")

__all__ = ("having", "or_having", "or_where", "where")


def _keyword_expr(q: Query[Any], given: Mapping[str, Any]) -> Expr:
    parts: list[Expr] = []
    for name, value in given.items():
        check_field(q, name)
        if value is None:
            raise QueryError(
                f"comparing {name} with None is forbidden as it is unsafe; "
                "use is_nil() to check whether a field is NULL"
            )
        parts.append(Compare("==", FieldRef(0, name), _expr.node(value)))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _filter_step(attr: str, op: str, expr: Any, kw: Mapping[str, Any], what: str) -> Step[Any]:
    if isinstance(expr, Mapping):
        kw, expr = {**expr, **kw}, None
    if expr is not None and kw:
        raise QueryError(f"{what}() takes an expression or field=value filters, not both")
    if expr is None and not kw:
        raise QueryError(f"{what}() needs an expression or at least one field=value filter")

    def step(q: Query[_T]) -> Query[_T]:
        node = _keyword_expr(q, kw) if expr is None else _expr.to_expr(q, expr, what)
        return attrs.evolve(q, **{attr: (*getattr(q, attr), Filter(op, node))})  # type: ignore[arg-type]

    return step


def where(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Keep rows matching an expression, or whose fields all equal the given values (ANDed with earlier filters).

    ``where(lambda p: p.visits > 10)``, ``where(city="Kraków")``, ``where({"city": "Kraków"})``.
    Values are cast to each field's type and sent as parameters.
    """
    return _filter_step("wheres", "and", expr, fields, "where")


def or_where(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Like :func:`where`, but ORed with the filters before it; its own fields are ANDed.

    ``where(city="Kraków") | or_where(city="Oslo", temp_lo=0)`` keeps Kraków, and Oslo at 0.
    """
    return _filter_step("wheres", "or", expr, fields, "or_where")


def having(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Filter groups (after ``group_by``); ANDed with earlier ``having`` filters."""
    return _filter_step("havings", "and", expr, fields, "having")


def or_having(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Like :func:`having`, but ORed with the filters before it."""
    return _filter_step("havings", "or", expr, fields, "or_having")
