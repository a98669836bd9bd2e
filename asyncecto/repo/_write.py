"""The write path: changeset → dumped values → one INSERT/UPDATE/DELETE → the resulting struct.

Everything that can be refused is refused before any SQL is sent: an invalid
changeset, a wrong-typed value, a missing primary key. A write with ``prepare_changes``,
association changes or ``on_delete`` dependents runs in one transaction
(``_assoc_write`` writes the associations around the parent's row).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto._names import check_optional_name
from asyncecto.changeset import Changeset
from asyncecto.changeset._assoc_changes import surface_assocs
from asyncecto.changeset._constraint_errors import match_constraint
from asyncecto.changeset._relations import applied
from asyncecto.errors import (
    ArgumentError,
    ConstraintError,
    DatabaseError,
    InvalidChangesetError,
    MultiplePrimaryKeyError,
    NoPrimaryKeyFieldError,
    NoPrimaryKeyValueError,
    StaleEntryError,
)
from asyncecto.query._on_conflict import inserted_key, plan_conflict
from asyncecto.query._plan import Params
from asyncecto.schema import Meta, SchemaInfo, meta, schema_info
from asyncecto.schema._define import utc_now
from asyncecto.schema._embeds import embeds
from asyncecto.schema._info import struct_info
from asyncecto.schema._meta import State
from asyncecto.schema._struct import copy_struct

from ._assoc_write import delete_dependents, relation_changes, write_children, write_parents
from ._core import RepoCore
from ._transaction import Transaction
from ._write_plan import WritePlan, write_plan
from ._write_types import Forced, Stale, TreeWrites, Upsert

__all__ = (
    "Stale",
    "Upsert",
    "delete",
    "delete_tree",
    "insert",
    "insert_or_update",
    "insert_tree",
    "update",
    "update_tree",
)

_set = object.__setattr__
_log = logging.getLogger("asyncecto")
#: what a type's ``dump`` raises for a value it refuses (``dump_value`` makes it a ``CastError``)
_DUMP_ERRORS = (ValueError, TypeError, OverflowError)


def _writable_violation(info: SchemaInfo, name: str, action: str) -> None:
    """A write of a field its ``writable`` forbids: nothing, a warning or ``ArgumentError``
    (the field's ``on_writable_violation``); the caller drops the value."""
    f = info.fields[name]
    if f.on_writable_violation == "nothing":
        return
    message = (
        f"you are attempting to write to the field {name!r} of {info.name} but its writable={f.writable!r} "
        f"option says it should not be written to during an {action}\n\n"
        "fix: set field(writable=...) to allow the write, or field(on_writable_violation=...) to change "
        "what writing to a non-writable field does"
    )
    if f.on_writable_violation == "raise":
        raise ArgumentError(message)
    _log.warning(message)


def _refuse_early(cs: Changeset[Any], info: SchemaInfo) -> None:
    """Before an insert's transaction: a write of a ``writable="never"`` field whose violation
    raises, raises now (Ecto checks before ``prepare_changes`` and associations run)."""
    for name in info.non_insertable:
        if info.fields[name].on_writable_violation == "raise" and (
            name in cs.changes or getattr(cs.data, name) is not None
        ):
            _writable_violation(info, name, "insert")


def _drop_unwritable(cs: Changeset[Any], info: SchemaInfo, action: str) -> Changeset[Any]:
    """The changeset without changes to fields ``action`` may not write (Ecto drops them too, per
    ``on_writable_violation``); on insert, a non-``None`` value on the struct itself counts as a write."""
    names = info.non_insertable if action == "insert" else info.non_updatable
    if not names:
        return cs
    bad = [n for n in names if n in cs.changes or (action == "insert" and getattr(cs.data, n) is not None)]
    for name in bad:
        _writable_violation(info, name, action)
    if not any(n in cs.changes for n in bad):
        return cs
    return attrs.evolve(cs, changes={k: v for k, v in cs.changes.items() if k not in bad})


def _changeset(value: Any, action: str) -> tuple[Changeset[Any], SchemaInfo]:
    cs = value if isinstance(value, Changeset) else Changeset(data=value)
    info = struct_info(cs.data, action)
    if info.embedded:
        raise ArgumentError(f"cannot {action} embedded schema {info.name}: embeds are stored inside their parent")
    if cs.action is not None and cs.action != action:
        raise ArgumentError(f"a changeset with action {cs.action!r} was given to Repo.{action}")
    return cs, info


def _check_valid(cs: Changeset[Any], action: str) -> None:
    if not cs.valid:
        raise InvalidChangesetError(action, _with_action(cs, action))


def _with_action(cs: Changeset[Any], action: str) -> Changeset[Any]:
    return attrs.evolve(cs, action=action)


def _where(struct: Any, opt_prefix: str | None, core: RepoCore) -> tuple[str, str | None]:
    m: Meta = struct.__meta__  # a regular schema's struct (``_changeset`` refused embedded ones)
    if opt_prefix is not None:
        return m.source, str(opt_prefix)  # a plain str, even when it was handed down Forced
    return m.source, m.prefix or core.config.prefix


def _tree_prefix(struct: Any, opt_prefix: str | None, core: RepoCore) -> str | None:
    """The prefix a write passes to its associations: the call's (forced on them), else its own."""
    if opt_prefix is not None:
        return opt_prefix if isinstance(opt_prefix, Forced) else Forced(opt_prefix)
    return _where(struct, None, core)[1]


def _returning(info: SchemaInfo, returning: bool | Sequence[str] | None, extra: Sequence[str]) -> Sequence[str]:
    """The fields a write reads back: ``extra`` (a generated id, an upsert's key), those asked for,
    then the ``read_after_writes`` ones, each once."""
    if not returning:
        after = info.read_after_writes
        if not extra:
            return after
        if not after:
            return extra  # the generated id, or a primary key's fields: never twice the same
    names = list(extra)
    if returning is True:
        names += [f.name for f in info.persisted]
    elif returning:
        for name in returning:
            f = info.field(name)
            if f.virtual:
                raise ArgumentError(f"cannot return virtual field {name!r} of {info.name}")
            names.append(name)
    names += [n for n in info.read_after_writes]
    return list(dict.fromkeys(names))


def _with_generated_embeds(info: SchemaInfo, values: dict[str, Any]) -> None:
    """Fill embedded structs' autogenerated ids and timestamps in ``values`` (in place)."""
    found = embeds(info)
    if not found:
        return
    now = utc_now()
    for name, typ in found.items():
        if values.get(name) is not None:
            value = applied(values[name], now)
            values[name] = None if value is None else typ.autogenerate(value, now)


def _dump(plan: WritePlan, values: dict[str, Any], *more: dict[str, Any]) -> Params:
    """The dumped values of ``values`` (then of each of ``more``), with the values before dumping
    as the parameters' ``cast`` (telemetry's ``cast_params``)."""
    cast = list(values.values())
    for extra in more:
        cast += extra.values()
    types = plan.types
    try:
        dumped = [None if v is None else types[n].dump(v) for n, v in values.items()]
        for extra in more:
            dumped += [None if v is None else types[n].dump(v) for n, v in extra.items()]
    except _DUMP_ERRORS:  # again, value by value: the CastError names the field and the value
        dumped = [t.dump_value(types[n], v, field=n, schema=plan.name) for n, v in values.items()]
        for extra in more:
            dumped += [t.dump_value(types[n], v, field=n, schema=plan.name) for n, v in extra.items()]
    return Params(dumped, cast)


def _joined(*parts: list[Any]) -> Params:
    """Parameters one after another, each part's values before dumping kept (when it has them)."""
    return Params([v for part in parts for v in part], [v for part in parts for v in getattr(part, "cast", part)])


def _constraint_error(core: RepoCore, exc: DatabaseError, cs: Changeset[Any], action: str) -> Exception | None:
    """For a constraint violation: ``InvalidChangesetError`` when the changeset declared the constraint
    (the violation becomes one of its errors), else ``ConstraintError``. ``None`` for other errors.
    """
    found = core.adapter.to_constraint(exc)
    if found is None:
        return None
    kind, name = found
    matched = match_constraint(cs, kind, name)
    if matched is not None:
        return InvalidChangesetError(action, attrs.evolve(matched, action=action))
    declared = [(c.type, str(getattr(c.constraint, "pattern", c.constraint))) for c in cs.constraints]
    return ConstraintError(kind, name, action, declared)


async def _run_rows(
    core: RepoCore, cs: Changeset[Any], action: str, sql: str, params: list[Any], ret: bool, timeout: Any, source: str
) -> tuple[int, Any]:
    """Run a single-struct write: ``(rows hit, first returned row or None)``; constraint
    violations become ``InvalidChangesetError`` (declared) or ``ConstraintError``.
    """
    try:
        if ret:
            rows, _ = await core.run("fetch", sql, params, timeout, source)
            return len(rows), (rows[0] if rows else None)
        count, _ = await core.run("execute", sql, params, timeout, source)
        return count, None
    except DatabaseError as exc:
        mapped = _constraint_error(core, exc, cs, action)
        if mapped is None:
            raise
        raise mapped from exc


async def _prepared(core: RepoCore, cs: Changeset[Any]) -> Changeset[Any]:
    """Run the changeset's ``prepare_changes`` functions in order (inside the write's transaction)."""
    cs = attrs.evolve(cs, repo=core.repo)
    for fn in cs.prepare:
        result = fn(cs)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Changeset):
            raise RuntimeError(f"prepare_changes function {fn!r} must return a changeset, got {result!r}")
        cs = result
    return cs


