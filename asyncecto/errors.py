"""Every exception asyncecto raises, in one place.

The hierarchy::

    AsyncEctoError
    ├── ArgumentError (TypeError, ValueError)   a call was given a bad argument
    │   ├── CastError                           a value does not fit a field's type
    │   ├── IdentifierError                     a name cannot be written into SQL unchanged (too long, NUL, …)
    │   └── InvalidURLError                     a repo URL could not be parsed
    ├── SchemaError (TypeError)                 a schema definition is wrong
    ├── QueryError (ValueError)                 a query cannot be built or planned
    ├── AssociationNotLoadedError               an association was used as data before being preloaded
    ├── RepoStateError (RuntimeError)           the repo is not in a state that allows the call
    ├── InvalidChangesetError                   a write was given an invalid changeset
    ├── ConstraintError                         a database constraint the changeset did not declare
    ├── NoResultsError                          a ``*_or_raise`` read found nothing
    ├── MultipleResultsError                    a single-row read found several rows
    ├── StaleEntryError                         an update or delete hit no row
    ├── NoPrimaryKeyFieldError                  the schema has no primary key
    ├── NoPrimaryKeyValueError                  the struct's primary key is unset
    ├── MultiplePrimaryKeyError                 an update or delete hit several rows
    ├── PoolTimeoutError (TimeoutError)         no connection became free in time
    ├── SandboxError (RuntimeError)             the test sandbox was misused
    ├── MultiError                              a Multi operation failed; everything was rolled back
    ├── MigrationError                          a migration cannot be loaded, reversed or run
    ├── CommandError                            the ``asyncecto`` command cannot go on (its exit code)
    ├── UnsupportedInTransactionPoolingError    needs a session, which a transaction pooler does not keep
    └── DatabaseError                           the database or the link to it failed
        ├── ConnectionLostError                 the connection broke during the call
        │   ├── CommitOutcomeUnknownError       ... during COMMIT: it may or may not have committed
        │   └── FailoverError                   retryable: the server stopped being the primary
        ├── DatabaseUnavailableError            no connection could be opened
        ├── StatementTimeoutError (TimeoutError) the statement ran out of time
        ├── TransactionAbortedError             an earlier statement failed; the transaction refuses more
        ├── TransactionConflictError            retryable: SerializationError, DeadlockError
        └── UniqueViolationError & co.          see ``DatabaseError`` subclasses below

    BaseException
    └── Rollback                                control signal of repo.rollback(value), not an error:
                                                ``except Exception`` lets it pass (as CancelledError)

Messages start lowercase, say what could not be done and why, show the offending
value, and end with how to fix it. Every piece of data in a message is also an
attribute, so callers never parse text.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "ArgumentError",
    "AssociationNotLoadedError",
    "AsyncEctoError",
    "CastError",
    "CheckViolationError",
    "CommandError",
    "CommitOutcomeUnknownError",
    "ConnectionLostError",
    "ConstraintError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DeadlockError",
    "ExclusionViolationError",
    "FailoverError",
    "ForeignKeyViolationError",
    "IdentifierError",
    "InvalidChangesetError",
    "InvalidURLError",
    "MigrationError",
    "MultiError",
    "MultiplePrimaryKeyError",
    "MultipleResultsError",
    "NoPrimaryKeyFieldError",
    "NoPrimaryKeyValueError",
    "NoResultsError",
    "NotNullViolationError",
    "PoolTimeoutError",
    "QueryError",
    "RepoStateError",
    "Rollback",
    "SandboxError",
    "SandboxOwnershipTimeoutError",
    "SchemaError",
    "SerializationError",
    "StaleEntryError",
    "StaleStatementError",
    "StatementTimeoutError",
    "TransactionAbortedError",
    "TransactionConflictError",
    "UniqueViolationError",
    "UnsupportedInTransactionPoolingError",
)


class AsyncEctoError(Exception):
    """Base class of every asyncecto exception."""


class ArgumentError(AsyncEctoError, TypeError, ValueError):
    """A function was called with an argument it cannot use.

    It is both a ``TypeError`` and a ``ValueError``, so either ``except`` clause
    catches it.
    """


class CastError(ArgumentError):
    """A value cannot be cast to (or dumped as) a field's type.

    :ivar field: the field name, or ``None`` when the value is not tied to a field
    :ivar value: the offending value
    :ivar type: the type's name, e.g. ``"integer"``
    :ivar schema: the schema's name, when known
    :ivar reason: the type's own explanation, when it gave one
    :ivar fix: how to fix it, when the type knows better than "pass a value the type accepts"
    """

    def __init__(
        self,
        *,
        value: Any,
        type: str,
        field: str | None = None,
        schema: str | None = None,
        reason: str | None = None,
        action: str = "cast",
        fix: str | None = None,
    ) -> None:
        self.value = value
        self.type = type
        self.field = field
        self.schema = schema
        self.reason = reason
        self.action = action
        self.fix = fix
        where = ""
        if field is not None:
            where = f" for field {schema + '.' if schema else ''}{field}"
        msg = f"cannot {action} {_abbreviated(value)}{where}: expected a value of type {type}"
        if reason:
            msg += f" ({reason})"
        default = f"pass a value that {type} accepts, or cast outside input with asyncecto.changeset.cast"
        msg += f"\n\nfix: {fix or default}"
        super().__init__(msg)


def _shown(name: str) -> str:
    """``name`` as the message shows it: its repr, its middle elided when it is long."""
    if len(name) <= 48:
        return repr(name)
    return f"{name[:28]!r}…{name[-14:]!r} ({len(name)} characters)"


class IdentifierError(ArgumentError):
    """A name asyncecto would write into SQL as an identifier (a prefix, table, column, index,
    constraint or channel name …) cannot be written unchanged: it is not a non-empty ``str``, holds
    a NUL or a lone surrogate, or is longer than the database keeps. PostgreSQL keeps the first 63
    bytes of a name and silently drops the rest, so a longer prefix could read another schema:
    such a name is refused, never truncated, before any SQL is sent.

    :ivar kind: what the name is for: ``"prefix"``, ``"table"``, ``"column"``, ``"index name"`` …
    :ivar name: the name given
    :ivar size: its length in UTF-8 bytes, or ``None`` when it cannot be encoded (or is no ``str``)
    :ivar limit: the most bytes a name may have
    :ivar reason: what is wrong with it
    :ivar fix: how to fix it
    """

    def __init__(
        self, kind: str, name: Any, reason: str, fix: str, *, size: int | None = None, limit: int = 63
    ) -> None:
        self.kind = kind
        self.name = name
        self.size = size
        self.limit = limit
        self.reason = reason
        self.fix = fix
        shown = _shown(name) if isinstance(name, str) else repr(name)
        super().__init__(f"invalid {kind} {shown}: {reason}\n\nfix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_identifier_error, (self.kind, self.name, self.reason, self.fix, self.size, self.limit))


def _identifier_error(kind: str, name: Any, reason: str, fix: str, size: int | None, limit: int) -> IdentifierError:
    return IdentifierError(kind, name, reason, fix, size=size, limit=limit)


def _abbreviated(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut in the middle when longer than ``limit`` (a 10 MB string stays readable)."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than sys.get_int_max_str_digits() allows
        return f"<{value.bit_length()}-bit integer>" if isinstance(value, int) else f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    half = (limit - 30) // 2
    return f"{text[:half]}...<{len(text) - 2 * half} more characters>...{text[-half:]}"


class InvalidURLError(ArgumentError):
    """A repo URL could not be parsed.

    :ivar url: the URL with its password masked
    :ivar part: the part that is wrong (``"scheme"``, ``"port"``, an option name, …)
    """

    def __init__(self, url: str, part: str, reason: str) -> None:
        self.url = url
        self.part = part
        self.reason = reason
        super().__init__(f"invalid URL {url!r}: bad {part}: {reason}")


class SchemaError(AsyncEctoError, TypeError):
    """A schema definition is invalid (raised when the class is decorated)."""


class QueryError(AsyncEctoError, ValueError):
    """A query cannot be built, planned or run as asked."""


class AssociationNotLoadedError(AsyncEctoError):
    """An association that was never loaded (it holds ``NotLoaded``) was used as data.

    Nothing is loaded lazily: preload it with ``repo.preload(struct, name)`` or a query's
    ``preload(name)``.
    """

    def __init__(self, schema: str, association: str, *, embedded: bool = False) -> None:
        self.schema = schema
        self.association = association
        self.embedded = embedded
        if embedded:  # an embedded struct's associations are preloaded through the parent holding it
            nested = f"{{'<embed field>': {association!r}}}"
            super().__init__(
                f"association {association!r} of the embedded schema {schema} is not loaded; preload it "
                f"through the parent that embeds it, naming the embed field: await repo.preload(parent, "
                f"{nested}) or from_(Parent) | preload({nested})"
            )
            return
        super().__init__(
            f"association {association!r} of {schema} is not loaded; preload it first: "
            f"await repo.preload(struct, {association!r}) or from_({schema}) | preload({association!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_not_loaded_error, (self.schema, self.association, self.embedded))


def _not_loaded_error(schema: str, association: str, embedded: bool) -> AssociationNotLoadedError:
    return AssociationNotLoadedError(schema, association, embedded=embedded)


class RepoStateError(AsyncEctoError, RuntimeError):
    """The repo's lifecycle state forbids the call.

    :ivar state: the state that forbade it (``"new"``, ``"closing"``, ``"closed"``, …)
    :ivar action: what was attempted
    """

    def __init__(self, action: str, state: str, hint: str = "") -> None:
        self.action = action
        self.state = state
        msg = f"cannot {action}: repo is {state}"
        if hint:
            msg += f"\n\nfix: {hint}"
        super().__init__(msg)


class InvalidChangesetError(AsyncEctoError):
    """A write was given an invalid changeset (nothing was sent to the database), or a constraint
    the changeset declared fired (the statement failed; the violation is one of ``changeset.errors``).

    :ivar action: ``"insert"``, ``"update"``, ``"delete"`` …
    :ivar changeset: the changeset, with its ``errors``
    """

    def __init__(self, action: str, changeset: Any) -> None:
        self.action = action
        self.changeset = changeset
        errors = getattr(changeset, "errors", ())
        lines = "\n".join(f"  {field}: {msg}" for field, (msg, _meta) in errors) or "  (none)"
        super().__init__(
            f"could not perform {action} because changeset is invalid\n\nerrors:\n{lines}\n\nchangeset: {changeset!r}"
        )


class ConstraintError(AsyncEctoError):
    """A database constraint fired that the changeset did not declare.

    :ivar type: ``"unique"``, ``"foreign_key"``, ``"check"`` or ``"exclusion"``
    :ivar constraint: the constraint's name
    :ivar declared: the constraints the changeset did declare, as ``(type, name)``
    """

    def __init__(self, type: str, constraint: str, action: str, declared: list[tuple[str, str]]) -> None:
        self.type = type
        self.constraint = constraint
        self.action = action
        self.declared = declared
        listed = "\n".join(f"  * {name} ({kind})" for kind, name in declared) or "  (none)"
        func = {"foreign_key": "foreign_key_constraint"}.get(type, f"{type}_constraint")
        super().__init__(
            f"constraint error when attempting to {action} struct:\n\n  * {constraint} ({type})\n\n"
            f"the changeset defined the following constraints:\n\n{listed}\n\n"
            f"fix: to turn this violation into a changeset error instead of an exception, "
            f"call {func}(...) on your changeset with name={constraint!r}"
        )


class NoResultsError(AsyncEctoError):
    """A ``*_or_raise`` read found no row.

    :ivar query: the query (or a description of the lookup) that found nothing
    """

    def __init__(self, query: Any) -> None:
        self.query = query
        super().__init__(f"expected at least one result but got none in query:\n\n{query}")


class MultipleResultsError(AsyncEctoError):
    """A read that expects at most one row found more.

    :ivar query: the query; :ivar count: how many rows it found
    """

    def __init__(self, query: Any, count: int) -> None:
        self.query = query
        self.count = count
        super().__init__(f"expected at most one result but got {count} in query:\n\n{query}")


class StaleEntryError(AsyncEctoError):
    """An update or delete matched no row.

    :ivar action: ``"update"`` or ``"delete"``; :ivar struct: the struct given
    """

    def __init__(self, action: str, struct: Any) -> None:
        self.action = action
        self.struct = struct
        super().__init__(
            f"attempted to {action} a stale struct:\n\n{struct!r}\n\n"
            "this typically happens when the struct no longer exists in the database, "
            "or a database trigger or rule forbade the action"
        )


class NoPrimaryKeyFieldError(AsyncEctoError):
    """The operation needs a primary key and the schema has none."""

    def __init__(self, schema: str, action: str) -> None:
        self.schema = schema
        self.action = action
        super().__init__(
            f"cannot {action}: schema {schema} has no primary key\n\n"
            "fix: declare one with field(primary_key=True) or keep the default id"
        )


class NoPrimaryKeyValueError(AsyncEctoError):
    """The struct's primary key is ``None`` where a value is needed."""

    def __init__(self, struct: Any, field: str, action: str) -> None:
        self.struct = struct
        self.field = field
        self.action = action
        super().__init__(f"cannot {action}: struct is missing primary key value {field!r}:\n\n{struct!r}")


