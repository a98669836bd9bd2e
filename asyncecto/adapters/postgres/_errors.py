"""Translate asyncpg and socket errors into :mod:`asyncecto.errors`, keeping the cause."""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import asyncpg.exceptions as pgexc

from asyncecto import errors
from asyncecto.errors import _abbreviated

if TYPE_CHECKING:
    from asyncecto.adapters import ConnectionSettings

__all__ = (
    "CONSTRAINT_KINDS",
    "COPY_ENCODE_ERRORS",
    "DRIVER_ERRORS",
    "connect_error",
    "copy_encode_error",
    "server_ended",
    "server_name",
    "translate",
    "translate_copy",
)

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


#: the driver's refusal of a type it has no binary codec for (tsvector, tsquery, aclitem …) in COPY
_NO_BINARY = "no binary format encoder for type"

#: what a driver call may raise; ``translate`` turns each into an asyncecto error
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


#: a named prepared statement the server connection does not know (or knows already): a
#: transaction-mode pooler moved the session to another server connection between two statements
POOLER_STATEMENT_FIX = (
    "the repo seems to run behind a transaction-mode pooler (PgBouncer pool_mode = transaction, Supavisor, "
    "RDS Proxy …), which hands each transaction to any server connection, so statements prepared by name "
    "on one are unknown on the next: set pooler='transaction' (Repo(url, pooler='transaction') or "
    "?pooler=transaction in the URL); if the pooler keeps prepared statements itself (PgBouncer >= 1.21 "
    "with max_prepared_statements > 0), add prepared_statements=True"
)
_POOLER_STARTUP_FIX = (
    "the repo seems to connect through a transaction-mode pooler (PgBouncer, Supavisor …), which refuses "
    "this startup parameter: set pooler='transaction' (Repo(url, pooler='transaction') or ?pooler=transaction "
    "in the URL); the repo then sends no statement_timeout at startup and sets it per transaction instead"
)


def _pooler_statement_error(exc: asyncpg.PostgresError) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    text = getattr(exc, "message", None) or str(exc)
    return sqlstate in ("26000", "42P05") and "prepared statement" in text and "__asyncpg_" in text


def translate(exc: BaseException, query: str | None = None, params: Sequence[Any] = ()) -> errors.AsyncEctoError:
    """The asyncecto error for a driver or socket exception (raise it ``from exc``); ``params`` are the
    statement's arguments, to show the one the driver could not encode.

    Opening a connection has its own: :func:`connect_error`.
    """
    if isinstance(exc, errors.AsyncEctoError):
        return exc
    if isinstance(exc, asyncpg.DataError | TypeError) and _NAIVE_AWARE in str(exc):
        return _aware_to_naive(exc, query, params)
    if isinstance(exc, asyncpg.DataError) and _ARGUMENT.match(str(exc)):
        return _argument_error(exc, query, params)
    if isinstance(exc, asyncpg.PostgresError) and _pooler_statement_error(exc):
        return errors.DatabaseError(
            getattr(exc, "message", None) or str(exc),
            sqlstate=getattr(exc, "sqlstate", None),
            hint=getattr(exc, "hint", None),  # asyncpg's note on pgbouncer
            query=query,
            fix=POOLER_STATEMENT_FIX,
        )
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
        return errors.StatementTimeoutError(f"query timed out on the client: {exc or 'timeout'}", query=query)
    if isinstance(exc, OSError):
        return errors.ConnectionLostError(f"connection lost: {exc}", query=query)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        if "closed" in text or "terminat" in text:
            return errors.ConnectionLostError(f"connection lost: {text}", query=query)
        return errors.DatabaseError(text, query=query)
    if isinstance(exc, asyncpg.InternalClientError):
        if _NO_BINARY in str(exc):  # raised before anything was sent: the connection is fine
            return errors.DatabaseError(
                f"{exc}: COPY sends rows in binary and the driver cannot encode this type; "
                "insert such rows with INSERT (insert_all of fewer rows, or with returning=) "
                "or cast the column in SQL",
                query=query,
            )
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


#: what asyncpg's COPY raises, unwrapped, for a value it cannot encode (a lone surrogate, an int too
#: large for the column, a value of the wrong kind)
COPY_ENCODE_ERRORS = (UnicodeError, OverflowError, TypeError, ValueError)

_INT_RANGE = re.compile(r"value out of int(16|32|64) range")


def _bad_value(value: Any, exc: BaseException) -> bool:
    """Whether ``value`` (or an element of it, for an array) is the one ``exc`` could not encode."""
    if isinstance(value, list | tuple):
        return any(_bad_value(v, exc) for v in value)
    if isinstance(exc, UnicodeEncodeError):
        return value is exc.object
    m = _INT_RANGE.search(str(exc))
    if m is not None and isinstance(value, int) and not isinstance(value, bool):
        bits = int(m[1])
        return not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    return False


