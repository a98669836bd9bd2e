"""PostgreSQL DDL for migration commands. Pure: no I/O.

The statements follow ``Ecto.Adapters.Postgres.Connection.execute_ddl/1``.

>>> from asyncecto.migration._dsl import CreateIndex, index
>>> ddl_sql(CreateIndex(index=index("posts", ["title"], unique=True)), "tenant")
['CREATE UNIQUE INDEX "posts_title_index" ON "tenant"."posts" ("title")']
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Sequence
from typing import Any

from asyncecto.errors import ArgumentError
from asyncecto.migration._ddl_commands import (
    NO_DEFAULT,
    Add,
    AlterTable,
    Change,
    ColumnOptions,
    ColumnType,
    Command,
    Constraint,
    CreateConstraint,
    CreateIndex,
    CreateTable,
    DropConstraint,
    DropIndex,
    DropTable,
    Execute,
    Flush,
    Fragment,
    Index,
    IndexColumn,
    Modify,
    Reference,
    Remove,
    RemoveIfExists,
    RenameColumn,
    RenameIndex,
    RenameTable,
    Table,
    describe,
)

from ._sql import quote_name, quote_table

__all__ = ("column_type", "ddl_log", "ddl_sql")


def ddl_log(command: Command, prefix: str | None = None) -> str:
    """The line the migrator logs for ``command`` (Ecto's DSL form: ``create table posts``)."""
    return describe(command, prefix)


def ddl_sql(command: Command, prefix: str | None = None) -> list[str]:
    """The statements for one command; ``prefix`` (the migrator's) applies to objects without their own.

    ``Flush`` has none; an ``Execute`` whose side is a function is run by the migrator, not here.
    """
    match command:
        case CreateTable():
            return _create_table(command, prefix)
        case AlterTable():
            return _alter_table(command, prefix)
        case DropTable(table=t, mode=mode, if_exists=ie):
            return [f"DROP TABLE {'IF EXISTS ' if ie else ''}{_table_name(t, prefix)}{_mode(mode)}"]
        case RenameTable(table=t, to=to):
            return [f"ALTER TABLE {_table_name(t, prefix)} RENAME TO {quote_name(to.name, 'table')}"]
        case RenameColumn(table=t, column=c, to=to):
            return [
                f"ALTER TABLE {_table_name(t, prefix)} RENAME {quote_name(c, 'column')} TO {quote_name(to, 'column')}"
            ]
        case CreateIndex():
            return _create_index(command.index, command.if_not_exists, prefix)
        case DropIndex(index=i, mode=mode, if_exists=ie):
            concurrently = "CONCURRENTLY " if i.concurrently else ""
            return [
                f"DROP INDEX {concurrently}{'IF EXISTS ' if ie else ''}"
                f"{quote_table(i.prefix or prefix, i.name)}{_mode(mode)}"
            ]
        case RenameIndex(index=i, to=to):
            return [f"ALTER INDEX {quote_table(i.prefix or prefix, i.name)} RENAME TO {quote_name(to, 'index name')}"]
        case CreateConstraint(constraint=c):
            return _create_constraint(c, prefix)
        case DropConstraint(constraint=c, mode=mode, if_exists=ie):
            return [
                f"ALTER TABLE {quote_table(c.prefix or prefix, c.table)} DROP CONSTRAINT "
                f"{'IF EXISTS ' if ie else ''}{quote_name(c.name, 'constraint name')}{_mode(mode)}"
            ]
        case Execute(up=up):
            if isinstance(up, str):
                return [up] if up.strip() else []
            if isinstance(up, list):
                return [s for s in up if s.strip()]
            raise ArgumentError(f"cannot write SQL for {describe(command)}: the migrator runs a function itself")
        case Flush():
            return []
    raise ArgumentError(f"not a migration command: {command!r}")


def _mode(mode: str) -> str:
    return " CASCADE" if mode == "cascade" else ""


def _table_name(t: Table, prefix: str | None) -> str:
    return quote_table(t.prefix or prefix, t.name)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- tables -----------------------------------------------------------------------------------------------


def _create_table(command: CreateTable, prefix: str | None) -> list[str]:
    t = command.table
    name = _table_name(t, prefix)
    columns = ", ".join(_column_definition(t, prefix, add) for add in command.columns)
    pk = _pk_definition(command.columns, ", ")
    modifiers = f"{t.modifiers} " if t.modifiers else ""
    exists = "IF NOT EXISTS " if command.if_not_exists else ""
    options = f" {t.options}" if t.options else ""
    sql = f"CREATE {modifiers}TABLE {exists}{name} ({columns}{pk}){options}"
    return [sql, *_comment("TABLE", name, t.comment), *_column_comments(name, command.columns)]


def _alter_table(command: AlterTable, prefix: str | None) -> list[str]:
    t = command.table
    name = _table_name(t, prefix)
    statements = []
    if command.changes:
        changes = ", ".join(_column_change(t, prefix, change) for change in command.changes)
        statements.append(f"ALTER TABLE {name} {changes}{_pk_definition(command.changes, ', ADD ')}")
    return [*statements, *_comment("TABLE", name, t.comment), *_column_comments(name, command.changes)]


def _pk_definition(changes: Sequence[Change], lead: str) -> str:
    pks = [c.column for c in changes if isinstance(c, Add | Modify) and c.opts.primary_key]
    return f"{lead}PRIMARY KEY ({', '.join(quote_name(c, 'column') for c in pks)})" if pks else ""


def _comment(kind: str, name: str, comment: str | None) -> list[str]:
    return [] if comment is None else [f"COMMENT ON {kind} {name} IS {_literal(comment)}"]


def _column_comments(table_name: str, changes: Sequence[Change]) -> list[str]:
    out: list[str] = []
    for c in changes:
        if isinstance(c, Add | Modify):
            out += _comment("COLUMN", f"{table_name}.{quote_name(c.column, 'column')}", c.opts.comment)
    return out


def _column_definition(t: Table, prefix: str | None, add: Add) -> str:
    name = quote_name(add.column, "column")
    if isinstance(add.type, Reference):
        ref = add.type
        return (
            f"{name} {_reference_column_type(ref, add.opts)}{_column_options(ref.type, add.opts)}, "
            f"{_reference_expr(ref, t, prefix, add.column)}"
        )
    return f"{name} {column_type(add.type, add.opts)}{_column_options(add.type, add.opts)}"


def _column_change(t: Table, prefix: str | None, change: Change) -> str:
    match change:
        case Add(column=column, type=Reference() as ref, opts=opts, if_not_exists=ine):
            return (
                f"ADD COLUMN {'IF NOT EXISTS ' if ine else ''}{quote_name(column, 'column')} "
                f"{_reference_column_type(ref, opts)}{_column_options(ref.type, opts)}, "
                f"ADD {_reference_expr(ref, t, prefix, column)}"
            )
        case Add(column=column, type=type, opts=opts, if_not_exists=ine):
            return (
                f"ADD COLUMN {'IF NOT EXISTS ' if ine else ''}{quote_name(column, 'column')} "
                f"{column_type(type, opts)}{_column_options(type, opts)}"
            )
        case Modify(column=column, type=type, opts=opts, from_=from_):
            name = quote_name(column, "column")
            drop = ""
            if from_ is not None and isinstance(from_[0], Reference):
                drop = f"DROP CONSTRAINT {_reference_name(from_[0], t, column)}, "
            if isinstance(type, Reference):
                sql = f"ALTER COLUMN {name} TYPE {_reference_column_type(type, opts)}{_collation(opts)}, "
                sql += f"ADD {_reference_expr(type, t, prefix, column)}"
                db_type: ColumnType = type.type
            else:
                sql = f"ALTER COLUMN {name} TYPE {column_type(type, opts)}{_collation(opts)}"
                db_type = type
            if opts.null is True:
                sql += f", ALTER COLUMN {name} DROP NOT NULL"
            elif opts.null is False:
                sql += f", ALTER COLUMN {name} SET NOT NULL"
            if opts.default is not NO_DEFAULT:
                sql += f", ALTER COLUMN {name} SET{_default(opts.default, db_type)}"
            return drop + sql
        case Remove(column=column, type=Reference() as ref):
            return f"DROP CONSTRAINT {_reference_name(ref, t, column)}, DROP COLUMN {quote_name(column, 'column')}"
        case Remove(column=column):
            return f"DROP COLUMN {quote_name(column, 'column')}"
        case RemoveIfExists(column=column, type=Reference() as ref):
            return (
                f"DROP CONSTRAINT IF EXISTS {_reference_name(ref, t, column)}, "
                f"DROP COLUMN IF EXISTS {quote_name(column, 'column')}"
            )
        case RemoveIfExists(column=column):
            return f"DROP COLUMN IF EXISTS {quote_name(column, 'column')}"
    raise ArgumentError(f"not a column change: {change!r}")


# -- columns ---------------------------------------------------------------------------------------------


def _column_options(type: ColumnType, opts: ColumnOptions) -> str:
    sql = "" if opts.default is NO_DEFAULT else _default(opts.default, type)
    if opts.null is False:
        sql += " NOT NULL"
    elif opts.null is True:
        sql += " NULL"
    return sql + _collation(opts)


def _collation(opts: ColumnOptions) -> str:
    return f" COLLATE {quote_name(opts.collation, 'collation')}" if opts.collation is not None else ""


_DB_TYPES = {
    "id": "integer",
    "identity": "bigint",
    "serial": "serial",
    "bigserial": "bigserial",
    "binary_id": "uuid",
    "string": "varchar",
    "bitstring": "varbit",
    "binary": "bytea",
    "map": "jsonb",
    "time_usec": "time",
    "utc_datetime": "timestamptz",  # Ecto: timestamp; the UTC types send aware datetimes (docs/architecture.md)
    "utc_datetime_usec": "timestamptz",
    "naive_datetime": "timestamp",
    "naive_datetime_usec": "timestamp",
    "duration": "interval",
}


def _db_type(type: ColumnType) -> str:
    if isinstance(type, tuple):
        kind, inner = type
        if kind == "array":
            return _db_type(inner) + "[]"
        if kind == "map":
            return "jsonb"
        raise ArgumentError(
            f"unsupported type {type!r}: a composite type is ('array', t) or ('map', t) where t is a type itself"
        )
    if isinstance(type, Reference):
        return _db_type(type.type)
    return _DB_TYPES.get(type, type)


def _type_name(type: ColumnType, opts: ColumnOptions) -> str:
    if isinstance(type, tuple) and type[0] == "array":
        return _type_name(type[1], opts) + "[]"
    if type in ("time", "utc_datetime", "naive_datetime"):
        return f"{_db_type(type)}(0)"
    if type in ("time_usec", "utc_datetime_usec", "naive_datetime_usec"):
        return f"{_db_type(type)}({opts.precision})" if opts.precision is not None else _db_type(type)
    if type == "duration":
        fields = f" {opts.fields}" if opts.fields else ""
        precision = f"({opts.precision})" if opts.precision is not None else ""
        return f"interval{fields}{precision}"
    name = _db_type(type)
    if opts.size is not None:
        return f"{name}({opts.size})"
    if opts.precision is not None:
        return f"{name}({opts.precision},{opts.scale or 0})"
    return f"{name}(255)" if type == "string" else name


def column_type(type: ColumnType, opts: ColumnOptions) -> str:
    """The SQL type of a column (with ``generated``/identity clauses).

    >>> column_type("string", ColumnOptions())
    'varchar(255)'
    >>> column_type(("array", "utc_datetime"), ColumnOptions())
    'timestamptz(0)[]'
    """
    name = _type_name(type, opts)
    if opts.generated is not None:
        return f"{name} GENERATED {opts.generated}"
    if type == "identity":
        sequence = [f"START WITH {opts.start_value}"] if opts.start_value else []
        sequence += [f"INCREMENT BY {opts.increment}"] if opts.increment else []
        identity = f" ({' '.join(sequence)})" if sequence else ""
        return f"{name} GENERATED BY DEFAULT AS IDENTITY{identity}"
    return name


def _default(value: Any, type: ColumnType) -> str:
    return " DEFAULT " + _default_value(value, type)


def _default_value(value: Any, type: ColumnType) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, Fragment):
        return value.sql
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ArgumentError(
                f"default values are interpolated as UTF-8 strings and cannot contain null bytes. {value!r} is "
                "invalid; refer to the PostgreSQL documentation for how to write this SQL type, and pass it "
                "as fragment(sql)"
            )
        return _literal(value)
    if isinstance(value, list | tuple) and isinstance(type, tuple) and type[0] == "array":
        inner = ",".join(_default_value(v, type[1]) for v in value)
        return f"ARRAY[{inner}]::{_db_type(type)}"
    if isinstance(value, dict) and (type == "map" or (isinstance(type, tuple) and type[0] == "map")):
        return _literal(json.dumps(value, separators=(",", ":")))
    raise ArgumentError(
        f"unknown default {value!r} for type {type!r}. default may be a string, number, boolean, None, "
        'a list (for an ("array", t) column), a dict (for a "map" column), or a fragment(...)'
    )


