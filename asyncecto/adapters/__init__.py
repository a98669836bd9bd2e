"""Adapter contracts, split by capability (as Ecto's ``Ecto.Adapter.*`` behaviours).

The Repo talks to a database only through these. A second database is added by
implementing them (:class:`RepoAdapter` gathers them) and registering the class for a URL
scheme with :func:`register_adapter`; nothing above changes. An adapter is built from
:class:`ConnectionSettings` and never imports ``asyncecto.repo``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from asyncecto.errors import ArgumentError, AsyncEctoError, DatabaseError
from asyncecto.query._on_conflict import ConflictPlan
from asyncecto.query._plan import Planned

from ._registry import (
    AdapterFactory,
    adapter_factory,
    known_schemes,
    open_adapter,
    register_adapter,
    unregister_adapter,
)
from ._settings import ConnectionSettings

if TYPE_CHECKING:
    from asyncecto.migration._dsl import Command

__all__ = (
    "Adapter",
    "AdapterFactory",
    "Connection",
    "ConnectionSettings",
    "CopyIn",
    "CopyOut",
    "ListenConnection",
    "MigrationAdapter",
    "NotificationAdapter",
    "NotificationCallback",
    "QueryableAdapter",
    "RepoAdapter",
    "SchemaAdapter",
    "StorageAdapter",
    "TransactionAdapter",
    "Worker",
    "adapter_factory",
    "known_schemes",
    "open_adapter",
    "register_adapter",
    "unregister_adapter",
)

Worker = tuple[str, Callable[[], Awaitable[None]]]

#: called with ``(channel, payload, sender pid)`` for every notification a listener receives
NotificationCallback = Callable[[str, str, int], None]


@attrs.frozen(repr=False)
class CopyIn:
    """Rows for :meth:`Connection.copy`: tuples of driver values, one per column (a list, or an
    iterable or async iterable read as the load goes)."""

    prefix: str | None
    table: str
    columns: tuple[str, ...]
    records: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]]

    def __repr__(self) -> str:  # what telemetry and logs show instead of every row
        return f"<{len(self.records)} rows>" if isinstance(self.records, Sized) else "<rows>"


@attrs.frozen(repr=False)
class CopyOut:
    """What :meth:`Connection.copy_out` runs: a query's rows written to ``sink`` in ``format``."""

    query: str
    params: tuple[Any, ...]
    sink: Callable[[bytes], Awaitable[None]]
    format: str
    header: bool

    def __repr__(self) -> str:
        return f"<copy out, parameters {list(self.params)!r}>"


