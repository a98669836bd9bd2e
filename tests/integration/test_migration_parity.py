"""Ecto parity of the migrator and the ``asyncecto`` command against a real PostgreSQL (issue 19).

``log_migrations_sql`` / ``log_migrator_sql`` (``--log-migrations-sql`` / ``--log-migrator-sql``),
``strict_version_order`` (``--strict-version-order``) and the ``migration_*`` settings (Ecto's repo
keys: ``migration_source``, ``migration_default_prefix``, ``migration_primary_key``,
``migration_foreign_key``, ``migration_timestamps``) as migrator arguments and ``[tool.asyncecto]`` keys.

Each migrator test gets a PostgreSQL schema of its own as the repo's ``search_path``; the CLI tests
a database of their own (the helpers of ``test_cli``).
"""

from __future__ import annotations

import logging
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError, DatabaseError, MigrationError
from asyncecto.migration import migrated_versions, migrations, run, up
from asyncecto.repo import build_config
from tests.integration.test_cli import Project

pytestmark = [pytest.mark.no_sandbox]  # real commits; the async tests are marked asyncio one by one

V1, V2, V3 = 20240101120000, 20240102120000, 20240103120000

STRICT_MESSAGE = (
    f"You are running migration {V1} but an older migration with version {V2} has already run.\n\n"
    f"This can be an issue if you have already ran {V2} in production because a new deployment may "
    f"migrate {V1} but a rollback command would revert {V2} instead of {V1}.\n\n"
    f"If this can be an issue, we recommend to rollback {V1} and change it to a version later than {V2}."
)


