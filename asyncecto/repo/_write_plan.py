"""What a single-row write needs to know about a schema, worked out once per schema.

The write path asks for the same facts on every ``insert``/``update``/``delete`` of a schema: which
fields an insert sends, their columns and types, the timestamps, whether there are embeds,
virtual fields, associations or ``on_delete`` dependents. They never change (a :class:`SchemaInfo`
is frozen), so :func:`write_plan` computes them on the first write and keeps them on the info.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.schema import SchemaInfo
from asyncecto.schema._embeds import embeds

from ._assoc_write import has_dependents

__all__ = ("WritePlan", "write_plan")


@attrs.frozen
class WritePlan:
    """The per-schema facts of the single-row write path (see the module's docs)."""

    #: the schema's name (for error messages)
    name: str
    #: ``(name, autogenerate)`` of each field an insert may send (persisted, ``writable`` not ``"never"``)
    insert_fields: tuple[tuple[str, Callable[[], Any] | None], ...]
    #: those fields' names, in declaration order
    insert_names: tuple[str, ...]
    #: a struct's values of ``insert_names`` as a tuple (one C call)
    insert_values: Callable[[Any], tuple[Any, ...]]
    #: whether any of them has an ``autogenerate``
    autogenerates: bool
    #: ``inserted_at`` then ``updated_at``, those the schema has
    timestamps: tuple[str, ...]
    #: field name to type, every field
    types: Mapping[str, t.Type[Any]]
    #: field name to column (a bound ``dict.__getitem__``: ``map`` runs it at C speed)
    column: Callable[[str], str]
    #: names of the fields stored in the database, and of the virtual ones
    persisted: frozenset[str]
    virtual: frozenset[str]
    #: whether the schema has embed fields, associations, associations with an ``on_delete``
    embeds: bool
    associations: bool
    dependents: bool
    read_after_writes: tuple[str, ...]
    non_insertable: tuple[str, ...]
    non_updatable: tuple[str, ...]


def write_plan(info: SchemaInfo) -> WritePlan:
    """The schema's :class:`WritePlan`, built on first use and kept on ``info``."""
    return info.memo("write_plan", _build)


def _build(info: SchemaInfo) -> WritePlan:
    fields = [f for f in info.persisted if f.writable != "never"]
    names = tuple(f.name for f in fields)
    return WritePlan(
        name=info.name,
        insert_fields=tuple((f.name, f.autogenerate) for f in fields),
        insert_names=names,
        insert_values=_values_of(names),
        autogenerates=any(f.autogenerate is not None for f in fields),
        timestamps=tuple(n for n in (info.inserted_at, info.updated_at) if n is not None),
        types={n: f.type for n, f in info.fields.items()},
        column={n: f.source for n, f in info.fields.items()}.__getitem__,
        persisted=frozenset(f.name for f in info.persisted),
        virtual=frozenset(n for n, f in info.fields.items() if f.virtual),
        embeds=bool(embeds(info)),
        associations=bool(info.associations),
        dependents=has_dependents(info),
        read_after_writes=info.read_after_writes,
        non_insertable=info.non_insertable,
        non_updatable=info.non_updatable,
    )


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function reading ``names`` off a struct into a tuple (``attrgetter`` gives a bare value for one name)."""
    if not names:
        return lambda struct: ()
    if len(names) == 1:
        name = names[0]
        return lambda struct: (getattr(struct, name),)
    getter: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*names)
    return getter
