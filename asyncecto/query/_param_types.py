"""How the planner types a parameter nothing in the query types (``literal_db_type``), and the
numeric and time rules around it (``ago``/``from_now`` shifts, integer widths)."""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
from typing import Any, Literal

from asyncecto import types as t
from asyncecto.errors import QueryError

from ._ast import Expr, Param

__all__ = (
    "beyond_int4",
    "cast_type_of",
    "fits",
    "INT4",
    "INT8",
    "INTEGER_ARGS",
    "literal_db_type",
    "LiteralMode",
    "numeric",
    "shift",
    "WholeNumber",
)


def cast_type_of(typ: t.Type[Any]) -> str | None:
    """The SQL type a ``type_`` cast names: the column type (the adapter widens it to its
    unconstrained base, bigint or unsized varchar, so a cast never cuts a value)."""
    if isinstance(typ, t.Array):
        inner = cast_type_of(typ.of)
        return f"{inner}[]" if inner else None
    db_type: str | None = getattr(typ, "db_type", None)
    return db_type


def fits(typ: t.Type[Any] | None, operand: Expr) -> bool:
    """Whether a parameter operand of arithmetic may take ``typ`` (the other operand's type)."""
    if typ is None or not isinstance(operand, Param):
        return typ is not None
    value = operand.value
    if isinstance(typ, t.Integer | t.Id):
        return not isinstance(value, float | decimal.Decimal)  # a fraction is not narrowed to an integer
    return True


def beyond_int4(typ: t.Type[Any] | None, operand: Expr) -> bool:
    """Whether ``operand`` is an int parameter beyond ``integer`` beside a plain integer field: it is
    then typed by its own value (``bigint``, or ``numeric`` beyond 64 bits), so that ``p.n > 2**40``
    or ``p.id == 2**70`` gives the true answer whatever the column's integer type, not an error."""
    if type(typ) not in (t.Integer, t.Id) or not isinstance(operand, Param):
        return False
    value = operand.value
    return type(value) is int and not -INT4 <= value < INT4


def numeric(typ: t.Type[Any] | None) -> bool:
    return isinstance(typ, t.Integer | t.Id | t.Float | t.Decimal)


LiteralMode = Literal["own", "inferred", "fragment"]
"""Where a parameter with no type from the query stands: ``own`` (nothing around it gives it a type:
a selected value, an order or group term, a function argument), ``inferred`` (beside a column or
expression PostgreSQL types it from, or assigned to a column), ``fragment`` (an argument of raw SQL)."""


INT4 = 2**31


INT8 = 2**63


def literal_db_type(value: Any, mode: LiteralMode = "own") -> str | None:
    """The SQL type a parameter with no type from the query is cast to, from its Python value.

    Integers take PostgreSQL's own rule for an integer literal: ``integer``, else ``bigint``, else
    ``numeric`` (never wrapped). Beside a typed expression (``inferred``) only what PostgreSQL would
    mistype is cast (fractions, integers beyond ``integer``); in a fragment strings, lists and dicts
    stay untyped, for the SQL around them to type.

    >>> literal_db_type(1), literal_db_type(2**40), literal_db_type(2**70), literal_db_type(True)
    ('integer', 'bigint', 'numeric', 'boolean')
    >>> literal_db_type("a"), literal_db_type("a", "fragment"), literal_db_type(1, "inferred")
    ('text', None, None)
    """
    if isinstance(value, bool):
        db_type: str | None = "boolean"
    elif isinstance(value, int):
        db_type = "integer" if -INT4 <= value < INT4 else "bigint" if -INT8 <= value < INT8 else "numeric"
        # beside a typed expression an int4-sized value is left to PostgreSQL (an int2 or jsonb column types
        # it); a larger one is cast, for an integer column would not take it (``int4col + 3000000000`` is bigint)
        return None if mode == "inferred" and db_type == "integer" else db_type
    elif isinstance(value, float):
        return "double precision"  # every mode: next to an integer column PostgreSQL would expect an integer
    elif isinstance(value, decimal.Decimal):
        return "numeric"
    elif isinstance(value, str):
        db_type = "text" if mode == "own" else None
    elif isinstance(value, _dt.datetime):
        db_type = "timestamp" if value.tzinfo is None else "timestamptz"
    elif isinstance(value, _dt.date):
        db_type = "date"
    elif isinstance(value, _dt.time):
        db_type = "time" if value.tzinfo is None else "timetz"
    elif isinstance(value, _dt.timedelta):
        db_type = "interval"
    elif isinstance(value, uuid.UUID):
        db_type = "uuid"
    elif isinstance(value, bytes | bytearray | memoryview):
        db_type = "bytea"
    else:
        db_type = None  # None (NULL), lists, dicts: typed by what surrounds them
    return None if mode == "inferred" else db_type


#: (function, argument index) PostgreSQL types as ``integer`` from the function's signature
INTEGER_ARGS = frozenset({("ntile", 0), ("nth_value", 1), ("lag", 1), ("lead", 1)})


class WholeNumber(t.Integer):
    """How a selected integer literal beyond bigint (sent as ``numeric``) is read back: an ``int``."""

    __slots__ = ()
    load_is_identity = False

    def load(self, value: Any) -> int:
        return int(value)


_UNIT_DELTAS = {
    "week": _dt.timedelta(weeks=1),
    "day": _dt.timedelta(days=1),
    "hour": _dt.timedelta(hours=1),
    "minute": _dt.timedelta(minutes=1),
    "second": _dt.timedelta(seconds=1),
    "millisecond": _dt.timedelta(milliseconds=1),
    "microsecond": _dt.timedelta(microseconds=1),
}


def shift(now: _dt.datetime, amount: Any, unit: str) -> _dt.datetime:
    """``now`` moved by ``amount`` units; months and years keep the day, clamped to the month's end."""
    if unit in _UNIT_DELTAS:
        shifted: _dt.datetime = now + _UNIT_DELTAS[unit] * amount
        return shifted
    months = int(amount) * (12 if unit == "year" else 1)
    if months != amount * (12 if unit == "year" else 1):
        raise QueryError(f"ago/from_now take whole {unit}s, got {amount!r}")
    y, m = divmod(now.month - 1 + months, 12)
    year, month = now.year + y, m + 1
    days = [
        31,
        29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return now.replace(year=year, month=month, day=min(now.day, days[month - 1]))