@pytest.fixture
async def space(database_url: str) -> AsyncIterator[str]:
    name = f"mpar_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        await conn.execute(f'CREATE SCHEMA "{name}_other"')
        yield name
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        await conn.execute(f'DROP SCHEMA "{name}_other" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def repo(database_url: str, space: str) -> AsyncIterator[Repo]:
    r = Repo(database_url, pool_size=3, server_settings={"search_path": space})
    async with r:
        yield r


def write(folder: Path, version: int, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}_{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


POSTS = """
from asyncecto.migration import add, create, index, references, table, timestamps

def change():
    with create(table("mp_posts")):
        add("title", "string")
        timestamps()
    create(index("mp_posts", ["title"]))
"""

COMMENTS = """
from asyncecto.migration import add, create, references, table

def change():
    with create(table("mp_comments")):
        add("post_id", references("mp_posts"))
"""

LATER = """
def up():
    return "CREATE TABLE mp_later (id int)"

def down():
    return []
"""


async def columns(admin: Any, schema: str, table: str) -> dict[str, tuple[str, str]]:
    rows = await admin.fetch(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2",
        schema,
        table,
    )
    return {r[0]: (r[1], r[2]) for r in rows}


async def primary_key(admin: Any, schema: str, table: str) -> list[str]:
    rows = await admin.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
        f'"{schema}"."{table}"',
    )
    return [r[0] for r in rows]


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asyncecto.migration" and r.levelno == level]


# -- log_migrations_sql / log_migrator_sql ---------------------------------------------------------


@pytest.mark.asyncio
async def test_log_migrations_sql_logs_each_statement_at_info(
    repo: Repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    caplog.set_level(logging.DEBUG, logger="asyncecto")
    assert await run(repo, tmp_path, all=True, log_migrations_sql=True) == [V1]
    info = messages(caplog)
    create_sql = [m for m in info if m.startswith('CREATE TABLE "mp_posts"')]
    assert len(create_sql) == 1 and create_sql[0].endswith(" []")
    assert any(m.startswith('CREATE INDEX "mp_posts_title_index"') for m in info)
    # the DSL lines stay, and the SQL follows its command
    assert info.index("create table mp_posts") < info.index(create_sql[0])
    # the migrator's own statements are not logged without log_migrator_sql
    assert not any("schema_migrations" in m for m in info)

    caplog.clear()
    assert await run(repo, tmp_path, "down", all=True) == [V1]
    assert not any(m.startswith("DROP TABLE") for m in messages(caplog))  # off by default


@pytest.mark.asyncio
async def test_log_migrator_sql_logs_the_bookkeeping(
    repo: Repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    caplog.set_level(logging.DEBUG, logger="asyncecto")
    await run(repo, tmp_path, all=True, log_migrator_sql="debug")
    debug = messages(caplog, logging.DEBUG)
    assert (
        'CREATE TABLE IF NOT EXISTS "schema_migrations" (version bigint PRIMARY KEY, inserted_at timestamp(0)) []'
        in (debug)
    )
    assert 'SELECT version FROM "schema_migrations" ORDER BY version []' in debug
    assert f"INSERT INTO \"schema_migrations\" (version, inserted_at) VALUES ($1, timezone('UTC', now())) [{V1}]" in (
        debug
    )
    assert "begin []" in debug and "commit []" in debug
    assert any(m.startswith("SELECT pg_try_advisory_lock($1) [") for m in debug)
    assert not any(m.startswith('CREATE TABLE "mp_posts"') for m in debug)  # the migration's SQL is not


@pytest.mark.asyncio
async def test_log_sql_options_are_checked(repo: Repo, tmp_path: Path) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    with pytest.raises(ArgumentError, match=r"log_migrations_sql= must be True, False, a level name .* got 'loud'"):
        await run(repo, tmp_path, all=True, log_migrations_sql="loud")
    with pytest.raises(ArgumentError, match="strict_version_order= must be True or False, got 'yes'"):
        await run(repo, tmp_path, all=True, strict_version_order="yes")  # type: ignore[arg-type]


# -- strict_version_order -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_strict_version_order_refuses_an_older_pending_migration(
    repo: Repo, tmp_path: Path, admin: Any, space: str
) -> None:
    write(tmp_path, V2, "create_posts", POSTS)
    assert await run(repo, tmp_path, all=True) == [V2]
    write(tmp_path, V1, "create_comments", COMMENTS.replace('references("mp_posts")', '"integer"'))
    write(
        tmp_path, V3, "later", 'def up():\n    return "CREATE TABLE mp_later (id int)"\n\ndef down():\n    return []\n'
    )
    with pytest.raises(MigrationError) as info:
        await run(repo, tmp_path, all=True, strict_version_order=True)
    assert str(info.value) == STRICT_MESSAGE
    # nothing ran: not the old one, not the newer one after it
    assert await migrated_versions(repo) == [V2]
    assert await admin.fetchval("SELECT to_regclass($1)", f'"{space}".mp_later') is None
    with pytest.raises(MigrationError, match=f"You are running migration {V1} but"):
        await up(repo, V1, tmp_path / f"{V1}_create_comments.py", strict_version_order=True)
    assert await migrated_versions(repo) == [V2]


@pytest.mark.asyncio
async def test_without_strict_version_order_an_older_migration_runs_with_a_warning(
    repo: Repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, V2, "create_posts", POSTS)
    await run(repo, tmp_path, all=True)
    write(tmp_path, V1, "create_comments", COMMENTS)
    write(
        tmp_path, V3, "later", 'def up():\n    return "CREATE TABLE mp_later (id int)"\n\ndef down():\n    return []\n'
    )
    caplog.set_level(logging.INFO, logger="asyncecto")
    assert await run(repo, tmp_path, all=True) == [V1, V3]
    assert messages(caplog, logging.WARNING) == [STRICT_MESSAGE]  # V3 is newer: no warning for it
    assert await migrated_versions(repo) == [V1, V2, V3]


# -- migration_source / migration_default_prefix -------------------------------------------------------


@pytest.mark.asyncio
async def test_migration_source_names_the_versions_table(repo: Repo, tmp_path: Path, admin: Any, space: str) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    assert await run(repo, tmp_path, all=True, migration_source="my_versions") == [V1]
    assert await admin.fetchval("SELECT to_regclass($1)", f'"{space}".schema_migrations') is None
    assert [r[0] for r in await admin.fetch(f'SELECT version FROM "{space}".my_versions')] == [V1]
    assert await migrations(repo, tmp_path, migration_source="my_versions") == [("up", V1, "create_posts")]
    assert await migrations(repo, tmp_path) == [("down", V1, "create_posts")]  # schema_migrations, now created
    assert await run(repo, tmp_path, "down", all=True, migration_source="my_versions") == [V1]
    assert await migrated_versions(repo, migration_source="my_versions") == []


@pytest.mark.asyncio
async def test_migration_default_prefix_places_unprefixed_objects(
    repo: Repo, tmp_path: Path, admin: Any, space: str
) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    write(tmp_path, V2, "create_comments", COMMENTS)
    other = f"{space}_other"
    assert await run(repo, tmp_path, all=True, migration_default_prefix=other) == [V1, V2]
    assert await columns(admin, other, "mp_posts") != {}
    assert await columns(admin, space, "mp_posts") == {}
    fkey = await admin.fetchval(
        "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'mp_comments_post_id_fkey'"
    )
    assert fkey == f"{other}.mp_posts"
    # the versions table stays where the migrator's prefix (none: the search path) puts it
    assert [r[0] for r in await admin.fetch(f'SELECT version FROM "{space}".schema_migrations')] == [V1, V2]
    assert await run(repo, tmp_path, "down", all=True, migration_default_prefix=other) == [V2, V1]
    assert await columns(admin, other, "mp_posts") == {}


@pytest.mark.asyncio
async def test_the_migrator_prefix_beats_migration_default_prefix(
    repo: Repo, tmp_path: Path, admin: Any, space: str
) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    other = f"{space}_other"
    await run(repo, tmp_path, all=True, prefix=other, migration_default_prefix=space)
    assert await columns(admin, other, "mp_posts") != {}
    assert [r[0] for r in await admin.fetch(f'SELECT version FROM "{other}".schema_migrations')] == [V1]


# -- migration_primary_key / migration_foreign_key / migration_timestamps ---------------------------------


@pytest.mark.asyncio
async def test_migration_primary_key_and_timestamps(repo: Repo, tmp_path: Path, admin: Any, space: str) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    write(tmp_path, V2, "create_comments", COMMENTS)
    write(
        tmp_path,
        V3,
        "own",
        """
        from asyncecto.migration import add, create, table, timestamps

        def change():
            with create(table("mp_own", primary_key={"name": "code", "type": "string"})):
                timestamps(type="naive_datetime", updated_at=False)
            with create(table("mp_none", primary_key=False)):
                add("x", "integer")
        """,
    )
    settings: dict[str, Any] = {
        "migration_primary_key": {"name": "uuid", "type": "binary_id"},
        "migration_timestamps": {"type": "utc_datetime_usec", "inserted_at": "created_at"},
        "migration_foreign_key": {"column": "uuid"},  # as in Ecto, references() takes only the type from the key
    }
    assert await run(repo, tmp_path, all=True, **settings) == [V1, V2, V3]
    posts = await columns(admin, space, "mp_posts")
    assert posts == {
        "uuid": ("uuid", "NO"),
        "title": ("character varying", "YES"),
        "created_at": ("timestamp with time zone", "NO"),
        "updated_at": ("timestamp with time zone", "NO"),
    }
    assert await primary_key(admin, space, "mp_posts") == ["uuid"]
    # references() takes the primary key's type: a uuid foreign key
    assert (await columns(admin, space, "mp_comments"))["post_id"] == ("uuid", "YES")
    # a table's own primary key and timestamps() arguments win over the settings
    assert await columns(admin, space, "mp_own") == {
        "code": ("character varying", "NO"),
        "created_at": ("timestamp without time zone", "NO"),
    }
    assert await primary_key(admin, space, "mp_none") == []
    assert await run(repo, tmp_path, "down", all=True, **settings) == [V3, V2, V1]


@pytest.mark.asyncio
async def test_migration_primary_key_false_and_migration_foreign_key(
    repo: Repo, tmp_path: Path, admin: Any, space: str
) -> None:
    write(
        tmp_path,
        V1,
        "tables",
        """
        from asyncecto.migration import add, create, references, table

        def change():
            with create(table("mp_keyless")):
                add("x", "integer")
            with create(table("mp_parents", primary_key={"name": "code", "type": "string", "size": 8})):
                add("x", "integer")
            with create(table("mp_children", primary_key={"name": "id"})):
                add("parent_code", references("mp_parents"))
        """,
    )
    await run(
        repo,
        tmp_path,
        all=True,
        migration_primary_key=False,
        migration_foreign_key={"column": "code", "type": "string"},
    )
    assert await primary_key(admin, space, "mp_keyless") == []
    assert (await columns(admin, space, "mp_children"))["parent_code"] == ("character varying", "YES")
    target = await admin.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'mp_children_parent_code_fkey'"
    )
    assert target == f"FOREIGN KEY (parent_code) REFERENCES {space}.mp_parents(code)"


@pytest.mark.asyncio
async def test_migration_settings_are_checked(repo: Repo, tmp_path: Path) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"migration_primary_key": "uuid"}, "migration_primary_key must be a dict"),
        ({"migration_primary_key": {"name": "id", "nul": False}}, "unknown option 'nul' for column 'id'"),
        ({"migration_timestamps": {"type": 3}}, "migration_timestamps type must be a type name"),
        ({"migration_foreign_key": {"on_delete": "x"}}, "unknown key 'on_delete' in migration_foreign_key"),
        ({"migration_source": ""}, "migration_source .* must be a non-empty string"),
        ({"migration_sorce": "x"}, "unknown migration option 'migration_sorce'"),
    ]
    for settings, message in bad:
        with pytest.raises(ArgumentError, match=message):
            await run(repo, tmp_path, all=True, **settings)
    assert await migrated_versions(repo) == []  # nothing was run (the checks come first)


