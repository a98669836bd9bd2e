"""Ecto's type system: how a field's values are cast, dumped and loaded.

Every type moves values along one path::

    external input --cast--> internal value --dump--> driver value
    driver value --load--> internal value

``cast`` is lenient (it parses strings and dicts from forms and JSON), ``dump`` is
strict (it only takes proper internal values) and ``load`` trusts the driver. None of
them is ever given ``None``: :func:`cast_value`, :func:`dump_value`, :func:`load_value`
and :func:`equal` handle ``None`` and turn errors into :class:`~asyncecto.errors.CastError`.

>>> Integer().cast("42")
42
>>> Array(Integer()).dump([1, None, 3])
[1, None, 3]
>>> resolve(list[int] | None)
Array(Integer())
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import re
import typing as t
import uuid
from collections.abc import Callable, Mapping

from asyncecto.errors import CastError, SchemaError

__all__ = (
    "Any",
    "Array",
    "BaseType",
    "Binary",
    "BinaryId",
    "Boolean",
    "Date",
    "Decimal",
    "Duration",
    "Enum",
    "Float",
    "Id",
    "Integer",
    "Map",
    "NaiveDatetime",
    "NaiveDatetimeUsec",
    "String",
    "Time",
    "TimeUsec",
    "Type",
    "UUID",
    "UtcDatetime",
    "UtcDatetimeUsec",
    "cast_value",
    "dump_value",
    "equal",
    "load_value",
    "resolve",
)

T = t.TypeVar("T")
T_co = t.TypeVar("T_co", covariant=True)

_UTC = dt.UTC
_UnionType = type(int | str)

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_UUID36_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID32_RE = re.compile(r"[0-9a-fA-F]{32}")


@t.runtime_checkable
class Type(t.Protocol[T_co]):
    """What every field type provides; user types only need these five members.

    ``name`` appears in error messages (e.g. ``"array(integer)"``). ``cast`` turns
    external input into an internal value, ``dump`` turns an internal value into what
    asyncpg sends and ``load`` turns what asyncpg returns into an internal value; they
    raise ``ValueError`` or ``TypeError`` on bad input and never receive ``None``.

    >>> isinstance(Integer(), Type)
    True
    """

    @property
    def name(self) -> str: ...

    def cast(self, value: t.Any) -> T_co: ...

    def dump(self, value: t.Any) -> t.Any: ...

    def load(self, value: t.Any) -> T_co: ...

    def equal(self, a: t.Any, b: t.Any) -> bool: ...


# -- small helpers -------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _reject(expected: str, value: object) -> TypeError | ValueError:
    msg = f"expected {expected}, got {_show(value)}"
    return ValueError(msg) if isinstance(value, str) else TypeError(msg)


def _is_int(value: object) -> t.TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(type_: object) -> str:
    name = getattr(type_, "name", None)
    return name if isinstance(name, str) else type(type_).__name__


def _db_type(type_: object) -> str:
    db_type = getattr(type_, "db_type", None)
    if not isinstance(db_type, str):
        raise AttributeError(f"type {_type_name(type_)} has no db_type")
    return db_type


def _fraction(digits: str | None) -> int:
    return int((digits or "0")[:6].ljust(6, "0"))


def _map_part(value: Mapping[t.Any, t.Any], key: str, default: int | None = None) -> int:
    if key not in value:
        if default is None:
            raise ValueError(f"missing key {key!r} in {_show(value)}")
        return default
    part = value[key]
    if _is_int(part):
        return int(part)
    if isinstance(part, str) and len(part) < 32 and _INT_RE.fullmatch(part):
        return int(part)
    raise ValueError(f"expected an integer for {key!r}, got {_show(part)}")


def _parse_datetime(value: str) -> dt.datetime:
    match = _DATETIME_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"expected an ISO 8601 datetime, got {_show(value)}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: dt.tzinfo | None = None
    if offset == "Z":
        tz = _UTC
    elif offset:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes > 59:
            raise ValueError(f"invalid UTC offset in {value!r}")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        tz = dt.timezone(-delta if offset[0] == "-" else delta)
    return dt.datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        _fraction(fraction),
        tzinfo=tz,
    )


def _to_datetime(value: object) -> dt.datetime:
    """Any datetime input to a datetime, naive or aware as given."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return _parse_datetime(value)
    if isinstance(value, Mapping):
        return dt.datetime(
            _map_part(value, "year"),
            _map_part(value, "month"),
            _map_part(value, "day"),
            _map_part(value, "hour"),
            _map_part(value, "minute"),
            _map_part(value, "second", 0),
            _map_part(value, "microsecond", 0),
        )
    raise _reject("a datetime, an ISO 8601 string or a dict", value)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        return value.replace(tzinfo=None)
    return value.astimezone(_UTC).replace(tzinfo=None)


