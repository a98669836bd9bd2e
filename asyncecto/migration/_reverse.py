"""Reversing ``change()``: the commands in reverse order, each inverted as ``Ecto.Migration.Runner`` does.

>>> from asyncecto.migration._dsl import CreateIndex, describe, index
>>> [describe(c) for c in reverse([CreateIndex(index=index("posts", ["title"]))])]
['drop index posts_title_index']
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from asyncecto.errors import MigrationError

from ._ddl_commands import (
    Add,
    AlterTable,
    Change,
    ColumnOptions,
    Command,
    CreateConstraint,
    CreateIndex,
    CreateTable,
    DropConstraint,
    DropIndex,
    DropTable,
    Execute,
    Flush,
    Modify,
    Remove,
    RenameColumn,
    RenameIndex,
    RenameTable,
    describe,
)

__all__ = ("reverse",)


def reverse(commands: Sequence[Command]) -> list[Command]:
    """The commands that undo ``commands`` (from ``collect(change)``): last first, each inverted.

    :raises MigrationError: for a command that cannot be reversed (``drop``, ``execute`` without a
        down side, ``remove`` without a type, ``modify`` without ``from_``, ``*_if_exists`` columns,
        ``flush()``)
    """
    return [_reverse(command) for command in reversed(commands)]


def _irreversible(command: Command, why: str | None = None) -> MigrationError:
    message = (
        f"cannot reverse migration command: {describe(command)}. "
        "You will need to explicitly define up() and down() in your migration"
    )
    return MigrationError(message + (f"\n{why}" if why else ""))


def _reverse(command: Command) -> Command:
    match command:
        case CreateTable(table=t, if_not_exists=ine):
            return DropTable(table=t, if_exists=ine)
        case CreateIndex(index=i, if_not_exists=ine):
            return DropIndex(index=i, if_exists=ine)
        case DropIndex(index=i, if_exists=ie):
            return CreateIndex(index=i, if_not_exists=ie)
        case RenameIndex(index=i, to=to):
            return RenameIndex(index=attrs.evolve(i, name=to), to=i.name)
        case RenameTable(table=t, to=to):
            return RenameTable(table=attrs.evolve(to, prefix=to.prefix or t.prefix), to=t)
        case RenameColumn(table=t, column=c, to=to):
            return RenameColumn(table=t, column=to, to=c)
        case CreateConstraint(constraint=c):
            return DropConstraint(constraint=c)
        case Execute(up=up, down=down):
            if down is None:
                raise _irreversible(command, "give execute() its down side: execute(up_sql, down_sql)")
            return Execute(down, up)
        case AlterTable(table=t, changes=changes):
            return AlterTable(table=t, changes=tuple(_reverse_change(command, c) for c in reversed(changes)))
        case Flush():
            raise MigrationError("calling flush() inside change() when doing rollback is not supported")
    raise _irreversible(command)


def _reverse_change(command: Command, change: Change) -> Change:
    match change:
        case Add(column=name, type=type, if_not_exists=False):
            return Remove(column=name, type=type)
        case Remove(column=name, type=type, opts=opts) if type is not None:
            return Add(column=name, type=type, opts=opts)
        case Modify(column=name, type=type, opts=opts, from_=(old_type, None)):
            return Modify(column=name, type=old_type, opts=opts, from_=(type, None))
        case Modify(column=name, type=type, opts=opts, from_=(old_type, ColumnOptions() as old_opts)):
            return Modify(column=name, type=old_type, opts=old_opts, from_=(type, opts))
        case Modify():
            why = f"modify({change.column!r}) needs from_= (the old type, or (type, {{options}})) to be reversed"
        case Remove():
            why = f"remove({change.column!r}) needs the column's type, as in remove({change.column!r}, type, ...)"
        case Add():
            why = f"add_if_not_exists({change.column!r}) cannot be reversed (the column may have existed)"
        case _:
            why = f"remove_if_exists({change.column!r}) cannot be reversed (the column may not have existed)"
    raise _irreversible(command, why)
