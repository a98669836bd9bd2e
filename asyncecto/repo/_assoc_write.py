"""Association changes written with their parent, inside the parent's transaction.

Ecto's order: ``belongs_to`` parents first (their keys copied into the changeset), the
parent's own row, then ``has_one``/``has_many`` children (foreign key set from the
parent) and ``many_to_many`` rows with their join rows. Entries left out are deleted,
or detached (``nilify``), as the association's ``on_replace`` says. A child's failure
is reported on the parent changeset, and the transaction rolls back. Children inherit
the parent's prefix unless their own struct has one; a call's ``prefix=`` beats both.
"""

from __future__ import annotations

from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.changeset import Changeset, change
from asyncecto.changeset._assoc_changes import surface_assocs
from asyncecto.errors import InvalidChangesetError
from asyncecto.query._assoc_query import assoc
from asyncecto.schema import meta, schema_info
from asyncecto.schema._associations import Association, NotLoaded
from asyncecto.schema._struct import copy_struct

from . import _assoc_rows as _rows
from ._core import RepoCore
from ._read import delete_all, update_all
from ._write_types import Forced, Stale, TreeWrites, Upsert

__all__ = ("delete_dependents", "has_dependents", "relation_changes", "write_children", "write_parents")

_set = object.__setattr__


def relation_changes(cs: Changeset[Any]) -> bool:
    """Whether the changeset changes any association."""
    if isinstance(cs.data, dict):
        return False
    assocs = schema_info(cs.data).associations
    return bool(assocs) and any(name in assocs for name in cs.changes)


def has_dependents(info: Any) -> bool:
    """Whether deleting a struct of this schema touches other rows (``on_delete``)."""
    return any(a.on_delete != "nothing" and a.through is None for a in info.associations.values())


def _original(data: Any, name: str) -> Any:
    value = getattr(data, name)
    return None if isinstance(value, NotLoaded) else value


def _pk(struct: Any) -> tuple[Any, ...]:
    return tuple(getattr(struct, k) for k in schema_info(struct).primary_key)


def _prefix(child: Changeset[Any] | Any, parent_prefix: str | None) -> str | None:
    """A child's prefix: the call's ``prefix=`` when one was given (forced down, as Ecto passes its
    options), else the child struct's own, else the parent's."""
    if isinstance(parent_prefix, Forced):
        return parent_prefix
    data = child.data if isinstance(child, Changeset) else child
    own = meta(data).prefix
    return own if own is not None else parent_prefix


def _bubble(cs: Changeset[Any], action: str, name: str, child: Changeset[Any], failed: Changeset[Any]) -> Exception:
    """The parent's ``InvalidChangesetError`` carrying the failed child in place of ``child``."""
    value = cs.changes[name]
    value = [failed if c is child else c for c in value] if isinstance(value, list) else failed
    bad = attrs.evolve(cs, changes={**cs.changes, name: value}, valid=False, action=action)
    return InvalidChangesetError(action, bad)


async def _write(
    core: RepoCore,
    tree: TreeWrites,
    child: Changeset[Any],
    prefix: str | None,
    timeout: Any,
    stale: Stale | None = None,
) -> Any:
    """Insert, update or delete one child changeset (its own relations included); ``ignore`` keeps
    its data, ``delete`` (set by a ``with_`` function) deletes the row and gives ``None``.
    ``stale`` is the parent's update options (``allow_stale`` ...), which cascade as in Ecto."""
    stale = stale or Stale()
    if child.action == "ignore":
        return child.data
    if child.action == "delete":
        await tree.delete(core, child, prefix, None, stale, timeout)
        return None
    if child.prepare:
        child = await tree.prepared_or_raise(core, child, child.action or "insert")
    if child.action == "insert":
        return await tree.insert(core, surface_assocs(child), prefix, None, timeout)
    return await tree.update(core, child, prefix, None, stale, timeout)


async def write_parents(
    core: RepoCore,
    tree: TreeWrites,
    cs: Changeset[Any],
    action: str,
    prefix: str | None,
    timeout: Any,
    stale: Stale | None = None,
) -> tuple[Changeset[Any], dict[str, Any], list[tuple[Association, Any]]]:
    """Write the ``belongs_to`` changes first. Returns the changeset with their keys set, the
    association values to put on the result, and replaced parents to delete after the write."""
    info = schema_info(cs.data)
    values: dict[str, Any] = {}
    after: list[tuple[Association, Any]] = []
    for name, a in info.associations.items():
        if a.kind != "belongs_to" or name not in cs.changes:
            continue
        assert a.owner_key is not None and a.related_key is not None
        child = cs.changes[name]
        original = _original(cs.data, name)
        if child is None:
            key = None
            values[name] = None
        else:
            try:
                written = await _write(core, tree, child, _prefix(child, prefix), timeout, stale)
            except InvalidChangesetError as exc:
                raise _bubble(cs, action, name, child, exc.changeset) from exc
            key = None if written is None else getattr(written, a.related_key)
            values[name] = written
        replaced = original is not None and (child is None or _pk(child.data) != _pk(original))
        if replaced and a.on_replace in ("delete", "delete_if_exists"):
            after.append((a, original))
        if action == "insert" or getattr(cs.data, a.owner_key) != key:
            cs = attrs.evolve(cs, changes={**cs.changes, a.owner_key: key})
    return cs, values, after


