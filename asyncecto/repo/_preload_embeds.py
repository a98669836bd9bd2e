"""Preloading associations declared inside embedded schemas (Ecto's ``preload_embeds``).

``repo.preload(order, {"items": "product"})``: ``items`` is an embed of ``Order`` whose
structs declare ``product = belongs_to(Product)``. The embedded structs of every parent are
gathered into one list and handed to the preloader's level function as parents of their own,
so each association under the embed is one query for all embeds of all parents (no N+1);
an embed inside an embed nests the same way. The parents are then given the embeds back, in
their order: copies where an embed changed (structs this call loaded itself are filled in place).

The related rows are read from the parent level's prefix (an embed lives in its parent's row);
Ecto reads them from the repo's default prefix, as an embedded struct has no meta.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asyncecto.query._clauses.preload import Preload
from asyncecto.schema import SchemaInfo
from asyncecto.schema._embeds import EmbedMany, EmbedOne, embeds
from asyncecto.schema._struct import copy_struct

__all__ = ("Level", "preload_embeds", "split_embeds")

#: the preloader's level: ``(ctx, structs, schema, nodes, owned) -> structs`` with the nodes loaded
Level = Callable[[Any, list[Any], type, Sequence[Preload], bool], Awaitable[list[Any]]]

_set = object.__setattr__


def split_embeds(info: SchemaInfo, nodes: Sequence[Preload]) -> tuple[list[tuple[Preload, Any]], list[Preload]]:
    """The nodes naming embed fields (each with its embed type), and the association nodes."""
    found = embeds(info)
    if not found:
        return [], list(nodes)
    inner: list[tuple[Preload, Any]] = []
    rest: list[Preload] = []
    for node in nodes:
        typ = found.get(node.name)
        if typ is None or node.name in info.associations:
            rest.append(node)
        else:
            inner.append((node, typ))
    return inner, rest


async def preload_embeds(
    ctx: Any, structs: list[Any], info: SchemaInfo, pairs: Sequence[tuple[Preload, Any]], owned: bool, level: Level
) -> list[Any]:
    """``structs`` with the associations under each embed of ``pairs`` loaded, one embed after another."""
    for node, typ in pairs:
        structs = await _one(ctx, structs, info, node, typ, owned, level)
    return structs


async def _one(
    ctx: Any, structs: list[Any], info: SchemaInfo, node: Preload, typ: EmbedOne | EmbedMany, owned: bool, level: Level
) -> list[Any]:
    name = node.name
    parents = list({id(s): s for s in structs if s is not None}.values())
    held: list[list[Any]] = []
    flat: list[Any] = []
    for p in parents:
        value = getattr(p, name)
        inner = [] if value is None else list(value) if isinstance(typ, EmbedMany) else [value]
        held.append(inner)
        flat.extend(inner)
    if not flat:
        return structs
    loaded = iter(await level(ctx, flat, typ.schema, node.children, owned))
    replaced: dict[int, Any] = {}
    for p, inner in zip(parents, held, strict=True):
        new = [next(loaded) for _ in inner]
        if all(a is b for a, b in zip(new, inner, strict=True)):
            continue
        value = new if isinstance(typ, EmbedMany) else new[0]
        if owned:  # a struct this call loaded: nobody else holds it yet
            _set(p, name, value)
            continue
        copy = copy_struct(p, info)
        _set(copy, name, value)
        replaced[id(p)] = copy
    if not replaced:
        return structs
    return [replaced.get(id(s), s) if s is not None else None for s in structs]