def _aware_utc(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _implements(obj: object) -> bool:
    return all(callable(getattr(obj, attr, None)) for attr in ("cast", "dump", "load", "equal"))


# -- base classes --------------------------------------------------------------------


class BaseType(t.Generic[T]):
    """A convenient base for user types: identity cast/dump/load and ``==`` equality.

    Subclasses set ``name`` and usually ``db_type`` (the PostgreSQL column type), and
    set ``load_is_identity = False`` when their ``load`` does work. Instances compare
    equal when they have the same class and attributes.

    >>> class Money(BaseType[int]):
    ...     name = "money"
    ...     db_type = "bigint"
    ...     def cast(self, value):
    ...         return round(float(value) * 100)
    >>> Money().cast("1.25"), Money().dump(125), Money() == Money()
    (125, 125, True)
    """

    __slots__ = ()

    name: t.ClassVar[str]
    db_type: t.ClassVar[str]
    load_is_identity: t.ClassVar[bool] = True

    def cast(self, value: t.Any) -> T:
        """Turn external input into an internal value (identity by default).

        :param value: the input, never ``None``
        """
        return t.cast(T, value)

    def dump(self, value: t.Any) -> t.Any:
        """Turn an internal value into a driver value (identity by default).

        :param value: the internal value, never ``None``
        """
        return value

    def load(self, value: t.Any) -> T:
        """Turn a driver value into an internal value (identity by default).

        :param value: the driver value, never ``None``
        """
        return t.cast(T, value)

    def equal(self, a: t.Any, b: t.Any) -> bool:
        """Whether two internal values are the same (``==`` by default)."""
        return bool(a == b)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return bool(getattr(self, "__dict__", {}) == getattr(other, "__dict__", {}))

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "__dict__", {}).items())
        return f"{type(self).__name__}({attrs})"


class _Frozen:
    """Immutable value object with equality, hash, copy and pickle by ``_args``."""

    __slots__ = ()

    def _args(self) -> tuple[t.Any, ...]:
        raise NotImplementedError

    def _key(self) -> t.Hashable:
        return self._args()

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return bool(self._key() == other._key())

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(arg) for arg in self._args())})"

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (type(self), self._args())

    def __copy__(self) -> t.Self:
        return self

    def __deepcopy__(self, memo: dict[int, t.Any]) -> t.Self:
        return self


# -- scalar types --------------------------------------------------------------------


class Any(BaseType[t.Any]):
    """Any value, unchanged in every direction (Ecto's ``:any``); it has no ``db_type``.

    >>> Any().cast([1, "a"])
    [1, 'a']
    """

    __slots__ = ()
    name = "any"


class Integer(BaseType[int]):
    """A PostgreSQL ``integer``; casts ints and strings of digits such as ``"-12"``.

    >>> Integer().cast("-12")
    -12
    >>> Integer().cast("1.5")
    Traceback (most recent call last):
    ...
    ValueError: expected an integer, got str '1.5'
    """

    __slots__ = ()
    name = "integer"
    db_type = "integer"

    def cast(self, value: t.Any) -> int:
        if _is_int(value):
            return int(value)
        if isinstance(value, str) and len(value) < 32 and _INT_RE.fullmatch(value):
            return int(value)
        raise _reject("an integer", value)

    def dump(self, value: t.Any) -> int:
        if _is_int(value):
            return int(value)
        raise _reject("an integer", value)

    def load(self, value: t.Any) -> int:
        return t.cast(int, value)


class Id(Integer):
    """A ``bigint`` primary or foreign key; casts like :class:`Integer`."""

    __slots__ = ()
    name = "id"
    db_type = "bigint"


class Float(BaseType[float]):
    """A ``double precision``; casts finite floats, ints, decimals and numeric strings.

    >>> Float().cast("-3e2")
    -300.0
    """

    __slots__ = ()
    name = "float"
    db_type = "double precision"

    def cast(self, value: t.Any) -> float:
        if isinstance(value, float):
            result = float(value)
        elif _is_int(value):
            result = self.dump(value)
        elif isinstance(value, decimal.Decimal):
            if not value.is_finite():
                raise ValueError(f"expected a finite number, got {_show(value)}")
            result = float(value)
        elif isinstance(value, str) and _FLOAT_RE.fullmatch(value):
            result = float(value)
        else:
            raise _reject("a float", value)
        if not math.isfinite(result):
            raise ValueError(f"expected a finite float, got {_show(value)}")
        return result

    def dump(self, value: t.Any) -> float:
        if isinstance(value, float):
            return value
        if _is_int(value):
            try:
                return float(value)
            except OverflowError:
                raise ValueError(f"integer too large for a float: {_show(value)}") from None
        raise _reject("a float", value)

    def load(self, value: t.Any) -> float:
        return t.cast(float, value)