# -- references ---------------------------------------------------------------------------------------------

_ON_DELETE = {
    "nilify_all": " ON DELETE SET NULL",
    "default_all": " ON DELETE SET DEFAULT",
    "delete_all": " ON DELETE CASCADE",
    "restrict": " ON DELETE RESTRICT",
    "nothing": "",
}
_ON_UPDATE = {
    "nilify_all": " ON UPDATE SET NULL",
    "update_all": " ON UPDATE CASCADE",
    "restrict": " ON UPDATE RESTRICT",
    "nothing": "",
}


def _reference_column_type(ref: Reference, opts: ColumnOptions) -> str:
    if ref.type == "serial":
        return "integer"
    if ref.type in ("bigserial", "identity"):
        return "bigint"
    return column_type(ref.type, opts)


def _reference_name(ref: Reference, t: Table, column: str) -> str:
    return quote_name(ref.name or f"{t.name}_{column}_fkey", "foreign key constraint name")


def _names(names: Sequence[str]) -> str:
    return ", ".join(quote_name(n, "column") for n in names)


def _reference_expr(ref: Reference, t: Table, prefix: str | None, column: str) -> str:
    columns = [column, *(c for c, _ in ref.with_)]
    targets = [ref.column, *(r for _, r in ref.with_)]
    if isinstance(ref.on_delete, tuple):
        action, cols = ref.on_delete
        on_delete = f" ON DELETE SET {'NULL' if action == 'nilify' else 'DEFAULT'} ({_names(cols)})"
    else:
        on_delete = _ON_DELETE[ref.on_delete]
    match = f" MATCH {ref.match.upper()}" if ref.match else ""
    target = quote_table(ref.prefix or t.prefix or prefix, ref.table)
    return (
        f"CONSTRAINT {_reference_name(ref, t, column)} FOREIGN KEY ({_names(columns)}) "
        f"REFERENCES {target}({_names(targets)}){match}{on_delete}{_ON_UPDATE[ref.on_update]}"
        f"{'' if ref.validate else ' NOT VALID'}"
    )


