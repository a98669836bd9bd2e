"""Ecto parity of raw SQL on the Repo (explain options, table_exists, format_table), connection
``after_connect``, migration NOTICEs, migrate-on-boot helpers and the sandbox's ownership_timeout."""

from __future__ import annotations

import asyncio
import logging
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from asyncecto import Repo
from asyncecto.adapters.postgres import AfterConnectConnection
from asyncecto.errors import ArgumentError, AsyncEctoError, SandboxOwnershipTimeoutError
from asyncecto.migration import migrate_on_start, migrations_path, run, with_repo
from asyncecto.query import from_, where
from asyncecto.testing import checkin, checkout, sandbox

from ..schemas import Weather
from .test_cli import Project as CliProject


async def test_explain_sends_ectos_flags(repo: Repo) -> None:
    text = await repo.explain(from_(Weather) | where(city="Oslo"), analyze=True, timing=False, summary=True)
    assert "Seq Scan on weather" in text and "actual rows=" in text and "Execution Time" in text
    assert "actual time=" not in text  # TIMING FALSE
    settings = await repo.explain(Weather, settings=True, costs=False, format="json")
    assert "Total Cost" not in settings[0]["Plan"]


async def test_explain_fallback_generic_plan_uses_null_parameters(repo: Repo) -> None:
    q = from_(Weather) | where(city="Oslo")
    text = await repo.explain(q, plan="fallback_generic")
    assert "$1" in text and "weather" in text
    with pytest.raises(ArgumentError, match="cannot be used with plan='fallback_generic'"):
        await repo.explain(q, plan="fallback_generic", analyze=True)
    with pytest.raises(ArgumentError, match="explain plan must be 'custom' or 'fallback_generic', got 'x'"):
        await repo.explain(q, plan="x")


async def test_explain_without_a_wrapping_transaction(repo: Repo) -> None:
    text = await repo.explain(Weather, wrap_in_transaction=False, buffers=True)
    assert "weather" in text
    with pytest.raises(ArgumentError, match="explain option wrap_in_transaction must be True or False"):
        await repo.explain(Weather, wrap_in_transaction="yes")  # type: ignore[arg-type]


async def test_table_exists(repo: Repo) -> None:
    assert await repo.table_exists("weather") is True
    assert await repo.table_exists("no_such_table") is False
    with pytest.raises(ArgumentError, match="table_exists takes a table name, got 3"):
        await repo.table_exists(3)  # type: ignore[arg-type]


async def test_format_table_of_a_query(repo: Repo) -> None:
    result = await repo.query("SELECT 1 AS a, NULL::text AS bb UNION ALL SELECT 22, 'x' ORDER BY a")
    assert repo.format_table(result) == ("+----+----+\n| a  | bb |\n+----+----+\n| 1  |    |\n| 22 | x  |\n+----+----+")
    empty = await repo.query("SELECT 1 AS a WHERE false")
    assert repo.format_table(empty) == "+---+\n| a |\n+---+"
    assert repo.format_table(await repo.query("SELECT")) == ""


# -- the migrator: notices, migrations_path, with_repo, migrate_on_start ---------------------------

V1 = 20240101120000


@pytest.fixture
async def space(database_url: str) -> AsyncIterator[str]:
    name = f"migsql_{uuid.uuid4().hex[:10]}"
    async with Repo(database_url, pool_size=1) as admin:
        await admin.query(f'CREATE SCHEMA "{name}"')
        yield name
        await admin.query(f'DROP SCHEMA "{name}" CASCADE')


def _notice_migration(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    body = """
        def up():
            return [
                "DO $$ BEGIN RAISE NOTICE 'hello from up'; END $$",
                "DO $$ BEGIN RAISE WARNING 'careful'; END $$",
                "CREATE TABLE mig_n (id int)",
            ]

        def down():
            return "DROP TABLE mig_n"
        """
    (folder / f"{V1}_noisy.py").write_text(textwrap.dedent(body))
    return folder


@pytest.mark.no_sandbox
async def test_migration_notices_are_logged_at_their_level(
    database_url: str, space: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _notice_migration(tmp_path / "migrations")
    async with Repo(database_url, pool_size=2, server_settings={"search_path": space}) as repo:
        with caplog.at_level(logging.DEBUG, logger="asyncecto.migration"):
            assert await run(repo, folder, all=True) == [V1]
            await asyncio.sleep(0)
        got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "asyncecto.migration"]
        assert (logging.INFO, "hello from up") in got and (logging.WARNING, "careful") in got
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="asyncecto.migration"):
            await run(repo, folder, "down", all=True, log=False)
            await run(repo, folder, all=True, log=False)
            await asyncio.sleep(0)
        assert not [r for r in caplog.records if r.name == "asyncecto.migration"]
        # the listener is gone once the migration ends: later notices on the pool are not logged
        with caplog.at_level(logging.DEBUG, logger="asyncecto.migration"):
            await repo.query("DO $$ BEGIN RAISE NOTICE 'after'; END $$")
            await asyncio.sleep(0)
        assert "after" not in [r.getMessage() for r in caplog.records]