class Boolean(BaseType[bool]):
    """A ``boolean``; casts bools and the strings ``"true"``, ``"false"``, ``"1"``, ``"0"``.

    >>> Boolean().cast("0")
    False
    """

    __slots__ = ()
    name = "boolean"
    db_type = "boolean"

    def cast(self, value: t.Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "1"):
            return True
        if isinstance(value, str) and value in ("false", "0"):
            return False
        raise _reject("a boolean", value)

    def dump(self, value: t.Any) -> bool:
        if isinstance(value, bool):
            return value
        raise _reject("a boolean", value)

    def load(self, value: t.Any) -> bool:
        return t.cast(bool, value)


class String(BaseType[str]):
    """A ``varchar(255)``; casts strings only (``5`` is not ``"5"``).

    >>> String().cast("hi")
    'hi'
    """

    __slots__ = ()
    name = "string"
    db_type = "varchar(255)"

    def cast(self, value: t.Any) -> str:
        if isinstance(value, str):
            return value if type(value) is str else str.__str__(value)
        raise _reject("a string", value)

    def dump(self, value: t.Any) -> str:
        if isinstance(value, str):
            return value
        raise _reject("a string", value)

    def load(self, value: t.Any) -> str:
        return t.cast(str, value)


class Binary(BaseType[bytes]):
    """A ``bytea``; casts bytes, bytearray and memoryview to bytes.

    >>> Binary().cast(bytearray(b"ab"))
    b'ab'
    """

    __slots__ = ()
    name = "binary"
    db_type = "bytea"

    def cast(self, value: t.Any) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise _reject("bytes", value)

    def dump(self, value: t.Any) -> bytes:
        if isinstance(value, bytes):
            return value
        raise _reject("bytes", value)

    def load(self, value: t.Any) -> bytes:
        return t.cast(bytes, value)


class Decimal(BaseType[decimal.Decimal]):
    """A ``numeric``; casts decimals, ints, floats and numeric strings, never NaN or infinity.

    >>> Decimal().cast(1.1)
    Decimal('1.1')
    """

    __slots__ = ()
    name = "decimal"
    db_type = "numeric"

    def cast(self, value: t.Any) -> decimal.Decimal:
        if isinstance(value, decimal.Decimal) or _is_int(value):
            return self.dump(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {_show(value)}")
            return decimal.Decimal(repr(value))
        if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
            try:
                result = decimal.Decimal(value)
            except decimal.InvalidOperation:
                raise ValueError(f"expected a decimal, got {_show(value)}") from None
            if result.is_finite():
                return result
            raise ValueError(f"expected a finite decimal, got {_show(value)}")
        raise _reject("a decimal", value)

    def dump(self, value: t.Any) -> decimal.Decimal:
        if _is_int(value):
            return decimal.Decimal(value)
        if isinstance(value, decimal.Decimal):
            if value.is_finite():
                return value
            raise ValueError(f"expected a finite decimal, got {_show(value)}")
        raise _reject("a decimal", value)

    def load(self, value: t.Any) -> decimal.Decimal:
        return t.cast(decimal.Decimal, value)


class Date(BaseType[dt.date]):
    """A ``date``; casts dates, ``"YYYY-MM-DD"`` and dicts with year, month and day.

    >>> Date().cast({"year": "2024", "month": 2, "day": 29})
    datetime.date(2024, 2, 29)
    """

    __slots__ = ()
    name = "date"
    db_type = "date"

    def cast(self, value: t.Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            match = _DATE_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"expected an ISO 8601 date, got {_show(value)}")
            return dt.date(*(int(part) for part in match.groups()))
        if isinstance(value, Mapping):
            return dt.date(_map_part(value, "year"), _map_part(value, "month"), _map_part(value, "day"))
        raise _reject("a date", value)

    def dump(self, value: t.Any) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise _reject("a date", value)

    def load(self, value: t.Any) -> dt.date:
        return t.cast(dt.date, value)


class _TimeBase(BaseType[dt.time]):
    __slots__ = ()
    _usec: t.ClassVar[bool]

    def cast(self, value: t.Any) -> dt.time:
        if isinstance(value, dt.datetime):
            result = value.time()
        elif isinstance(value, dt.time):
            if value.tzinfo is not None:
                raise ValueError(f"expected a time without time zone, got {_show(value)}")
            result = value
        elif isinstance(value, str):
            match = _TIME_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"expected an ISO 8601 time, got {_show(value)}")
            hour, minute, second, fraction = match.groups()
            result = dt.time(int(hour), int(minute), int(second or 0), _fraction(fraction))
        elif isinstance(value, Mapping):
            result = dt.time(
                _map_part(value, "hour"),
                _map_part(value, "minute"),
                _map_part(value, "second", 0),
                _map_part(value, "microsecond", 0),
            )
        else:
            raise _reject("a time", value)
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.time:
        if not isinstance(value, dt.time):
            raise _reject("a time", value)
        if value.tzinfo is not None:
            raise ValueError(f"expected a time without time zone, got {_show(value)}")
        if not self._usec and value.microsecond:
            raise ValueError("Time expects microseconds to be empty, use TimeUsec")
        return value

    def load(self, value: t.Any) -> dt.time:
        return t.cast(dt.time, value)


