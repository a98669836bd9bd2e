"""The subcommands: each takes the parsed arguments and the project, prints, and returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Literal

import attrs

from asyncecto import migration
from asyncecto.errors import AsyncEctoError, CommandError, DatabaseError
from asyncecto.repo import Repo
from asyncecto.repo._api_raw import QueryResult, format_table
from asyncecto.repo._core import executor_of

from . import _generate, _structure
from ._output import confirm, display_path, info, setup_logging, status_table
from ._project import Project, Target, resolve_target

__all__ = ("COMMANDS",)

_IN_USE = "55006"  # object_in_use: other sessions are connected to the database
_NO_TABLE = "42P01"  # undefined_table


def _target(ns: argparse.Namespace, project: Project, pool_size: int | None = None) -> Target:
    return resolve_target(project, url=ns.url, repo=ns.repo, pool_size=pool_size)


def _migrations_path(ns: argparse.Namespace, project: Project) -> Path:
    """The migrations folder: the (first) ``--migrations-path``, else the project's."""
    given = getattr(ns, "migrations_path", None)
    if isinstance(given, list):
        given = given[0] if given else None
    return Path(given).resolve() if given else project.migrations


def _migrations_paths(ns: argparse.Namespace, project: Project) -> list[Path]:
    """Every ``--migrations-path`` (their migrations merged and sorted), else the project's folder; all must exist."""
    given: list[str] = ns.migrations_path or []
    return [_existing_folder(p) for p in ([Path(g).resolve() for g in given] or [project.migrations])]


# -- create / drop ----------------------------------------------------------------------------------


def create(ns: argparse.Namespace, project: Project) -> int:
    target = _target(ns, project)
    try:
        result = asyncio.run(target.repo.storage_up())
    except AsyncEctoError as exc:
        raise CommandError(f"The database for {target.database} couldn't be created: {exc}") from exc
    if not ns.quiet:
        done = "has been created" if result == "created" else "has already been created"
        info(f"The database for {target.database} {done}")
    return 0


def _confirmed(question: str, refusal: str) -> bool:
    """Ask ``question`` on a terminal; without one, refuse with ``refusal`` (a usage error)."""
    if not sys.stdin.isatty():
        raise CommandError(refusal, 2)
    return confirm(question)


def drop(ns: argparse.Namespace, project: Project) -> int:
    target = _target(ns, project)
    db = target.database
    if not ns.force and not _confirmed(
        f"Are you sure you want to drop the database for {db}?",
        f"cannot drop the database for {db} without confirmation: stdin is not a terminal\n\n"
        "fix: pass --force to drop it without asking",
    ):
        info(f"The database for {db} has not been dropped")
        return 1
    try:
        result = asyncio.run(executor_of(target.repo).adapter.storage_down(force=ns.force_drop))
    except AsyncEctoError as exc:
        hint = ""
        if isinstance(exc, DatabaseError) and exc.sqlstate == _IN_USE:
            hint = "\n\nfix: close the other sessions, or pass --force-drop to end them"
        raise CommandError(f"The database for {db} couldn't be dropped: {exc}{hint}") from exc
    if not ns.quiet:
        done = "has been dropped" if result == "dropped" else "has already been dropped"
        info(f"The database for {db} {done}")
    return 0


# -- migrate / rollback / migrations ------------------------------------------------------------------


def _existing_folder(path: Path) -> Path:
    if not path.is_dir():
        raise CommandError(
            f"cannot run migrations: the migrations folder {display_path(path)} does not exist\n\n"
            "fix: create a migration with `asyncecto gen.migration NAME`, set [tool.asyncecto] migrations "
            "in pyproject.toml, or pass --migrations-path"
        )
    return path


def _run_migrations(ns: argparse.Namespace, project: Project, direction: Literal["up", "down"]) -> int:
    target = _target(ns, project, pool_size=ns.pool_size)
    paths = _migrations_paths(ns, project)
    setup_logging(ns.log_level)
    everything, step = bool(ns.all), ns.step
    no_strategy = not everything and step is None and ns.to is None and ns.to_exclusive is None
    if no_strategy:  # Ecto's defaults: migrate --all, rollback --step 1 (0 is a given strategy)
        everything, step = direction == "up", None if direction == "up" else 1

    async def go() -> list[int]:
        async with target.repo:
            return await migration.run(
                target.repo,
                paths,
                direction,
                all=everything,
                step=step,
                to=ns.to,
                to_exclusive=ns.to_exclusive,
                prefix=ns.prefix,
                log=False if ns.quiet else "info",
                log_migrations_sql="info" if ns.log_migrations_sql else False,
                log_migrator_sql="info" if ns.log_migrator_sql else False,
                strict_version_order=bool(getattr(ns, "strict_version_order", False)),
                **project.migration_settings,
            )

    asyncio.run(go())
    return 0


def migrate(ns: argparse.Namespace, project: Project) -> int:
    return _run_migrations(ns, project, "up")


def rollback(ns: argparse.Namespace, project: Project) -> int:
    return _run_migrations(ns, project, "down")


def migrations(ns: argparse.Namespace, project: Project) -> int:
    target = _target(ns, project, pool_size=ns.pool_size)
    paths = _migrations_paths(ns, project)

    async def go() -> list[tuple[str, int, str]]:
        async with target.repo:
            return await migration.migrations(target.repo, paths, prefix=ns.prefix, **project.migration_settings)

    info(status_table(target.label, asyncio.run(go())))
    return 0


# -- generators ----------------------------------------------------------------------------------------


