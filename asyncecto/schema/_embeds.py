"""``embeds_one`` / ``embeds_many``: embedded schemas stored as ``jsonb`` inside the parent's row.

An embed is a field whose type (:class:`EmbedOne` / :class:`EmbedMany`) dumps embedded
structs to JSON objects (keys are the fields' sources) and loads them back the way
``cast`` would: unknown keys are ignored and missing keys take the field's default.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from asyncecto import types as t
from asyncecto.errors import ArgumentError, SchemaError
from asyncecto.types._base import Unstorable, _Frozen

from ._associations import NotLoaded
from ._field import field
from ._info import SchemaInfo, is_schema, schema_info, struct_info
from ._struct import meta, replace

__all__ = ("EmbedMany", "EmbedOne", "OnReplace", "embedded_dump", "embedded_load", "embeds_many", "embeds_one")

OnReplace = Literal["raise", "mark_as_invalid", "delete", "update"]
_S = TypeVar("_S")
_ALLOWED: dict[str, tuple[str, ...]] = {
    "one": ("raise", "mark_as_invalid", "delete", "update"),
    "many": ("raise", "mark_as_invalid", "delete"),
}


def _embedded_info(schema: Any, kind: str) -> SchemaInfo:
    if not (isinstance(schema, type) and is_schema(schema)) or not schema_info(schema).embedded:
        raise SchemaError(f"embeds_{kind} expects an @embedded_schema class, got {schema!r}")
    return schema_info(schema)


def _check_on_replace(on_replace: str, kind: str) -> None:
    if on_replace not in _ALLOWED[kind]:
        raise SchemaError(
            f"invalid on_replace {on_replace!r} for embeds_{kind}; use one of {', '.join(_ALLOWED[kind])}"
        )


#: a duration stored as a string: its exact number of seconds
_SECONDS = re.compile(r"-?[0-9]+(\.[0-9]{1,6})?")


def _json_load(type_: Any, value: Any) -> Any:
    """A field value read back from JSON: embeds load; other values cast (dates come back as
    strings), else load (a mapped enum's stored integer); durations were stored as seconds (a
    number, or a decimal string when a float would have rounded away microseconds).
    """
    if value is None:
        return None
    if isinstance(type_, EmbedOne | EmbedMany):
        return type_.load(value)
    if isinstance(type_, t.Duration):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        if isinstance(value, str) and _SECONDS.fullmatch(value):  # seconds a float could not carry exactly
            return dt.timedelta(microseconds=int(decimal.Decimal(value).scaleb(6)))
    try:
        return type_.cast(value)
    except (ValueError, TypeError):
        return type_.load(value)


def _json_dump(type_: Any, value: Any) -> Any:
    if value is None:
        return None
    dumped = type_.dump(value)
    if isinstance(dumped, dt.timedelta):
        seconds = dumped.total_seconds()
        with contextlib.suppress(OverflowError):  # rounded past timedelta.max
            if dt.timedelta(seconds=seconds) == dumped:
                return seconds
        # beyond ~2**33 seconds a float drops microseconds: the exact decimal, as a string
        whole = (dumped.days * 86400 + dumped.seconds) * 10**6 + dumped.microseconds
        return str(decimal.Decimal(whole).scaleb(-6))
    if isinstance(dumped, float) and not math.isfinite(dumped):
        raise Unstorable(
            f"{dumped!r} is not a JSON number (an embed is stored as jsonb, which cannot hold NaN or infinity)",
            "store None instead, or keep the value in a float column of the parent",
        )
    return dumped


def _refuse_unwritten_related(info: SchemaInfo, struct: Any) -> None:
    """An embed's association holding what its JSON cannot keep (a related struct never inserted, or a
    ``belongs_to`` struct other than the one its key names) is refused: the Repo writes no related rows
    of an embedded struct (Ecto drops them silently), so it would be lost."""
    for a in info.associations.values():
        held = getattr(struct, a.name, None)
        if held is None or isinstance(held, NotLoaded):
            continue
        for item in held if isinstance(held, list) else (held,):
            if meta(item).state != "loaded":
                raise ArgumentError(
                    f"association {a.name!r} of the embedded schema {info.name} holds a {type(item).__name__} "
                    f"that was never inserted; the Repo writes no related rows of an embedded struct, so it "
                    f"would be lost: {item!r}\n\nfix: insert it first, {a.name} = await repo.insert(...), and "
                    f"put the loaded struct" + (f", or set the key {a.owner_key!r}" if a.kind == "belongs_to" else "")
                )
            if a.kind == "belongs_to" and a.owner_key is not None:
                key = getattr(item, a.related_key or "id")
                own = getattr(struct, a.owner_key)
                if key != own:
                    raise ArgumentError(
                        f"association {a.name!r} of the embedded schema {info.name} holds the "
                        f"{type(item).__name__} with {a.related_key or 'id'}={key!r}, but its key "
                        f"{a.owner_key}={own!r}; only the key is stored, so the association would be lost"
                        f"\n\nfix: set {a.owner_key}={key!r} too, or put_assoc({a.name!r}, struct) on the "
                        f"embed's changeset, which sets both"
                    )


class _Embed(_Frozen):
    """What :class:`EmbedOne` and :class:`EmbedMany` share: the embedded schema and ``on_replace``
    (an immutable value, equal by both, like the other composite types).
    """

    __slots__ = ("info", "on_replace", "schema")
    db_type: ClassVar[str] = "jsonb"
    load_is_identity: ClassVar[bool] = False
    cardinality: ClassVar[str]
    info: SchemaInfo
    on_replace: str
    schema: Any

    def __init__(self, schema: Any, on_replace: str = "raise") -> None:
        object.__setattr__(self, "info", _embedded_info(schema, self.cardinality))
        _check_on_replace(on_replace, self.cardinality)
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "on_replace", on_replace)

    def _args(self) -> tuple[Any, ...]:
        return (self.schema, self.on_replace)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schema.__name__}, on_replace={self.on_replace!r})"

    def _struct(self, value: Any) -> Any:
        """An embedded struct from a struct of the schema or a mapping of its fields."""
        if isinstance(value, self.schema):
            return value
        if isinstance(value, dict):
            known = {}
            for name, f in self.info.fields.items():
                if name in value:
                    known[name] = f.type.cast(value[name]) if value[name] is not None else None
            return self.schema(**known)
        raise TypeError(f"expected a {self.schema.__name__} or a dict of its fields, got {type(value).__name__}")

    def _dump_one(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, self.schema):
            raise TypeError(f"expected a {self.schema.__name__}, got {type(value).__name__} {value!r}")
        return {f.source: _json_dump(f.type, getattr(value, f.name)) for f in self.info.persisted}

    def _load_one(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object for {self.schema.__name__}, got {type(value).__name__}")
        known = {}
        for f in self.info.persisted:
            if f.source in value:
                known[f.name] = _json_load(f.type, value[f.source])
        return self.schema(**known)

    def _generate(self, struct: Any, now: dt.datetime) -> Any:
        """The struct with its autogenerated primary key and timestamps filled (when ``None``); what its
        associations hold and the write would lose is refused."""
        if self.info.associations:
            _refuse_unwritten_related(self.info, struct)
        filled: dict[str, Any] = {}
        for f in self.info.persisted:
            current = getattr(struct, f.name)
            if current is None and f.autogenerate is not None:
                filled[f.name] = f.autogenerate()
            elif isinstance(f.type, _Embed) and current is not None:
                nested = f.type.autogenerate(current, now)
                if nested is not current:
                    filled[f.name] = nested
        missing = [n for n in (self.info.inserted_at, self.info.updated_at) if n and getattr(struct, n) is None]
        if missing:
            stamp = self.info.timestamp(now)
            for name in missing:
                filled[name] = stamp
        return replace(struct, **filled) if filled else struct

    def equal(self, a: Any, b: Any) -> bool:
        return bool(a == b)

    def autogenerate(self, value: Any, now: dt.datetime) -> Any:
        raise NotImplementedError


class EmbedOne(_Embed):
    """The type of an ``embeds_one`` field: one embedded struct in a ``jsonb`` column."""

    __slots__ = ()
    cardinality = "one"

    @property
    def name(self) -> str:
        return f"embeds_one({self.schema.__name__})"

    def cast(self, value: Any) -> Any:
        return self._struct(value)

    def dump(self, value: Any) -> Any:
        return self._dump_one(value)

    def load(self, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        return self._load_one(value)

    def autogenerate(self, value: Any, now: dt.datetime) -> Any:
        return self._generate(value, now)


class EmbedMany(_Embed):
    """The type of an ``embeds_many`` field: a list of embedded structs in a ``jsonb`` column."""

    __slots__ = ()
    cardinality = "many"

    @property
    def name(self) -> str:
        return f"embeds_many({self.schema.__name__})"

    def cast(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of {self.schema.__name__}, got {type(value).__name__}")
        return [self._struct(v) for v in value]

    def dump(self, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of {self.schema.__name__}, got {type(value).__name__} {value!r}")
        return [self._dump_one(v) for v in value]

    def load(self, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array for {self.schema.__name__}, got {type(value).__name__}")
        return [self._load_one(v) for v in value]

    def autogenerate(self, value: Any, now: dt.datetime) -> Any:
        out = [self._generate(v, now) for v in value]
        return value if all(a is b for a, b in zip(out, value, strict=True)) else out


def embeds_one(
    schema: Any,
    *,
    on_replace: OnReplace = "raise",
    source: str | None = None,
    load_in_query: bool = True,
    defaults_to_struct: bool = False,
) -> Any:
    """A field holding one ``@embedded_schema`` struct (or ``None``), stored as ``jsonb``.

    ``load_in_query=False`` leaves it out when the parent is queried whole (see :func:`field`).
    ``defaults_to_struct=True`` makes a new parent start with an empty ``schema()`` instead of
    ``None`` (a ``NULL`` read back from the database stays ``None``, as in Ecto). The embedded
    schema's own primary key is set on it: ``@embedded_schema(primary_key=False)``.

    >>> from asyncecto import embedded_schema, schema
    >>> @embedded_schema
    ... class Address:
    ...     city: str | None = None
    >>> @schema("people")
    ... class Person:
    ...     address: Address | None = embeds_one(Address)
    >>> Person(address=Address(city="Oslo")).address.city
    'Oslo'
    """
    if not isinstance(defaults_to_struct, bool):
        raise SchemaError(f"embeds_one defaults_to_struct must be True or False, got {defaults_to_struct!r}")
    return field(
        type=EmbedOne(schema, on_replace),
        source=source,
        load_in_query=load_in_query,
        default_factory=schema if defaults_to_struct else None,
    )


def embeds_many(
    schema: Any, *, on_replace: OnReplace = "raise", source: str | None = None, load_in_query: bool = True
) -> Any:
    """A field holding a list of ``@embedded_schema`` structs (default ``[]``), stored as ``jsonb``."""
    return field(type=EmbedMany(schema, on_replace), default_factory=list, source=source, load_in_query=load_in_query)


_FOUND: dict[int, tuple[SchemaInfo, dict[str, EmbedOne | EmbedMany]]] = {}


def embeds(info: SchemaInfo) -> dict[str, EmbedOne | EmbedMany]:
    """The schema's embed fields by name (cached: the write path asks on every write)."""
    hit = _FOUND.get(id(info))
    if hit is not None and hit[0] is info:
        return hit[1]
    found = {n: f.type for n, f in info.fields.items() if isinstance(f.type, EmbedOne | EmbedMany)}
    _FOUND[id(info)] = (info, found)  # the info is kept alive, so its id is never reused
    return found