class Time(_TimeBase):
    """A ``time(0)``; like :class:`TimeUsec` but drops microseconds on cast.

    >>> Time().cast("10:20:30.5")
    datetime.time(10, 20, 30)
    """

    __slots__ = ()
    name = "time"
    db_type = "time(0)"
    _usec = False


class TimeUsec(_TimeBase):
    """A ``time``; casts naive times, ``"HH:MM[:SS[.ffffff]]"`` and dicts with hour and minute.

    >>> TimeUsec().cast({"hour": 9, "minute": 5, "microsecond": 7})
    datetime.time(9, 5, 0, 7)
    """

    __slots__ = ()
    name = "time_usec"
    db_type = "time"
    _usec = True


class _NaiveBase(BaseType[dt.datetime]):
    __slots__ = ()
    _usec: t.ClassVar[bool]
    load_is_identity = False

    def cast(self, value: t.Any) -> dt.datetime:
        result = _naive_utc(_to_datetime(value))
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        if value.utcoffset() is not None:
            raise ValueError(f"{self.name} expects a naive datetime, got {_show(value)}")
        if not self._usec and value.microsecond:
            raise ValueError(f"{self.name} expects microseconds to be empty, use NaiveDatetimeUsec")
        return value

    def load(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        return _naive_utc(value)


class NaiveDatetime(_NaiveBase):
    """A ``timestamp(0)`` holding a naive datetime; drops microseconds on cast.

    Aware input is converted to UTC, then its time zone is dropped.

    >>> NaiveDatetime().cast("2024-05-01T12:30:00.25+02:00")
    datetime.datetime(2024, 5, 1, 10, 30)
    """

    __slots__ = ()
    name = "naive_datetime"
    db_type = "timestamp(0)"
    _usec = False


class NaiveDatetimeUsec(_NaiveBase):
    """A ``timestamp`` holding a naive datetime with microseconds.

    >>> NaiveDatetimeUsec().cast("2024-05-01 12:30:00.25")
    datetime.datetime(2024, 5, 1, 12, 30, 0, 250000)
    """

    __slots__ = ()
    name = "naive_datetime_usec"
    db_type = "timestamp"
    _usec = True


class _UtcBase(BaseType[dt.datetime]):
    __slots__ = ()
    _usec: t.ClassVar[bool]
    load_is_identity = False

    def cast(self, value: t.Any) -> dt.datetime:
        result = _aware_utc(_to_datetime(value))
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        if value.utcoffset() is None:
            raise ValueError(
                f"{self.name} expects a timezone-aware datetime; use NaiveDatetime for naive values, got {_show(value)}"
            )
        if not self._usec and value.microsecond:
            raise ValueError(f"{self.name} expects microseconds to be empty, use UtcDatetimeUsec")
        return value.astimezone(_UTC)

    def load(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        return _aware_utc(value)


class UtcDatetime(_UtcBase):
    """A ``timestamptz(0)`` holding an aware UTC datetime; drops microseconds on cast.

    Naive input is taken as UTC. ``dump`` returns an aware datetime in UTC, so the
    column must be ``timestamptz`` (for ``timestamp`` columns use :class:`NaiveDatetime`).

    >>> UtcDatetime().cast("2024-05-01T12:30:00+02:00")
    datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.timezone.utc)
    """

    __slots__ = ()
    name = "utc_datetime"
    db_type = "timestamptz(0)"
    _usec = False


class UtcDatetimeUsec(_UtcBase):
    """A ``timestamptz`` holding an aware UTC datetime with microseconds.

    >>> UtcDatetimeUsec().load(dt.datetime(2024, 1, 1, 0, 0, 0, 5))
    datetime.datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=datetime.timezone.utc)
    """

    __slots__ = ()
    name = "utc_datetime_usec"
    db_type = "timestamptz"
    _usec = True


class _UuidBase(BaseType[uuid.UUID]):
    __slots__ = ()
    db_type = "uuid"
    load_is_identity = False

    def cast(self, value: t.Any) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str) and (_UUID36_RE.fullmatch(value) or _UUID32_RE.fullmatch(value)):
            return uuid.UUID(value)
        if isinstance(value, bytes) and len(value) == 16:
            return uuid.UUID(bytes=value)
        raise _reject("a UUID", value)

    def dump(self, value: t.Any) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        raise _reject("a UUID", value)

    def load(self, value: t.Any) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            return uuid.UUID(value)
        raise _reject("a UUID", value)

    def autogenerate(self) -> uuid.UUID:
        """A new random UUID (version 4)."""
        return uuid.uuid4()


class UUID(_UuidBase):
    """A ``uuid``; casts UUIDs, hex strings (with or without dashes) and 16 bytes.

    >>> UUID().cast("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
    UUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
    """

    __slots__ = ()
    name = "uuid"


class BinaryId(_UuidBase):
    """A ``uuid`` primary or foreign key; casts like :class:`UUID`.

    >>> BinaryId().autogenerate().version
    4
    """

    __slots__ = ()
    name = "binary_id"


class Duration(BaseType[dt.timedelta]):
    """An ``interval`` holding a :class:`datetime.timedelta`.

    >>> Duration().cast(dt.timedelta(hours=1))
    datetime.timedelta(seconds=3600)
    """

    __slots__ = ()
    name = "duration"
    db_type = "interval"

    def cast(self, value: t.Any) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        raise _reject("a timedelta", value)

    def dump(self, value: t.Any) -> dt.timedelta:
        return self.cast(value)

    def load(self, value: t.Any) -> dt.timedelta:
        return t.cast(dt.timedelta, value)


# -- composite types -----------------------------------------------------------------


class Map(_Frozen):
    """A ``jsonb`` holding a dict; with ``of``, every non-``None`` value has that type.

    The connection encodes and decodes JSON; ``load`` also decodes a JSON string.

    :param of: the type of the values, or ``None`` for any JSON value

    >>> Map(Integer()).cast({"a": "1", "b": None})
    {'a': 1, 'b': None}
    >>> Map(Integer()).name
    'map(integer)'
    """

    __slots__ = ("load_is_identity", "name", "of")
    db_type: t.ClassVar[str] = "jsonb"

    of: Type[t.Any] | None
    name: str
    load_is_identity: bool

    def __init__(self, of: object = None) -> None:
        resolved = None if of is None else resolve(of)
        object.__setattr__(self, "of", resolved)
        object.__setattr__(self, "name", "map" if resolved is None else f"map({_type_name(resolved)})")
        identity = resolved is None or getattr(resolved, "load_is_identity", False) is True
        object.__setattr__(self, "load_is_identity", identity)

    def _args(self) -> tuple[t.Any, ...]:
        return () if self.of is None else (self.of,)

    def _each(self, value: dict[t.Any, t.Any], func: Callable[[t.Any], t.Any]) -> dict[t.Any, t.Any]:
        result: dict[t.Any, t.Any] = {}
        for key, item in value.items():
            try:
                result[key] = None if item is None else func(item)
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"value at key {key!r} {_show(item)}: {exc}") from exc
        return result

    def cast(self, value: t.Any) -> dict[t.Any, t.Any]:
        """Cast a dict, and each of its values when ``of`` is set."""
        if not isinstance(value, dict):
            raise _reject("a dict", value)
        return dict(value) if self.of is None else self._each(value, self.of.cast)

    def dump(self, value: t.Any) -> dict[t.Any, t.Any]:
        """Check a dict (dumping each value when ``of`` is set); the connection encodes it."""
        if not isinstance(value, dict):
            raise _reject("a dict", value)
        return value if self.of is None else self._each(value, self.of.dump)

    def load(self, value: t.Any) -> dict[t.Any, t.Any]:
        """Return a decoded dict, decoding it first if it is still a JSON string."""
        if isinstance(value, str | bytes):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise _reject("a JSON object", value)
        return value if self.of is None else self._each(value, self.of.load)

    def equal(self, a: t.Any, b: t.Any) -> bool:
        """Whether two dicts are equal."""
        return bool(a == b)


