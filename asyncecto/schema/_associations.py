"""Associations: ``belongs_to``, ``has_one``, ``has_many``, ``many_to_many`` and ``through`` chains.

An association is a slot on the struct, not a column. A new or loaded struct holds
:class:`NotLoaded` there until the Repo preloads it; nothing is loaded lazily. The
related schema may be given as the class, as its name (resolved when first needed,
so two schemas can refer to each other) or as a function returning the class.

This module holds the resolved :class:`Association` (keys, join table, ``through`` chain) and
:class:`NotLoaded`; the declarations (``has_many`` …) are in ``_assoc_specs``.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from asyncecto.errors import ArgumentError, AssociationNotLoadedError, SchemaError

from ._info import is_schema, schema_info

__all__ = ("AssocOnReplace", "Association", "Kind", "NotLoaded", "OnDelete", "assoc_loaded", "register", "snake")

Kind = Literal["belongs_to", "has_one", "has_many", "many_to_many"]
OnDelete = Literal["nothing", "delete_all", "nilify_all"]
AssocOnReplace = Literal["raise", "mark_as_invalid", "nilify", "update", "delete", "delete_if_exists"]


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

    __slots__ = ("cardinality", "embedded", "field", "owner")
    field: str
    owner: str
    cardinality: str
    #: the owner is an embedded schema: its associations are preloaded through the parent
    embedded: bool

    def __init__(self, field: str, owner: str, cardinality: str, *, embedded: bool = False) -> None:
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "cardinality", cardinality)
        object.__setattr__(self, "embedded", embedded)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("NotLoaded is immutable")

    def __repr__(self) -> str:
        return f"NotLoaded<association {self.field!r} is not loaded>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotLoaded) and (other.field, other.owner) == (self.field, self.owner)

    def __hash__(self) -> int:
        return hash((NotLoaded, self.field, self.owner))

    def _refuse(self, *_: Any) -> Any:
        raise AssociationNotLoadedError(self.owner, self.field, embedded=self.embedded)

    __iter__ = __len__ = __getitem__ = __contains__ = __bool__ = _refuse

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AssociationNotLoadedError(self.owner, self.field, embedded=self.embedded)


def assoc_loaded(value: Any) -> bool:
    """Whether an association's value was loaded (anything but :class:`NotLoaded`)."""
    return not isinstance(value, NotLoaded)


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
    #: ``(direction, field)`` pairs, or a function returning such terms, called at each preload
    preload_order: tuple[tuple[str, str], ...] | Callable[[], Any] = ()
    through: tuple[str, ...] | None = None
    join_through: Any = None
    join_where: tuple[tuple[str, Any], ...] = ()
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    #: many_to_many: values for new join rows, ``"raise"``/``"nothing"`` on an existing join row,
    #: and whether duplicate related entries are a changeset error
    join_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    on_join_through_conflict: str = "raise"
    unique: bool = False
    target: Any = None
    _join_keys: Any = None
    _cache: dict[str, Any] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"Association<{self.owner.__name__}.{self.name}: {self.kind}>"

    def order_terms(self) -> tuple[tuple[str, str], ...]:
        """The preload order: the declared pairs, or what the ``preload_order`` function returns now."""
        order = self.preload_order
        if not callable(order):
            return order
        where = f"schema {self.owner.__name__}, association {self.name!r}"
        return preload_order_terms(f"{where}: preload_order function {order!r}", order())

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
        if isinstance(self.join_through, type):
            source = schema_info(self.join_through).source
            assert source is not None
            return source
        return str(self.join_through)


def _single_pk(schema: type, assoc: str) -> str:
    pk = schema_info(schema).primary_key
    if len(pk) != 1:
        raise SchemaError(
            f"association {assoc!r} needs {schema.__name__} to have exactly one primary key field, "
            f"it has {list(pk)}; give the keys explicitly (references=, foreign_key= or join_keys=)"
        )
    return pk[0]


def _resolve(target: Any, owner: type, name: str) -> type:
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


def preload_order_terms(where: str, order: Any) -> tuple[tuple[str, str], ...]:
    """``preload_order`` as ``(direction, field)`` pairs (field names, or ``(direction, field)``)."""
    if order is None:
        return ()
    if not isinstance(order, str | list | tuple):
        raise SchemaError(f"{where}: preload_order is a list of field names or ('desc', field), got {order!r}")
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
