"""The params of a relation for ``cast_assoc``/``cast_embed``: Ecto's ``sort_param`` and
``drop_param`` (lists of entry indexes that reorder and drop entries), and the ``with_``
function's position argument."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asyncecto.errors import ArgumentError

from ._changeset import Changeset, positional_arity

__all__ = ("With", "WithPosition", "relation_params", "with_position")

With = Callable[..., Changeset[Any]]
"""``with_(struct, params)``, or ``with_(struct, params, position)``: the entry's index (``None`` for one)."""
WithPosition = Callable[[Any, Mapping[str, Any], int | None], Changeset[Any]]


def with_position(fn: With) -> WithPosition:
    """``fn`` as a function of ``(struct, params, position)``, whether it takes the position or not."""
    if positional_arity(fn, 2) >= 3:
        return fn
    return lambda struct, params, _position: fn(struct, params)


def _index(key: Any) -> tuple[int, Any]:
    try:
        return 0, int(key)
    except (TypeError, ValueError):
        return 1, str(key)


def relation_params(
    params: Mapping[str, Any], name: str, many: bool, fn: str, sort_param: str | None, drop_param: str | None
) -> tuple[bool, Any]:
    """``(given, value)``: whether ``params`` speak of relation ``name``, and its params.

    A "many" relation's entries given as ``{"0": {...}, "1": {...}}`` (or a list) are ordered by
    ``params[sort_param]`` (listed indexes first, in that order; an unknown index is a new, empty
    entry; the others follow by index) without those listed in ``params[drop_param]``.
    """
    if not many:
        for option, given in (("sort_param", sort_param), ("drop_param", drop_param)):
            if given is not None:
                raise ArgumentError(
                    f"{fn}: {option} is not supported for {name!r}, a one relation (belongs_to/has_one/embeds_one); "
                    "it orders and drops the entries of a many relation"
                )
    sort = params.get(sort_param) if sort_param is not None else None
    drop = params.get(drop_param) if drop_param is not None else None
    sort = list(sort) if isinstance(sort, list | tuple) else None
    drop = list(drop) if isinstance(drop, list | tuple) else None
    if sort is None and drop is None:
        return name in params, params.get(name)
    value = params.get(name)
    if value is None:
        value = {}
    if isinstance(value, list | tuple):
        value = {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, Mapping):
        return True, value
    pending = {str(k): v for k, v in value.items()}
    dropped = {str(i) for i in drop or ()}
    ordered = [pending.pop(k, {}) for k in dict.fromkeys(str(i) for i in sort or ()) if k not in dropped]
    rest = sorted(((k, v) for k, v in pending.items() if k not in dropped), key=lambda kv: _index(kv[0]))
    return True, ordered + [v for _, v in rest]