def gen_migration(ns: argparse.Namespace, project: Project) -> int:
    editor = os.environ.get("ASYNCECTO_EDITOR") or None
    _generate.gen_migration(ns.name, _migrations_path(ns, project), ns.change, editor)
    return 0


def gen_repo(ns: argparse.Namespace, project: Project) -> int:
    repo_path = ns.repo or project.settings.get("repo")
    if not repo_path:
        raise CommandError(
            "cannot generate a repo: no -r/--repo given and no [tool.asyncecto] repo in pyproject.toml\n\n"
            "fix: asyncecto gen.repo -r myapp.repo:repo",
            2,
        )
    _generate.gen_repo(str(repo_path), project.root, str(project.settings.get("migrations", "migrations")))
    return 0


# -- dump / load -----------------------------------------------------------------------------------------


def _dump_path(ns: argparse.Namespace, project: Project) -> Path:
    if ns.dump_path:
        return Path(ns.dump_path).resolve()
    return _migrations_path(ns, project).parent / "structure.sql"


async def _versions(repo: Repo, prefixes: list[str], source: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    async with repo:
        for prefix in prefixes:
            try:
                result = await repo.query(executor_of(repo).adapter.versions_sql(prefix, source))
            except DatabaseError as exc:
                if exc.sqlstate == _NO_TABLE:
                    continue
                raise
            found[prefix] = [int(row[0]) for row in result.rows]
    return found


def dump(ns: argparse.Namespace, project: Project) -> int:
    _structure.find_program("pg_dump", "dump the structure")
    target = _target(ns, project, pool_size=1)
    path = _dump_path(ns, project)
    prefixes: list[str] = ns.prefix or []
    try:
        versions = asyncio.run(_versions(target.repo, prefixes or ["public"], project.migration_source))
        inserts = "".join(
            executor_of(target.repo).adapter.dump_versions_sql(prefix, project.migration_source, found)
            for prefix, found in versions.items()
        )
        _structure.pg_dump(target.repo.config, path, prefixes, inserts)
    except (AsyncEctoError, CommandError) as exc:
        raise CommandError(f"The structure for {target.label} couldn't be dumped: {exc}") from exc
    if not ns.quiet:
        info(f"The structure for {target.label} has been dumped to {display_path(path)}")
    return 0


async def _loaded(repo: Repo, source: str) -> bool:
    async with repo:
        result = await repo.query(executor_of(repo).adapter.table_exists_sql(None, source))
        return bool(result.rows[0][0])


def load(ns: argparse.Namespace, project: Project) -> int:
    _structure.find_program("psql", "load the structure")
    target = _target(ns, project, pool_size=1)
    path = _dump_path(ns, project)
    if not path.is_file():
        raise CommandError(
            f"The structure for {target.label} couldn't be loaded: {display_path(path)} does not exist\n\n"
            "fix: write it with `asyncecto dump`, or pass --dump-path"
        )
    try:
        loaded = asyncio.run(_loaded(target.repo, project.migration_source))
    except AsyncEctoError as exc:
        raise CommandError(f"The structure for {target.label} couldn't be loaded: {exc}") from exc
    if loaded and ns.skip_if_loaded:
        if not ns.quiet:
            info(f"The structure for {target.label} is already loaded ({project.migration_source} exists); skipped")
        return 0
    if (
        loaded
        and not ns.force
        and not _confirmed(
            f"It looks like a structure was already loaded for {target.label}. Any attempt to load it again "
            "might fail. Are you sure you want to proceed?",
            f"cannot load the structure for {target.label}: it looks like one was already loaded "
            f"(the database has a {project.migration_source} table)\n\n"
            "fix: pass --force to load it anyway, or --skip-if-loaded to skip it",
        )
    ):
        return 1
    started = time.monotonic()
    try:
        _structure.psql_load(target.repo.config, path)
    except CommandError as exc:
        raise CommandError(f"The structure for {target.label} couldn't be loaded: {exc}") from exc
    if not ns.quiet:
        ms = round((time.monotonic() - started) * 1000)
        info(f"The structure for {target.label} has been loaded from {display_path(path)} in {ms}ms")
    return 0


# -- query ------------------------------------------------------------------------------------------------


def query(ns: argparse.Namespace, project: Project) -> int:
    """Ecto's ``mix ecto.query``: run SQL in a read-only transaction, print at most ``--limit`` rows."""
    if ns.limit < 1:
        raise CommandError(f"--limit must be a positive number of rows, got {ns.limit}", 2)
    target = _target(ns, project, pool_size=1)

    async def go() -> QueryResult:
        result: QueryResult | None = None
        async with target.repo, target.repo.transaction(read_only=True):
            result = await target.repo.query(ns.sql)
        assert result is not None
        return result

    try:
        result = asyncio.run(go())
    except AsyncEctoError as exc:
        raise CommandError(f"The query on {target.label} failed: {exc}") from exc
    if ns.show_sql:
        info(ns.sql)
    shown = attrs.evolve(result, rows=result.rows[: ns.limit])
    info(format_table(shown))
    more = f" (showing {ns.limit})" if len(result.rows) > ns.limit else ""
    info(f"{result.num_rows} row{'' if result.num_rows == 1 else 's'}{more}")
    return 0


COMMANDS = {
    "create": create,
    "drop": drop,
    "migrate": migrate,
    "rollback": rollback,
    "migrations": migrations,
    "gen.migration": gen_migration,
    "gen.repo": gen_repo,
    "dump": dump,
    "load": load,
    "query": query,
}
