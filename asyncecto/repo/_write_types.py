"""What a write hands down to its associations: the forced prefix, the stale options, and the
recursive tree writes (``_write`` passes them in, so ``_assoc_write`` never imports ``_write``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

__all__ = ("Forced", "Stale", "TreeWrites", "Upsert")


class Forced(str):
    """A call's ``prefix=``, handed down to associations: it beats their own struct's prefix (Ecto)."""

    __slots__ = ()


@attrs.frozen
class Stale:
    """What a write does when no row matched: return as is, raise ``StaleEntryError``, or
    raise ``InvalidChangesetError`` with an error on ``field`` (from the call or the
    changeset's ``repo_opts``).
    """

    allow: bool = False
    field: str | None = None
    message: str = "is stale"


@attrs.frozen
class TreeWrites:
    """The write path's ``insert_tree``, ``update_tree``, ``delete_tree`` and ``prepared_or_raise``,
    which writing a child changeset calls (a child may have associations of its own)."""

    insert: Callable[..., Awaitable[Any]]
    update: Callable[..., Awaitable[Any]]
    delete: Callable[..., Awaitable[Any]]
    prepared_or_raise: Callable[..., Awaitable[Any]]


@attrs.frozen
class Upsert:
    """``insert``'s ``on_conflict``/``conflict_target``, and what to do when a conflict query matched nothing."""

    on_conflict: Any = "raise"
    conflict_target: Any = None
    stale: Stale = attrs.field(factory=lambda: Stale())
