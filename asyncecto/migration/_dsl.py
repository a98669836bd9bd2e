"""The migration DSL: commands as frozen values, the functions that buffer them, and ``collect``.

A migration's ``change()``/``up()``/``down()`` calls these functions; they know no SQL. Each call
appends a command to the buffer that :func:`collect` opened (a ``ContextVar``), and the migrator
hands the commands to the adapter (``ddl_sql``) in order, or to :func:`~asyncecto.migration._reverse.reverse`
first on the way down. The shapes follow ``Ecto.Migration``; see ``docs/architecture.md``.

>>> def change() -> None:
...     with create(table("posts")):
...         add("title", "string", null=False)
...     create(index("posts", ["title"]))
>>> [describe(c) for c in collect(change)]
['create table posts', 'create index posts_title_index']
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import json
import os
import pathlib
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal, TypeAlias, TypedDict, overload

import attrs
from typing_extensions import Unpack

from asyncecto.errors import ArgumentError, MigrationError

__all__ = (
    "Add",
    "AlterTable",
    "ColumnOptions",
    "ColumnOpts",
    "Command",
    "Constraint",
    "CreateConstraint",
    "CreateIndex",
    "CreateTable",
    "DropConstraint",
    "DropIndex",
    "DropTable",
    "Execute",
    "Flush",
    "Fragment",
    "Index",
    "IndexOpts",
    "Modify",
    "NO_DEFAULT",
    "Reference",
    "Remove",
    "RemoveIfExists",
    "RenameColumn",
    "RenameIndex",
    "RenameTable",
    "Table",
    "TableBlock",
    "TypeSpec",
    "add",
    "add_if_not_exists",
    "alter",
    "collect",
    "constraint",
    "create",
    "create_if_not_exists",
    "describe",
    "direction",
    "drop",
    "drop_if_exists",
    "execute",
    "execute_file",
    "flush",
    "fragment",
    "index",
    "modify",
    "prefix",
    "references",
    "remove",
    "remove_if_exists",
    "rename",
    "repo",
    "running",
    "table",
    "timestamps",
    "unique_index",
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

# -- the migrator's context: direction(), repo(), prefix() ----------------------------------------------


@attrs.frozen
class _Running:
    direction: Literal["up", "down"]
    repo: Any
    prefix: str | None


_RUNNING: ContextVar[_Running | None] = ContextVar("asyncecto_migration_running", default=None)


@contextlib.contextmanager
def running(direction: Literal["up", "down"], repo: Any, prefix: str | None = None) -> Iterator[None]:
    """Set what :func:`direction`, :func:`repo` and :func:`prefix` return (the migrator does, around a migration)."""
    if direction not in ("up", "down"):
        raise ArgumentError(f"expected direction 'up' or 'down', got: {direction!r}")
    token = _RUNNING.set(_Running(direction, repo, prefix))
    try:
        yield
    finally:
        _RUNNING.reset(token)


def _running(what: str) -> _Running:
    state = _RUNNING.get()
    if state is None:
        raise MigrationError(f"cannot call {what}: no migration is running (the migrator sets it)")
    return state


def direction() -> Literal["up", "down"]:
    """``"up"`` or ``"down"``: the way the running migration goes (``change()`` reversed is ``"down"``)."""
    return _running("direction()").direction


def repo() -> Any:
    """The repo the running migration is applied to (use it in ``execute(async fn)``)."""
    return _running("repo()").repo


def prefix() -> str | None:
    """The migrator's prefix (a PostgreSQL schema), or ``None``."""
    return _running("prefix()").prefix


def _check_prefix(own: str | None) -> None:
    state = _RUNNING.get()
    if own is not None and state is not None and state.prefix is not None and state.prefix != own:
        raise MigrationError(f"the prefix option {own!r} does not match the migrator prefix {state.prefix!r}")


# -- the buffer -----------------------------------------------------------------------------------------


@attrs.define
class _Buffer:
    commands: list[Command] = attrs.Factory(list)
    block: TableBlock | None = None
    unentered: list[TableBlock] = attrs.Factory(list)


