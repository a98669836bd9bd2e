"""What asyncecto knows about a schema (:class:`SchemaInfo`, Ecto's ``__schema__``), and looking it up."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError

from ._field import FieldInfo
from ._meta import Meta

if TYPE_CHECKING:
    from ._associations import Association

__all__ = ("SchemaInfo", "is_schema", "schema_info", "struct_info")

_M = TypeVar("_M")


@attrs.frozen(kw_only=True)
class SchemaInfo:
    """Everything asyncecto knows about a schema (Ecto's ``__schema__``)."""

    name: str
    source: str | None
    prefix: str | None
    fields: Mapping[str, FieldInfo]
    primary_key: tuple[str, ...]
    autogenerate_id: str | None
    inserted_at: str | None
    updated_at: str | None
    timestamp_type: t.Type[Any] | None
    embedded: bool
    built_meta: Meta | None
    associations: Mapping[str, Association] = attrs.field(factory=dict)
    #: ``Timestamps(autogenerate=...)``: the callable giving timestamp values, else ``None`` (the clock)
    timestamp_autogenerate: Callable[[], Any] | None = None

    @property
    def context(self) -> Any:
        """The schema's ``context=`` (Ecto's ``@schema_context``), put in every struct's meta."""
        return None if self.built_meta is None else self.built_meta.context

    def timestamp(self, now: _dt.datetime) -> Any:
        """The value both timestamps get on insert (``updated_at`` on update): the schema's
        ``autogenerate`` callable's, else ``now`` cast to the timestamps' type."""
        if self.timestamp_autogenerate is not None:
            return self.timestamp_autogenerate()
        assert self.timestamp_type is not None
        return self.timestamp_type.cast(now)

    #: what is fixed per schema, computed on first use (the struct tuples below, the copier, the
    #: write path's plan): the info is frozen, so nothing here ever goes stale
    _memo: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def memo(self, key: str, build: Callable[[SchemaInfo], _M]) -> _M:
        """``build(self)``, computed once per schema and kept (``key`` names it: one key, one builder)."""
        try:
            value: _M = self._memo[key]
        except KeyError:
            value = self._memo[key] = build(self)
        return value

    @property
    def persisted(self) -> tuple[FieldInfo, ...]:
        """The fields stored in the database, in declaration order."""
        return self.memo("persisted", _persisted)

    @property
    def query_fields(self) -> tuple[str, ...]:
        """The fields selecting the whole struct reads (persisted, without ``load_in_query=False``)."""
        return self.memo("query_fields", _query_fields)

    @property
    def non_insertable(self) -> tuple[str, ...]:
        """The persisted fields an insert never writes (``writable="never"``)."""
        return self.memo("non_insertable", _non_insertable)

    @property
    def non_updatable(self) -> tuple[str, ...]:
        """The persisted fields an update (or an upsert's update) never writes (``writable`` not ``"always"``)."""
        return self.memo("non_updatable", _non_updatable)

    @property
    def read_after_writes(self) -> tuple[str, ...]:
        """The fields read back with ``RETURNING`` after every insert and update."""
        return self.memo("read_after_writes", _read_after_writes)

    @property
    def slots(self) -> tuple[str, ...]:
        """Every slot of a struct: the fields, the associations, then the meta (regular schemas only)."""
        return self.memo("slots", _slots)

    def association(self, name: str) -> Association:
        """The association called ``name``; an unknown name raises, listing the known ones."""
        try:
            return self.associations[name]
        except KeyError:
            raise ArgumentError(
                f"schema {self.name} has no association {name!r}; "
                f"associations: {', '.join(self.associations) or 'none declared'}"
            ) from None

    def field(self, name: str) -> FieldInfo:
        """The field called ``name``; an unknown name raises, listing the known ones."""
        try:
            return self.fields[name]
        except KeyError:
            raise ArgumentError(
                f"unknown field {name!r} for schema {self.name}; known fields: {', '.join(self.fields)}"
            ) from None


def _persisted(info: SchemaInfo) -> tuple[FieldInfo, ...]:
    return tuple(f for f in info.fields.values() if not f.virtual)


def _query_fields(info: SchemaInfo) -> tuple[str, ...]:
    return tuple(f.name for f in info.fields.values() if not f.virtual and f.load_in_query)


def _non_insertable(info: SchemaInfo) -> tuple[str, ...]:
    return tuple(f.name for f in info.fields.values() if not f.virtual and f.writable == "never")


def _non_updatable(info: SchemaInfo) -> tuple[str, ...]:
    return tuple(f.name for f in info.fields.values() if not f.virtual and f.writable != "always")


def _read_after_writes(info: SchemaInfo) -> tuple[str, ...]:
    return tuple(f.name for f in info.fields.values() if f.read_after_writes)


def _slots(info: SchemaInfo) -> tuple[str, ...]:
    names = (*info.fields, *info.associations)
    return names if info.embedded else (*names, "__meta__")


def is_schema(obj: object) -> bool:
    """Whether ``obj`` is a schema class (from ``@schema`` or ``@embedded_schema``)."""
    return isinstance(obj, type) and isinstance(obj.__dict__.get("__schema__"), SchemaInfo)


def struct_info(obj: object, action: str) -> SchemaInfo:
    """The :class:`SchemaInfo` of a struct; a schema class (not an instance) is refused with a hint."""
    if isinstance(obj, type):
        hint = f"pass a struct such as {obj.__name__}(...)" if is_schema(obj) else "pass a schema struct"
        raise ArgumentError(f"cannot {action}: expected a struct, got the class {obj.__name__}; {hint}")
    return schema_info(obj)


def schema_info(obj: object) -> SchemaInfo:
    """The :class:`SchemaInfo` of a schema class or struct."""
    cls = obj if isinstance(obj, type) else type(obj)
    info = cls.__dict__.get("__schema__")
    if not isinstance(info, SchemaInfo):
        raise ArgumentError(f"expected a schema class or struct, got {obj!r}; decorate the class with @schema")
    return info
