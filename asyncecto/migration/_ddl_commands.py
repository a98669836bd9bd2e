"""Migration commands as frozen values, and :func:`describe`, which renders one as Ecto logs it.

The functions in :mod:`asyncecto.migration._dsl` (``create``, ``alter``, ``add``, ``execute`` ...)
buffer these values; :func:`~asyncecto.migration._reverse.reverse` inverts them and the adapter
(``ddl_sql``) turns them into SQL. They hold what was written, already checked, and know no SQL.

>>> describe(CreateIndex(index=Index(table="posts", columns=("title",), name="posts_title_index")))
'create index posts_title_index'
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, TypedDict

import attrs

from asyncecto.errors import ArgumentError

__all__ = (
    "Add",
    "AlterTable",
    "Change",
    "ColumnOptions",
    "ColumnOpts",
    "ColumnType",
    "Command",
    "Constraint",
    "CreateConstraint",
    "CreateIndex",
    "CreateTable",
    "DropConstraint",
    "DropIndex",
    "DropTable",
    "Execute",
    "ExecuteSide",
    "Flush",
    "Fragment",
    "Index",
    "IndexColumn",
    "Modify",
    "NO_DEFAULT",
    "OnDelete",
    "OnUpdate",
    "Reference",
    "Remove",
    "RemoveIfExists",
    "RenameColumn",
    "RenameIndex",
    "RenameTable",
    "Table",
    "TypeSpec",
    "describe",
)

# -- values ---------------------------------------------------------------------------------------


class _Unset(enum.Enum):
    NO_DEFAULT = "NO_DEFAULT"

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _Unset.NO_DEFAULT
"""A column option ``default`` that was not given (``None`` means ``DEFAULT NULL``)."""


@attrs.frozen
class Fragment:
    """SQL sent as written, from :func:`fragment` (a default such as ``now()``, an index expression)."""

    sql: str


@attrs.frozen(kw_only=True)
class Table:
    """A table, from :func:`table`."""

    name: str
    prefix: str | None = None
    comment: str | None = None
    primary_key: bool | Mapping[str, Any] = True
    options: str | None = None
    modifiers: str | None = None


OnDelete: TypeAlias = (
    Literal["nothing", "delete_all", "nilify_all", "default_all", "restrict"]
    | tuple[Literal["nilify", "default"], Sequence[str]]
)
OnUpdate: TypeAlias = Literal["nothing", "update_all", "nilify_all", "restrict"]


@attrs.frozen(kw_only=True)
class Reference:
    """A foreign key column type, from :func:`references`."""

    table: str
    column: str = "id"
    type: str = "bigserial"
    name: str | None = None
    prefix: str | None = None
    on_delete: OnDelete = "nothing"
    on_update: OnUpdate = "nothing"
    validate: bool = True
    with_: tuple[tuple[str, str], ...] = ()
    match: Literal["simple", "partial", "full"] | None = None


ColumnType: TypeAlias = "str | tuple[str, ColumnType] | Reference"
"""A column's type once read: a name, ``("array", t)``/``("map", t)``, or a :class:`Reference`."""

IndexColumn: TypeAlias = "str | Fragment | tuple[str, str | Fragment]"

TypeSpec: TypeAlias = "str | tuple[str, TypeSpec] | list[TypeSpec] | Reference"
"""A column type as written: ``"string"``, ``("array", "integer")``, ``["integer"]``, ``references("users")``."""


@attrs.frozen(kw_only=True)
class Index:
    """An index, from :func:`index` or :func:`unique_index`."""

    table: str
    columns: tuple[IndexColumn, ...]
    name: str
    unique: bool = False
    prefix: str | None = None
    concurrently: bool = False
    using: str | None = None
    include: tuple[str | Fragment, ...] = ()
    where: str | None = None
    nulls_distinct: bool | None = None
    only: bool = False
    options: str | None = None
    comment: str | None = None


@attrs.frozen(kw_only=True)
class Constraint:
    """A check or exclusion constraint, from :func:`constraint`."""

    table: str
    name: str
    check: str | None = None
    exclude: str | None = None
    prefix: str | None = None
    validate: bool = True
    comment: str | None = None


class ColumnOpts(TypedDict, total=False):
    """The keyword options of :func:`add`, :func:`modify` and :func:`remove` (as Ecto's ``add/3``)."""

    primary_key: bool
    default: Any
    null: bool
    size: int
    precision: int
    scale: int
    comment: str
    collation: str
    generated: str
    start_value: int
    increment: int
    fields: str


@attrs.frozen(kw_only=True)
class ColumnOptions:
    """:class:`ColumnOpts` once read; ``default`` is :data:`NO_DEFAULT` when not given."""

    primary_key: bool = False
    default: Any = NO_DEFAULT
    null: bool | None = None
    size: int | None = None
    precision: int | None = None
    scale: int | None = None
    comment: str | None = None
    collation: str | None = None
    generated: str | None = None
    start_value: int | None = None
    increment: int | None = None
    fields: str | None = None


# -- column subcommands (inside a create/alter block) -----------------------------------------------


@attrs.frozen(kw_only=True)
class Add:
    """``add`` (or ``add_if_not_exists``) a column."""

    column: str
    type: ColumnType
    opts: ColumnOptions = ColumnOptions()
    if_not_exists: bool = False


@attrs.frozen(kw_only=True)
class Modify:
    """``modify`` a column; ``from_`` is the old ``(type, options)``, options ``None`` for a bare type."""

    column: str
    type: ColumnType
    opts: ColumnOptions = ColumnOptions()
    from_: tuple[ColumnType, ColumnOptions | None] | None = None