_BUFFER: ContextVar[_Buffer | None] = ContextVar("asyncecto_migration_buffer", default=None)


def _buffer() -> _Buffer:
    buffer = _BUFFER.get()
    if buffer is None:
        raise MigrationError(
            "cannot buffer a migration command outside of a migration: call it from change(), up() or down() "
            "(asyncecto.migration.collect runs them)"
        )
    return buffer


def _push(command: Command) -> int:
    buffer = _buffer()
    if buffer.block is not None:
        buffer.block = None
        raise MigrationError("cannot execute nested commands")
    buffer.commands.append(command)
    return len(buffer.commands) - 1


def _subcommand(change: Change) -> None:
    buffer = _buffer()
    block = buffer.block
    if block is None:
        raise MigrationError("cannot execute command outside of block")
    block.changes.append(change)


@attrs.define(eq=False)
class TableBlock:
    """What ``create(table)``/``alter(table)`` return: ``with`` it to add, modify or remove columns.

    ``create(table(...))`` without ``with`` creates the table with its primary key only.
    """

    table: Table
    _buffer: _Buffer
    _position: int
    changes: list[Change] = attrs.Factory(list)
    _state: Literal["new", "open", "closed"] = "new"

    def __enter__(self) -> Table:
        if self._buffer.block is not None:
            self._buffer.block = None
            raise MigrationError("cannot execute nested commands")
        if self._state != "new":
            raise MigrationError(f"cannot reopen the block of {describe(self._buffer.commands[self._position])}")
        if self in self._buffer.unentered:
            self._buffer.unentered.remove(self)
        self._state = "open"
        self._buffer.block = self
        return self.table

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._state = "closed"
        self._buffer.block = None
        if exc_type is not None:
            return
        command = self._buffer.commands[self._position]
        if isinstance(command, CreateTable):
            adds: list[Add] = []
            for change in self.changes:
                if not isinstance(change, Add) or change.if_not_exists:
                    raise MigrationError(
                        f"cannot {_change_name(change)} in {describe(command)}: a create block only takes "
                        "add() and timestamps(); use alter() for the rest"
                    )
                adds.append(change)
            command = attrs.evolve(command, columns=(*command.columns, *adds))
        elif isinstance(command, AlterTable):
            command = attrs.evolve(command, changes=(*command.changes, *self.changes))
        self._buffer.commands[self._position] = command


def _change_name(change: Change) -> str:
    if isinstance(change, Add):
        return f"add_if_not_exists({change.column!r})"
    if isinstance(change, Modify):
        return f"modify({change.column!r})"
    if isinstance(change, Remove):
        return f"remove({change.column!r})"
    return f"remove_if_exists({change.column!r})"


def collect(fn: Callable[[], object]) -> list[Command]:
    """Call ``fn`` (a migration's ``change``, ``up`` or ``down``) and return the commands it buffered, in order.

    When ``fn`` returns SQL (a string or a list of strings, as plain-SQL migrations do), each string
    becomes an :class:`Execute` after the buffered commands.
    """
    buffer = _Buffer()
    token = _BUFFER.set(buffer)
    try:
        result = fn()
    finally:
        _BUFFER.reset(token)
    if inspect.iscoroutine(result):
        result.close()
        raise MigrationError(
            f"cannot run {_fn_name(fn)}: migration functions are plain functions, not coroutines; "
            "run repo calls from execute(async_fn), which receives the repo"
        )
    if buffer.unentered:
        raise MigrationError(
            f"cannot {describe(buffer.commands[buffer.unentered[0]._position])} without a block: "
            "write `with alter(table(...)):` and the column changes inside it"
        )
    commands = list(buffer.commands)
    if result is None or isinstance(result, Table | Index | Constraint | TableBlock):
        return commands  # what create()/rename() return, when fn returns their value
    if isinstance(result, str):
        return [*commands, Execute(result)]
    if isinstance(result, list | tuple) and all(isinstance(s, str) for s in result):
        return [*commands, *(Execute(s) for s in result)]
    raise MigrationError(
        f"cannot run {_fn_name(fn)}: expected it to return None, SQL text or a list of SQL texts, got: {result!r}"
    )


