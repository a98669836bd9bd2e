"""The migrator against a real PostgreSQL: schema_migrations, strategies, the lock, prefixes.

Each test gets a PostgreSQL schema of its own (``mgr_t_<random>``) as the repos' ``search_path``,
so ``schema_migrations`` and the tables the migrations create without a prefix land there and
are dropped with it; migration folders are written in ``tmp_path``. Every check reads the
database back through a plain asyncpg connection (``admin``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo, schema
from asyncecto.errors import ArgumentError, DatabaseError, MigrationError
from asyncecto.migration import FILE_NOT_FOUND, down, migrated_versions, migrations, run, up
from asyncecto.query import from_
from asyncecto.repo import build_config

pytestmark = [pytest.mark.asyncio, pytest.mark.no_sandbox]  # real commits and connections

V1, V2, V3, V4 = 20240101120000, 20240102120000, 20240103120000, 20240104120000


@pytest.fixture
async def space(database_url: str) -> AsyncIterator[str]:
    name = f"mgr_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


MakeRepo = Callable[..., Repo]


@pytest.fixture
def make_repo(database_url: str, space: str) -> MakeRepo:
    def make(**options: Any) -> Repo:
        options.setdefault("pool_size", 3)
        return Repo(database_url, server_settings={"search_path": space}, **options)

    return make


@pytest.fixture
async def repo(make_repo: MakeRepo) -> AsyncIterator[Repo]:
    r = make_repo()
    async with r:
        yield r
        assert r.pool_stats()["in_use"] == 0


def write(folder: Path, filename: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(textwrap.dedent(body))
    return path


def sql_migration(folder: Path, version: int, name: str, up_sql: str | list[str], down_sql: str | list[str]) -> Path:
    return write(
        folder,
        f"{version}_{name}.py",
        f"""
        def up():
            return {up_sql!r}

        def down():
            return {down_sql!r}
        """,
    )


@pytest.fixture
def three(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    sql_migration(
        folder, V2, "create_b", ["CREATE TABLE mgr_b (id int)", "INSERT INTO mgr_b VALUES (1)"], "DROP TABLE mgr_b"
    )
    sql_migration(folder, V3, "create_c", "CREATE TABLE mgr_c (id int)", "DROP TABLE mgr_c")
    return folder


async def rows_of(admin: asyncpg.Connection, space: str) -> list[int]:
    return [r[0] for r in await admin.fetch(f'SELECT version FROM "{space}".schema_migrations ORDER BY version')]


async def tables_in(admin: asyncpg.Connection, space: str) -> set[str]:
    rows = await admin.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'mgr_%'", space
    )
    return {r[0] for r in rows}


# -- strategies ---------------------------------------------------------------------------------


async def test_run_all_up_then_step_down(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    assert await run(repo, three, all=True) == [V1, V2, V3]
    assert await rows_of(admin, space) == [V1, V2, V3]
    assert await tables_in(admin, space) == {"mgr_a", "mgr_b", "mgr_c"}
    assert await admin.fetchval(f'SELECT count(*) FROM "{space}".mgr_b') == 1
    inserted = await admin.fetchval(f'SELECT inserted_at FROM "{space}".schema_migrations WHERE version = $1', V1)
    assert inserted is not None and inserted.microsecond == 0
    assert await run(repo, three, "down", step=1) == [V3]
    assert await rows_of(admin, space) == [V1, V2]
    assert await tables_in(admin, space) == {"mgr_a", "mgr_b"}
    assert await run(repo, three, "down", all=True) == [V2, V1]
    assert await rows_of(admin, space) == []
    assert await tables_in(admin, space) == set()


async def test_run_to_and_to_exclusive(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    assert await run(repo, three, to=V2) == [V1, V2]
    assert await run(repo, three, to=V2) == []
    assert await run(repo, three, to_exclusive=V3) == []
    assert await run(repo, three, to_exclusive=V4) == [V3]
    assert await run(repo, three, "down", to_exclusive=V1) == [V3, V2]
    assert await rows_of(admin, space) == [V1]
    assert await run(repo, three, "up", step=5) == [V2, V3]
    assert await run(repo, three, "down", to=V2) == [V3, V2]
    assert await rows_of(admin, space) == [V1]
    assert await tables_in(admin, space) == {"mgr_a"}


async def test_run_needs_exactly_one_strategy(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    with pytest.raises(ArgumentError, match=r"expected one of all, to, to_exclusive, or step strategies$"):
        await run(repo, three)
    with pytest.raises(ArgumentError, match="got all and step"):
        await run(repo, three, all=True, step=1)
    with pytest.raises(ArgumentError, match="step= must be a non-negative integer"):
        await run(repo, three, step=-1)
    with pytest.raises(ArgumentError, match="direction must be 'up' or 'down'"):
        await run(repo, three, "sideways", all=True)  # type: ignore[arg-type]
    assert await tables_in(admin, space) == set()


async def test_up_and_down_single(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    file = three / f"{V2}_create_b.py"
    assert await up(repo, V2, file) == "ok"
    assert await up(repo, V2, file) == "already_up"
    assert await rows_of(admin, space) == [V2]
    assert await tables_in(admin, space) == {"mgr_b"}
    assert await down(repo, V2, file) == "ok"
    assert await down(repo, V2, file) == "already_down"
    assert await rows_of(admin, space) == []
    assert await tables_in(admin, space) == set()


async def test_logs_in_ectos_form(
    repo: Repo, three: Path, caplog: pytest.LogCaptureFixture, admin: asyncpg.Connection, space: str
) -> None:
    with caplog.at_level(logging.INFO, logger="asyncecto.migration"):
        await run(repo, three, step=2)
        await run(repo, three, "down", step=1)
        await run(repo, three, "down", all=True)
        await run(repo, three, "down", all=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncecto.migration"]
    assert lines[:2] == [f"== Running {V1} create_a.up/0", 'execute "CREATE TABLE mgr_a (id int)"']
    assert re.fullmatch(rf"== Migrated {V1} in \d+\.\ds", lines[2])  # the time it took, however loaded the machine
    assert f"== Running {V2} create_b.down/0" in lines
    assert lines[-1] == "Migrations already down"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="asyncecto.migration"):
        assert await run(repo, three, all=True, log=False) == [V1, V2, V3]
        assert await run(repo, three, all=True) == []
    assert [r.getMessage() for r in caplog.records] == ["Migrations already up"]
    assert await rows_of(admin, space) == [V1, V2, V3]


# -- failures -----------------------------------------------------------------------------------


async def test_failing_half_way_leaves_no_row_and_no_ddl(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    sql_migration(
        folder, V2, "half", ["CREATE TABLE mgr_half (id int)", "SELECT * FROM mgr_no_such_table"], "DROP TABLE mgr_half"
    )
    sql_migration(folder, V3, "create_c", "CREATE TABLE mgr_c (id int)", "DROP TABLE mgr_c")
    with pytest.raises(DatabaseError, match="mgr_no_such_table") as info:
        await run(repo, folder, all=True)
    assert any(f"{V2}_half" in note for note in info.value.__notes__)
    assert await rows_of(admin, space) == [V1]
    assert await tables_in(admin, space) == {"mgr_a"}
    # the repo is fine afterwards, and the migration can be fixed and run
    sql_migration(folder, V2, "half", "CREATE TABLE mgr_half (id int)", "DROP TABLE mgr_half")
    assert await run(repo, folder, all=True) == [V2, V3]
    assert await rows_of(admin, space) == [V1, V2, V3]


async def test_a_failing_down_keeps_the_row(repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str) -> None:
    folder = tmp_path / "m"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", ["DROP TABLE mgr_a", "SELECT 1/0"])
    await run(repo, folder, all=True)
    with pytest.raises(DatabaseError, match="division by zero"):
        await run(repo, folder, "down", step=1)
    assert await rows_of(admin, space) == [V1]
    assert await tables_in(admin, space) == {"mgr_a"}


@pytest.mark.parametrize(
    "filename",
    [
        "2024_create_a.py",
        "20240101120000-create_a.py",
        "20240101120000_create-a.py",
        "create_a.py",
        "202401011200001_x.py",
    ],
)
async def test_malformed_file_name_is_refused(
    repo: Repo, tmp_path: Path, filename: str, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    write(folder, filename, "def up():\n    return 'SELECT 1'\n")
    write(folder, "_helpers.py", "X = 1\n")  # private modules are not migrations
    write(folder, "README.md", "not python\n")
    with pytest.raises(MigrationError, match=filename.replace(".", r"\.")) as info:
        await run(repo, folder, all=True)
    assert info.value.migration == str(folder / filename)
    assert await tables_in(admin, space) == set()


async def test_duplicate_version_and_name_are_refused(repo: Repo, tmp_path: Path) -> None:
    folder = tmp_path / "dup_version"
    sql_migration(folder, V1, "create_a", "SELECT 1", "SELECT 1")
    sql_migration(folder, V1, "create_b", "SELECT 1", "SELECT 1")
    with pytest.raises(MigrationError, match=f"migration version {V1} is duplicated") as info:
        await run(repo, folder, all=True)
    assert f"{V1}_create_a.py" in str(info.value) and f"{V1}_create_b.py" in str(info.value)
    folder = tmp_path / "dup_name"
    sql_migration(folder, V1, "create_a", "SELECT 1", "SELECT 1")
    sql_migration(folder, V2, "create_a", "SELECT 1", "SELECT 1")
    with pytest.raises(MigrationError, match="migration name create_a is duplicated") as info:
        await migrations(repo, folder)
    assert f"{V2}_create_a.py" in str(info.value)


async def test_a_file_without_up_or_change_is_refused(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    write(folder, f"{V2}_nothing.py", "def down():\n    return 'SELECT 1'\n")
    with pytest.raises(MigrationError, match=r"does not implement an up\(\) or change\(\) function"):
        await run(repo, folder, all=True)
    # every pending file is loaded before any runs
    assert await rows_of(admin, space) == []
    assert await tables_in(admin, space) == set()


async def test_up_wins_over_change_and_modules_load_privately(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    import sys

    folder = tmp_path / "m"
    write(
        folder,
        f"{V1}_both.py",
        """
        def change():
            raise AssertionError("change must not run when up/down exist")

        def up():
            return "CREATE TABLE mgr_up (id int)"

        def down():
            return "DROP TABLE mgr_up"
        """,
    )
    path_before, modules_before = list(sys.path), set(sys.modules)
    assert await run(repo, folder, all=True) == [V1]
    assert await tables_in(admin, space) == {"mgr_up"}
    assert await run(repo, folder, "down", all=True) == [V1]
    assert sys.path == path_before
    assert not {m for m in set(sys.modules) - modules_before if "_migrations" in m}


async def test_hooks_run_inside_the_transaction(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    write(
        folder,
        f"{V1}_hooks.py",
        """
        def after_begin():
            return "CREATE TABLE mgr_hook_log (step text, xid xid8 DEFAULT pg_current_xact_id())"

        def up():
            return "INSERT INTO mgr_hook_log (step) VALUES ('up')"

        def before_commit():
            return "INSERT INTO mgr_hook_log (step) VALUES ('before_commit')"

        def down():
            return "DROP TABLE mgr_hook_log"
        """,
    )
    await run(repo, folder, all=True)
    rows = await admin.fetch(f'SELECT step, xid::text FROM "{space}".mgr_hook_log ORDER BY step')
    assert [r[0] for r in rows] == ["before_commit", "up"]
    assert len({r[1] for r in rows}) == 1  # one transaction


# -- status -------------------------------------------------------------------------------------


async def test_status_lists_every_migration(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    assert await migrations(repo, three) == [
        ("down", V1, "create_a"),
        ("down", V2, "create_b"),
        ("down", V3, "create_c"),
    ]
    await run(repo, three, step=2)
    (three / f"{V1}_create_a.py").unlink()
    assert await migrations(repo, three) == [
        ("up", V1, FILE_NOT_FOUND),
        ("up", V2, "create_b"),
        ("down", V3, "create_c"),
    ]
    assert await migrated_versions(repo) == [V1, V2]
    assert await rows_of(admin, space) == [V1, V2]


# -- the lock -----------------------------------------------------------------------------------


async def test_concurrent_migrators_apply_each_migration_once(
    make_repo: MakeRepo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    await admin.execute(f'CREATE TABLE "{space}".mgr_counter (version bigint, backend int DEFAULT pg_backend_pid())')
    folder = tmp_path / "m"
    for n, version in enumerate((V1, V2, V3, V4)):
        sql_migration(
            folder,
            version,
            f"count_{n}",
            ["SELECT pg_sleep(0.05)", f"INSERT INTO mgr_counter (version) VALUES ({version})"],
            f"DELETE FROM mgr_counter WHERE version = {version}",
        )
    first, second = make_repo(pool_size=2), make_repo(pool_size=2)
    async with first, second:
        results = await asyncio.gather(run(first, folder, all=True), run(second, folder, all=True))
        assert sorted(results[0] + results[1]) == [V1, V2, V3, V4]
        assert set(results[0]).isdisjoint(results[1])
        counted = await admin.fetch(f'SELECT version, count(*) FROM "{space}".mgr_counter GROUP BY version')
        assert sorted((r[0], r[1]) for r in counted) == [(V1, 1), (V2, 1), (V3, 1), (V4, 1)]
        assert await rows_of(admin, space) == [V1, V2, V3, V4]
        # and going down concurrently too
        results = await asyncio.gather(run(first, folder, "down", all=True), run(second, folder, "down", all=True))
        assert sorted(results[0] + results[1]) == [V1, V2, V3, V4]
        assert await admin.fetchval(f'SELECT count(*) FROM "{space}".mgr_counter') == 0
        assert await rows_of(admin, space) == []


async def test_the_lock_needs_two_connections(make_repo: MakeRepo, tmp_path: Path, three: Path) -> None:
    async with make_repo(pool_size=1) as small:
        with pytest.raises(MigrationError, match="connection pool size is less than 2"):
            await run(small, three, all=True)
        folder = tmp_path / "nolock"
        write(
            folder,
            f"{V1}_nolock.py",
            """
            disable_migration_lock = True

            def up():
                return "CREATE TABLE mgr_nolock (id int)"

            def down():
                return "DROP TABLE mgr_nolock"
            """,
        )
        assert await run(small, folder, all=True) == [V1]
        assert await migrated_versions(small) == [V1]


async def test_the_lock_is_released(repo: Repo, three: Path, admin: asyncpg.Connection) -> None:
    await run(repo, three, step=1)
    held = await admin.fetchval(  # this database's advisory locks only: other suites may run beside this one
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert held == 0
    with pytest.raises(MigrationError):
        async with repo.transaction():
            await run(repo, three, all=True)


# -- no DDL transaction -------------------------------------------------------------------------


async def test_disable_ddl_transaction_allows_create_index_concurrently(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    body = """
        {flag}
        def up():
            return "CREATE INDEX CONCURRENTLY mgr_a_id_index ON mgr_a (id)"

        def down():
            return "DROP INDEX CONCURRENTLY mgr_a_id_index"
        """
    write(folder, f"{V2}_index_a.py", body.format(flag=""))
    with pytest.raises(DatabaseError, match="cannot run inside a transaction block"):
        await run(repo, folder, all=True)
    assert await rows_of(admin, space) == [V1]
    write(folder, f"{V2}_index_a.py", body.format(flag="disable_ddl_transaction = True"))
    assert await run(repo, folder, all=True) == [V2]
    assert await rows_of(admin, space) == [V1, V2]
    indexes = "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'mgr_a'"
    assert [r[0] for r in await admin.fetch(indexes, space)] == ["mgr_a_id_index"]
    valid = await admin.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = $1::regclass", f"{space}.mgr_a_id_index"
    )
    assert valid is True
    assert await run(repo, folder, "down", step=1) == [V2]
    assert await admin.fetch(indexes, space) == []


# -- prefixes -----------------------------------------------------------------------------------


@pytest.fixture
async def tenant(admin: asyncpg.Connection) -> AsyncIterator[str]:
    await admin.execute("DROP SCHEMA IF EXISTS mig_tenant2 CASCADE")
    await admin.execute("CREATE SCHEMA mig_tenant2")
    yield "mig_tenant2"
    await admin.execute("DROP SCHEMA mig_tenant2 CASCADE")


async def test_prefix_keeps_its_own_schema_migrations(
    repo: Repo, tmp_path: Path, tenant: str, admin: asyncpg.Connection, space: str
) -> None:
    three = tmp_path / "m"
    for version, name in ((V1, "create_a"), (V2, "create_b"), (V3, "create_c")):
        sql_migration(three, version, name, "SELECT 1", "SELECT 1")
    assert await run(repo, three, step=1, prefix=tenant) == [V1]
    assert await rows_of(admin, tenant) == [V1]
    assert await migrated_versions(repo) == []  # the search_path schema's table is another one
    assert await migrated_versions(repo, prefix=tenant) == [V1]
    assert await migrations(repo, three, prefix=tenant) == [
        ("up", V1, "create_a"),
        ("down", V2, "create_b"),
        ("down", V3, "create_c"),
    ]
    assert await run(repo, three, all=True) == [V1, V2, V3]
    assert await run(repo, three, "down", all=True, prefix=tenant) == [V1]
    assert await rows_of(admin, tenant) == []
    assert await rows_of(admin, space) == [V1, V2, V3]


# -- statement caches -----------------------------------------------------------------------------


@schema("mgr_cached")
class Cached:
    id: int | None = None
    n: int | None = None


async def test_a_live_repos_cached_statements_survive_the_migration(
    make_repo: MakeRepo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    await admin.execute(f'CREATE TABLE "{space}".mgr_cached (id bigserial PRIMARY KEY, n integer)')
    await admin.execute(f'INSERT INTO "{space}".mgr_cached (n) VALUES (1)')
    folder = tmp_path / "m"
    sql_migration(
        folder,
        V1,
        "widen_n",
        "ALTER TABLE mgr_cached ALTER COLUMN n TYPE bigint",
        "ALTER TABLE mgr_cached ALTER COLUMN n TYPE integer",
    )
    live, migrator = make_repo(pool_size=1), make_repo(pool_size=2)
    async with live, migrator:
        # without the migrator, an ALTER breaks the prepared statement inside a transaction
        assert [c.n for c in await live.all(from_(Cached))] == [1]
        await admin.execute(f'ALTER TABLE "{space}".mgr_cached ALTER COLUMN n TYPE numeric')
        with pytest.raises(DatabaseError, match="cached plan must not change result type"):
            async with live.transaction():
                await live.all(from_(Cached))
        await admin.execute(f'ALTER TABLE "{space}".mgr_cached ALTER COLUMN n TYPE integer')
        assert [c.n for c in await live.all(from_(Cached))] == [1]  # prepared again, on integer

        assert await run(migrator, folder, all=True) == [V1]
        async with live.transaction():
            assert [c.n for c in await live.all(from_(Cached))] == [1]
        assert await run(migrator, folder, "down", all=True) == [V1]
        async with live.transaction():
            assert [c.n for c in await live.all(from_(Cached))] == [1]
    assert (
        await admin.fetchval(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'mgr_cached' "
            "AND column_name = 'n'",
            space,
        )
        == "integer"
    )


# -- DSL migrations -------------------------------------------------------------------------------

DSL_MIGRATION = """
from asyncecto.migration import add, create, direction, execute, prefix, table, timestamps, unique_index