class Array(_Frozen):
    """A PostgreSQL array (``<of.db_type>[]``) holding a list; ``None`` elements are kept.

    :param of: the element type (a type, or any spec :func:`resolve` accepts)

    >>> Array(Integer()).cast(("1", 2, None))
    [1, 2, None]
    >>> Array(Array(String())).db_type
    'varchar(255)[][]'
    """

    __slots__ = ("load_is_identity", "name", "of")

    of: Type[t.Any]
    name: str
    load_is_identity: bool

    def __init__(self, of: object) -> None:
        resolved = resolve(of)
        object.__setattr__(self, "of", resolved)
        object.__setattr__(self, "name", f"array({_type_name(resolved)})")
        object.__setattr__(self, "load_is_identity", getattr(resolved, "load_is_identity", False) is True)

    @property
    def db_type(self) -> str:
        """The column type: the element's ``db_type`` followed by ``[]``."""
        return f"{_db_type(self.of)}[]"

    def _args(self) -> tuple[t.Any, ...]:
        return (self.of,)

    def _each(self, value: list[t.Any] | tuple[t.Any, ...], func: Callable[[t.Any], t.Any]) -> list[t.Any]:
        result: list[t.Any] = []
        for index, item in enumerate(value):
            try:
                result.append(None if item is None else func(item))
            except (ValueError, TypeError, OverflowError) as exc:
                raise ValueError(f"element {index} {_show(item)}: {exc}") from exc
        return result

    def cast(self, value: t.Any) -> list[t.Any]:
        """Cast a list or tuple element by element into a new list."""
        if not isinstance(value, list | tuple):
            raise _reject("a list", value)
        return self._each(value, self.of.cast)

    def dump(self, value: t.Any) -> list[t.Any]:
        """Dump a list or tuple element by element into a new list."""
        if not isinstance(value, list | tuple):
            raise _reject("a list", value)
        return self._each(value, self.of.dump)

    def load(self, value: t.Any) -> list[t.Any]:
        """Load a list element by element."""
        if not isinstance(value, list | tuple):
            raise _reject("a list", value)
        if self.load_is_identity:
            return list(value)
        return self._each(value, self.of.load)

    def equal(self, a: t.Any, b: t.Any) -> bool:
        """Whether two lists have the same length and equal elements."""
        if not isinstance(a, list | tuple) or not isinstance(b, list | tuple):
            return bool(a == b)
        return len(a) == len(b) and all(equal(self.of, x, y) for x, y in zip(a, b, strict=True))