async def prepared_or_raise(core: RepoCore, cs: Changeset[Any], action: str) -> Changeset[Any]:
    """The changeset after its ``prepare_changes`` functions; one that added an error raises."""
    prepared = await _prepared(core, cs)
    if not prepared.valid:  # a prepare function added an error: roll back, send nothing more
        raise InvalidChangesetError(action, attrs.evolve(prepared, action=action))
    return prepared


async def _in_transaction_if_needed(
    core: RepoCore,
    cs: Changeset[Any],
    action: str,
    write: Callable[[Changeset[Any]], Awaitable[Any]],
    needed: bool = False,
) -> Any:
    """Run ``write(cs)``; with ``prepare_changes`` functions (or ``needed``: associations to write),
    run them and the write in one transaction."""
    if not cs.prepare and not needed:
        return await write(cs)
    async with Transaction(core):
        return await write(await prepared_or_raise(core, cs, action) if cs.prepare else cs)


def _apply_returned(plan: WritePlan, struct: Any, names: Sequence[str], row: Any) -> None:
    types = plan.types
    for i, name in enumerate(names):
        _set(struct, name, t.load_value(types[name], row[i]))


async def insert(
    core: RepoCore,
    value: Any,
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    timeout: Any,
    upsert: Upsert | None = None,
) -> Any:
    check_optional_name(prefix, "prefix")
    cs, info = _changeset(value, "insert")
    plan = write_plan(info)
    if plan.associations:
        cs = surface_assocs(cs)
    _check_valid(cs, "insert")
    if plan.non_insertable:
        _refuse_early(cs, info)
    if upsert is not None:  # refuse bad options before any SQL (the clause is planned again per write)
        if upsert.on_conflict == "nothing" and relation_changes(cs):
            raise ArgumentError(
                "on_conflict='nothing' cannot be combined with association changes: an ignored row has no "
                "key to give its associations; fix: insert the associations separately, or use an on_conflict "
                "that updates the existing row"
            )
        plan_conflict(
            type(cs.data),
            meta(cs.data).source,
            upsert.on_conflict,
            upsert.conflict_target,
            prefix=None,
            params=[],
        )

    relations = plan.associations and relation_changes(cs)
    if not relations and not cs.prepare:  # the common case: one statement, no transaction
        return await _insert(core, cs, prefix, returning, timeout, upsert)

    async def write(cs: Changeset[Any]) -> Any:
        return await insert_tree(core, cs, prefix, returning, timeout, upsert)

    return await _in_transaction_if_needed(core, cs, "insert", write, relations)