def _fn_name(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}()"


# -- builders ---------------------------------------------------------------------------------------------


def table(
    name: str,
    *,
    primary_key: bool | Mapping[str, Any] = True,
    prefix: str | None = None,
    comment: str | None = None,
    options: str | None = None,
    modifiers: str | None = None,
) -> Table:
    """A table for :func:`create`, :func:`alter`, :func:`drop` and :func:`rename`.

    :param primary_key: ``True`` adds ``id bigserial PRIMARY KEY``; ``False`` none; a dict of
        column options with ``name`` and ``type`` (``{"name": "uuid", "type": "binary_id"}``) another one
    :param options: SQL appended to ``CREATE TABLE`` (``"PARTITION BY RANGE (day)"``, ``"WITH (...)"``)
    :param modifiers: SQL between ``CREATE`` and ``TABLE`` (``"UNLOGGED"``, ``"TEMPORARY"``)
    """
    _name("table", name)
    if not isinstance(primary_key, bool | Mapping):
        raise ArgumentError(
            f"primary_key must be True, False or a dict of column options (name=, type=, ...), got: {primary_key!r}"
        )
    return Table(
        name=name, prefix=prefix, comment=comment, primary_key=primary_key, options=options, modifiers=modifiers
    )


def _name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"expected the {what} name as a non-empty string, got: {value!r}")


_ON_DELETE = ("nothing", "delete_all", "nilify_all", "default_all", "restrict")
_ON_UPDATE = ("nothing", "update_all", "nilify_all", "restrict")


def references(
    table: str,
    *,
    column: str = "id",
    type: str = "bigserial",
    name: str | None = None,
    prefix: str | None = None,
    on_delete: OnDelete = "nothing",
    on_update: OnUpdate = "nothing",
    validate: bool = True,
    with_: Mapping[str, str] | None = None,
    match: Literal["simple", "partial", "full"] | None = None,
) -> Reference:
    """A foreign key to ``table(column)``, as a column type for :func:`add`/:func:`modify`/:func:`remove`.

    :param type: the referenced column's type; ``bigserial``/``serial``/``identity`` become
        ``bigint``/``integer``/``bigint`` here
    :param name: the constraint's name, ``<table>_<column>_fkey`` by default
    :param prefix: the referenced table's prefix (the altered table's by default)
    :param on_delete: ``"nothing"``, ``"delete_all"``, ``"nilify_all"``, ``("nilify", [cols])``,
        ``"default_all"``, ``("default", [cols])`` or ``"restrict"``
    :param on_update: ``"nothing"``, ``"update_all"``, ``"nilify_all"`` or ``"restrict"``
    :param validate: ``False`` adds the key ``NOT VALID`` (existing rows are not checked)
    :param with_: more column pairs of a composite key, ``{"group_id": "group_id"}``
    :param match: ``"simple"``, ``"partial"`` or ``"full"``
    """
    _name("referenced table", table)
    if isinstance(on_delete, tuple | list):
        if (
            len(on_delete) != 2
            or on_delete[0] not in ("nilify", "default")
            or not isinstance(on_delete[1], list | tuple)
            or not all(isinstance(c, str) for c in on_delete[1])
        ):
            raise ArgumentError(f"unknown on_delete value: {on_delete!r}")
        on_delete = (on_delete[0], tuple(on_delete[1]))
    elif on_delete not in _ON_DELETE:
        raise ArgumentError(f"unknown on_delete value: {on_delete!r}")
    if on_update not in _ON_UPDATE:
        raise ArgumentError(f"unknown on_update value: {on_update!r}")
    if match not in (None, "simple", "partial", "full"):
        raise ArgumentError(f"unknown match value: {match!r}")
    return Reference(
        table=table,
        column=column,
        type=type,
        name=name,
        prefix=prefix,
        on_delete=on_delete,
        on_update=on_update,
        validate=validate,
        with_=tuple((with_ or {}).items()),
        match=match,
    )


def _word(part: str) -> str:
    return re.sub(r"\W", "_", part).rstrip("_")


