"""Planning for inserts that do more than add a row: ``on_conflict`` and ``insert_all``'s markers.

Everything here runs before any SQL is sent, so every mistake in an upsert's options
(a conflict target with ``"raise"``, an empty replace list, an unknown field, a
conflict query on another table) is an :class:`ArgumentError` naming the option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from asyncecto._names import check_name
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.schema import SchemaInfo, schema_info

from ._ast import UnsafeFragment
from ._clauses.exclude import used_clauses
from ._clauses.from_ import from_
from ._clauses.update import update
from ._plan import Planned
from ._planner import _Planner
from ._query import Query

__all__ = (
    "ConflictPlan",
    "ConflictTarget",
    "OnConflict",
    "Placeholder",
    "UnsafeFragment",
    "UnsafeReturning",
    "columns_of",
    "inserted_key",
    "placeholder",
    "plan_conflict",
    "unsafe_fragment",
)

_UPDATE_KEYS = ("set", "inc", "push", "pull")


@attrs.frozen
class Placeholder:
    """A value of ``insert_all``'s ``placeholders=`` mapping, sent once however many rows use it."""

    key: str


def placeholder(key: str) -> Placeholder:
    """Use the ``placeholders=`` value named ``key`` in an ``insert_all`` row.

    >>> placeholder("now")
    Placeholder(key='now')
    """
    return Placeholder(key)


def unsafe_fragment(sql: str) -> UnsafeFragment:
    """Raw SQL for ``conflict_target=``: ``unsafe_fragment("(lower(email)) WHERE deleted_at IS NULL")``.

    It is not quoted or checked: never build it from user input.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ArgumentError(f"unsafe_fragment needs SQL text, got {sql!r}")
    return UnsafeFragment(sql)


class UnsafeReturning(str):
    """``insert_all``'s ``returning=unsafe_fragment(sql)``: the RETURNING list, written as given."""

    __slots__ = ()


@attrs.frozen
class ConflictPlan:
    """An ``ON CONFLICT`` clause, ready for the adapter.

    ``action`` ``"nothing"``; ``"replace"`` sets each of ``replace`` from the proposed row
    (``EXCLUDED``); ``"update"`` runs ``update``'s SET and WHERE against the existing row.
    """

    action: Literal["nothing", "replace", "update"]
    target: tuple[str, ...] = ()
    fragment: str | None = None
    replace: tuple[str, ...] = ()
    update: Planned | None = None

    @property
    def updates(self) -> bool:
        """Whether a conflicting row may be updated (every action but ``"nothing"``): the insert then
        returns a flag telling a new row from an updated one."""
        return self.action != "nothing"


def inserted_key(info: SchemaInfo | None, conflict: ConflictPlan | None) -> tuple[str, ...] | None:
    """Columns telling a row an upsert inserted from one it updated (``meta(s).inserted``): the primary
    key, else the conflict target's columns, else ``()``; ``None`` when no row can be updated."""
    if conflict is None or not conflict.updates:
        return None
    if info is not None and info.primary_key:
        return tuple(info.fields[n].source for n in info.primary_key)
    return conflict.target


OnConflict = str | tuple[str, Sequence[str]] | Mapping[str, Mapping[str, Any]] | Query[Any] | None
ConflictTarget = str | Sequence[str] | UnsafeFragment | None


def columns_of(info: SchemaInfo | None, names: Sequence[str], option: str) -> tuple[str, ...]:
    """Field names to column names (``source``); an unknown or virtual field raises naming ``option``
    (``"conflict_target"``, ``"insert_all rows"``, ...). Without a schema, names are columns."""
    if info is None:  # schemaless: the names are the columns, written as given
        return tuple(check_name(name, f"column in {option}") for name in names)
    out = []
    for name in names:
        f = info.fields.get(name) if isinstance(name, str) else None
        if f is None:
            raise ArgumentError(
                f"unknown field {name!r} in {option} for schema {info.name}; known fields: "
                f"{', '.join(x.name for x in info.persisted)}"
            )
        if f.virtual:
            raise ArgumentError(
                f"field {name!r} is virtual: {info.name} does not store it, so it cannot be in {option}"
            )
        out.append(f.source)
    return tuple(out)


