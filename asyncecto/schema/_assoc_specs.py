"""Declaring associations: ``belongs_to``, ``has_one``, ``has_many``, ``many_to_many`` (and ``through``)
return an :class:`AssocSpec`; ``@schema`` resolves each into an :class:`Association`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from asyncecto._names import check_name
from asyncecto.errors import SchemaError

from ._associations import Association, AssocOnReplace, Kind, OnDelete, preload_order_terms, snake

#: ``preload_order``: field names / ``(direction, field)`` pairs, or a function returning them
PreloadOrder = Sequence[Any] | Callable[[], Sequence[Any]]

__all__ = ("AssocSpec", "belongs_to", "has_many", "has_one", "many_to_many", "resolve_spec")


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
    preload_order: PreloadOrder | None = None
    through: tuple[str, ...] | None = None
    join_through: Any = None
    join_keys: Any = None
    join_where: Mapping[str, Any] | None = None
    defaults: Mapping[str, Any] | None = None
    join_defaults: Mapping[str, Any] | None = None
    on_join_through_conflict: str = "raise"
    unique: bool = False
    #: belongs_to: the foreign key field's column, and whether it is (part of) the primary key
    source: str | None = None
    primary_key: bool = False


def belongs_to(
    related: Any,
    *,
    foreign_key: str | None = None,
    references: str = "id",
    type: Any = None,
    define_field: bool = True,
    on_replace: AssocOnReplace = "raise",
    where: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    primary_key: bool = False,
    source: str | None = None,
) -> Any:
    """The struct points at one ``related`` row through its ``<name>_id`` field.

    The foreign key field is added unless the class declares it (or ``define_field=False``);
    its type is ``type=``, else the related schema's primary key type when the class is
    given, else an integer id.

    :param defaults: field values for a related struct built through the association
        (``build_assoc``, ``cast_assoc``/``put_assoc`` of new data)
    :param primary_key: the foreign key field is (part of) the primary key (a composite key
        with the schema's other ``primary_key`` fields)
    :param source: the foreign key field's column name (``source="author_uuid"``)

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
    if defaults is not None and not isinstance(defaults, Mapping):
        raise SchemaError(f"belongs_to defaults must be a dict of field to value, got {defaults!r}")
    if not isinstance(primary_key, bool):
        raise SchemaError(f"belongs_to primary_key must be True or False, got {primary_key!r}")
    if source is not None:
        check_name(source, "belongs_to source column")
    if not define_field and (primary_key or source is not None):
        raise SchemaError(
            "belongs_to primary_key=/source= describe the foreign key field it defines, but define_field=False; "
            "fix: declare the field yourself with field(primary_key=True, source=...)"
        )
    return AssocSpec(
        kind="belongs_to",
        related=related,
        foreign_key=foreign_key,
        references=references,
        type=type,
        define_field=define_field,
        on_replace=on_replace,
        where=where,
        defaults=defaults,
        primary_key=primary_key,
        source=source,
    )


def has_many(
    related: Any = None,
    *,
    foreign_key: str | None = None,
    references: str | None = None,
    through: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    preload_order: PreloadOrder | None = None,
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
    :param preload_order: fields (``"title"`` or ``("desc", "title")``) to sort preloaded rows, or
        a function returning them, called at each preload (Ecto 3.12's MFA):
        ``preload_order=lambda: [("desc", "inserted_at")]``
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
    preload_order: PreloadOrder | None,
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
    preload_order: PreloadOrder | None = None,
    on_delete: Literal["nothing", "delete_all"] = "nothing",
    on_replace: Literal["raise", "mark_as_invalid", "delete"] = "raise",
    defaults: Mapping[str, Any] | None = None,
    join_defaults: Mapping[str, Any] | None = None,
    on_join_through_conflict: Literal["raise", "nothing"] = "raise",
    unique: bool = False,
) -> Any:
    """Rows related through a join table (``join_through="posts_tags"``) or a join schema.

    :param join_keys: ``[("post_id", "id"), ("tag_id", "id")]``: the join table's column for the
        owner and the owner field it holds, then the same for the related schema
        (default ``<owner>_id`` and ``<related>_id`` to both primary keys)
    :param on_delete: ``"delete_all"`` deletes the owner's join rows on ``repo.delete``
    :param join_defaults: field values for each new join row (a join schema only, as Ecto)
    :param on_join_through_conflict: ``"nothing"`` skips a join row that already exists
        (``ON CONFLICT DO NOTHING``); ``"raise"`` (default) lets the unique index refuse it
    :param unique: ``cast_assoc``/``put_assoc`` refuse the same related entry twice with the
        changeset error ``"has duplicate entries"`` (a quick check; keep a unique index too)
    """
    if on_join_through_conflict not in ("raise", "nothing"):
        raise SchemaError(
            f"many_to_many on_join_through_conflict must be 'raise' or 'nothing', got {on_join_through_conflict!r}"
        )
    if not isinstance(unique, bool):
        raise SchemaError(f"many_to_many unique must be True or False, got {unique!r}")
    if join_defaults is not None:
        if not isinstance(join_through, type):
            raise SchemaError(
                f"many_to_many join_defaults needs join_through to be a schema (it fills that schema's fields), "
                f"got join_through={join_through!r}; fix: declare a join schema, or set the columns' defaults "
                "in the migration"
            )
        if not isinstance(join_defaults, Mapping):
            raise SchemaError(f"many_to_many join_defaults must be a dict of field to value, got {join_defaults!r}")
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
        join_defaults=join_defaults,
        on_join_through_conflict=on_join_through_conflict,
        unique=unique,
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
    order: Any = spec.preload_order if callable(spec.preload_order) else preload_order_terms(where, spec.preload_order)
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
            join_defaults=dict(spec.join_defaults or {}),
            on_join_through_conflict=spec.on_join_through_conflict,
            unique=spec.unique,
            **common,
        )
    if spec.references is None and len(owner_pk) != 1:
        raise SchemaError(f"{where}: the owner has no single primary key; give references=")
    return Association(
        owner_key=spec.references or owner_pk[0],
        related_key=spec.foreign_key or f"{snake(owner_name.rpartition('.')[2])}_id",
        **common,
    )


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
