"""The PostgreSQL adapter: the only code that knows SQL text or imports asyncpg."""

from __future__ import annotations

import asyncio
import datetime as _dt
import decimal
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from asyncecto.adapters import (
    Connection,
    ConnectionSettings,
    ListenConnection,
    NotificationCallback,
    RepoAdapter,
    Worker,
)
from asyncecto.errors import AsyncEctoError, DatabaseError
from asyncecto.query._on_conflict import ConflictPlan
from asyncecto.query._plan import Planned

from . import _connection, _insert_sql, _migration, _raw, _sql, _transaction
from ._connection import AfterConnectConnection
from ._ddl import ddl_log, ddl_sql
from ._errors import CONSTRAINT_KINDS, connect_error, translate
from ._listen import PgListenConnection, listen_refused
from ._pool import PgConnection, Pool, expire_statement_caches
from ._replicas import PgReplication

if TYPE_CHECKING:
    from asyncecto.migration._dsl import Command

__all__ = ("AfterConnectConnection", "PgConnection", "PostgresAdapter", "connect_kwargs")


def connect_kwargs(settings: ConnectionSettings) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect`` (the pool adds its own on top)."""
    kwargs: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "password": settings.password,
        "database": settings.database,
    }
    if settings.endpoints:  # libpq multi-host: asyncpg tries them in order
        kwargs["host"] = [host for host, _ in settings.endpoints]
        kwargs["port"] = [port for _, port in settings.endpoints]
    if settings.target_session_attrs is not None:
        kwargs["target_session_attrs"] = settings.target_session_attrs
    if settings.ssl is not None:
        kwargs["ssl"] = settings.ssl
    kwargs["timeout"] = settings.connect_timeout
    kwargs["statement_cache_size"] = settings.statement_cache_size
    if settings.pooler == "transaction" and not settings.prepared_statements:
        # a transaction pooler hands each transaction to any server connection: a statement prepared
        # by name on one is unknown on the next ("prepared statement __asyncpg_stmt_N__ does not exist");
        # without the cache asyncpg parses every statement unnamed, in the same exchange as its execution
        kwargs["statement_cache_size"] = 0
    if settings.server_settings:
        kwargs["server_settings"] = dict(settings.server_settings)
    return kwargs


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {value!r} as JSON")


#: values asyncpg's array encoder takes for a dimension, not an element
_NESTING = (list, tuple)


def _may_nest(typ: Any, db_type: str) -> bool:
    """Whether a type's dumped values may be lists or tuples: JSON (``embeds_many``) and user types."""
    return db_type in ("json", "jsonb") or not type(typ).__module__.startswith("asyncecto.")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def _json_encode(value: Any) -> bytes:
    return _json_dumps(value).encode()


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + _json_dumps(value).encode()  # jsonb's binary format: a version byte, then the text


def _jsonb_decode(data: bytes) -> Any:
    if data[:1] != b"\x01":
        raise ValueError(f"unsupported jsonb binary format version {data[:1]!r}")
    return json.loads(data[1:])


async def _close(raw: asyncpg.Connection) -> None:
    """Close politely (1 s at most); terminated if that fails or the caller is cancelled meanwhile,
    so no socket is left open (asyncpg's "unclosed connection" warning)."""
    try:
        await raw.close(timeout=1.0)
    except Exception:  # the work is done; a failed goodbye only leaves the socket to cut
        pass
    finally:
        if not raw.is_closed():
            raw.terminate()


#: connects whose caller was cancelled, left to end on their own (their connection is then closed)
_orphans: set[asyncio.Task[asyncpg.Connection]] = set()


