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

from ._cast import _start
from ._changeset import Changeset, Step, dual_step
from ._relations import _put_change, applied

__all__ = ("apply_action", "apply_changes", "change", "merge", "update_change")

_T = TypeVar("_T")


@overload
def change(data: Changeset[_T], changes: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Changeset[_T]: ...
@overload
def change(
    data: tuple[dict[str, Any], Mapping[str, Any]], changes: Mapping[str, Any] | None = None, /, **kwargs: Any
) -> Changeset[dict[str, Any]]: ...
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

    Schemaless, as with :func:`cast`: a ``(data, types)`` pair (a dict and field types).

    >>> change(({"n": 1}, {"n": "integer", "s": "string"}), n=2, s="x").changes
    {'n': 2, 's': 'x'}
    """
    given = {**(changes or {}), **kwargs}
    if isinstance(data, Changeset):
        cs: Changeset[Any] = data
    elif isinstance(data, tuple):
        if not (len(data) == 2 and isinstance(data[0], dict) and isinstance(data[1], Mapping)):
            raise ArgumentError(
                f"change expects a struct, a changeset or a (data, types) pair of a dict and a mapping of "
                f"field types, got {data!r}; e.g. change(({{}}, {{'title': 'string'}}), title='x')"
            )
        cs = _start(data)
    else:
        struct_info(data, "build a changeset")
        cs = Changeset(data=data)
    if not given:
        return cs
    if isinstance(cs.data, dict):  # schemaless: the changeset's types, no associations
        for name, value in given.items():
            cs = _put_change(cs, name, value)
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
        cs = _put_change(cs, name, value)
    return cs


@overload
def update_change(cs: Changeset[_T], name: str, fn: Callable[[Any], Any], /) -> Changeset[_T]: ...
@overload
def update_change(name: str, fn: Callable[[Any], Any], /) -> Step: ...
def update_change(*args: Any) -> Any:
    """Replace the change to ``name`` by ``fn(change)`` (as :func:`put_change`); nothing without a change.

    ``update_change(cs, "email", str.lower)`` or ``cs | update_change("email", str.lower)``.
    """
    return dual_step(_update_change, args, {})


def _update_change(cs: Changeset[_T], name: str, fn: Callable[[Any], Any]) -> Changeset[_T]:
    if name not in cs.changes:
        return cs
    return _put_change(cs, name, fn(cs.changes[name]))


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


def _identical(left: Any, right: Any, what: str) -> Any:
    if left is None or left == right:
        return right
    if right is None:
        return left
    raise ArgumentError(f"different {what} ({left!r} and {right!r}) when merging changesets")


def _uniq(items: tuple[Any, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return tuple(out)


def merge(cs1: Changeset[_T], cs2: Changeset[_T], /) -> Changeset[_T]:
    """Both changesets as one: params and changes merged (``cs2``'s win), errors, validations,
    constraints, required fields and ``prepare_changes`` functions of both; valid when both are.

    They must be changesets of the same ``data``; their repos and actions must agree when set.
    Not a pipe step (its pipe form would take a changeset first too): ``merge(cs1, cs2)``.
    """
    if not isinstance(cs1, Changeset) or not isinstance(cs2, Changeset):
        raise ArgumentError(f"merge expects two changesets, got {cs1!r} and {cs2!r}")
    if cs1.data is not cs2.data and cs1.data != cs2.data:
        raise ArgumentError("different :data when merging changesets")
    params = None if cs1.params is None and cs2.params is None else {**(cs1.params or {}), **(cs2.params or {})}
    return attrs.evolve(
        cs1,
        repo=_identical(cs1.repo, cs2.repo, "repos"),
        repo_opts={**cs1.repo_opts, **cs2.repo_opts},
        action=_identical(cs1.action, cs2.action, "actions"),
        filters={**cs1.filters, **cs2.filters},
        validations=(*cs1.validations, *cs2.validations),
        constraints=(*cs1.constraints, *cs2.constraints),
        prepare=(*cs1.prepare, *cs2.prepare),
        params=params,
        changes={**cs1.changes, **cs2.changes},
        errors=_uniq((*cs1.errors, *cs2.errors)),
        required=tuple(dict.fromkeys((*cs1.required, *cs2.required))),
        types=cs1.types if cs1.types is not None else cs2.types,
        valid=cs1.valid and cs2.valid,
    )
