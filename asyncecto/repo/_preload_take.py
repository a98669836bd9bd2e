"""Field lists meeting preloads: a query selecting ``struct(p, ["id", {"comments": ["body"]}])``
(or ``select([...])``, ``map_(p, [...])``) and preloading ``comments``.

The parents are read with their listed fields, and each preloaded association's rows with
theirs. The keys that stitch children to parents are read too, whether listed or not: a
parent's owner key (``id`` for its ``has_many``, ``author_id`` for its ``belongs_to``), a
child's related key (``post_id``), and, for join preloads, the primary keys that tell rows
apart. A struct carries them loaded; a dict (``map_``) shows only the fields listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from asyncecto.query._ast import SelectFields, Shape, SourceRef, Take
from asyncecto.query._clauses.preload import Preload
from asyncecto.query._take import check_preloaded
from asyncecto.schema import schema_info
from asyncecto.schema._associations import Association

__all__ = ("RootTake", "child_fields", "joined_select", "narrow", "root_take", "to_maps")


@attrs.frozen
class RootTake:
    """The from source's field list in a preloading query: ``take`` as written, ``loaded`` its
    fields with the keys added, ``extra`` the dict a ``select_merge`` adds, ``nodes`` the preloads
    with their field lists."""

    take: SelectFields
    loaded: tuple[str, ...]
    extra: Shape | None
    nodes: tuple[Preload, ...]

    @property
    def paired(self) -> bool:
        """``map_`` with a ``select_merge``: the merged values are read beside the struct (its keys
        need not be fields) and put into the dict at the end."""
        return self.take.as_map and self.extra is not None

    def parent(self) -> SelectFields:
        """The parent struct as read: its listed fields and the keys."""
        return SelectFields(0, self.loaded)

    def select(self) -> Any:
        """The parents' query's select: the struct (with a ``select_merge`` into it), or for
        ``map_`` with a merge, ``(struct, merged values)``."""
        if self.extra is None:
            return self.parent()
        return Shape("tuple" if self.take.as_map else "merge", (self.parent(), self.extra))


def root_take(q: Any, schema: type, nodes: tuple[Preload, ...], joined: bool) -> RootTake | None:
    """The field list of ``q``'s select for its ``from`` struct (``None``: the whole struct), with
    the preload ``nodes`` given their association field lists. A :class:`QueryError` when an
    association with a field list is not preloaded."""
    sel, extra = q.select, None
    if isinstance(sel, Shape) and sel.kind == "merge":
        sel, extra = sel.items

    if not (isinstance(sel, SelectFields) and sel.binding == 0):
        return None
    check_preloaded(schema, sel.assocs, nodes, q)
    info = schema_info(schema)
    keys = _level_keys(schema, nodes)
    if joined:
        keys = (*info.primary_key, *keys)
    loaded = tuple(dict.fromkeys((*sel.fields, *keys)))
    return RootTake(sel, loaded, extra, _attach(nodes, dict(sel.assocs)))


def _attach(nodes: Sequence[Preload], takes: dict[str, Take]) -> tuple[Preload, ...]:
    out = []
    for n in nodes:
        t = takes.get(n.name)
        if t is None:
            out.append(n)
        else:
            out.append(attrs.evolve(n, take=t.fields, children=_attach(n.children, dict(t.assocs))))
    return tuple(out)


def _level_keys(schema: type, nodes: Sequence[Preload]) -> tuple[str, ...]:
    """The fields of ``schema`` the preloads ``nodes`` read off each struct: their owner keys
    (a ``through`` association's first hop's)."""
    info = schema_info(schema)
    keys: list[str] = []
    for n in nodes:
        a = info.association(n.name)
        first = a.chain()[0] if a.through is not None else a
        assert first.owner_key is not None
        keys.append(first.owner_key)
    return tuple(keys)


def child_fields(a: Association, node: Preload) -> tuple[str, ...] | None:
    """The fields to read of ``a``'s rows (``None``: all): the listed ones, the related key that
    groups them under their parents, and the owner keys of what is preloaded beneath them."""
    if node.take is None:
        return None
    rkey = () if a.kind == "many_to_many" or a.related_key is None else (a.related_key,)
    return tuple(dict.fromkeys((*node.take, *rkey, *_level_keys(a.related, node.children))))


def joined_select(binding: int, schema: type, nodes: Sequence[Preload]) -> Any:
    """What a join preload reads of ``binding``: the struct, or its listed fields with its
    primary key (rows are told apart by it) and the owner keys of its own preloads."""
    node = _find(nodes, binding)
    if node is None or node.take is None:
        return SourceRef(binding)
    a = _assoc_of(schema, nodes, binding)
    keys = (*schema_info(a.related).primary_key, *_level_keys(a.related, node.children))
    return SelectFields(binding, tuple(dict.fromkeys((*node.take, *keys))))


def _find(nodes: Sequence[Preload], binding: int) -> Preload | None:
    for n in nodes:
        if n.binding == binding:
            return n
        found = _find(n.children, binding)
        if found is not None:
            return found
    return None


def _assoc_of(schema: type, nodes: Sequence[Preload], binding: int) -> Association:
    info = schema_info(schema)
    for n in nodes:
        a = info.association(n.name)
        if n.binding == binding:
            return a
        if _find(n.children, binding) is not None:
            return _assoc_of(a.related, n.children, binding)
    raise AssertionError(binding)


def narrow(select: Any, fields: tuple[str, ...]) -> Any:
    """A preload query's select reading only ``fields`` of its struct (kept in a ``select_merge``
    or a many_to_many ``(owner key, struct)`` pair)."""
    if select is None or (isinstance(select, SourceRef) and select.binding == 0):
        return SelectFields(0, fields)
    if isinstance(select, Shape) and select.kind in ("merge", "tuple"):
        at = 0 if select.kind == "merge" else len(select.items) - 1
        items = list(select.items)
        items[at] = narrow(items[at], fields)
        return Shape(select.kind, tuple(items), select.keys)
    return select


def to_maps(structs: list[Any], root: RootTake, extras: list[Any] | None = None) -> list[Any]:
    """``map_``'s results: each struct as a dict of its listed fields, with its preloaded
    associations (those given field lists as dicts too, the others as loaded), then ``extras``
    (each row's ``select_merge`` values) merged over it."""
    out = _maps(structs, root.take.fields, dict(root.take.assocs), root.nodes)
    if extras is not None:
        for d, extra in zip(out, extras, strict=True):
            d.update(extra)
    return out


def _maps(values: list[Any], fields: tuple[str, ...], takes: dict[str, Take], nodes: Sequence[Preload]) -> list[Any]:
    out: list[Any] = []
    for s in values:
        if s is None:
            out.append(None)
            continue
        d = {f: getattr(s, f) for f in fields}
        for n in nodes:
            v = getattr(s, n.name)
            t = takes.get(n.name)
            if t is not None:
                sub = dict(t.assocs)
                if isinstance(v, list):
                    v = _maps(v, t.fields, sub, n.children)
                elif v is not None:
                    v = _maps([v], t.fields, sub, n.children)[0]
            d[n.name] = v
        out.append(d)
    return out
