"""The migrator: ``schema_migrations``, the migration lock, and running migrations up and down.

Each migration runs on one connection (a checkout), in a transaction of its own that also
inserts (up) or deletes (down) its row in ``schema_migrations``: a migration that fails half-way
leaves neither its DDL nor its row. ``disable_ddl_transaction = True`` runs the statements one by
one outside a transaction (``CREATE INDEX CONCURRENTLY``) and records the row after the last.

While migrations run, a lock is held on a second connection of the pool (hence ``pool_size >= 2``),
so two migrators of one database and prefix never run at once (``migration_lock``):

- ``"advisory"`` (the default): a PostgreSQL session advisory lock whose key derives from the
  ``schema_migrations`` table's schema and name;
- ``"table"`` (Ecto's default lock): a transaction holding ``LOCK TABLE schema_migrations IN SHARE
  UPDATE EXCLUSIVE MODE`` until the migrations are done. It needs no session, so it works behind a
  transaction pooler: the default for a repo with ``pooler="transaction"`` and no ``direct_url``
  (a session advisory lock through the pooler is refused).

After taking the lock the migrator reads the applied versions again: what the other migrator
applied is not run twice. A repo with ``pooler="transaction"`` and a ``direct_url`` runs its
migrations on a repo of its own on ``direct_url`` (a session per connection, as DDL wants).

After each migration, the prepared-statement caches of every live pool of the process are
expired, so a statement prepared before an ``ALTER`` does not fail with "cached plan must not
change result type".
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

import attrs
from typing_extensions import Unpack

from asyncecto._aio import finish
from asyncecto._executor import DEFAULT, executor_of
from asyncecto._names import check_optional_name
from asyncecto.errors import ArgumentError, DatabaseError, MigrationError, UnsupportedInTransactionPoolingError

from ._dsl import CreateIndex, DropIndex, Execute, Flush, collect_result, running
from ._files import FILE_NAME, Migration, MigrationFile, find_migrations, from_module, load_file
from ._reverse import reverse
from ._settings import MigrationSettings, Settings, read_settings, using

if TYPE_CHECKING:
    from asyncecto.adapters import Connection
    from asyncecto.repo import Repo

_P = ParamSpec("_P")
_T = TypeVar("_T")

__all__ = ("FILE_NOT_FOUND", "down", "migrated_versions", "migrations", "run", "up")

logger = logging.getLogger("asyncecto.migration")

#: the name ``migrations()`` shows for an applied version whose file is gone
FILE_NOT_FOUND = "** FILE NOT FOUND **"

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
LogOption = str | int | bool


# -- helpers ----------------------------------------------------------------------------------------


_NOTICE_LEVELS = {
    "WARNING": logging.WARNING,
    "DEBUG": logging.DEBUG,
    "LOG": logging.DEBUG,
    "ERROR": logging.ERROR,
}


class _Log:
    """Migration log lines at the level of ``log=`` (``"info"`` by default; ``False`` for none)."""

    def __init__(self, log: LogOption) -> None:
        if log is False:
            self.level: int | None = None
        elif log is True:
            self.level = logging.INFO
        elif isinstance(log, int):
            self.level = log
        elif isinstance(log, str) and isinstance(logging.getLevelName(log.upper()), int):
            self.level = logging.getLevelName(log.upper())
        else:
            raise ArgumentError(f"log= must be a level name such as 'info', a level number or False, got {log!r}")

    def __call__(self, message: str) -> None:
        if self.level is not None:
            logger.log(self.level, "%s", message)

    def notice(self, severity: str, message: str) -> None:
        """A server notice raised by a migration, at the level Ecto gives its severity (NOTICE and
        INFO at info, WARNING at warning, DEBUG and LOG at debug); none when ``log=False``."""
        if self.level is not None:
            logger.log(_NOTICE_LEVELS.get(severity.upper(), logging.INFO), "%s", message)

    def sql(self, sql: str, params: Sequence[object] = ()) -> None:
        """A statement and its parameters, as the repo's query log shows them."""
        if self.level is not None:
            logger.log(self.level, "%s %s", sql, list(params))