async def write_children(
    core: RepoCore,
    tree: TreeWrites,
    cs: Changeset[Any],
    own: Any,
    action: str,
    prefix: str | None,
    timeout: Any,
    parents: dict[str, Any],
    after: list[tuple[Association, Any]],
    stale: Stale | None = None,
) -> Any:
    """Write ``has_*``/``many_to_many`` changes after the parent's row; the result struct holds
    every changed association's new value."""
    info = schema_info(own)
    result = copy_struct(own, info)
    for name, value in parents.items():
        _set(result, name, value)
    for a, original in after:
        await _replace(core, tree, a, original, None, prefix, timeout, stale)
    for name, a in info.associations.items():
        if a.kind == "belongs_to" or name not in cs.changes:
            continue
        assert a.owner_key is not None
        owner_value = getattr(own, a.owner_key)
        value = cs.changes[name]
        if a.cardinality == "one":
            original = _original(cs.data, name)
            if original is not None and (value is None or _pk(value.data) != _pk(original)):
                await _replace(core, tree, a, original, owner_value, prefix, timeout, stale)
            written = (
                None
                if value is None
                else await _child(core, tree, cs, action, a, value, owner_value, prefix, timeout, stale)
            )
            _set(result, name, written)
            continue
        if a.kind == "many_to_many":
            _set(
                result, name, await _many_to_many(core, tree, cs, action, a, value, owner_value, prefix, timeout, stale)
            )
            continue
        out = []
        for child in value:
            if child.action == "replace":
                await _replace(core, tree, a, child.data, owner_value, prefix, timeout, stale)
            elif child.action != "ignore":
                written = await _child(core, tree, cs, action, a, child, owner_value, prefix, timeout, stale)
                if written is not None:  # None: deleted
                    out.append(written)
        _set(result, name, out)
    return result


async def _many_to_many(
    core: RepoCore,
    tree: TreeWrites,
    cs: Changeset[Any],
    action: str,
    a: Association,
    children: list[Changeset[Any]],
    owner_value: Any,
    prefix: str | None,
    timeout: Any,
    stale: Stale | None,
) -> list[Any]:
    """A many_to_many relation's writes, batched: one DELETE of every unlinked join row (entries
    replaced, or children with action ``delete``: only their join rows go, as in Ecto), the
    children written in their order — each run of consecutive new structs that need nothing of
    their own in one INSERT, the others one by one —, then one INSERT of every new join row (for
    children inserted, or not linked before). The result keeps the children's order."""
    unlink = [c.data for c in children if c.action in ("replace", "delete")]
    if unlink:
        await _rows.delete_join_rows(core, a, owner_value, unlink, prefix, timeout)
    kept = [c for c in children if c.action not in ("replace", "delete", "ignore")]
    linked = {_pk(s) for s in _original(cs.data, a.name) or ()}
    out: list[tuple[Changeset[Any], Any]] = []
    run: list[Changeset[Any]] = []  # consecutive new plain structs of one table and prefix
    run_key: tuple[Any, ...] | None = None
    for child in kept:
        key = (meta(child.data).source, _prefix(child, prefix)) if _rows.batchable(child) else None
        if run and key != run_key:
            out += await _insert_run(core, tree, cs, action, a, run, owner_value, prefix, run_key, timeout, stale)
            run = []
        if key is not None:
            run.append(child)
            run_key = key
        elif (got := await _child(core, tree, cs, action, a, child, owner_value, prefix, timeout, stale)) is not None:
            out.append((child, got))
    if run:
        out += await _insert_run(core, tree, cs, action, a, run, owner_value, prefix, run_key, timeout, stale)
    link = [got for child, got in out if child.action == "insert" or _pk(got) not in linked]
    if link:
        if isinstance(a.join_through, type) and not _rows.plain_schema(schema_info(a.join_through)):
            for got in link:
                await _join_row(core, tree, a, owner_value, got, prefix, timeout)
        else:
            await _rows.insert_join_rows(core, a, owner_value, link, prefix, timeout)
    return [got for _, got in out]