def _names(value: Any, option: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ArgumentError(f"{option} must be a field name or a list of field names, got {value!r}")


def _target(info: SchemaInfo | None, conflict_target: Any) -> tuple[tuple[str, ...], str | None]:
    if conflict_target is None:
        return (), None
    if isinstance(conflict_target, UnsafeFragment):
        return (), conflict_target.sql
    names = _names(conflict_target, "conflict_target")
    if not names:
        raise ArgumentError("conflict_target= is an empty list; give the columns of a unique index, or leave it out")
    return columns_of(info, names, "conflict_target"), None


def plan_conflict(
    schema: type | None,
    table: str,
    on_conflict: Any,
    conflict_target: Any,
    *,
    prefix: str | None,
    params: list[Any],
    updated_at: tuple[str, Any] | None = None,
    replace_changed: bool = True,
) -> ConflictPlan | None:
    """The ``ON CONFLICT`` clause for ``on_conflict``/``conflict_target``; ``None`` for ``"raise"``.

    ``params`` receives the clause's parameters (they are numbered first). ``updated_at``,
    ``(field, now)``, is set on the update path too (``timestamps=True`` on ``insert_all``).
    ``replace_changed=False`` keeps the conflict target's fields in ``"replace_all"`` /
    ``("replace_all_except", ...)`` (Ecto's ``:replace_changed``; by default they are left out).
    """
    if not isinstance(replace_changed, bool):
        raise ArgumentError(f"replace_changed= must be True or False, got {replace_changed!r}")
    info = schema_info(schema) if schema is not None else None
    if isinstance(on_conflict, list) and len(on_conflict) == 2 and isinstance(on_conflict[0], str):
        on_conflict = tuple(on_conflict)  # ["replace", [...]] as ("replace", [...])
    if on_conflict is None or on_conflict == "raise":
        if conflict_target is not None:
            raise ArgumentError(
                f"conflict_target={conflict_target!r} was given with on_conflict='raise', where it has no effect; "
                "fix: pass on_conflict='nothing', 'replace_all', ('replace', [...]), an update dict or a query, "
                "or leave conflict_target out"
            )
        return None
    target, fragment = _target(info, conflict_target)
    if on_conflict == "nothing":
        return ConflictPlan("nothing", target, fragment)
    if not target and fragment is None:
        raise ArgumentError(
            f"on_conflict={on_conflict!r} updates the existing row, and PostgreSQL needs to know which unique "
            "index conflicts; fix: pass conflict_target= with its columns, e.g. conflict_target=['id']"
        )
    if isinstance(on_conflict, str) or (isinstance(on_conflict, tuple) and len(on_conflict) == 2):
        replace = _replace(info, on_conflict, target if replace_changed else (), updated_at)
        return ConflictPlan("replace", target, fragment, replace)
    if isinstance(on_conflict, Mapping):
        q = _update_query(schema, table, on_conflict)
    elif isinstance(on_conflict, Query):
        q = _check_query(schema, info, table, on_conflict)
    else:
        raise ArgumentError(_unknown(on_conflict))
    if updated_at is not None and not any(n == updated_at[0] for _o, n, _v in q.updates):
        q = update(set={updated_at[0]: updated_at[1]})(q)
    if not q.updates:
        raise ArgumentError(f"the on_conflict query has no update(...) step, so it would change nothing: {q!r}")
    planner = _Planner(q, prefix, params)
    planned = planner.plan_query("update_all")
    return ConflictPlan("update", target, fragment, update=planned)


def _unknown(on_conflict: Any) -> str:
    return (
        f"unknown on_conflict={on_conflict!r}; use 'raise', 'nothing', 'replace_all', ('replace', fields), "
        "('replace_all_except', fields), an update dict such as {'set': {...}, 'inc': {...}}, or an update query"
    )


def _replace(
    info: SchemaInfo | None, on_conflict: Any, target: tuple[str, ...], updated_at: tuple[str, Any] | None
) -> tuple[str, ...]:
    kind = on_conflict if isinstance(on_conflict, str) else on_conflict[0]
    if on_conflict == "replace" or on_conflict == "replace_all_except":  # the field list is missing
        raise ArgumentError(_unknown(on_conflict))
    if kind == "replace":
        names = _names(on_conflict[1], "on_conflict=('replace', ...)") if isinstance(on_conflict, tuple) else None
        if not names:
            raise ArgumentError(
                "on_conflict=('replace', fields) needs at least one field to replace; "
                "fix: name the fields, or use on_conflict='nothing'"
            )
        if updated_at is not None and updated_at[0] not in names:
            names.append(updated_at[0])
        if info is not None:  # writable="insert"/"never" fields are never updated
            for name in names:
                if name in info.fields and info.fields[name].writable != "always":
                    raise ArgumentError(f"cannot replace non-updatable field {name!r} in on_conflict option")
        return columns_of(info, names, "on_conflict=('replace', ...)")
    if kind not in ("replace_all", "replace_all_except") or (kind == "replace_all") != isinstance(on_conflict, str):
        raise ArgumentError(_unknown(on_conflict))
    if info is None:
        raise ArgumentError(
            f"on_conflict={on_conflict!r} needs a schema to know every field; "
            "fix: insert through the schema, or name the columns with ('replace', [...])"
        )
    skip: set[str] = set()
    if isinstance(on_conflict, tuple):
        skip = set(_names(on_conflict[1], "on_conflict=('replace_all_except', ...)"))
        columns_of(info, sorted(skip), "on_conflict=('replace_all_except', ...)")
    # the existing row keeps its primary key and its inserted_at (see docs/architecture.md)
    skip.update(info.primary_key)
    skip.update(info.non_updatable)  # writable="insert"/"never" fields keep their stored value
    if info.inserted_at is not None:
        skip.add(info.inserted_at)
    columns = [f.source for f in info.persisted if f.name not in skip and f.source not in target]
    if not columns:
        raise ArgumentError(
            f"on_conflict={on_conflict!r} leaves an empty list of fields to update for {info.name}; "
            "fix: use the ('replace', fields) option instead, or on_conflict='nothing'"
        )
    return tuple(columns)


def _update_query(schema: type | None, table: str, ops: Mapping[str, Mapping[str, Any]]) -> Query[Any]:
    bad = [k for k in ops if k not in _UPDATE_KEYS]
    if bad:
        raise ArgumentError(
            f"unknown key {bad[0]!r} in the on_conflict update dict {dict(ops)!r}; use {', '.join(_UPDATE_KEYS)}"
        )
    if not any(ops.values()):
        raise ArgumentError(f"the on_conflict update dict {dict(ops)!r} changes no field; name at least one")
    q: Query[Any] = from_((table, schema) if schema is not None else table)
    try:
        return update(**ops)(q)
    except QueryError as exc:
        raise ArgumentError(f"in on_conflict: {exc}") from exc


def _check_query(schema: type | None, info: SchemaInfo | None, table: str, q: Query[Any]) -> Query[Any]:
    if q.source.table != table or q.source.schema is not schema or q.source.query is not None:
        raise ArgumentError(
            f"the on_conflict query must be on the table being inserted into ({table!r}"
            f"{', schema ' + info.name if info is not None else ''}), got {q!r}"
        )
    bad = used_clauses(q, ["join", "select", "order_by", "group_by", "limit", "offset", "combinations", "with_ctes"])
    if bad:
        raise ArgumentError(f"an on_conflict query may only have where and update steps, got {', '.join(bad)}: {q!r}")
    return q
