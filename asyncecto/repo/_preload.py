"""The preloader: fills associations of loaded structs, one query per association and level.

Keys are sent as one array parameter (``= ANY($1)``). Sibling associations load in parallel
child tasks (each on its own pooled connection) outside a transaction or checkout, and one
after another on the task's connection inside one. A caller's structs are never changed in
place: the preloader returns copies with the associations set (structs it loaded itself, which
nobody else has seen yet, are filled in place).

Preload functions (``{"comments": fn}``) are called with the parents' keys instead of a
query; ``on_preloader_spawn`` runs at the start of each parallel child task.

The hot path: an association's own query (no custom query, integer keys) is planned once per
association and prefix; copies are made column-wise by the loader's copier; and rows are
grouped with no Python call per row beyond the append.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import reprlib
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from operator import attrgetter, is_not, or_
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto._names import check_optional_name
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import _functions
from asyncecto.query._assoc_query import related_query
from asyncecto.query._ast import Shape, SourceRef
from asyncecto.query._clauses import order_by as _order_by_clause
from asyncecto.query._clauses.order_by import order_by
from asyncecto.query._clauses.preload import Preload, is_preload_function, merge_preloads, normalize_preloads
from asyncecto.query._plan import Params, ReadShape, ReadStruct, ReadValue
from asyncecto.query._planner import plan
from asyncecto.query._query import Query
from asyncecto.query._sources import to_query
from asyncecto.schema import Meta, meta, schema_info
from asyncecto.schema._associations import Association, NotLoaded
from asyncecto.schema._struct import copy_struct

from . import _preload_take as _take
from ._core import DEFAULT, RepoCore, check_spawn_hook
from ._loader import Loader, build_copier, build_loader
from ._plan_sql import compiled, fetch_all, query_prefix
from ._preload_embeds import preload_embeds, split_embeds

__all__ = ("preload", "run_with_preloads")

_set = object.__setattr__
_INT_TYPES = (t.Integer, t.Id)
_KEY_ALIAS = "__preload_keys"
_DIRECTIONS = {
    d: getattr(_order_by_clause, d)
    for d in ("asc", "desc", "asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last")
}


@attrs.define
class _Ctx:
    """``prefix`` is the level's: the ``prefix=`` option (``fixed``) at every level, else the
    meta prefix of the first struct of each level (as Ecto's preloader: children that came
    from another schema, by their schema's prefix, have their own children read from it)."""

    core: RepoCore
    prefix: str | None
    timeout: Any
    force: bool
    parallel: bool
    fixed: bool = False
    spawn: Callable[[], Any] | None = None  # on_preloader_spawn


async def preload(
    core: RepoCore,
    structs: Any,
    spec: Sequence[Any],
    *,
    force: bool,
    prefix: str | None,
    timeout: Any,
    in_parallel: bool = True,
    on_preloader_spawn: Any = DEFAULT,
) -> Any:
    """``repo.preload``: ``structs`` (a struct, a list, or ``None``) with ``spec`` loaded."""
    check_optional_name(prefix, "prefix")
    spawn = spawn_hook(core, on_preloader_spawn)
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
    nodes = normalize_preloads(list(spec), schema)
    pre = prefix if prefix is not None else None if schema_info(schema).embedded else meta(present[0]).prefix
    ctx = _Ctx(core, pre, timeout, force, in_parallel, prefix is not None, spawn)
    out = await _level(ctx, items, schema, nodes)
    return out[0] if single else out


async def _level(
    ctx: _Ctx, structs: list[Any], schema: type, nodes: Sequence[Preload], owned: bool = False
) -> list[Any]:
    """``structs`` (``None`` allowed) with every node loaded; copies where something changed.

    ``owned`` structs were made by this very call (rows it loaded), so nobody else holds them
    yet: they are filled in place instead of copied, which no caller can tell apart.
    """
    parents = list({id(s): s for s in structs if s is not None}.values())
    if not parents or not nodes:
        return structs
    info = schema_info(schema)
    if not ctx.fixed and not info.embedded and (own := meta(parents[0]).prefix) != ctx.prefix:
        ctx = attrs.evolve(ctx, prefix=own)
    inner, nodes = split_embeds(info, nodes)
    if inner:  # associations declared inside embeds first (as Ecto), for all embeds of all parents at once
        structs = await preload_embeds(ctx, structs, info, inner, owned, _level)
        if not nodes:
            return structs
        parents = list({id(s): s for s in structs if s is not None}.values())
    plain, through = _expand_through(info, nodes)
    results: dict[str, list[Any]] = {}

    async def load(node: Preload) -> None:
        results[node.name] = await _node(ctx, parents, info.associations[node.name], node, owned)

    # As Ecto: parallel child tasks when two or more associations have keys to fetch, nothing
    # is pinned (transaction, checkout) and in_parallel is on; each task first runs the hook.
    pending = [n for n in plain if _pending(ctx, parents, info.associations[n.name])] if ctx.parallel else []
    if len(pending) > 1 and ctx.core.bound() is None:
        await _run_parallel([functools.partial(_spawned, ctx.spawn, load, node) for node in pending])
        for node in plain:
            if node.name not in results:
                await load(node)
    else:
        for node in plain:
            await load(node)
    filled = [(node.name, results[node.name]) for node in plain]
    if owned:
        for i, p in enumerate(parents):
            for name, values in filled:
                _set(p, name, values[i])
            for a in through:
                if ctx.force or isinstance(getattr(p, a.name), NotLoaded):
                    _set(p, a.name, _walk(p, a))
        return structs
    replaced = _copies(schema, info, parents, filled)
    if through:
        for p in parents:
            current = replaced.get(id(p), p)
            new = current if id(p) in replaced else copy_struct(p, info)
            for a in through:
                if ctx.force or isinstance(getattr(p, a.name), NotLoaded):
                    _set(new, a.name, _walk(new, a))
            replaced[id(p)] = new
    return [replaced.get(id(s), s) if s is not None else None for s in structs]


def _copies(schema: type, info: Any, parents: list[Any], filled: list[tuple[str, list[Any]]]) -> dict[int, Any]:
    """A copy (by ``id``) of each parent that any of ``filled`` changes, with the new values set.

    Column-wise, so no Python code runs per slot: each slot's values are read off the parents
    (or taken from ``filled``), zipped into rows and made into structs by the copier.
    """
    flags: list[bool] | None = None
    for name, values in filled:
        differs = map(is_not, values, map(attrgetter(name), parents))
        flags = list(differs) if flags is None else list(map(or_, flags, differs))
    if not flags or not any(flags):
        return {}
    picked = [p for p, f in zip(parents, flags, strict=True) if f]
    chosen = None if len(picked) == len(parents) else [i for i, f in enumerate(flags) if f]
    new_values = dict(filled)
    columns: list[Any] = []
    for slot in info.slots:
        given = new_values.get(slot)
        if given is None:
            columns.append(map(attrgetter(slot), picked))
        else:
            columns.append(given if chosen is None else [given[i] for i in chosen])
    copies = build_copier(schema)(list(zip(*columns, strict=True)))
    return {id(p): c for p, c in zip(picked, copies, strict=True)}


def _expand_through(info: Any, nodes: Sequence[Preload]) -> tuple[list[Preload], list[Association]]:
    """Plain nodes, with each ``through`` association turned into the chain of its hops (so the
    intermediates are loaded too), and the through associations to fill afterwards."""
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


def _pending(ctx: _Ctx, parents: list[Any], a: Association) -> bool:
    """Whether preloading ``a`` runs a query (or preload function): some parent with a key
    lacks it (or ``force``)."""
    name, owner_key = a.name, a.owner_key
    assert owner_key is not None
    return any(
        (ctx.force or isinstance(getattr(p, name), NotLoaded)) and getattr(p, owner_key) is not None for p in parents
    )


async def _spawned(hook: Callable[[], Any] | None, load: Callable[[Preload], Any], node: Preload) -> None:
    """One parallel preload task: ``on_preloader_spawn`` first, then the association's load."""
    if hook is not None:
        result = hook()
        if inspect.isawaitable(result):
            await result
    await load(node)


async def _run_parallel(jobs: Sequence[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Run ``jobs`` as concurrent child tasks and wait for all of them; the first failure
    cancels the rest and is raised as itself. Cancelled meanwhile (``task.cancel()``,
    ``asyncio.timeout``, an anyio scope, however often), the children are cancelled and waited
    for, then the caller's cancellation is raised as itself.

    What an anyio task group does here, for a fraction of its CPU: no cancel scope per child
    (a page's preloads cost two tasks per call)."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(job()) for job in jobs]
    caught: BaseException | None = None
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException as exc:  # the caller's cancellation
        caught = exc
    if caught is not None or not all(t.done() for t in tasks):  # cancelled, or a child failed
        for task in tasks:
            task.cancel()
    while not all(t.done() for t in tasks):
        try:
            await asyncio.wait(tasks)
        except BaseException as exc:  # cancelled again (an anyio scope repeats it): keep waiting
            if caught is None:
                caught = exc
                for task in tasks:
                    task.cancel()
    if caught is not None:
        raise caught
    errors = [t.exception() if not t.cancelled() else asyncio.CancelledError() for t in tasks]
    failed = [e for e in errors if e is not None]
    if failed:
        raise next((e for e in failed if not isinstance(e, asyncio.CancelledError)), failed[0])


def spawn_hook(core: RepoCore, given: Any) -> Callable[[], Any] | None:
    """The ``on_preloader_spawn`` callback in force: the call's (``None`` turns the repo's off),
    else the repo's."""
    hook = getattr(core, "on_preloader_spawn", None) if given is DEFAULT else given
    check_spawn_hook(hook)
    return hook


async def _node(ctx: _Ctx, parents: list[Any], a: Association, node: Preload, owned: bool) -> list[Any]:
    """The association's value for each parent (aligned with ``parents``); ``owned``: the
    parents were made by this call (see :func:`_level`)."""
    owner_key = a.owner_key
    assert owner_key is not None
    values: list[Any] = [getattr(p, a.name) for p in parents]
    need = [i for i, v in enumerate(values) if ctx.force or isinstance(v, NotLoaded)]
    if need:
        owners = [(i, getattr(parents[i], owner_key)) for i in need]
        keyed = [k for _, k in owners if k is not None]
        keys = list(dict.fromkeys(keyed))
        found = await _fetch(ctx, a, keys, node.query, _take.child_fields(a, node)) if keys else {}
        shared = len(keys) != len(keyed)  # parents with the same key each get a list of their own
        for i, key in owners:
            got = found.get(key) if key is not None else None
            if a.cardinality == "many":
                values[i] = (list(got) if shared else got) if got else []
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
            # no child came from the caller's structs (a preload function's may be anyone's)
            fresh = (owned or len(need) == len(values)) and not is_preload_function(node.query)
            loaded = await _level(ctx, children, a.related, node.children, fresh)
            swap = {id(old): new for old, new in zip(children, loaded, strict=True)}
            values = [
                v
                if isinstance(v, NotLoaded) or v is None
                else ([swap[id(c)] for c in v] if a.cardinality == "many" else swap[id(v)])
                for v in values
            ]
    return values


async def _fetch(
    ctx: _Ctx, a: Association, keys: list[Any], custom: Any, fields: tuple[str, ...] | None = None
) -> dict[Any, list[Any]]:
    """Related rows grouped by the owner key they belong to; ``fields``: only those are read (a
    select's field list for the association)."""
    if is_preload_function(custom):
        return await _call_function(a, keys, custom)
    prepare = ctx.core.preload_prepare_var.get()  # the repo's prepare_query, when overridden
    fast = _plain(ctx, a, keys) if custom is None and prepare is None and fields is None else None
    if fast is not None:
        sql, loader, table, params, rkey = fast
        records, rows = await ctx.core.run("fetch", sql, params, ctx.timeout, table, loader)
        assert rows is not None
        # The driver's finished future holds its list of records until this task next waits.
        # Loading the structs has primed the garbage collector; grouping's first allocations
        # would run it over every record still alive, aging them all (and making the older,
        # costlier collections come sooner). The records are done with: let them go now.
        records.clear()
        return _group_rows(rows, rkey)
    base = to_query(custom) if custom is not None else None
    if base is not None and not selects_source_struct(base.select):
        raise _not_source_struct(base, f" (the preload query for {a.name!r} must give {a.related.__name__} structs)")
    if base is not None and base.preloads:
        raise QueryError(f"nest preloads of {a.name!r} as (query, nested), not inside the preload query")
    m2m = a.kind == "many_to_many"
    per_parent = base is not None and (base.limit is not None or base.offset is not None)
    if per_parent and a.cardinality == "one":
        raise QueryError(f"a preload query with limit/offset is only for many associations, not {a.name!r}")
    if per_parent:
        assert base is not None
        marker = _functions.fragment(f'"{_KEY_ALIAS}"."k"')
        q = related_query(a, marker, base, with_owner_key=m2m)
    else:
        q = related_query(a, keys, base, with_owner_key=m2m)
    if a.preload_order and (base is None or not base.order_bys):
        order = a.order_terms()
        q = q | order_by(lambda *b: [_DIRECTIONS[d](getattr(b[0], f)) for d, f in order])
    if fields is not None:
        q = attrs.evolve(q, select=_take.narrow(q.select, fields))
    if prepare is not None:
        q = prepare(q)
    if per_parent:
        owner_key = a.owner_key
        assert owner_key is not None
        key_type = schema_info(a.owner).fields[owner_key].type
        planned, params = plan(q, "all", prefix=query_prefix(ctx.core, ctx.prefix, q))
        inner, loader = compiled(ctx.core, planned)
        sql = ctx.core.adapter.per_parent_sql(inner, len(params) + 1, key_type, _KEY_ALIAS)
        owner = a.owner.__name__
        dumped = [t.dump_value(key_type, k, field=owner_key, schema=owner) for k in keys]  # as the planner would
        sent = Params([*params, dumped], [*getattr(params, "cast", params), list(keys)])
        _, rows = await ctx.core.run("fetch", sql, sent, ctx.timeout, planned.table, loader)
        assert rows is not None
    else:
        rows = await fetch_all(ctx.core, q, ctx.prefix, ctx.timeout)
    return _group(a, rows)


async def _call_function(a: Association, keys: list[Any], fn: Any) -> dict[Any, list[Any]]:
    """The children a preload function returns for ``keys``, grouped by the owner key they
    belong to (kept in the order returned)."""
    result = fn(list(keys), a) if _takes_association(a, fn) else fn(list(keys))
    if inspect.isawaitable(result):
        result = await result
    related = a.related
    if not isinstance(result, list | tuple):
        raise ArgumentError(
            f"invalid custom preload for {a.name!r} on {a.owner.__name__}: the preload function returned "
            f"{reprlib.repr(result)} ({type(result).__name__}); it must return a list of {related.__name__} "
            f"structs{' as (owner key, struct) tuples' if a.kind == 'many_to_many' else ''}\n\n"
            f"fix: return the rows, e.g. `return await repo.all(query)` (a list) from the function given for "
            f"{a.name!r}"
        )
    grouped: defaultdict[Any, list[Any]] = defaultdict(list)
    rkey = a.related_key
    m2m = a.kind == "many_to_many"
    for entry in result:
        if type(entry) is related and not m2m:
            grouped[getattr(entry, rkey)].append(entry)  # type: ignore[arg-type]
        elif isinstance(entry, tuple) and len(entry) == 2 and type(entry[1]) is related:
            grouped[entry[0]].append(entry[1])
        elif m2m and type(entry) is related:
            raise ArgumentError(_m2m_function_message(a, entry))
        else:
            raise ArgumentError(
                f"invalid custom preload for {a.name!r} on {a.owner.__name__}: the preload function must "
                f"return {related.__name__} structs{' or' if not m2m else ''} (owner key, {related.__name__}) "
                f"tuples, got {reprlib.repr(entry)} in its result\n\n"
                f"fix: return what `repo.all` of a query on {related.__name__} gives"
            )
    return grouped


def _takes_association(a: Association, fn: Any) -> bool:
    """Whether a preload function takes ``(ids, association)`` rather than ``(ids)``: it has
    two required positional parameters (as Ecto's 2-arity preload functions)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: given the ids only
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(sig.parameters.values())
    required = [p for p in params if p.kind in positional and p.default is p.empty]
    can_take_one = len(required) <= 1 and (
        any(p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    )
    blocked = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 2 or blocked or not (can_take_one or len(required) == 2):
        raise ArgumentError(
            f"the preload function for {a.name!r} on {a.owner.__name__} must take the parents' keys "
            f"(fn(ids)) or the keys and the association (fn(ids, association)); got {fn!r} with "
            f"parameters {sig}"
        )
    return len(required) == 2


def _m2m_function_message(a: Association, entry: Any) -> str:
    """Ecto's explanation (Ecto.Repo.Preloader) of what a many_to_many preload function returns."""
    owner, related = a.owner.__name__, a.related.__name__
    (jo, _), (jr, _) = a.join_keys
    table = a.join_table
    rkey = a.related_key
    return (
        f"invalid custom preload for {a.name!r} on {owner}.\n\n"
        f"For many_to_many associations, the preload function should return a tuple with the "
        f"associated key as first element and the struct as second element.\n\n"
        f"For example, when preloading {a.name!r} through the {table!r} table, the function\n\n"
        f"    async def custom_{a.name}(ids):\n"
        f"        return await repo.all(\n"
        f"            from_({related})\n"
        f'            | join("inner", "{table}", on=lambda r, j: j.{jr} == r.{rkey})\n'
        f"            | where(lambda r, j: j.{jo}.in_(ids))\n"
        f"        )\n\n"
        f"is not enough: the rows do not say which {owner} each {related} belongs to. Select the "
        f"owner key with the struct:\n\n"
        f"            | select(lambda r, j: (j.{jo}, r))\n\n"
        f"Expected a tuple with the key and a {related} struct, got: {reprlib.repr(entry)}"
    )


def selects_source_struct(select: Any) -> bool:
    """Whether a query's rows are its ``from`` struct: no select, ``select(lambda p: p)``, or a
    ``select_merge`` into that struct (its merged values are kept, associations preloaded into it)."""
    if isinstance(select, Shape) and select.kind == "merge":
        select = select.items[0]
    return select is None or (isinstance(select, SourceRef) and select.binding == 0)


def _not_source_struct(q: Any, what: str) -> QueryError:
    # Ecto's message (Ecto.Query.Planner), with the fix
    return QueryError(
        f"the binding used in `from` must be selected in `select` when using `preload`{what}: select the "
        f"struct itself (select_merge adds computed values to it), or preload after the query with "
        f"repo.preload; got {q!r}"
    )


def _group(a: Association, rows: list[Any]) -> dict[Any, list[Any]]:
    """Related rows (``(key, struct)`` pairs for many_to_many) grouped by their owner's key."""
    if a.kind == "many_to_many":
        return _group_rows(rows, None)
    rkey = a.related_key
    assert rkey is not None
    return _group_rows(rows, rkey)


def _group_rows(rows: list[Any], rkey: str | None) -> dict[Any, list[Any]]:
    """``rows`` grouped by their owner's key: each struct's ``rkey``, or (``rkey`` ``None``) the
    first of each ``(key, struct)`` pair."""
    grouped: defaultdict[Any, list[Any]] = defaultdict(list)
    if rkey is None:
        for key, struct in rows:
            grouped[key].append(struct)
    else:
        for key, struct in zip(map(attrgetter(rkey), rows), rows, strict=True):
            grouped[key].append(struct)
    return grouped


def _pair_loader(reader: Any) -> Loader | None:
    """For a many_to_many's ``(owner key, struct)`` rows whose key loads as itself: a loader
    making all the structs in one call of the struct loader (instead of one call per row through
    the generic tuple reader), giving the same pairs; ``None`` for any other shape."""
    if not (isinstance(reader, ReadShape) and reader.kind == "tuple" and len(reader.items) == 2):
        return None
    key, struct = reader.items
    if not isinstance(key, ReadValue) or not isinstance(struct, ReadStruct) or struct.nullable:
        return None
    if key.type is not None and not getattr(key.type, "load_is_identity", False):
        return None
    one = build_loader(
        struct.schema,
        struct.fields,
        Meta("loaded", struct.table, struct.prefix, context=schema_info(struct.schema).context),
    )

    def load(rows: Sequence[Any]) -> list[Any]:
        return list(zip([r[0] for r in rows], one([r[1:] for r in rows]), strict=True))

    return load


def _plain(ctx: _Ctx, a: Association, keys: list[Any]) -> tuple[str, Any, str, list[Any], str | None] | None:
    """SQL, loader, table and parameters of an association's own preload query for integer
    ``keys``, planned once per association and prefix (many_to_many ones too: their rows are
    ``(owner key, struct)`` pairs); ``None`` for any other kind of key (planned each time). An
    integer type casts and dumps an int as itself, and the association's other parameters (its
    ``where``, a many_to_many's ``join_where``) are constants."""
    prefix = ctx.prefix if ctx.prefix is not None else ctx.core.config.prefix
    cache_key = ("preload", a, prefix)
    entry = ctx.core.cache_get(cache_key)
    if entry is None:
        m2m = a.kind == "many_to_many"
        rkey = a.related_key

        def build() -> tuple[Any, ...]:
            if rkey is None or not _int_keyed(a) or callable(a.preload_order):
                return (None,)
            q = related_query(a, keys, None, with_owner_key=m2m)
            if a.preload_order:
                order = a.order_terms()
                q = q | order_by(lambda *b: [_DIRECTIONS[d](getattr(b[0], f)) for d, f in order])
            planned, params = plan(q, "all", prefix=prefix)
            if not params or params[0] != keys:  # the keys are not the first parameter: plan each time
                return (None,)
            sql, loader = compiled(ctx.core, planned)
            if m2m:
                loader = _pair_loader(planned.reader) or loader
            rest, rest_cast = params[1:], getattr(params, "cast", params)[1:]
            return (sql, loader, planned.table, rest, rest_cast, None if m2m else rkey)

        entry = ctx.core.cached(cache_key, build)
    if entry[0] is None or not all(type(k) is int for k in keys):
        return None
    sql, loader, table, rest, rest_cast, group_key = entry
    return sql, loader, table, Params([keys, *rest], [keys, *rest_cast]), group_key


def _int_keyed(a: Association) -> bool:
    """Whether the field the preload's keys are compared with is an integer (the related key; for a
    many_to_many, the owner's key and, through a join schema, its owner column too)."""
    if a.kind != "many_to_many":
        assert a.related_key is not None
        return type(schema_info(a.related).fields[a.related_key].type) in _INT_TYPES
    (jo, okey), _ = a.join_keys
    if type(schema_info(a.owner).fields[okey].type) not in _INT_TYPES:
        return False
    through = a.join_through
    return not isinstance(through, type) or type(schema_info(through).fields[jo].type) in _INT_TYPES


# -- preloads written on a query ------------------------------------------------------------


async def run_with_preloads(
    core: RepoCore, q: Query[Any], prefix: str | None, timeout: Any, on_preloader_spawn: Any = DEFAULT
) -> list[Any]:
    """``repo.all`` of a query carrying preloads: join preloads stitched from its rows, then the
    rest loaded by separate queries."""
    nodes = q.preloads
    spawn = spawn_hook(core, on_preloader_spawn)
    bindings: list[int] = []
    _bindings(nodes, bindings)
    schema = q.source.schema
    assert schema is not None
    root = _take.root_take(q, schema, nodes, bool(bindings))
    if root is None and not selects_source_struct(q.select):
        raise _not_source_struct(q, "")
    bare = attrs.evolve(q, preloads=())
    extras: list[Any] | None = None  # map_ with select_merge: each row's merged values
    if root is not None:  # a field list: the listed fields and the keys the preloads need
        nodes = root.nodes
        bare = attrs.evolve(bare, select=root.select())
    if not bindings:
        results = await fetch_all(core, bare, prefix, timeout)
        if root is not None and root.paired:
            extras = [r[1] for r in results]
            results = [r[0] for r in results]
    else:
        for b in bindings:
            kind = q.joins[b - 1].kind if 0 < b <= len(q.joins) else None
            if kind not in ("inner", "left", "inner_lateral", "left_lateral"):
                raise QueryError(f"a join preload requires an inner, left or lateral join, got {kind} join: {q!r}")
        used = [0, *bindings]
        head = bare.select if bare.select is not None else SourceRef(0)  # the struct, with any select_merge
        items = [head if b == 0 else _take.joined_select(b, schema, nodes) for b in used]
        if root is not None and root.paired:  # the merged values after the sources
            items = [root.parent(), *items[1:], root.extra]
        rows = await fetch_all(core, attrs.evolve(bare, select=Shape("tuple", tuple(items))), prefix, timeout)
        pos = {b: i for i, b in enumerate(used)}
        results = _stitch(rows, pos, 0, q.source.schema, nodes)
        if root is not None and root.paired:
            merged: dict[Any, Any] = {}
            for row in rows:
                merged.setdefault(_identity(row[0]), row[-1])
            extras = [merged[_identity(s)] for s in results]
    if not results:
        return results
    pre = prefix if prefix is not None else meta(results[0]).prefix
    ctx = _Ctx(core, pre, timeout, False, True, prefix is not None, spawn)
    loaded = await _level(ctx, results, schema, nodes, owned=True)
    return _take.to_maps(loaded, root, extras) if root is not None and root.take.as_map else loaded


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
