"""Validations: checks on a changeset's changes that add errors (with Ecto's messages and metadata).

Each takes the changeset first (``validate_required(cs, ["name"])``) or, without it,
returns a step for the pipe (``cs | validate_required(["name"])``). Most skip a field
that has no change, or whose change is ``None``.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar, overload

import attrs
import regex

from asyncecto import types
from asyncecto.errors import ArgumentError
from asyncecto.schema._embeds import EmbedMany, EmbedOne

from ._cast import _known, field_missing
from ._changeset import Changeset, Step, dual_step, field_names

_T = TypeVar("_T")

__all__ = (
    "validate_acceptance",
    "validate_change",
    "validate_confirmation",
    "validate_exclusion",
    "validate_format",
    "validate_inclusion",
    "validate_length",
    "validate_number",
    "validate_required",
    "validate_subset",
    "validations",
)


def _error(cs: Changeset[Any], name: str, message: str, keys: Mapping[str, Any]) -> Changeset[Any]:
    return attrs.evolve(cs, errors=((name, (message, dict(keys))), *cs.errors), valid=False)


def _record(cs: Changeset[Any], name: str, spec: Any) -> Changeset[Any]:
    return attrs.evolve(cs, validations=(*cs.validations, (name, spec)))


def _includes(cs: Changeset[Any], name: str, value: Any, values: Collection[Any]) -> bool:
    """Ecto.Type.include?: ``value`` equals one of ``values`` by the field's type (``in`` without one)."""
    typ = cs.field_types().get(name)
    if typ is None or isinstance(typ, EmbedOne | EmbedMany) or isinstance(values, str | bytes):
        return value in values
    try:
        return types.includes(typ, value, values)
    except (TypeError, ValueError):  # an item the type cannot compare: plain equality
        return value in values


def _has_error(cs: Changeset[Any], name: str) -> bool:
    return any(f == name for f, _ in cs.errors)


