"""Associations: ``belongs_to``, ``has_one``, ``has_many``, ``many_to_many`` and ``through`` chains.

An association is a slot on the struct, not a column. A new or loaded struct holds
:class:`NotLoaded` there until the Repo preloads it; nothing is loaded lazily. The
related schema may be given as the class, as its name (resolved when first needed,
so two schemas can refer to each other) or as a function returning the class.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from asyncecto._names import check_name
from asyncecto.errors import ArgumentError, AssociationNotLoadedError, SchemaError

__all__ = (
    "AssocSpec",
    "Association",
    "NotLoaded",
    "assoc_loaded",
    "belongs_to",
    "build_assoc",
    "has_many",
    "has_one",
    "many_to_many",
    "register",
    "snake",
)

Kind = Literal["belongs_to", "has_one", "has_many", "many_to_many"]
OnDelete = Literal["nothing", "delete_all", "nilify_all"]
AssocOnReplace = Literal["raise", "mark_as_invalid", "nilify", "update", "delete", "delete_if_exists"]

_ON_REPLACE: dict[str, tuple[str, ...]] = {
    "has_many": ("raise", "mark_as_invalid", "delete", "delete_if_exists", "nilify"),
    "has_one": ("raise", "mark_as_invalid", "delete", "delete_if_exists", "nilify", "update"),
    "belongs_to": ("raise", "mark_as_invalid", "delete", "delete_if_exists", "nilify", "update"),
    "many_to_many": ("raise", "mark_as_invalid", "delete"),
}
_ON_DELETE: dict[str, tuple[str, ...]] = {
    "has_many": ("nothing", "delete_all", "nilify_all"),
    "has_one": ("nothing", "delete_all", "nilify_all"),
    "belongs_to": ("nothing",),
    "many_to_many": ("nothing", "delete_all"),
}

# Schema classes by (module, qualified name), to resolve associations named by a string.
_REGISTRY: weakref.WeakValueDictionary[tuple[str, str], type] = weakref.WeakValueDictionary()


def register(cls: type) -> None:
    """Remember a schema class so associations can name it (called by ``@schema``)."""
    _REGISTRY[(cls.__module__, cls.__qualname__)] = cls


def snake(name: str) -> str:
    """``BlogPost`` → ``blog_post``: the default foreign key stem (Ecto's underscore of the module)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"_\1\2", name).lower()


class NotLoaded:
    """The value of an association that was not preloaded; using it as data raises.

    >>> from asyncecto import schema, has_many
    >>> @schema("posts")
    ... class Post:
    ...     comments: list = has_many("Comment")
    >>> Post().comments
    NotLoaded<association 'comments' is not loaded>
    """

    __slots__ = ("cardinality", "field", "owner")
    field: str
    owner: str
    cardinality: str

    def __init__(self, field: str, owner: str, cardinality: str) -> None:
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "cardinality", cardinality)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("NotLoaded is immutable")

    def __repr__(self) -> str:
        return f"NotLoaded<association {self.field!r} is not loaded>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotLoaded) and (other.field, other.owner) == (self.field, self.owner)

    def __hash__(self) -> int:
        return hash((NotLoaded, self.field, self.owner))

    def _refuse(self, *_: Any) -> Any:
        raise AssociationNotLoadedError(self.owner, self.field)

    __iter__ = __len__ = __getitem__ = __contains__ = __bool__ = _refuse

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AssociationNotLoadedError(self.owner, self.field)


def assoc_loaded(value: Any) -> bool:
    """Whether an association's value was loaded (anything but :class:`NotLoaded`)."""
    return not isinstance(value, NotLoaded)


@attrs.frozen(kw_only=True)
class AssocSpec:
    """What ``has_many(...)`` and friends return: the options, until ``@schema`` resolves them."""

    kind: Kind
    related: Any
    foreign_key: str | None = None
    references: str | None = None
    type: Any = None
    define_field: bool = True
    on_replace: str = "raise"
    on_delete: str = "nothing"
    where: Mapping[str, Any] | None = None
    preload_order: Sequence[Any] | None = None
    through: tuple[str, ...] | None = None
    join_through: Any = None
    join_keys: Any = None
    join_where: Mapping[str, Any] | None = None
    defaults: Mapping[str, Any] | None = None


