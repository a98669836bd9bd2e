"""Translate asyncpg and socket errors into :mod:`asyncecto.errors`, keeping the cause."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg
import asyncpg.exceptions as pgexc

from asyncecto import errors

__all__ = ("CONSTRAINT_KINDS", "DRIVER_ERRORS", "translate", "translate_copy")

# Most specific first: the first matching class wins.
_SQLSTATE_CLASSES: tuple[tuple[type[BaseException], type[errors.DatabaseError]], ...] = (
    (pgexc.UniqueViolationError, errors.UniqueViolationError),
    (pgexc.ForeignKeyViolationError, errors.ForeignKeyViolationError),
    (pgexc.RestrictViolationError, errors.ForeignKeyViolationError),
    (pgexc.CheckViolationError, errors.CheckViolationError),
    (pgexc.ExclusionViolationError, errors.ExclusionViolationError),
    (pgexc.NotNullViolationError, errors.NotNullViolationError),
    (pgexc.QueryCanceledError, errors.StatementTimeoutError),
    (pgexc.InFailedSQLTransactionError, errors.TransactionAbortedError),
    (pgexc.SerializationError, errors.SerializationError),
    (pgexc.DeadlockDetectedError, errors.DeadlockError),
    (pgexc.CannotConnectNowError, errors.DatabaseUnavailableError),
    (pgexc.TooManyConnectionsError, errors.DatabaseUnavailableError),
    (pgexc.InvalidCatalogNameError, errors.DatabaseUnavailableError),
    (pgexc.InvalidAuthorizationSpecificationError, errors.DatabaseUnavailableError),
    (pgexc.AdminShutdownError, errors.ConnectionLostError),
    (pgexc.ConnectionDoesNotExistError, errors.ConnectionLostError),
    (pgexc.ConnectionFailureError, errors.ConnectionLostError),
)

#: database error class -> the changeset constraint kind Ecto names it by
CONSTRAINT_KINDS: dict[type[errors.DatabaseError], str] = {
    errors.UniqueViolationError: "unique",
    errors.ForeignKeyViolationError: "foreign_key",
    errors.CheckViolationError: "check",
    errors.ExclusionViolationError: "exclusion",
}


#: what a driver call may raise; ``translate`` turns each into an asyncecto error
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


def translate(
    exc: BaseException, query: str | None = None, params: Sequence[Any] = (), *, connecting: bool = False
) -> errors.AsyncEctoError:
    """The asyncecto error for a driver or socket exception (raise it ``from exc``); ``params`` are the
    statement's arguments, to show the one the driver could not encode."""
    if isinstance(exc, errors.AsyncEctoError):
        return exc
    if isinstance(exc, asyncpg.DataError | TypeError) and _NAIVE_AWARE in str(exc):
        return _aware_to_naive(exc, query, params)
    if isinstance(exc, asyncpg.PostgresError):
        cls: type[errors.DatabaseError] = errors.DatabaseError
        for driver_cls, mapped in _SQLSTATE_CLASSES:
            if isinstance(exc, driver_cls):
                cls = mapped
                break
        if connecting and cls is errors.DatabaseError:
            cls = errors.DatabaseUnavailableError
        hint = getattr(exc, "hint", None)
        if cls is errors.TransactionAbortedError:
            hint = (
                "an earlier statement in this transaction failed, so PostgreSQL refuses the rest of it; "
                "run the statement that may fail in a nested `async with repo.transaction():` (a savepoint) "
                "and handle its error there"
            )
        elif issubclass(cls, errors.TransactionConflictError):
            hint = "another transaction won the race; run the whole transaction again: repo.transaction(fn, retry=3)"
        return cls(
            getattr(exc, "message", None) or str(exc),
            sqlstate=getattr(exc, "sqlstate", None),
            constraint_name=getattr(exc, "constraint_name", None),
            table_name=getattr(exc, "table_name", None),
            column_name=getattr(exc, "column_name", None),
            detail=getattr(exc, "detail", None),
            hint=hint,
            query=query,
        )
    if isinstance(exc, TimeoutError):
        if connecting:
            return errors.DatabaseUnavailableError(f"cannot connect: timed out ({exc})")
        return errors.StatementTimeoutError(f"query timed out on the client: {exc or 'timeout'}", query=query)
    if isinstance(exc, OSError):
        if connecting:
            return errors.DatabaseUnavailableError(f"cannot connect: {exc}")
        return errors.ConnectionLostError(f"connection lost: {exc}", query=query)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if "closed" in text or "terminat" in text:
            return errors.ConnectionLostError(f"connection lost: {text}", query=query)
        return errors.DatabaseError(text, query=query)
    if isinstance(exc, asyncpg.InternalClientError):
        # the protocol met a message it did not expect (a backend's FATAL racing the next query)
        return errors.ConnectionLostError(f"connection unusable: {exc}", query=query)
    return errors.DatabaseError(f"{type(exc).__name__}: {exc}", query=query)