class MultiplePrimaryKeyError(AsyncEctoError):
    """An update or delete by primary key affected more than one row."""

    def __init__(self, action: str, struct: Any, count: int) -> None:
        self.action = action
        self.struct = struct
        self.count = count
        super().__init__(
            f"expected {action} on {type(struct).__name__} to affect one row, but it affected {count}: "
            "the primary key is not unique in the database"
        )


class PoolTimeoutError(AsyncEctoError, TimeoutError):
    """No pooled connection became available within the pool timeout."""

    def __init__(self, timeout: float, pool_size: int) -> None:
        self.timeout = timeout
        self.pool_size = pool_size
        super().__init__(
            f"cannot check out a connection: none became free within {timeout:g}s "
            f"(pool_size={pool_size})\n\nfix: raise pool_size or pool_timeout, or hold connections for less time"
        )


class SandboxError(AsyncEctoError, RuntimeError):
    """The test sandbox (``asyncecto.testing``) was misused: no sandbox for this task in manual
    mode, a second sandbox, a sandbox used after it ended, or its connection held too long.

    :ivar repo: the repo's name
    """

    def __init__(self, repo: str, problem: str, fix: str) -> None:
        self.repo = repo
        self.problem = problem
        super().__init__(f"{problem} (repo {repo})\n\nfix: {fix}\n\nsee docs/testing.md")


