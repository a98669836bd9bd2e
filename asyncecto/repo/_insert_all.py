"""``repo.insert_all``: many rows in as few statements as PostgreSQL allows.

Rows are checked and dumped before any SQL is sent. Then one of three paths:

- ``COPY`` (binary) when nothing is returned, there is no upsert and the list is long;
- one ``INSERT … SELECT * FROM unnest(...)`` (one array parameter per column) when every
  column's type can travel as an array;
- ``INSERT … VALUES`` in batches that stay under the parameter limit (placeholders,
  subquery values, schemaless rows, array columns, and rows that give different fields: as
  in Ecto, the fields of all rows are inserted and a row that leaves one out gets the
  column's ``DEFAULT``, where a ``None`` it gives is ``NULL``).

Several statements run in one transaction, so a failure leaves no row behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from asyncecto import types as t
from asyncecto._names import check_name, check_optional_name
from asyncecto.adapters import CopyIn
from asyncecto.errors import ArgumentError, DatabaseError
from asyncecto.query import Query
from asyncecto.query._ast import Shape
from asyncecto.query._on_conflict import (
    ConflictPlan,
    Placeholder,
    UnsafeFragment,
    UnsafeReturning,
    columns_of,
    inserted_key,
    plan_conflict,
)
from asyncecto.query._plan import Params
from asyncecto.query._planner import _Planner
from asyncecto.schema import Meta, SchemaInfo, schema_info
from asyncecto.schema._define import utc_now
from asyncecto.schema._info import is_schema

from ._core import RepoCore
from ._loader import Loader, build_loader, speedups_enabled
from ._plan_sql import query_prefix
from ._transaction import Transaction

__all__ = ("COPY_MIN_ROWS", "insert_all", "resolve_target")

_SPECIAL = (Placeholder, Query)

COPY_MIN_ROWS = 200
"""From this many rows, an insert that returns nothing and has no upsert uses ``COPY``."""


def resolve_target(target: Any) -> tuple[str, type | None]:
    """``(table, schema)`` of ``insert_all``'s first argument: a schema, ``"table"`` or ``(table, Schema)``."""
    if isinstance(target, str):
        return check_name(target, "table"), None
    if isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str) and is_schema(target[1]):
        return check_name(target[0], "table"), target[1]
    if is_schema(target):
        info = schema_info(target)
        if info.embedded or info.source is None:
            raise ArgumentError(f"cannot insert_all into embedded schema {info.name}: embeds live in their parent")
        return info.source, target
    raise ArgumentError(
        f"insert_all needs a schema, a table name or (table, Schema), got {target!r}; "
        "fix: e.g. repo.insert_all(Post, rows) or repo.insert_all('posts', rows)"
    )


def _returning(info: SchemaInfo | None, returning: Any) -> tuple[list[str], list[str]]:
    """``(names, columns)`` to read back: field names (for structs) and their columns.

    ``unsafe_fragment(sql)`` gives no names and one raw column (rows come back as dicts)."""
    if returning is None or returning is False:
        return [], []
    if isinstance(returning, UnsafeFragment):
        return [], [UnsafeReturning(returning.sql)]
    if returning is True:
        if info is None:
            raise ArgumentError(
                "returning=True needs a schema to know the columns; fix: name them, e.g. returning=['id']"
            )
        return [f.name for f in info.persisted], [f.source for f in info.persisted]
    key = (id(info), tuple(returning)) if type(returning) in (list, tuple) else None
    found = _RETURNING.get(key) if key is not None and all(type(n) is str for n in returning) else None
    if found is not None and found[0] is info:
        return list(found[1]), list(found[2])
    names = [returning] if isinstance(returning, str) else list(returning)
    if not names or not all(isinstance(n, str) for n in names):
        raise ArgumentError(
            f"returning= must be True, a list of field names or unsafe_fragment(sql), got {returning!r}"
        )
    ret_cols = list(columns_of(info, names, "returning="))
    if key is not None:
        if len(_RETURNING) >= _CACHE_MAX:
            _RETURNING.clear()
        _RETURNING[key] = (info, tuple(names), tuple(ret_cols))
    return names, ret_cols


#: ``_returning``'s answers for a list of field names, by (id of the schema info, names)
_RETURNING: dict[tuple[int, tuple[Any, ...]], tuple[SchemaInfo | None, tuple[str, ...], tuple[str, ...]]] = {}