@attrs.frozen(kw_only=True)
class Remove:
    """``remove`` a column; ``type`` ``None`` (``remove(col)``) cannot be reversed."""

    column: str
    type: ColumnType | None = None
    opts: ColumnOptions = ColumnOptions()


@attrs.frozen(kw_only=True)
class RemoveIfExists:
    """``remove_if_exists`` a column (a reference type also drops its foreign key if it exists)."""

    column: str
    type: ColumnType | None = None


Change: TypeAlias = Add | Modify | Remove | RemoveIfExists

# -- commands ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateTable:
    """``create``/``create_if_not_exists`` a table with its columns (the primary key first)."""

    table: Table
    columns: tuple[Add, ...] = ()
    if_not_exists: bool = False


@attrs.frozen(kw_only=True)
class AlterTable:
    """``alter`` a table: its column changes in order."""

    table: Table
    changes: tuple[Change, ...] = ()


@attrs.frozen(kw_only=True)
class DropTable:
    table: Table
    mode: Literal["restrict", "cascade"] = "restrict"
    if_exists: bool = False


@attrs.frozen(kw_only=True)
class RenameTable:
    table: Table
    to: Table


@attrs.frozen(kw_only=True)
class RenameColumn:
    table: Table
    column: str
    to: str


@attrs.frozen(kw_only=True)
class CreateIndex:
    index: Index
    if_not_exists: bool = False


@attrs.frozen(kw_only=True)
class DropIndex:
    index: Index
    mode: Literal["restrict", "cascade"] = "restrict"
    if_exists: bool = False


@attrs.frozen(kw_only=True)
class RenameIndex:
    index: Index
    to: str


@attrs.frozen(kw_only=True)
class CreateConstraint:
    constraint: Constraint


@attrs.frozen(kw_only=True)
class DropConstraint:
    constraint: Constraint
    mode: Literal["restrict", "cascade"] = "restrict"
    if_exists: bool = False


ExecuteSide: TypeAlias = "str | list[str] | Callable[[Any], Awaitable[None]]"


@attrs.frozen
class Execute:
    """SQL text, a list of SQL texts, or ``async def fn(repo) -> None`` run at its turn;
    ``down`` is what reverses it (``None``: it cannot be reversed)."""

    up: ExecuteSide
    down: ExecuteSide | None = None


@attrs.frozen
class Flush:
    """``flush()``: run every command buffered so far before going on (no SQL of its own)."""


Command: TypeAlias = (
    CreateTable
    | AlterTable
    | DropTable
    | RenameTable
    | RenameColumn
    | CreateIndex
    | DropIndex
    | RenameIndex
    | CreateConstraint
    | DropConstraint
    | Execute
    | Flush
)

# -- the DSL-form description (log lines, errors) -------------------------------------------------------------------


def _qualified(prefix: str | None, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _inspect(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_inspect(v) for v in value) + "]"
    return f"fn {getattr(value, '__qualname__', repr(value))}"


def describe(command: Command, prefix: str | None = None) -> str:
    """The command as Ecto logs it (``create table posts``); ``prefix`` applies to objects without one.

    >>> describe(DropTable(table=Table(name="posts"), if_exists=True, mode="cascade"), "tenant")
    'drop table if exists tenant.posts cascade'
    """
    match command:
        case Execute(up=up):
            return f"execute {_inspect(up)}"
        case Flush():
            return "flush"
        case CreateTable(table=t, if_not_exists=ine):
            kind = f"{t.modifiers} table" if t.modifiers else "table"
            return f"create {kind} {'if not exists ' if ine else ''}{_qualified(t.prefix or prefix, t.name)}"
        case AlterTable(table=t):
            return f"alter table {_qualified(t.prefix or prefix, t.name)}"
        case DropTable(table=t, mode=mode, if_exists=ie):
            cascade = " cascade" if mode == "cascade" else ""
            return f"drop table {'if exists ' if ie else ''}{_qualified(t.prefix or prefix, t.name)}{cascade}"
        case CreateIndex(index=i, if_not_exists=ine):
            return f"create index {'if not exists ' if ine else ''}{_qualified(i.prefix or prefix, i.name)}"
        case DropIndex(index=i, mode=mode, if_exists=ie):
            cascade = " cascade" if mode == "cascade" else ""
            return f"drop index {'if exists ' if ie else ''}{_qualified(i.prefix or prefix, i.name)}{cascade}"
        case RenameIndex(index=i, to=to):
            return f"rename index {_qualified(i.prefix or prefix, i.name)} to {to}"
        case RenameTable(table=t, to=to):
            p = t.prefix or prefix
            return f"rename table {_qualified(p, t.name)} to {_qualified(to.prefix or p, to.name)}"
        case RenameColumn(table=t, column=c, to=to):
            return f"rename column {c} to {to} on table {_qualified(t.prefix or prefix, t.name)}"
        case CreateConstraint(constraint=c):
            kind = "check" if c.check is not None else "exclude"
            return f"create {kind} constraint {c.name} on table {_qualified(c.prefix or prefix, c.table)}"
        case DropConstraint(constraint=c, if_exists=ie):
            return (
                f"drop constraint {'if exists ' if ie else ''}{c.name} from table "
                f"{_qualified(c.prefix or prefix, c.table)}"
            )
    raise ArgumentError(f"not a migration command: {command!r}")
