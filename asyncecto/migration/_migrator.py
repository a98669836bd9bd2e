"""The migrator: ``schema_migrations``, the migration lock, and running migrations up and down.

Each migration runs on one connection (a checkout), in a transaction of its own that also
inserts (up) or deletes (down) its row in ``schema_migrations``: a migration that fails half-way
leaves neither its DDL nor its row. ``disable_ddl_transaction = True`` runs the statements one by
one outside a transaction (``CREATE INDEX CONCURRENTLY``) and records the row after the last.

While migrations run, a PostgreSQL session advisory lock is held on a second connection of the
pool (hence ``pool_size >= 2``); the key derives from the ``schema_migrations`` table's schema,
so two migrators of one database and prefix never run at once. After taking the lock the
migrator reads the applied versions again: what the other migrator applied is not run twice.

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

from asyncecto._aio import finish
from asyncecto._executor import DEFAULT, executor_of
from asyncecto._names import check_optional_name
from asyncecto.errors import ArgumentError, DatabaseError, MigrationError

from ._dsl import Execute, Flush, collect_result, running
from ._files import FILE_NAME, Migration, MigrationFile, find_migrations, from_module, load_file
from ._reverse import reverse

if TYPE_CHECKING:
    from asyncecto.adapters import Connection
    from asyncecto.repo import Repo

_P = ParamSpec("_P")
_T = TypeVar("_T")

__all__ = ("FILE_NOT_FOUND", "down", "migrated_versions", "migrations", "run", "up")

logger = logging.getLogger("asyncecto.migration")

#: the name ``migrations()`` shows for an applied version whose file is gone
FILE_NOT_FOUND = "** FILE NOT FOUND **"

_SOURCE = "schema_migrations"

Paths = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
LogOption = str | int | bool


# -- helpers ----------------------------------------------------------------------------------------


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


def _check_repo(repo: Repo) -> None:
    if repo.in_transaction():
        raise MigrationError(
            "cannot run migrations inside a transaction: each migration runs in a transaction of its own\n\n"
            "fix: call the migrator outside `async with repo.transaction():`"
        )


async def _ensure_table(repo: Repo, prefix: str | None) -> None:
    check_optional_name(prefix, "migration prefix")  # before the first statement
    sql = executor_of(repo).adapter.create_versions_table_sql(prefix, _SOURCE)
    try:
        await executor_of(repo).run("execute", sql, (), DEFAULT, _SOURCE)
    except DatabaseError as exc:
        if not executor_of(repo).adapter.lost_create_race(exc):  # two migrators creating it at once: it is there
            raise


async def _versions(repo: Repo, prefix: str | None, conn: Connection | None = None) -> list[int]:
    sql = executor_of(repo).adapter.versions_sql(prefix, _SOURCE)
    rows, _ = await executor_of(repo).run("fetch", sql, (), DEFAULT, _SOURCE, pinned=conn)
    return [int(row[0]) for row in rows]


def _lock_key(schema: str) -> int:
    digest = hashlib.blake2b(f"asyncecto.migrator:{schema}.{_SOURCE}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _pool_size_error() -> MigrationError:
    return MigrationError(
        "migrations failed to run because the connection pool size is less than 2\n\n"
        "the migrator holds a lock on one connection while it runs the migrations on another, so "
        "that two migrators never apply the same migration\n\n"
        "fix: start the repo with pool_size=2 or more (the CLI's --pool-size), or set "
        "disable_migration_lock = True in the migrations"
    )


@contextlib.asynccontextmanager
async def _migration_lock(repo: Repo, prefix: str | None, log: _Log, enabled: bool) -> AsyncIterator[Connection | None]:
    """Hold the advisory lock on a connection of its own for the block; yield that connection."""
    if not enabled:
        yield None
        return
    if repo.config.pool_size < 2:
        raise _pool_size_error()
    adapter = executor_of(repo).adapter
    default = DEFAULT
    conn = adapter.checkout_nowait() or await adapter.checkout()
    try:
        # "query" marks the connection for a reset on release, which also drops any advisory lock left
        if prefix is None:
            sql = adapter.current_schema_sql()
            (_, rows, _), _ = await executor_of(repo).run("query", sql, [], default, _SOURCE, pinned=conn)
            schema = str(rows[0][0])
        else:
            schema = prefix
        key = _lock_key(schema)
        (_, rows, _), _ = await executor_of(repo).run(
            "query", adapter.try_lock_sql(), [key], default, _SOURCE, pinned=conn
        )
        if not rows[0][0]:
            log(f"waiting for the migration lock on {schema}.{_SOURCE}: another migrator is running")
            # wait as long as the other migrator runs: no server-side statement_timeout (the
            # repo's, a role's or a database's) may cancel the wait; the reset on release restores it
            await executor_of(repo).run("query", adapter.no_statement_timeout_sql(), [], default, _SOURCE, pinned=conn)
            await executor_of(repo).run("query", adapter.lock_sql(), [key], None, _SOURCE, pinned=conn)
        try:
            yield conn
        finally:

            async def unlock() -> None:
                with contextlib.suppress(Exception):  # on failure the reset on release unlocks
                    await executor_of(repo).run("query", adapter.unlock_sql(), [key], default, _SOURCE, pinned=conn)

            await finish(unlock())
    finally:
        await finish(adapter.checkin(conn))


# -- running one migration ----------------------------------------------------------------------------


async def _run_callback(
    repo: Repo,
    fn: Callable[[], object],
    reverse_it: bool,
    prefix: str | None,
    log: _Log,
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
    # every statement is written before the first runs: a name the adapter refuses (too long for
    # PostgreSQL, say) stops the migration before any DDL, not halfway through it
    statements = [
        [] if isinstance(command, Flush) or callable(getattr(command, "up", None)) else adapter.ddl_sql(command, prefix)
        for command in commands
    ]
    for command, sqls in zip(commands, statements, strict=True):
        if isinstance(command, Flush):
            continue  # commands run in order, each to its end: everything before it is done
        log(adapter.ddl_log(command, prefix))
        if isinstance(command, Execute) and callable(command.up):
            result = command.up(repo)  # a data migration, run at its turn (async, or a plain function)
            if inspect.isawaitable(result):
                await result
            continue
        for sql in sqls:
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


async def _hook(repo: Repo, migration: Migration, name: str, prefix: str | None, log: _Log) -> None:
    """``after_begin()`` / ``before_commit()``: inside the migration's transaction, both directions."""
    callback = migration.callback(name)
    if callback is not None:
        await _run_callback(repo, callback, False, prefix, log)


