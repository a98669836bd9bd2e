"""Composite types (:class:`Map`, :class:`Array`, :class:`Enum`) and :func:`resolve`.

``resolve`` lives here because it and the composite types need each other: ``Map`` and
``Array`` resolve their element spec, and ``resolve`` builds maps, arrays and enums.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import typing as t
import uuid
from collections.abc import Callable, Mapping

from asyncecto.errors import SchemaError

from ._base import (
    Type,
    Unstorable,
    _check_text,
    _db_type,
    _Frozen,
    _implements,
    _is_int,
    _reject,
    _show,
    _type_name,
    text_problem,
)
from ._scalars import UUID, Any, Binary, BinaryId, Boolean, Decimal, Duration, Float, Id, Integer, String
from ._temporal import Date, NaiveDatetime, NaiveDatetimeUsec, Time, TimeUsec, UtcDatetime, UtcDatetimeUsec
from ._values import equal

__all__ = ("Array", "Enum", "Map", "resolve")

_UnionType = type(int | str)


def _check_json(value: t.Any) -> None:
    """Raise :class:`Unstorable` for what ``jsonb`` cannot hold, anywhere in ``value``: a string
    (key or value) with a NUL character or a lone surrogate, or a float that is NaN or infinite."""
    if not _json_ok(value):
        _json_problem(value, "")


def _text_ok(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or text_problem(text) is None)


_PLAIN = (int, bool, type(None))


def _json_ok(item: t.Any) -> bool:
    """Whether ``jsonb`` can hold ``item`` (the fast check, run on every dump)."""
    if isinstance(item, dict):
        for key, sub in item.items():
            if type(key) is str and not ("\x00" not in key and key.isascii()) and not _text_ok(key):
                return False
            kind = type(sub)
            if kind is str:
                if not ("\x00" not in sub and sub.isascii()) and not _text_ok(sub):
                    return False
            elif kind not in _PLAIN and not _json_ok(sub):
                return False
        return True
    if isinstance(item, str):
        return _text_ok(item)
    if isinstance(item, list | tuple):
        return all(type(sub) in _PLAIN or _json_ok(sub) for sub in item)
    if isinstance(item, float):
        return math.isfinite(item)
    return True


def _json_problem(item: t.Any, where: str) -> None:
    """Raise :class:`Unstorable` for the first thing ``jsonb`` cannot hold, saying where it is."""
    if isinstance(item, str):
        try:
            _check_text(item)
        except Unstorable as exc:
            raise Unstorable(f"at {where}: {exc}" if where else str(exc), exc.fix) from None
    elif isinstance(item, dict):
        for key, sub in item.items():
            at = f"{where}[{_short(key)}]"
            if isinstance(key, str):
                try:
                    _check_text(key)
                except Unstorable as exc:
                    raise Unstorable(f"the key at {at}: {exc}", exc.fix) from None
            _json_problem(sub, at)
    elif isinstance(item, list | tuple):
        for i, sub in enumerate(item):
            _json_problem(sub, f"{where}[{i}]")
    elif isinstance(item, float) and not math.isfinite(item):
        raise Unstorable(
            f"{'at ' + where + ': ' if where else ''}{item!r} is not a JSON number (jsonb cannot hold NaN or infinity)",
            "store it as a string, or as null",
        )


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


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
                if isinstance(exc, Unstorable):
                    raise Unstorable(f"value at key {key!r} {_show(item)}: {exc}", exc.fix) from exc
                raise ValueError(f"value at key {key!r} {_show(item)}: {exc}") from exc
        return result

    def cast(self, value: t.Any) -> dict[t.Any, t.Any]:
        """Cast a dict, and each of its values when ``of`` is set."""
        if not isinstance(value, dict):
            raise _reject("a dict", value)
        result = dict(value) if self.of is None else self._each(value, self.of.cast)
        _check_json(result)
        return result

    def dump(self, value: t.Any) -> dict[t.Any, t.Any]:
        """Check a dict (dumping each value when ``of`` is set); the connection encodes it.

        Anything ``jsonb`` cannot hold (a NUL or a lone surrogate in a key or a string, a NaN
        or infinite float), at any depth, raises :class:`~asyncecto.types.Unstorable`.
        """
        if not isinstance(value, dict):
            raise _reject("a dict", value)
        result = value if self.of is None else self._each(value, self.of.dump)
        _check_json(result)
        return result

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
                if isinstance(exc, Unstorable):
                    raise Unstorable(f"element {index} {_show(item)}: {exc}", exc.fix) from exc
                raise ValueError(f"element {index} {_show(item)}: {exc}") from exc
        return result

    def _no_empty_rows(self, value: list[t.Any] | tuple[t.Any, ...]) -> None:
        """Refuse an empty inner list: a PostgreSQL array is rectangular, so ``[[]]`` would be stored
        (and come back) as ``[]``. Ragged rows the driver refuses by itself."""
        if isinstance(self.of, Array) and any(isinstance(item, list | tuple) and not item for item in value):
            raise ValueError(
                f"an empty inner list cannot be stored: PostgreSQL arrays are rectangular, so {_show(value)} "
                "would come back as []; store [] for no elements"
            )

    def cast(self, value: t.Any) -> list[t.Any]:
        """Cast a list or tuple element by element into a new list."""
        if not isinstance(value, list | tuple):
            raise _reject("a list", value)
        return self._each(value, self.of.cast)

    def dump(self, value: t.Any) -> list[t.Any]:
        """Dump a list or tuple element by element into a new list."""
        if not isinstance(value, list | tuple):
            raise _reject("a list", value)
        self._no_empty_rows(value)
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