async def insert_tree(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    timeout: Any,
    upsert: Upsert | None = None,
) -> Any:
    """Insert a valid changeset and its associations (already inside a transaction when it has any)."""
    if not relation_changes(cs):
        return await _insert(core, cs, prefix, returning, timeout, upsert)
    eff_prefix = _tree_prefix(cs.data, prefix, core)
    cs, parents, after = await write_parents(core, _TREE, cs, "insert", eff_prefix, timeout)
    own = await _insert(core, cs, prefix, returning, timeout, upsert)
    return await write_children(core, _TREE, cs, own, "insert", eff_prefix, timeout, parents, after)


async def _insert(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    timeout: Any,
    upsert: Upsert | None = None,
) -> Any:
    struct = cs.data
    info = schema_info(struct)
    plan = write_plan(info)
    source, eff_prefix = _where(struct, prefix, core)
    if plan.non_insertable:
        cs = _drop_unwritable(cs, info, "insert")
    values = _insert_values(plan, struct, cs.changes)
    if plan.timestamps:
        ts_names = [n for n in plan.timestamps if values.get(n) is None]
        if ts_names:
            now = info.timestamp(utc_now())
            for n in ts_names:
                values[n] = now
    if plan.embeds:
        _with_generated_embeds(info, values)
    params = _dump(plan, values)
    db_id = info.autogenerate_id if info.autogenerate_id not in values else None
    if upsert is not None and upsert.on_conflict not in (None, "raise"):
        return await _upsert(core, cs, info, values, params, source, eff_prefix, returning, timeout, upsert)
    ret = _returning(info, returning, (db_id,) if db_id else ())
    column = plan.column
    columns = tuple(map(column, values))
    ret_cols = tuple(map(column, ret))
    sql = core.cached(
        ("insert", source, eff_prefix, columns, ret_cols),
        lambda: core.adapter.insert_sql(eff_prefix, source, columns, ret_cols),
    )
    _, row = await _run_rows(core, cs, "insert", sql, params, bool(ret), timeout, source)
    return _inserted(cs, info, values, ret, row, source, eff_prefix, True)


