"""Working with structs: ``meta``, ``put_meta``, ``replace``."""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from asyncecto._names import check_name, check_optional_name
from asyncecto.errors import ArgumentError, NoPrimaryKeyFieldError, NoPrimaryKeyValueError

from ._info import SchemaInfo, schema_info, struct_info
from ._meta import STATES, Meta

__all__ = (
    "build_assoc",
    "copy_struct",
    "meta",
    "primary_key",
    "primary_key_or_raise",
    "put_meta",
    "replace",
    "reset_fields",
)

_S = TypeVar("_S")
_UNSET: Any = object()
_set = object.__setattr__


def meta(struct: object) -> Meta:
    """The :class:`Meta` of a struct: its state, source and prefix.

    >>> from asyncecto import schema, meta
    >>> @schema("posts")
    ... class Post:
    ...     title: str | None = None
    >>> meta(Post()).state
    'built'
    """
    info = struct_info(struct, "read meta")
    if info.embedded:
        raise ArgumentError(f"embedded schema {info.name} has no meta; only @schema structs do")
    value: Meta = struct.__meta__  # type: ignore[attr-defined]
    return value


def copy_struct(struct: _S, info: SchemaInfo | None = None) -> _S:
    """A shallow copy of a struct, meta included (the copy may then be changed in place)."""
    copy: Callable[[_S], _S] = (info or schema_info(type(struct))).memo("copy", _copier)
    return copy(struct)


def _copier(info: SchemaInfo) -> Callable[[Any], Any]:
    """A function copying every slot of a struct of this schema into a new one: one line per slot,
    generated once per schema (a loop over the slots costs twice as much per copy)."""
    slots = info.slots
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in slots):  # pragma: no cover
        return lambda struct: _copy_by_name(struct, slots)
    lines = ["def copy(struct):", "    new = _new(type(struct))"]
    lines += [f"    _set(new, {name!r}, struct.{name})" for name in slots]
    lines.append("    return new")
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": _set}
    exec(compile("\n".join(lines), f"<asyncecto copy of {info.name}>", "exec"), namespace)
    copy: Callable[[Any], Any] = namespace["copy"]
    return copy


def _copy_by_name(struct: _S, slots: tuple[str, ...]) -> _S:
    new: _S = object.__new__(type(struct))
    for name in slots:
        _set(new, name, getattr(struct, name))
    return new


def put_meta(
    struct: _S, *, state: str = _UNSET, source: str = _UNSET, prefix: str | None = _UNSET, context: Any = _UNSET
) -> _S:
    """A copy of ``struct`` with its meta changed.

    >>> from asyncecto import schema, meta, put_meta
    >>> @schema("posts")
    ... class Post:
    ...     title: str | None = None
    >>> meta(put_meta(Post(), prefix="archive"))
    Meta<built, 'archive.posts'>
    """
    current = meta(struct)
    if state is not _UNSET and state not in STATES:
        raise ArgumentError(f"invalid meta state {state!r}; expected one of {', '.join(STATES)}")
    if source is not _UNSET and (not isinstance(source, str) or not source):
        raise ArgumentError(f"invalid meta source {source!r}; expected a table name")
    if source is not _UNSET:
        check_name(source, "meta source (table name)")
    if prefix is not _UNSET and prefix is not None and not isinstance(prefix, str):
        raise ArgumentError(f"invalid meta prefix {prefix!r}; expected a string or None")
    if prefix is not _UNSET:
        check_optional_name(prefix, "meta prefix")
    new_meta = Meta(
        current.state if state is _UNSET else state,
        current.source if source is _UNSET else source,
        current.prefix if prefix is _UNSET else prefix,
        context=current.context if context is _UNSET else context,
    )
    if new_meta == current and new_meta.context is current.context:
        return struct
    new = copy_struct(struct)
    _set(new, "__meta__", new_meta)
    return new


def replace(struct: _S, /, **changes: Any) -> _S:
    """A copy of ``struct`` with some fields changed; its meta is kept.

    Values are not cast: use a changeset for outside input.

    >>> from asyncecto import schema, replace
    >>> @schema("weather")
    ... class Weather:
    ...     temp_lo: int | None = None
    >>> replace(Weather(temp_lo=1), temp_lo=10)
    Weather(id=None, temp_lo=10)
    """
    info = struct_info(struct, "replace fields")
    for name in changes:
        if name not in info.fields and name not in info.associations:
            raise ArgumentError(
                f"cannot replace unknown field {name!r} on {info.name}; known fields: {', '.join(info.fields)}"
            )
    new = copy_struct(struct, info)
    for name, value in changes.items():
        _set(new, name, value)
    return new