def _column_word(column: object) -> str:
    if isinstance(column, tuple):
        return _column_word(column[1])
    if isinstance(column, Fragment):
        return _word(column.sql)
    return _word(str(column))


_DIRECTIONS = ("asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last")


def _index_column(column: object) -> IndexColumn:
    if isinstance(column, str | Fragment) and (not isinstance(column, str) or column):
        return column
    if (
        isinstance(column, tuple)
        and len(column) == 2
        and column[0] in _DIRECTIONS
        and isinstance(column[1], str | Fragment)
    ):
        return (column[0], column[1])
    raise ArgumentError(
        f"expected an index column as a name, an expression, fragment(sql) or (direction, column) with a "
        f"direction among {', '.join(_DIRECTIONS)}, got: {column!r}"
    )


def index(
    table: str,
    columns: str | Sequence[str | Fragment | tuple[str, str | Fragment]],
    *,
    name: str | None = None,
    unique: bool = False,
    prefix: str | None = None,
    concurrently: bool = False,
    using: str | None = None,
    include: Sequence[str | Fragment] = (),
    where: str | None = None,
    nulls_distinct: bool | None = None,
    only: bool = False,
    options: str | None = None,
    comment: str | None = None,
) -> Index:
    """An index on ``columns`` of ``table``, named ``<table>_<columns>_index`` unless ``name`` is given.

    A column that is a plain name (``"title"``) is quoted; anything else (``"lower(title)"``) or
    ``fragment(sql)`` is sent as written; ``("desc", "title")`` sets the order.

    >>> index("posts", ["author_id", ("desc", "inserted_at")]).name
    'posts_author_id_inserted_at_index'
    """
    _name("table", table)
    cols = (columns,) if isinstance(columns, str) else tuple(columns)
    if not cols:
        raise ArgumentError(f"cannot index no columns of table {table!r}")
    read = tuple(_index_column(c) for c in cols)
    if nulls_distinct is not None and not unique:
        raise ArgumentError("the `nulls_distinct` option can only be used with unique indexes")
    if name is None:
        name = "_".join([_word(table), *(_column_word(c) for c in read), "index"])
    return Index(
        table=table,
        columns=read,
        name=name,
        unique=unique,
        prefix=prefix,
        concurrently=concurrently,
        using=using,
        include=tuple(include),
        where=where,
        nulls_distinct=nulls_distinct,
        only=only,
        options=options,
        comment=comment,
    )


class IndexOpts(TypedDict, total=False):
    """The keyword options of :func:`index` but ``unique`` (for :func:`unique_index`)."""

    name: str | None
    prefix: str | None
    concurrently: bool
    using: str | None
    include: Sequence[str | Fragment]
    where: str | None
    nulls_distinct: bool | None
    only: bool
    options: str | None
    comment: str | None


def unique_index(
    table: str,
    columns: str | Sequence[str | Fragment | tuple[str, str | Fragment]],
    **opts: Unpack[IndexOpts],
) -> Index:
    """:func:`index` with ``unique=True``."""
    return index(table, columns, unique=True, **opts)


def constraint(
    table: str,
    name: str,
    *,
    check: str | None = None,
    exclude: str | None = None,
    prefix: str | None = None,
    validate: bool = True,
    comment: str | None = None,
) -> Constraint:
    """A check (``check="price > 0"``) or exclusion (``exclude="gist (room WITH =, during WITH &&)"``)
    constraint; ``create`` needs exactly one of them, ``drop`` neither."""
    _name("table", table)
    _name("constraint", name)
    return Constraint(
        table=table, name=name, check=check, exclude=exclude, prefix=prefix, validate=validate, comment=comment
    )


def fragment(sql: str) -> Fragment:
    """SQL used as written: a column default (``default=fragment("now()")``) or an index expression."""
    if not isinstance(sql, str):
        raise ArgumentError(f"expected fragment SQL as a string, got: {sql!r}")
    return Fragment(sql)


# -- column types and options ----------------------------------------------------------------------------------