_EnumSource: t.TypeAlias = "type[enum.Enum] | list[str] | tuple[str, ...] | Mapping[str, int | str]"


class Enum(_Frozen):
    """A fixed set of values, given one of three ways.

    * ``Enum(Status)`` with an :class:`enum.Enum` subclass: the internal value is the
      member; cast takes the member, its value or its name; dump gives its value.
    * ``Enum(["draft", "published"])``: the internal and dumped value is the string.
    * ``Enum({"draft": 1, "published": 2})``: the internal value is the name, dumped
      as the mapped value.

    :param source: the enum class, the list of strings or the name-to-value mapping
    :raises ValueError: when the source is empty, has duplicates or mixes value kinds

    >>> status = Enum({"draft": 1, "published": 2})
    >>> status.cast("published"), status.dump("published"), status.load(1)
    ('published', 2, 'draft')
    >>> status.values, status.db_type
    (('draft', 'published'), 'integer')
    """

    __slots__ = ("_cast", "_dump", "_key_", "_load", "_source", "db_type", "enum_class", "values")
    name: t.ClassVar[str] = "enum"
    load_is_identity: t.ClassVar[bool] = False

    enum_class: type[enum.Enum] | None
    values: tuple[t.Any, ...]
    db_type: str
    _source: t.Any
    _key_: t.Hashable
    _cast: dict[t.Any, t.Any]
    _dump: dict[t.Any, t.Any]
    _load: dict[t.Any, t.Any]

    def __init__(self, source: _EnumSource) -> None:
        enum_class: type[enum.Enum] | None = None
        cast: dict[t.Any, t.Any]
        key: t.Hashable
        shown: object
        if isinstance(source, type) and issubclass(source, enum.Enum):
            enum_class = source
            members = list(source)
            if not members:
                raise ValueError(f"Enum({source.__qualname__}) needs an enum class with at least one member")
            dump: dict[t.Any, t.Any] = {member: member.value for member in members}
            cast = dict(source.__members__)
            cast.update({member.value: member for member in members})
            kind, key, shown = "class", source, source
        elif isinstance(source, Mapping):
            if not source:
                raise ValueError("Enum({}) needs at least one name")
            if not all(isinstance(name, str) for name in source):
                raise ValueError(f"Enum names must be strings, got {list(source)!r}")
            dump = {str.__str__(name): value for name, value in source.items()}
            cast = {name: name for name in dump}
            kind, key, shown = "map", tuple(dump.items()), dict(dump)
        elif isinstance(source, list | tuple):
            if not source:
                raise ValueError("Enum([]) needs at least one value")
            if not all(isinstance(value, str) for value in source):
                raise ValueError(f"Enum values must be strings, got {list(source)!r}")
            if len(set(source)) != len(source):
                raise ValueError(f"Enum values must be unique, got {list(source)!r}")
            dump = {str.__str__(value): str.__str__(value) for value in source}
            cast = dict(dump)
            kind, key, shown = "list", tuple(dump), list(dump)
        else:
            raise TypeError(
                "Enum() takes an enum.Enum subclass, a list of strings or a dict of names to values, "
                f"got {_show(source)}"
            )
        dumped = list(dump.values())
        if all(isinstance(value, str) for value in dumped):
            db_type = "varchar(255)"
        elif all(_is_int(value) for value in dumped):
            db_type = "integer"
        else:
            raise ValueError(f"Enum values must be all strings or all integers, got {dumped!r}")
        if len(set(dumped)) != len(dumped):
            raise ValueError(f"Enum values must be unique, got {dump!r}")
        object.__setattr__(self, "_key_", (kind, key))
        object.__setattr__(self, "_source", shown)
        object.__setattr__(self, "enum_class", enum_class)
        object.__setattr__(self, "values", tuple(dump))
        object.__setattr__(self, "db_type", db_type)
        object.__setattr__(self, "_cast", cast)
        object.__setattr__(self, "_dump", dump)
        object.__setattr__(self, "_load", {value: internal for internal, value in dump.items()})

    @property
    def mappings(self) -> dict[t.Any, t.Any]:
        """A new dict from each internal value to its dumped value."""
        return dict(self._dump)

    def _args(self) -> tuple[t.Any, ...]:
        return (self._source,)

    def _key(self) -> t.Hashable:
        return self._key_

    def __repr__(self) -> str:
        if self.enum_class is not None:
            return f"Enum({self.enum_class.__qualname__})"
        return super().__repr__()

    def _expected(self) -> str:
        shown = self.values if self.enum_class is None else tuple(self._load)
        return "one of " + ", ".join(repr(v) for v in shown)

    @staticmethod
    def _plain(value: object) -> bool:
        return isinstance(value, str | int) and not isinstance(value, bool | enum.Enum)

    def cast(self, value: t.Any) -> t.Any:
        """Cast a member, name or (for enum classes) value to the internal value."""
        if self.enum_class is not None:
            if isinstance(value, self.enum_class):
                return value
            found = self._cast.get(value) if self._plain(value) else None
        elif isinstance(value, enum.Enum):
            found = self._cast.get(value.value) if isinstance(value.value, str) else None
        else:
            found = self._cast.get(value) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"expected {self._expected()}, got {_show(value)}")
        return found

    def dump(self, value: t.Any) -> t.Any:
        """Dump an internal value (a member or a listed name) to its database value."""
        if self.enum_class is not None:
            found = value.value if isinstance(value, self.enum_class) else None
        else:
            found = self._dump.get(value) if self._plain(value) and isinstance(value, str) else None
        if found is None:
            raise _reject(f"one of {', '.join(repr(v) for v in self.values)}", value)
        return found

    def load(self, value: t.Any) -> t.Any:
        """Load a database value back to its internal value."""
        found = self._load.get(value) if self._plain(value) else None
        if found is None:
            raise ValueError(f"unknown value {_show(value)} for enum, expected {self._expected()}")
        return found

    def equal(self, a: t.Any, b: t.Any) -> bool:
        """Whether two internal values are equal."""
        return bool(a == b)