def copy_encode_error(
    exc: BaseException, query: str, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], first: int = 1
) -> errors.DatabaseError:
    """The error for a value asyncpg's ``COPY`` could not encode (nothing is written): the row and
    column holding it, when ``rows`` (numbered from ``first``) show it, and why.

    Raised as by a statement's parameter that the driver refuses: ``sqlstate`` 22003 for an
    integer out of the column type's range (as the server says for the same value in an
    ``INSERT``), else asyncpg's 22000.
    """
    found: tuple[int, str, Any] | None = None
    for number, row in enumerate(rows, first):
        for name, value in zip(columns, row, strict=False):
            if _bad_value(value, exc):
                found = (number, name, value)
                break
        if found is not None:
            break
    out_of_range = _INT_RANGE.search(str(exc)) is not None
    reason = str(exc) or type(exc).__name__
    column: str | None = None
    if found is not None:
        number, column, value = found
        message = f"invalid input for COPY row {number}, column {column!r}: {_abbreviated(value)} ({reason})"
    else:
        message = f"invalid input for COPY into {table!r}: {reason}"
    return errors.DatabaseError(
        message,
        sqlstate="22003" if out_of_range else "22000",
        table_name=table,
        column_name=column,
        hint="the column's type cannot hold the value; check the value, or the column's type",
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


def _argument_error(exc: BaseException, query: str | None, params: Sequence[Any]) -> errors.DatabaseError:
    """A parameter the driver could not encode for the type the server gave it (``2**40`` for an
    ``integer`` column): the column it was for, when the SQL shows it. An integer out of the
    column type's range gets SQLSTATE 22003, as when the server itself finds it out of range."""
    text = str(exc)
    match = _ARGUMENT.match(text)
    assert match is not None
    column = _argument_column(query, int(match[1]))
    out_of_range = _INT_RANGE.search(text) is not None
    message = text if column is None else f"{text} (column {column!r})"
    return errors.DatabaseError(
        message,
        sqlstate="22003" if out_of_range else getattr(exc, "sqlstate", None),
        column_name=column,
        hint=(
            "the value is out of the range of the column's integer type; check the value, or widen the column "
            '(a migration\'s modify(column, "bigint"))'
            if out_of_range
            else None
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


def _startup_parameter_fix(message: str, config: ConnectionSettings) -> str:
    """A pooler refused a startup parameter (PgBouncer: "unsupported startup parameter: NAME")."""
    if config.pooler != "transaction":
        return _POOLER_STARTUP_FIX
    name = message.rpartition(":")[2].strip()
    return (
        f"the pooler refuses the startup parameter {name!r}: remove it from server_settings (set it on the "
        "role or database instead: ALTER ROLE app SET ...), or list it in the pooler's ignore_startup_parameters"
    )


def connect_error(exc: BaseException, config: ConnectionSettings, database: str) -> errors.AsyncEctoError:
    """The error for a connection that could not be opened: where to (host:port, database, user; never
    the password), why, and the fix (raise it ``from exc``)."""
    if isinstance(exc, errors.AsyncEctoError):
        return exc
    if isinstance(exc, pgexc.TargetServerAttributeNotMatched) or len(config.all_endpoints()) > 1:
        return _multi_host_error(exc, config, database)
    return _one_host_error(exc, config, database)


def server_name(host: str, port: int) -> str:
    """How a server is named in messages and telemetry: ``host:port``, ``[v6]:port``, or a socket path."""
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: what each ``target_session_attrs`` asks of a server, in words
_TARGET_WANTS = {
    "read-write": "a server that accepts writes (a primary with default_transaction_read_only off)",
    "primary": "a primary (not in recovery)",
    "read-only": "a read-only server (a standby, or default_transaction_read_only on)",
    "standby": "a standby (in recovery)",
    "prefer-standby": "a standby, else any server",
    "any": "any server",
}


def _multi_host_error(exc: BaseException, config: ConnectionSettings, database: str) -> errors.DatabaseUnavailableError:
    """No server of the host list could be used: each refused, failed, or was not of the kind
    ``target_session_attrs`` asks for."""
    target = config.target_session_attrs or "any"
    tried = ", ".join(server_name(h, p) for h, p in config.all_endpoints())
    whom = f'database "{database}"' + (f', user "{config.user}"' if config.user else "")
    head = f"cannot connect to PostgreSQL at any of {tried} ({whom}, target_session_attrs={target})"
    if isinstance(exc, pgexc.TargetServerAttributeNotMatched):
        why = f"every server that answered is not {_TARGET_WANTS.get(target, target)}"
        fix = (
            "during a failover, wait for the standby's promotion and run the call again (repo.transaction(fn, "
            "retry=3)); else check that the URL lists the primary (SELECT pg_is_in_recovery() is false on it), "
            "or relax target_session_attrs"
        )
    else:
        one = _one_host_error(exc, config, database)
        why = f"the last one tried failed: {one.message.partition(': ')[2] or one.message}"
        fix = (
            f"check that at least one of the hosts is up and is {_TARGET_WANTS.get(target, target)} "
            "(pg_isready -h HOST -p PORT for each); during a failover, wait for the standby's promotion"
        )
        if isinstance(exc, asyncpg.PostgresError) and one.fix:
            fix = one.fix
    first_host, first_port = config.all_endpoints()[0]
    return errors.DatabaseUnavailableError(
        f"{head}: {why}",
        sqlstate=getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None,
        fix=fix,
        host=first_host,
        port=first_port,
        database=database,
        user=config.user,
    )


def _one_host_error(exc: BaseException, config: ConnectionSettings, database: str) -> errors.DatabaseUnavailableError:
    """:func:`connect_error` for one server (``config.host``/``config.port``)."""
    host, port = config.host, config.port
    socket_path = host.startswith("/")
    where = f"{host}/.s.PGSQL.{port}" if socket_path else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    whom = f'database "{database}"' + (f', user "{config.user}"' if config.user else "")
    head = f"cannot connect to PostgreSQL at {where} ({whom})"
    check = _CHECK_SERVER.format(host=host, port=port)
    if isinstance(exc, asyncpg.PostgresError):
        message = getattr(exc, "message", None) or str(exc)
        fix = _server_fix(exc, database, maintenance=database != config.database)
        if "unsupported startup parameter" in message:
            fix = _startup_parameter_fix(message, config)
        return errors.DatabaseUnavailableError(
            f"{head}: {message}",
            sqlstate=getattr(exc, "sqlstate", None),
            detail=getattr(exc, "detail", None),
            hint=getattr(exc, "hint", None),
            fix=fix,
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
