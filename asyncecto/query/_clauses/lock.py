"""``lock``: a row lock clause, checked against the forms PostgreSQL accepts."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError

from .._ast import Fragment
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("lock",)


_LOCK = re.compile(
    r"FOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)"
    r'( OF ("[^"]+"|\w+)(, ?("[^"]+"|\w+))*)?'
    r"( NOWAIT| SKIP LOCKED)?",
    re.IGNORECASE,
)


def lock(clause: Any, /) -> Step[Any]:
    """A row lock (the last ``lock`` wins): ``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE`` or
    ``FOR KEY SHARE``, optionally ``OF`` aliases and ``NOWAIT`` or ``SKIP LOCKED``.

    A ``fragment("FOR SHARE NOWAIT")`` (Ecto's ``lock: fragment(...)``) is written as is, unchecked;
    it takes no ``?`` arguments.
    """
    frag = getattr(clause, "node", None)
    if isinstance(frag, Fragment):
        if frag.args or not frag.parts[0].strip():
            raise QueryError(f"lock(fragment(...)) takes SQL text without ? arguments, got {clause!r}")
        text = frag.parts[0].strip()
        if "\x00" in text or ";" in text:
            raise QueryError(f"a lock fragment cannot hold a NUL or a ';': {text!r}")
        return lambda q: attrs.evolve(q, lock=text)
    if not isinstance(clause, str) or not _LOCK.fullmatch(clause.strip()):
        raise QueryError(
            f"lock() expects SQL for a row lock such as 'FOR UPDATE' or 'FOR SHARE SKIP LOCKED', got {clause!r}"
        )
    return lambda q: attrs.evolve(q, lock=clause.strip())