def belongs_to(
    related: Any,
    *,
    foreign_key: str | None = None,
    references: str = "id",
    type: Any = None,
    define_field: bool = True,
    on_replace: AssocOnReplace = "raise",
    where: Mapping[str, Any] | None = None,
) -> Any:
    """The struct points at one ``related`` row through its ``<name>_id`` field.

    The foreign key field is added unless the class declares it (or ``define_field=False``);
    its type is ``type=``, else the related schema's primary key type when the class is
    given, else an integer id.

    >>> from asyncecto import schema, belongs_to
    >>> from asyncecto.schema import schema_info
    >>> @schema("users")
    ... class User:
    ...     name: str | None = None
    >>> @schema("posts")
    ... class Post:
    ...     author: User | None = belongs_to(User)
    >>> list(schema_info(Post).fields)
    ['id', 'author_id']
    """
    return AssocSpec(
        kind="belongs_to",
        related=related,
        foreign_key=foreign_key,
        references=references,
        type=type,
        define_field=define_field,
        on_replace=on_replace,
        where=where,
    )


def has_many(
    related: Any = None,
    *,
    foreign_key: str | None = None,
    references: str | None = None,
    through: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    preload_order: Sequence[Any] | None = None,
    on_delete: OnDelete = "nothing",
    on_replace: AssocOnReplace = "raise",
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """Many ``related`` rows point at this struct through their ``<owner>_id`` field.

    :param foreign_key: the related schema's field (default ``<owner in snake case>_id``)
    :param references: the owner's field it holds (default the primary key)
    :param through: a chain of association names (``["comments", "author"]``); read-only
    :param where: extra conditions on the related rows: ``{"field": value}``, ``None`` for
        IS NULL, ``("not", None)``, ``("in", [...])`` or ``("fragment", "? > 0")``
    :param preload_order: fields (``"title"`` or ``("desc", "title")``) to sort preloaded rows
    :param on_delete: what ``repo.delete`` of the owner does to them: ``"nothing"``,
        ``"delete_all"`` or ``"nilify_all"``
    :param on_replace: what ``cast_assoc``/``put_assoc`` do to a child left out
    """
    return _has(
        "has_many", related, foreign_key, references, through, where, preload_order, on_delete, on_replace, defaults
    )


def has_one(
    related: Any = None,
    *,
    foreign_key: str | None = None,
    references: str | None = None,
    through: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    on_delete: OnDelete = "nothing",
    on_replace: AssocOnReplace = "raise",
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """One ``related`` row points at this struct through its ``<owner>_id`` field (see :func:`has_many`)."""
    return _has("has_one", related, foreign_key, references, through, where, None, on_delete, on_replace, defaults)


def _has(
    kind: Kind,
    related: Any,
    foreign_key: str | None,
    references: str | None,
    through: Sequence[str] | None,
    where: Mapping[str, Any] | None,
    preload_order: Sequence[Any] | None,
    on_delete: str,
    on_replace: str,
    defaults: Mapping[str, Any] | None,
) -> AssocSpec:
    if through is not None:
        if isinstance(through, str) or not through or not all(isinstance(n, str) for n in through):
            raise SchemaError(f"{kind}(through=...) expects a list of association names, got {through!r}")
        if len(through) < 2:
            raise SchemaError(f"{kind}(through={list(through)!r}) needs at least two associations to chain")
        if related is not None or foreign_key or references or where or preload_order or defaults:
            raise SchemaError(f"{kind}(through=...) is read-only and takes no schema or other options")
    elif related is None:
        raise SchemaError(f"{kind}() needs the related schema (a class, its name, or through=[...])")
    return AssocSpec(
        kind=kind,
        related=related,
        foreign_key=foreign_key,
        references=references,
        through=tuple(through) if through is not None else None,
        where=where,
        preload_order=preload_order,
        on_delete=on_delete,
        on_replace=on_replace,
        defaults=defaults,
    )


def many_to_many(
    related: Any,
    *,
    join_through: Any,
    join_keys: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    where: Mapping[str, Any] | None = None,
    join_where: Mapping[str, Any] | None = None,
    preload_order: Sequence[Any] | None = None,
    on_delete: Literal["nothing", "delete_all"] = "nothing",
    on_replace: Literal["raise", "mark_as_invalid", "delete"] = "raise",
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """Rows related through a join table (``join_through="posts_tags"``) or a join schema.

    :param join_keys: ``[("post_id", "id"), ("tag_id", "id")]``: the join table's column for the
        owner and the owner field it holds, then the same for the related schema
        (default ``<owner>_id`` and ``<related>_id`` to both primary keys)
    :param on_delete: ``"delete_all"`` deletes the owner's join rows on ``repo.delete``
    """
    if not (isinstance(join_through, str) and join_through) and not isinstance(join_through, type):
        raise SchemaError(f"many_to_many join_through must be a table name or a schema class, got {join_through!r}")
    keys = None
    if join_keys is not None:
        pairs = list(join_keys.items()) if isinstance(join_keys, Mapping) else list(join_keys)
        if len(pairs) != 2 or not all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
        ):
            raise SchemaError(
                f"many_to_many join_keys must be two (join_column, field) pairs such as "
                f"[('post_id', 'id'), ('tag_id', 'id')], got {join_keys!r}"
            )
        keys = (pairs[0], pairs[1])
        for column, _field in pairs:
            check_name(column, "many_to_many join_keys column")
    if isinstance(join_through, str):
        check_name(join_through, "many_to_many join_through table")
    return AssocSpec(
        kind="many_to_many",
        related=related,
        join_through=join_through,
        join_keys=keys,
        where=where,
        join_where=join_where,
        preload_order=preload_order,
        on_delete=on_delete,
        on_replace=on_replace,
        defaults=defaults,
    )


@attrs.frozen(kw_only=True, eq=False)
class Association:
    """A resolved association, as reflected by ``schema_info(S).associations[name]``.

    :ivar owner_key: the owner's field the association is keyed on (its foreign key for
        ``belongs_to``, else the referenced field, by default the primary key)
    :ivar related_key: the related schema's field matched with ``owner_key`` (the foreign key
        for ``has_*``, the referenced field for ``belongs_to``, the primary key for ``many_to_many``)
    """

    name: str
    kind: Kind
    cardinality: Literal["one", "many"]
    owner: type
    owner_key: str | None
    _related_key: str | None
    on_replace: str
    on_delete: str
    where: tuple[tuple[str, Any], ...] = ()
    preload_order: tuple[tuple[str, str], ...] = ()
    through: tuple[str, ...] | None = None
    join_through: Any = None
    join_where: tuple[tuple[str, Any], ...] = ()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    target: Any = None
    _join_keys: Any = None
    _cache: dict[str, Any] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"Association<{self.owner.__name__}.{self.name}: {self.kind}>"

    @property
    def related(self) -> type:
        """The related schema class (for ``through``, the last hop's)."""
        hit: type | None = self._cache.get("related")
        if hit is None:
            hit = self.chain()[-1].related if self.through is not None else _resolve(self.target, self.owner, self.name)
            self._check_keys(hit)
            self._cache["related"] = hit
        return hit

    def _check_keys(self, related: type) -> None:
        """The keys must be fields: a wrong default foreign key is named with its fix."""
        from ._define import schema_info

        if self.through is not None or self._related_key is None:
            return
        fields = schema_info(related).fields
        if self._related_key not in fields:
            option = "foreign_key" if self.kind in ("has_one", "has_many") else "references"
            raise SchemaError(
                f"association {self.name!r} of {self.owner.__name__} expects {related.__name__} to have the field "
                f"{self._related_key!r}; declare it (a belongs_to defines it) or give {option}=; "
                f"{related.__name__} has: {', '.join(fields)}"
            )

    @property
    def related_key(self) -> str | None:
        """The related schema's key field (``None`` for ``through``)."""
        if self._related_key is None and self.kind == "many_to_many":
            return self.join_keys[1][1]
        return self._related_key

    def chain(self) -> tuple[Association, ...]:
        """The hops of a ``through`` association, each a plain association, in order."""
        hit = self._cache.get("chain")
        if hit is None:
            from ._define import schema_info

            hops: list[Association] = []
            current = self.owner
            for step in self.through or ():
                assocs = schema_info(current).associations
                if step not in assocs:
                    raise SchemaError(
                        f"association {self.name!r} of {self.owner.__name__} goes through {step!r}, "
                        f"which is not an association of {current.__name__}; "
                        f"its associations: {', '.join(assocs) or 'none'}"
                    )
                hop = assocs[step]
                hops.extend(hop.chain() if hop.through is not None else (hop,))
                current = hop.related
            hit = tuple(hops)
            self._cache["chain"] = hit
        return hit

    @property
    def join_keys(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """For ``many_to_many``: ``((join column, owner field), (join column, related field))``."""
        if self.kind != "many_to_many":
            raise ArgumentError(f"association {self.name!r} is a {self.kind}, not a many_to_many")
        if self._join_keys is not None:
            return self._join_keys  # type: ignore[no-any-return]
        owner_pk = _single_pk(self.owner, self.name)
        related_pk = _single_pk(self.related, self.name)
        return (
            (f"{snake(self.owner.__name__)}_id", owner_pk),
            (f"{snake(self.related.__name__)}_id", related_pk),
        )

    @property
    def join_table(self) -> str:
        """For ``many_to_many``: the join table's name."""
        from ._define import schema_info

        if isinstance(self.join_through, type):
            source = schema_info(self.join_through).source
            assert source is not None
            return source
        return str(self.join_through)


def _single_pk(schema: type, assoc: str) -> str:
    from ._define import schema_info

    pk = schema_info(schema).primary_key
    if len(pk) != 1:
        raise SchemaError(
            f"association {assoc!r} needs {schema.__name__} to have exactly one primary key field, "
            f"it has {list(pk)}; give the keys explicitly (references=, foreign_key= or join_keys=)"
        )
    return pk[0]


def _resolve(target: Any, owner: type, name: str) -> type:
    from ._define import is_schema

    found: Any = target
    if isinstance(target, str):
        found = _lookup(target, owner)
    elif callable(target) and not isinstance(target, type):
        found = target()
    if not is_schema(found):
        raise SchemaError(
            f"association {name!r} of {owner.__name__} refers to {target!r}, which is not a schema class; "
            "give the class, its name, or a function returning it"
        )
    from ._define import schema_info

    if schema_info(found).embedded:
        raise SchemaError(
            f"association {name!r} of {owner.__name__} refers to the embedded schema {found.__name__}; "
            "use embeds_one/embeds_many for embedded schemas"
        )
    return found  # type: ignore[no-any-return]


def _lookup(name: str, owner: type) -> Any:
    """A schema named ``name``: a dotted ``module.Class``, a sibling in the owner's scope, or a
    class in the owner's module."""
    module = owner.__module__
    scope = owner.__qualname__.rpartition(".")[0]
    candidates = [(module, f"{scope}.{name}" if scope else name), (module, name)]
    if "." in name:
        mod, _, qual = name.rpartition(".")
        candidates.insert(0, (mod, qual))
    for key in candidates:
        found = _REGISTRY.get(key)
        if found is not None:
            return found
    namespace = vars(sys.modules[module]) if module in sys.modules else {}
    if name in namespace:
        return namespace[name]
    raise SchemaError(
        f"association of {owner.__name__} names the schema {name!r}, which is not defined (yet); "
        "define it before the first query or preload, or pass the class itself"
    )


def resolve_spec(spec: AssocSpec, name: str, owner: type, owner_name: str, owner_pk: tuple[str, ...]) -> Association:
    """The :class:`Association` for ``spec`` declared as ``name`` on ``owner``."""
    where = f"schema {owner_name}, association {name!r}"
    if spec.on_replace not in _ON_REPLACE[spec.kind]:
        raise SchemaError(
            f"{where}: invalid on_replace {spec.on_replace!r} for {spec.kind}; "
            f"use one of {', '.join(_ON_REPLACE[spec.kind])}"
        )
    if spec.on_delete not in _ON_DELETE[spec.kind]:
        raise SchemaError(
            f"{where}: invalid on_delete {spec.on_delete!r} for {spec.kind}; "
            f"use one of {', '.join(_ON_DELETE[spec.kind])}"
        )
    order = _preload_order(where, spec.preload_order)
    conds = _where(where, spec.where)
    join_conds = _where(where, spec.join_where)
    cardinality: Literal["one", "many"] = "many" if spec.kind in ("has_many", "many_to_many") else "one"
    common: dict[str, Any] = {
        "name": name,
        "kind": spec.kind,
        "cardinality": cardinality,
        "owner": owner,
        "on_replace": spec.on_replace,
        "on_delete": spec.on_delete,
        "where": conds,
        "preload_order": order,
        "defaults": dict(spec.defaults or {}),
        "target": spec.related,
    }
    if spec.through is not None:
        return Association(owner_key=None, related_key=None, through=spec.through, **common)
    if spec.kind == "belongs_to":
        return Association(owner_key=spec.foreign_key or f"{name}_id", related_key=spec.references, **common)
    if spec.kind == "many_to_many":
        if len(owner_pk) != 1 and spec.join_keys is None:
            raise SchemaError(f"{where}: the owner has no single primary key; give join_keys=")
        return Association(
            owner_key=spec.join_keys[0][1] if spec.join_keys else owner_pk[0],
            related_key=spec.join_keys[1][1] if spec.join_keys else None,
            join_through=spec.join_through,
            join_where=join_conds,
            join_keys=spec.join_keys,
            **common,
        )
    if spec.references is None and len(owner_pk) != 1:
        raise SchemaError(f"{where}: the owner has no single primary key; give references=")
    return Association(
        owner_key=spec.references or owner_pk[0],
        related_key=spec.foreign_key or f"{snake(owner_name.rpartition('.')[2])}_id",
        **common,
    )


def _preload_order(where: str, order: Sequence[Any] | None) -> tuple[tuple[str, str], ...]:
    if order is None:
        return ()
    if isinstance(order, str):
        order = [order]
    out: list[tuple[str, str]] = []
    for item in order:
        if isinstance(item, str):
            out.append(("asc", item))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and item[0] in ("asc", "desc", "asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last")
            and isinstance(item[1], str)
        ):
            out.append((item[0], item[1]))
        else:
            raise SchemaError(f"{where}: preload_order items are field names or ('desc', field), got {item!r}")
    return tuple(out)


def _where(where: str, conds: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if conds is None:
        return ()
    if not isinstance(conds, Mapping):
        raise SchemaError(f"{where}: where= must be a dict of field to value, got {conds!r}")
    for key, value in conds.items():
        if isinstance(value, tuple) and not (
            len(value) == 2
            and (
                (value[0] == "not" and value[1] is None)
                or (value[0] == "in" and isinstance(value[1], list | tuple))
                or (value[0] == "fragment" and isinstance(value[1], str))
            )
        ):
            raise SchemaError(
                f"{where}: where condition {key!r}: {value!r} is not a value, None, ('not', None), "
                "('in', [...]) or ('fragment', 'sql')"
            )
    return tuple(conds.items())


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
    from ._define import struct_info

    a = struct_info(struct, "build an association").association(name)
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
    prefix = struct.__meta__.prefix
    if prefix is not None and built.__meta__.prefix is None:
        from ._struct import put_meta

        built = put_meta(built, prefix=prefix)
    return built
