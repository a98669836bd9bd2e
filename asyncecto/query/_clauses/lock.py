"""``lock``: a row lock clause, checked against the forms PostgreSQL accepts."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .._sources import Step

_T = TypeVar("_T")

__all__ = ("lock",)


_LOCK = re.compile(
    r"FOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)"
    r'( OF ("[^"]+"|\w+)(, ?("[^"]+"|\w+))*)?'
    r"( NOWAIT| SKIP LOCKED)?",
    re.IGNORECASE,
)


def lock(clause: str, /) -> Step[Any]:
    """A row lock (the last ``lock`` wins): ``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE`` or
    ``FOR KEY SHARE``, optionally ``OF`` aliases and ``NOWAIT`` or ``SKIP LOCKED``.
    """
    if not isinstance(clause, str) or not _LOCK.fullmatch(clause.strip()):
        raise QueryError(
            f"lock() expects SQL for a row lock such as 'FOR UPDATE' or 'FOR SHARE SKIP LOCKED', got {clause!r}"
        )
    return lambda q: attrs.evolve(q, lock=clause.strip())
