"""What the properties write: a wide schema with one field per built-in type (and a custom one),
on a plain and on a partitioned table, a parent that has many of them, and an embedded schema.

The tables are created inside each test's sandbox (:data:`DDL`), so they go with its rollback.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import uuid
from typing import Any, NamedTuple

from asyncecto import embedded_schema, embeds_many, embeds_one, field, has_many, schema
from asyncecto import types as t

from .text import VARCHAR_N

__all__ = (
    "ARRAY_FIELDS",
    "COLUMNS",
    "DDL",
    "EMBED_FIELDS",
    "FIELDS",
    "PARENTS",
    "TABLES",
    "UNNEST_FIELDS",
    "Color",
    "Emb",
    "Rgb",
    "Status",
    "Wide",
    "WideParted",
    "WidePlain",
)


class Status(enum.Enum):
    """An enum class with string values (unicode included) for an ``Enum`` field."""

    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archivé 🗄"


class Color(NamedTuple):
    """The custom type's internal value."""

    r: int
    g: int
    b: int


_HEX = re.compile(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})")


class Rgb(t.BaseType[Color]):
    """A user type through the public API: a :class:`Color` stored as ``'#rrggbb'`` text."""

    __slots__ = ()
    name = "rgb"
    db_type = "varchar(7)"
    load_is_identity = False

    def cast(self, value: Any) -> Color:
        if isinstance(value, Color):
            return value
        if isinstance(value, str) and (m := _HEX.fullmatch(value)):
            return Color(*(int(part, 16) for part in m.groups()))
        raise TypeError(f"expected a Color or '#rrggbb', got {value!r}")

    def dump(self, value: Any) -> str:
        if isinstance(value, Color) and all(isinstance(c, int) and 0 <= c <= 255 for c in value):
            return "#{:02x}{:02x}{:02x}".format(*value)
        raise TypeError(f"expected a Color of three bytes, got {value!r}")

    def load(self, value: Any) -> Color:
        return self.cast(value)


@embedded_schema
class Emb:
    """An embedded struct with a field of each type JSON can carry (not ``binary``: JSON has no bytes)."""

    id: uuid.UUID | None = None
    s: str | None = None
    i: int | None = field(type=t.Id, default=None)
    f: float | None = None
    dec: decimal.Decimal | None = None
    b: bool | None = None
    d: dt.date | None = None
    tm: dt.time | None = field(type=t.Time, default=None)
    tmu: dt.time | None = field(type=t.TimeUsec, default=None)
    nd: dt.datetime | None = field(type=t.NaiveDatetime, default=None)
    ndu: dt.datetime | None = field(type=t.NaiveDatetimeUsec, default=None)
    ud: dt.datetime | None = field(type=t.UtcDatetime, default=None)
    udu: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)
    u: uuid.UUID | None = None
    dur: dt.timedelta | None = None
    m: dict[str, Any] | None = field(type=t.Map(), default=None)
    ints: list[int] | None = field(type=t.Array(t.Integer), default=None)
    status: Status | None = None
    size: str | None = field(type=t.Enum({"small": 1, "large": 2}), default=None)
    color: Color | None = field(type=Rgb(), default=None)


#: field -> column type, in table order (``id``, ``part``, ``k`` and ``parent_id`` come first)
COLUMNS: dict[str, str] = {
    "s_text": "text",
    "s_var": f"varchar({VARCHAR_N})",
    "i2": "smallint",
    "i4": "integer",
    "i8": "bigint",
    "f": "double precision",
    "dec": "numeric",
    "dec_ps": "numeric(12,4)",
    "b": "boolean",
    "bin": "bytea",
    "d": "date",
    "tm": "time(0)",
    "tmu": "time",
    "nd": "timestamp(0)",
    "ndu": "timestamp",
    "ud": "timestamptz(0)",
    "udu": "timestamptz",
    "u": "uuid",
    "dur": "interval",
    "m": "jsonb",
    "status": "varchar(255)",
    "size": "integer",
    "color": "varchar(7)",
    "ints": "integer[]",
    "grid": "integer[]",
    "tags": f"varchar({VARCHAR_N})[]",
    "one": "jsonb",
    "many": "jsonb",
}