@pytest.mark.asyncio
async def test_a_concurrent_index_in_a_transaction_warns(
    repo: Repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        V1,
        "concurrent",
        """
        from asyncecto.migration import create, index

        def up():
            create(index("mp_x", ["a"], concurrently=True))

        def down():
            return []
        """,
    )
    await repo.query("CREATE TABLE mp_x (a int)")
    caplog.set_level(logging.INFO, logger="asyncecto")
    with pytest.raises(Exception, match="CONCURRENTLY cannot run inside a transaction block"):
        await run(repo, tmp_path, all=True)
    assert messages(caplog, logging.WARNING) == [
        f"Migration {V1}_concurrent has set index `mp_x_a_index` to concurrently but did not disable ddl "
        "transaction. Please set:\n\n    disable_ddl_transaction = True\n"
    ]


# -- the command ------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Iterator[Project]:
    p = Project(tmp_path, database_url)
    try:
        p.ok("create", "--quiet")
        yield p
    finally:
        p.drop_all()


def test_cli_log_migrations_sql_and_log_migrator_sql(project: Project) -> None:
    write(project.migrations, V1, "create_posts", POSTS)
    out = project.ok("migrate", "--log-migrations-sql")
    assert "[info] create table mp_posts\n" in out
    assert '[info] CREATE TABLE "mp_posts" (' in out
    assert "schema_migrations" not in out
    out = project.ok("rollback", "--log-migrations-sql", "--log-migrator-sql")
    assert '[info] DROP TABLE "mp_posts" []' in out
    assert f'[info] DELETE FROM "schema_migrations" WHERE version = $1 [{V1}]' in out
    assert "[info] begin []" in out and "[info] commit []" in out
    out = project.ok("migrate")
    assert "CREATE TABLE" not in out  # off by default