def _header(info: SchemaInfo | None, rows: Sequence[Any]) -> list[str]:
    """The fields of ``rows``, which must all give the same ones (``copy_from`` checks the rest)."""
    header, same = _union(info, rows)
    if not same:
        raise ArgumentError("rows give different fields; fix: give each row every field (None for NULL)")
    return header


def _union(info: SchemaInfo | None, rows: Sequence[Any]) -> tuple[list[str], bool]:
    """``(fields, same)``: the fields of all rows (in the order they first appear), and whether
    every row gives the same ones. A row that leaves a field out gets the column's ``DEFAULT``
    (Ecto's rule); a row that is not a mapping raises, naming it."""
    first = rows[0]
    if not isinstance(first, Mapping):
        raise ArgumentError(
            f"insert_all rows must be mappings of field to value, got {first!r} at row 0; "
            "fix: pass dicts, e.g. [{'title': 'a'}], or use repo.insert for a struct"
        )
    keys = first.keys()
    if all(type(row) is dict and row.keys() == keys for row in rows):
        header = list(first)
        _columns(info, header)
        return header, True
    seen: dict[Any, None] = dict.fromkeys(first)
    same = True
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ArgumentError(f"insert_all rows must be mappings of field to value, got {row!r} at row {i}")
        if row.keys() != keys:
            same = False
            seen.update(dict.fromkeys(row))
    header = list(seen)
    _columns(info, header)
    return header, same


def _columns(info: SchemaInfo | None, header: list[Any]) -> list[str]:
    """The columns of the fields ``header`` names; a name that is not a stored field raises.

    A header already checked for this schema is answered from a cache (rows repeat their fields)."""
    key = (id(info), tuple(header))
    found = _COLUMNS.get(key)
    if found is not None and found[0] is info:
        return list(found[1])
    cols = _check_columns(info, header)
    if len(_COLUMNS) >= _CACHE_MAX:
        _COLUMNS.clear()
    _COLUMNS[key] = (info, tuple(cols))
    return cols


#: ``_columns``' answers by (id of the schema info, header); the info is kept to check the id's owner
_COLUMNS: dict[tuple[int, tuple[Any, ...]], tuple[SchemaInfo | None, tuple[str, ...]]] = {}
_CACHE_MAX = 512


def _check_columns(info: SchemaInfo | None, header: list[Any]) -> list[str]:
    for name in header:
        if not isinstance(name, str):
            raise ArgumentError(f"insert_all field names must be strings, got {name!r}")
        if info is not None and name in info.fields and info.fields[name].writable == "never":
            raise ArgumentError(
                f"cannot write unwritable field {name!r} of {info.name} with insert_all: it is "
                "field(writable='never'); fix: leave it out of the rows (or the query's select)"
            )
    return list(columns_of(info, header, "insert_all rows"))


_NONE = type(None)


class _Default:
    """The cell of a field a row leaves out: the column's ``DEFAULT`` is sent for it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<DEFAULT>"


_DEFAULT = _Default()

#: ``t.dump_passes`` by the field type's class
_PASSES: dict[type, frozenset[type]] = {}


def _dump_column(info: SchemaInfo | None, name: str, values: list[Any], kinds: set[type]) -> list[Any]:
    """``values`` dumped by the field's type; ``kinds`` are the classes of the values."""
    if info is None:
        return values
    typ = info.fields[name].type
    passes = _PASSES.get(type(typ))
    if passes is None:
        passes = _PASSES[type(typ)] = t.dump_passes(typ)  # the type's class decides (its MRO): once per class
    if kinds - {_NONE} <= passes:
        t.check_passed(typ, values, kinds, field=name, schema=info.name)  # no NUL in a str, no int beyond 64 bits
        return values  # already what the driver takes (str for a string field, ...)
    dump = typ.dump
    try:
        return [None if v is None else dump(v) for v in values]
    except (ValueError, TypeError, OverflowError):
        for v in values:  # find the value again for the error that names it
            t.dump_value(typ, v, field=name, schema=info.name)
        raise