@attrs.frozen
class _Ctx:
    """What one call of the migrator runs with: its prefix, configuration and logs."""

    prefix: str | None
    settings: Settings
    log: _Log
    migrations_sql: _Log  # every statement a migration runs (log_migrations_sql)
    migrator_sql: _Log  # the migrator's own statements (log_migrator_sql)
    strict_version_order: bool = False

    @property
    def source(self) -> str:
        return self.settings.source

    @property
    def ddl_prefix(self) -> str | None:
        """The prefix of a migration's objects without one: the migrator's, else migration_default_prefix."""
        return self.prefix if self.prefix is not None else self.settings.default_prefix


def _sql_level(name: str, value: LogOption, log: _Log) -> _Log:
    """``log_migrations_sql``/``log_migrator_sql``: False (default), True (the level of ``log=``, else
    info) or a level."""
    if value is True:
        return _Log(log.level if log.level is not None else logging.INFO)
    try:
        return _Log(value)
    except ArgumentError:
        raise ArgumentError(
            f"{name}= must be True, False, a level name such as 'info' or a level number, got {value!r}"
        ) from None


def _context(
    prefix: str | None,
    log: LogOption,
    log_migrations_sql: LogOption,
    log_migrator_sql: LogOption,
    settings: MigrationSettings,
    strict_version_order: bool = False,
) -> _Ctx:
    check_optional_name(prefix, "migration prefix")
    if not isinstance(strict_version_order, bool):
        raise ArgumentError(f"strict_version_order= must be True or False, got {strict_version_order!r}")
    logline = _Log(log)
    return _Ctx(
        prefix,
        read_settings(settings),
        logline,
        _sql_level("log_migrations_sql", log_migrations_sql, logline),
        _sql_level("log_migrator_sql", log_migrator_sql, logline),
        strict_version_order,
    )


async def _migrator_run(
    repo: Repo, ctx: _Ctx, kind: str, sql: str, params: list[Any] | tuple[Any, ...], pinned: Connection | None = None
) -> Any:
    """Run one of the migrator's own statements (logged with ``log_migrator_sql``)."""
    ctx.migrator_sql.sql(sql, params)
    result, _ = await executor_of(repo).run(kind, sql, params, DEFAULT, ctx.source, pinned=pinned)
    return result


def _check_repo(repo: Repo) -> None:
    if repo.in_transaction():
        raise MigrationError(
            "cannot run migrations inside a transaction: each migration runs in a transaction of its own\n\n"
            "fix: call the migrator outside `async with repo.transaction():`"
        )


async def _ensure_table(repo: Repo, ctx: _Ctx) -> None:
    sql = executor_of(repo).adapter.create_versions_table_sql(ctx.prefix, ctx.source)
    try:
        await _migrator_run(repo, ctx, "execute", sql, ())
    except DatabaseError as exc:
        if not executor_of(repo).adapter.lost_create_race(exc):  # two migrators creating it at once: it is there
            raise


async def _versions(repo: Repo, ctx: _Ctx, conn: Connection | None = None) -> list[int]:
    sql = executor_of(repo).adapter.versions_sql(ctx.prefix, ctx.source)
    rows = await _migrator_run(repo, ctx, "fetch", sql, (), conn)
    return [int(row[0]) for row in rows]


