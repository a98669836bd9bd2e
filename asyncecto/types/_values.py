"""The None-aware entry points that turn a type's errors into :class:`~asyncecto.errors.CastError`."""

from __future__ import annotations

import typing as t

from asyncecto.errors import CastError

from ._base import INT8_MAX, INT8_MIN, Type, Unstorable, _check_int, _check_text, _type_name

__all__ = ("cast_value", "check_passed", "dump_passes", "dump_value", "equal", "load_value")


def _cast_error(
    exc: Exception, type_: object, value: object, field: str | None, schema: str | None, action: str
) -> CastError:
    reason = (exc.reason or str(exc)) if isinstance(exc, CastError) else str(exc)
    fix = exc.fix if isinstance(exc, CastError | Unstorable) else None
    return CastError(
        value=value, type=_type_name(type_), field=field, schema=schema, reason=reason, action=action, fix=fix
    )


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


def check_passed(
    type_: object, values: list[t.Any], kinds: set[type], *, field: str | None = None, schema: str | None = None
) -> None:
    """Check values a bulk insert sends without ``dump`` (see :func:`dump_passes`): a string with a
    NUL or a lone surrogate, or an int beyond 64 bits, raises :class:`CastError` naming it.

    A whole column is checked at C speed (one join, one ``min`` and ``max``); only a column
    holding a bad value is searched for it.

    :param kinds: the classes of ``values`` (``NoneType`` for ``None``)

    >>> from asyncecto.types import String
    >>> check_passed(String(), ["a", None], {str, type(None)})
    >>> try:
    ...     check_passed(String(), ["a", "b\\x00"], {str}, field="title")
    ... except CastError as exc:
    ...     print(exc.field, exc.value, exc.reason.split(",")[0])
    title b\x00 contains a NUL character (\\x00) at index 1
    """
    if str in kinds:
        texts = values if len(kinds) == 1 else [v for v in values if type(v) is str]
        joined = "".join(texts)
        if "\x00" in joined or not joined.isascii():
            try:
                _check_text(joined)
            except Unstorable:
                _raise_first(texts, _check_text, type_, field, schema)
    if int in kinds:
        ints = values if len(kinds) == 1 else [v for v in values if type(v) is int]
        if min(ints) < INT8_MIN or max(ints) > INT8_MAX:
            _raise_first(ints, _check_int, type_, field, schema)


def _raise_first(
    values: list[t.Any], check: t.Callable[[t.Any], t.Any], type_: object, field: str | None, schema: str | None
) -> None:
    for v in values:
        try:
            check(v)
        except Unstorable as exc:
            raise _cast_error(exc, type_, v, field, schema, "dump") from exc


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
