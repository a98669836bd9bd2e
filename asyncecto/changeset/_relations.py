"""What embeds and associations share: child changesets matched to the current entries.

The change recorded for a relation is a child changeset (or a list of them, for a
"many" relation) with ``action`` ``insert``, ``update`` or ``replace`` (an entry being
removed), or ``None``. A "one" relation's replaced entry is not recorded: it is the
data's current value. The parent is invalid when a child is. ``cast_embed``/``put_embed`` and
``cast_assoc``/``put_assoc`` describe their relation as a :class:`Rel` and share the
matching below; :func:`applied` turns the children back into structs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

from asyncecto import types as t
from asyncecto.errors import ArgumentError, CastError
from asyncecto.schema import SchemaInfo, replace, schema_info
from asyncecto.schema._associations import Association, NotLoaded
from asyncecto.schema._embeds import EmbedMany, EmbedOne

from ._cast import _add_error as add_error
from ._cast import _current, _known, _original, cast
from ._changeset import Changeset, Step, dual_step
from ._embed_assocs import embedded_key, refuse_unwritten
from ._relation_params import With, WithPosition, relation_params, with_position

__all__ = (
    "Rel",
    "applied",
    "assoc_rel",
    "association",
    "cast_relation",
    "current_assoc",
    "embed_rel",
    "put_change",
    "put_embedded_assoc",
    "put_relation",
)

_T = TypeVar("_T")


@attrs.frozen
class Rel:
    """One relation of a parent changeset, as the shared code needs it.

    :ivar kind: ``"embed"`` or ``"assoc"`` (names the functions in messages)
    :ivar skip: fields the default ``with_`` does not cast (keys, timestamps, foreign keys)
    :ivar declaration: the declaration that allows replacing, shown in the ``raise`` message
    :ivar defaults: field values of a new entry (an association's ``defaults=``)
    """

    name: str
    parent: str
    schema: type
    many: bool
    on_replace: str
    kind: str
    declaration: str
    skip: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def info(self) -> SchemaInfo:
        return schema_info(self.schema)

    def new(self) -> Any:
        """A new entry, built with the relation's defaults."""
        return self.schema(**self.defaults)


def _default_with(rel: Rel) -> With:
    own = getattr(rel.schema, "changeset", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    info = rel.info
    generated = {k for k in info.primary_key if k == info.autogenerate_id or info.fields[k].autogenerate is not None}
    skip = {*generated, info.inserted_at, info.updated_at, *rel.skip}  # a natural key is cast: it names the row
    fields = [n for n, f in info.fields.items() if n not in skip and not isinstance(f.type, EmbedOne | EmbedMany)]
    return lambda struct, params: cast(struct, params, fields)


def _child(
    rel: Rel, fn: WithPosition, struct: Any, params: Mapping[str, Any], action: str, position: int | None = None
) -> Changeset[Any]:
    result = fn(struct, params, position)
    if not isinstance(result, Changeset):
        raise ArgumentError(f"the with_ function of {rel.kind} {rel.name!r} must return a changeset, got {result!r}")
    return result if result.action is not None else attrs.evolve(result, action=action)


def _pk(rel: Rel, struct: Any) -> tuple[Any, ...] | None:
    names = rel.info.primary_key
    if not names:
        return None
    key = tuple(getattr(struct, n) for n in names)
    return None if any(v is None for v in key) else key


def _param_pk(rel: Rel, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    names = rel.info.primary_key
    if not names or any(params.get(n) is None for n in names):
        return None
    try:
        return tuple(t.cast_value(rel.info.fields[n].type, params[n], field=n) for n in names)
    except CastError:  # a key that cannot be one matches no current entry
        return None


def _replace_message(rel: Rel) -> str:
    what = "embeds" if rel.kind == "embed" else "associations"
    fns = "cast_embed/put_embed" if rel.kind == "embed" else "cast_assoc/put_assoc"
    return (
        f"you are attempting to change relation {rel.name!r} of {rel.parent} but the on_replace option of this "
        f"relation is set to 'raise'.\n\nBy default it is not possible to replace or delete {what} during "
        f"{fns}. The parameters must carry the primary keys of the entries currently in {rel.name!r}; "
        "an entry whose key is not given would be replaced or deleted, which is refused.\n\n"
        f"fix: declare the relation with another on_replace, e.g. {rel.declaration}"
    )


class _Invalid(Exception):
    """An entry was replaced under ``on_replace="mark_as_invalid"``."""


def _on_replace(rel: Rel) -> None:
    if rel.on_replace == "raise":
        raise ArgumentError(_replace_message(rel))
    if rel.on_replace == "mark_as_invalid":
        raise _Invalid


def _type_meta(rel: Rel) -> dict[str, Any]:
    return {"type": "array(map)" if rel.many else "map"}


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


_BAD: Any = object()


def cast_relation(
    cs: Changeset[_T],
    rel: Rel,
    current: Any,
    with_: With | None,
    required: bool,
    required_message: str,
    invalid_message: str,
    sort_param: str | None = None,
    drop_param: str | None = None,
) -> Changeset[_T]:
    """``cast_embed``/``cast_assoc``: ``params[rel.name]`` cast into child changesets."""
    name = rel.name
    fn_name = "cast_embed" if rel.kind == "embed" else "cast_assoc"
    if cs.params is None:
        raise ArgumentError(f"{fn_name} expects the changeset to be cast; call cast(...) before {fn_name}(...)")
    fn = with_position(with_ or _default_with(rel))
    given, value = relation_params(cs.params, name, rel.many, fn_name, sort_param, drop_param)
    if not given:
        if required and not _current(cs, name):
            return add_error(cs, name, required_message, validation="required")
        return cs
    try:
        change = _cast_many(rel, fn, current or [], value) if rel.many else _cast_one(rel, fn, current, value)
    except _Invalid:
        return add_error(cs, name, invalid_message, validation=rel.kind, **_type_meta(rel))
    if change is _BAD:
        return add_error(cs, name, invalid_message, validation=rel.kind, **_type_meta(rel))
    out = _finish(cs, name, change, current)
    emptied = isinstance(change, list) and all(c.action in ("replace", "delete", "ignore") for c in change)
    if required and (change is None or emptied):
        out = add_error(out, name, required_message, validation="required")
    return out


def _cast_one(rel: Rel, fn: WithPosition, current: Any, value: Any) -> Any:
    if value is None:
        if current is not None and rel.on_replace != "update":
            _on_replace(rel)
        return None
    if not isinstance(value, Mapping):
        return _BAD
    params = {str(k): v for k, v in value.items()}
    if current is None:
        child = _child(rel, fn, rel.new(), params, "insert")
    elif rel.on_replace == "update" or ((key := _pk(rel, current)) is not None and _param_pk(rel, params) == key):
        child = _child(rel, fn, current, params, "update")
    else:
        _on_replace(rel)
        child = _child(rel, fn, rel.new(), params, "insert")
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


def _cast_many(rel: Rel, fn: WithPosition, current: list[Any], value: Any) -> Any:
    entries = _entries(value)
    if entries is None or not all(isinstance(e, Mapping) for e in entries):
        return _BAD
    by_key = {k: s for s in current if (k := _pk(rel, s)) is not None}
    used: set[tuple[Any, ...]] = set()
    out: list[Changeset[Any]] = []
    for position, entry in enumerate(entries):
        params = {str(k): v for k, v in entry.items()}
        key = _param_pk(rel, params)
        if key is not None and key in by_key and key not in used:
            used.add(key)
            child = _child(rel, fn, by_key[key], params, "update", position)
            out.append(child if child.action != "ignore" else Changeset(data=by_key[key], action="update"))
        else:
            child = _child(rel, fn, rel.new(), params, "insert", position)
            if child.action != "ignore":  # the with_ function chose to skip it
                out.append(child)
    return _replaced(rel, current, used, out)


def _replaced(rel: Rel, current: list[Any], used: set[tuple[Any, ...]], out: list[Changeset[Any]]) -> list[Any]:
    left = [s for s in current if _pk(rel, s) not in used or _pk(rel, s) is None]
    if left:
        _on_replace(rel)
    return [Changeset(data=s, action="replace") for s in left] + out


def put_relation(cs: Changeset[_T], rel: Rel, current: Any, value: Any) -> Changeset[_T]:
    """``put_embed``/``put_assoc``: structs, changesets or mappings as the relation's new value."""
    try:
        if rel.many:
            if not isinstance(value, list | tuple):
                return add_error(cs, rel.name, "is invalid", **_type_meta(rel))
            change = _put_many(rel, current or [], list(value))
        else:
            change = _put_one(rel, current, value)
    except _Invalid:
        return add_error(cs, rel.name, "is invalid", **_type_meta(rel))
    return _finish(cs, rel.name, change, current)


def _from_mapping(rel: Rel, base: Any, value: Mapping[Any, Any]) -> Changeset[Any]:
    """``change(base, fields)``: plain fields first; nested embeds and associations by their rules."""
    info = rel.info
    params = {str(k): v for k, v in value.items() if str(k) in info.fields or str(k) in info.associations}
    nested = {
        k: v
        for k, v in params.items()
        if k in info.associations or isinstance(info.fields[k].type, EmbedOne | EmbedMany)
    }
    cs: Changeset[Any] = Changeset(data=base)
    for k, v in [*((k, v) for k, v in params.items() if k not in nested), *nested.items()]:
        cs = _put_change(cs, k, v)
    return cs


def _as_changeset(
    rel: Rel, value: Any, candidates: Mapping[tuple[Any, ...], Any]
) -> tuple[Changeset[Any], tuple[Any, ...] | None]:
    """A changeset for one given entry and the primary key it carries; a mapping whose key is
    one of ``candidates`` changes that entry.
    """
    if isinstance(value, Changeset):
        if not isinstance(value.data, rel.schema):
            raise ArgumentError(
                f"expected changesets of {rel.schema.__name__} for {rel.name!r}, got one of {value.data!r}"
            )
        return value, _pk(rel, value.data)
    if isinstance(value, rel.schema):
        return Changeset(data=value), _pk(rel, value)
    if isinstance(value, Mapping):
        key = _param_pk(rel, {str(k): v for k, v in value.items()})
        base = candidates.get(key) if key is not None else None
        return _from_mapping(rel, base if base is not None else rel.new(), value), key
    raise ArgumentError(
        f"expected a {rel.schema.__name__}, a changeset of one or a mapping of its fields for {rel.name!r}, "
        f"got {value!r}"
    )


def _put_action(rel: Rel, child: Changeset[Any], action: str) -> Changeset[Any]:
    """``action`` unless the child has one; a loaded struct given for an association is updated
    (Ecto's action from the struct's state), a deleted one refused."""
    if child.action is not None:
        return child
    if rel.kind == "assoc" and action == "insert":
        state = child.data.__meta__.state
        if state == "loaded":
            action = "update"
        elif state == "deleted":
            raise ArgumentError(f"cannot put a deleted {rel.schema.__name__} in association {rel.name!r}")
    return attrs.evolve(child, action=action)


def _put_one(rel: Rel, current: Any, value: Any) -> Any:
    if value is None:
        if current is not None and rel.on_replace != "update":
            _on_replace(rel)
        return None
    own = _pk(rel, current) if current is not None else None
    candidates = {own: current} if own is not None else {}
    if rel.on_replace == "update" and current is not None:
        if isinstance(value, Mapping):
            return attrs.evolve(_from_mapping(rel, current, value), action="update")
        child, key = _as_changeset(rel, value, candidates)
        if key is None or key != own:
            put = "put_embed" if rel.kind == "embed" else "put_assoc"
            raise ArgumentError(
                f"you are attempting to update relation {rel.name!r} of {rel.parent} with a struct or changeset of "
                'another entry: with on_replace="update" the value is applied to the current entry, so give '
                f"a mapping of fields (or the current entry changed).\n\nfix: {put}(cs, {rel.name!r}, {{...fields...}})"
            )
        return attrs.evolve(child, action="update")
    child, key = _as_changeset(rel, value, candidates)
    if current is not None and key is not None and key == own:
        return attrs.evolve(child, action="update")
    if current is not None:
        if isinstance(value, rel.schema) and value == current:
            return Changeset(data=current, action="update")
        _on_replace(rel)
    return _put_action(rel, child, "insert")


def _put_many(rel: Rel, current: list[Any], values: list[Any]) -> Any:
    by_key = {k: s for s in current if (k := _pk(rel, s)) is not None}
    used: set[tuple[Any, ...]] = set()
    out: list[Changeset[Any]] = []
    for value in values:
        free = {k: s for k, s in by_key.items() if k not in used}
        child, key = _as_changeset(rel, value, free)
        if key is not None and key in free:
            used.add(key)
            out.append(attrs.evolve(child, action="update"))
        else:
            out.append(_put_action(rel, child, "insert"))
    return _replaced(rel, current, used, out)


def applied(value: Any, now: Any = None) -> Any:
    """A relation change as structs: child changesets applied, replaced entries dropped.

    With ``now`` (the write's time), an updated entry with changes gets a new ``updated_at``.
    """
    if isinstance(value, Changeset):
        return None if value.action in ("replace", "delete") else _apply(value, now)
    if isinstance(value, list) and any(isinstance(v, Changeset) for v in value):
        kept = [
            _apply(v, now) if isinstance(v, Changeset) else v
            for v in value
            if not (isinstance(v, Changeset) and v.action in ("replace", "delete"))
        ]
        return kept
    return value


def _apply(cs: Changeset[Any], now: Any) -> Any:
    changes = {k: applied(v, now) for k, v in cs.changes.items()}
    info = schema_info(cs.data)
    if now is not None and changes and cs.action == "update" and info.updated_at and info.updated_at not in changes:
        assert info.timestamp_type is not None
        changes[info.updated_at] = info.timestamp_type.cast(now)
    if not changes:
        return cs.data
    return replace(cs.data, **changes)


# -- the relations of a schema, and put_change (a field, an embed or an association) --------


def embed_rel(cs: Changeset[Any], name: str, fn: str) -> Rel:
    """The :class:`Rel` of embed field ``name`` (``fn`` names the caller in errors)."""
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


def association(cs: Changeset[Any], name: str, fn: str) -> Association:
    """The association ``name`` of a changeset's schema, refused when it goes ``through`` others."""
    if isinstance(cs.data, dict):
        raise ArgumentError(f"{fn} needs a schema's struct; a schemaless changeset has no associations")
    info = schema_info(cs.data)
    if name not in info.associations:
        hint = f"; {name!r} is a field, use cast/put_change" if name in info.fields else ""
        raise ArgumentError(
            f"{fn}: schema {info.name} has no association {name!r}{hint}; "
            f"associations: {', '.join(info.associations) or 'none declared'}"
        )
    a = info.associations[name]
    if a.through is not None:
        raise ArgumentError(
            f"{fn}: association {name!r} of {info.name} goes through {list(a.through)} and is read-only; "
            f"change the associations it goes through instead"
        )
    return a


def current_assoc(cs: Changeset[Any], a: Association) -> Any:
    """The association's current value in the data: a built struct's unloaded one is empty; a
    loaded struct's must have been preloaded."""
    value = getattr(cs.data, a.name)
    if not isinstance(value, NotLoaded):
        return value
    if schema_info(cs.data).embedded:  # no meta: a belongs_to without a key has nothing to load
        if a.kind == "belongs_to" and a.owner_key is not None and getattr(cs.data, a.owner_key) is None:
            return None
        raise ArgumentError(
            f"attempting to cast or change association {a.name!r} of {type(cs.data).__name__} that was not loaded. "
            "Please preload your associations before manipulating them through changesets; an embedded "
            f"struct's are preloaded through its parent: parent = await repo.preload(parent, "
            f"{{'<embed field>': {a.name!r}}})"
        )
    if cs.data.__meta__.state == "built":
        return [] if a.cardinality == "many" else None
    raise ArgumentError(
        f"attempting to cast or change association {a.name!r} of {type(cs.data).__name__} that was not loaded. "
        "Please preload your associations before manipulating them through changesets: "
        f"struct = await repo.preload(struct, {a.name!r})"
    )


def assoc_rel(cs: Changeset[Any], a: Association) -> Rel:
    """The :class:`Rel` of association ``a``."""
    example = '"delete"' if a.kind != "belongs_to" else '"update"'
    skip = frozenset({a.related_key} if a.kind in ("has_one", "has_many") and a.related_key else ())
    return Rel(
        name=a.name,
        parent=type(cs.data).__name__,
        schema=a.related,
        many=a.cardinality == "many",
        on_replace=a.on_replace,
        kind="assoc",
        declaration=f"{a.name}: ... = {a.kind}({a.related.__name__}, on_replace={example})",
        skip=skip,
        defaults=a.defaults,
    )


@overload
def put_change(cs: Changeset[_T], name: str, value: Any, /) -> Changeset[_T]: ...
@overload
def put_change(name: str, value: Any, /) -> Step: ...
def put_change(*args: Any) -> Any:
    """Record ``value`` as a change (no casting); a value equal to the data's removes the change.

    On an embed field this is :func:`put_embed`, on an association :func:`put_assoc`.
    ``put_change(cs, "age", 31)`` or ``cs | put_change("age", 31)``.
    """
    return dual_step(_put_change, args, {})


def _put_change(cs: Changeset[_T], name: str, value: Any) -> Changeset[_T]:
    if not isinstance(cs.data, dict) and name in schema_info(cs.data).associations:
        a = association(cs, name, "put_assoc")
        if schema_info(cs.data).embedded:
            return put_embedded_assoc(cs, a, value)
        return put_relation(cs, assoc_rel(cs, a), current_assoc(cs, a), value)
    typ = _known(cs, name)
    if isinstance(typ, EmbedOne | EmbedMany):
        return put_relation(cs, embed_rel(cs, name, "put_embed"), _original(cs, name), value)
    original = _original(cs, name)
    changes = dict(cs.changes)
    if t.equal(typ, original, value):
        changes.pop(name, None)
    else:
        changes[name] = value
    return attrs.evolve(cs, changes=changes)


def put_embedded_assoc(cs: Changeset[_T], a: Association, value: Any) -> Changeset[_T]:
    """``put_assoc`` on an embedded struct's association (see ``_embed_assocs``): a ``belongs_to``
    put to a loaded struct or ``None`` becomes a change of its foreign key too."""
    refuse_unwritten(a, "put_assoc")
    out = put_relation(cs, assoc_rel(cs, a), current_assoc(cs, a), value)
    if a.name not in out.changes:  # unchanged, or marked invalid (on_replace="mark_as_invalid")
        return out
    assert a.owner_key is not None
    return _put_change(out, a.owner_key, embedded_key(a, out.changes[a.name], value))


def relation_as(cs: Changeset[Any], name: str, as_: str, fn: str, current: Callable[[], Any]) -> Any:
    """``get_assoc``/``get_embed``: the relation's change, else ``current()``, as changesets or structs."""
    if as_ not in ("changeset", "struct"):
        raise ArgumentError(f'{fn} expects as_="changeset" or as_="struct", got {as_!r}')
    if name in cs.changes:
        value = cs.changes[name]
        if as_ == "struct":
            return applied(value)
        if isinstance(value, list):
            return [c for c in value if not (isinstance(c, Changeset) and c.action in ("replace", "delete"))]
        return None if isinstance(value, Changeset) and value.action in ("replace", "delete") else value
    data = current()
    if as_ == "struct" or data is None:
        return data
    if isinstance(data, list):
        return [Changeset(data=s) for s in data]
    return Changeset(data=data)
