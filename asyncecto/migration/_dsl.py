"""The migration DSL: the functions that buffer commands, ``collect``, and the running context.

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

The commands themselves are in :mod:`~asyncecto.migration._ddl_commands`, the objects they act on
(``table``, ``index`` ...) in :mod:`~asyncecto.migration._objects` and the reading of column types
in :mod:`~asyncecto.migration._types`; every name stays importable from here.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pathlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Literal, overload

import attrs
from typing_extensions import Unpack

from asyncecto._names import check_generated_name
from asyncecto.errors import ArgumentError, MigrationError

from ._ddl_commands import NO_DEFAULT as NO_DEFAULT
from ._ddl_commands import Add as Add
from ._ddl_commands import AlterTable as AlterTable
from ._ddl_commands import Change as Change
from ._ddl_commands import ColumnOptions as ColumnOptions
from ._ddl_commands import ColumnOpts as ColumnOpts
from ._ddl_commands import ColumnType as ColumnType
from ._ddl_commands import Command as Command
from ._ddl_commands import Constraint as Constraint
from ._ddl_commands import CreateConstraint as CreateConstraint
from ._ddl_commands import CreateIndex as CreateIndex
from ._ddl_commands import CreateTable as CreateTable
from ._ddl_commands import DropConstraint as DropConstraint
from ._ddl_commands import DropIndex as DropIndex
from ._ddl_commands import DropTable as DropTable
from ._ddl_commands import Execute as Execute
from ._ddl_commands import ExecuteSide as ExecuteSide
from ._ddl_commands import Flush as Flush
from ._ddl_commands import Fragment as Fragment
from ._ddl_commands import Index as Index
from ._ddl_commands import IndexColumn as IndexColumn
from ._ddl_commands import Modify as Modify
from ._ddl_commands import OnDelete as OnDelete
from ._ddl_commands import OnUpdate as OnUpdate
from ._ddl_commands import Reference as Reference
from ._ddl_commands import Remove as Remove
from ._ddl_commands import RemoveIfExists as RemoveIfExists
from ._ddl_commands import RenameColumn as RenameColumn
from ._ddl_commands import RenameIndex as RenameIndex
from ._ddl_commands import RenameTable as RenameTable
from ._ddl_commands import Table as Table
from ._ddl_commands import TypeSpec as TypeSpec
from ._ddl_commands import describe as describe
from ._objects import IndexOpts as IndexOpts
from ._objects import _name
from ._objects import constraint as constraint
from ._objects import fragment as fragment
from ._objects import index as index
from ._objects import references as references
from ._objects import table as table
from ._objects import unique_index as unique_index
from ._settings import current as current_settings
from ._types import _column_type, _options

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
    _check_fkey_names(block.table, change)
    block.changes.append(change)


def _check_fkey_names(tbl: Table, change: Change) -> None:
    """A foreign key without ``name=`` is named ``<table>_<column>_fkey``: refused when PostgreSQL
    would cut that name (it must match what ``foreign_key_constraint`` declares), never truncated."""
    refs = [change.type]
    if isinstance(change, Modify) and change.from_ is not None:
        refs.append(change.from_[0])
    for ref in refs:
        if isinstance(ref, Reference) and ref.name is None:
            check_generated_name(
                f"{tbl.name}_{change.column}_fkey", "foreign key constraint name", "references(..., name=)"
            )


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
    return collect_result(fn)[0]


def collect_result(fn: Callable[[], object]) -> tuple[list[Command], bool]:
    """:func:`collect`, and whether ``fn`` did nothing it was written to do: it issued no command
    and returned ``None`` from a body that is more than ``pass`` or ``...`` (a plain-SQL function
    that forgot its ``return``)."""
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
    if result is None:
        return commands, not commands and not _empty_body(fn)
    if isinstance(result, Table | Index | Constraint | TableBlock):
        return commands, False  # what create()/rename() return, when fn returns their value
    if isinstance(result, str):
        return [*commands, Execute(result)], False
    if isinstance(result, list | tuple) and all(isinstance(s, str) for s in result):
        return [*commands, *(Execute(s) for s in result)], False
    raise MigrationError(
        f"cannot run {_fn_name(fn)}: expected it to return None, SQL text or a list of SQL texts, got: {result!r}"
    )


def _empty() -> None:
    pass


def _empty_body(fn: Callable[..., object]) -> bool:
    """``fn``'s body is only ``pass`` or ``...``, without a docstring (a generated, empty ``change()``)."""
    code = getattr(fn, "__code__", None)
    return (
        code is not None
        and getattr(fn, "__doc__", None) is None
        and code.co_code == _empty.__code__.co_code
        and code.co_consts == _empty.__code__.co_consts
    )


