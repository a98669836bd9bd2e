"""``cast`` (outside input into changes) and the functions that read and write a changeset."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar, overload

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError, CastError
from asyncecto.schema import schema_info
from asyncecto.schema._embeds import EmbedMany, EmbedOne
from asyncecto.schema._info import struct_info

from ._changeset import Changeset, Step, dual_step

__all__ = (
    "add_error",
    "cast",
    "changed",
    "delete_change",
    "empty_values",
    "fetch_change",
    "fetch_field",
    "field_missing",
    "force_change",
    "get_change",
    "get_field",
)

_T = TypeVar("_T")
_MISSING: Any = object()


def _start(data: Any) -> Changeset[Any]:
    """A changeset for a struct, a ``(data, types)`` pair (schemaless), or a changeset itself."""
    if isinstance(data, Changeset):
        return data
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], dict) and isinstance(data[1], Mapping):
        types = {k: t.resolve(v) for k, v in data[1].items()}
        return Changeset(data=dict(data[0]), types=types)
    struct_info(data, "build a changeset")
    return Changeset(data=data)


def _default(cs: Changeset[Any], name: str) -> Any:
    if isinstance(cs.data, dict):
        return None
    f = schema_info(cs.data).fields[name]
    return f.default_factory() if f.default_factory is not None else f.default


def _original(cs: Changeset[Any], name: str) -> Any:
    """The data's value of ``name`` (a struct field or a schemaless key), ignoring changes."""
    return cs.data.get(name) if isinstance(cs.data, dict) else getattr(cs.data, name)


def _current(cs: Changeset[Any], name: str) -> Any:
    if name in cs.changes:
        return cs.changes[name]
    return _original(cs, name)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


_EMPTY_VALUES: tuple[Any, ...] = ("",)


def empty_values() -> list[Any]:
    """The values ``cast`` treats as empty by default (Ecto's ``empty_values/0``): ``[""]``.

    Extend it rather than repeat it: ``cast(s, params, ["a"], empty_values=[*empty_values(), "n/a"])``.

    >>> empty_values()
    ['']
    """
    return list(_EMPTY_VALUES)


def trim_leading(value: Any) -> Any:
    """``cast``'s default ``trim_values``: a string without its leading whitespace (Ecto's ``Ecto.Type.trim``)."""
    return value.lstrip() if isinstance(value, str) else value


def _empty(value: Any, empty_values: tuple[Any, ...], trim: Callable[[Any], Any] = _strip) -> bool:
    probe = trim(value)
    return any(probe == e and type(probe) is type(e) for e in empty_values)