async def seed(repo):
    assert direction() == "up"
    await repo.query(f"INSERT INTO {prefix()}.mgr_posts (title, inserted_at, updated_at) VALUES ('hi', now(), now())")


async def unseed(repo):
    assert direction() == "down"
    await repo.query(f"DELETE FROM {prefix()}.mgr_posts")


def change():
    with create(table("mgr_posts")):
        add("title", "string", null=False)
        timestamps()
    create(unique_index("mgr_posts", ["title"]))
    execute(seed, unseed)
"""


async def test_dsl_change_forward_and_backward_in_a_prefix(
    repo: Repo, tmp_path: Path, tenant: str, admin: asyncpg.Connection, space: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    write(folder, f"{V1}_create_posts.py", DSL_MIGRATION)
    with caplog.at_level(logging.INFO, logger="asyncecto.migration"):
        assert await run(repo, folder, all=True, prefix=tenant) == [V1]
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncecto.migration"]
    assert lines[0] == f"== Running {V1} create_posts.change/0 forward"
    assert "create table mig_tenant2.mgr_posts" in lines
    assert await tables_in(admin, tenant) == {"mgr_posts"}
    assert await tables_in(admin, space) == set()
    assert [r[0] for r in await admin.fetch("SELECT title FROM mig_tenant2.mgr_posts")] == ["hi"]
    assert await rows_of(admin, tenant) == [V1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="asyncecto.migration"):
        assert await run(repo, folder, "down", step=1, prefix=tenant) == [V1]
    assert caplog.records[0].getMessage() == f"== Running {V1} create_posts.change/0 backward"
    assert await tables_in(admin, tenant) == set()
    assert await rows_of(admin, tenant) == []


async def test_dsl_irreversible_change_keeps_its_row(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    write(
        folder,
        f"{V1}_irreversible.py",
        """
        from asyncecto.migration import add, create, execute, table

        def change():
            with create(table("mgr_irr")):
                add("n", "integer")
            execute("INSERT INTO mgr_irr (n) VALUES (1)")
        """,
    )
    assert await run(repo, folder, all=True) == [V1]
    with pytest.raises(MigrationError, match="cannot reverse migration command"):
        await run(repo, folder, "down", all=True)
    assert await rows_of(admin, space) == [V1]
    assert await admin.fetchval(f'SELECT count(*) FROM "{space}".mgr_irr') == 1


async def test_dsl_failure_half_way_rolls_back_every_command(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    write(
        folder,
        f"{V1}_half.py",
        """
        from asyncecto.migration import add, create, index, table

        def change():
            with create(table("mgr_half_dsl")):
                add("n", "integer")
            create(index("mgr_half_dsl", ["no_such_column"]))
        """,
    )
    with pytest.raises(DatabaseError, match="no_such_column"):
        await run(repo, folder, all=True)
    assert await rows_of(admin, space) == []
    assert await tables_in(admin, space) == set()


# -- regressions from review --------------------------------------------------------------------


async def test_a_star_import_of_the_dsl_does_not_shadow_change(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    # the star import brings the migrator's up/down into the file: only functions defined there count
    folder = tmp_path / "m"
    write(
        folder,
        f"{V1}_star.py",
        """
        from asyncecto.migration import *

        def change():
            with create(table("mgr_star")):
                add("name", "text")
        """,
    )
    assert await run(repo, folder, all=True) == [V1]
    assert await tables_in(admin, space) == {"mgr_star"}
    assert await run(repo, folder, "down", step=1) == [V1]
    assert await tables_in(admin, space) == set()
    write(folder, f"{V2}_nothing.py", "from asyncecto.migration import *\n")
    with pytest.raises(MigrationError, match="does not implement an up"):
        await run(repo, folder, all=True)


async def test_step_zero_runs_nothing(repo: Repo, three: Path, admin: asyncpg.Connection, space: str) -> None:
    assert await run(repo, three, step=0) == []
    assert await run(repo, three, all=True) == [V1, V2, V3]
    assert await run(repo, three, "down", step=0) == []
    assert await run(repo, three, "down", to=0) == [V3, V2, V1]  # to is inclusive: back past every version
    assert await rows_of(admin, space) == []


async def test_a_plain_function_data_migration(
    repo: Repo, tmp_path: Path, admin: asyncpg.Connection, space: str
) -> None:
    folder = tmp_path / "m"
    marker = tmp_path / "ran.txt"
    sql_migration(folder, V1, "create_a", "CREATE TABLE mgr_a (id int)", "DROP TABLE mgr_a")
    write(
        folder,
        f"{V2}_data.py",
        f"""
        import pathlib

        from asyncecto.migration import execute

        def note(repo):
            pathlib.Path({str(marker)!r}).write_text("ran")

        async def seed(repo):
            await repo.query("INSERT INTO mgr_a VALUES (7)")

        def up():
            execute(note)
            execute(seed)

        def down():
            execute("DELETE FROM mgr_a")
        """,
    )
    assert await run(repo, folder, all=True) == [V1, V2]
    assert marker.read_text() == "ran"
    assert [r[0] for r in await admin.fetch(f'SELECT id FROM "{space}".mgr_a')] == [7]


async def test_a_waiting_migrator_is_not_cut_off_by_a_server_statement_timeout(
    three: Path, admin: asyncpg.Connection, space: str, database_url: str
) -> None:
    from asyncecto.migration._migrator import _lock_key

    holder = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    waiting = Repo(
        database_url, pool_size=2, timeout=None, server_settings={"search_path": space, "statement_timeout": "300"}
    )
    try:
        async with waiting:
            await holder.execute("SELECT pg_advisory_lock($1)", _lock_key(space))
            task = asyncio.create_task(run(waiting, three, all=True))
            await asyncio.sleep(1.0)  # well past the server's 300 ms statement_timeout, still waiting
            assert not task.done()
            await holder.execute("SELECT pg_advisory_unlock($1)", _lock_key(space))
            assert await asyncio.wait_for(task, 10) == [V1, V2, V3]
    finally:
        await holder.close()
    assert await rows_of(admin, space) == [V1, V2, V3]