class MultiError(AsyncEctoError):
    """A Multi failed at ``operation``; the transaction was rolled back (or never began).

    :ivar operation: the failed operation's name
    :ivar value: why: the invalid changeset, the ``error`` value, or the ``repo.rollback`` value
    :ivar changes_so_far: the results of the operations that succeeded before it (rolled back
        too), Ecto's ``changes_so_far``; ``changes`` is the same dict

    >>> e = MultiError("post", "boom", {"user": 1})
    >>> e.changes_so_far, e.changes is e.changes_so_far
    ({'user': 1}, True)
    """

    def __init__(self, operation: Any, value: Any, changes_so_far: dict[Any, Any]) -> None:
        self.operation = operation
        self.value = value
        self.changes_so_far = changes_so_far
        done = ", ".join(map(repr, changes_so_far)) or "none"
        super().__init__(
            f"Multi operation {operation!r} failed with {value!r}; nothing was committed "
            f"(changes_so_far, rolled back: {done})"
        )

    @property
    def changes(self) -> dict[Any, Any]:
        """The same as :attr:`changes_so_far` (the earlier name)."""
        return self.changes_so_far

    def __repr__(self) -> str:
        return f"MultiError({self.operation!r}, {self.value!r}, changes_so_far={self.changes_so_far!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.value, self.changes_so_far))