def _fn_name(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}()"


# -- column changes (inside a create/alter block) -----------------------------------------------------------


def add(column: str, type: TypeSpec, **opts: Unpack[ColumnOpts]) -> None:
    """Add a column (in a ``create`` or ``alter`` block).

    :param type: ``"string"`` (``varchar(255)``), ``"text"``, ``"integer"``, ``"map"`` (``jsonb``),
        ``("array", t)`` or ``[t]``, ``"utc_datetime"`` (``timestamptz(0)``; ``_usec``: ``timestamptz``),
        ``"naive_datetime"`` (``timestamp(0)``), :func:`references` ... (any other string as is)
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
    type: str | None = None,
    inserted_at: str | Literal[False] | None = None,
    updated_at: str | Literal[False] | None = None,
    **opts: Unpack[ColumnOpts],
) -> None:
    """Add ``inserted_at`` and ``updated_at``, ``NOT NULL`` unless told otherwise, of ``type`` as :func:`add`
    reads it (``timestamp(0)`` by default, ``timestamptz`` for the ``utc_*`` types); ``False`` for a name
    leaves that column out. Unset arguments come from the migrator's ``migration_timestamps``
    (``{"type": "utc_datetime_usec", "inserted_at": "created_at"}``), then these defaults."""
    merged: dict[str, Any] = {**current_settings().timestamps, **opts}
    kind = type if type is not None else merged.pop("type", "naive_datetime")
    merged.pop("type", None)
    first = inserted_at if inserted_at is not None else merged.pop("inserted_at", "inserted_at")
    second = updated_at if updated_at is not None else merged.pop("updated_at", "updated_at")
    merged.pop("inserted_at", None)
    merged.pop("updated_at", None)
    merged.setdefault("null", False)
    for column in (first, second):
        if column is not False:
            add(column, kind, **merged)


# -- commands on tables, indexes and constraints ------------------------------------------------------------------


def _primary_key(tbl: Table) -> tuple[Add, ...]:
    pk = tbl.primary_key
    if pk is True:  # the migrator's migration_primary_key, else id bigserial
        pk = current_settings().primary_key
    if pk is False:
        return ()
    rest = dict(pk)
    column = rest.pop("name", "id")
    _name("primary key column", column)
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
        _name("column", column)
        _name("column", to)
        _push(RenameColumn(table=obj, column=column, to=to))
        return obj
    if isinstance(obj, Index) and column is None and isinstance(to, str):
        _check_prefix(obj.prefix)
        _name("index", to)
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
    """Run SQL, or a function of the repo (``async def fn(repo)`` or a plain one), at its turn;
    with ``down`` it can be reversed."""
    _push(Execute(_execute_side(up), None if down is None else _execute_side(down)))


def execute_file(up_path: str | os.PathLike[str], down_path: str | os.PathLike[str] | None = None) -> None:
    """:func:`execute` the SQL in a file (read now); with ``down_path`` it can be reversed."""
    up = pathlib.Path(up_path).read_text(encoding="utf-8")
    down = None if down_path is None else pathlib.Path(down_path).read_text(encoding="utf-8")
    _push(Execute(up, down))


def flush() -> None:
    """Run every command buffered so far before the next ones (not allowed in ``change()`` rolled back)."""
    _push(Flush())