async def _insert_run(
    core: RepoCore,
    tree: TreeWrites,
    cs: Changeset[Any],
    action: str,
    a: Association,
    run: list[Changeset[Any]],
    owner_value: Any,
    prefix: str | None,
    run_key: tuple[Any, ...] | None,
    timeout: Any,
    stale: Stale | None,
) -> list[tuple[Changeset[Any], Any]]:
    """Insert a run of new plain related structs: in one statement (two or more), else as any child.
    A constraint one of them broke is reported on that child."""
    if len(run) == 1:
        got = await _child(core, tree, cs, action, a, run[0], owner_value, prefix, timeout, stale)
        return [] if got is None else [(run[0], got)]
    assert run_key is not None
    structs, bad, error = await _rows.insert_plain(core, run, run_key[1], timeout)
    if bad is not None:
        assert isinstance(error, InvalidChangesetError)
        raise _bubble(cs, action, a.name, run[bad], error.changeset) from error
    return list(zip(run, structs, strict=True))


async def _child(
    core: RepoCore,
    tree: TreeWrites,
    cs: Changeset[Any],
    action: str,
    a: Association,
    child: Changeset[Any],
    owner_value: Any,
    prefix: str | None,
    timeout: Any,
    stale: Stale | None = None,
) -> Any:
    """Write one child of ``cs`` (linked to ``owner_value``); its failure fails the parent."""
    sent = child
    if a.kind in ("has_one", "has_many"):
        assert a.related_key is not None
        if child.action == "insert" or getattr(child.data, a.related_key) != owner_value:
            sent = attrs.evolve(child, changes={**child.changes, a.related_key: owner_value})
    child_prefix = _prefix(child, prefix)
    try:
        written = await _write(core, tree, sent, child_prefix, timeout, stale)
    except InvalidChangesetError as exc:
        raise _bubble(cs, action, a.name, child, exc.changeset) from exc
    return written


async def _replace(
    core: RepoCore,
    tree: TreeWrites,
    a: Association,
    struct: Any,
    owner_value: Any,
    prefix: str | None,
    timeout: Any,
    stale: Stale | None = None,
) -> None:
    """Apply ``on_replace`` to an entry that is no longer associated."""
    struct_prefix = _prefix(struct, prefix)
    if a.on_replace in ("nilify", "update"):  # "update" given None: the entry is detached, as in Ecto
        assert a.related_key is not None
        await tree.update(core, change(struct, {a.related_key: None}), struct_prefix, None, stale or Stale(), timeout)
    elif a.on_replace in ("delete", "delete_if_exists"):
        if a.on_replace == "delete_if_exists":
            stale = Stale(allow=True)
        await tree.delete(core, change(struct), struct_prefix, None, stale or Stale(), timeout)


async def _join_row(
    core: RepoCore, tree: TreeWrites, a: Association, owner_value: Any, related: Any, prefix: str | None, timeout: Any
) -> None:
    """Insert one join row through a join schema the batched insert leaves out (fields an insert
    may not write, embeds): a real insert of the schema."""
    assert isinstance(a.join_through, type)
    (jo_name, _), (jr_name, rkey) = a.join_keys
    row = a.join_through(**{**a.join_defaults, jo_name: owner_value, jr_name: getattr(related, rkey)})
    upsert = Upsert(on_conflict="nothing") if a.on_join_through_conflict == "nothing" else None
    await tree.insert(core, Changeset(data=row, action="insert"), prefix, None, timeout, upsert)


async def delete_dependents(core: RepoCore, struct: Any, prefix: str | None, timeout: Any) -> None:
    """Schema-level ``on_delete``: children deleted or detached, join rows deleted, before the parent."""
    info = schema_info(struct)
    for name, a in info.associations.items():
        if a.on_delete == "nothing" or a.through is not None:
            continue
        assert a.owner_key is not None
        owner_value = getattr(struct, a.owner_key)
        if owner_value is None:
            continue
        if a.kind == "many_to_many":
            jo, _ = _rows.join_columns(a)
            okey = a.join_keys[0][1]
            dumped = t.dump_value(info.fields[okey].type, owner_value, field=okey)
            table = a.join_table
            sql = core.cached(
                ("join_delete_all", table, prefix, jo),
                lambda table=table, jo=jo: core.adapter.delete_sql(prefix, table, (jo,), ()),  # type: ignore[misc]
            )
            await core.run("execute", sql, [dumped], timeout, table)
            continue
        q = assoc(struct, name, prefix=prefix)
        if a.on_delete == "delete_all":
            await delete_all(core, q, None, timeout)
        else:
            assert a.related_key is not None
            await update_all(core, q, {"set": {a.related_key: None}}, None, timeout)
