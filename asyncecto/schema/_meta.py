"""Struct metadata: state (built/loaded/deleted), source and prefix."""

from __future__ import annotations

from typing import Any, Literal

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
    :ivar inserted: after an insert, whether it added the row (``False`` when an upsert found a
        conflicting row and updated or kept it); ``None`` on structs that were not just inserted
    :ivar context: any value the schema's ``context=`` gave (Ecto's ``@schema_context``), kept
        by the Repo on loaded structs; change it with ``put_meta(s, context=...)``
    """

    state: State
    source: str
    prefix: str | None = None
    inserted: bool | None = attrs.field(default=None, eq=False)
    context: Any = None

    def __repr__(self) -> str:
        where = f"{self.prefix}.{self.source}" if self.prefix else self.source
        flag = "" if self.inserted is None else f", inserted={self.inserted}"
        if self.context is not None:
            flag += f", context={self.context!r}"
        return f"Meta<{self.state}, {where!r}{flag}>"