def _insert_values(plan: WritePlan, struct: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """What an insert sends, by field in declaration order: the change, else the struct's value
    (``autogenerate``'s for ``None``); ``None`` is left out (the column's default), a change to
    ``None`` is not."""
    if not changes and not plan.autogenerates:
        return {n: v for n, v in zip(plan.insert_names, plan.insert_values(struct), strict=True) if v is not None}
    values: dict[str, Any] = {}
    for name, autogenerate in plan.insert_fields:
        if name in changes:
            values[name] = changes[name]
            continue
        v = getattr(struct, name)
        if v is None and autogenerate is not None:
            v = autogenerate()
        if v is not None:
            values[name] = v
    return values


def _inserted(
    cs: Changeset[Any],
    info: SchemaInfo,
    values: dict[str, Any],
    ret: Sequence[str],
    row: Any,
    source: str,
    prefix: str | None,
    inserted: bool,
) -> Any:
    """The struct an insert gives back: the written values, then what ``RETURNING`` read."""
    struct = cs.data
    result = copy_struct(struct, info)
    for name, v in values.items():
        _set(result, name, v)
    plan = write_plan(info)
    virtual = plan.virtual
    if virtual:
        for name, v in cs.changes.items():
            if name in virtual:
                _set(result, name, v)
    if row is not None:
        _apply_returned(plan, result, ret, row)
    _set(result, "__meta__", _meta("loaded", source, prefix, inserted, struct.__meta__.context))
    return result


def _meta(state: State, source: str, prefix: str | None, inserted: bool | None, context: Any) -> Meta:
    """A written struct's meta: without a ``context``, one shared instance per state, table, prefix
    and flag (a meta is immutable; loaded rows share theirs too)."""
    if context is not None:
        return Meta(state, source, prefix, inserted, context)
    key = (state, source, prefix, inserted)
    found = _METAS.get(key)
    if found is None:
        if len(_METAS) >= 4096:  # a bound for many tenants' prefixes: start over
            _METAS.clear()
        found = _METAS[key] = Meta(state, source, prefix, inserted)
    return found


_METAS: dict[tuple[str, str, str | None, bool | None], Meta] = {}


async def _upsert(
    core: RepoCore,
    cs: Changeset[Any],
    info: SchemaInfo,
    values: dict[str, Any],
    params: list[Any],
    source: str,
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    timeout: Any,
    upsert: Upsert,
) -> Any:
    """``INSERT … ON CONFLICT``: the primary key always comes back (an update keeps the stored one),
    with a flag telling a new row from a conflicting one."""
    fixed: list[Any] = Params()
    conflict = plan_conflict(
        type(cs.data), source, upsert.on_conflict, upsert.conflict_target, prefix=prefix, params=fixed
    )
    assert conflict is not None
    key = inserted_key(info, conflict)
    flag = key is not None
    ret = _returning(info, returning, list(info.primary_key))
    columns = tuple(info.fields[n].source for n in values)
    ret_cols = tuple(info.fields[n].source for n in ret)
    adapter = core.adapter
    body = adapter.values_body(len(fixed) + 1, len(columns), 1)
    sql = adapter.insert_rows_sql(prefix, source, columns, body, ret_cols, conflict, key)
    if not ret_cols and not flag:
        count, _ = await _run_rows(core, cs, "insert", sql, _joined(fixed, params), False, timeout, source)
        return _inserted(cs, info, values, (), None, source, prefix, count == 1)
    _, row = await _run_rows(core, cs, "insert", sql, _joined(fixed, params), True, timeout, source)
    if row is None:
        if conflict.action == "nothing":  # ignored: the struct as given, a database-made key left unset
            return _inserted(cs, info, values, (), None, source, prefix, False)
        _affected(0, "insert", cs, upsert.stale)  # the conflict query's where matched nothing
        return cs.data
    inserted = bool(row[-1]) if flag else True
    return _inserted(cs, info, values, ret, row, source, prefix, inserted)


def _with(struct: Any, info: SchemaInfo, values: dict[str, Any]) -> Any:
    """``struct`` with ``values`` set (a copy), or ``struct`` itself when there are none."""
    if not values:
        return struct
    result = copy_struct(struct, info)
    for name, v in values.items():
        _set(result, name, v)
    return result


def _pk_filters(info: SchemaInfo, struct: Any, action: str) -> dict[str, Any]:
    if not info.primary_key:
        raise NoPrimaryKeyFieldError(info.name, action)
    filters = {}
    for name in info.primary_key:
        v = getattr(struct, name)
        if v is None:
            raise NoPrimaryKeyValueError(struct, name, action)
        filters[name] = v
    return filters


def _affected(count: int, action: str, cs: Changeset[Any], stale: Stale) -> bool:
    """Whether a row was hit; raises for 0 (unless ``stale.allow``) and for more than one."""
    struct = cs.data
    if count == 0:
        if stale.allow or cs.repo_opts.get("allow_stale"):
            return False
        name = stale.field or cs.repo_opts.get("stale_error_field")
        if name is not None:
            message = stale.message if stale.field else cs.repo_opts.get("stale_error_message", stale.message)
            error = (name, (message, {"stale": True}))
            bad = attrs.evolve(cs, errors=(error, *cs.errors), valid=False, action=action)
            raise InvalidChangesetError(action, bad)
        raise StaleEntryError(action, struct)
    if count > 1:
        raise MultiplePrimaryKeyError(action, struct, count)
    return True


async def update(
    core: RepoCore,
    value: Any,
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    force: bool,
    stale: Stale,
    timeout: Any,
) -> Any:
    check_optional_name(prefix, "prefix")
    if not isinstance(value, Changeset):
        raise ArgumentError(
            f"giving a struct to Repo.update is not supported: {value!r}\n\n"
            "fix: update needs a changeset that says what changed, e.g. "
            "repo.update(change(struct, field=new_value)) or a cast(...) changeset"
        )
    cs, info = _changeset(value, "update")
    _check_valid(cs, "update")
    plan = write_plan(info)
    if plan.non_updatable:
        cs = _drop_unwritable(cs, info, "update")
    relations = plan.associations and relation_changes(cs)
    if not force and not relations and not _changes_columns(plan, cs):
        return _with(cs.data, info, _virtual_changes(plan, cs))
    if not relations and not cs.prepare:  # the common case: one statement, no transaction
        return await _update(core, cs, prefix, returning, stale, timeout)

    async def write(cs: Changeset[Any]) -> Any:
        return await update_tree(core, cs, prefix, returning, stale, timeout, force=True)

    return await _in_transaction_if_needed(core, cs, "update", write, relations)


def _changes_columns(plan: WritePlan, cs: Changeset[Any]) -> bool:
    """Whether the changeset changes a field stored in the database."""
    persisted = plan.persisted
    return any(n in persisted for n in cs.changes)


def _virtual_changes(plan: WritePlan, cs: Changeset[Any]) -> dict[str, Any]:
    virtual = plan.virtual
    if not virtual:
        return {}
    return {n: v for n, v in cs.changes.items() if n in virtual}


async def update_tree(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
    *,
    force: bool = False,
) -> Any:
    """Update a valid changeset and its associations; without changes (and ``force``) nothing is sent.

    Association changes alone still update the parent (its ``updated_at``), as Ecto does.
    """
    info = schema_info(cs.data)
    plan = write_plan(info)
    if plan.non_updatable:
        cs = _drop_unwritable(cs, info, "update")
    relations = plan.associations and relation_changes(cs)
    if not force and not relations and not _changes_columns(plan, cs):
        return _with(cs.data, info, _virtual_changes(plan, cs))
    if not relations:
        return await _update(core, cs, prefix, returning, stale, timeout)
    eff_prefix = _tree_prefix(cs.data, prefix, core)
    cs, parents, after = await write_parents(core, _TREE, cs, "update", eff_prefix, timeout, stale)
    own = await _update(core, cs, prefix, returning, stale, timeout)
    return await write_children(core, _TREE, cs, own, "update", eff_prefix, timeout, parents, after, stale)


async def _update(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    struct = cs.data
    info = schema_info(struct)
    plan = write_plan(info)
    if plan.non_updatable:
        cs = _drop_unwritable(cs, info, "update")
    persisted = plan.persisted
    changes = {n: v for n, v in cs.changes.items() if n in persisted}
    virtual = _virtual_changes(plan, cs)
    if info.updated_at is not None and info.updated_at not in changes:
        changes[info.updated_at] = info.timestamp(utc_now())
    if not changes:
        return _with(struct, info, virtual)
    filters = _pk_filters(info, struct, "update")
    if cs.filters:
        filters = {**filters, **cs.filters}
    source, eff_prefix = _where(struct, prefix, core)
    if plan.embeds:
        _with_generated_embeds(info, changes)
    params = _dump(plan, changes, filters)
    ret = _returning(info, returning, ())
    column = plan.column
    columns = tuple(map(column, changes))
    filter_cols = tuple(map(column, filters))
    ret_cols = tuple(map(column, ret))
    sql = core.cached(
        ("update", source, eff_prefix, columns, filter_cols, ret_cols),
        lambda: core.adapter.update_sql(eff_prefix, source, columns, filter_cols, ret_cols),
    )
    count, row = await _run_rows(core, cs, "update", sql, params, bool(ret), timeout, source)
    if not _affected(count, "update", cs, stale):
        return struct
    result = copy_struct(struct, info)
    for name, v in changes.items():
        _set(result, name, v)
    for name, v in virtual.items():
        _set(result, name, v)
    if row is not None:
        _apply_returned(plan, result, ret, row)
    _set(result, "__meta__", _meta("loaded", source, eff_prefix, None, struct.__meta__.context))
    return result


async def delete(
    core: RepoCore,
    value: Any,
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    check_optional_name(prefix, "prefix")
    cs, info = _changeset(value, "delete")
    _check_valid(cs, "delete")
    dependents = write_plan(info).dependents
    if not dependents and not cs.prepare:  # the common case: one statement, no transaction
        return await _delete(core, cs, prefix, returning, stale, timeout)

    async def write(cs: Changeset[Any]) -> Any:
        return await delete_tree(core, cs, prefix, returning, stale, timeout)

    return await _in_transaction_if_needed(core, cs, "delete", write, dependents)


async def delete_tree(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    """Delete a valid changeset's row after applying its schema's ``on_delete`` to associated rows."""
    if write_plan(schema_info(cs.data)).dependents:
        await delete_dependents(core, cs.data, _tree_prefix(cs.data, prefix, core), timeout)
    return await _delete(core, cs, prefix, returning, stale, timeout)


async def _delete(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    struct = cs.data
    info = schema_info(struct)
    filters = _pk_filters(info, struct, "delete")
    if cs.filters:
        filters = {**filters, **cs.filters}
    plan = write_plan(info)
    source, eff_prefix = _where(struct, prefix, core)
    params = _dump(plan, filters)
    ret = _returning(info, returning, ())
    column = plan.column
    filter_cols = tuple(map(column, filters))
    ret_cols = tuple(map(column, ret))
    sql = core.cached(
        ("delete", source, eff_prefix, filter_cols, ret_cols),
        lambda: core.adapter.delete_sql(eff_prefix, source, filter_cols, ret_cols),
    )
    count, row = await _run_rows(core, cs, "delete", sql, params, bool(ret), timeout, source)
    _affected(count, "delete", cs, stale)
    result = copy_struct(struct, info)
    if row is not None:
        _apply_returned(plan, result, ret, row)
    _set(result, "__meta__", _meta("deleted", source, eff_prefix, None, struct.__meta__.context))
    return result


async def insert_or_update(
    core: RepoCore, value: Any, prefix: str | None, returning: bool | Sequence[str] | None, timeout: Any
) -> Any:
    if not isinstance(value, Changeset):
        raise ArgumentError(
            f"giving a struct to Repo.insert_or_update is not supported: {value!r}\n\n"
            "fix: pass a changeset, e.g. repo.insert_or_update(change(struct, field=value))"
        )
    state = meta(value.data).state
    if state == "built":
        return await insert(core, value, prefix, returning, timeout)
    if state == "loaded":
        return await update(core, value, prefix, returning, False, Stale(), timeout)
    raise ArgumentError(f"the changeset has an invalid state for Repo.insert_or_update: {state}")


#: what association writes call back for each child (they may nest)
_TREE = TreeWrites(insert_tree, update_tree, delete_tree, prepared_or_raise)