def embed_schema_of(info: SchemaInfo, name: str) -> Any:
    """The embedded schema held by the embed field ``name`` of ``info``, else ``None``."""
    typ = embeds(info).get(name)
    return None if typ is None else typ.schema


def _plain(value: Any) -> Any:
    """Dumped data as plain JSON values, as the ``jsonb`` column holds them (the encoder's rules)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _check_format(format: str, action: str) -> None:
    if format != "json":
        raise ArgumentError(f"{action}: unsupported format {format!r}; the only format is 'json'")


def embedded_load(schema: type[_S], data: Mapping[str, Any], format: str = "json", /) -> _S:
    """A struct of ``schema`` from data dumped by :func:`embedded_dump` (Ecto's ``embedded_load/3``).

    Keys are the fields' sources; unknown keys are ignored and missing ones keep their defaults.
    A value the field's type cannot load raises :class:`~asyncecto.errors.ArgumentError`.

    >>> from asyncecto import embedded_schema
    >>> @embedded_schema(primary_key=False)
    ... class Point:
    ...     x: int | None = None
    >>> embedded_load(Point, {"x": 1}, "json")
    Point(x=1)
    """
    _check_format(format, "embedded_load")
    if not (isinstance(schema, type) and is_schema(schema)):
        raise ArgumentError(f"embedded_load expects a schema class, got {schema!r}")
    info = schema_info(schema)
    if not isinstance(data, Mapping):
        raise ArgumentError(f"embedded_load expects a dict of {info.name}'s fields, got {type(data).__name__} {data!r}")
    known: dict[str, Any] = {}
    for f in info.persisted:
        if f.source in data:
            value = data[f.source]
            try:
                known[f.name] = read = _json_load(f.type, value)
                if read is not None and not isinstance(f.type, _Embed):
                    f.type.dump(read)  # _json_load falls back to load, which trusts the value
            except (ValueError, TypeError) as exc:
                raise ArgumentError(
                    f"cannot load {value!r} as type {f.type.name} for field {f.name!r} in schema {info.name}: {exc}"
                ) from exc
    loaded: _S = schema(**known)
    return loaded


def embedded_dump(struct: Any, format: str = "json", /) -> dict[str, Any]:
    """The struct's persisted fields as plain JSON data, keyed by source, exactly as an embed's
    ``jsonb`` holds them (Ecto's ``embedded_dump/2``): dates, times, UUIDs and decimals become
    strings; virtual fields, associations and the meta are left out. :func:`embedded_load` reads
    it back.

    >>> from asyncecto import embedded_schema
    >>> @embedded_schema(primary_key=False)
    ... class Point:
    ...     x: int | None = None
    >>> embedded_dump(Point(x=1), "json")
    {'x': 1}
    """
    _check_format(format, "embedded_dump")
    info = struct_info(struct, "dump a struct")
    out: dict[str, Any] = {}
    for f in info.persisted:
        value = getattr(struct, f.name)
        try:
            out[f.source] = _plain(_json_dump(f.type, value))
        except (ValueError, TypeError, OverflowError) as exc:
            raise ArgumentError(
                f"cannot dump {value!r} as type {f.type.name} for field {f.name!r} in schema {info.name}: {exc}"
            ) from exc
    return out
