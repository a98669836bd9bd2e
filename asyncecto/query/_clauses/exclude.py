"""``exclude``: removing clauses; ``used_clauses``: which a query has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .._query import Query
from .._sources import Step
from .join import KIND_NAMES  # the names removing only the joins of one kind (Ecto's exclude(q, :left_join))

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


def _drop_joins(q: Query[_T], kinds: set[str] | None, name: str) -> Query[_T]:
    """``q`` without its joins of ``kinds`` (all if ``None``) and their names. Expressions refer to
    bindings by position, so a kept join may not come after a dropped one."""
    dropped = [i for i, j in enumerate(q.joins, 1) if kinds is None or j.kind in kinds]
    if dropped and dropped != list(range(dropped[0], len(q.joins) + 1)):
        after = next(i for i in range(dropped[0], len(q.joins) + 1) if i not in dropped)
        raise QueryError(
            f"cannot exclude {name} from {q!r}: the {q.joins[after - 1].kind} join after it (binding {after}) "
            "would change position; only joins at the end can be excluded (rebuild the query instead)"
        )
    keep = len(q.joins) - len(dropped)
    aliases = {k: v for k, v in q.aliases.items() if v <= keep}
    return attrs.evolve(q, joins=q.joins[:keep], aliases=aliases)


def _window_names(item: tuple[Any, ...]) -> frozenset[str]:
    """The names of ``("windows", names)`` (Ecto's ``{:windows, names}``), checked."""
    names = item[1] if len(item) == 2 else None
    if item[:1] != ("windows",) or isinstance(names, str) or not isinstance(names, Sequence | frozenset | set):
        raise QueryError(
            f"cannot exclude {item!r}; the tuple form is ('windows', names), e.g. exclude(('windows', ['w']))"
        )
    for n in names:
        if not isinstance(n, str):
            raise QueryError(f"exclude(('windows', names)): window names are strings, got {n!r} in {item!r}")
    return frozenset(names)


def exclude(*clauses: str | tuple[str, Sequence[str]]) -> Step[Any]:
    """Remove clauses: ``exclude("order_by", "limit")``; ``"join"`` removes every join and its alias,
    ``"left_join"`` (and the other ``<kind>_join`` names) only the joins of that kind;
    ``("windows", ["w1"])`` only the named windows given (Ecto's ``{:windows, names}``; names the query
    does not define are ignored, as Ecto does).
    """
    known = [*_EXCLUDABLE, "join", *KIND_NAMES]
    some_windows: set[str] = set()
    for c in clauses:
        if isinstance(c, tuple):
            some_windows |= _window_names(c)
        elif c not in known:
            raise QueryError(f"cannot exclude {c!r}; use one of {', '.join(known)} or ('windows', names)")
    plain = [c for c in clauses if isinstance(c, str)]

    def step(q: Query[_T]) -> Query[_T]:
        changes: dict[str, Any] = {}
        if some_windows:
            changes["windows"] = tuple((n, w) for n, w in q.windows if n not in some_windows)
        joins = [c for c in plain if c == "join" or c in KIND_NAMES]
        if joins:
            kinds = None if "join" in joins else {KIND_NAMES[c] for c in joins}
            q = _drop_joins(q, kinds, ", ".join(joins))
        for c in plain:
            if c in _EXCLUDABLE:
                attr, empty = _EXCLUDABLE[c]
                changes[attr] = empty
        if "with_ctes" in plain:  # their materialized/operation options go with them
            changes["cte_modes"] = ()
        return attrs.evolve(q, **changes)

    return step
