"""Scalar types: numbers, booleans, strings, bytes, UUIDs and durations."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import typing as t
import uuid

from ._base import _INT_RE, BaseType, Unstorable, _check_int, _check_text, _is_int, _reject, _show
from ._uuid import Precision, generate_uuid

__all__ = (
    "UUID",
    "Any",
    "Binary",
    "BinaryId",
    "Boolean",
    "Decimal",
    "Duration",
    "Float",
    "Id",
    "Integer",
    "String",
)

_FLOAT_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UUID36_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID32_RE = re.compile(r"[0-9a-fA-F]{32}")


class Any(BaseType[t.Any]):
    """Any value, unchanged in every direction (Ecto's ``:any``); it has no ``db_type``.

    >>> Any().cast([1, "a"])
    [1, 'a']
    """

    __slots__ = ()
    name = "any"


class Integer(BaseType[int]):
    """A PostgreSQL ``integer``; casts ints and strings of digits such as ``"-12"``.

    Any 64-bit value is accepted (the field may live in a ``bigint`` column); beyond that no
    PostgreSQL integer column can hold it and cast and dump refuse it. A value too large for
    the column's own type (``2**40`` in an ``integer`` column) is refused by the database.

    >>> Integer().cast("-12")
    -12
    >>> Integer().cast("1.5")
    Traceback (most recent call last):
    ...
    ValueError: expected an integer, got str '1.5'
    """

    __slots__ = ()
    name = "integer"
    dump_passes = (int,)
    db_type = "integer"

    def cast(self, value: t.Any) -> int:
        if _is_int(value):
            return _check_int(int(value))
        if isinstance(value, str) and len(value) < 32 and _INT_RE.fullmatch(value):
            return _check_int(int(value))
        raise _reject("an integer", value)

    def dump(self, value: t.Any) -> int:
        if _is_int(value):
            return _check_int(int(value))
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
    dump_passes = (float,)
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
    dump_passes = (bool,)
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

    A string PostgreSQL cannot store (one holding a NUL character or a lone surrogate) is
    refused by cast and dump, with the reason.

    >>> String().cast("hi")
    'hi'
    """

    __slots__ = ()
    name = "string"
    dump_passes = (str,)
    db_type = "varchar(255)"

    def cast(self, value: t.Any) -> str:
        if isinstance(value, str):
            return _check_text(value if type(value) is str else str.__str__(value))
        raise _reject("a string", value)

    def dump(self, value: t.Any) -> str:
        if isinstance(value, str):
            return _check_text(value)
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
    dump_passes = (bytes,)
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


_NUMERIC_DIGITS_BEFORE = 131072
_NUMERIC_DIGITS_AFTER = 16383


def _check_numeric(value: decimal.Decimal) -> decimal.Decimal:
    """``value`` itself, or :class:`Unstorable` when PostgreSQL's ``numeric`` cannot hold it."""
    if value.is_finite():
        if value and value.adjusted() >= _NUMERIC_DIGITS_BEFORE:
            raise Unstorable(
                f"out of range: PostgreSQL numeric holds at most {_NUMERIC_DIGITS_BEFORE} digits before the "
                "decimal point",
                "use a float field, or store the number as text",
            )
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -_NUMERIC_DIGITS_AFTER:
            raise Unstorable(
                f"too precise: PostgreSQL numeric holds at most {_NUMERIC_DIGITS_AFTER} digits after the decimal point",
                f"round it first, e.g. value.quantize(Decimal('1e-{_NUMERIC_DIGITS_AFTER}'))",
            )
    elif value.is_snan():
        raise Unstorable("a signaling NaN: PostgreSQL numeric has only a quiet NaN", "use Decimal('NaN')")
    return value


class Decimal(BaseType[decimal.Decimal]):
    """A ``numeric``; casts decimals, ints, floats and numeric strings, never NaN or infinity.

    ``dump`` also takes ``Decimal('NaN')`` and ``Decimal('±Infinity')``, which PostgreSQL's
    ``numeric`` stores (infinity since PostgreSQL 14). A value beyond ``numeric``'s range
    (131072 digits before the point, 16383 after) is refused by cast and dump.

    >>> Decimal().cast(1.1)
    Decimal('1.1')
    """

    __slots__ = ()
    name = "decimal"
    db_type = "numeric"

    def cast(self, value: t.Any) -> decimal.Decimal:
        if isinstance(value, decimal.Decimal) or _is_int(value):
            result = self.dump(value)
            if result.is_finite():
                return result
            raise ValueError(f"expected a finite decimal, got {_show(value)}")
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
                return _check_numeric(result)
            raise ValueError(f"expected a finite decimal, got {_show(value)}")
        raise _reject("a decimal", value)

    def dump(self, value: t.Any) -> decimal.Decimal:
        if _is_int(value):
            return _check_numeric(decimal.Decimal(value))
        if isinstance(value, decimal.Decimal):
            return _check_numeric(value)
        raise _reject("a decimal", value)

    def load(self, value: t.Any) -> decimal.Decimal:
        return t.cast(decimal.Decimal, value)


class _UuidBase(BaseType[uuid.UUID]):
    __slots__ = ()
    db_type = "uuid"
    load_is_identity = False
    dump_passes = (uuid.UUID,)

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

    def autogenerate(self, *, version: int = 4, precision: Precision = "millisecond") -> uuid.UUID:
        """A new UUID: random (version 4) unless ``version=7`` (time-ordered; see :func:`generate_uuid`).

        ``field(autogenerate={"version": 7})`` passes these options (Ecto's ``autogenerate: [version: 7]``).
        """
        return generate_uuid(version=version, precision=precision)


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
