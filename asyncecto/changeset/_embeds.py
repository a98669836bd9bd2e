"""``cast_embed`` and ``put_embed``: changes to ``embeds_one`` / ``embeds_many`` fields.

The change recorded for an embed is a child changeset (or a list of them, for
``embeds_many``) with ``action`` ``insert``, ``update`` or ``replace`` (an entry being
removed); the matching is shared with associations (``_relations``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from asyncecto.errors import ArgumentError
from asyncecto.schema._embeds import EmbedMany, EmbedOne

from ._cast import _known, _original
from ._changeset import Changeset
from ._relations import Rel, With, applied, cast_relation, put_relation

__all__ = ("applied", "cast_embed", "put_embed")

_T = TypeVar("_T")


def _rel(cs: Changeset[Any], name: str, fn: str) -> Rel:
    typ = _known(cs, name)
    if not isinstance(typ, EmbedOne | EmbedMany):
        raise ArgumentError(f"{fn} expects an embeds_one or embeds_many field, {name!r} is a {typ.name}")
    decl = "embeds_one" if isinstance(typ, EmbedOne) else "embeds_many"
    return Rel(
        name=name,
        parent=type(cs.data).__name__,
        schema=typ.schema,
        many=isinstance(typ, EmbedMany),
        on_replace=typ.on_replace,
        kind="embed",
        declaration=f'{name}: ... = {decl}({typ.schema.__name__}, on_replace="delete") '
        '(or "mark_as_invalid"; "update" for embeds_one)',
    )


def cast_embed(
    cs: Changeset[_T],
    name: str,
    /,
    *,
    with_: With | None = None,
    required: bool = False,
    required_message: str = "can't be blank",
    invalid_message: str = "is invalid",
) -> Changeset[_T]:
    """Cast ``params[name]`` into the embed with ``with_(struct, params)`` (default: the embedded
    schema's ``changeset`` function, or a ``cast`` of its fields).

    Entries are matched to the current ones by primary key: a match is updated, anything else
    inserted; current entries left out are handled by the field's ``on_replace``.

    >>> from asyncecto import embedded_schema, embeds_one, schema
    >>> from asyncecto.changeset import cast
    >>> @embedded_schema
    ... class Address:
    ...     city: str | None = None
    >>> @schema("people")
    ... class Person:
    ...     name: str | None = None
    ...     address: Address | None = embeds_one(Address)
    >>> cs = cast_embed(cast(Person(), {"address": {"city": "Oslo"}}, ["name"]), "address")
    >>> cs.changes["address"].changes, cs.changes["address"].action
    ({'city': 'Oslo'}, 'insert')
    """
    return cast_relation(
        cs, _rel(cs, name, "cast_embed"), _original(cs, name), with_, required, required_message, invalid_message
    )


def put_embed(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]:
    """Put structs, changesets or field mappings (or ``None`` / ``[]``) as the embed's new value.

    Structs and mappings are not validated. Entries are matched by primary key as in
    :func:`cast_embed`. With ``on_replace="update"`` (``embeds_one``) a mapping of fields
    updates the current entry in place; a struct or changeset must carry its primary key.
    ``change(cs, field=...)`` and ``put_change`` on an embed field come here too.
    """
    return put_relation(cs, _rel(cs, name, "put_embed"), _original(cs, name), value)
