"""``field()``: the per-field options of a schema, and their resolved reflection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from asyncecto.types import Type

__all__ = ("FieldInfo", "FieldSpec", "OnWritableViolation", "Writable", "field")

#: when a field may be written: on every write, on insert only, or never (Ecto's ``writable:``)
Writable = Literal["always", "insert", "never"]
#: what a write of a non-writable field does: drop it silently, drop it with a warning, or raise
OnWritableViolation = Literal["nothing", "warn", "raise"]
#: ``True``, a callable giving the value, or the type's generator options (``{"version": 7}``)
Autogenerate = bool | Callable[[], Any] | Mapping[str, Any] | None


@attrs.frozen(kw_only=True)
class FieldSpec:
    """The options given to :func:`field`, before the schema resolves them."""

    type: Any = None
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    source: str | None = None
    virtual: bool = False
    redact: bool | None = None
    read_after_writes: bool = False
    autogenerate: Autogenerate = None
    primary_key: bool = False
    load_in_query: bool = True
    writable: Writable = "always"
    on_writable_violation: OnWritableViolation | None = None
    skip_default_validation: bool = False


def field(
    *,
    type: Any = None,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    source: str | None = None,
    virtual: bool = False,
    redact: bool | None = None,
    read_after_writes: bool = False,
    autogenerate: Autogenerate = None,
    primary_key: bool = False,
    load_in_query: bool = True,
    writable: Writable = "always",
    on_writable_violation: OnWritableViolation | None = None,
    skip_default_validation: bool = False,
) -> Any:
    """Declare a schema field with options; the annotation gives the type unless ``type=`` does.

    :param type: a Python type, a type from :mod:`asyncecto.types`, or its name (``"utc_datetime"``)
    :param default: the value a new struct starts with (``None`` unless given)
    :param default_factory: a callable giving the default, for mutable values (``list``)
    :param source: the column name, when it differs from the field name
    :param virtual: kept on the struct only, never read from or written to the database
    :param redact: hidden as ``**redacted**`` in ``repr``; by default the schema's ``redact=``
    :param read_after_writes: read back with ``RETURNING`` after every insert and update
    :param autogenerate: ``True`` to let the type generate a value on insert (UUIDs), the type
        generator's options (``{"version": 7}`` for a time-ordered UUIDv7), or a callable
    :param primary_key: part of the primary key (several fields make a composite key)
    :param load_in_query: ``False`` leaves the field out when the whole struct is queried (it keeps
        its default) unless a query selects it by name (``select([...])`` or ``select_merge``)
    :param writable: ``"always"``, ``"insert"`` (written on insert, never updated, not even by an
        upsert) or ``"never"`` (read only); the Repo drops changes to a field it may not write
    :param on_writable_violation: what writing a non-writable field does: ``"nothing"`` (the
        default: dropped), ``"warn"`` (dropped, logged on logger ``asyncecto``) or ``"raise"``
    :param skip_default_validation: do not check ``default`` against the field's type

    >>> from asyncecto import schema, field
    >>> @schema("users")
    ... class User:
    ...     email: str | None = field(source="email_address")
    ...     password: str | None = field(redact=True)
    >>> User(email="a@b.c", password="hunter2")
    User(id=None, email='a@b.c', password=**redacted**)
    """
    return FieldSpec(
        type=type,
        default=default,
        default_factory=default_factory,
        source=source,
        virtual=virtual,
        redact=redact,
        read_after_writes=read_after_writes,
        autogenerate=autogenerate,
        primary_key=primary_key,
        load_in_query=load_in_query,
        writable=writable,
        on_writable_violation=on_writable_violation,
        skip_default_validation=skip_default_validation,
    )


@attrs.frozen(kw_only=True)
class FieldInfo:
    """A resolved field, as reflected by :func:`asyncecto.schema.schema_info`.

    :ivar autogenerate: a callable giving a value on insert when the field is ``None``;
        ``None`` when nothing is generated in Python (the database may still generate it)
    :ivar load_in_query: whether selecting the whole struct reads this field
    :ivar writable: ``"always"``, ``"insert"`` or ``"never"``
    :ivar on_writable_violation: ``"nothing"``, ``"warn"`` or ``"raise"``
    """

    name: str
    type: Type[Any]
    source: str
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    virtual: bool = False
    redact: bool = False
    read_after_writes: bool = False
    autogenerate: Callable[[], Any] | None = None
    primary_key: bool = False
    load_in_query: bool = True
    writable: Writable = "always"
    on_writable_violation: OnWritableViolation = "nothing"
