"""``cast_embed`` and ``put_embed``: changes to ``embeds_one`` / ``embeds_many`` fields.

The change recorded for an embed is a child changeset (or a list of them, for
``embeds_many``) with ``action`` ``insert``, ``update`` or ``replace`` (an entry being
removed); the matching is shared with associations (``_relations``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._cast import _original
from ._changeset import Changeset
from ._relations import With, cast_relation, embed_rel, put_relation

__all__ = ("cast_embed", "put_embed")

_T = TypeVar("_T")


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
        cs, embed_rel(cs, name, "cast_embed"), _original(cs, name), with_, required, required_message, invalid_message
    )


def put_embed(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]:
    """Put structs, changesets or field mappings (or ``None`` / ``[]``) as the embed's new value.

    Structs and mappings are not validated. Entries are matched by primary key as in
    :func:`cast_embed`. With ``on_replace="update"`` (``embeds_one``) a mapping of fields
    updates the current entry in place; a struct or changeset must carry its primary key.
    ``change(cs, field=...)`` and ``put_change`` on an embed field come here too.
    """
    return put_relation(cs, embed_rel(cs, name, "put_embed"), _original(cs, name), value)
