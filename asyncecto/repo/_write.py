"""The write path: changeset → dumped values → one INSERT/UPDATE/DELETE → the resulting struct.

Everything that can be refused is refused before any SQL is sent: an invalid
changeset, a wrong-typed value, a missing primary key.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from asyncecto import types as t
from asyncecto.changeset import Changeset
from asyncecto.changeset._constraints import match_constraint
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
from asyncecto.schema import Meta, SchemaInfo, meta, schema_info
from asyncecto.schema._define import struct_info, utc_now
from asyncecto.schema._struct import copy_struct

from ._core import RepoCore

__all__ = ("delete", "insert", "insert_or_update", "update")

_set = object.__setattr__


def _changeset(value: Any, action: str) -> Changeset[Any]:
    cs = value if isinstance(value, Changeset) else Changeset(data=value)
    info = struct_info(cs.data, action)
    if info.embedded:
        raise ArgumentError(f"cannot {action} embedded schema {info.name}: embeds are stored inside their parent")
    if cs.action is not None and cs.action != action:
        raise ArgumentError(f"a changeset with action {cs.action!r} was given to Repo.{action}")
    return cs


def _check_valid(cs: Changeset[Any], action: str) -> None:
    if not cs.valid:
        raise InvalidChangesetError(action, _with_action(cs, action))


def _with_action(cs: Changeset[Any], action: str) -> Changeset[Any]:
    import attrs

    return attrs.evolve(cs, action=action)


def _where(struct: Any, opt_prefix: str | None, core: RepoCore) -> tuple[str, str | None]:
    m = meta(struct)
    return m.source, opt_prefix if opt_prefix is not None else (m.prefix or core.config.prefix)


def _returning(info: SchemaInfo, returning: bool | Sequence[str] | None, extra: Sequence[str]) -> list[str]:
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


def _dump(info: SchemaInfo, values: dict[str, Any]) -> list[Any]:
    return [t.dump_value(info.fields[n].type, v, field=n, schema=info.name) for n, v in values.items()]


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


async def _prepared(core: RepoCore, cs: Changeset[Any]) -> Changeset[Any]:
    """Run the changeset's ``prepare_changes`` functions in order (inside the write's transaction)."""
    cs = attrs.evolve(cs, repo=core)
    for fn in cs.prepare:
        result = fn(cs)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Changeset):
            raise RuntimeError(f"prepare_changes function {fn!r} must return a changeset, got {result!r}")
        cs = result
    return cs


async def _in_transaction_if_prepared(
    core: RepoCore, cs: Changeset[Any], write: Callable[[Changeset[Any]], Awaitable[Any]]
) -> Any:
    """Run ``write(cs)``; with ``prepare_changes`` functions, run them and the write in one transaction."""
    if not cs.prepare:
        return await write(cs)
    from ._transaction import Transaction

    async with Transaction(core):
        return await write(await _prepared(core, cs))


def _apply_returned(info: SchemaInfo, struct: Any, names: Sequence[str], row: Any) -> None:
    for i, name in enumerate(names):
        _set(struct, name, t.load_value(info.fields[name].type, row[i]))


async def insert(
    core: RepoCore, value: Any, prefix: str | None, returning: bool | Sequence[str] | None, timeout: Any
) -> Any:
    cs = _changeset(value, "insert")
    _check_valid(cs, "insert")

    async def write(cs: Changeset[Any]) -> Any:
        return await _insert(core, cs, prefix, returning, timeout)

    return await _in_transaction_if_prepared(core, cs, write)


async def _insert(
    core: RepoCore, cs: Changeset[Any], prefix: str | None, returning: bool | Sequence[str] | None, timeout: Any
) -> Any:
    struct, info = cs.data, schema_info(cs.data)
    source, eff_prefix = _where(struct, prefix, core)

    values: dict[str, Any] = {}
    for f in info.persisted:
        if f.name in cs.changes:
            values[f.name] = cs.changes[f.name]
            continue
        v = getattr(struct, f.name)
        if v is None and f.autogenerate is not None:
            v = f.autogenerate()
        if v is not None:
            values[f.name] = v
    ts_names = [n for n in (info.inserted_at, info.updated_at) if n is not None and values.get(n) is None]
    if ts_names:
        assert info.timestamp_type is not None
        now = info.timestamp_type.cast(utc_now())
        for n in ts_names:
            values[n] = now
    params = _dump(info, values)
    db_id = info.autogenerate_id if info.autogenerate_id not in values else None
    ret = _returning(info, returning, [db_id] if db_id else [])
    columns = tuple(info.fields[n].source for n in values)
    ret_cols = tuple(info.fields[n].source for n in ret)
    sql = core.cached(
        ("insert", source, eff_prefix, columns, ret_cols),
        lambda: core.adapter.insert_sql(eff_prefix, source, columns, ret_cols),
    )
    try:
        if ret:
            row, _ = await core.run("fetchrow", sql, params, timeout, source)
        else:
            await core.run("execute", sql, params, timeout, source)
            row = None
    except DatabaseError as exc:
        mapped = _constraint_error(core, exc, cs, "insert")
        if mapped is None:
            raise
        raise mapped from exc

    result = copy_struct(struct, info)
    for name, v in values.items():
        _set(result, name, v)
    for name, v in cs.changes.items():
        if name in info.fields and info.fields[name].virtual:
            _set(result, name, v)
    if row is not None:
        _apply_returned(info, result, ret, row)
    _set(result, "__meta__", Meta("loaded", source, eff_prefix))
    return result


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


@attrs.frozen
class Stale:
    """What a write does when no row matched: return as is, raise ``StaleEntryError``, or
    raise ``InvalidChangesetError`` with an error on ``field`` (from the call or the
    changeset's ``repo_opts``).
    """

    allow: bool = False
    field: str | None = None
    message: str = "is stale"


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
    if not isinstance(value, Changeset):
        raise ArgumentError(
            f"giving a struct to Repo.update is not supported: {value!r}\n\n"
            "fix: update needs a changeset that says what changed, e.g. "
            "repo.update(change(struct, field=new_value)) or a cast(...) changeset"
        )
    cs = _changeset(value, "update")
    _check_valid(cs, "update")
    struct, info = cs.data, schema_info(cs.data)
    changes = {n: v for n, v in cs.changes.items() if n in info.fields and not info.fields[n].virtual}
    virtual = {n: v for n, v in cs.changes.items() if n in info.fields and info.fields[n].virtual}
    if not changes and not force:
        return _with(struct, info, virtual)

    async def write(cs: Changeset[Any]) -> Any:
        return await _update(core, cs, prefix, returning, stale, timeout)

    return await _in_transaction_if_prepared(core, cs, write)


async def _update(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    struct, info = cs.data, schema_info(cs.data)
    changes = {n: v for n, v in cs.changes.items() if n in info.fields and not info.fields[n].virtual}
    virtual = {n: v for n, v in cs.changes.items() if n in info.fields and info.fields[n].virtual}
    if info.updated_at is not None and info.updated_at not in changes:
        assert info.timestamp_type is not None
        changes[info.updated_at] = info.timestamp_type.cast(utc_now())
    if not changes:
        return _with(struct, info, virtual)
    filters = {**_pk_filters(info, struct, "update"), **cs.filters}
    source, eff_prefix = _where(struct, prefix, core)
    params = _dump(info, changes) + _dump(info, filters)
    ret = _returning(info, returning, [])
    columns = tuple(info.fields[n].source for n in changes)
    filter_cols = tuple(info.fields[n].source for n in filters)
    ret_cols = tuple(info.fields[n].source for n in ret)
    sql = core.cached(
        ("update", source, eff_prefix, columns, filter_cols, ret_cols),
        lambda: core.adapter.update_sql(eff_prefix, source, columns, filter_cols, ret_cols),
    )
    try:
        if ret:
            rows, _ = await core.run("fetch", sql, params, timeout, source)
            count, row = len(rows), (rows[0] if rows else None)
        else:
            count, _ = await core.run("execute", sql, params, timeout, source)
            row = None
    except DatabaseError as exc:
        mapped = _constraint_error(core, exc, cs, "update")
        if mapped is None:
            raise
        raise mapped from exc
    if not _affected(count, "update", cs, stale):
        return struct
    result = copy_struct(struct, info)
    for name, v in {**changes, **virtual}.items():
        _set(result, name, v)
    if row is not None:
        _apply_returned(info, result, ret, row)
    _set(result, "__meta__", Meta("loaded", source, eff_prefix))
    return result


async def delete(
    core: RepoCore,
    value: Any,
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    cs = _changeset(value, "delete")
    _check_valid(cs, "delete")

    async def write(cs: Changeset[Any]) -> Any:
        return await _delete(core, cs, prefix, returning, stale, timeout)

    return await _in_transaction_if_prepared(core, cs, write)


async def _delete(
    core: RepoCore,
    cs: Changeset[Any],
    prefix: str | None,
    returning: bool | Sequence[str] | None,
    stale: Stale,
    timeout: Any,
) -> Any:
    struct, info = cs.data, schema_info(cs.data)
    filters = {**_pk_filters(info, struct, "delete"), **cs.filters}
    source, eff_prefix = _where(struct, prefix, core)
    params = _dump(info, filters)
    ret = _returning(info, returning, [])
    filter_cols = tuple(info.fields[n].source for n in filters)
    ret_cols = tuple(info.fields[n].source for n in ret)
    sql = core.cached(
        ("delete", source, eff_prefix, filter_cols, ret_cols),
        lambda: core.adapter.delete_sql(eff_prefix, source, filter_cols, ret_cols),
    )
    try:
        if ret:
            rows, _ = await core.run("fetch", sql, params, timeout, source)
            count, row = len(rows), (rows[0] if rows else None)
        else:
            count, _ = await core.run("execute", sql, params, timeout, source)
            row = None
    except DatabaseError as exc:
        mapped = _constraint_error(core, exc, cs, "delete")
        if mapped is None:
            raise
        raise mapped from exc
    _affected(count, "delete", cs, stale)
    result = copy_struct(struct, info)
    if row is not None:
        _apply_returned(info, result, ret, row)
    _set(result, "__meta__", Meta("deleted", source, eff_prefix))
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
