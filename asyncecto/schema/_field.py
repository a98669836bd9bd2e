"""``field()``: the per-field options of a schema, and their resolved reflection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from asyncecto.types import Type

__all__ = ("FieldInfo", "FieldSpec", "field")


@attrs.frozen(kw_only=True)
class FieldSpec:
    """The options given to :func:`field`, before the schema resolves them."""

    type: Any = None
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    source: str | None = None
    virtual: bool = False
    redact: bool = False
    read_after_writes: bool = False
    autogenerate: bool | Callable[[], Any] | None = None
    primary_key: bool = False


def field(
    *,
    type: Any = None,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    source: str | None = None,
    virtual: bool = False,
    redact: bool = False,
    read_after_writes: bool = False,
    autogenerate: bool | Callable[[], Any] | None = None,
    primary_key: bool = False,
) -> Any:
    """Declare a schema field with options; the annotation gives the type unless ``type=`` does.

    :param type: a Python type, a type from :mod:`asyncecto.types`, or its name (``"utc_datetime"``)
    :param default: the value a new struct starts with (``None`` unless given)
    :param default_factory: a callable giving the default, for mutable values (``list``)
    :param source: the column name, when it differs from the field name
    :param virtual: kept on the struct only, never read from or written to the database
    :param redact: hidden as ``**redacted**`` in ``repr``
    :param read_after_writes: read back with ``RETURNING`` after every insert and update
    :param autogenerate: ``True`` to let the type generate a value on insert (UUIDs), or a callable
    :param primary_key: part of the primary key (several fields make a composite key)

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
    )


@attrs.frozen(kw_only=True)
class FieldInfo:
    """A resolved field, as reflected by :func:`asyncecto.schema.schema_info`.

    :ivar autogenerate: a callable giving a value on insert when the field is ``None``;
        ``None`` when nothing is generated in Python (the database may still generate it)
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
