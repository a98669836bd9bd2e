"""Translate asyncpg and socket errors into :mod:`asyncecto.errors`, keeping the cause."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

import asyncpg
import asyncpg.exceptions as pgexc

from asyncecto import errors

if TYPE_CHECKING:
    from asyncecto.repo._config import RepoConfig

__all__ = ("CONSTRAINT_KINDS", "DRIVER_ERRORS", "connect_error", "translate")

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


def translate(exc: BaseException, query: str | None = None) -> errors.AsyncEctoError:
    """The asyncecto error for a driver or socket exception (raise it ``from exc``).

    Opening a connection has its own: :func:`connect_error`.
    """
    if isinstance(exc, errors.AsyncEctoError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        cls: type[errors.DatabaseError] = errors.DatabaseError
        for driver_cls, mapped in _SQLSTATE_CLASSES:
            if isinstance(exc, driver_cls):
                cls = mapped
                break
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
        return errors.StatementTimeoutError(f"query timed out on the client: {exc or 'timeout'}", query=query)
    if isinstance(exc, OSError):
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


_CHECK_SERVER = "check that the server is running and that host and port name it (pg_isready -h {host} -p {port})"


def _server_fix(exc: asyncpg.PostgresError, database: str, maintenance: bool) -> str:
    """How to fix a refusal the server sent while the connection was opened."""
    if isinstance(exc, pgexc.InvalidCatalogNameError):
        if maintenance:
            return (
                f'the server has no "{database}" database, which create and drop connect to; '
                "create it with a superuser (createdb postgres)"
            )
        return (
            "create it: run `asyncecto create` (or `await repo.storage_up()`), or correct the database name in the URL"
        )
    if isinstance(exc, pgexc.InvalidPasswordError):
        return (
            "check the user and password: the URL's user:password@ part (percent-encode special characters) "
            "or the user=/password= options"
        )
    if isinstance(exc, pgexc.InvalidAuthorizationSpecificationError):
        return (
            "check the user name, and that the server's pg_hba.conf lets this user reach this database from this host"
        )
    if isinstance(exc, pgexc.TooManyConnectionsError):
        return (
            "lower pool_size (every process and repo counts against max_connections), "
            "or raise the server's max_connections"
        )
    if isinstance(exc, pgexc.CannotConnectNowError):
        return "the server is starting up, shutting down or recovering: wait for it and try again"
    return "the server refused the connection; its log says why"


def connect_error(exc: BaseException, config: RepoConfig, database: str) -> errors.AsyncEctoError:
    """The error for a connection that could not be opened: where to (host:port, database, user; never
    the password), why, and the fix (raise it ``from exc``)."""
    if isinstance(exc, errors.AsyncEctoError):
        return exc
    host, port = config.host, config.port
    socket_path = host.startswith("/")
    where = f"{host}/.s.PGSQL.{port}" if socket_path else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    whom = f'database "{database}"' + (f', user "{config.user}"' if config.user else "")
    head = f"cannot connect to PostgreSQL at {where} ({whom})"
    check = _CHECK_SERVER.format(host=host, port=port)
    if isinstance(exc, asyncpg.PostgresError):
        return errors.DatabaseUnavailableError(
            f"{head}: {getattr(exc, 'message', None) or exc}",
            sqlstate=getattr(exc, "sqlstate", None),
            detail=getattr(exc, "detail", None),
            hint=getattr(exc, "hint", None),
            fix=_server_fix(exc, database, maintenance=database != config.database),
            host=host,
            port=port,
            database=database,
            user=config.user,
        )
    if isinstance(exc, TimeoutError):
        why = f"no answer within connect_timeout={config.connect_timeout:g}s"
        fix = f"{check}; that no firewall drops the packets; or raise connect_timeout"
    elif isinstance(exc, socket.gaierror):
        why = f'the host name "{host}" could not be resolved ({exc.strerror or exc})'
        fix = "check the host name in the URL (a typo? a name only another network or container knows?)"
    elif isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        why = f"connection refused (nothing listens on port {port})"
        fix = check
    elif socket_path and isinstance(exc, FileNotFoundError):
        why = f"no server socket {where}"
        fix = f"check that the server is running and that host names its socket directory and port ({port})"
    elif "SSL" in str(exc):
        why = str(exc)
        fix = "the server and the client disagree on SSL: set sslmode= in the URL (or ssl=) to what the server allows"
    elif isinstance(exc, OSError) and "refused" in str(exc):  # every address refused (localhost: ::1, 127.0.0.1)
        why = f"connection refused ({exc})"
        fix = check
    else:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        fix = check
    return errors.DatabaseUnavailableError(
        f"{head}: {why}", fix=fix, host=host, port=port, database=database, user=config.user
    )