class MigrationError(AsyncEctoError):
    """A migration cannot be loaded, reversed or run (Ecto's ``Ecto.MigrationError``).

    :ivar migration: the file or ``version_name`` concerned, when there is one
    """

    def __init__(self, message: str, migration: str | None = None) -> None:
        self.migration = migration
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.migration))


class CommandError(AsyncEctoError):
    """The ``asyncecto`` command reports this on stderr and exits with ``code``; it never leaves
    ``asyncecto.cli.main``. Code 2 is a usage or configuration problem, code 1 a database or
    migration failure.
    """

    def __init__(self, message: str, code: int = 1) -> None:
        self.code = code
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code))


class Rollback(BaseException):
    """Raised by ``repo.rollback(value)`` to roll back the innermost transaction; caught by it.

    A control-flow signal, not an error: like ``asyncio.CancelledError`` it derives from
    ``BaseException``, so ``except Exception`` (or ``except AsyncEctoError``) around code that
    rolls back cannot swallow it and let the transaction commit.

    :ivar value: what the rolled-back ``repo.transaction(fn)`` call returns
    :ivar repo: the repo whose transaction rolls back (another repo's transactions let it pass)
    """

    def __init__(self, value: Any = None, repo: Any = None) -> None:
        self.value = value
        self.repo = repo
        super().__init__(f"rollback requested with value {value!r} (raised outside a transaction?)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.value, self.repo))


class DatabaseError(AsyncEctoError):
    """The database reported an error, or the link to it failed.

    The driver's exception is kept as ``__cause__``.

    :ivar sqlstate: the SQLSTATE code, when the server sent one
    :ivar constraint_name, table_name, column_name, detail, hint: server fields, when sent
    :ivar fix: what to do about it, when the library knows
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        constraint_name: str | None = None,
        table_name: str | None = None,
        column_name: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        query: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.sqlstate = sqlstate
        self.constraint_name = constraint_name
        self.table_name = table_name
        self.column_name = column_name
        self.detail = detail
        self.hint = hint
        self.query = query
        self.fix = fix
        text = message
        if sqlstate:
            text += f" (SQLSTATE {sqlstate})"
        if detail:
            text += f"\n\ndetail: {detail}"
        if hint:
            text += f"\n\nhint: {hint}"
        if query:
            text += f"\n\nquery: {query}"
        if fix:
            text += f"\n\nfix: {fix}"
        super().__init__(text)


class ConnectionLostError(DatabaseError):
    """The connection to the database broke while it was in use."""


class CommitOutcomeUnknownError(ConnectionLostError):
    """The connection broke while COMMIT was in flight: the transaction may have committed or not.

    Nothing is retried. Read the data back (by a key you chose) to learn what happened.
    """


class DatabaseUnavailableError(DatabaseError):
    """No connection to the database could be opened.

    The message names where (host:port, database, user; never the password) and the fix.

    :ivar host, port, database, user: what the connection was opened to, when known
    """

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        user: str | None = None,
        **fields: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        super().__init__(message, **fields)


class StatementTimeoutError(DatabaseError, TimeoutError):
    """A statement did not finish within its timeout and was cancelled."""


class TransactionAbortedError(DatabaseError):
    """A statement was sent after an earlier one failed in the same transaction (SQLSTATE 25P02).

    PostgreSQL refuses everything until the transaction ends. Run the statement that may fail
    in a nested ``async with repo.transaction():`` (a savepoint) to carry on after its error.
    """


class TransactionConflictError(DatabaseError):
    """The transaction lost a race with another one; running it again may succeed.

    ``repo.transaction(fn, retry=n)`` re-runs ``fn`` on these.
    """


class SerializationError(TransactionConflictError):
    """A serializable or repeatable-read transaction could not be serialized (SQLSTATE 40001)."""


class DeadlockError(TransactionConflictError):
    """The transaction was chosen to break a deadlock (SQLSTATE 40P01)."""


class UniqueViolationError(DatabaseError):
    """A unique constraint was violated (SQLSTATE 23505)."""


class ForeignKeyViolationError(DatabaseError):
    """A foreign key constraint was violated (SQLSTATE 23503 or 23001)."""


class CheckViolationError(DatabaseError):
    """A check constraint was violated (SQLSTATE 23514)."""


class ExclusionViolationError(DatabaseError):
    """An exclusion constraint was violated (SQLSTATE 23P01)."""


class NotNullViolationError(DatabaseError):
    """A NOT NULL column was given no value (SQLSTATE 23502)."""


class StaleStatementError(TransactionConflictError):
    """A prepared statement's result type changed under it ("cached plan must not change result type",
    SQLSTATE 0A000): another process altered a table it reads while this connection kept it prepared.

    Outside a transaction the statement is prepared again and re-run once, so this is only raised
    inside one, whose failure aborted it. Every statement cache was dropped, so running the whole
    transaction again succeeds: ``repo.transaction(fn, retry=1)`` does that.
    """


class SandboxOwnershipTimeoutError(SandboxError):
    """A sandbox was held longer than its ``ownership_timeout`` (Ecto's "owner timed out because
    it owned the connection for longer than Nms"): its transaction was rolled back, its connection
    taken back, and any further use of it raises this.

    :ivar ownership_timeout: the limit, in seconds
    """

    def __init__(self, repo: str, ownership_timeout: float) -> None:
        self.ownership_timeout = ownership_timeout
        super().__init__(
            repo,
            f"the sandbox's owner timed out because it owned the connection for longer than "
            f"ownership_timeout={ownership_timeout:g}s; its transaction was rolled back and its connection taken back",
            "make the test faster, or raise the limit: sandbox(repo, ownership_timeout=...) (None: no limit)",
        )


class FailoverError(ConnectionLostError):
    """The server stopped being the primary during the call: it turned read-only or into a standby
    (SQLSTATE 25006 on a connection the repo opened for ``target_session_attrs=read-write`` or
    ``primary``), or it shut down (57P01/57P02 on such a connection), or the pool had already moved
    to a new primary and closed the connection's server for writes.

    Nothing of the call's transaction was committed (a COMMIT in flight raises
    :class:`CommitOutcomeUnknownError` instead). The pool drains the old server's connections and
    opens new ones through the URL's host list, so running the call again reaches the new primary:
    ``repo.transaction(fn, retry=3)`` does that.

    :ivar server: the server (``host:port``) that stopped being the primary, when known
    """

    def __init__(self, message: str, *, server: str | None = None, **fields: Any) -> None:
        self.server = server
        super().__init__(message, **fields)


class UnsupportedInTransactionPoolingError(AsyncEctoError, RuntimeError):
    """An operation needs a database session of its own, which a repo behind a transaction-mode
    pooler (``pooler="transaction"``: PgBouncer, Supavisor, RDS Proxy …) does not have: each
    transaction may run on another server connection, so session state (a session advisory lock,
    a session-level ``SET``, ``LISTEN``) would leak to other clients or be lost.

    Nothing was sent. The fix is to give the repo ``direct_url=`` (a URL that reaches PostgreSQL
    itself, not the pooler) for what needs a session, or to use the transaction-scoped form.

    :ivar operation: what was refused (``"LISTEN"``, ``"a session advisory lock"`` …)
    :ivar reason: why it cannot work through the pooler
    :ivar fix: what to do instead
    :ivar query: the SQL refused, when it was SQL
    """

    def __init__(self, operation: str, reason: str, fix: str, query: str | None = None) -> None:
        self.operation = operation
        self.reason = reason
        self.fix = fix
        self.query = query
        text = f"cannot run {operation} through a transaction-mode pooler (pooler='transaction'): {reason}"
        if query:
            text += f"\n\nquery: {query}"
        super().__init__(f"{text}\n\nfix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.reason, self.fix, self.query))