class Connection(Protocol):
    """A checked-out connection. Every method raises :mod:`asyncecto.errors` only."""

    dirty: bool

    async def fetch(self, sql: str, params: Sequence[Any], timeout: float | None) -> list[Any]: ...
    async def fetchrow(self, sql: str, params: Sequence[Any], timeout: float | None) -> Any: ...
    async def execute(self, sql: str, params: Sequence[Any], timeout: float | None) -> int: ...
    async def command(self, sql: str, params: Sequence[Any], timeout: float | None) -> str: ...
    async def uncached(self, kind: str, sql: str, params: Sequence[Any], timeout: float | None) -> Any:
        """``fetch``/``fetchrow``/``execute`` without the prepared-statement cache (``query_cache=False``)."""
        ...

    async def query(
        self, sql: str, params: Sequence[Any], timeout: float | None
    ) -> tuple[list[str], list[Any], str]: ...
    async def set_statement_timeout(self, seconds: float | None) -> None: ...
    def batches(
        self, sql: str, params: Sequence[Any], size: int, timeout: float | None = None
    ) -> AsyncGenerator[list[Any], None]: ...
    async def copy(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Bulk-load ``params[0]`` (a :class:`CopyIn`); ``sql`` is the statement's text for telemetry."""
        ...

    async def copy_out(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        """Write ``params[0]``'s (a :class:`CopyOut`) rows to its sink; the number of rows."""
        ...

    def in_transaction(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def terminate(self) -> None: ...


class Adapter(ABC):
    """Connection lifecycle: start a pool, check connections out and in, stop."""

    @abstractmethod
    async def start(self) -> None:
        """Open the pool's first connections; raise ``DatabaseUnavailableError`` if none can be opened."""

    @abstractmethod
    async def stop(self, timeout: float) -> None:
        """Wait up to ``timeout`` for checked-out connections, then close everything."""

    @abstractmethod
    async def checkout(self, timeout: float | None = None) -> Connection:
        """A connection for the caller's exclusive use."""

    def checkout_nowait(self) -> Connection | None:
        """A connection at once if one is idle, else ``None`` (then ``await checkout()``)."""
        return None

    @abstractmethod
    async def checkin(self, conn: Connection) -> None:
        """Give a connection back (it is reset only if its state needs it)."""

    def checkin_nowait(self, conn: Connection) -> bool:
        """Give back a connection that needs no reset; ``False`` means ``await checkin()`` instead."""
        return False

    @abstractmethod
    def workers(self) -> list[Worker]:
        """Background loops the Repo's supervisor runs and restarts (pool upkeep …)."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """Pool counters: size, idle, in use, checkouts, resets …"""

    def disconnect_all(self, interval: float) -> None:
        """Close every pooled connection within ``interval`` seconds (a connection in use when its
        moment comes is closed when it is checked in); new ones are opened as needed."""
        raise NotImplementedError(f"{type(self).__name__} cannot disconnect its connections")

    def watch_failover(self, listener: Callable[[Any], Any]) -> None:  # noqa: B027 - optional, no-op by default
        """Call ``listener(event)`` each time the pool moves to a new primary (an adapter without
        failover never calls it). ``event`` has ``old_server``, ``new_server``, ``reason``, ``drained``."""


class QueryableAdapter(ABC):
    """Compiles planned queries (pure; cached by the Repo per plan)."""

    @abstractmethod
    def compile(self, planned: Planned) -> str:
        """SQL for a planned ``all``, ``exists``, ``update_all`` or ``delete_all``."""

    @abstractmethod
    def compile_aggregate(self, planned: Planned, func: str, column: int | None, wrap: bool) -> str:
        """SQL applying ``func`` to the plan's ``column``-th column (``*`` for ``None``); a subquery if ``wrap``."""

    @abstractmethod
    def copy_stdio(self, sql: str) -> Literal["in", "out"] | None:
        """Whether raw ``sql`` is a ``COPY`` streaming rows in from or out to the client (which
        :meth:`Connection.query` cannot carry)."""

    @abstractmethod
    def copy_out_sql(self, query: str, format: str, header: bool) -> str:
        """The text of a copy of ``query``'s rows to the client (for telemetry)."""

    @abstractmethod
    def per_parent_sql(self, inner: str, key_param: int, key_type: Any, alias: str) -> str:
        """SQL running the query ``inner`` once per key of the array parameter ``key_param``
        (a lateral join); ``inner`` reads the current key as ``"<alias>"."k"``."""

    @abstractmethod
    def explain_sql(self, sql: str, options: Mapping[str, object]) -> str:
        """The statement asking for the plan of ``sql`` (``options``: the flags given and ``format``)."""

    def explain_generic_sql(self, sql: str, nparams: int, options: Mapping[str, object]) -> list[str]:
        """The statements (run in one transaction) explaining ``sql``'s generic plan."""
        raise NotImplementedError(f"{type(self).__name__} cannot explain a generic plan")

    @abstractmethod
    def rows_of_status(self, status: str, returned: int) -> int:
        """How many rows a raw statement returned or affected, from its command status and the
        ``returned`` rows that came back."""


class SchemaAdapter(ABC):
    """Single-row writes: SQL text and the constraint a failure violated."""

    @abstractmethod
    def insert_sql(self, prefix: str | None, table: str, columns: Sequence[str], returning: Sequence[str]) -> str: ...

    @abstractmethod
    def update_sql(
        self,
        prefix: str | None,
        table: str,
        columns: Sequence[str],
        filters: Sequence[str],
        returning: Sequence[str],
    ) -> str: ...

    @abstractmethod
    def delete_sql(self, prefix: str | None, table: str, filters: Sequence[str], returning: Sequence[str]) -> str: ...

    def delete_any_sql(self, prefix: str | None, table: str, column: str, any_column: str) -> str:
        """``DELETE`` of the rows whose ``column`` is ``$1`` and ``any_column`` one of the array ``$2``
        (a many_to_many relation's unlinked join rows, in one statement)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete rows by a list of keys")

    max_params: int = 32767
    """The most parameters one statement may carry."""

    @abstractmethod
    def insert_rows_sql(
        self,
        prefix: str | None,
        table: str,
        columns: Sequence[str],
        body: str,
        returning: Sequence[str],
        conflict: ConflictPlan | None,
        inserted_key: Sequence[str] | None,
    ) -> str:
        """An ``INSERT`` of ``body`` (from the ``*_body`` methods or :meth:`select_sql`) with its upsert
        clause; with ``inserted_key`` (columns identifying a row, maybe empty) it returns a last column
        telling a new row from an updated one, also on partitioned tables."""

    @abstractmethod
    def values_body(self, start: int, width: int, count: int) -> str:
        """``count`` rows of ``width`` parameters numbered from ``start``."""

    @abstractmethod
    def cells_body(self, rows: Sequence[Sequence[int | str | None]]) -> str:
        """Rows whose cells are parameter numbers, SQL text (subqueries) or ``None`` (the column's default)."""

    @abstractmethod
    def unnest_body(self, start: int, types: Sequence[Any], columns: Sequence[Sequence[Any]] = ()) -> str | None:
        """Every row from one array parameter per column, or ``None`` when a type, or a dumped value
        in ``columns`` (the arrays to send, in the order of ``types``), cannot be sent so."""

    @abstractmethod
    def select_sql(self, planned: Planned) -> str:
        """A planned query's ``SELECT`` for embedding in an insert."""

    @abstractmethod
    def copy_sql(self, prefix: str | None, table: str, columns: Sequence[str]) -> str:
        """The text of a bulk load (for telemetry); the load itself is :meth:`Connection.copy`."""

    @abstractmethod
    def to_constraint(self, exc: AsyncEctoError) -> tuple[str, str] | None:
        """``(kind, name)`` when ``exc`` is a constraint violation (kind: unique, foreign_key, check, exclusion)."""


class MigrationAdapter(ABC):
    """What the migrator runs: the migrations' DDL, the versions table, the migration lock.

    The ``*_sql`` methods are pure (SQL text); the migrator runs it through the Repo.
    """

    def on_notice(self, conn: Connection, fn: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``fn(severity, message)`` for the server's notices on ``conn`` until the returned
        function is called (adapters without notices ignore ``fn``)."""
        return lambda: None

    @abstractmethod
    def ddl_sql(self, command: Command, prefix: str | None) -> list[str]:
        """The statements for one migration command; ``prefix`` (the migrator's) applies to objects without one."""

    @abstractmethod
    def ddl_log(self, command: Command, prefix: str | None = None) -> str:
        """The line the migrator logs for ``command``, in the DSL's form (``create table posts``)."""

    @abstractmethod
    def create_versions_table_sql(self, prefix: str | None, table: str) -> str:
        """Create the versions table (``version``, ``inserted_at``) unless it exists."""

    def lost_create_race(self, exc: DatabaseError) -> bool:
        """Whether ``exc``, raised by :meth:`create_versions_table_sql`, means another session
        created the table at the same moment (the table is there: go on)."""
        return False

    @abstractmethod
    def versions_sql(self, prefix: str | None, table: str) -> str:
        """The applied versions, ascending: rows of one integer column."""

    @abstractmethod
    def insert_version_sql(self, prefix: str | None, table: str) -> str:
        """Record the version of parameter 1 as applied, now."""

    @abstractmethod
    def delete_version_sql(self, prefix: str | None, table: str) -> str:
        """Forget the version of parameter 1."""

    @abstractmethod
    def dump_versions_sql(self, prefix: str | None, table: str, versions: Sequence[int]) -> str:
        """The statement a structure dump ends with to record ``versions`` (literals, no parameters), or ``""``."""

    @abstractmethod
    def table_exists_sql(self, prefix: str | None, table: str) -> str:
        """One row, one boolean column: whether ``table`` exists."""

    @abstractmethod
    def no_statement_timeout_sql(self) -> str:
        """Lift the statement timeout for the rest of the session (DDL runs unbounded)."""

    @abstractmethod
    def current_schema_sql(self) -> str:
        """One row, one text column: the schema names without a prefix resolve to (it keys the lock)."""

    @abstractmethod
    def try_lock_sql(self) -> str:
        """Take the session lock of the integer key of parameter 1 if free: one row, one boolean column."""

    @abstractmethod
    def lock_sql(self) -> str:
        """Wait for the session lock of the integer key of parameter 1."""

    @abstractmethod
    def unlock_sql(self) -> str:
        """Release the session lock of the integer key of parameter 1."""

    def lock_table_sql(self, prefix: str | None, table: str) -> str | None:
        """Inside a transaction, lock the versions table against other migrators until its end (the
        ``migration_lock="table"`` mode, Ecto's default lock); ``None``: the database has no such lock."""
        return None

    @abstractmethod
    async def expire_statement_caches(self) -> int:
        """Forget prepared statements on every connection of the process (after DDL); how many were expired."""


class TransactionAdapter(ABC):
    """Transaction control, as Ecto's ``Ecto.Adapter.Transaction``.

    The ``*_sql`` methods are pure (statement text); the Repo runs them on the transaction's
    connection through its statement path (telemetry, deadlines, cancellation handling), and
    the test sandbox runs them on its own connection.
    """

    isolation_levels: tuple[str, ...] = ("read_committed", "repeatable_read", "serializable", "read_uncommitted")
    """The isolation levels :meth:`begin_sql` takes."""

    @abstractmethod
    def begin_sql(self, isolation: str | None, read_only: bool) -> str:
        """Begin a transaction (at ``isolation``, one of :attr:`isolation_levels`, if given)."""

    @abstractmethod
    def commit_sql(self) -> str: ...

    @abstractmethod
    def rollback_sql(self) -> str: ...

    @abstractmethod
    def savepoint_sql(self, name: str) -> str: ...

    @abstractmethod
    def release_sql(self, name: str) -> str:
        """Release savepoint ``name``, keeping its work in the enclosing transaction."""

    @abstractmethod
    def rollback_to_sql(self, name: str) -> str:
        """Undo the work since savepoint ``name`` (which stays set)."""

    @abstractmethod
    def remark_sql(self, name: str, released: bool) -> str:
        """Set savepoint ``name`` again in one round trip: release the previous one of that name
        first unless ``released`` (the sandbox's per-statement mark)."""

    @abstractmethod
    def commit_rolled_back(self, status: str) -> bool:
        """Whether ``status``, the command status a commit returned, says the transaction was rolled
        back instead (a statement in it had failed)."""

    @abstractmethod
    def transaction_control(self, sql: str) -> str | None:
        """The command word when raw ``sql`` would begin, end or prepare a transaction, else ``None``."""

    def set_local_sql(self) -> str:
        """Set the setting named by parameter 1 to the text of parameter 2 until the end of the
        current transaction only (``repo.tenant``: nothing outlives the transaction, so it is safe
        behind a transaction pooler). An adapter without transaction-local settings keeps this
        default, and ``repo.tenant`` is refused on it."""
        raise ArgumentError(
            f"{type(self).__name__} has no transaction-local settings, so repo.tenant(...) cannot be used "
            "with it; filter by tenant in prepare_query instead"
        )


class StorageAdapter(ABC):
    """Creating and dropping the database itself."""

    @abstractmethod
    async def storage_up(self) -> Literal["created", "already_up"]: ...

    @abstractmethod
    async def storage_down(self, *, force: bool = False) -> Literal["dropped", "already_down"]:
        """Drop the database; ``force`` ends the other sessions connected to it first."""


class ListenConnection(Protocol):
    """A dedicated connection that receives notifications. Every method raises :mod:`asyncecto.errors` only.

    :ivar pid: the server process serving it
    """

    pid: int

    async def listen(self, channel: str, timeout: float) -> None:
        """Start receiving ``channel``'s notifications (the name is matched exactly, case included)."""

    async def unlisten(self, channel: str, timeout: float) -> None:
        """Stop receiving ``channel``'s notifications."""

    async def ping(self, timeout: float) -> None:
        """A round trip to the server; raises if it does not answer within ``timeout``."""

    async def close(self, timeout: float) -> None:
        """Close politely within ``timeout``, else terminate."""

    def terminate(self) -> None:
        """Close at once, sending nothing (the link may be dead)."""

    def is_closed(self) -> bool: ...


class NotificationAdapter(ABC):
    """Publish/subscribe on the database (PostgreSQL's ``LISTEN``/``NOTIFY``)."""

    max_channel_bytes: int = 63
    """The longest channel name, in bytes (UTF-8)."""

    max_payload_bytes: int = 7999
    """The longest payload, in bytes (UTF-8)."""

    @abstractmethod
    def notify_sql(self) -> str:
        """Send the payload of parameter 2 on the channel of parameter 1 (delivered at commit)."""

    @abstractmethod
    async def open_listener(
        self, on_notification: NotificationCallback, on_lost: Callable[[], None]
    ) -> ListenConnection:
        """A new connection outside the pool for receiving notifications; ``on_lost`` is called once
        when it closes for any reason."""


class RepoAdapter(
    Adapter,
    QueryableAdapter,
    SchemaAdapter,
    TransactionAdapter,
    MigrationAdapter,
    StorageAdapter,
    NotificationAdapter,
):
    """Every capability a Repo uses; an adapter class registered for a scheme implements this,
    built as ``AdapterClass(settings: ConnectionSettings)``."""