# -- indexes and constraints -----------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DIRECTION_SQL = {
    "asc": " ASC",
    "asc_nulls_first": " ASC NULLS FIRST",
    "asc_nulls_last": " ASC NULLS LAST",
    "desc": " DESC",
    "desc_nulls_first": " DESC NULLS FIRST",
    "desc_nulls_last": " DESC NULLS LAST",
}


def _index_part(part: str | Fragment) -> str:
    if isinstance(part, Fragment):
        return part.sql
    return quote_name(part, "index column") if _IDENTIFIER.fullmatch(part) else part


def _index_expr(column: IndexColumn) -> str:
    if isinstance(column, tuple):
        direction, part = column
        return _index_part(part) + _DIRECTION_SQL[direction]
    return _index_part(column)


def _create_index(i: Index, if_not_exists: bool, prefix: str | None) -> list[str]:
    sql = "CREATE " + ("UNIQUE " if i.unique else "") + "INDEX "
    sql += ("CONCURRENTLY " if i.concurrently else "") + ("IF NOT EXISTS " if if_not_exists else "")
    sql += (
        f"{quote_name(i.name, 'index name')} ON {'ONLY ' if i.only else ''}{quote_table(i.prefix or prefix, i.table)}"
    )
    sql += f" USING {i.using}" if i.using else ""
    sql += f" ({', '.join(_index_expr(c) for c in i.columns)})"
    sql += f" INCLUDE ({', '.join(_index_part(c) for c in i.include)})" if i.include else ""
    if i.nulls_distinct is not None:
        sql += " NULLS DISTINCT" if i.nulls_distinct else " NULLS NOT DISTINCT"
    sql += f" WITH ({i.options})" if i.options else ""
    sql += f" WHERE {i.where}" if i.where else ""
    return [sql, *_comment("INDEX", quote_table(i.prefix or prefix, i.name), i.comment)]


def _create_constraint(c: Constraint, prefix: str | None) -> list[str]:
    table_name = quote_table(c.prefix or prefix, c.table)
    if c.check is not None:
        body = f"CHECK ({c.check})"
    elif c.exclude is not None:
        body = f"EXCLUDE USING {c.exclude}"
    else:
        raise ArgumentError("a constraint must have either a check or exclude option")
    not_valid = "" if c.validate else " NOT VALID"
    sql = f"ALTER TABLE {table_name} ADD CONSTRAINT {quote_name(c.name, 'constraint name')} {body}{not_valid}"
    comment = (
        [f"COMMENT ON CONSTRAINT {quote_name(c.name, 'constraint name')} ON {table_name} IS {_literal(c.comment)}"]
        if c.comment is not None
        else []
    )
    return [sql, *comment]
