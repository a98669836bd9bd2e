"""The preloader: fills associations of loaded structs, one query per association and level.

Keys are sent as one array parameter (``= ANY($1)``). Sibling associations load in parallel
child tasks (each on its own pooled connection) outside a transaction or checkout, and one
after another on the task's connection inside one. Structs are never changed in place: the
preloader returns copies with the associations set.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto._aio import run_all
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import _build, _expr
from asyncecto.query._assoc import related_query
from asyncecto.query._ast import Query, Shape, SourceRef
from asyncecto.query._build import order_by, to_query
from asyncecto.query._planner import plan
from asyncecto.query._preloads import Preload, normalize_preloads
from asyncecto.schema import meta, schema_info
from asyncecto.schema._assocs import Association, NotLoaded
from asyncecto.schema._struct import copy_struct

from ._core import RepoCore

__all__ = ("preload", "run_with_preloads")

_set = object.__setattr__
_KEY_ALIAS = "__preload_keys"
_DIRECTIONS = {
    d: getattr(_build, d)
    for d in ("asc", "desc", "asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last")
}


@attrs.define
class _Ctx:
    core: RepoCore
    prefix: str | None
    timeout: Any
    force: bool
    parallel: bool


async def preload(
    core: RepoCore,
    structs: Any,
    spec: Sequence[Any],
    *,
    force: bool,
    prefix: str | None,
    timeout: Any,
    in_parallel: bool = True,
) -> Any:
    """``repo.preload``: ``structs`` (a struct, a list, or ``None``) with ``spec`` loaded."""
    if structs is None:
        return None
    single = not isinstance(structs, list | tuple)
    items = [structs] if single else list(structs)
    present = [s for s in items if s is not None]
    if not present:
        return structs if single else items
    schema = type(present[0])
    if any(type(s) is not schema for s in present):
        names = sorted({type(s).__name__ for s in present})
        raise ArgumentError(f"cannot preload structs of different schemas together: {', '.join(names)}")
    info = schema_info(schema)
    if info.embedded:
        raise ArgumentError(f"cannot preload on the embedded schema {info.name}; it has no associations")
    nodes = normalize_preloads(list(spec), schema)
    pre = prefix if prefix is not None else meta(present[0]).prefix
    ctx = _Ctx(core, pre, timeout, force, in_parallel)
    out = await _level(ctx, items, schema, nodes)
    return out[0] if single else out


async def _level(ctx: _Ctx, structs: list[Any], schema: type, nodes: Sequence[Preload]) -> list[Any]:
    """``structs`` (``None`` allowed) with every node loaded; copies where something changed."""
    parents = list({id(s): s for s in structs if s is not None}.values())
    if not parents or not nodes:
        return structs
    info = schema_info(schema)
    plain, through = _expand_through(info, nodes)
    results: dict[str, list[Any]] = {}

    async def load(node: Preload) -> None:
        results[node.name] = await _node(ctx, parents, info.associations[node.name], node)

    if ctx.parallel and len(plain) > 1 and ctx.core.bound() is None:
        await run_all([functools.partial(load, node) for node in plain])
    else:
        for node in plain:
            await load(node)
    replaced: dict[int, Any] = {}
    for i, p in enumerate(parents):
        changes = {name: values[i] for name, values in results.items() if values[i] is not getattr(p, name)}
        if changes:
            new = copy_struct(p, info)
            for name, value in changes.items():
                _set(new, name, value)
            replaced[id(p)] = new
    if through:
        for p in parents:
            current = replaced.get(id(p), p)
            new = current if id(p) in replaced else copy_struct(p, info)
            for a in through:
                if ctx.force or isinstance(getattr(p, a.name), NotLoaded):
                    _set(new, a.name, _walk(new, a))
            replaced[id(p)] = new
    return [replaced.get(id(s), s) if s is not None else None for s in structs]


def _expand_through(info: Any, nodes: Sequence[Preload]) -> tuple[list[Preload], list[Association]]:
    """Plain nodes, with each ``through`` association turned into the chain of its hops (so the
    intermediates are loaded too), and the through associations to fill afterwards."""
    from asyncecto.query._preloads import merge_preloads

    plain: list[Preload] = []
    through: list[Association] = []
    for node in nodes:
        a = info.association(node.name)
        if a.through is None:
            plain.append(node)
            continue
        if node.binding is not None:
            raise QueryError(f"association {a.name!r} goes through others; it cannot be preloaded from a join")
        chain = a.chain()
        last = Preload(chain[-1].name, node.query, None, node.children)
        for hop in reversed(chain[:-1]):
            last = Preload(hop.name, None, None, (last,))
        plain.append(last)
        through.append(a)
    return list(merge_preloads(plain)), through


def _walk(struct: Any, a: Association) -> Any:
    """The value of the through association ``a`` read off the loaded intermediates."""
    values = [struct]
    for hop in a.chain():
        nxt: list[Any] = []
        for v in values:
            got = getattr(v, hop.name)
            if hop.cardinality == "many":
                nxt.extend(got)
            elif got is not None:
                nxt.append(got)
        values = nxt
    unique = list({_identity(v): v for v in values}.values())
    if a.cardinality == "one":
        return unique[0] if unique else None
    return unique


def _identity(struct: Any) -> Any:
    pk = schema_info(struct).primary_key
    key = tuple(getattr(struct, k) for k in pk)
    return key if pk and None not in key else id(struct)


async def _node(ctx: _Ctx, parents: list[Any], a: Association, node: Preload) -> list[Any]:
    """The association's value for each parent (aligned with ``parents``)."""
    owner_key = a.owner_key
    assert owner_key is not None
    values: list[Any] = [getattr(p, a.name) for p in parents]
    need = [i for i, v in enumerate(values) if ctx.force or isinstance(v, NotLoaded)]
    if need:
        keys = list(dict.fromkeys(k for i in need if (k := getattr(parents[i], owner_key)) is not None))
        found = await _fetch(ctx, a, keys, node.query) if keys else {}
        for i in need:
            key = getattr(parents[i], owner_key)
            got = found.get(key) if key is not None else None
            if a.cardinality == "many":
                values[i] = list(got) if got else []
            else:
                values[i] = got[0] if got else None
    if node.children:
        children: list[Any] = []
        for v in values:
            if isinstance(v, NotLoaded):
                continue
            if a.cardinality == "many":
                children.extend(v)
            elif v is not None:
                children.append(v)
        if children:
            loaded = await _level(ctx, children, a.related, node.children)
            swap = {id(old): new for old, new in zip(children, loaded, strict=True)}
            values = [
                v
                if isinstance(v, NotLoaded) or v is None
                else ([swap[id(c)] for c in v] if a.cardinality == "many" else swap[id(v)])
                for v in values
            ]
    return values


