"""What a changeset asks of the Repo's write: ``optimistic_lock`` (a version filter and its next
value) and ``prepare_changes`` (a function run in the write's transaction, before the write).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import attrs

from asyncecto.errors import ArgumentError

from ._cast import _known
from ._change import change
from ._changeset import Changeset, Step, dual_step

__all__ = ("optimistic_lock", "prepare_changes")

_T = TypeVar("_T")


def _increment(value: int) -> int:
    return 1 if value >= 2_147_483_647 else value + 1


@overload
def optimistic_lock(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def optimistic_lock(struct: _T, field: str, /, *, incrementer: Callable[[Any], Any] | None = ...) -> Changeset[_T]: ...
@overload
def optimistic_lock(*args: Any, **kwargs: Any) -> Step: ...
def optimistic_lock(*args: Any, **kwargs: Any) -> Any:
    """Optimistic locking on an integer version ``field``: the update (or delete) matches only the row
    still at the struct's version, and writes the next one; a stale struct raises ``StaleEntryError``.

    ``optimistic_lock(cs_or_struct, "lock_version", incrementer=None)`` (default: +1, wrapping to 1).
    """
    if args and not isinstance(args[0], Changeset) and not isinstance(args[0], str):
        args = (change(args[0]), *args[1:])
    return dual_step(_optimistic_lock, args, kwargs)


def _optimistic_lock(
    cs: Changeset[Any], field: str, *, incrementer: Callable[[Any], Any] | None = None
) -> Changeset[Any]:
    _known(cs, field)
    current = getattr(cs.data, field)
    bump = incrementer or _increment
    filters = dict(cs.filters)
    if current is not None:
        filters[field] = current

    def write_next(c: Changeset[Any]) -> Changeset[Any]:
        return attrs.evolve(c, changes={**c.changes, field: bump(current if current is not None else 0)})

    return attrs.evolve(cs, filters=filters, prepare=(*cs.prepare, write_next))


@overload
def prepare_changes(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def prepare_changes(*args: Any, **kwargs: Any) -> Step: ...
def prepare_changes(*args: Any, **kwargs: Any) -> Any:
    """Run ``fn(changeset)`` inside the write's transaction, just before it, when the changeset is valid.

    ``fn`` returns the changeset to write (it may be async and use ``changeset.repo``).
    """
    return dual_step(_prepare, args, kwargs)


def _prepare(
    cs: Changeset[Any], fn: Callable[[Changeset[Any]], Changeset[Any] | Awaitable[Changeset[Any]]]
) -> Changeset[Any]:
    if not callable(fn):
        raise ArgumentError(f"prepare_changes expects a function of the changeset, got {fn!r}")
    return attrs.evolve(cs, prepare=(*cs.prepare, fn))  # type: ignore[arg-type]