def test_migrations_path_follows_the_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.asyncecto]\nmigrations = "db/migrations"\n')
    repo = Repo("postgres://localhost/app")
    assert migrations_path(repo, start=tmp_path) == tmp_path.resolve() / "db" / "migrations"
    assert migrations_path(repo, "other", start=tmp_path) == tmp_path.resolve() / "other"
    with pytest.raises(ArgumentError, match="migrations_path takes a Repo, got 'x'"):
        migrations_path(cast(Any, "x"))


@pytest.mark.no_sandbox
async def test_with_repo_starts_and_stops_a_repo(database_url: str) -> None:
    repo = Repo(database_url, pool_size=1)

    async def one(r: Repo) -> Any:
        return (await r.query("SELECT 1")).rows

    assert await with_repo(repo, one) == [(1,)]
    assert repo.state == "closed"
    assert await with_repo(Repo(database_url, pool_size=1), lambda r: r.state) == "running"
    async with Repo(database_url, pool_size=1) as running:
        assert await with_repo(running, one) == [(1,)]
        assert running.state == "running"  # a running repo is left running


@pytest.mark.no_sandbox
async def test_migrate_on_start_runs_pending_migrations(database_url: str, space: str, tmp_path: Path) -> None:
    folder = _notice_migration(tmp_path / "migrations")
    repo = Repo(database_url, pool_size=2, server_settings={"search_path": space})
    with pytest.raises(ArgumentError, match="migrate_on_start needs a started repo, got one that is new"):
        async with migrate_on_start(repo):
            pass
    async with repo:
        async with migrate_on_start(repo, path=folder, skip=True) as ran:
            assert ran == {}
        async with migrate_on_start(repo, path=folder, log=False) as ran:
            assert ran == {repo.name: [V1]}
            assert await repo.table_exists("mig_n")
        async with migrate_on_start(repo, path=folder, log=False) as ran:
            assert ran == {repo.name: []}


# -- the command line: several -r repos --------------------------------------------------------------


@pytest.fixture
def cli_project(tmp_path: Path, database_url: str) -> Iterator[CliProject]:
    p = CliProject(tmp_path, database_url)
    try:
        yield p
    finally:
        p.drop_all()


@pytest.mark.no_sandbox
@pytest.mark.timeout(120)
def test_cli_acts_on_each_repo_given(cli_project: CliProject) -> None:
    project = cli_project
    other = project.new_database()
    package = project.root / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text(f"from asyncecto import Repo\n\nrepo = Repo({project.url!r})\n")
    (package / "two.py").write_text(f"from asyncecto import Repo\n\nrepo = Repo({project.url_for(other)!r})\n")
    project.write_pyproject('migrations = "db/migrations"\n')
    out = project.ok("create", "-r", "app.one:repo", "-r", "app.two:repo")
    assert out == f"The database for {project.database} has been created\nThe database for {other} has been created\n"
    project.migrations.mkdir(parents=True)
    (project.migrations / f"{V1}_t.py").write_text("def up():\n    return 'CREATE TABLE t (id int)'\n")
    project.ok("migrate", "-q", "-r", "app.one:repo", "-r", "app.two:repo")
    assert project.query("SELECT count(*) FROM t") == [(0,)]
    assert project.query("SELECT count(*) FROM t", other) == [(0,)]
    status = project.ok("migrations", "-r", "app.one:repo", "-r", "app.two:repo")
    assert "Repo: app.one:repo" in status and "Repo: app.two:repo" in status
    refused = project.run("dump", "-r", "app.one:repo", "-r", "app.two:repo")
    assert refused.returncode == 2
    assert "dump acts on one repo, got 2 -r/--repo flags (app.one:repo, app.two:repo)" in refused.stderr


# -- the sandbox's ownership_timeout ------------------------------------------------------------------