async def _fetch(ctx: _Ctx, a: Association, keys: list[Any], custom: Any) -> dict[Any, list[Any]]:
    """Related rows grouped by the owner key they belong to."""
    from ._read import _compiled, all_

    base = to_query(custom) if custom is not None else None
    if (
        base is not None
        and base.select is not None
        and not (isinstance(base.select, SourceRef) and base.select.binding == 0)
    ):
        raise QueryError(f"a preload query for {a.name!r} must select the {a.related.__name__} struct, got {base!r}")
    if base is not None and base.preloads:
        raise QueryError(f"nest preloads of {a.name!r} as (query, nested), not inside the preload query")
    m2m = a.kind == "many_to_many"
    per_parent = base is not None and (base.limit is not None or base.offset is not None)
    if per_parent and a.cardinality == "one":
        raise QueryError(f"a preload query with limit/offset is only for many associations, not {a.name!r}")
    if per_parent:
        assert base is not None
        marker = _expr.fragment(f'"{_KEY_ALIAS}"."k"')
        q = related_query(a, marker, base, with_owner_key=m2m)
    else:
        q = related_query(a, keys, base, with_owner_key=m2m)
    if a.preload_order and (base is None or not base.order_bys):
        order = a.preload_order
        q = q | order_by(lambda *b: [_DIRECTIONS[d](getattr(b[0], f)) for d, f in order])
    if per_parent:
        owner_key = a.owner_key
        assert owner_key is not None
        key_type = schema_info(a.owner).fields[owner_key].type
        planned, params = plan(q, "all", prefix=ctx.prefix if ctx.prefix is not None else ctx.core.config.prefix)
        inner, loader = _compiled(ctx.core, planned)
        sql = ctx.core.adapter.per_parent_sql(inner, len(params) + 1, key_type, _KEY_ALIAS)
        owner = a.owner.__name__
        dumped = [t.dump_value(key_type, k, field=owner_key, schema=owner) for k in keys]  # as the planner would
        _, rows = await ctx.core.run("fetch", sql, [*params, dumped], ctx.timeout, planned.table, loader)
        assert rows is not None
    else:
        rows = await all_(ctx.core, q, ctx.prefix, ctx.timeout)
    grouped: dict[Any, list[Any]] = {}
    if m2m:
        for key, struct in rows:
            grouped.setdefault(key, []).append(struct)
    else:
        rkey = a.related_key
        assert rkey is not None
        for struct in rows:
            grouped.setdefault(getattr(struct, rkey), []).append(struct)
    return grouped


