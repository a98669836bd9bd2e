"""The :class:`Query` value: a frozen, composable, inspectable query; ``q | step`` applies a step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._ast import Expr, Filter, Fragment, Join, OrderBy, Over, Param, Source
from ._inspect import render

_T = TypeVar("_T")

__all__ = ("Query",)


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
    lock: str | Fragment | None = None
    updates: tuple[tuple[str, str, Expr], ...] = ()
    with_ties: bool = False
    combinations: tuple[tuple[str, Any], ...] = ()
    preloads: tuple[Any, ...] = ()
    windows: tuple[tuple[str, Over], ...] = ()
    ctes: tuple[tuple[str, Any], ...] = ()
    recursive_ctes: bool = False
    #: ``(name, materialized, operation)`` of the CTEs whose ``with_cte`` gave either (others: ``None``, ``"all"``)
    cte_modes: tuple[tuple[str, bool | None, str], ...] = ()
    prefix: str | None = None  # put_query_prefix: under from_/join and schema prefixes, replaced by a call's

    def __or__(self, step: Callable[[Query[_T]], Query[_T]]) -> Query[_T]:
        return step(self)

    def __repr__(self) -> str:
        return f"Query<{render(self)}>"

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every source in binding order: the ``from``, then each join."""
        return (self.source, *(j.source for j in self.joins))
