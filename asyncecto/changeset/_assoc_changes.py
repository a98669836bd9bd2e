"""``cast_assoc`` and ``put_assoc``: changes to associations, written by the Repo with the parent.

Children are matched to the association's current (preloaded) entries by primary key:
a match is updated, anything else inserted, and an entry left out is handled by the
association's ``on_replace``: ``"raise"`` (the default), ``"mark_as_invalid"``, or a
``"replace"`` child that the Repo deletes (``"delete"``, ``"delete_if_exists"``) or
detaches (``"nilify"``). ``"update"`` (``has_one``/``belongs_to``) applies the new
values to the current entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs

from asyncecto.errors import ArgumentError
from asyncecto.schema import schema_info
from asyncecto.schema._associations import Association, NotLoaded
from asyncecto.schema._struct import copy_struct

from ._changeset import Changeset, Step, dual_step
from ._embed_assocs import is_embedded, refuse_embedded_cast
from ._relation_params import With
from ._relations import (
    assoc_rel,
    association,
    cast_relation,
    current_assoc,
    put_embedded_assoc,
    put_relation,
    relation_as,
)

__all__ = ("cast_assoc", "get_assoc", "put_assoc", "reorder_assoc", "surface_assocs")

_T = TypeVar("_T")


@overload
def cast_assoc(
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
def cast_assoc(
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
def cast_assoc(*args: Any, **kwargs: Any) -> Any:
    """Cast ``params[name]`` into the association with ``with_(struct, params)`` (default: the
    related schema's ``changeset`` function, or a ``cast`` of its fields but generated keys,
    timestamps and the foreign key).

    The association must be preloaded on a loaded struct. The Repo writes the children in
    the parent's transaction and reports their errors on the parent changeset.
    ``cast_assoc(cs, "comments")`` or ``cs | cast_assoc("comments")``.

    ``with_(struct, params, position)``, taking a third argument, also gets the entry's index
    (``None`` for a one association). ``sort_param`` / ``drop_param`` name params holding lists
    of entry indexes (``{"comments": {"0": {...}, "1": {...}}, "comments_sort": ["1", "0"]}``)
    that reorder and drop a many association's entries: listed indexes first, an unknown index
    is a new empty entry, the others follow by index; a dropped current entry goes by ``on_replace``.

    >>> from asyncecto import schema, has_many, belongs_to
    >>> from asyncecto.changeset import cast
    >>> @schema("posts")
    ... class Post:
    ...     title: str | None = None
    ...     comments: list = has_many("Comment")
    >>> @schema("comments")
    ... class Comment:
    ...     text: str | None = None
    ...     post: Post | None = belongs_to(Post)
    >>> cs = cast_assoc(cast(Post(), {"title": "t", "comments": [{"text": "hi"}]}, ["title"]), "comments")
    >>> [(c.action, c.changes) for c in cs.changes["comments"]]
    [('insert', {'text': 'hi'})]
    """
    return dual_step(_cast_assoc, args, kwargs)


def _cast_assoc(
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
    a = association(cs, name, "cast_assoc")
    if is_embedded(cs):
        refuse_embedded_cast(a)
    return _unique(
        a,
        cast_relation(
            cs,
            assoc_rel(cs, a),
            current_assoc(cs, a),
            with_,
            required,
            required_message,
            invalid_message,
            sort_param,
            drop_param,
        ),
    )


@overload
def put_assoc(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]: ...
@overload
def put_assoc(name: str, value: Any, /) -> Step: ...
def put_assoc(*args: Any) -> Any:
    """Put structs, changesets or field mappings (or ``None`` / ``[]``) as the association's value.

    Loaded structs not yet associated are linked (their foreign key set, or a join row
    added for ``many_to_many``); built ones and mappings are inserted. Entries are matched
    to the current ones by primary key as in :func:`cast_assoc`.
    ``change(cs, comments=[...])`` and ``put_change`` on an association come here too.
    ``put_assoc(cs, "tags", tags)`` or ``cs | put_assoc("tags", tags)``.
    """
    return dual_step(_put_assoc, args, {})


def _put_assoc(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]:
    a = association(cs, name, "put_assoc")
    if is_embedded(cs):
        return put_embedded_assoc(cs, a, value)
    return _unique(a, put_relation(cs, assoc_rel(cs, a), current_assoc(cs, a), value))


def _unique(a: Association, cs: Changeset[_T]) -> Changeset[_T]:
    """``many_to_many(..., unique=True)``: the same related row twice is the association's error
    ``"has duplicate entries"`` (Ecto's quick check; the join table's unique index is the real one)."""
    if not a.unique or not isinstance(cs.changes.get(a.name), list):
        return cs
    pk = schema_info(a.related).primary_key
    seen: set[tuple[Any, ...]] = set()
    for child in cs.changes[a.name]:
        if child.action in ("delete", "replace"):
            continue
        key = tuple(child.changes.get(f, getattr(child.data, f)) for f in pk)
        if any(v is None for v in key):
            continue
        if key in seen:
            errors = ((a.name, ("has duplicate entries", {"validation": "assoc_unique"})), *cs.errors)
            return attrs.evolve(cs, errors=errors, valid=False)
        seen.add(key)
    return cs


def get_assoc(cs: Changeset[Any], name: str, as_: str = "changeset") -> Any:
    """The association as changesets (``as_="changeset"``) or as structs (``as_="struct"``).

    With a change: its child changesets (entries being replaced left out), or those applied. Without
    one: the (preloaded) data, each struct as ``change(struct)`` for ``"changeset"``.
    ``get_assoc(cs, "comments", "struct")`` → ``[Comment(...), ...]``.
    """
    a = association(cs, name, "get_assoc")
    return relation_as(cs, name, as_, "get_assoc", lambda: current_assoc(cs, a))


_WRITE_ORDER = {"replace": 0, "delete": 0, "update": 1}
Reorder = Callable[[list[Changeset[Any]]], list[Changeset[Any]]]


@overload
def reorder_assoc(cs: Changeset[_T], name: str, sort_fn: Reorder | None = None, /) -> Changeset[_T]: ...
@overload
def reorder_assoc(name: str, sort_fn: Reorder | None = None, /) -> Step: ...
def reorder_assoc(*args: Any) -> Any:
    """Order a many association's child changesets for writing: entries being deleted or replaced
    first, then updates, then inserts (so a unique value can move from a removed row to a new one).

    ``sort_fn(children)`` returns another order of the same children instead.
    ``cs | cast_assoc("tags") | reorder_assoc("tags")``; without a change to ``name``, nothing.
    """
    return dual_step(_reorder_assoc, args, {})


def _reorder_assoc(cs: Changeset[_T], name: str, sort_fn: Reorder | None = None) -> Changeset[_T]:
    a = association(cs, name, "reorder_assoc")
    if a.cardinality != "many":
        raise ArgumentError(f"reorder_assoc expects a many association, {name!r} of {type(cs.data).__name__} is one")
    children = cs.changes.get(name)
    if children is None:
        return cs
    if sort_fn is None:
        ordered = sorted(children, key=lambda c: _WRITE_ORDER.get(c.action, 2))
    else:
        ordered = list(sort_fn(list(children)))
        if sorted(map(id, ordered)) != sorted(map(id, children)):
            raise ArgumentError(
                f"reorder_assoc: the sort function must return the same child changesets of {name!r} in another "
                f"order, got {ordered!r}"
            )
    return attrs.evolve(cs, changes={**cs.changes, name: ordered})


def surface_assocs(cs: Changeset[_T]) -> Changeset[_T]:
    """For an insert: associations loaded in the struct become changes, as if put (Ecto's "insert
    writes the whole struct"); ``None``, ``[]`` and unloaded ones are left alone."""
    if isinstance(cs.data, dict):
        return cs
    info = schema_info(cs.data)
    if not info.associations:
        return cs
    given = {
        name: value
        for name, a in info.associations.items()
        if a.through is None
        and name not in cs.changes
        and not isinstance(value := getattr(cs.data, name), NotLoaded)
        and value is not None
        and not (isinstance(value, list) and not value)
    }
    if not given:
        return cs
    data = copy_struct(cs.data, info)  # the given values are the changes; nothing is there yet
    for name in given:
        object.__setattr__(data, name, attrs.fields_dict(type(data))[name].default)  # type: ignore[arg-type]
    cs = attrs.evolve(cs, data=data)
    for name, value in given.items():
        a = info.associations[name]
        cs = put_relation(cs, assoc_rel(cs, a), [] if a.cardinality == "many" else None, value)
    return cs
