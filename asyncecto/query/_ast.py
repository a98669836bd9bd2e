"""Query AST: frozen nodes. Parameters hold their values; the planner lifts them out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

import attrs

__all__ = ("And", "Compare", "Expr", "FieldRef", "Filter", "IsNil", "OrderBy", "Param", "Query", "Source")

_T = TypeVar("_T")


@attrs.frozen
class Source:
    """What a query reads from: a table, optionally mapped onto a schema."""

    table: str
    schema: type | None = None
    prefix: str | None = None


@attrs.frozen
class FieldRef:
    """``binding.name``: a field of the ``binding``-th source (0 is the ``from``)."""

    binding: int
    name: str


@attrs.frozen
class Param:
    """A value bound as a ``$n`` parameter; never inlined into SQL."""

    value: Any


@attrs.frozen
class Compare:
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in"]
    left: Expr
    right: Expr


@attrs.frozen
class IsNil:
    arg: Expr


@attrs.frozen
class And:
    """Every one of ``args`` (SQL ``AND``)."""

    args: tuple[Expr, ...]


Expr = FieldRef | Param | Compare | IsNil | And


@attrs.frozen
class Filter:
    """One ``where`` (``op="and"``) or ``or_where`` (``op="or"``) clause."""

    op: Literal["and", "or"]
    expr: Expr


@attrs.frozen
class OrderBy:
    direction: Literal["asc", "desc"]
    expr: Expr


@attrs.frozen
class Query(Generic[_T]):
    """A composable, inspectable query; ``q | step`` applies a step.

    >>> from asyncecto import schema
    >>> from asyncecto.query import from_, where, limit
    >>> @schema("weather")
    ... class Weather:
    ...     city: str | None = None
    >>> from_(Weather) | where(city="Kraków") | limit(5)
    Query<from_(Weather) | where(city='Kraków') | limit(5)>
    """

    source: Source
    wheres: tuple[Filter, ...] = ()
    order_bys: tuple[OrderBy, ...] = ()
    limit: Param | None = None
    offset: Param | None = None

    def __or__(self, step: Callable[[Query[_T]], Query[_T]]) -> Query[_T]:
        return step(self)

    def __repr__(self) -> str:
        from ._inspect import render

        return f"Query<{render(self)}>"