@pytest.mark.no_sandbox
async def test_sandbox_ownership_timeout_takes_the_connection_back(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Repo(database_url, pool_size=2) as repo:
        with pytest.raises(SandboxOwnershipTimeoutError) as caught:
            async with sandbox(repo, ownership_timeout=0.3):
                await repo.query("INSERT INTO weather (city) VALUES ('owned')")
                with caplog.at_level(logging.ERROR, logger="asyncecto"):
                    await asyncio.sleep(0.6)
                assert any("owner timed out because it owned the connection" in r.getMessage() for r in caplog.records)
                assert repo.pool_stats()["in_use"] == 0  # taken back
                with pytest.raises(SandboxOwnershipTimeoutError, match=r"ownership_timeout=0\.3s"):
                    await repo.query("SELECT 1")  # the shared sandbox refuses further use
        assert caught.value.ownership_timeout == 0.3
        assert (await repo.query("SELECT count(*) FROM weather WHERE city = 'owned'")).rows == [(0,)]
        async with sandbox(repo, ownership_timeout=5):  # within the limit: nothing happens
            await repo.query("SELECT 1")


@pytest.mark.no_sandbox
async def test_sandbox_ownership_timeout_cuts_a_statement_in_flight(database_url: str) -> None:
    async with Repo(database_url, pool_size=2) as repo:
        sb = await checkout(repo, shared=False, ownership_timeout=0.3)
        with pytest.raises(AsyncEctoError):
            await repo.query("SELECT pg_sleep(3)")
        with pytest.raises(SandboxOwnershipTimeoutError):
            await checkin(repo)
        assert sb.timed_out and sb.state == "closed"
        assert repo.pool_stats()["in_use"] == 0
        with pytest.raises(ArgumentError, match="ownership_timeout must be a positive number of seconds or None"):
            sandbox(repo, ownership_timeout=0)


# -- the after_connect connection option -------------------------------------------------------------


@pytest.mark.no_sandbox
async def test_after_connect_runs_on_each_new_connection(database_url: str) -> None:
    seen: list[str] = []

    async def set_path(conn: AfterConnectConnection) -> None:
        seen.append(await conn.execute("SET application_name TO 'after_connect_test'"))
        assert await conn.fetch("SELECT 1 + $1::int", [1]) == [(2,)]

    async with Repo(database_url, pool_size=2, min_size=2, after_connect=set_path) as repo:
        assert seen == ["SET", "SET"]
        assert (await repo.query("SHOW application_name")).rows == [("after_connect_test",)]
        await repo.query("SET application_name TO 'changed'")  # raw SQL: the connection is reset after
        async with repo.checkout():
            names = {(await repo.query("SHOW application_name")).rows[0][0]}
        assert names == {"after_connect_test"}  # the reset ran after_connect again

    sync_seen: list[object] = []
    async with Repo(database_url, pool_size=1, after_connect=sync_seen.append) as repo:
        assert len(sync_seen) == 1 and isinstance(sync_seen[0], AfterConnectConnection)


@pytest.mark.no_sandbox
async def test_after_connect_is_checked_and_its_failure_reaches_start(database_url: str) -> None:
    with pytest.raises(ArgumentError, match="after_connect"):
        Repo(database_url, after_connect="SET x")

    def boom(conn: AfterConnectConnection) -> None:
        raise RuntimeError("no setup")

    repo = Repo(database_url, pool_size=1, after_connect=boom)
    with pytest.raises(RuntimeError, match="no setup"):
        await repo.start()
    await repo.stop()


@pytest.mark.no_sandbox
@pytest.mark.timeout(120)
def test_cli_query_prints_a_table_in_a_read_only_transaction(cli_project: CliProject) -> None:
    project = cli_project
    project.ok("create", "-q")
    out = project.ok("query", "SELECT g AS n, 'x' || g AS label FROM generate_series(1, 3) g", "--limit", "2", "--sql")
    assert out == (
        "SELECT g AS n, 'x' || g AS label FROM generate_series(1, 3) g\n"
        "+---+-------+\n| n | label |\n+---+-------+\n| 1 | x1    |\n| 2 | x2    |\n+---+-------+\n"
        "3 rows (showing 2)\n"
    )
    refused = project.run("query", "CREATE TABLE nope (id int)")
    assert refused.returncode == 1
    assert "read-only transaction" in refused.stderr
    assert project.run("query", "SELECT 1", "--limit", "0").returncode == 2
