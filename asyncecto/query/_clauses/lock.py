"""``lock``: a row lock clause, checked against the forms PostgreSQL accepts."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .. import _expr
from .._ast import Fragment, SourceRef
from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("lock",)


_LOCK = re.compile(
    r"FOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)"
    r'( OF ("[^"]+"|\w+)(, ?("[^"]+"|\w+))*)?'
    r"( NOWAIT| SKIP LOCKED)?",
    re.IGNORECASE,
)


def _fragment_lock(clause: Any, q: Query[Any] | None) -> str | Fragment:
    """A lock fragment checked: SQL text, its arguments whole sources; plain text when it has none."""
    frag = getattr(clause, "node", None)
    where = f" in {q!r}" if q is not None else ""
    if not isinstance(frag, Fragment):
        raise QueryError(f"lock(fn) expects fn to return a fragment(...), got {clause!r}{where}")
    if not "".join(frag.parts).strip():
        raise QueryError(f"lock(fragment(...)) needs SQL text, got {clause!r}")
    if any("\x00" in part or ";" in part for part in frag.parts):
        raise QueryError(f"a lock fragment cannot hold a NUL or a ';': {clause!r}")
    for arg in frag.args:
        if not isinstance(arg, SourceRef):
            raise QueryError(
                f"a lock fragment's ? arguments must be sources (lambda p: fragment('FOR UPDATE OF ?', p)), "
                f"got {arg!r}{where}; PostgreSQL takes no parameters in a lock clause"
            )
    if not frag.args:
        return frag.parts[0].strip()
    return frag


def lock(clause: Any, /) -> Step[Any]:
    """A row lock (the last ``lock`` wins): ``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE`` or
    ``FOR KEY SHARE``, optionally ``OF`` aliases and ``NOWAIT`` or ``SKIP LOCKED``.

    A ``fragment("FOR SHARE NOWAIT")`` (Ecto's ``lock: fragment(...)``) is written as is, unchecked.
    Its ``?`` arguments are sources, written as their table aliases, so the fragment comes from a
    function of the bindings: ``lock(lambda p, c: fragment("FOR UPDATE OF ? SKIP LOCKED", c))``.
    """
    if callable(clause) and not isinstance(clause, str) and not hasattr(clause, "node"):
        fn = clause

        def step(q: Query[_T]) -> Query[_T]:
            return attrs.evolve(q, lock=_fragment_lock(_expr.apply(q, fn, "lock"), q))

        return step
    if isinstance(getattr(clause, "node", None), Fragment):
        frag = _fragment_lock(clause, None)
        return lambda q: attrs.evolve(q, lock=frag)
    if not isinstance(clause, str) or not _LOCK.fullmatch(clause.strip()):
        raise QueryError(
            f"lock() expects SQL for a row lock such as 'FOR UPDATE' or 'FOR SHARE SKIP LOCKED', got {clause!r}"
        )
    return lambda q: attrs.evolve(q, lock=clause.strip())
