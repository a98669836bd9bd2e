"""Query AST: frozen nodes compared by structure. Parameters hold their values; the planner lifts them out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar

import attrs

__all__ = (
    "And",
    "Arith",
    "Compare",
    "Expr",
    "FieldRef",
    "Filter",
    "Fragment",
    "Func",
    "In",
    "IsNil",
    "Join",
    "Like",
    "Neg",
    "Not",
    "Or",
    "OrderBy",
    "Param",
    "Query",
    "SelectFields",
    "Shape",
    "Source",
    "SourceRef",
    "TypeCast",
)

_T = TypeVar("_T")


@attrs.frozen
class Source:
    """What a query reads from: a table, optionally mapped onto a schema."""

    table: str
    schema: type | None = None
    prefix: str | None = None


@attrs.frozen
class FieldRef:
    """``binding.name``: a field of the ``binding``-th source (0 is the ``from``, then joins in order)."""

    binding: int
    name: str


@attrs.frozen
class SourceRef:
    """A whole source (``lambda p: p`` in a select): its struct."""

    binding: int


@attrs.frozen
class SelectFields:
    """Some fields of a source as a struct (``select(["id", "title"])``); the others keep their defaults."""

    binding: int
    fields: tuple[str, ...]


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


@attrs.frozen
class Or:
    """Any of ``args`` (SQL ``OR``)."""

    args: tuple[Expr, ...]


@attrs.frozen
class Not:
    arg: Expr


@attrs.frozen
class Arith:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


@attrs.frozen
class Neg:
    arg: Expr


@attrs.frozen
class In:
    """``left IN right`` where right is a list parameter (``= ANY($n)``) or an array field."""

    left: Expr
    right: Expr


@attrs.frozen
class Like:
    op: Literal["like", "ilike"]
    left: Expr
    right: Expr


@attrs.frozen
class Fragment:
    """Raw SQL with ``?`` placeholders filled by ``args`` (each an expression or a parameter)."""

    parts: tuple[str, ...]
    args: tuple[Expr, ...]


@attrs.frozen
class Func:
    """A SQL function or aggregate: ``count``, ``sum``, ``avg``, ``min``, ``max``, ``coalesce``.

    :ivar distinct: ``count(x, distinct=True)``; :ivar star: ``count()`` (``count(*)``)
    """

    name: str
    args: tuple[Expr, ...]
    distinct: bool = False
    star: bool = False


@attrs.frozen
class TypeCast:
    """``type_(expr, T)``: the expression's type, for casting its parameters and loading its value."""

    arg: Expr
    type: Any


Expr = (
    FieldRef
    | SourceRef
    | SelectFields
    | Param
    | Compare
    | IsNil
    | And
    | Or
    | Not
    | Arith
    | Neg
    | In
    | Like
    | Fragment
    | Func
    | TypeCast
)


@attrs.frozen
class Shape:
    """A select's result shape: ``kind`` is ``"tuple"``, ``"list"`` or ``"dict"`` (``keys`` set)."""

    kind: Literal["tuple", "list", "dict"]
    items: tuple[Any, ...]
    keys: tuple[str, ...] = ()


@attrs.frozen
class Filter:
    """One ``where``/``having`` (``op="and"``) or ``or_where``/``or_having`` (``op="or"``) clause."""

    op: Literal["and", "or"]
    expr: Expr


@attrs.frozen
class OrderBy:
    """A sort key; direction is ``asc``/``desc`` with optional ``_nulls_first``/``_nulls_last``."""

    direction: str
    expr: Expr


@attrs.frozen
class Join:
    """``kind`` is inner, left, right, full or cross; ``on`` is ``None`` for cross joins."""

    kind: str
    source: Source
    on: Expr | None
    name: str | None = None


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
    joins: tuple[Join, ...] = ()
    aliases: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    select: Any = None
    group_bys: tuple[Expr, ...] = ()
    havings: tuple[Filter, ...] = ()
    distinct: tuple[OrderBy, ...] | bool = False
    lock: str | None = None
    updates: tuple[tuple[str, str, Expr], ...] = ()

    def __or__(self, step: Callable[[Query[_T]], Query[_T]]) -> Query[_T]:
        return step(self)

    def __repr__(self) -> str:
        from ._inspect import render

        return f"Query<{render(self)}>"

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every source in binding order: the ``from``, then each join."""
        return (self.source, *(j.source for j in self.joins))
