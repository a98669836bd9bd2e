"""Changing a changeset directly, with internal data (no casting): ``change``, ``update_change``,
and applying the changes (``apply_changes``, ``apply_action``). ``put_change`` is in ``_relations``
(an embed or association field is put by the relation rules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError, InvalidChangesetError
from asyncecto.schema import replace, schema_info
from asyncecto.schema._embeds import EmbedMany, EmbedOne
from asyncecto.schema._info import struct_info

from ._changeset import Changeset
from ._relations import applied, put_change

__all__ = ("apply_action", "apply_changes", "change", "update_change")

_T = TypeVar("_T")


@overload
def change(data: Changeset[_T], changes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Changeset[_T]: ...
@overload
def change(data: _T, changes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Changeset[_T]: ...
def change(data: Any, changes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Changeset[Any]:
    """A changeset of internal data: no casting, no validation.

    Only values that differ from the struct's current ones become changes.

    >>> from asyncecto import schema
    >>> from asyncecto.changeset import change
    >>> @schema("weather")
    ... class Weather:
    ...     temp_lo: int | None = None
    >>> change(Weather(temp_lo=1), {"temp_lo": 5}).changes
    {'temp_lo': 5}
    >>> change(Weather(temp_lo=1), temp_lo=1).changes
    {}
    """
    given = {**(changes or {}), **kwargs}
    if isinstance(data, Changeset):
        cs: Changeset[Any] = data
    else:
        struct_info(data, "build a changeset")
        cs = Changeset(data=data)
    if not given:
        return cs
    info = schema_info(cs.data)
    merged = dict(cs.changes)
    embeds: dict[str, Any] = {}
    assocs: dict[str, Any] = {}
    for name, value in given.items():
        if name in info.associations:  # an association: put_assoc's rules
            assocs[name] = value
            continue
        if name not in info.fields:
            raise ArgumentError(f"unknown field {name!r} in {info.name}; known fields: {', '.join(info.fields)}")
        typ = info.fields[name].type
        if isinstance(typ, EmbedOne | EmbedMany):  # an embed: put_embed's rules
            embeds[name] = value
            continue
        current = getattr(cs.data, name)
        if t.equal(typ, current, value):
            merged.pop(name, None)
        else:
            merged[name] = value
    cs = attrs.evolve(cs, changes=merged)
    for name, value in {**embeds, **assocs}.items():  # put_embed's and put_assoc's rules
        cs = put_change(cs, name, value)
    return cs


def update_change(cs: Changeset[_T], name: str, fn: Callable[[Any], Any]) -> Changeset[_T]:
    """Replace the change to ``name`` by ``fn(change)`` (as :func:`put_change`); nothing without a change."""
    if name not in cs.changes:
        return cs
    return put_change(cs, name, fn(cs.changes[name]))


def apply_changes(cs: Changeset[_T]) -> _T:
    """The data with the changes applied, whether or not the changeset is valid."""
    changes = {k: applied(v) for k, v in cs.changes.items()}
    if isinstance(cs.data, dict):
        return {**cs.data, **changes}  # type: ignore[return-value]
    return replace(cs.data, **changes)


def apply_action(cs: Changeset[_T], action: str) -> _T:
    """The changes applied, when valid; otherwise ``InvalidChangesetError`` with ``action`` set.

    For validating input that is never written (a search form, say).
    """
    if not isinstance(action, str):
        raise ArgumentError(f"apply_action expects the action's name, got {action!r}")
    if not cs.valid:
        raise InvalidChangesetError(action, attrs.evolve(cs, action=action))
    return apply_changes(cs)
