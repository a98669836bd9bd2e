"""``cast_embed`` and ``put_embed``: changes to ``embeds_one`` / ``embeds_many`` fields.

The change recorded for an embed is a child changeset (or a list of them, for
``embeds_many``) with ``action`` ``insert``, ``update`` or ``replace`` (an entry being
removed); the matching is shared with associations (``_relations``).
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from ._cast import _original
from ._changeset import Changeset, Step, dual_step
from ._relation_params import With
from ._relations import cast_relation, embed_rel, put_relation, relation_as

__all__ = ("cast_embed", "get_embed", "put_embed")

_T = TypeVar("_T")


@overload
def cast_embed(
    cs: Changeset[_T],
    name: str,
    /,
    *,
    with_: With | None = None,
    required: bool = False,
    required_message: str = "can't be blank",
    invalid_message: str = "is invalid",
    sort_param: str | None = None,
    drop_param: str | None = None,
) -> Changeset[_T]: ...
@overload
def cast_embed(
    name: str,
    /,
    *,
    with_: With | None = None,
    required: bool = False,
    required_message: str = "can't be blank",
    invalid_message: str = "is invalid",
    sort_param: str | None = None,
    drop_param: str | None = None,
) -> Step: ...
def cast_embed(*args: Any, **kwargs: Any) -> Any:
    """Cast ``params[name]`` into the embed with ``with_(struct, params)`` (default: the embedded
    schema's ``changeset`` function, or a ``cast`` of its fields).

    Entries are matched to the current ones by primary key: a match is updated, anything else
    inserted; current entries left out are handled by the field's ``on_replace``.
    ``cast_embed(cs, "address")`` or ``cs | cast_embed("address")``. ``with_``, ``sort_param`` and
    ``drop_param`` work as in :func:`~asyncecto.changeset.cast_assoc`.

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
    return dual_step(_cast_embed, args, kwargs)


def _cast_embed(
    cs: Changeset[_T],
    name: str,
    /,
    *,
    with_: With | None = None,
    required: bool = False,
    required_message: str = "can't be blank",
    invalid_message: str = "is invalid",
    sort_param: str | None = None,
    drop_param: str | None = None,
) -> Changeset[_T]:
    rel = embed_rel(cs, name, "cast_embed")
    current = _original(cs, name)
    return cast_relation(cs, rel, current, with_, required, required_message, invalid_message, sort_param, drop_param)


@overload
def put_embed(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]: ...
@overload
def put_embed(name: str, value: Any, /) -> Step: ...
def put_embed(*args: Any) -> Any:
    """Put structs, changesets or field mappings (or ``None`` / ``[]``) as the embed's new value.

    Structs and mappings are not validated. Entries are matched by primary key as in
    :func:`cast_embed`. With ``on_replace="update"`` (``embeds_one``) a mapping of fields
    updates the current entry in place; a struct or changeset must carry its primary key.
    ``change(cs, field=...)`` and ``put_change`` on an embed field come here too.
    ``put_embed(cs, "address", address)`` or ``cs | put_embed("address", address)``.
    """
    return dual_step(_put_embed, args, {})


def _put_embed(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]:
    return put_relation(cs, embed_rel(cs, name, "put_embed"), _original(cs, name), value)


def get_embed(cs: Changeset[Any], name: str, as_: str = "changeset") -> Any:
    """The embed as changesets (``as_="changeset"``) or as structs (``as_="struct"``), as
    :func:`~asyncecto.changeset.get_assoc` gives an association.
    """
    embed_rel(cs, name, "get_embed")
    return relation_as(cs, name, as_, "get_embed", lambda: _original(cs, name))