def test_cli_strict_version_order(project: Project) -> None:
    write(project.migrations, V2, "create_posts", POSTS)
    project.ok("migrate")
    write(project.migrations, V1, "create_comments", COMMENTS.replace('references("mp_posts")', '"integer"'))
    result = project.run("migrate", "--strict-version-order")
    assert result.returncode == 1
    assert result.stderr == f"** (MigrationError) {STRICT_MESSAGE}\n"
    assert project.versions() == [V2]
    out = project.ok("migrate")
    assert f"[warning] You are running migration {V1} but an older migration with version {V2}" in out
    assert project.versions() == [V1, V2]
    assert project.run("rollback", "--strict-version-order").returncode == 2  # a migrate flag only


def test_cli_reads_migration_settings_from_pyproject(project: Project) -> None:
    project.write_pyproject(
        f'url = "{project.url}"\nmigrations = "db/migrations"\n'
        'migration_source = "versions"\n'
        'migration_primary_key = { name = "uuid", type = "binary_id" }\n'
        'migration_timestamps = { type = "utc_datetime", inserted_at = "created_at" }\n'
    )
    write(project.migrations, V1, "create_posts", POSTS)
    project.ok("migrate")
    assert project.query("SELECT version FROM versions") == [(V1,)]
    assert "schema_migrations" not in project.tables()
    cols = project.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'mp_posts' ORDER BY 1"
    )
    assert cols == [
        ("created_at", "timestamp with time zone"),
        ("title", "character varying"),
        ("updated_at", "timestamp with time zone"),
        ("uuid", "uuid"),
    ]
    assert f"  up        {V1}  create_posts" in project.ok("migrations")
    project.ok("rollback")
    assert project.query("SELECT version FROM versions") == []


def test_cli_refuses_bad_migration_settings(project: Project) -> None:
    project.write_pyproject(f'url = "{project.url}"\nmigration_primary_key = "uuid"\n')
    result = project.run("migrate")
    assert result.returncode == 2
    assert "[tool.asyncecto] migration_primary_key must be a dict (a table in pyproject.toml), got: 'uuid'" in (
        result.stderr
    )
    project.write_pyproject(f'url = "{project.url}"\nmigration_primary_key = false\nmigration_sorce = "x"\n')
    result = project.run("migrate")
    assert result.returncode == 2 and "unknown key(s) in [tool.asyncecto]: migration_sorce" in result.stderr


# -- skip_table_creation ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_skip_table_creation_leaves_the_versions_table_alone(
    repo: Repo, tmp_path: Path, admin: Any, space: str
) -> None:
    write(tmp_path, V1, "create_posts", POSTS)
    with pytest.raises(DatabaseError, match='relation "schema_migrations" does not exist'):
        await migrated_versions(repo, skip_table_creation=True)
    with pytest.raises(DatabaseError, match='relation "schema_migrations" does not exist'):
        await migrations(repo, tmp_path, skip_table_creation=True)
    with pytest.raises(DatabaseError, match='relation "schema_migrations" does not exist'):
        await run(repo, tmp_path, all=True, skip_table_creation=True)
    assert await admin.fetchval("SELECT to_regclass($1)", f'"{space}".schema_migrations') is None
    assert await migrated_versions(repo) == []  # creates it
    assert await run(repo, tmp_path, all=True, skip_table_creation=True) == [V1]
    assert await migrations(repo, tmp_path, skip_table_creation=True) == [("up", V1, "create_posts")]