# -- resolving field specs -----------------------------------------------------------

_NAMED: dict[str, Callable[[], Type[t.Any]]] = {
    "any": Any,
    "id": Id,
    "integer": Integer,
    "float": Float,
    "boolean": Boolean,
    "string": String,
    "binary": Binary,
    "decimal": Decimal,
    "map": Map,
    "date": Date,
    "time": Time,
    "time_usec": TimeUsec,
    "naive_datetime": NaiveDatetime,
    "naive_datetime_usec": NaiveDatetimeUsec,
    "utc_datetime": UtcDatetime,
    "utc_datetime_usec": UtcDatetimeUsec,
    "uuid": UUID,
    "binary_id": BinaryId,
    "duration": Duration,
}

_PYTHON: dict[object, Callable[[], Type[t.Any]]] = {
    int: Integer,
    str: String,
    float: Float,
    bool: Boolean,
    bytes: Binary,
    decimal.Decimal: Decimal,
    dict: Map,
    list: lambda: Array(Any()),
    dt.datetime: NaiveDatetimeUsec,
    dt.date: Date,
    dt.time: TimeUsec,
    dt.timedelta: Duration,
    uuid.UUID: UUID,
    t.Any: Any,
    object: Any,
}

_ACCEPTED = (
    f"accepted are a type name ({', '.join(sorted(_NAMED))}); a Python type (int, str, float, bool, "
    "bytes, Decimal, dict, dict[str, X], list[X], tuple[X, ...], date, time, datetime, timedelta, UUID, "
    "an enum.Enum subclass, Any, X | None, Annotated[X, ...]); or a type instance or class with "
    "name, cast, dump, load and equal"
)


