"""The ``asyncecto`` command end to end in a temporary project, on a real database.

Most runs call ``main(argv)`` in this process (cwd, environment, sys.path, logging and the project's
imports put back after each); a few run ``python -m asyncecto`` as a process of its own.

Each test gets a project folder (pyproject.toml with ``[tool.asyncecto]``) and a database name of
its own (``asyncecto_cli_<random>``), dropped at teardown. Every check reads what the command
printed, its exit code, the files it wrote, and the database itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import os
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncecto.cli import main
from asyncecto.cli._project import maintenance_url
from asyncecto.repo import Repo, build_config

pytestmark = [pytest.mark.timeout(120), pytest.mark.no_sandbox]  # real commits and connections

SQL_MIGRATION = """\
def up():
    return "ALTER TABLE posts ADD COLUMN body text"


def down():
    return ["ALTER TABLE posts DROP COLUMN body"]
"""

COMMENTS_MIGRATION = """\
from asyncecto.migration import add, create, references, table


def change():
    with create(table("comments")):
        add("post_id", references("posts"))
        add("text", "string")
"""


class Project:
    """A temporary project and the database it points at."""

    def __init__(self, root: Path, server_url: str) -> None:
        self.root = root
        self.server_url = server_url
        self.databases: list[str] = []
        self.database = self.new_database()
        self.url = self.url_for(self.database)
        self.write_pyproject(f'url = "{self.url}"\nmigrations = "db/migrations"\n')
        self.migrations = root / "db" / "migrations"

    def new_database(self) -> str:
        name = f"asyncecto_cli_{uuid.uuid4().hex[:10]}"
        self.databases.append(name)
        return name

    def url_for(self, database: str) -> str:
        return maintenance_url(build_config(self.server_url), database)

    def write_pyproject(self, table: str) -> None:
        (self.root / "pyproject.toml").write_text(f'[project]\nname = "demo"\n\n[tool.asyncecto]\n{table}')

    def run(
        self, *args: str, env: dict[str, str] | None = None, process: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the command in this process (``main(argv)``), or as ``python -m asyncecto`` when ``process``."""
        full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ASYNCECTO_EDITOR")}
        full_env.update(env or {})
        if process:
            return subprocess.run(
                [sys.executable, "-m", "asyncecto", *args],
                cwd=self.root,
                env=full_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        return _in_process(list(args), self.root, full_env)

    def ok(self, *args: str, env: dict[str, str] | None = None, process: bool = False) -> str:
        result = self.run(*args, env=env, process=process)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def query(self, sql: str, database: str | None = None) -> list[tuple[object, ...]]:
        async def go() -> list[tuple[object, ...]]:
            repo = Repo(self.url_for(database or self.database), pool_size=1, log=False)
            async with repo:
                return (await repo.query(sql)).rows

        return asyncio.run(go())

    def exists(self, database: str) -> bool:
        rows = self.query(f"SELECT count(*) FROM pg_database WHERE datname = '{database}'", "postgres")
        return rows[0][0] == 1

    def versions(self) -> list[int]:
        return [int(str(r[0])) for r in self.query("SELECT version FROM schema_migrations ORDER BY version")]

    def tables(self) -> set[str]:
        rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {str(r[0]) for r in rows}

    def drop_all(self) -> None:
        async def go() -> None:
            for name in self.databases:
                await Repo(self.url_for(name), log=False).storage_down()

        asyncio.run(go())


def _in_process(argv: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``main(argv)`` as a fresh process would see it: cwd, environment, sys.path and imports restored after."""
    saved_env, saved_path, saved_cwd = dict(os.environ), list(sys.path), Path.cwd()
    logger = logging.getLogger("asyncecto")
    saved_handlers, saved_level, saved_propagate = list(logger.handlers), logger.level, logger.propagate
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(root)
    importlib.invalidate_caches()  # files the test wrote since the last run
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        logger.handlers[:] = saved_handlers
        logger.setLevel(saved_level)
        logger.propagate = saved_propagate
        for name, module in list(sys.modules.items()):  # the project's own modules (its repo) are imported anew
            files = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or ())]
            if any(isinstance(f, str) and Path(f).resolve().is_relative_to(root.resolve()) for f in files):
                del sys.modules[name]
    return subprocess.CompletedProcess(["asyncecto", *argv], code, out.getvalue(), err.getvalue())


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Iterator[Project]:
    p = Project(tmp_path, database_url)
    try:
        yield p
    finally:
        p.drop_all()


def _version(path: Path) -> int:
    return int(path.name.partition("_")[0])


def test_create_migrate_rollback_status_drop(project: Project) -> None:
    # the console command itself, in a process of its own; the other runs call main() in this one
    assert project.ok("create", process=True) == f"The database for {project.database} has been created\n"
    assert project.exists(project.database)
    assert project.ok("create") == f"The database for {project.database} has already been created\n"
    assert project.ok("create", "--quiet") == ""

    # a generated DSL migration, then two written by hand (plain SQL, and the DSL)
    out = project.ok(
        "gen.migration", "CreatePosts", "--change", 'with create(table("posts")):\n    add("title", "string")'
    )
    [first] = project.migrations.glob("*_create_posts.py")
    assert out == f"* creating db/migrations\n* creating db/migrations/{first.name}\n"
    v1 = _version(first)
    v2, v3 = v1 + 1, v1 + 2
    (project.migrations / f"{v2}_add_body.py").write_text(SQL_MIGRATION)
    (project.migrations / f"{v3}_create_comments.py").write_text(COMMENTS_MIGRATION)

    out = project.ok("migrate", "--step", "2")
    assert re.search(rf"^\d\d:\d\d:\d\d\.\d{{3}} \[info\] == Running {v1} create_posts\.change/0 forward$", out, re.M)
    assert re.search(rf"\[info\] == Migrated {v1} in \d+\.\ds$", out, re.M)
    assert re.search(rf"\[info\] == Migrated {v2} in \d+\.\ds$", out, re.M)
    assert str(v3) not in out
    assert project.versions() == [v1, v2]
    assert {"posts", "schema_migrations"} <= project.tables() and "comments" not in project.tables()

    out = project.ok("migrate")  # default: all
    assert f"== Migrated {v3} in" in out and f"Running {v1}" not in out
    assert project.versions() == [v1, v2, v3]
    assert "already up" in project.ok("migrate")

    assert project.ok("migrations") == (
        f"\nRepo: {project.database}\n\n"
        "  Status    Migration ID    Migration Name\n"
        "--------------------------------------------------\n"
        f"  up        {v1}  create_posts\n"
        f"  up        {v2}  add_body\n"
        f"  up        {v3}  create_comments\n\n"
    )

    out = project.ok("rollback")  # default: one step
    assert f"== Running {v3} create_comments.change/0 backward" in out and str(v2) not in out
    assert project.versions() == [v1, v2] and "comments" not in project.tables()
    project.ok("rollback", "--to", str(v2))
    assert project.versions() == [v1]
    columns = project.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'")
    assert "body" not in {r[0] for r in columns}
    assert project.ok("migrate", "--to-exclusive", str(v3), "--quiet") == ""
    assert project.versions() == [v1, v2]
    project.ok("rollback", "--all")
    assert project.versions() == [] and project.tables() == {"schema_migrations"}
    status = project.ok("migrations")
    assert f"  down      {v1}  create_posts\n" in status and f"  down      {v3}  create_comments\n" in status

    # an applied version whose file is gone
    project.ok("migrate", "-n", "1")
    first.unlink()
    assert f"  up        {v1}  ** FILE NOT FOUND **\n" in project.ok("migrations")

    refused = project.run("drop")
    assert refused.returncode == 2 and "pass --force" in refused.stderr
    assert project.exists(project.database)
    assert project.ok("drop", "--force") == f"The database for {project.database} has been dropped\n"
    assert not project.exists(project.database)
    assert project.ok("drop", "-f") == f"The database for {project.database} has already been dropped\n"


def test_failures_exit_1_with_the_message_and_no_traceback(project: Project) -> None:
    project.ok("create", "-q")
    project.migrations.mkdir(parents=True)
    (project.migrations / "20240101000000_ok.py").write_text('def up():\n    return "CREATE TABLE ok (id int)"\n')
    (project.migrations / "20240102000000_boom.py").write_text(
        'def up():\n    return ["CREATE TABLE half (id int)", "SELECT 1/0"]\n'
    )
    failed = project.run("migrate", process=True)
    assert failed.returncode == 1
    assert "division by zero" in failed.stderr and "Traceback" not in failed.stderr
    assert "== Migrated 20240101000000" in failed.stdout
    assert project.versions() == [20240101000000]
    assert project.tables() == {"ok", "schema_migrations"}  # the failed one is rolled back

    traced = project.run("migrate", "--traceback")
    assert traced.returncode == 1 and "Traceback (most recent call last)" in traced.stderr

    (project.migrations / "20240102000000_boom.py").write_text("raise RuntimeError('broken file')\n")
    broken = project.run("migrate")
    assert broken.returncode == 1
    assert "RuntimeError" in broken.stderr and "broken file" in broken.stderr and "--traceback" in broken.stderr

    # --prefix: the migrations and their schema_migrations rows go to another PostgreSQL schema
    tenant = project.root / "tenant_migrations"
    tenant.mkdir()
    (tenant / "20240301000000_notes.py").write_text(
        "from asyncecto.migration import add, create, table\n\n\n"
        'def change():\n    with create(table("notes")):\n        add("text", "string")\n'
    )
    project.query("CREATE SCHEMA tenant")
    tenant_flags = ("--prefix", "tenant", "--migrations-path", "tenant_migrations")
    small = project.run("migrate", *tenant_flags, "--pool-size", "1")
    assert small.returncode == 1 and "connection pool size is less than 2" in small.stderr
    project.ok("migrate", *tenant_flags, "-q")
    assert project.query("SELECT version FROM tenant.schema_migrations") == [(20240301000000,)]
    assert project.query("SELECT to_regclass('tenant.notes') IS NOT NULL") == [(True,)]
    status = project.ok("migrations", *tenant_flags)
    assert "  up        20240301000000  notes\n" in status

    missing = project.run("migrate", "--migrations-path", "nowhere")
    assert missing.returncode == 1 and "the migrations folder nowhere does not exist" in missing.stderr


def test_usage_and_configuration_errors_exit_2(project: Project, tmp_path: Path) -> None:
    unknown = project.run("frobnicate", process=True)
    assert unknown.returncode == 2 and "invalid choice: 'frobnicate'" in unknown.stderr
    both = project.run("migrate", "--step", "1", "--to", "5")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    bad_url = project.run("create", "--url", "mysql://localhost/x")
    assert bad_url.returncode == 2 and "unsupported scheme" in bad_url.stderr and "--url" in bad_url.stderr
    assert project.run("--help").returncode == 0

    project.write_pyproject("")  # a [tool.asyncecto] table with nothing in it
    unconfigured = project.run("create")
    assert unconfigured.returncode == 2 and "no repo configured" in unconfigured.stderr
    bad_repo = project.run("create", "-r", "no_such_module:repo")
    assert bad_repo.returncode == 2 and "cannot import repo 'no_such_module:repo'" in bad_repo.stderr
    project.write_pyproject('migration = "x"\n')
    typo = project.run("create")
    assert typo.returncode == 2 and "unknown key(s) in [tool.asyncecto]: migration" in typo.stderr


def test_configuration_precedence(project: Project) -> None:
    # `drop -f` of a database that does not exist names its target without creating anything
    own, from_env, from_flag = project.new_database(), project.new_database(), project.new_database()
    package = project.root / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "db.py").write_text(f"from asyncecto import Repo\n\nrepo = Repo({project.url_for(own)!r})\n")
    project.write_pyproject('repo = "app.db:repo"\nurl = "postgres://localhost/unused"\n')
    env = {"DATABASE_URL": project.url_for(from_env)}

    def target(*args: str, env: dict[str, str] | None = None) -> str:
        out = project.ok("drop", "-f", *args, env=env)
        found = re.fullmatch(r"The database for (\w+) has already been dropped\n", out)
        assert found, out
        return found[1]

    assert target("--url", project.url_for(from_flag), env=env) == from_flag  # a flag first
    assert target(env=env) == from_env  # then DATABASE_URL
    assert target() == "unused"  # then pyproject's url, which replaces the repo's own
    project.write_pyproject('repo = "app.db:repo"\nmigrations = "db/migrations"\n')
    assert target() == own  # the repo's own URL
    (package / "other.py").write_text(f"from asyncecto import Repo\n\nrepo = Repo({project.url!r})\n")
    assert target("-r", "app.other:repo") == project.database  # -r beats pyproject's repo
    # the repo's import path names it in the status table; flags before the subcommand work too
    project.ok("create", "-q", "-r", "app.other:repo")
    project.migrations.mkdir(parents=True)
    status = project.ok("-r", "app.other:repo", "migrations")
    assert status.startswith("\nRepo: app.other:repo\n")
    assert not any(project.exists(name) for name in (own, from_env, from_flag))


def test_gen_migration_files_duplicates_and_editor(project: Project) -> None:
    marker = project.root / "opened.txt"
    editor = shlex.join([sys.executable, "-c", f"import sys; open({str(marker)!r}, 'w').write(sys.argv[1])"])
    out = project.ok("gen.migration", "create_posts", env={"ASYNCECTO_EDITOR": editor})
    [path] = project.migrations.glob("*.py")
    assert re.fullmatch(r"\d{14}_create_posts\.py", path.name)
    assert f"* creating db/migrations/{path.name}" in out
    assert marker.read_text() == str(path)  # the editor got the file's path
    text = path.read_text()
    assert "from asyncecto.migration import " in text and "def change() -> None:\n    pass\n" in text
    compile(text, str(path), "exec")

    duplicate = project.run("gen.migration", "CreatePosts")
    assert duplicate.returncode == 1
    assert duplicate.stderr == "migration can't be created, there is already a migration file with name CreatePosts.\n"
    project.ok("gen.migration", "add_index")
    versions = sorted(_version(p) for p in project.migrations.glob("*.py"))
    assert len(set(versions)) == 2  # two in the same second still get distinct versions
    bad = project.run("gen.migration", "no way!")
    assert bad.returncode == 2 and "letters, digits and underscores" in bad.stderr
    assert len(list(project.migrations.glob("*.py"))) == 2


def test_gen_repo_writes_a_module_the_command_can_use(project: Project) -> None:
    out = project.ok("gen.repo", "-r", "shop.repo:repo")
    module = project.root / "shop" / "repo.py"
    assert "* creating shop/repo.py" in out
    assert '[tool.asyncecto]\n    repo = "shop.repo:repo"\n    migrations = "db/migrations"' in out
    assert 'os.environ.get("DATABASE_URL") or "postgres://postgres@localhost:5432/shop_dev"' in module.read_text()
    # the module imports and its repo reads DATABASE_URL (`drop -f` of a missing database: no server work)
    used = project.ok("drop", "-f", "-r", "shop.repo:repo", env={"DATABASE_URL": project.url})
    assert used == f"The database for {project.database} has already been dropped\n"
    again = project.run("gen.repo", "-r", "shop.repo:repo")
    assert again.returncode == 1 and "shop/repo.py already exists" in again.stderr


def test_dump_and_load_the_structure(project: Project) -> None:
    project.ok("create", "-q")
    project.migrations.mkdir(parents=True)
    (project.migrations / "20240101000000_create_posts.py").write_text(
        'def up():\n    return "CREATE TABLE posts (id bigserial PRIMARY KEY, title text)"\n'
    )
    project.ok("migrate", "-q")
    structure = project.root / "db" / "structure.sql"  # beside the migrations folder
    assert project.ok("dump") == f"The structure for {project.database} has been dumped to db/structure.sql\n"
    text = structure.read_text()
    assert "CREATE TABLE public.posts" in text
    assert text.endswith('INSERT INTO "public"."schema_migrations" (version) VALUES (20240101000000);\n')

    project.query("DROP TABLE posts, schema_migrations")
    out = project.ok("load")
    assert re.fullmatch(rf"The structure for {project.database} has been loaded from db/structure.sql in \d+ms\n", out)
    assert project.tables() == {"posts", "schema_migrations"} and project.versions() == [20240101000000]

    again = project.run("load")
    assert again.returncode == 2 and "already loaded" in again.stderr and "--skip-if-loaded" in again.stderr
    assert "skipped" in project.ok("load", "--skip-if-loaded")
    forced = project.run("load", "--force")
    assert forced.returncode == 1 and "couldn't be loaded" in forced.stderr and "already exists" in forced.stderr

    custom = project.root / "custom.sql"
    project.ok("dump", "-d", str(custom), "-q")
    assert "CREATE TABLE public.posts" in custom.read_text()

    no_tools = project.run("dump", env={"PATH": str(project.root / "empty")})
    assert no_tools.returncode == 1 and "pg_dump was not found on PATH" in no_tools.stderr
    no_psql = project.run("load", env={"PATH": str(project.root / "empty")})
    assert no_psql.returncode == 1 and "psql was not found on PATH" in no_psql.stderr
    missing = project.run("load", "-d", "missing.sql")
    assert missing.returncode == 1 and "missing.sql does not exist" in missing.stderr


async def test_force_drop_ends_other_sessions(project: Project) -> None:
    await Repo(project.url, log=False).storage_up()
    other = Repo(project.url, pool_size=1, log=False)
    async with other:
        await other.query("SELECT 1")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "asyncecto",
            "drop",
            "--force",
            "--force-drop",
            cwd=project.root,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr
        assert stdout.decode() == f"The database for {project.database} has been dropped\n"
    assert not await asyncio.to_thread(project.exists, project.database)


def test_entry_point_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with open(Path(__file__).parents[2] / "pyproject.toml", "rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    assert scripts["asyncecto"] == "asyncecto.cli:main"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("create", "drop", "migrate", "rollback", "migrations", "gen.migration", "gen.repo", "dump", "load"):
        assert command in out
    assert main(["migrate", "--step", "x"]) == 2
    assert "invalid int value: 'x'" in capsys.readouterr().err
