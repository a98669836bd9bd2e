"""Translate asyncpg and socket errors into :mod:`asyncecto.errors`, keeping the cause."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions as pgexc

from asyncecto import errors

__all__ = ("CONSTRAINT_KINDS", "DRIVER_ERRORS", "server_ended", "translate")

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
    (pgexc.CrashShutdownError, errors.ConnectionLostError),
    (pgexc.DatabaseDroppedError, errors.ConnectionLostError),
    (pgexc.IdleInTransactionSessionTimeoutError, errors.ConnectionLostError),
    (pgexc.IdleSessionTimeoutError, errors.ConnectionLostError),
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


#: why the server ends a session, for the errors that say so (by SQLSTATE)
_ENDED_HINTS = {
    "25P03": (
        "the transaction stayed idle between two statements longer than the server's "
        "idle_in_transaction_session_timeout, which ended the session and rolled the transaction back; keep "
        "slow work (network calls, sleeps, user input) out of transactions, or raise that setting"
    ),
    "57P05": "the session stayed idle longer than the server's idle_session_timeout; the next checkout reconnects",
}


def server_ended(sqlstate: str | None, message: str, query: str | None = None) -> errors.ConnectionLostError:
    """The error for a connection the server ended, with the reason it sent before closing it."""
    return errors.ConnectionLostError(
        f"connection lost: the server ended the session: {message}",
        sqlstate=sqlstate,
        hint=_ENDED_HINTS.get(sqlstate or ""),
        query=query,
    )


#: what a driver call may raise; ``translate`` turns each into an asyncecto error
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


def translate(exc: BaseException, query: str | None = None, *, connecting: bool = False) -> errors.AsyncEctoError:
    """The asyncecto error for a driver or socket exception (raise it ``from exc``)."""
    if isinstance(exc, errors.AsyncEctoError):
        return exc
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
        elif cls is errors.ConnectionLostError and not hint:
            hint = _ENDED_HINTS.get(getattr(exc, "sqlstate", None) or "")
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
    if isinstance(exc, asyncpg.DataError):
        text = str(exc)
        hint = None
        if "offset-naive and offset-aware" in text:
            hint = (
                "a timezone-aware datetime was sent to a `timestamp without time zone` column; "
                "store UTC types in timestamptz columns, or use NaiveDatetime for timestamp columns"
            )
        return errors.DatabaseError(f"invalid query argument: {text}", hint=hint, query=query)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if "closed" in text or "terminat" in text:
            return errors.ConnectionLostError(f"connection lost: {text}", query=query)
        return errors.DatabaseError(text, query=query)
    if isinstance(exc, asyncpg.InternalClientError):
        # the protocol met a message it did not expect (a backend's FATAL racing the next query)
        return errors.ConnectionLostError(f"connection unusable: {exc}", query=query)
    return errors.DatabaseError(f"{type(exc).__name__}: {exc}", query=query)
