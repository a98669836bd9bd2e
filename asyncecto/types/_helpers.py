"""Ecto.Type's public helpers: :func:`is_primitive`, :func:`embed_as`, :func:`format_type`,
:func:`includes` and :func:`trim`."""

from __future__ import annotations

import typing as t
from collections.abc import Iterable

from asyncecto.errors import ArgumentError

from ._base import _type_name
from ._composite import Array, Map, resolve
from ._scalars import Any, Binary, BinaryId, Boolean, Decimal, Duration, Float, Id, Integer, String
from ._temporal import Date, NaiveDatetime, NaiveDatetimeUsec, Time, TimeUsec, UtcDatetime, UtcDatetimeUsec
from ._values import equal

__all__ = ("embed_as", "format_type", "includes", "is_primitive", "trim")

_PRIMITIVES: frozenset[type] = frozenset(
    {
        Id,
        Integer,
        Float,
        Decimal,
        Boolean,
        String,
        Map,
        Array,
        Binary,
        BinaryId,
        Any,
        NaiveDatetime,
        NaiveDatetimeUsec,
        UtcDatetime,
        UtcDatetimeUsec,
        Date,
        Time,
        TimeUsec,
        Duration,
    }
)


def _type(spec: object) -> t.Any:
    return resolve(spec)


def is_primitive(type_: object) -> bool:
    """Whether ``type_`` is one of Ecto's primitive types (Ecto's ``primitive?``): a built-in base
    type (``integer``, ``string``, ``utc_datetime``...) or a ``map``/``array`` of anything.

    A custom type, a subclass of a built-in type, ``UUID`` (Ecto.UUID) and ``Enum`` (a
    parameterized type) are not. Takes a type or anything :func:`resolve` takes.

    >>> from asyncecto.types import UUID, Array, Integer
    >>> is_primitive(Integer()), is_primitive("utc_datetime"), is_primitive(Array(UUID())), is_primitive(UUID())
    (True, True, True, False)
    """
    return type(_type(type_)) in _PRIMITIVES


def embed_as(type_: object, format: str = "json") -> t.Literal["self", "dump"]:
    """How values of ``type_`` are embedded in ``format`` (Ecto's ``embed_as/2``): ``"self"`` (the
    cast value, the default) or ``"dump"`` (the dumped value).

    A custom type chooses by defining ``embed_as(format)``; primitive types give ``"self"``.

    >>> from asyncecto.types import BaseType, Integer
    >>> class Cents(BaseType[int]):
    ...     name = "cents"
    ...     def embed_as(self, format):
    ...         return "dump"
    >>> embed_as(Integer()), embed_as(Cents(), "json")
    ('self', 'dump')
    """
    if not isinstance(format, str):
        raise ArgumentError(f'embed_as expects the format as a string (e.g. "json"), got {format!r}')
    typ = _type(type_)
    choose = getattr(typ, "embed_as", None)
    if not callable(choose):
        return "self"
    chosen = choose(format)
    if chosen not in ("self", "dump"):
        raise ArgumentError(f'{_type_name(typ)}.embed_as({format!r}) must return "self" or "dump", got {chosen!r}')
    return t.cast(t.Literal["self", "dump"], chosen)


def format_type(type_: object) -> str:
    """``type_`` as error messages show it (Ecto's ``format/1``): its ``format()`` if it has one,
    else its ``name``.

    >>> from asyncecto.types import Array, Integer
    >>> format_type(Array(Integer())), format_type("utc_datetime")
    ('array(integer)', 'utc_datetime')
    """
    typ = _type(type_)
    custom = getattr(typ, "format", None)
    if callable(custom):
        text = custom()
        if not isinstance(text, str):
            raise ArgumentError(f"{type(typ).__name__}.format() must return a string, got {text!r}")
        return text
    return _type_name(typ)


def includes(type_: object, value: object, collection: Iterable[t.Any]) -> bool:
    """Whether ``value`` equals an item of ``collection`` by ``type_``'s ``equal`` (Ecto's
    ``include?/3``, which ``validate_inclusion`` and ``validate_exclusion`` use).

    >>> import decimal
    >>> from asyncecto.types import Decimal
    >>> includes(Decimal(), decimal.Decimal("1.0"), [decimal.Decimal("1.00"), decimal.Decimal("2")])
    True
    """
    if isinstance(collection, str | bytes) or not isinstance(collection, Iterable):
        raise ArgumentError(f"includes expects a collection of values (a list, set, ...), got {collection!r}")
    typ = _type(type_)
    return any(equal(typ, value, item) for item in collection)


def trim(type_: object, value: t.Any) -> t.Any:
    """``value`` without its leading whitespace when it is a string and ``type_`` is not ``binary``
    (Ecto's ``trim/2``, ``cast``'s default ``trim_values``); other values unchanged.

    >>> from asyncecto.types import Binary, String
    >>> trim(String(), "  hi "), trim(Binary(), "  hi "), trim(String(), 3)
    ('hi ', '  hi ', 3)
    """
    if isinstance(value, str) and not isinstance(_type(type_), Binary):
        return value.lstrip()
    return value