@overload
def cast(
    data: Changeset[_T],
    params: Any,
    permitted: Iterable[str],
    /,
    *,
    empty_values: Iterable[Any] | None = None,
    trim_values: Callable[[Any], Any] | None = None,
    force_changes: bool = False,
    message: Callable[[str, Mapping[str, Any]], str | None] | None = None,
) -> Changeset[_T]: ...
@overload
def cast(
    data: tuple[dict[str, Any], Mapping[str, Any]],
    params: Any,
    permitted: Iterable[str],
    /,
    *,
    empty_values: Iterable[Any] | None = None,
    trim_values: Callable[[Any], Any] | None = None,
    force_changes: bool = False,
    message: Callable[[str, Mapping[str, Any]], str | None] | None = None,
) -> Changeset[dict[str, Any]]: ...
@overload
def cast(
    data: _T,
    params: Any,
    permitted: Iterable[str],
    /,
    *,
    empty_values: Iterable[Any] | None = None,
    trim_values: Callable[[Any], Any] | None = None,
    force_changes: bool = False,
    message: Callable[[str, Mapping[str, Any]], str | None] | None = None,
) -> Changeset[_T]: ...
def cast(
    data: Any,
    params: Any,
    permitted: Iterable[str],
    /,
    *,
    empty_values: Iterable[Any] | None = None,
    trim_values: Callable[[Any], Any] | None = None,
    force_changes: bool = False,
    message: Callable[[str, Mapping[str, Any]], str | None] | None = None,
) -> Changeset[Any]:
    """Cast outside ``params`` into changes for the ``permitted`` fields.

    Each permitted key present in ``params`` is checked for emptiness (one of ``empty_values``,
    ``[""]`` by default, once ``trim_values`` has trimmed it: leading whitespace by default, so
    ``"  "`` is empty; an empty value becomes the field's default; the value kept is not trimmed),
    cast to the field's type
    (an error ``"is invalid"`` when it cannot be; for a value PostgreSQL cannot store, such as
    a string holding a NUL character, its metadata also has the ``"reason"``), and recorded as a change when it
    differs from the current value. ``data`` is a struct, a changeset (params merge,
    new ones win) or a ``(dict, types)`` pair for schemaless data.

    >>> from asyncecto import schema
    >>> @schema("users")
    ... class User:
    ...     name: str | None = None
    ...     age: int | None = None
    >>> cs = cast(User(), {"name": "Ada", "age": "36", "admin": "yes"}, ["name", "age"])
    >>> cs.changes, cs.valid
    ({'name': 'Ada', 'age': 36}, True)
    >>> cast(User(), {"age": "old"}, ["age"]).errors
    (('age', ('is invalid', {'type': 'integer', 'validation': 'cast'})),)
    """
    cs = _start(data)
    if not isinstance(params, Mapping):
        raise CastError(value=params, type="map", reason="expected params to be a mapping of field names to values")
    if params and not all(isinstance(k, str) for k in params):
        raise CastError(value=params, type="map", reason="expected params to have string keys")
    types = cs.field_types()
    empties = tuple(empty_values) if empty_values is not None else cs.empty_values
    if empty_values is not None and any(callable(e) for e in empties):
        raise ArgumentError(
            f"cast expects empty_values to be values, got a function in {list(empties)!r}; "
            "fix: give trim_values=fn to change how values are trimmed before the emptiness test"
        )
    trim: Callable[[Any], Any] = trim_values if trim_values is not None else trim_leading
    if not callable(trim):
        raise ArgumentError(f"cast expects trim_values to be a function of the value, got {trim!r}")
    changes = dict(cs.changes)
    errors = list(cs.errors)
    for name in permitted:
        typ = types.get(name)
        if typ is None:
            raise ArgumentError(
                f"unknown field {name!r} given to cast. Either the field does not exist or it is an association "
                f"(cast those with cast_assoc). The known fields are: {', '.join(types)}"
            )
        if isinstance(typ, EmbedOne | EmbedMany):
            raise ArgumentError(
                f"casting embeds with cast() is not supported for field {name!r}; "
                f"use cast_embed(cs, {name!r}) after cast() instead"
            )
        if name not in params:
            continue
        value = params[name]
        if trim_values is None:  # Ecto.Type.trim: leading whitespace, except for binary fields
            trim = partial(t.trim, typ)
        if isinstance(value, list) and isinstance(typ, t.Array):
            item_trim = trim if trim_values is not None else partial(t.trim, typ.of)
            value = [v for v in value if not _empty(v, empties, item_trim)]
        if _empty(value, empties, trim):
            value = _default(cs, name)
        try:
            value = t.cast_value(typ, value, field=name)
        except CastError as exc:
            meta = {"type": typ.name, "validation": "cast"}
            if isinstance(exc.__cause__, t.Unstorable):  # a value PostgreSQL cannot store: say why
                meta["reason"] = str(exc.__cause__)
            text = (message(name, meta) if message is not None else None) or "is invalid"
            errors.insert(0, (name, (text, meta)))
            changes.pop(name, None)
            continue
        original = _original(cs, name)
        if not force_changes and t.equal(typ, original, value):
            changes.pop(name, None)
        else:
            changes[name] = value
    merged_params = {**(cs.params or {}), **dict(params)}
    return attrs.evolve(
        cs,
        changes=changes,
        errors=tuple(errors),
        valid=cs.valid and len(errors) == len(cs.errors),
        params=merged_params,
        empty_values=empties,
    )