def _unknown(spec: object, why: str) -> SchemaError:
    return SchemaError(f"cannot use {spec!r} as a field type: {why}; {_ACCEPTED}")


def _is_any(spec: object) -> bool:
    return spec is t.Any or spec is object


def _resolve_generic(spec: object, origin: object, args: tuple[t.Any, ...]) -> Type[t.Any]:
    if origin is t.Annotated:
        return resolve(args[0])
    if origin is t.Union or origin is _UnionType:
        options = [arg for arg in args if arg is not type(None)]
        if len(options) != 1:
            raise _unknown(spec, "a union of several types has no single field type")
        return resolve(options[0])
    if origin is list and len(args) == 1:
        return Array(resolve(args[0]))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return Array(resolve(args[0]))
        raise _unknown(spec, "only variable-length tuples (tuple[X, ...]) are supported")
    if origin is dict and len(args) == 2:
        if args[0] is not str and not _is_any(args[0]):
            raise _unknown(spec, "map keys must be str (JSON object keys are strings)")
        return Map() if _is_any(args[1]) else Map(resolve(args[1]))
    raise _unknown(spec, "unsupported generic type")


def resolve(spec: object) -> Type[t.Any]:
    """Turn a field type spec into a type instance.

    :param spec: a type instance or class, a type name such as ``"utc_datetime"``, or a
        Python annotation such as ``int``, ``list[str]`` or ``Decimal | None``
    :raises SchemaError: when the spec names no type

    >>> resolve("integer"), resolve(dict[str, float]), resolve(Integer)
    (Integer(), Map(Float()), Integer())
    """
    if isinstance(spec, str):
        named = _NAMED.get(spec)
        if named is None:
            raise _unknown(spec, "unknown type name")
        return named()
    origin = t.get_origin(spec)
    if origin is not None:
        return _resolve_generic(spec, origin, t.get_args(spec))
    try:
        python = _PYTHON.get(spec)
    except TypeError:  # unhashable
        python = None
    if python is not None:
        return python()
    if isinstance(spec, type):
        if issubclass(spec, enum.Enum):
            try:
                return Enum(spec)
            except ValueError as exc:
                raise _unknown(spec, str(exc)) from exc
        if _implements(spec):
            try:
                instance = spec()
            except TypeError as exc:
                raise _unknown(spec, f"the class needs arguments ({exc}), pass an instance instead") from exc
            return t.cast(Type[t.Any], instance)
        raise _unknown(spec, "unsupported class")
    if _implements(spec):
        return t.cast(Type[t.Any], spec)
    raise _unknown(spec, "not a type")


# -- None-aware entry points ---------------------------------------------------------


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

    >>> dump_value(UtcDatetime(), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    datetime.datetime(2024, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    try:
        return type_.dump(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _cast_error(exc, type_, value, field, schema, "dump") from exc


def load_value(type_: Type[t.Any], value: object) -> t.Any:
    """Load a driver value with ``type_``; ``None`` stays ``None``.

    >>> load_value(Map(), '{"a": 1}')
    {'a': 1}
    """
    if value is None:
        return None
    return type_.load(value)


def equal(type_: Type[t.Any], a: object, b: object) -> bool:
    """Whether two internal values of ``type_`` are equal; ``None`` only equals ``None``.

    >>> equal(Decimal(), decimal.Decimal("1.0"), decimal.Decimal("1.00")), equal(Integer(), 1, None)
    (True, False)
    """
    if a is None or b is None:
        return a is b
    return type_.equal(a, b)
