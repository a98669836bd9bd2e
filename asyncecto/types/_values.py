"""The None-aware entry points that turn a type's errors into :class:`~asyncecto.errors.CastError`."""

from __future__ import annotations

import typing as t

from asyncecto.errors import CastError

from ._base import Type, _type_name

__all__ = ("cast_value", "dump_passes", "dump_value", "equal", "load_value")


def _cast_error(
    exc: Exception, type_: object, value: object, field: str | None, schema: str | None, action: str
) -> CastError:
    reason = (exc.reason or str(exc)) if isinstance(exc, CastError) else str(exc)
    return CastError(value=value, type=_type_name(type_), field=field, schema=schema, reason=reason, action=action)


def cast_value(type_: Type[t.Any], value: object, *, field: str | None = None, schema: str | None = None) -> t.Any:
    """Cast external input with ``type_``; ``None`` stays ``None``.

    :param type_: the field's type
    :param value: the input
    :param field: the field name, for the error message
    :param schema: the schema name, for the error message
    :raises CastError: when the type rejects the value

    >>> from asyncecto.types import Integer
    >>> cast_value(Integer(), "7"), cast_value(Integer(), None)
    (7, None)
    >>> try:
    ...     cast_value(Integer(), "x", field="age")
    ... except CastError as exc:
    ...     print(exc.field, exc.type, exc.reason)
    age integer expected an integer, got str 'x'
    """
    if value is None:
        return None
    try:
        return type_.cast(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _cast_error(exc, type_, value, field, schema, "cast") from exc


def dump_value(type_: Type[t.Any], value: object, *, field: str | None = None, schema: str | None = None) -> t.Any:
    """Dump an internal value for the driver with ``type_``; ``None`` stays ``None``.

    :param type_: the field's type
    :param value: the internal value
    :param field: the field name, for the error message
    :param schema: the schema name, for the error message
    :raises CastError: (with ``action="dump"``) when the value is not a proper internal value

    >>> import datetime as dt
    >>> from asyncecto.types import UtcDatetime
    >>> dump_value(UtcDatetime(), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    try:
        return type_.dump(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _cast_error(exc, type_, value, field, schema, "dump") from exc


def dump_passes(type_: object) -> frozenset[type]:
    """Classes whose values ``type_.dump`` returns unchanged; empty when a subclass overrides ``dump``.

    >>> from asyncecto.types import String
    >>> dump_passes(String()) == {str}
    True
    """
    owner = None
    for cls in type(type_).__mro__:
        if "dump_passes" in cls.__dict__:
            owner = cls
            break
    if owner is None:
        return frozenset()
    for cls in type(type_).__mro__:
        if "dump" in cls.__dict__:
            return frozenset(owner.__dict__["dump_passes"]) if cls is owner else frozenset()
    return frozenset()


def load_value(type_: Type[t.Any], value: object) -> t.Any:
    """Load a driver value with ``type_``; ``None`` stays ``None``.

    >>> from asyncecto.types import Map
    >>> load_value(Map(), '{"a": 1}')
    {'a': 1}
    """
    if value is None:
        return None
    return type_.load(value)


def equal(type_: Type[t.Any], a: object, b: object) -> bool:
    """Whether two internal values of ``type_`` are equal; ``None`` only equals ``None``.

    >>> import decimal
    >>> from asyncecto.types import Decimal, Integer
    >>> equal(Decimal(), decimal.Decimal("1.0"), decimal.Decimal("1.00")), equal(Integer(), 1, None)
    (True, False)
    """
    if a is None or b is None:
        return a is b
    return type_.equal(a, b)