@overload
def validate_required(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_required(*args: Any, **kwargs: Any) -> Step: ...
def validate_required(*args: Any, **kwargs: Any) -> Any:
    """Fields must be present and not blank: ``"can't be blank"`` (``validation: required``).

    ``validate_required(cs, fields, message=...)``. A blank change is removed; a field
    that already has an error gets no second one.
    """
    return dual_step(_required, args, kwargs)


def _required(cs: Changeset[Any], fields: str | Iterable[str], *, message: str = "can't be blank") -> Changeset[Any]:
    names = field_names(fields)
    for name in names:
        _known(cs, name)
    for name in names:
        if field_missing(cs, name):
            if name in cs.changes:
                cs = attrs.evolve(cs, changes={k: v for k, v in cs.changes.items() if k != name})
            if not _has_error(cs, name):
                cs = _error(cs, name, message, {"validation": "required"})
    return attrs.evolve(cs, required=tuple(dict.fromkeys((*cs.required, *names))))


def _changed_value(cs: Changeset[Any], name: str) -> Any:
    _known(cs, name)
    return cs.changes.get(name)


@overload
def validate_format(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_format(*args: Any, **kwargs: Any) -> Step: ...
def validate_format(*args: Any, **kwargs: Any) -> Any:
    """A string change must match ``pattern``: ``"has invalid format"`` (``validation: format``).

    ``validate_format(cs, field, pattern, message=...)``; ``pattern`` is a regex or a string.
    """
    return dual_step(_format, args, kwargs)


def _format(
    cs: Changeset[Any], name: str, pattern: str | re.Pattern[str], *, message: str = "has invalid format"
) -> Changeset[Any]:
    value = _changed_value(cs, name)
    regex = _compile(name, pattern)
    cs = _record(cs, name, ("format", regex))
    if value is None:
        return cs
    if not isinstance(value, str):
        raise ArgumentError(f"validate_format expects a string change for {name!r}, got {value!r}")
    return cs if regex.search(value) else _error(cs, name, message, {"validation": "format"})


def _compile(name: str, pattern: Any) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise ArgumentError(f"validate_format expects a regex or a string pattern for {name!r}, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ArgumentError(
            f"validate_format got an invalid regular expression for {name!r}: {pattern!r} ({exc})\n\n"
            "fix: correct the pattern, or match the text literally with re.escape(text)"
        ) from None


@overload
def validate_inclusion(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_inclusion(*args: Any, **kwargs: Any) -> Step: ...
def validate_inclusion(*args: Any, **kwargs: Any) -> Any:
    """The change must be one of ``values``: ``"is invalid"`` (``validation: inclusion, enum``)."""
    return dual_step(_inclusion, args, kwargs)


def _inclusion(
    cs: Changeset[Any], name: str, values: Collection[Any], *, message: str = "is invalid"
) -> Changeset[Any]:
    value = _changed_value(cs, name)
    cs = _record(cs, name, ("inclusion", list(values)))
    if value is None or _includes(cs, name, value, values):
        return cs
    return _error(cs, name, message, {"validation": "inclusion", "enum": list(values)})


@overload
def validate_exclusion(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_exclusion(*args: Any, **kwargs: Any) -> Step: ...
def validate_exclusion(*args: Any, **kwargs: Any) -> Any:
    """The change must not be one of ``values``: ``"is reserved"`` (``validation: exclusion, enum``)."""
    return dual_step(_exclusion, args, kwargs)


def _exclusion(
    cs: Changeset[Any], name: str, values: Collection[Any], *, message: str = "is reserved"
) -> Changeset[Any]:
    value = _changed_value(cs, name)
    cs = _record(cs, name, ("exclusion", list(values)))
    if value is None or not _includes(cs, name, value, values):
        return cs
    return _error(cs, name, message, {"validation": "exclusion", "enum": list(values)})


@overload
def validate_subset(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_subset(*args: Any, **kwargs: Any) -> Step: ...
def validate_subset(*args: Any, **kwargs: Any) -> Any:
    """Every element of a list change must be in ``values``: ``"has an invalid entry"``."""
    return dual_step(_subset, args, kwargs)


def _subset(
    cs: Changeset[Any], name: str, values: Collection[Any], *, message: str = "has an invalid entry"
) -> Changeset[Any]:
    value = _changed_value(cs, name)
    cs = _record(cs, name, ("subset", list(values)))
    if value is None:
        return cs
    if not isinstance(value, list | tuple | set | frozenset):
        raise ArgumentError(f"validate_subset expects a list change for {name!r}, got {value!r}")
    if all(v in values for v in value):
        return cs
    return _error(cs, name, message, {"validation": "subset", "enum": list(values)})


@overload
def validate_length(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_length(*args: Any, **kwargs: Any) -> Step: ...
def validate_length(*args: Any, **kwargs: Any) -> Any:
    """Length of a string, bytes, list or dict change: ``is_=``, ``min=``, ``max=``.

    A string's length counts grapheme clusters (what a reader sees as one character: ``"e\\u0301"`` is 1)
    as Ecto does; ``count="codepoints"`` counts code points, ``count="bytes"`` UTF-8 bytes.
    Messages: ``"should be %{count} character(s)"``, ``"should be at least …"``, ``"should be at most …"``
    (``byte(s)`` with ``count="bytes"`` or bytes values; ``"should have … item(s)"`` for lists and dicts).
    Metadata: ``count``, ``validation: length``, ``kind: is|min|max``, ``type: string|binary|list|map``.
    """
    return dual_step(_length, args, kwargs)


def _length(
    cs: Changeset[Any],
    name: str,
    *,
    is_: int | None = None,
    min: int | None = None,
    max: int | None = None,
    count: str = "graphemes",
    message: str | None = None,
) -> Changeset[Any]:
    if is_ is None and min is None and max is None:
        raise ArgumentError("validate_length needs is_=, min= or max=")
    if count not in ("codepoints", "graphemes", "bytes"):
        raise ArgumentError(f"validate_length count must be codepoints, graphemes or bytes, got {count!r}")
    for option, bound in (("is_", is_), ("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ArgumentError(f"validate_length {option}= must be an integer for {name!r}, got {bound!r}")
    value = _changed_value(cs, name)
    cs = _record(cs, name, ("length", {"is": is_, "min": min, "max": max, "count": count}))
    if value is None:
        return cs
    if isinstance(value, str):
        if count == "bytes":
            kind, size = "binary", len(value.encode("utf-8", "surrogatepass"))
        else:
            kind, size = "string", len(value) if count == "codepoints" else _grapheme_count(value)
    elif isinstance(value, bytes | bytearray):
        kind, size = "binary", len(value)
    elif isinstance(value, list | tuple):
        kind, size = "list", len(value)
    elif isinstance(value, Mapping):
        kind, size = "map", len(value)
    else:
        raise ArgumentError(f"validate_length cannot measure {value!r} of {name!r}")
    unit = {"string": "character(s)", "binary": "byte(s)"}.get(kind)
    checks: tuple[tuple[str, int | None, Callable[[int, int], bool]], ...] = (
        ("is", is_, lambda n, b: n != b),
        ("min", min, lambda n, b: n < b),
        ("max", max, lambda n, b: n > b),
    )
    for check, bound, fails in checks:
        if bound is not None and fails(size, bound):
            if unit is not None:
                words = {"is": "should be", "min": "should be at least", "max": "should be at most"}[check]
                text = f"{words} %{{count}} {unit}"
            else:
                words = {"is": "should have", "min": "should have at least", "max": "should have at most"}[check]
                text = f"{words} %{{count}} item(s)"
            keys = {"count": bound, "validation": "length", "kind": check, "type": kind}
            return _error(cs, name, text if message is None else message, keys)
    return cs


#: one extended grapheme cluster (Unicode UAX #29: combining marks, ZWJ emoji sequences, flags, CRLF)
_GRAPHEME = regex.compile(r"\X")


def _grapheme_count(text: str) -> int:
    """How many grapheme clusters ``text`` holds (Elixir's ``String.length``).

    >>> _grapheme_count("e\\u0301"), _grapheme_count("\\U0001f1eb\\U0001f1f7"), _grapheme_count("a\\r\\n")
    (1, 1, 2)
    """
    if text.isascii():  # every ASCII character is its own cluster, except CR LF
        return len(text) - text.count("\r\n")
    return sum(1 for _ in _GRAPHEME.finditer(text))


_NUMBER_CHECKS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "less_than": ("must be less than %{number}", lambda v, n: v < n),
    "greater_than": ("must be greater than %{number}", lambda v, n: v > n),
    "less_than_or_equal_to": ("must be less than or equal to %{number}", lambda v, n: v <= n),
    "greater_than_or_equal_to": ("must be greater than or equal to %{number}", lambda v, n: v >= n),
    "equal_to": ("must be equal to %{number}", lambda v, n: v == n),
    "not_equal_to": ("must be not equal to %{number}", lambda v, n: v != n),
}


@overload
def validate_number(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_number(*args: Any, **kwargs: Any) -> Step: ...
def validate_number(*args: Any, **kwargs: Any) -> Any:
    """A numeric change compared with bounds: ``less_than=``, ``greater_than=``, ``less_than_or_equal_to=``,
    ``greater_than_or_equal_to=``, ``equal_to=``, ``not_equal_to=``; the first failing one gives the error
    (``"must be less than %{number}"`` …, metadata ``validation: number, kind, number``).
    """
    return dual_step(_number, args, kwargs)


def _number(cs: Changeset[Any], name: str, *, message: str | None = None, **checks: Any) -> Changeset[Any]:
    unknown = set(checks) - set(_NUMBER_CHECKS)
    if unknown or not checks:
        raise ArgumentError(
            f"validate_number got unknown or no checks {sorted(unknown)}; use {', '.join(_NUMBER_CHECKS)}"
        )
    for kind, bound in checks.items():
        if isinstance(bound, bool) or not isinstance(bound, int | float | decimal.Decimal):
            raise ArgumentError(f"validate_number {kind}= must be a number for {name!r}, got {bound!r}")
    value = _changed_value(cs, name)
    cs = _record(cs, name, ("number", dict(checks)))
    if value is None:
        return cs
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise ArgumentError(f"validate_number expects a number change for {name!r}, got {value!r}")
    for kind, bound in checks.items():
        text, ok = _NUMBER_CHECKS[kind]
        if not ok(value, bound):
            return _error(
                cs, name, text if message is None else message, {"validation": "number", "kind": kind, "number": bound}
            )
    return cs


@overload
def validate_confirmation(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_confirmation(*args: Any, **kwargs: Any) -> Step: ...
def validate_confirmation(*args: Any, **kwargs: Any) -> Any:
    """``params[f"{field}_confirmation"]`` must equal ``params[field]``: ``"does not match confirmation"``
    on ``{field}_confirmation``; with ``required=True`` a missing confirmation is ``"can't be blank"``.
    """
    return dual_step(_confirmation, args, kwargs)


def _confirmation(
    cs: Changeset[Any], name: str, *, required: bool = False, message: str = "does not match confirmation"
) -> Changeset[Any]:
    _known(cs, name)
    key = f"{name}_confirmation"
    params = cs.params or {}
    cs = _record(cs, name, ("confirmation", {"required": required}))
    if name not in cs.changes and name not in params:
        return cs
    if key not in params or params[key] is None:
        if required:
            return _error(cs, key, "can't be blank", {"validation": "required"})
        return cs
    if params[key] != params.get(name):
        return _error(cs, key, message, {"validation": "confirmation"})
    return cs


_TRUE = (True, "true", "1", 1)


@overload
def validate_acceptance(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_acceptance(*args: Any, **kwargs: Any) -> Step: ...
def validate_acceptance(*args: Any, **kwargs: Any) -> Any:
    """``params[field]`` must be true (``True``, ``"true"``, ``"1"``): ``"must be accepted"``."""
    return dual_step(_acceptance, args, kwargs)


def _acceptance(cs: Changeset[Any], name: str, *, message: str = "must be accepted") -> Changeset[Any]:
    params = cs.params or {}
    cs = _record(cs, name, ("acceptance", {}))
    if name not in params:
        return cs
    value = params[name]
    if value in _TRUE and not (isinstance(value, int) and not isinstance(value, bool) and value != 1):
        return cs
    return _error(cs, name, message, {"validation": "acceptance"})


@overload
def validate_change(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def validate_change(*args: Any, **kwargs: Any) -> Step: ...
def validate_change(*args: Any, **kwargs: Any) -> Any:
    """A custom check: ``fn(field, value)`` returns errors as ``[(field, message)]`` or
    ``[(field, (message, keys))]``; run only when the field has a non-``None`` change.
    """
    return dual_step(_custom, args, kwargs)


def _custom(
    cs: Changeset[Any], name: str, fn: Callable[[str, Any], Iterable[tuple[str, Any]]], meta: Any = None
) -> Changeset[Any]:
    value = _changed_value(cs, name)
    if meta is not None:
        cs = _record(cs, name, meta)
    if value is None:
        return cs
    for field, err in fn(name, value) or ():
        message, keys = (err, {}) if isinstance(err, str) else err
        cs = _error(cs, field, message, keys)
    return cs


def validations(cs: Changeset[Any]) -> list[tuple[str, Any]]:
    """The validations run on the changeset (not ``required``), oldest first: ``[(field, (kind, spec))]``."""
    return list(cs.validations)