def _invalid_type(type: object) -> ArgumentError:
    return ArgumentError(
        f"invalid migration type: {type!r}. Expected one of:\n\n"
        '  * a string, such as "string" or "integer unsigned"\n'
        '  * a tuple for a composite type, such as ("array", "integer") or ("map", "string"),\n'
        '    or a one-element list for an array: ["integer"]\n'
        '  * a reference, such as references("users")\n\n'
        "Strings other than Ecto's type names are sent to the database as is. "
        "asyncecto field types (asyncecto.types) are not migration types: use their database types instead"
    )


def _column_type(type: object, top: bool = True) -> ColumnType:
    if isinstance(type, str):
        if type == "datetime":
            raise ArgumentError(
                'the "datetime" type in migrations is not supported, please use "utc_datetime" or '
                '"naive_datetime" instead'
            )
        if not type:
            raise _invalid_type(type)
        return type
    if isinstance(type, Reference) and top:
        return type
    if isinstance(type, list) and len(type) == 1:
        return ("array", _column_type(type[0], False))
    if isinstance(type, tuple) and len(type) == 2 and isinstance(type[0], str) and type[0]:
        return (type[0], _column_type(type[1], False))
    raise _invalid_type(type)


_OPTION_NAMES = tuple(a.name for a in attrs.fields(ColumnOptions))


def _options(column: str, opts: Mapping[str, Any]) -> ColumnOptions:
    unknown = sorted(set(opts) - set(_OPTION_NAMES))
    if unknown:
        raise ArgumentError(
            f"unknown option {unknown[0]!r} for column {column!r}; expected some of: {', '.join(_OPTION_NAMES)}"
        )
    if opts.get("scale") is not None and opts.get("precision") is None:
        raise ArgumentError(f"column {column} is missing precision option")
    return ColumnOptions(**opts)


def add(column: str, type: TypeSpec, **opts: Unpack[ColumnOpts]) -> None:
    """Add a column (in a ``create`` or ``alter`` block).

    :param type: ``"string"`` (``varchar(255)``), ``"text"``, ``"integer"``, ``"map"`` (``jsonb``),
        ``("array", t)`` or ``[t]``, ``"utc_datetime"``, :func:`references` ... (any other string as is)
    :param opts: ``primary_key``, ``default`` (a literal or :func:`fragment`), ``null``, ``size``,
        ``precision``, ``scale``, ``comment``, ``collation``, ``generated``, ``start_value``, ``increment``
    """
    _name("column", column)
    _subcommand(Add(column=column, type=_column_type(type), opts=_options(column, opts)))


def add_if_not_exists(column: str, type: TypeSpec, **opts: Unpack[ColumnOpts]) -> None:
    """Add a column unless it exists (``alter`` blocks only; cannot be reversed)."""
    _name("column", column)
    _subcommand(Add(column=column, type=_column_type(type), opts=_options(column, opts), if_not_exists=True))


def modify(
    column: str,
    type: TypeSpec,
    *,
    from_: TypeSpec | tuple[TypeSpec, ColumnOpts] | None = None,
    **opts: Unpack[ColumnOpts],
) -> None:
    """Change a column's type and options (``alter`` blocks). Reversible only with ``from_``: the old
    type, or ``(type, {options})``; a :func:`references` ``from_`` drops the old foreign key first."""
    _name("column", column)
    old: tuple[ColumnType, ColumnOptions | None] | None = None
    if isinstance(from_, tuple) and len(from_) == 2 and isinstance(from_[1], Mapping):
        old = (_column_type(from_[0]), _options(column, from_[1]))
    elif from_ is not None:
        old = (_column_type(from_), None)
    _subcommand(Modify(column=column, type=_column_type(type), opts=_options(column, opts), from_=old))


def remove(column: str, type: TypeSpec | None = None, **opts: Unpack[ColumnOpts]) -> None:
    """Drop a column (``alter`` blocks). With its ``type`` (and options) it can be reversed; a
    :func:`references` type drops the foreign key first."""
    _name("column", column)
    if type is None and opts:
        raise ArgumentError(f"remove({column!r}) takes options only with a type: remove({column!r}, type, ...)")
    read = None if type is None else _column_type(type)
    _subcommand(Remove(column=column, type=read, opts=_options(column, opts)))