async def _record(repo: Repo, version: int, direction: str, prefix: str | None) -> None:
    if direction == "up":
        sql = executor_of(repo).adapter.insert_version_sql(prefix, _SOURCE)
    else:
        sql = executor_of(repo).adapter.delete_version_sql(prefix, _SOURCE)
    await executor_of(repo).run("execute", sql, [version], DEFAULT, _SOURCE)


async def _run_one(repo: Repo, migration: Migration, direction: str, prefix: str | None, log: _Log) -> None:
    op, fn, reverse_it = _operation(migration, direction)
    version, source = migration.version, f"{migration.version}_{migration.name}"
    shown = f" {'backward' if reverse_it else 'forward'}" if op == "change" else ""
    log(f"== Running {version} {migration.name}.{op}/0{shown}")
    started = time.perf_counter()
    try:
        async with repo.checkout():
            # DDL is not bound by the repo's statement timeout (Ecto runs it with timeout: :infinity);
            # the "query" kind marks the connection, so its release resets the session
            sql = executor_of(repo).adapter.no_statement_timeout_sql()
            await executor_of(repo).run("query", sql, [], DEFAULT, _SOURCE)
            with running(direction, repo, prefix):  # type: ignore[arg-type]
                if migration.disable_ddl_transaction:
                    await _run_callback(repo, fn, reverse_it, prefix, log, migration, op)
                    await _record(repo, version, direction, prefix)
                else:
                    async with repo.transaction():
                        await _hook(repo, migration, "after_begin", prefix, log)
                        await _run_callback(repo, fn, reverse_it, prefix, log, migration, op)
                        await _hook(repo, migration, "before_commit", prefix, log)
                        await _record(repo, version, direction, prefix)
    except BaseException as exc:
        exc.add_note(f"while running migration {source} ({migration.source}) {direction}")
        raise
    finally:
        await executor_of(repo).adapter.expire_statement_caches()
    elapsed = math.floor((time.perf_counter() - started) * 10) / 10
    log(f"== Migrated {version} in {elapsed}s")


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
) -> list[int]:
    """Run the pending migrations of ``path`` (a folder or several) in ``direction``.

    Exactly one strategy: ``all=True``; ``step=n`` (the next ``n``); ``to=v`` (up to and including
    version ``v``; going down, back to and including it); ``to_exclusive=v`` (the same, without ``v``).
    Up runs in ascending version order, down in descending order, and only applied versions.

    :return: the versions run, in the order they ran (empty when none was pending: "Migrations already up")
    :raises ArgumentError: no strategy, or more than one
    :raises MigrationError: a file is malformed, duplicated or defines no migration; pool_size < 2
    """
    direction = _direction(direction)  # type: ignore[assignment]
    strategy = _strategy(all, step, to, to_exclusive)
    logline = _Log(log)
    files = find_migrations(path)
    _check_repo(repo)
    await _ensure_table(repo, prefix)
    pending = _pending(files, await _versions(repo, prefix), direction, strategy)
    if not pending:
        logline(f"Migrations already {direction}")
        return []
    loaded = {mf.version: mf.load() for mf in pending}  # every file loads before anything runs
    lock = any(not m.disable_migration_lock for m in loaded.values())
    ran: list[int] = []
    async with _migration_lock(repo, prefix, logline, lock) as conn:
        if conn is not None:  # another migrator may have run some meanwhile
            pending = _pending(files, await _versions(repo, prefix, conn), direction, strategy)
            if not pending:
                logline(f"Migrations already {direction}")
                return []
        for mf in pending:
            migration = loaded.get(mf.version) or mf.load()
            await _run_one(repo, migration, direction, prefix, logline)
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
    prefix: str | None,
    log: LogOption,
) -> bool:
    migration = _single(version, path_or_module)
    logline = _Log(log)
    _check_repo(repo)
    await _ensure_table(repo, prefix)
    async with _migration_lock(repo, prefix, logline, not migration.disable_migration_lock) as conn:
        applied = version in await _versions(repo, prefix, conn)
        if applied == (direction == "up"):
            return False
        await _run_one(repo, migration, direction, prefix, logline)
    return True