def build_assoc(struct: Any, name: str, attributes: Mapping[str, Any] | None = None, /) -> Any:
    """A new struct of the association ``name``'s schema, linked to ``struct``.

    For ``has_one``/``has_many`` the foreign key is set from ``struct`` (attributes cannot
    override it); ``defaults=`` of the association apply first. A struct loaded from a prefix
    builds in that prefix unless the related schema declares its own (Ecto does not copy it;
    multi-tenant code expects it to follow).

    >>> from asyncecto import schema, has_many, belongs_to
    >>> @schema("posts")
    ... class Post:
    ...     comments: list = has_many("Comment")
    >>> @schema("comments")
    ... class Comment:
    ...     body: str | None = None
    ...     post: Post | None = belongs_to(Post)
    >>> build_assoc(Post(id=7), "comments", {"body": "hi"})
    Comment(id=None, body='hi', post_id=7, post=NotLoaded<association 'post' is not loaded>)
    """
    info = struct_info(struct, "build an association")
    a = info.association(name)
    if a.through is not None:
        raise ArgumentError(
            f"cannot build the association {name!r}: it goes through {list(a.through)} and is read-only"
        )
    if attributes is not None and not isinstance(attributes, Mapping):
        raise ArgumentError(f"build_assoc attributes must be a dict of fields, got {attributes!r}")
    values = {**a.defaults, **(attributes or {})}
    if a.kind in ("has_one", "has_many"):
        assert a.owner_key is not None and a.related_key is not None
        values[a.related_key] = getattr(struct, a.owner_key)
    built = a.related(**values)
    prefix = None if info.embedded else struct.__meta__.prefix  # an embedded struct has no meta
    if prefix is not None and built.__meta__.prefix is None:
        built = put_meta(built, prefix=prefix)
    return built


def reset_fields(struct: _S, fields: Sequence[str], /) -> _S:
    """A copy of ``struct`` with ``fields`` back at the schema's defaults (Ecto's ``reset_fields/2``);
    an association goes back to not loaded. Its meta is kept.

    >>> from asyncecto import schema, reset_fields
    >>> @schema("posts")
    ... class Post:
    ...     title: str | None = None
    ...     views: int = 0
    >>> reset_fields(Post(id=1, title="x", views=9), ["title", "views"])
    Post(id=1, title=None, views=0)
    """
    info = struct_info(struct, "reset fields")
    if isinstance(fields, str) or not isinstance(fields, Sequence | set | frozenset):
        raise ArgumentError(f"reset_fields expects a list of field names, got {fields!r}; e.g. [{fields!r}]")
    for name in fields:
        if name not in info.fields and name not in info.associations:
            raise ArgumentError(
                f"cannot reset unknown field {name!r} on {info.name}; known fields: {', '.join(info.fields)}"
            )
    if not fields:
        return struct
    fresh = type(struct)()
    return replace(struct, **{name: getattr(fresh, name) for name in fields})


def primary_key(struct: object, /) -> dict[str, Any]:
    """The struct's primary key fields and values (Ecto's ``primary_key/1``); ``{}`` without a key.

    >>> from asyncecto import schema, primary_key
    >>> @schema("posts")
    ... class Post:
    ...     title: str | None = None
    >>> primary_key(Post(id=3))
    {'id': 3}
    """
    info = struct_info(struct, "read the primary key")
    return {name: getattr(struct, name) for name in info.primary_key}


def primary_key_or_raise(struct: object, /) -> dict[str, Any]:
    """Like :func:`primary_key` (Ecto's ``primary_key!/1``), but raises
    :class:`~asyncecto.errors.NoPrimaryKeyFieldError` when the schema has no primary key and
    :class:`~asyncecto.errors.NoPrimaryKeyValueError` when a key field is ``None``.
    """
    info = struct_info(struct, "read the primary key")
    if not info.primary_key:
        raise NoPrimaryKeyFieldError(info.name, "read the primary key")
    values = primary_key(struct)
    for name, value in values.items():
        if value is None:
            raise NoPrimaryKeyValueError(struct, name, "read the primary key")
    return values