class _Cells:
    """Rows holding placeholders or subqueries: cells are parameter numbers or SQL text."""

    def __init__(self, core: RepoCore, info: SchemaInfo | None, prefix: str | None, params: Params) -> None:
        self.core, self.info, self.prefix, self.params = core, info, prefix, params
        self.placeholder_params: dict[str, tuple[int, Any]] = {}

    def placeholder(self, p: Placeholder, name: str, placeholders: Mapping[str, Any] | None) -> int:
        if placeholders is None or p.key not in placeholders:
            known = ", ".join(map(repr, placeholders or {})) or "none given"
            raise ArgumentError(
                f"insert_all row uses placeholder({p.key!r}) for field {name!r}, but placeholders= has no such key "
                f"(keys: {known}); fix: pass placeholders={{{p.key!r}: value}}"
            )
        typ = self.info.fields[name].type if self.info is not None else None
        found = self.placeholder_params.get(p.key)
        if found is not None:
            index, seen = found
            if self.info is not None and seen is not None and type(seen) is not type(typ):
                raise ArgumentError(
                    f"placeholder({p.key!r}) is used for fields of different types ({seen.name} and "
                    f"{typ.name if typ is not None else 'untyped'}); fix: use one placeholder per column type"
                )
            return index
        value = given = placeholders[p.key]
        if typ is not None and self.info is not None:
            value = t.dump_value(typ, value, field=name, schema=self.info.name)
        self.params.append(value)
        self.params.cast.append(given)
        self.placeholder_params[p.key] = (len(self.params), typ)
        return len(self.params)

    def subquery(self, q: Query[Any], name: str, row: int) -> str:
        # a value's query follows the call's prefix, else its own, else the repo's (not the target's)
        planned = _Planner(q, query_prefix(self.core, self.prefix, q), self.params).plan_query("all")
        if len(planned.columns) != 1:
            raise ArgumentError(
                f"the query given for field {name!r} in insert_all row {row} must select one value, "
                f"it selects {len(planned.columns)}: {q!r}"
            )
        return f"({self.core.adapter.select_sql(planned)})"

    def value(self, name: str, value: Any) -> int:
        given = value
        if self.info is not None:
            value = t.dump_value(self.info.fields[name].type, value, field=name, schema=self.info.name)
        self.params.append(value)
        self.params.cast.append(given)
        return len(self.params)