def _known(cs: Changeset[Any], name: str) -> Any:
    types = cs.field_types()
    if name not in types:
        raise ArgumentError(f"unknown field {name!r}; the known fields are: {', '.join(types)}")
    return types[name]


def get_field(cs: Changeset[Any], name: str, default: Any = None) -> Any:
    """The field's value: the change if there is one, else the data's (``default`` if that is ``None``)."""
    _known(cs, name)
    value = _current(cs, name)
    return default if value is None else value


def fetch_field(cs: Changeset[Any], name: str) -> tuple[str, Any]:
    """``("changes", value)`` or ``("data", value)``; an unknown field raises ``KeyError``."""
    if name not in cs.field_types():
        raise KeyError(name)
    if name in cs.changes:
        return "changes", cs.changes[name]
    return "data", _original(cs, name)


def get_change(cs: Changeset[Any], name: str, default: Any = None) -> Any:
    """The change to ``name``, or ``default`` when there is none."""
    return cs.changes.get(name, default)


def fetch_change(cs: Changeset[Any], name: str) -> Any:
    """The change to ``name``; ``KeyError`` when there is none."""
    return cs.changes[name]


@overload
def force_change(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]: ...
@overload
def force_change(name: str, value: Any, /) -> Step: ...
def force_change(*args: Any) -> Any:
    """Record ``value`` as a change even when it equals the data's.

    ``force_change(cs, "age", 31)`` or ``cs | force_change("age", 31)``.
    """
    return dual_step(_force_change, args, {})


def _force_change(cs: Changeset[_T], name: str, value: Any) -> Changeset[_T]:
    if isinstance(_known(cs, name), EmbedOne | EmbedMany):
        raise ArgumentError(f"force_change cannot change embed {name!r}; use put_embed(cs, {name!r}, value)")
    return attrs.evolve(cs, changes={**cs.changes, name: value})


@overload
def delete_change(cs: Changeset[_T], name: str, /) -> Changeset[_T]: ...
@overload
def delete_change(name: str, /) -> Step: ...
def delete_change(*args: Any) -> Any:
    """Drop the change to ``name``, if any: ``delete_change(cs, "age")`` or ``cs | delete_change("age")``."""
    return dual_step(_delete_change, args, {})


def _delete_change(cs: Changeset[_T], name: str) -> Changeset[_T]:
    return attrs.evolve(cs, changes={k: v for k, v in cs.changes.items() if k != name})


@overload
def add_error(cs: Changeset[_T], name: str, message: str, /, **keys: Any) -> Changeset[_T]: ...
@overload
def add_error(name: str, message: str, /, **keys: Any) -> Step: ...
def add_error(*args: Any, **keys: Any) -> Any:
    """Add an error (newest first) and mark the changeset invalid; ``%{key}`` in the message reads ``keys``.

    ``add_error(cs, "name", "is bad")`` or ``cs | add_error("name", "is bad", kind="x")``.
    """
    return dual_step(_add_error, args, keys)


def _add_error(cs: Changeset[_T], name: str, message: str, /, **keys: Any) -> Changeset[_T]:
    return attrs.evolve(cs, errors=((name, (message, dict(keys))), *cs.errors), valid=False)


def changed(cs: Changeset[Any], name: str, *, from_: Any = _MISSING, to: Any = _MISSING) -> bool:
    """Whether ``name`` has a change (optionally from a given data value, to a given new value)."""
    _known(cs, name)
    if name not in cs.changes:
        return False
    if to is not _MISSING and cs.changes[name] != to:
        return False
    original = _original(cs, name)
    return from_ is _MISSING or original == from_


def field_missing(cs: Changeset[Any], name: str) -> bool:
    """Whether the field's value (change or data) is ``None`` or one of the empty values."""
    _known(cs, name)
    value = _current(cs, name)
    return value is None or _empty(value, cs.empty_values)
