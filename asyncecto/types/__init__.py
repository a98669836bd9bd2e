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

from ._base import BaseType as BaseType
from ._base import Type as Type
from ._base import Unstorable as Unstorable
from ._composite import Array as Array
from ._composite import Enum as Enum
from ._composite import Map as Map
from ._composite import resolve as resolve

# Ecto.Type's helpers (is_primitive, embed_as, format_type, includes, trim)
from ._helpers import embed_as as embed_as
from ._helpers import format_type as format_type
from ._helpers import includes as includes
from ._helpers import is_primitive as is_primitive
from ._helpers import trim as trim
from ._scalars import UUID as UUID
from ._scalars import Any as Any
from ._scalars import Binary as Binary
from ._scalars import BinaryId as BinaryId
from ._scalars import Boolean as Boolean
from ._scalars import Decimal as Decimal
from ._scalars import Duration as Duration
from ._scalars import Float as Float
from ._scalars import Id as Id
from ._scalars import Integer as Integer
from ._scalars import String as String
from ._temporal import Date as Date
from ._temporal import NaiveDatetime as NaiveDatetime
from ._temporal import NaiveDatetimeUsec as NaiveDatetimeUsec
from ._temporal import Time as Time
from ._temporal import TimeUsec as TimeUsec
from ._temporal import UtcDatetime as UtcDatetime
from ._temporal import UtcDatetimeUsec as UtcDatetimeUsec

# UUID generation (version 4 and time-ordered version 7)
from ._uuid import generate_uuid as generate_uuid
from ._uuid import uuid_to_datetime as uuid_to_datetime
from ._uuid import uuid_to_unix as uuid_to_unix
from ._values import cast_value as cast_value
from ._values import check_passed as check_passed
from ._values import dump_passes as dump_passes
from ._values import dump_value as dump_value
from ._values import equal as equal
from ._values import load_value as load_value

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
    "Unstorable",
    "UtcDatetime",
    "UtcDatetimeUsec",
    "cast_value",
    "check_passed",
    "dump_passes",
    "dump_value",
    "embed_as",
    "equal",
    "format_type",
    "generate_uuid",
    "includes",
    "is_primitive",
    "load_value",
    "resolve",
    "trim",
    "uuid_to_datetime",
    "uuid_to_unix",
)
