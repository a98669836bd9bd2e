"""The migration configuration (Ecto's repo keys ``migration_*``), read once and checked.

The migrator functions take these as keyword arguments, and the ``asyncecto`` command reads them
from ``[tool.asyncecto]`` in pyproject.toml::

    await migration.run(repo, "migrations", all=True,
                        migration_primary_key={"name": "uuid", "type": "binary_id"},
                        migration_timestamps={"type": "utc_datetime_usec", "inserted_at": "created_at"})

While a migration runs, :func:`current` returns them: ``create(table(...))``, :func:`timestamps`
and :func:`references` take their defaults from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Literal, TypedDict

import attrs

from asyncecto._names import check_name
from asyncecto.errors import ArgumentError

from ._types import _options

__all__ = ("MigrationSettings", "Settings", "current", "read_settings", "using")


class MigrationSettings(TypedDict, total=False):
    """The ``migration_*`` keyword arguments of the migrator functions."""

    #: the versions table (default ``"schema_migrations"``)
    migration_source: str
    #: the schema of a migration's tables, indexes and constraints when neither they nor the migrator have one
    migration_default_prefix: str | None
    #: the primary key ``create(table(...))`` adds: ``{"name": ..., "type": ..., <column options>}``, or False
    migration_primary_key: Mapping[str, Any] | bool
    #: defaults of :func:`references`: ``{"type": ..., "column": ...}``
    migration_foreign_key: Mapping[str, Any]
    #: defaults of :func:`timestamps`: ``{"type": ..., "inserted_at": ..., "updated_at": ..., <column options>}``
    migration_timestamps: Mapping[str, Any]
    #: how migrators keep out of each other's way: ``"advisory"`` (a session advisory lock on a
    #: connection of its own), ``"table"`` (Ecto's default: ``LOCK TABLE schema_migrations IN SHARE
    #: UPDATE EXCLUSIVE MODE`` in a transaction held while the migrations run; works behind a
    #: transaction pooler); default: ``"advisory"``, or ``"table"`` for a repo with
    #: ``pooler="transaction"`` and no ``direct_url``
    migration_lock: Literal["advisory", "table"] | None


@attrs.frozen
class Settings:
    """The checked configuration (see :class:`MigrationSettings`)."""

    source: str = "schema_migrations"
    default_prefix: str | None = None
    primary_key: Mapping[str, Any] | Literal[False] = attrs.field(factory=dict)
    foreign_key: Mapping[str, Any] = attrs.field(factory=dict)
    timestamps: Mapping[str, Any] = attrs.field(factory=dict)
    lock: Literal["advisory", "table"] | None = None


_KEYS = tuple(MigrationSettings.__annotations__)


def _mapping(key: str, value: object, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ArgumentError(f"{key} must be a dict (a table in pyproject.toml), got: {value!r}")
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ArgumentError(f"unknown key {unknown[0]!r} in {key}; expected some of: {', '.join(allowed)}")
    return dict(value)


def _column_name(key: str, field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"{key} {field} must be a non-empty string, got: {value!r}")
    check_name(value, f"{key} {field}")


def read_settings(settings: Mapping[str, Any]) -> Settings:
    """Check the ``migration_*`` options; a wrong key or value raises :class:`ArgumentError` naming it.

    >>> read_settings({"migration_primary_key": {"name": "uuid", "type": "binary_id"}}).primary_key
    {'name': 'uuid', 'type': 'binary_id'}
    """
    unknown = sorted(set(settings) - set(_KEYS))
    if unknown:
        raise ArgumentError(f"unknown migration option {unknown[0]!r}; expected some of: {', '.join(_KEYS)}")
    source = settings.get("migration_source", "schema_migrations")
    _column_name("migration_source", "(the versions table)", source)
    default_prefix = settings.get("migration_default_prefix")
    if default_prefix is not None:
        _column_name("migration_default_prefix", "(a schema)", default_prefix)
    pk_value = settings.get("migration_primary_key", True)
    primary_key: dict[str, Any] | Literal[False]
    if pk_value is False:
        primary_key = False
    elif pk_value is True:
        primary_key = {}
    else:
        primary_key = _mapping("migration_primary_key", pk_value, None)
        rest = dict(primary_key)
        column = rest.pop("name", "id")
        _column_name("migration_primary_key", "name", column)
        kind = rest.pop("type", "bigserial")
        if not isinstance(kind, str) or not kind:
            raise ArgumentError(f"migration_primary_key type must be a type name such as 'binary_id', got: {kind!r}")
        _options(column, rest)
    foreign_key = _mapping("migration_foreign_key", settings.get("migration_foreign_key", {}), ("column", "type"))
    if "column" in foreign_key:
        _column_name("migration_foreign_key", "column", foreign_key["column"])
    if "type" in foreign_key and (not isinstance(foreign_key["type"], str) or not foreign_key["type"]):
        raise ArgumentError(f"migration_foreign_key type must be a type name, got: {foreign_key['type']!r}")
    timestamps = _mapping("migration_timestamps", settings.get("migration_timestamps", {}), None)
    rest = dict(timestamps)
    for field in ("inserted_at", "updated_at"):
        if field in rest:
            name = rest.pop(field)
            if name is not False:
                _column_name("migration_timestamps", field, name)
    kind = rest.pop("type", "naive_datetime")
    if not isinstance(kind, str) or not kind:
        raise ArgumentError(f"migration_timestamps type must be a type name such as 'utc_datetime', got: {kind!r}")
    _options("inserted_at", rest)
    lock = settings.get("migration_lock")
    if lock not in (None, "advisory", "table"):
        raise ArgumentError(f"migration_lock must be 'advisory', 'table' or None, got: {lock!r}")
    return Settings(source, default_prefix, primary_key, foreign_key, timestamps, lock)


_DEFAULT = Settings()
_CURRENT: ContextVar[Settings | None] = ContextVar("asyncecto_migration_settings", default=None)


def current() -> Settings:
    """The settings of the running migration (the defaults outside of one)."""
    return _CURRENT.get() or _DEFAULT


@contextlib.contextmanager
def using(settings: Settings) -> Iterator[None]:
    """Make ``settings`` :func:`current` for the block (the migrator does, around each migration)."""
    token = _CURRENT.set(settings)
    try:
        yield
    finally:
        _CURRENT.reset(token)