def remove_if_exists(column: str, type: TypeSpec | None = None) -> None:
    """Drop a column if it exists (``alter`` blocks; cannot be reversed)."""
    _name("column", column)
    _subcommand(RemoveIfExists(column=column, type=None if type is None else _column_type(type)))


def timestamps(
    *,
    type: str = "naive_datetime",
    inserted_at: str | Literal[False] = "inserted_at",
    updated_at: str | Literal[False] = "updated_at",
    **opts: Unpack[ColumnOpts],
) -> None:
    """Add ``inserted_at`` and ``updated_at`` (``timestamp(0) NOT NULL`` unless told otherwise);
    ``False`` for a name leaves that column out."""
    opts.setdefault("null", False)
    for column in (inserted_at, updated_at):
        if column is not False:
            add(column, type, **opts)


# -- commands on tables, indexes and constraints ------------------------------------------------------------------


def _primary_key(tbl: Table) -> tuple[Add, ...]:
    pk = tbl.primary_key
    if pk is False:
        return ()
    if pk is True:
        return (Add(column="id", type="bigserial", opts=ColumnOptions(primary_key=True)),)
    rest = dict(pk)
    column = rest.pop("name", "id")
    type = rest.pop("type", "bigserial")
    rest["primary_key"] = True
    return (Add(column=column, type=_column_type(type), opts=_options(column, rest)),)


def _create_table(tbl: Table, if_not_exists: bool) -> TableBlock:
    _check_prefix(tbl.prefix)
    buffer = _buffer()
    position = _push(CreateTable(table=tbl, columns=_primary_key(tbl), if_not_exists=if_not_exists))
    return TableBlock(tbl, buffer, position)


@overload
def create(obj: Table) -> TableBlock: ...
@overload
def create(obj: Index) -> Index: ...
@overload
def create(obj: Constraint) -> Constraint: ...
def create(obj: Table | Index | Constraint) -> TableBlock | Index | Constraint:
    """Create a table (``with create(table(...)):`` for its columns), an index or a constraint."""
    if isinstance(obj, Table):
        return _create_table(obj, False)
    if isinstance(obj, Index):
        _check_prefix(obj.prefix)
        _push(CreateIndex(index=obj))
        return obj
    if isinstance(obj, Constraint):
        _check_prefix(obj.prefix)
        if obj.check is None and obj.exclude is None:
            raise ArgumentError("a constraint must have either a check or exclude option")
        if obj.check is not None and obj.exclude is not None:
            raise ArgumentError("a constraint must not have both check and exclude options")
        _push(CreateConstraint(constraint=obj))
        return obj
    raise ArgumentError(f"cannot create {obj!r}: expected table(...), index(...) or constraint(...)")


@overload
def create_if_not_exists(obj: Table) -> TableBlock: ...
@overload
def create_if_not_exists(obj: Index) -> Index: ...
def create_if_not_exists(obj: Table | Index) -> TableBlock | Index:
    """:func:`create` a table or an index unless it exists (PostgreSQL has no such form for constraints)."""
    if isinstance(obj, Table):
        return _create_table(obj, True)
    if isinstance(obj, Index):
        _check_prefix(obj.prefix)
        _push(CreateIndex(index=obj, if_not_exists=True))
        return obj
    raise ArgumentError(f"cannot create_if_not_exists {obj!r}: expected table(...) or index(...)")


def alter(tbl: Table) -> TableBlock:
    """Change a table's columns: ``with alter(table("posts")): add(...); modify(...); remove(...)``."""
    if not isinstance(tbl, Table):
        raise ArgumentError(f"cannot alter {tbl!r}: expected table(...)")
    _check_prefix(tbl.prefix)
    buffer = _buffer()
    position = _push(AlterTable(table=tbl))
    block = TableBlock(tbl, buffer, position)
    buffer.unentered.append(block)
    return block