#: where the server says a COPY failed: ``COPY notes, line 3, column body: "…"``
_COPY_CONTEXT = re.compile(r"COPY [^\n]*?, line (\d+)(?:, column ([^:\n]+))?")


def translate_copy(exc: BaseException, query: str) -> errors.AsyncEctoError:
    """:func:`translate` for a ``COPY``: the message also says in which row and column it failed
    (``column_name`` is set from the server's context when the error itself names none)."""
    err = translate(exc, query)
    m = _COPY_CONTEXT.search(getattr(exc, "context", None) or "")
    if (
        not isinstance(err, errors.DatabaseError)
        or m is None
        or type(err).__init__ is not errors.DatabaseError.__init__
    ):
        return err
    column = err.column_name or (m.group(2) or "").strip() or None
    where = f"row {m.group(1)}" + (f", column {column!r}" if column else "")
    return type(err)(
        f"{err.message} (COPY {where})",
        sqlstate=err.sqlstate,
        constraint_name=err.constraint_name,
        table_name=err.table_name,
        column_name=column,
        detail=err.detail,
        hint=err.hint,
        query=query,
    )


# asyncpg encoding an aware datetime for a `timestamp` parameter (a DataError raised before sending)
_NAIVE_AWARE = "can't subtract offset-naive and offset-aware datetimes"
_ARGUMENT = re.compile(r"invalid input for query argument \$([0-9]+)")
_NAME = r'"(?:[^"]|"")+"'


def _aware_to_naive(exc: BaseException, query: str | None, params: Sequence[Any]) -> errors.DatabaseError:
    """A timezone-aware datetime sent for a `timestamp without time zone` column or parameter."""
    match = _ARGUMENT.match(str(exc))
    number = int(match[1]) if match else None
    column = _argument_column(query, number) if number is not None else None
    where = f"column {column!r}" if column is not None else "a parameter"
    value = params[number - 1] if number is not None and 0 < number <= len(params) else None
    shown = repr(value) if value is not None else str(exc).split(": ", 1)[-1]
    fix = (
        f'make the column timestamptz: in a migration, modify("{column}", "utc_datetime_usec") '
        f'(ALTER COLUMN "{column}" TYPE timestamptz)'
        if column is not None
        else "make the column timestamptz (a migration's utc_datetime types create it)"
    )
    return errors.DatabaseError(
        f"cannot write a timezone-aware datetime to {where}: it is `timestamp without time zone`",
        sqlstate=getattr(exc, "sqlstate", None),
        column_name=column,
        detail=f"query argument ${number} is {shown}" if number is not None else shown,
        hint=(
            f"UtcDatetime and UtcDatetimeUsec fields send aware UTC datetimes; {fix}, "
            "or declare the field NaiveDatetime/NaiveDatetimeUsec to keep the `timestamp` column"
        ),
        query=query,
    )


def _argument_column(sql: str | None, number: int) -> str | None:
    """The column that parameter ``$number`` is written to or compared with, in the SQL this adapter
    writes (``"col" = $n``, or the ``VALUES`` of an ``INSERT``); ``None`` when it cannot tell."""
    if not sql:
        return None
    param = rf"\${number}(?![0-9])"
    found = re.search(rf"({_NAME}) = {param}", sql)
    if found is not None:
        return _unquote(found[1])
    insert = re.match(rf"INSERT INTO .*? \(((?:{_NAME}(?:, )?)+)\) VALUES ", sql)
    if insert is None:
        return None
    row = re.search(rf"\(([^()]*{param}[^()]*)\)", sql[insert.end() :])
    if row is None:
        return None
    columns = re.findall(_NAME, insert[1])
    cells = row[1].split(", ")
    position = cells.index(f"${number}") if f"${number}" in cells else -1
    return _unquote(columns[position]) if 0 <= position < len(columns) and len(cells) == len(columns) else None


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"')
