"""``exclude``: removing clauses; ``used_clauses``: which a query has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("exclude", "used_clauses")


_EXCLUDABLE = {
    "where": ("wheres", ()),
    "order_by": ("order_bys", ()),
    "group_by": ("group_bys", ()),
    "having": ("havings", ()),
    "select": ("select", None),
    "distinct": ("distinct", False),
    "limit": ("limit", None),
    "offset": ("offset", None),
    "lock": ("lock", None),
    "update": ("updates", ()),
    "combinations": ("combinations", ()),
    "windows": ("windows", ()),
    "with_ctes": ("ctes", ()),
    "preload": ("preloads", ()),
}


def used_clauses(q: Query[Any], names: Sequence[str]) -> list[str]:
    """Which of the clauses ``names`` (``exclude()``'s names, and ``"join"``) ``q`` has, in that order.

    >>> from asyncecto import schema
    >>> from asyncecto.query import from_, limit
    >>> @schema("notes")
    ... class Note:
    ...     text: str | None = None
    >>> used_clauses(from_(Note) | limit(1), ["join", "limit", "order_by"])
    ['limit']
    """
    used = []
    for name in names:
        if name == "join":
            present = bool(q.joins)
        else:
            attr, empty = _EXCLUDABLE[name]
            value = getattr(q, attr)
            # identity for None/False: a select may be an expression whose == builds SQL
            present = value is not empty if empty is None or empty is False else bool(value)
        if present:
            used.append(name)
    return used


def exclude(*clauses: str) -> Step[Any]:
    """Remove clauses: ``exclude("order_by", "limit")``; ``"join"`` removes every join and its alias."""
    for c in clauses:
        if c not in _EXCLUDABLE and c != "join":
            raise QueryError(f"cannot exclude {c!r}; use one of {', '.join([*_EXCLUDABLE, 'join'])}")

    def step(q: Query[_T]) -> Query[_T]:
        changes: dict[str, Any] = {}
        for c in clauses:
            if c == "join":
                changes["joins"] = ()
                changes["aliases"] = {k: v for k, v in q.aliases.items() if v == 0}
            else:
                attr, empty = _EXCLUDABLE[c]
                changes[attr] = empty
        return attrs.evolve(q, **changes)

    return step