@_outside_sandbox
async def up(
    repo: Repo,
    version: int,
    path_or_module: str | os.PathLike[str] | ModuleType,
    *,
    prefix: str | None = None,
    log: LogOption = "info",
) -> Literal["ok", "already_up"]:
    """Run one migration (a file or a module) up as ``version``, unless that version is applied."""
    return "ok" if await _one(repo, version, path_or_module, "up", prefix, log) else "already_up"


@_outside_sandbox
async def down(
    repo: Repo,
    version: int,
    path_or_module: str | os.PathLike[str] | ModuleType,
    *,
    prefix: str | None = None,
    log: LogOption = "info",
) -> Literal["ok", "already_down"]:
    """Roll one migration (a file or a module) back as ``version``, if that version is applied."""
    return "ok" if await _one(repo, version, path_or_module, "down", prefix, log) else "already_down"


@_outside_sandbox
async def migrated_versions(repo: Repo, *, prefix: str | None = None) -> list[int]:
    """The applied versions, ascending (``schema_migrations`` is created if missing)."""
    await _ensure_table(repo, prefix)
    return await _versions(repo, prefix)


@_outside_sandbox
async def migrations(repo: Repo, path: Paths, *, prefix: str | None = None) -> list[tuple[str, int, str]]:
    """``(status, version, name)`` for every migration, by version; status is ``"up"`` or ``"down"``.

    An applied version whose file is missing is listed with the name ``"** FILE NOT FOUND **"``.
    """
    files = find_migrations(path)
    applied = set(await migrated_versions(repo, prefix=prefix))
    rows = [("up" if mf.version in applied else "down", mf.version, mf.name) for mf in files]
    known = {mf.version for mf in files}
    rows += [("up", version, FILE_NOT_FOUND) for version in applied - known]
    return sorted(rows, key=lambda row: row[1])
