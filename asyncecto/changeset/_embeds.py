"""``cast_embed`` and ``put_embed``: changes to ``embeds_one`` / ``embeds_many`` fields.

The change recorded for an embed is a child changeset (or a list of them, for
``embeds_many``) with ``action`` ``insert``, ``update`` or ``replace`` (an entry being
removed). The parent is invalid when a child is; ``apply_changes`` and the Repo turn
the children back into structs, dropping the replaced ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError, CastError
from asyncecto.schema._embeds import EmbedMany, EmbedOne

from ._cast import _current, _known, _original, add_error, cast
from ._changeset import Changeset

__all__ = ("applied", "cast_embed", "put_embed")

_T = TypeVar("_T")
Embed = EmbedOne | EmbedMany
With = Callable[[Any, Mapping[str, Any]], Changeset[Any]]


def _embed(cs: Changeset[Any], name: str, fn: str) -> Embed:
    typ = _known(cs, name)
    if not isinstance(typ, EmbedOne | EmbedMany):
        raise ArgumentError(f"{fn} expects an embeds_one or embeds_many field, {name!r} is a {typ.name}")
    return typ


def _parent(cs: Changeset[Any]) -> str:
    return type(cs.data).__name__


def _default_with(typ: Embed) -> With:
    own = getattr(typ.schema, "changeset", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    info = typ.info
    skip = {*info.primary_key, info.inserted_at, info.updated_at}
    fields = [n for n, f in info.fields.items() if n not in skip and not isinstance(f.type, EmbedOne | EmbedMany)]
    return lambda struct, params: cast(struct, params, fields)


def _child(fn: With, struct: Any, params: Mapping[str, Any], action: str) -> Changeset[Any]:
    result = fn(struct, params)
    if not isinstance(result, Changeset):
        raise ArgumentError(f"the with_ function of an embed must return a changeset, got {result!r}")
    return result if result.action is not None else attrs.evolve(result, action=action)


def _pk(typ: Embed, struct: Any) -> tuple[Any, ...] | None:
    names = typ.info.primary_key
    if not names:
        return None
    key = tuple(getattr(struct, n) for n in names)
    return None if any(v is None for v in key) else key


def _param_pk(typ: Embed, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    names = typ.info.primary_key
    if not names or any(params.get(n) is None for n in names):
        return None
    try:
        return tuple(t.cast_value(typ.info.fields[n].type, params[n], field=n) for n in names)
    except CastError:  # a key that cannot be one matches no current entry
        return None


def _replace_message(typ: Embed, name: str, parent: str) -> str:
    return (
        f"you are attempting to change relation {name!r} of {parent} but the on_replace option of this "
        "relation is set to 'raise'.\n\nBy default it is not possible to replace or delete embeds during "
        f"cast_embed/put_embed. The parameters must carry the primary keys of the entries currently in {name!r}; "
        "an entry whose key is not given would be replaced or deleted, which is refused.\n\n"
        f'fix: declare the field with on_replace="delete" (or "mark_as_invalid"; "update" for embeds_one), '
        f"e.g. {name}: ... = {'embeds_one' if isinstance(typ, EmbedOne) else 'embeds_many'}"
        f'({typ.schema.__name__}, on_replace="delete")'
    )


class _Invalid(Exception):
    """An entry was replaced under ``on_replace="mark_as_invalid"``."""


def _on_replace(typ: Embed, name: str, parent: str) -> None:
    if typ.on_replace == "raise":
        raise ArgumentError(_replace_message(typ, name, parent))
    if typ.on_replace == "mark_as_invalid":
        raise _Invalid


def _type_meta(typ: Embed) -> dict[str, Any]:
    return {"type": "map" if isinstance(typ, EmbedOne) else "array(map)"}


def _finish(cs: Changeset[_T], name: str, value: Any, current: Any) -> Changeset[_T]:
    if isinstance(value, list):
        unchanged = (
            isinstance(current, list)
            and len(value) == len(current)
            and all(
                c.action == "update" and c.valid and not c.changes and c.data is d
                for c, d in zip(value, current, strict=True)
            )
        )
        valid = all(c.valid for c in value)
    elif isinstance(value, Changeset):
        unchanged = value.action == "update" and value.valid and not value.changes and value.data is current
        valid = value.valid
    else:
        unchanged, valid = value is None and current is None, True
    if unchanged:
        return attrs.evolve(cs, changes={k: v for k, v in cs.changes.items() if k != name})
    return attrs.evolve(cs, changes={**cs.changes, name: value}, valid=cs.valid and valid)


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
    typ = _embed(cs, name, "cast_embed")
    if cs.params is None:
        raise ArgumentError("cast_embed expects the changeset to be cast; call cast(...) before cast_embed(...)")
    fn = with_ or _default_with(typ)
    current = _original(cs, name)
    if name not in cs.params:
        if required and not _current(cs, name):
            return add_error(cs, name, required_message, validation="required")
        return cs
    value = cs.params[name]
    try:
        if isinstance(typ, EmbedOne):
            change = _cast_one(typ, name, _parent(cs), fn, current, value)
        else:
            change = _cast_many(typ, name, _parent(cs), fn, current or [], value)
    except _Invalid:
        return add_error(cs, name, invalid_message, validation="embed", **_type_meta(typ))
    if change is _BAD:
        return add_error(cs, name, invalid_message, validation="embed", **_type_meta(typ))
    out = _finish(cs, name, change, current)
    emptied = isinstance(change, list) and all(c.action in ("replace", "ignore") for c in change)
    if required and (change is None or emptied):
        out = add_error(out, name, required_message, validation="required")
    return out


_BAD: Any = object()


def _cast_one(typ: EmbedOne, name: str, parent: str, fn: With, current: Any, value: Any) -> Any:
    if value is None:
        if current is not None and typ.on_replace != "update":
            _on_replace(typ, name, parent)
        return None
    if not isinstance(value, Mapping):
        return _BAD
    params = {str(k): v for k, v in value.items()}
    if current is None:
        child = _child(fn, typ.schema(), params, "insert")
    elif typ.on_replace == "update" or ((key := _pk(typ, current)) is not None and _param_pk(typ, params) == key):
        child = _child(fn, current, params, "update")
    else:
        _on_replace(typ, name, parent)
        child = _child(fn, typ.schema(), params, "insert")
    if child.action == "ignore":  # the with_ function chose to skip it: keep what is there
        return None if current is None else Changeset(data=current, action="update")
    return child


def _entries(value: Any) -> list[Any] | None:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, Mapping):  # {"0": {...}, "1": {...}}: form-encoded lists, ordered by index
        try:
            return [v for _, v in sorted(value.items(), key=lambda kv: int(kv[0]))]
        except (TypeError, ValueError):
            return None
    return None


def _cast_many(typ: EmbedMany, name: str, parent: str, fn: With, current: list[Any], value: Any) -> Any:
    entries = _entries(value)
    if entries is None or not all(isinstance(e, Mapping) for e in entries):
        return _BAD
    by_key = {k: s for s in current if (k := _pk(typ, s)) is not None}
    used: set[tuple[Any, ...]] = set()
    out: list[Changeset[Any]] = []
    for entry in entries:
        params = {str(k): v for k, v in entry.items()}
        key = _param_pk(typ, params)
        if key is not None and key in by_key and key not in used:
            used.add(key)
            child = _child(fn, by_key[key], params, "update")
            out.append(child if child.action != "ignore" else Changeset(data=by_key[key], action="update"))
        else:
            child = _child(fn, typ.schema(), params, "insert")
            if child.action != "ignore":  # the with_ function chose to skip it
                out.append(child)
    return _replaced(typ, name, parent, current, used, out)


def _replaced(
    typ: EmbedMany, name: str, parent: str, current: list[Any], used: set[tuple[Any, ...]], out: list[Changeset[Any]]
) -> list[Changeset[Any]]:
    left = [s for s in current if _pk(typ, s) not in used or _pk(typ, s) is None]
    if left:
        _on_replace(typ, name, parent)
    return [Changeset(data=s, action="replace") for s in left] + out


def put_embed(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]:
    """Put structs, changesets or field mappings (or ``None`` / ``[]``) as the embed's new value.

    Structs and mappings are not validated. Entries are matched by primary key as in
    :func:`cast_embed`. With ``on_replace="update"`` (``embeds_one``) a mapping of fields
    updates the current entry in place; a struct or changeset must carry its primary key.
    ``change(cs, field=...)`` and ``put_change`` on an embed field come here too.
    """
    typ = _embed(cs, name, "put_embed")
    current = _original(cs, name)
    try:
        if isinstance(typ, EmbedOne):
            change = _put_one(typ, name, _parent(cs), current, value)
        else:
            if not isinstance(value, list | tuple):
                return add_error(cs, name, "is invalid", **_type_meta(typ))
            change = _put_many(typ, name, _parent(cs), current or [], list(value))
    except _Invalid:
        return add_error(cs, name, "is invalid", **_type_meta(typ))
    return _finish(cs, name, change, current)


def _from_mapping(typ: Embed, base: Any, value: Mapping[Any, Any]) -> Changeset[Any]:
    """``change(base, fields)``; nested embed fields go through :func:`put_embed`."""
    from ._changeset import change

    params = {str(k): v for k, v in value.items() if str(k) in typ.info.fields}
    nested = {k: v for k, v in params.items() if isinstance(typ.info.fields[k].type, EmbedOne | EmbedMany)}
    cs = change(base, {k: v for k, v in params.items() if k not in nested})
    for k, v in nested.items():
        cs = put_embed(cs, k, v)
    return cs


def _as_changeset(
    typ: Embed, name: str, value: Any, candidates: Mapping[tuple[Any, ...], Any]
) -> tuple[Changeset[Any], tuple[Any, ...] | None]:
    """A changeset for one given entry and the primary key it carries; a mapping whose key is
    one of ``candidates`` changes that entry.
    """
    if isinstance(value, Changeset):
        if not isinstance(value.data, typ.schema):
            raise ArgumentError(f"expected changesets of {typ.schema.__name__} for {name!r}, got one of {value.data!r}")
        return value, _pk(typ, value.data)
    if isinstance(value, typ.schema):
        return Changeset(data=value), _pk(typ, value)
    if isinstance(value, Mapping):
        key = _param_pk(typ, {str(k): v for k, v in value.items()})
        base = candidates.get(key) if key is not None else None
        return _from_mapping(typ, base if base is not None else typ.schema(), value), key
    raise ArgumentError(
        f"expected a {typ.schema.__name__}, a changeset of one or a mapping of its fields for {name!r}, got {value!r}"
    )


def _put_action(child: Changeset[Any], action: str) -> Changeset[Any]:
    return child if child.action is not None else attrs.evolve(child, action=action)


def _put_one(typ: EmbedOne, name: str, parent: str, current: Any, value: Any) -> Any:
    if value is None:
        if current is not None and typ.on_replace != "update":
            _on_replace(typ, name, parent)
        return None
    own = _pk(typ, current) if current is not None else None
    candidates = {own: current} if own is not None else {}
    if typ.on_replace == "update" and current is not None:
        if isinstance(value, Mapping):
            return attrs.evolve(_from_mapping(typ, current, value), action="update")
        child, key = _as_changeset(typ, name, value, candidates)
        if key is None or key != own:
            raise ArgumentError(
                f"you are attempting to update relation {name!r} of {parent} with a struct or changeset of "
                'another entry: with on_replace="update" the value is applied to the current entry, so give '
                f"a mapping of fields (or the current entry changed).\n\nfix: put_embed(cs, {name!r}, {{...fields...}})"
            )
        return attrs.evolve(child, action="update")
    child, key = _as_changeset(typ, name, value, candidates)
    if current is not None and key is not None and key == own:
        return attrs.evolve(child, action="update")
    if current is not None:
        if isinstance(value, typ.schema) and value == current:
            return Changeset(data=current, action="update")
        _on_replace(typ, name, parent)
    return _put_action(child, "insert")


def _put_many(typ: EmbedMany, name: str, parent: str, current: list[Any], values: list[Any]) -> Any:
    by_key = {k: s for s in current if (k := _pk(typ, s)) is not None}
    used: set[tuple[Any, ...]] = set()
    out: list[Changeset[Any]] = []
    for value in values:
        free = {k: s for k, s in by_key.items() if k not in used}
        child, key = _as_changeset(typ, name, value, free)
        if key is not None and key in free:
            used.add(key)
            out.append(attrs.evolve(child, action="update"))
        else:
            out.append(_put_action(child, "insert"))
    return _replaced(typ, name, parent, current, used, out)


def applied(value: Any, now: Any = None) -> Any:
    """An embed change as structs: child changesets applied, replaced entries dropped.

    With ``now`` (the write's time), an updated entry with changes gets a new ``updated_at``.
    """
    if isinstance(value, Changeset):
        return _apply(value, now)
    if isinstance(value, list) and any(isinstance(v, Changeset) for v in value):
        return [
            _apply(v, now) if isinstance(v, Changeset) else v
            for v in value
            if not (isinstance(v, Changeset) and v.action == "replace")
        ]
    return value


def _apply(cs: Changeset[Any], now: Any) -> Any:
    from asyncecto.schema import replace, schema_info

    changes = {k: applied(v, now) for k, v in cs.changes.items()}
    info = schema_info(cs.data)
    if now is not None and changes and cs.action == "update" and info.updated_at and info.updated_at not in changes:
        assert info.timestamp_type is not None
        changes[info.updated_at] = info.timestamp_type.cast(now)
    if not changes:
        return cs.data
    return replace(cs.data, **changes)
