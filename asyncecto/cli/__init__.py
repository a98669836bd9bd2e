"""The ``asyncecto`` command: Ecto's mix tasks for an asyncecto project.

.. code-block:: console

    $ asyncecto create                      # CREATE DATABASE
    $ asyncecto gen.migration create_posts  # migrations/20240101120000_create_posts.py
    $ asyncecto migrate                     # apply every pending migration
    $ asyncecto rollback                    # revert the last one
    $ asyncecto migrations                  # the status table
    $ asyncecto dump && asyncecto load      # structure.sql through pg_dump / psql
    $ asyncecto drop --force

Configuration, highest precedence first: flags (``--url``, ``-r/--repo``, ``--migrations-path``),
``DATABASE_URL``, then ``[tool.asyncecto]`` in the nearest pyproject.toml::

    [tool.asyncecto]
    repo = "myapp.repo:repo"    # import path of a Repo; its options are used
    url = "postgres://localhost/myapp_dev"
    migrations = "migrations"   # the folder, relative to pyproject.toml (default "migrations")
    # Ecto's repo keys for migrations (all optional):
    migration_source = "schema_migrations"
    migration_default_prefix = "app"
    migration_primary_key = { name = "uuid", type = "binary_id" }   # or false
    migration_foreign_key = { type = "binary_id" }
    migration_timestamps = { type = "utc_datetime_usec", inserted_at = "created_at" }

Exit codes: 0 success; 1 a database, migration or file error (message on stderr, the traceback
only with ``--traceback``); 2 a usage or configuration error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Sequence

from asyncecto.errors import AsyncEctoError, CommandError

from ._output import error
from ._project import find_project
from ._subcommands import COMMANDS

__all__ = ("build_parser", "main")

_LOG_LEVELS = ("debug", "info", "warning", "error")


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes (also accepted before the subcommand)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration")
    group.add_argument("--url", default=argparse.SUPPRESS, help="database URL (beats DATABASE_URL and pyproject.toml)")
    group.add_argument(
        "-r",
        "--repo",
        action="append",
        default=argparse.SUPPRESS,
        metavar="MODULE:ATTR",
        help="import path of a Repo, e.g. myapp.repo:repo (repeat it to act on several repos in turn)",
    )
    group.add_argument(
        "--traceback", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors"
    )
    return common


def _strategy(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_argument_group(f"which migrations (default: {default})").add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="every migration")
    group.add_argument("-n", "--step", type=int, metavar="N", help="this many migrations")
    group.add_argument("--to", type=int, metavar="VERSION", help="up to and including VERSION")
    group.add_argument("--to-exclusive", type=int, metavar="VERSION", help="up to VERSION, excluding it")


def _migration_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--migrations-path",
        action="append",
        metavar="DIR",
        help="a migrations folder (repeatable: merged and sorted; default: from pyproject.toml)",
    )
    parser.add_argument("--prefix", metavar="SCHEMA", help="the PostgreSQL schema to migrate (schema_migrations there)")
    parser.add_argument("--pool-size", type=int, default=2, metavar="N", help="connections to open (default: 2)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``asyncecto`` command."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="asyncecto",
        description="Create, migrate and inspect the database of an asyncecto project.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    p = command("create", "Create the repo's database.")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    p = command("drop", "Drop the repo's database (asks first; --force does not).")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--force-drop",
        action="store_true",
        help="end other sessions on the database (PostgreSQL 13+: DROP DATABASE ... WITH (FORCE))",
    )

    for name, help, default in (
        ("migrate", "Apply pending migrations.", "--all"),
        ("rollback", "Revert applied migrations.", "--step 1"),
    ):
        p = command(name, help)
        _strategy(p, default)
        _migration_options(p)
        p.add_argument("--log-level", choices=_LOG_LEVELS, default="info", help="log level (default: info)")
        p.add_argument("-q", "--quiet", action="store_true", help="do not log the migrations")
        p.add_argument(
            "--log-migrations-sql", action="store_true", help="log every SQL statement the migrations run (info)"
        )
        p.add_argument(
            "--log-migrator-sql",
            action="store_true",
            help="log the migrator's own SQL: schema_migrations, the lock, transactions (info)",
        )
        if name == "migrate":
            p.add_argument(
                "--strict-version-order",
                action="store_true",
                help="refuse a pending migration older than the latest applied one (default: a warning)",
            )

    p = command("migrations", "Show which migrations are up and which are down.")
    _migration_options(p)

    p = command("gen.migration", "Generate a migration file with an empty change().")
    p.add_argument("name", help="the migration's name, e.g. create_posts (CamelCase is underscored)")
    p.add_argument("--migrations-path", metavar="DIR", help="the migrations folder (default: from pyproject.toml)")
    p.add_argument("--change", metavar="CODE", help="the body of change(), instead of `pass`")

    command("gen.repo", "Generate a repo module and print its pyproject.toml configuration.")

    for name, help in (
        ("dump", "Dump the database structure (pg_dump), with the applied migration versions."),
        ("load", "Load a dumped structure (psql)."),
    ):
        p = command(name, help)
        p.add_argument("-d", "--dump-path", metavar="FILE", help="default: structure.sql beside the migrations folder")
        p.add_argument("--migrations-path", metavar="DIR", help="the migrations folder (locates the default dump)")
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
        if name == "dump":
            p.add_argument("--prefix", action="append", metavar="SCHEMA", help="dump only this schema (repeatable)")
        else:
            p.add_argument("-f", "--force", action="store_true", help="load even if a structure was loaded before")
            p.add_argument(
                "--skip-if-loaded", action="store_true", help="do nothing if the database has schema_migrations"
            )

    p = command("query", "Run SQL in a read-only transaction and print its rows as a table.")
    p.add_argument("sql", help='the SQL, e.g. "SELECT id, title FROM posts"')
    p.add_argument("--limit", type=int, default=100, metavar="N", help="print at most N rows (default: 100)")
    p.add_argument("--sql", dest="show_sql", action="store_true", help="print the SQL before its result")
    return parser


#: commands that act on several ``-r`` repos, one after the other (as Ecto's mix tasks)
_MANY_REPOS = frozenset({"create", "drop", "migrate", "rollback", "migrations"})


def _each_repo(ns: argparse.Namespace) -> int:
    """Run the command once per ``-r`` repo (in the order given), stopping at the first failure."""
    project = find_project()
    repos: list[str] = ns.repo or []
    if len(repos) > 1 and ns.command not in _MANY_REPOS:
        raise CommandError(
            f"{ns.command} acts on one repo, got {len(repos)} -r/--repo flags ({', '.join(repos)})\n\n"
            f"fix: run it once per repo; several -r work with {', '.join(sorted(_MANY_REPOS))}",
            2,
        )
    if len(repos) <= 1:
        ns.repo = repos[0] if repos else None
        return COMMANDS[ns.command](ns, project)
    for repo in repos:
        ns.repo = repo
        code = COMMANDS[ns.command](ns, project)
        if code:
            return code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asyncecto`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    for name in ("url", "repo", "traceback"):
        if not hasattr(ns, name):
            setattr(ns, name, False if name == "traceback" else None)
    try:
        return _each_repo(ns)
    except CommandError as exc:
        if ns.traceback:
            traceback.print_exception(exc)
        prefix = "asyncecto: error: " if exc.code == 2 else ""
        error(f"{prefix}{exc}")
        return exc.code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:
        if ns.traceback:
            traceback.print_exception(exc)
        hint = "" if ns.traceback or isinstance(exc, AsyncEctoError) else "\n(run with --traceback to see where)"
        error(f"** ({type(exc).__name__}) {exc}{hint}")
        return 1