async def insert_all(
    core: RepoCore,
    target: Any,
    entries: Any,
    *,
    returning: Any,
    on_conflict: Any,
    conflict_target: Any,
    placeholders: Mapping[str, Any] | None,
    timestamps: bool,
    prefix: str | None,
    timeout: Any,
    replace_changed: bool = True,
) -> tuple[int, list[Any] | None]:
    check_optional_name(prefix, "prefix")
    table, schema = resolve_target(target)
    info = schema_info(schema) if schema is not None else None
    eff_prefix = prefix if prefix is not None else ((info.prefix if info is not None else None) or core.config.prefix)
    names, ret_cols = _returning(info, returning)
    now = _timestamps(info, timestamps)
    updated = (info.updated_at, now) if now is not None and info is not None and info.updated_at else None
    fixed = Params()
    conflict = plan_conflict(
        schema,
        table,
        on_conflict,
        conflict_target,
        prefix=eff_prefix,
        params=fixed,
        updated_at=updated,
        replace_changed=replace_changed,
    )
    # the inserted flag only when structs come back to carry it (meta(s).inserted)
    key = inserted_key(info, conflict) if names and info is not None else None
    if placeholders is not None and not isinstance(placeholders, Mapping):
        raise ArgumentError(f"placeholders= must be a mapping of key to value, got {placeholders!r}")
    if isinstance(entries, Query):
        if placeholders:
            raise ArgumentError("placeholders= applies to rows, not to insert_all from a query")
        return await _from_query(
            core, table, schema, info, entries, eff_prefix, prefix, names, ret_cols, conflict, key, fixed, timeout
        )
    if isinstance(entries, Mapping) or not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ArgumentError(
            f"insert_all needs a list of rows (mappings) or a query, got {entries!r}; fix: wrap one row in a list"
        )
    if not entries:
        return 0, ([] if ret_cols else None)
    header, same = _union(info, entries)
    if same:
        columns = {name: [row[name] for row in entries] for name in header}
    else:  # Ecto's rule: the union of the rows' fields, DEFAULT where a row leaves one out
        columns = {name: [row.get(name, _DEFAULT) for row in entries] for name in header}
    if info is not None:
        _autogenerate(info, columns, len(entries), now)
    cols = [info.fields[n].source for n in columns] if info is not None else list(columns)
    kinds = {name: set(map(type, values)) for name, values in columns.items()}
    special = any(issubclass(k, _SPECIAL) for ks in kinds.values() for k in ks)
    if placeholders and not special:
        raise ArgumentError(
            f"placeholders= was given ({', '.join(map(repr, placeholders))}) but no row uses placeholder(key)"
        )
    adapter = core.adapter
    run = _Run(core, table, schema, info, eff_prefix, names, ret_cols, key, timeout)
    # COPY and unnest cannot send DEFAULT: rows that leave fields out go as VALUES (in one transaction)
    defaults = not columns or any(_Default in ks for ks in kinds.values())
    if special or defaults:
        statements = _cell_statements(
            core, info, prefix, columns, len(entries), cols, fixed, placeholders, conflict, run
        )
        return await _naming_range(run.all(statements), cols, list(columns.values()))
    dumped = [_dump_column(info, name, values, kinds[name]) for name, values in columns.items()]
    if not ret_cols and conflict is None and len(entries) >= COPY_MIN_ROWS:
        records = list(zip(*dumped, strict=True))
        sql = adapter.copy_sql(eff_prefix, table, cols)
        count, _ = await core.run("copy", sql, [CopyIn(eff_prefix, table, tuple(cols), records)], timeout, table)
        return count, None
    types = [info.fields[n].type for n in columns] if info is not None else None
    body = adapter.unnest_body(len(fixed) + 1, types, dumped) if types is not None else None
    statements = []
    if body is not None:
        sql = adapter.insert_rows_sql(eff_prefix, table, cols, body, ret_cols, conflict, key)
        statements.append((sql, Params([*fixed, *dumped], [*fixed.cast, *columns.values()])))
    else:
        width = len(cols)
        per = max(1, (adapter.max_params - len(fixed)) // width)
        rows = list(zip(*dumped, strict=True))
        given = list(zip(*columns.values(), strict=True))  # the values before dumping (cast_params)
        for start in range(0, len(rows), per):
            batch = rows[start : start + per]
            body = adapter.values_body(len(fixed) + 1, width, len(batch))
            sql = adapter.insert_rows_sql(eff_prefix, table, cols, body, ret_cols, conflict, key)
            cast = [*fixed.cast, *(v for row in given[start : start + per] for v in row)]
            statements.append((sql, Params([*fixed, *(v for row in batch for v in row)], cast)))
    return await _naming_range(run.all(statements), cols, dumped)


async def _naming_range(
    running: Awaitable[tuple[int, list[Any] | None]], cols: list[str], values: list[list[Any]]
) -> tuple[int, list[Any] | None]:
    """``running``'s result; its "integer out of range" names the column (see :func:`_out_of_range`)."""
    try:
        return await running
    except DatabaseError as exc:
        named = _out_of_range(exc, cols, values)
        if named is exc:
            raise
        raise named from exc


#: the server's message for an integer too large for the column's type, and that type's bits
_OUT_OF_RANGE = {"smallint out of range": 16, "integer out of range": 32, "bigint out of range": 64}


def _out_of_range(exc: DatabaseError, cols: list[str], dumped: list[list[Any]]) -> DatabaseError:
    """``exc``, naming the column when it is the server's "integer out of range" (22003), which
    names none: the first column holding an int beyond that type (an ``integer`` column given 2**40)."""
    bits = _OUT_OF_RANGE.get(exc.message)
    if exc.sqlstate != "22003" or exc.column_name is not None or bits is None:
        return exc
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    for col, values in zip(cols, dumped, strict=True):
        for v in values:
            if type(v) is int and not low <= v < high:
                return DatabaseError(
                    f"{exc.message}: column {col!r} cannot hold {v!r}",
                    sqlstate=exc.sqlstate,
                    table_name=exc.table_name,
                    column_name=col,
                    detail=exc.detail,
                    hint='check the value, or widen the column (a migration\'s modify(column, "bigint"))',
                    query=exc.query,
                )
    return exc


def _timestamps(info: SchemaInfo | None, timestamps: bool) -> Any:
    """The timestamp ``timestamps=True`` writes (``None`` when not asked for)."""
    if not timestamps:
        return None
    if info is None or (info.inserted_at is None and info.updated_at is None):
        name = info.name if info is not None else "a table without a schema"
        raise ArgumentError(
            f"timestamps=True needs a schema with timestamps(), and {name} has none; "
            "fix: declare timestamps on the schema, or set the columns in each row"
        )
    return info.timestamp(utc_now())


def _autogenerate(info: SchemaInfo, columns: dict[str, list[Any]], count: int, now: Any) -> None:
    """Add generated primary keys (UUIDs) and, with ``timestamps=True``, timestamps the rows leave
    out: for every row when no row gives the field, else for each row that leaves it out."""
    for name in info.primary_key:
        f = info.fields[name]
        gen = f.autogenerate
        if gen is not None and name != info.autogenerate_id:
            if name not in columns:
                columns[name] = [gen() for _ in range(count)]
            else:
                values = columns[name]
                columns[name] = [gen() if v is _DEFAULT else v for v in values]
    if now is not None:
        for stamp in (info.inserted_at, info.updated_at):
            if stamp is not None and stamp not in columns:
                columns[stamp] = [now] * count
            elif stamp is not None:
                columns[stamp] = [now if v is _DEFAULT else v for v in columns[stamp]]


def _cell_statements(
    core: RepoCore,
    info: SchemaInfo | None,
    prefix: str | None,
    columns: dict[str, list[Any]],
    count: int,
    cols: list[str],
    fixed: Params,
    placeholders: Mapping[str, Any] | None,
    conflict: ConflictPlan | None,
    run: _Run,
) -> list[tuple[str, list[Any]]]:
    """Statements for rows with placeholders, subqueries or left-out fields (``DEFAULT``), each
    under the parameter limit."""
    limit = core.adapter.max_params
    names = list(columns)
    shared = _Cells(core, info, prefix, Params(fixed, list(fixed.cast)))
    for name in names:  # placeholders first: every statement sends them once
        for v in columns[name]:
            if isinstance(v, Placeholder):
                shared.placeholder(v, name, placeholders)
    base = shared.params

    def fresh() -> _Cells:
        cells = _Cells(core, info, prefix, Params(base, list(base.cast)))
        cells.placeholder_params = shared.placeholder_params
        return cells

    def build(cells: _Cells, i: int) -> list[int | str | None]:
        row: list[int | str | None] = []
        for name in names:
            v = columns[name][i]
            if v is _DEFAULT:
                row.append(None)
            elif isinstance(v, Placeholder):
                row.append(cells.placeholder(v, name, placeholders))
            elif isinstance(v, Query):
                row.append(cells.subquery(v, name, i))
            else:
                row.append(cells.value(name, v))
        return row

    statements: list[tuple[str, list[Any]]] = []
    rows: list[list[int | str | None]] = []
    cells = fresh()
    for i in range(count):
        mark = len(cells.params)
        row = build(cells, i)
        if len(cells.params) > limit and rows:  # this row starts the next statement
            del cells.params[mark:], cells.params.cast[mark:]
            statements.append(_cell_statement(core, run, cols, rows, cells.params, conflict))
            cells, rows = fresh(), []
            row = build(cells, i)
        rows.append(row)
    statements.append(_cell_statement(core, run, cols, rows, cells.params, conflict))
    return statements


def _cell_statement(
    core: RepoCore,
    run: _Run,
    cols: list[str],
    rows: list[list[int | str | None]],
    params: list[Any],
    conflict: ConflictPlan | None,
) -> tuple[str, list[Any]]:
    body = core.adapter.cells_body(rows)
    return core.adapter.insert_rows_sql(run.prefix, run.table, cols, body, run.ret_cols, conflict, run.key), params


async def _from_query(
    core: RepoCore,
    table: str,
    schema: type | None,
    info: SchemaInfo | None,
    q: Query[Any],
    prefix: str | None,
    call_prefix: str | None,
    names: list[str],
    ret_cols: list[str],
    conflict: ConflictPlan | None,
    key: tuple[str, ...] | None,
    params: list[Any],
    timeout: Any,
) -> tuple[int, list[Any] | None]:
    """``INSERT … SELECT``: the query selects a dict whose keys are the fields to fill."""
    planner = _Planner(q, query_prefix(core, call_prefix, q), params)
    if isinstance(q.select, Shape) and q.select.kind == "dict":
        planner.insert_target = {
            k: (info.fields[k].type, f"{info.name}.{k}") if info is not None and k in info.fields else (None, None)
            for k in q.select.keys
        }
    planned = planner.plan_query("all")
    reader = planned.reader
    keys = getattr(reader, "keys", None)
    if getattr(reader, "kind", None) != "dict" or not keys:
        raise ArgumentError(
            "insert_all from a query needs the query to select a dict of field to value, "
            f"e.g. select(lambda p: {{'title': p.title}}); got {q!r}"
        )
    cols = _columns(info, list(keys))
    sql = core.adapter.insert_rows_sql(prefix, table, cols, core.adapter.select_sql(planned), ret_cols, conflict, key)
    run = _Run(core, table, schema, info, prefix, names, ret_cols, key, timeout)
    return await run.all([(sql, params)])


class _Run:
    """Runs the statements (in one transaction when there are several) and shapes the result."""

    def __init__(
        self,
        core: RepoCore,
        table: str,
        schema: type | None,
        info: SchemaInfo | None,
        prefix: str | None,
        names: list[str],
        ret_cols: list[str],
        key: tuple[str, ...] | None,
        timeout: Any,
    ) -> None:
        self.core, self.table, self.schema, self.info, self.prefix = core, table, schema, info, prefix
        self.names, self.ret_cols, self.key, self.timeout = names, ret_cols, key, timeout
        self.flag = key is not None  # rows end with the inserted flag

    async def all(self, statements: list[tuple[str, list[Any]]]) -> tuple[int, list[Any] | None]:
        if len(statements) == 1:
            return await self._one(*statements[0])
        count, results = 0, list[Any]()
        async with Transaction(self.core):
            for sql, params in statements:
                n, got = await self._one(sql, params)
                count += n
                results.extend(got or ())
        return count, (results if self.ret_cols else None)

    async def _one(self, sql: str, params: list[Any]) -> tuple[int, list[Any] | None]:
        if not self.ret_cols:
            count, _ = await self.core.run("execute", sql, params, self.timeout, self.table)
            return count, None
        rows, _ = await self.core.run("fetch", sql, params, self.timeout, self.table)
        return len(rows), self._shape(rows)

    def _shape(self, rows: list[Any]) -> list[Any]:
        if not self.names:  # returning=unsafe_fragment(sql): the database's column names
            return [dict(r.items()) for r in rows]
        flags = [r[-1] for r in rows] if self.flag else None
        data = [tuple(r)[:-1] for r in rows] if self.flag else rows
        if self.schema is None:
            return [dict(zip(self.names, r, strict=True)) for r in data]
        load, kept = _loader(self.schema, self.names, self.table, self.prefix, self.info)
        loaded = load(data)
        if flags is not None:
            for s, new in zip(loaded, flags, strict=True):
                if not new:
                    object.__setattr__(s, "__meta__", kept)
        return loaded


#: returning structs' loaders by (schema, fields, table, prefix, speedups): building one scans the
#: schema's fields each time (an insert_all of 3 rows paid more for it than for its rows)
_LOADERS: dict[tuple[Any, ...], tuple[Any, Loader, Meta]] = {}


def _loader(
    schema: type, names: list[str], table: str, prefix: str | None, info: SchemaInfo | None
) -> tuple[Loader, Meta]:
    """The loader of ``names`` into ``schema`` structs (``Meta`` inserted=True), and the ``Meta`` of
    rows an upsert kept (inserted=False); cached while the schema's context is the same object."""
    context = info.context if info else None
    key = (schema, tuple(names), table, prefix, speedups_enabled())
    found = _LOADERS.get(key)
    if found is not None and found[0] is context:
        return found[1], found[2]
    load = build_loader(schema, names, Meta("loaded", table, prefix, True, context))
    kept = Meta("loaded", table, prefix, False, context)
    if len(_LOADERS) >= _CACHE_MAX:
        _LOADERS.clear()  # many prefixes (per-tenant schemas): start over rather than grow without bound
    _LOADERS[key] = (context, load, kept)
    return load, kept