def _lock_key(schema: str, source: str = "schema_migrations") -> int:
    digest = hashlib.blake2b(f"asyncecto.migrator:{schema}.{source}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _pool_size_error() -> MigrationError:
    return MigrationError(
        "migrations failed to run because the connection pool size is less than 2\n\n"
        "the migrator holds a lock on one connection while it runs the migrations on another, so "
        "that two migrators never apply the same migration\n\n"
        "fix: start the repo with pool_size=2 or more (the CLI's --pool-size), or set "
        "disable_migration_lock = True in the migrations"
    )


def _lock_mode(repo: Repo, ctx: _Ctx) -> str:
    """``"advisory"`` or ``"table"``: the setting, else what works for the repo."""
    pooled = repo.config.transaction_pooled
    mode = ctx.settings.lock or ("table" if pooled else "advisory")
    if mode == "advisory" and pooled:
        raise UnsupportedInTransactionPoolingError(
            "the migration lock (migration_lock='advisory', a session advisory lock)",
            "the lock would stay on whichever server connection the pooler chose, and the unlock may run "
            "on another one",
            "use migration_lock='table' (Ecto's table lock; the default behind a transaction pooler), "
            "or give the repo direct_url= so that migrations run on PostgreSQL itself",
        )
    if mode == "table" and executor_of(repo).adapter.lock_table_sql(ctx.prefix, ctx.source) is None:
        raise ArgumentError("migration_lock='table' is not supported by this database's adapter; use 'advisory'")
    return mode


@contextlib.asynccontextmanager
async def _migration_lock(repo: Repo, ctx: _Ctx, enabled: bool) -> AsyncIterator[Connection | None]:
    """Hold the migration lock on a connection of its own for the block; yield that connection."""
    if not enabled:
        yield None
        return
    mode = _lock_mode(repo, ctx)
    if repo.config.pool_size < 2:
        raise _pool_size_error()
    if mode == "table":
        async with _table_lock(repo, ctx) as conn:
            yield conn
        return
    adapter = executor_of(repo).adapter
    conn = adapter.checkout_nowait() or await adapter.checkout()
    try:
        # "query" marks the connection for a reset on release, which also drops any advisory lock left
        if ctx.prefix is None:
            sql = adapter.current_schema_sql()
            _, rows, _ = await _migrator_run(repo, ctx, "query", sql, [], conn)
            schema = str(rows[0][0])
        else:
            schema = ctx.prefix
        key = _lock_key(schema, ctx.source)
        _, rows, _ = await _migrator_run(repo, ctx, "query", adapter.try_lock_sql(), [key], conn)
        if not rows[0][0]:
            ctx.log(f"waiting for the migration lock on {schema}.{ctx.source}: another migrator is running")
            # wait as long as the other migrator runs: no server-side statement_timeout (the
            # repo's, a role's or a database's) may cancel the wait; the reset on release restores it
            await _migrator_run(repo, ctx, "query", adapter.no_statement_timeout_sql(), [], conn)
            ctx.migrator_sql.sql(adapter.lock_sql(), [key])
            await executor_of(repo).run("query", adapter.lock_sql(), [key], None, ctx.source, pinned=conn)
        try:
            yield conn
        finally:

            async def unlock() -> None:
                with contextlib.suppress(Exception):  # on failure the reset on release unlocks
                    await _migrator_run(repo, ctx, "query", adapter.unlock_sql(), [key], conn)

            await finish(unlock())
    finally:
        await finish(adapter.checkin(conn))


def _warn_table_lock(repo: Repo, ctx: _Ctx, outside: list[Migration]) -> None:
    """Under the table lock, a migration outside a transaction (``CREATE INDEX CONCURRENTLY``) waits
    for every transaction open when it starts, the lock's own too: it would wait forever."""
    if outside and _lock_mode(repo, ctx) == "table":
        names = ", ".join(f"{m.version}_{m.name}" for m in outside)
        logger.warning(
            "migration_lock='table' holds a transaction open while %s run(s) outside one: a statement that "
            "waits for older transactions (CREATE INDEX CONCURRENTLY) would wait for it forever; run such a "
            "migration on its own with disable_migration_lock = True (as with Ecto's table lock), or "
            "use migration_lock='advisory' (through direct_url behind a transaction pooler)",
            names,
        )


@contextlib.asynccontextmanager
async def _table_lock(repo: Repo, ctx: _Ctx) -> AsyncIterator[Connection]:
    """Ecto's table lock: a transaction on a connection of its own locks the versions table in SHARE
    UPDATE EXCLUSIVE mode (which only another such lock waits for) until the block ends."""
    adapter = executor_of(repo).adapter
    lock = adapter.lock_table_sql(ctx.prefix, ctx.source)
    assert lock is not None  # checked by _lock_mode
    conn = adapter.checkout_nowait() or await adapter.checkout()
    try:
        # wait as long as the other migrator runs: no statement_timeout may cancel the LOCK (behind a
        # transaction pooler the BEGIN carries it as SET LOCAL); the release restores the repo's
        await conn.set_statement_timeout(None)
        await _migrator_run(repo, ctx, "command", adapter.begin_sql(None, False), [], conn)
        await _migrator_run(repo, ctx, "command", lock, [], conn)
        try:
            yield conn
        finally:

            async def commit() -> None:
                with contextlib.suppress(Exception):  # on failure the release rolls back
                    await _migrator_run(repo, ctx, "command", adapter.commit_sql(), [], conn)

            await finish(commit())
    finally:
        await finish(adapter.checkin(conn))


# -- running one migration ----------------------------------------------------------------------------


async def _run_callback(
    repo: Repo,
    fn: Callable[[], object],
    reverse_it: bool,
    ctx: _Ctx,
    migration: Migration | None = None,
    op: str = "",
) -> None:
    """Collect the commands ``fn`` issues (or the SQL it returns), reversed for ``change()`` going
    down, and run them in order. For a ``migration``'s own ``up``/``down``/``change``, a function
    that issued nothing and returned ``None`` is refused: it forgot its ``return``."""
    commands, did_nothing = collect_result(fn)
    if did_nothing and migration is not None:
        raise MigrationError(
            f"migration {migration.version}_{migration.name} ({migration.source}): {op}() returned nothing; "
            "return the SQL string or a list of strings\n\n"
            f"fix: `return` the SQL from {op}(), or issue migration commands in it (create(...), execute(...)); "
            "`return []` for a migration that does nothing on purpose",
            f"{migration.version}_{migration.name}",
        )
    if reverse_it:
        commands = reverse(commands)
    adapter = executor_of(repo).adapter
    default = DEFAULT
    prefix = ctx.ddl_prefix
    # every statement is written before the first runs: a name the adapter refuses (too long for
    # PostgreSQL, say) stops the migration before any DDL, not halfway through it
    statements = [
        [] if isinstance(command, Flush) or callable(getattr(command, "up", None)) else adapter.ddl_sql(command, prefix)
        for command in commands
    ]
    for command, sqls in zip(commands, statements, strict=True):
        if isinstance(command, Flush):
            continue  # commands run in order, each to its end: everything before it is done
        ctx.log(adapter.ddl_log(command, prefix))
        if (
            isinstance(command, CreateIndex | DropIndex)
            and command.index.concurrently
            and migration is not None
            and not migration.disable_ddl_transaction
        ):
            logger.warning(
                "Migration %s has set index `%s` to concurrently but did not disable ddl transaction. "
                "Please set:\n\n    disable_ddl_transaction = True\n",
                f"{migration.version}_{migration.name}",
                command.index.name,
            )
        if isinstance(command, Execute) and callable(command.up):
            result = command.up(repo)  # a data migration, run at its turn (async, or a plain function)
            if inspect.isawaitable(result):
                await result
            continue
        for sql in sqls:
            ctx.migrations_sql.sql(sql)
            await executor_of(repo).run("execute", sql, (), default, None)


def _operation(migration: Migration, direction: str) -> tuple[str, Callable[..., Any], bool]:
    """The callback to run: ``(name, fn, reverse)``; ``up``/``down`` win over ``change``."""
    fn = migration.callback(direction)
    if fn is not None:
        return direction, fn, False
    change = migration.callback("change")
    if change is not None:
        return "change", change, direction == "down"
    raise MigrationError(
        f"migration {migration.version}_{migration.name} ({migration.source}) defines up() but no down(), "
        "so it cannot be rolled back\n\nfix: add a down() that undoes up()",
        f"{migration.version}_{migration.name}",
    )


async def _hook(repo: Repo, migration: Migration, name: str, ctx: _Ctx) -> None:
    """``after_begin()`` / ``before_commit()``: inside the migration's transaction, both directions."""
    callback = migration.callback(name)
    if callback is not None:
        await _run_callback(repo, callback, False, ctx)


async def _record(repo: Repo, version: int, direction: str, ctx: _Ctx) -> None:
    if direction == "up":
        sql = executor_of(repo).adapter.insert_version_sql(ctx.prefix, ctx.source)
    else:
        sql = executor_of(repo).adapter.delete_version_sql(ctx.prefix, ctx.source)
    await _migrator_run(repo, ctx, "execute", sql, [version])


def _version_order(version: int, applied: Iterable[int], ctx: _Ctx) -> None:
    """Going up, a version older than the latest applied one: Ecto's warning, or its error with
    ``strict_version_order`` (then nothing runs)."""
    latest = max(applied, default=None)
    if latest is None or version > latest:
        return
    message = (
        f"You are running migration {version} but an older migration with version {latest} has already run.\n\n"
        f"This can be an issue if you have already ran {latest} in production because a new deployment may "
        f"migrate {version} but a rollback command would revert {latest} instead of {version}.\n\n"
        f"If this can be an issue, we recommend to rollback {version} and change it to a version later than {latest}."
    )
    if ctx.strict_version_order:
        raise MigrationError(message, str(version))
    logger.warning("%s", message)


async def _run_one(repo: Repo, migration: Migration, direction: str, ctx: _Ctx) -> None:
    op, fn, reverse_it = _operation(migration, direction)
    version, source = migration.version, f"{migration.version}_{migration.name}"
    shown = f" {'backward' if reverse_it else 'forward'}" if op == "change" else ""
    ctx.log(f"== Running {version} {migration.name}.{op}/0{shown}")
    started = time.perf_counter()
    try:
        async with repo.checkout():
            bound = executor_of(repo).bound()
            stop_notices = (
                executor_of(repo).adapter.on_notice(bound.conn, ctx.log.notice) if bound is not None else None
            )
            try:
                # DDL is not bound by the repo's statement timeout (Ecto runs it with timeout: :infinity);
                # the "query" kind marks the connection, so its release resets the session
                if bound is not None and repo.config.transaction_pooled:
                    # no session to set behind a transaction pooler: the connection sets it per transaction
                    await bound.conn.set_statement_timeout(None)
                else:
                    sql = executor_of(repo).adapter.no_statement_timeout_sql()
                    await _migrator_run(repo, ctx, "query", sql, [])
                with running(direction, repo, ctx.prefix), using(ctx.settings):  # type: ignore[arg-type]
                    if migration.disable_ddl_transaction:
                        await _run_callback(repo, fn, reverse_it, ctx, migration, op)
                        await _record(repo, version, direction, ctx)
                    else:
                        ctx.migrator_sql("begin []")
                        async with repo.transaction():
                            await _hook(repo, migration, "after_begin", ctx)
                            await _run_callback(repo, fn, reverse_it, ctx, migration, op)
                            await _hook(repo, migration, "before_commit", ctx)
                            await _record(repo, version, direction, ctx)
                        ctx.migrator_sql("commit []")
            finally:
                if stop_notices is not None:
                    stop_notices()
    except BaseException as exc:
        exc.add_note(f"while running migration {source} ({migration.source}) {direction}")
        raise
    finally:
        await executor_of(repo).adapter.expire_statement_caches()
    elapsed = math.floor((time.perf_counter() - started) * 10) / 10
    ctx.log(f"== Migrated {version} in {elapsed}s")


# -- public API ---------------------------------------------------------------------------------------


def _strategy(all: bool, step: int | None, to: int | None, to_exclusive: int | None) -> tuple[str, int | None]:
    given = [
        (name, value)
        for name, value in (("all", True if all else None), ("to", to), ("to_exclusive", to_exclusive), ("step", step))
        if value is not None
    ]
    if not given:
        raise ArgumentError("expected one of all, to, to_exclusive, or step strategies")
    if len(given) > 1:
        raise ArgumentError(
            f"expected one of all, to, to_exclusive, or step strategies, got {' and '.join(n for n, _ in given)}"
        )
    name, value = given[0]
    if name != "all" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ArgumentError(f"{name}= must be a non-negative integer, got {value!r}")
    return name, None if name == "all" else value


def _pending(
    files: Sequence[MigrationFile], applied: Iterable[int], direction: str, strategy: tuple[str, int | None]
) -> list[MigrationFile]:
    done = set(applied)
    name, value = strategy
    if direction == "up":
        todo = [mf for mf in files if mf.version not in done]
        if name == "to":
            todo = [mf for mf in todo if mf.version <= value]  # type: ignore[operator]
        elif name == "to_exclusive":
            todo = [mf for mf in todo if mf.version < value]  # type: ignore[operator]
    else:
        todo = [mf for mf in reversed(files) if mf.version in done]
        if name == "to":
            todo = [mf for mf in todo if mf.version >= value]  # type: ignore[operator]
        elif name == "to_exclusive":
            todo = [mf for mf in todo if mf.version > value]  # type: ignore[operator]
    if name == "step":
        todo = todo[:value]
    return todo


def _direction(direction: str) -> str:
    if direction not in ("up", "down"):
        raise ArgumentError(f"direction must be 'up' or 'down', got {direction!r}")
    return direction


def _outside_sandbox(
    fn: Callable[Concatenate[Repo, _P], Awaitable[_T]],
) -> Callable[Concatenate[Repo, _P], Coroutine[Any, Any, _T]]:
    """Migrations commit: in a test sandbox they still run on the pool, outside its transaction."""

    @functools.wraps(fn)
    async def unboxed(repo: Repo, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        config = repo.config
        if config.transaction_pooled and config.direct_url is not None:
            # behind a transaction pooler with a direct URL: migrations run on PostgreSQL itself, on a
            # repo of the same class (the migrator does not import the repo package)
            direct = type(repo)(config.direct_url, name=repo.name, **config.direct_options())
            async with direct:
                return await fn(direct, *args, **kwargs)
        with executor_of(repo).ownership.outside():
            return await fn(repo, *args, **kwargs)

    return unboxed


@_outside_sandbox
async def run(
    repo: Repo,
    path: Paths,
    direction: Literal["up", "down"] = "up",
    *,
    all: bool = False,
    step: int | None = None,
    to: int | None = None,
    to_exclusive: int | None = None,
    prefix: str | None = None,
    log: LogOption = "info",
    log_migrations_sql: LogOption = False,
    log_migrator_sql: LogOption = False,
    strict_version_order: bool = False,
    skip_table_creation: bool = False,
    **settings: Unpack[MigrationSettings],
) -> list[int]:
    """Run the pending migrations of ``path`` (a folder or several) in ``direction``.

    Exactly one strategy: ``all=True``; ``step=n`` (the next ``n``); ``to=v`` (up to and including
    version ``v``; going down, back to and including it); ``to_exclusive=v`` (the same, without ``v``).
    Up runs in ascending version order, down in descending order, and only applied versions.

    ``log_migrations_sql`` logs every statement the migrations run, ``log_migrator_sql`` the
    migrator's own (``schema_migrations``, the lock, transactions): ``True`` at the level of ``log``,
    or a level. ``skip_table_creation=True`` does not create the versions table (for a role that
    may not; it must exist then). ``strict_version_order=True`` refuses, before running anything, a pending version
    older than the latest applied one (otherwise it runs, with a warning). The ``migration_*``
    settings (``migration_source``, ``migration_default_prefix``, ``migration_primary_key``,
    ``migration_foreign_key``, ``migration_timestamps``) are Ecto's repo keys of those names::

        await run(repo, "migrations", all=True, log_migrations_sql=True,
                  migration_primary_key={"name": "uuid", "type": "binary_id"})

    :return: the versions run, in the order they ran (empty when none was pending: "Migrations already up")
    :raises ArgumentError: no strategy, or more than one; a wrong option
    :raises MigrationError: a file is malformed, duplicated or defines no migration; pool_size < 2;
        an out-of-order version under ``strict_version_order``
    """
    direction = _direction(direction)  # type: ignore[assignment]
    strategy = _strategy(all, step, to, to_exclusive)
    ctx = _context(prefix, log, log_migrations_sql, log_migrator_sql, settings, strict_version_order)
    files = find_migrations(path)
    _check_repo(repo)
    if not skip_table_creation:
        await _ensure_table(repo, ctx)
    applied = await _versions(repo, ctx)
    pending = _pending(files, applied, direction, strategy)
    if not pending:
        ctx.log(f"Migrations already {direction}")
        return []
    if direction == "up" and ctx.strict_version_order:
        _version_order(pending[0].version, applied, ctx)  # the oldest pending: nothing runs if refused
    loaded = {mf.version: mf.load() for mf in pending}  # every file loads before anything runs
    lock = any(not m.disable_migration_lock for m in loaded.values())
    if lock:
        _warn_table_lock(repo, ctx, [m for m in loaded.values() if m.disable_ddl_transaction])
    ran: list[int] = []
    async with _migration_lock(repo, ctx, lock) as conn:
        if conn is not None:  # another migrator may have run some meanwhile
            applied = await _versions(repo, ctx, conn)
            pending = _pending(files, applied, direction, strategy)
            if not pending:
                ctx.log(f"Migrations already {direction}")
                return []
        if direction == "up":
            _version_order(pending[0].version, applied, ctx)  # strict: refused before anything runs
        for mf in pending:
            if direction == "up" and mf is not pending[0]:
                _version_order(mf.version, applied, ctx)  # each one older than the latest applied warns
            migration = loaded.get(mf.version) or mf.load()
            await _run_one(repo, migration, direction, ctx)
            ran.append(mf.version)
    return ran


def _single(version: int, path_or_module: str | os.PathLike[str] | ModuleType) -> Migration:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArgumentError(f"version must be an integer, got {version!r}")
    if isinstance(path_or_module, ModuleType):
        return from_module(version, path_or_module)
    name = os.path.basename(os.fspath(path_or_module))
    match = FILE_NAME.match(name)
    return load_file(path_or_module, version, match["name"] if match else name.removesuffix(".py"))


async def _one(
    repo: Repo,
    version: int,
    path_or_module: str | os.PathLike[str] | ModuleType,
    direction: str,
    ctx: _Ctx,
) -> bool:
    migration = _single(version, path_or_module)
    _check_repo(repo)
    await _ensure_table(repo, ctx)
    async with _migration_lock(repo, ctx, not migration.disable_migration_lock) as conn:
        versions = await _versions(repo, ctx, conn)
        applied = version in versions
        if applied == (direction == "up"):
            return False
        if direction == "up":
            _version_order(version, versions, ctx)
        await _run_one(repo, migration, direction, ctx)
    return True


@_outside_sandbox
async def up(
    repo: Repo,
    version: int,
    path_or_module: str | os.PathLike[str] | ModuleType,
    *,
    prefix: str | None = None,
    log: LogOption = "info",
    log_migrations_sql: LogOption = False,
    log_migrator_sql: LogOption = False,
    strict_version_order: bool = False,
    **settings: Unpack[MigrationSettings],
) -> Literal["ok", "already_up"]:
    """Run one migration (a file or a module) up as ``version``, unless that version is applied.

    Options as :func:`run`'s; a ``version`` older than the latest applied one logs a warning, or
    raises :class:`MigrationError` (before running) with ``strict_version_order=True``."""
    ctx = _context(prefix, log, log_migrations_sql, log_migrator_sql, settings, strict_version_order)
    return "ok" if await _one(repo, version, path_or_module, "up", ctx) else "already_up"


@_outside_sandbox
async def down(
    repo: Repo,
    version: int,
    path_or_module: str | os.PathLike[str] | ModuleType,
    *,
    prefix: str | None = None,
    log: LogOption = "info",
    log_migrations_sql: LogOption = False,
    log_migrator_sql: LogOption = False,
    **settings: Unpack[MigrationSettings],
) -> Literal["ok", "already_down"]:
    """Roll one migration (a file or a module) back as ``version``, if that version is applied.

    Options as :func:`run`'s."""
    ctx = _context(prefix, log, log_migrations_sql, log_migrator_sql, settings)
    return "ok" if await _one(repo, version, path_or_module, "down", ctx) else "already_down"


@_outside_sandbox
async def migrated_versions(
    repo: Repo,
    *,
    prefix: str | None = None,
    skip_table_creation: bool = False,
    **settings: Unpack[MigrationSettings],
) -> list[int]:
    """The applied versions, ascending (the ``migration_source`` table is created if missing, unless
    ``skip_table_creation=True``: for a role that may not create it; it must exist then)."""
    ctx = _context(prefix, False, False, False, settings)
    if not skip_table_creation:
        await _ensure_table(repo, ctx)
    return await _versions(repo, ctx)


@_outside_sandbox
async def migrations(
    repo: Repo,
    path: Paths,
    *,
    prefix: str | None = None,
    skip_table_creation: bool = False,
    **settings: Unpack[MigrationSettings],
) -> list[tuple[str, int, str]]:
    """``(status, version, name)`` for every migration, by version; status is ``"up"`` or ``"down"``.

    An applied version whose file is missing is listed with the name ``"** FILE NOT FOUND **"``.
    """
    files = find_migrations(path)
    applied = set(await migrated_versions(repo, prefix=prefix, skip_table_creation=skip_table_creation, **settings))
    rows = [("up" if mf.version in applied else "down", mf.version, mf.name) for mf in files]
    known = {mf.version for mf in files}
    rows += [("up", version, FILE_NOT_FOUND) for version in applied - known]
    return sorted(rows, key=lambda row: row[1])