#: the generated fields (every column but the keys the tests set)
FIELDS: tuple[str, ...] = tuple(COLUMNS)
#: fields stored in array columns: ``insert_all`` sends rows holding them with ``VALUES``, not ``unnest``
ARRAY_FIELDS = frozenset({"ints", "grid", "tags"})
EMBED_FIELDS = frozenset({"one", "many"})
#: fields ``insert_all`` sends as one ``unnest`` array per column (not arrays, nor ``embeds_many``'s
#: JSON lists: asyncpg would read a list inside an array parameter as a dimension)
UNNEST_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in ARRAY_FIELDS and f != "many")


def _wide(source: str) -> type[Any]:
    @schema(source)
    class Wide:
        id: int | None = None
        part: str | None = None
        k: int | None = field(type=t.Id, default=None)
        parent_id: int | None = field(type=t.Id, default=None)
        s_text: str | None = None
        s_var: str | None = None
        i2: int | None = None
        i4: int | None = None
        i8: int | None = field(type=t.Id, default=None)
        f: float | None = None
        dec: decimal.Decimal | None = None
        dec_ps: decimal.Decimal | None = None
        b: bool | None = None
        bin: bytes | None = None
        d: dt.date | None = None
        tm: dt.time | None = field(type=t.Time, default=None)
        tmu: dt.time | None = field(type=t.TimeUsec, default=None)
        nd: dt.datetime | None = field(type=t.NaiveDatetime, default=None)
        ndu: dt.datetime | None = field(type=t.NaiveDatetimeUsec, default=None)
        ud: dt.datetime | None = field(type=t.UtcDatetime, default=None)
        udu: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)
        u: uuid.UUID | None = None
        dur: dt.timedelta | None = None
        m: dict[str, Any] | None = field(type=t.Map(), default=None)
        status: Status | None = None
        size: str | None = field(type=t.Enum({"small": 1, "large": 2}), default=None)
        color: Color | None = field(type=Rgb(), default=None)
        ints: list[int | None] | None = field(type=t.Array(t.Integer), default=None)
        grid: list[list[int | None]] | None = field(type=t.Array(t.Array(t.Integer)), default=None)
        tags: list[str | None] | None = field(type=t.Array(t.String), default=None)
        one: Emb | None = embeds_one(Emb, on_replace="delete")
        many: list[Emb] = embeds_many(Emb, on_replace="delete")

    return Wide


#: the wide schema on a plain table
WidePlain = _wide("props_plain")
#: the same fields on a table partitioned by LIST (``part``)
WideParted = _wide("props_parted")
#: the type of either (for annotations)
Wide = type[Any]


def _parent(child: type[Any]) -> type[Any]:
    @schema("props_parents")
    class Parent:
        """Has many wide rows (children written through ``cast_assoc``)."""

        id: int | None = None
        name: str | None = None
        children: list[Any] = has_many(child, foreign_key="parent_id", on_replace="delete")

    return Parent


#: wide schema -> the parent that has many of it
PARENTS: dict[type[Any], type[Any]] = {WidePlain: _parent(WidePlain), WideParted: _parent(WideParted)}


_COLUMNS_SQL = ", ".join(f"{name} {sql}" for name, sql in COLUMNS.items())
_KEYS_SQL = "id bigserial, part text NOT NULL, k bigint NOT NULL, parent_id bigint"

#: source -> the statements creating it (run inside the sandbox)
TABLES: dict[str, tuple[str, ...]] = {
    "props_plain": (f"CREATE TABLE props_plain ({_KEYS_SQL}, {_COLUMNS_SQL}, PRIMARY KEY (id), UNIQUE (part, k))",),
    "props_parted": (
        f"CREATE TABLE props_parted ({_KEYS_SQL}, {_COLUMNS_SQL}, PRIMARY KEY (id, part), UNIQUE (part, k)) "
        "PARTITION BY LIST (part)",
        "CREATE TABLE props_parted_a PARTITION OF props_parted FOR VALUES IN ('a')",
        "CREATE TABLE props_parted_b PARTITION OF props_parted FOR VALUES IN ('b')",
    ),
    "props_parents": ("CREATE TABLE props_parents (id bigserial PRIMARY KEY, name text)",),
}

#: every statement, in order
DDL: tuple[str, ...] = tuple(s for statements in TABLES.values() for s in statements)