async def _connect_raw(kwargs: dict[str, Any]) -> asyncpg.Connection:
    """``asyncpg.connect(**kwargs)``, never interrupted midway: asyncpg cancelled during its SSL
    negotiation (``sslmode=prefer``, the default) or between the hosts of a list leaves a future whose
    error nobody retrieves ("Future exception was never retrieved … unexpected connection_lost() call").
    A cancelled caller is cancelled at once; the connect ends on its own, within ``connect_timeout``,
    and its connection is closed."""
    task = asyncio.ensure_future(asyncpg.connect(**kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        _orphans.add(task)
        task.add_done_callback(_close_orphan)
        raise


def _close_orphan(task: asyncio.Task[asyncpg.Connection]) -> None:
    _orphans.discard(task)
    if not task.cancelled() and task.exception() is None:
        task.result().terminate()


class PostgresAdapter(RepoAdapter):
    """PostgreSQL through asyncpg, with asyncecto's own pool."""

    #: WAL positions for read replicas' read-your-writes (``asyncecto.repo._routing``)
    replication = PgReplication()

    def __init__(self, config: ConnectionSettings) -> None:
        self.config = config
        self.pool = Pool(
            self._connect,
            size=config.pool_size,
            min_size=config.min_size,
            timeout=config.pool_timeout,
            max_idle_time=config.max_idle_time,
            reset_timeout=config.cleanup_timeout,
            busy_limit=self._busy_limit(),
            # asyncpg reads PGTARGETSESSIONATTRS when the repo sets none, as libpq: so does the pool
            target_session_attrs=config.target_session_attrs or os.environ.get("PGTARGETSESSIONATTRS"),
        )
        if config.pooler == "transaction":
            self.pool.pooled = True
            self.pool.default_timeout = config.timeout

    def _busy_limit(self) -> float | None:
        """How long a statement may go unanswered before its link is taken for half-open: the
        server's own limit (``timeout``) plus ``cleanup_timeout``; ``None`` when no limit is known."""
        settings = self.config.server_settings
        if self.config.timeout is None or "statement_timeout" in settings:
            return None
        return self.config.timeout + self.config.cleanup_timeout

    async def _connect(
        self, database: str | None = None, config: ConnectionSettings | None = None
    ) -> asyncpg.Connection:
        config = self.config if config is None else config
        kwargs = connect_kwargs(config)
        settings = dict(kwargs.get("server_settings") or {})
        if config.pooler == "transaction":
            # no startup statement_timeout: PgBouncer refuses the parameter ("unsupported startup
            # parameter"), and a session setting would not follow the transactions anyway; the
            # connection sets it per transaction (SET LOCAL) and limits statements outside one itself
            if database is not None:
                kwargs["database"] = database
        elif database is not None:
            # maintenance (CREATE/DROP DATABASE) has no statement timeout: it waits for a
            # checkpoint, which on a busy server outlasts any query's limit
            kwargs["database"] = database
            settings["statement_timeout"] = "0"
            kwargs["server_settings"] = settings
        elif config.timeout is not None and "statement_timeout" not in settings:
            # the default timeout is enforced by the server: no client timer per query
            settings["statement_timeout"] = str(max(1, round(config.timeout * 1000)))
            kwargs["server_settings"] = settings
        # no per-statement expiry timers in asyncpg's statement cache: each timer kept a copy of the
        # task's context, and through it a dead connection, alive for 300 s (idle connections are
        # closed after max_idle_time anyway, which empties their cache)
        kwargs["max_cached_statement_lifetime"] = 0
        try:
            raw = await _connect_raw(kwargs)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise connect_error(exc, config, kwargs["database"]) from exc
        except asyncpg.exceptions.TargetServerAttributeNotMatched as exc:  # no host is the kind asked for
            raise connect_error(exc, config, kwargs["database"]) from exc
        try:
            # binary codecs: COPY (insert_all) has no text fallback
            await raw.set_type_codec(
                "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
            )
            await raw.set_type_codec(
                "json", encoder=_json_encode, decoder=json.loads, schema="pg_catalog", format="binary"
            )
            if config.after_connect is not None and database is None:
                await _connection.after_connect(raw, config.after_connect, config.pooler == "transaction")
        except BaseException:
            raw.terminate()
            raise
        return raw

    # -- Adapter ----------------------------------------------------------------
    async def start(self) -> None:
        await self.pool.fill()

    async def stop(self, timeout: float) -> None:
        await self.pool.close(timeout)

    async def checkout(self, timeout: float | None = None) -> PgConnection:
        return await self.pool.acquire(timeout)

    def checkout_nowait(self) -> PgConnection | None:
        return self.pool.acquire_nowait()

    async def checkin(self, conn: Connection) -> None:
        assert isinstance(conn, PgConnection)
        await self.pool.release(conn)

    def checkin_nowait(self, conn: Connection) -> bool:
        return self.pool.release_nowait(conn)  # type: ignore[arg-type]

    def workers(self) -> list[Worker]:
        return [("pool_upkeep", self.pool.upkeep)]

    def disconnect_all(self, interval: float) -> None:
        self.pool.disconnect_all(interval)

    def watch_failover(self, listener: Callable[[Any], Any]) -> None:
        self.pool.failover.listener = listener

    def stats(self) -> dict[str, int]:
        return {
            "size": self.pool.total,
            "idle": self.pool.idle,
            "in_use": self.pool.in_use,
            **self.pool.stats.as_dict(),
        }

    # -- QueryableAdapter / SchemaAdapter ---------------------------------------
    def compile(self, planned: Planned) -> str:
        if planned.op == "update_all":
            return _sql.update_all_sql(planned)
        if planned.op == "delete_all":
            return _sql.delete_all_sql(planned)
        if planned.op == "exists":
            return _sql.exists_sql(planned)
        return _sql.all_sql(planned)

    def compile_aggregate(self, planned: Planned, func: str, column: int | None, wrap: bool) -> str:
        return _sql.aggregate_sql(planned, func, column, wrap)

    def per_parent_sql(self, inner: str, key_param: int, key_type: Any, alias: str) -> str:
        return _sql.per_parent_sql(inner, key_param, key_type, alias)

    def explain_sql(self, sql: str, options: Mapping[str, object]) -> str:
        return _raw.explain_sql(sql, options)

    def explain_generic_sql(self, sql: str, nparams: int, options: Mapping[str, object]) -> list[str]:
        return _raw.explain_generic_sql(sql, nparams, options)

    def rows_of_status(self, status: str, returned: int) -> int:
        return _raw.rows_of_status(status, returned)

    def insert_sql(self, prefix: str | None, table: str, columns: Sequence[str], returning: Sequence[str]) -> str:
        return _sql.insert_sql(prefix, table, columns, returning)

    def update_sql(
        self,
        prefix: str | None,
        table: str,
        columns: Sequence[str],
        filters: Sequence[str],
        returning: Sequence[str],
    ) -> str:
        return _sql.update_sql(prefix, table, columns, filters, returning)

    def delete_sql(self, prefix: str | None, table: str, filters: Sequence[str], returning: Sequence[str]) -> str:
        return _sql.delete_sql(prefix, table, filters, returning)

    def delete_any_sql(self, prefix: str | None, table: str, column: str, any_column: str) -> str:
        return _sql.delete_any_sql(prefix, table, column, any_column)

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
        return _insert_sql.insert_sql(prefix, table, columns, body, returning, conflict, inserted_key)

    def values_body(self, start: int, width: int, count: int) -> str:
        return _insert_sql.param_rows(start, width, count)

    def cells_body(self, rows: Sequence[Sequence[int | str | None]]) -> str:
        return _insert_sql.values_body(rows)

    def unnest_body(self, start: int, types: Sequence[Any], columns: Sequence[Sequence[Any]] = ()) -> str | None:
        db_types = []
        for i, typ in enumerate(types):
            db_type = getattr(typ, "db_type", None)
            # an array column would be flattened by unnest; a type without db_type has no array cast
            if not isinstance(db_type, str) or db_type.endswith("]") or getattr(typ, "of", None) is not None:
                return None
            if i < len(columns) and _may_nest(typ, db_type) and any(isinstance(v, _NESTING) for v in columns[i]):
                return None  # asyncpg reads a list element as a sub-array: a JSON list would be torn apart
            db_types.append(db_type)
        return _insert_sql.unnest_body(start, db_types)

    def select_sql(self, planned: Planned) -> str:
        return _sql.select_sql(planned)

    def copy_sql(self, prefix: str | None, table: str, columns: Sequence[str]) -> str:
        return _insert_sql.copy_sql(prefix, table, columns)

    def copy_out_sql(self, query: str, format: str, header: bool) -> str:
        return _insert_sql.copy_out_sql(query, format, header)

    def copy_stdio(self, sql: str) -> Literal["in", "out"] | None:
        return _insert_sql.copy_stdio(sql)

    def to_constraint(self, exc: AsyncEctoError) -> tuple[str, str] | None:
        kind = CONSTRAINT_KINDS.get(type(exc))  # type: ignore[arg-type]
        if kind is None or not isinstance(exc, DatabaseError):
            return None
        return kind, exc.constraint_name or ""

    # -- MigrationAdapter -------------------------------------------------------
    def ddl_sql(self, command: Command, prefix: str | None) -> list[str]:
        return ddl_sql(command, prefix)

    def ddl_log(self, command: Command, prefix: str | None = None) -> str:
        return ddl_log(command, prefix)

    def create_versions_table_sql(self, prefix: str | None, table: str) -> str:
        return _migration.create_versions_table_sql(prefix, table)

    def lost_create_race(self, exc: DatabaseError) -> bool:
        return _migration.lost_create_race(exc.sqlstate)

    def versions_sql(self, prefix: str | None, table: str) -> str:
        return _migration.versions_sql(prefix, table)

    def insert_version_sql(self, prefix: str | None, table: str) -> str:
        return _migration.insert_version_sql(prefix, table)

    def delete_version_sql(self, prefix: str | None, table: str) -> str:
        return _migration.delete_version_sql(prefix, table)

    def dump_versions_sql(self, prefix: str | None, table: str, versions: Sequence[int]) -> str:
        return _migration.dump_versions_sql(prefix, table, versions)

    def on_notice(self, conn: Any, fn: Callable[[str, str], None]) -> Callable[[], None]:
        return conn.on_notice(fn) if isinstance(conn, PgConnection) else (lambda: None)

    def table_exists_sql(self, prefix: str | None, table: str) -> str:
        return _migration.table_exists_sql(prefix, table)

    def no_statement_timeout_sql(self) -> str:
        return _migration.no_statement_timeout_sql()

    def current_schema_sql(self) -> str:
        return _migration.current_schema_sql()

    def try_lock_sql(self) -> str:
        return _migration.try_lock_sql()

    def lock_sql(self) -> str:
        return _migration.lock_sql()

    def unlock_sql(self) -> str:
        return _migration.unlock_sql()

    def lock_table_sql(self, prefix: str | None, table: str) -> str | None:
        return _migration.lock_table_sql(prefix, table)

    async def expire_statement_caches(self) -> int:
        return await expire_statement_caches()  # every live pool of the process, not only this one

    # -- TransactionAdapter -----------------------------------------------------
    def begin_sql(self, isolation: str | None, read_only: bool) -> str:
        return _transaction.begin_sql(isolation, read_only)

    def commit_sql(self) -> str:
        return "COMMIT"

    def rollback_sql(self) -> str:
        return "ROLLBACK"

    def savepoint_sql(self, name: str) -> str:
        return f"SAVEPOINT {name}"

    def release_sql(self, name: str) -> str:
        return f"RELEASE SAVEPOINT {name}"

    def rollback_to_sql(self, name: str) -> str:
        return f"ROLLBACK TO SAVEPOINT {name}"

    def remark_sql(self, name: str, released: bool) -> str:
        return _transaction.remark_sql(name, released)

    def commit_rolled_back(self, status: str) -> bool:
        return _transaction.commit_rolled_back(status)

    def transaction_control(self, sql: str) -> str | None:
        return _transaction.transaction_control(sql)

    def set_local_sql(self) -> str:
        return _transaction.SET_LOCAL_SQL

    # -- NotificationAdapter ----------------------------------------------------
    def notify_sql(self) -> str:
        return "SELECT pg_notify($1, $2)"

    async def open_listener(
        self, on_notification: NotificationCallback, on_lost: Callable[[], None]
    ) -> ListenConnection:
        config = self.config
        if config.pooler == "transaction":
            if config.direct is None:
                raise listen_refused()
            config = config.direct  # LISTEN needs a session: PostgreSQL itself, not the pooler
        raw = await self._connect(config=config)  # the pool's settings (server_settings, statement_timeout, codecs)
        return PgListenConnection(raw, on_notification, on_lost)

    # -- StorageAdapter ---------------------------------------------------------
    def _maintenance_config(self) -> ConnectionSettings:
        """Where CREATE/DROP DATABASE go: ``direct_url`` when the repo is behind a transaction pooler."""
        direct = self.config.direct
        return direct if self.config.pooler == "transaction" and direct is not None else self.config

    async def _maintenance(self, sql: str) -> bool:
        """Run ``sql`` on the ``postgres`` database; ``False`` if it was already done."""
        raw = await self._connect(database="postgres", config=self._maintenance_config())
        try:
            await raw.execute(sql)
            return True
        except (asyncpg.DuplicateDatabaseError, asyncpg.InvalidCatalogNameError):
            return False
        except asyncpg.PostgresError as exc:
            raise translate(exc, sql) from exc
        finally:
            await _close(raw)

    async def storage_up(self) -> Literal["created", "already_up"]:
        done = await self._maintenance(f"CREATE DATABASE {_sql.quote_name(self.config.database, 'database name')}")
        return "created" if done else "already_up"

    async def storage_down(self, *, force: bool = False) -> Literal["dropped", "already_down"]:
        if force:
            return await self._force_drop()
        done = await self._maintenance(f"DROP DATABASE {_sql.quote_name(self.config.database, 'database name')}")
        return "dropped" if done else "already_down"

    async def _force_drop(self) -> Literal["dropped", "already_down"]:
        """Drop the database, ending the other sessions connected to it (PostgreSQL 13+: ``WITH (FORCE)``)."""
        database = self.config.database
        name = _sql.quote_name(database, "database name")
        raw = await self._connect(database="postgres", config=self._maintenance_config())
        sql = "SELECT 1 FROM pg_database WHERE datname = $1"
        try:
            if await raw.fetchval(sql, database) is None:
                return "already_down"
            sql = "SHOW server_version_num"
            version = int(await raw.fetchval(sql))
            if version >= 130000:
                sql = f"DROP DATABASE {name} WITH (FORCE)"
                await raw.execute(sql)
            else:  # before PostgreSQL 13: end the other sessions, then drop
                sql = (
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()"
                )
                await raw.fetch(sql, database)
                sql = f"DROP DATABASE {name}"
                await raw.execute(sql)
            return "dropped"
        except asyncpg.InvalidCatalogNameError:
            return "already_down"  # dropped by someone else meanwhile
        except asyncpg.PostgresError as exc:
            raise translate(exc, sql) from exc
        finally:
            await _close(raw)
