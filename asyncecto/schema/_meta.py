"""Struct metadata: state (built/loaded/deleted), source and prefix."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ("STATES", "Meta", "State")

State = Literal["built", "loaded", "deleted"]
STATES: tuple[State, ...] = ("built", "loaded", "deleted")


@attrs.frozen
class Meta:
    """What a struct knows about where it lives (Ecto's ``__meta__``).

    :ivar state: ``"built"`` (not yet inserted), ``"loaded"`` (read from or written to
        the database) or ``"deleted"``
    :ivar source: the table
    :ivar prefix: the PostgreSQL schema, or ``None`` for the search path
    """

    state: State
    source: str
    prefix: str | None = None

    def __repr__(self) -> str:
        where = f"{self.prefix}.{self.source}" if self.prefix else self.source
        return f"Meta<{self.state}, {where!r}>"