def _drop(obj: object, mode: str, if_exists: bool) -> None:
    if mode not in ("restrict", "cascade"):
        raise ArgumentError(f"expected mode 'restrict' or 'cascade', got: {mode!r}")
    m: Literal["restrict", "cascade"] = "cascade" if mode == "cascade" else "restrict"
    if isinstance(obj, Table):
        _check_prefix(obj.prefix)
        _push(DropTable(table=obj, mode=m, if_exists=if_exists))
    elif isinstance(obj, Index):
        _check_prefix(obj.prefix)
        _push(DropIndex(index=obj, mode=m, if_exists=if_exists))
    elif isinstance(obj, Constraint):
        _check_prefix(obj.prefix)
        _push(DropConstraint(constraint=obj, mode=m, if_exists=if_exists))
    else:
        raise ArgumentError(f"cannot drop {obj!r}: expected table(...), index(...) or constraint(...)")


def drop(obj: Table | Index | Constraint, *, mode: Literal["restrict", "cascade"] = "restrict") -> None:
    """Drop a table, an index or a constraint; ``mode="cascade"`` drops what depends on it too."""
    _drop(obj, mode, False)


def drop_if_exists(obj: Table | Index | Constraint, *, mode: Literal["restrict", "cascade"] = "restrict") -> None:
    """:func:`drop` unless it does not exist."""
    _drop(obj, mode, True)


@overload
def rename(obj: Table, *, to: Table) -> Table: ...
@overload
def rename(obj: Table, column: str, *, to: str) -> Table: ...
@overload
def rename(obj: Index, *, to: str) -> Index: ...
def rename(obj: Table | Index, column: str | None = None, *, to: Table | str) -> Table | Index:
    """Rename a table (``to=table("new")``), a column of it (``rename(table("t"), "old", to="new")``)
    or an index (``to="new_name"``)."""
    if isinstance(obj, Table) and column is None and isinstance(to, Table):
        _check_prefix(obj.prefix)
        if to.prefix is not None and to.prefix != obj.prefix:
            raise ArgumentError(
                f"cannot rename table {obj.name!r} into prefix {to.prefix!r}: renaming keeps the table's "
                f'prefix; move it with execute("ALTER TABLE ... SET SCHEMA ...")'
            )
        _push(RenameTable(table=obj, to=to))
        return to
    if isinstance(obj, Table) and isinstance(column, str) and isinstance(to, str):
        _check_prefix(obj.prefix)
        _push(RenameColumn(table=obj, column=column, to=to))
        return obj
    if isinstance(obj, Index) and column is None and isinstance(to, str):
        _check_prefix(obj.prefix)
        _push(RenameIndex(index=obj, to=to))
        return attrs.evolve(obj, name=to)
    raise ArgumentError(
        f"cannot rename {obj!r}: expected rename(table(a), to=table(b)), rename(table(t), column, to=name) "
        "or rename(index(...), to=name)"
    )


def _execute_side(side: object) -> ExecuteSide:
    if isinstance(side, str) or callable(side):
        return side
    if isinstance(side, list | tuple) and all(isinstance(s, str) for s in side):
        return list(side)
    raise ArgumentError(f"expected SQL text, a list of SQL texts or an async function of the repo, got: {side!r}")


def execute(up: str | list[str] | Callable[[Any], Awaitable[None]], down: object = None) -> None:
    """Run SQL (or ``async def fn(repo)``) at its turn; with ``down`` it can be reversed."""
    _push(Execute(_execute_side(up), None if down is None else _execute_side(down)))


def execute_file(up_path: str | os.PathLike[str], down_path: str | os.PathLike[str] | None = None) -> None:
    """:func:`execute` the SQL in a file (read now); with ``down_path`` it can be reversed."""
    up = pathlib.Path(up_path).read_text(encoding="utf-8")
    down = None if down_path is None else pathlib.Path(down_path).read_text(encoding="utf-8")
    _push(Execute(up, down))


def flush() -> None:
    """Run every command buffered so far before the next ones (not allowed in ``change()`` rolled back)."""
    _push(Flush())


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

    >>> describe(DropTable(table=table("posts"), if_exists=True, mode="cascade"), "tenant")
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