# -- preloads written on a query ------------------------------------------------------------


async def run_with_preloads(core: RepoCore, q: Query[Any], prefix: str | None, timeout: Any) -> list[Any]:
    """``repo.all`` of a query carrying preloads: join preloads stitched from its rows, then the
    rest loaded by separate queries."""
    from ._read import all_

    nodes = q.preloads
    if q.select is not None and not (isinstance(q.select, SourceRef) and q.select.binding == 0):
        raise QueryError(f"preload needs the query to select its first source's struct, got {q!r}")
    bindings: list[int] = []
    _bindings(nodes, bindings)
    bare = attrs.evolve(q, preloads=())
    if not bindings:
        results = await all_(core, bare, prefix, timeout)
    else:
        for b in bindings:
            kind = q.joins[b - 1].kind if 0 < b <= len(q.joins) else None
            if kind not in ("inner", "left", "inner_lateral", "left_lateral"):
                raise QueryError(f"a join preload requires an inner, left or lateral join, got {kind} join: {q!r}")
        used = [0, *bindings]
        sel = Shape("tuple", tuple(SourceRef(b) for b in used))
        rows = await all_(core, attrs.evolve(bare, select=sel), prefix, timeout)
        pos = {b: i for i, b in enumerate(used)}
        results = _stitch(rows, pos, 0, q.source.schema, nodes)
    if not results:
        return results
    schema = q.source.schema
    assert schema is not None
    pre = prefix if prefix is not None else meta(results[0]).prefix
    ctx = _Ctx(core, pre, timeout, False, True)
    return await _level(ctx, results, schema, nodes)


def _bindings(nodes: Sequence[Preload], out: list[int]) -> None:
    for n in nodes:
        if n.binding is not None and n.binding not in out:
            out.append(n.binding)
        _bindings(n.children, out)


def _stitch(rows: Sequence[Any], pos: dict[int, int], binding: int, schema: Any, nodes: Sequence[Preload]) -> list[Any]:
    """The distinct structs of ``binding`` in ``rows`` (first-seen order), each with its join
    preloads set from the same rows."""
    groups: dict[Any, tuple[Any, list[Any]]] = {}
    for row in rows:
        s = row[pos[binding]]
        if s is None:
            continue
        key = _identity(s)
        if key in groups:
            groups[key][1].append(row)
        else:
            groups[key] = (s, [row])
    joined = [n for n in nodes if n.binding is not None]
    if not joined:
        return [s for s, _ in groups.values()]
    info = schema_info(schema)
    out = []
    for s, group in groups.values():
        new = copy_struct(s, info)
        for n in joined:
            a = info.association(n.name)
            assert n.binding is not None
            children = _stitch(group, pos, n.binding, a.related, n.children)
            _set(new, n.name, children if a.cardinality == "many" else (children[0] if children else None))
        out.append(new)
    return out
