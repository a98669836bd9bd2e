"""Where the ``asyncecto`` command finds its project, repo, URL and migrations folder.

Precedence, highest first: flags (``--url``, ``-r/--repo``, ``--migrations-path``), then the
``DATABASE_URL`` environment variable, then ``[tool.asyncecto]`` in the nearest pyproject.toml
(``repo``, ``url``, ``migrations``; the ``migration_*`` keys go to the migrator as they are).
The repo (its options and name) and the URL are resolved
separately: a URL from a flag, the environment or pyproject.toml replaces the configured repo's
own URL, and the repo's other options are kept (what the URL sets wins, as in ``Repo(url, **opts)``).
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

from asyncecto.errors import ArgumentError, AsyncEctoError, CommandError
from asyncecto.migration._settings import read_settings
from asyncecto.repo import Repo, RepoConfig
from asyncecto.repo._config import endpoints_url

__all__ = ("Project", "Target", "find_project", "maintenance_url", "resolve_target")

_KEYS = frozenset({"repo", "url", "migrations"})
#: Ecto's repo keys for the migrator, passed to it as keyword arguments (see asyncecto.migration.run)
MIGRATION_KEYS = frozenset(
    {
        "migration_source",
        "migration_default_prefix",
        "migration_primary_key",
        "migration_foreign_key",
        "migration_timestamps",
        "migration_lock",
    }
)


@attrs.frozen
class Project:
    """The project the command runs in: the folder of the nearest pyproject.toml (else the cwd)."""

    root: Path
    pyproject: Path | None
    settings: Mapping[str, Any]  # the [tool.asyncecto] table

    @property
    def migrations(self) -> Path:
        """The configured migrations folder (default ``migrations``), relative to the project root."""
        return self.root / str(self.settings.get("migrations", "migrations"))

    @property
    def migration_settings(self) -> dict[str, Any]:
        """The ``migration_*`` keys of ``[tool.asyncecto]``: keyword arguments of the migrator."""
        return {k: v for k, v in self.settings.items() if k in MIGRATION_KEYS}

    @property
    def migration_source(self) -> str:
        """The versions table (``migration_source``, default ``schema_migrations``)."""
        return str(self.settings.get("migration_source", "schema_migrations"))


@attrs.frozen
class Target:
    """The repo a command acts on: a fresh, unstarted Repo, and how to name it in messages."""

    repo: Repo
    label: str  # the repo's import path when one is configured, else the database name

    @property
    def database(self) -> str:
        return self.repo.config.database


def find_project(start: Path | None = None) -> Project:
    """Find the nearest pyproject.toml from ``start`` (default: the cwd) upwards and read its table."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise CommandError(f"cannot read {candidate}: {exc}", 2) from exc
            table = data.get("tool", {}).get("asyncecto", {})
            if not isinstance(table, dict):
                raise CommandError(f"cannot read {candidate}: [tool.asyncecto] must be a table", 2)
            unknown = sorted(set(table) - _KEYS - MIGRATION_KEYS)
            if unknown:
                raise CommandError(
                    f"cannot read {candidate}: unknown key(s) in [tool.asyncecto]: {', '.join(unknown)}\n\n"
                    f"fix: use {', '.join(sorted(_KEYS | MIGRATION_KEYS))}",
                    2,
                )
            for key, value in table.items():
                if key not in MIGRATION_KEYS and (not isinstance(value, str) or not value):
                    raise CommandError(f"cannot read {candidate}: [tool.asyncecto] {key} must be a non-empty string", 2)
            try:
                read_settings({k: v for k, v in table.items() if k in MIGRATION_KEYS})
            except ArgumentError as exc:
                raise CommandError(f"cannot read {candidate}: [tool.asyncecto] {exc}", 2) from exc
            return Project(folder, candidate, table)
    return Project(here, None, {})


def import_object(path: str, root: Path) -> Any:
    """Import ``"package.module:attribute"`` (or ``"package.module.attribute"``) with ``root`` on sys.path."""
    module_name, colon, attribute = path.partition(":")
    if not colon:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise CommandError(f"cannot import repo {path!r}: expected an import path such as 'myapp.repo:repo'", 2)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import repo {path!r}: {exc}", 2) from exc
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            message = f"cannot import repo {path!r}: module {module_name!r} has no attribute {attribute!r}"
            raise CommandError(message, 2) from exc
    return obj


def _options(config: RepoConfig) -> dict[str, Any]:
    # the scheme is the URL's part, not a keyword option (a URL given overrides the repo's anyway)
    return {a.name: getattr(config, a.name) for a in attrs.fields(RepoConfig) if a.name != "scheme"}


def resolve_target(
    project: Project,
    *,
    url: str | None = None,
    repo: str | None = None,
    pool_size: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """The repo a command acts on, from flags, ``DATABASE_URL`` and pyproject.toml (see the module doc)."""
    env = os.environ if environ is None else environ
    chosen_url, source = url, "--url"
    if not chosen_url and env.get("DATABASE_URL"):
        chosen_url, source = env["DATABASE_URL"], "DATABASE_URL"
    if not chosen_url and project.settings.get("url"):
        chosen_url, source = str(project.settings["url"]), f"{project.pyproject} [tool.asyncecto] url"
    repo_path = repo or project.settings.get("repo")
    options: dict[str, Any] = {}
    name: str | None = None
    if repo_path:
        found = import_object(str(repo_path), project.root)
        if not isinstance(found, Repo):
            raise CommandError(
                f"cannot use repo {repo_path!r}: expected an asyncecto Repo, got {type(found).__name__}", 2
            )
        options = _options(found.config)
        name = found.name
    elif not chosen_url:
        raise CommandError(
            "no repo configured: no --url or -r/--repo flag, no DATABASE_URL, and no [tool.asyncecto] "
            "repo or url in pyproject.toml\n\n"
            'fix: pass --url postgres://user:pass@localhost/my_db, or add repo = "myapp.repo:repo" '
            "under [tool.asyncecto] in pyproject.toml",
            2,
        )
    if pool_size is not None:
        options["pool_size"] = pool_size
        options["min_size"] = min(options.get("min_size", 1), pool_size)
    try:
        built = Repo(chosen_url, name=name, **options)
    except AsyncEctoError as exc:
        where = f" (URL from {source})" if chosen_url else ""
        raise CommandError(f"{exc}{where}", 2) from exc
    return Target(built, str(repo_path) if repo_path else built.config.database)


def maintenance_url(config: RepoConfig, database: str) -> str:
    """A URL for another ``database`` on the server ``config`` points at, password included."""
    auth = ""
    if config.user is not None or config.password is not None:
        auth = quote(config.user or "", safe="")
        if config.password is not None:
            auth += ":" + quote(config.password, safe="")
        auth += "@"
    db = quote(database, safe="")
    if config.endpoints:  # every host, and the target_session_attrs that picks among them
        return endpoints_url(f"postgres://{auth}", db, config.endpoints, config.target_session_attrs)
    if config.host.startswith("/"):
        return f"postgres://{auth}/{db}?host={quote(config.host, safe='/')}&port={config.port}"
    host = f"[{config.host}]" if ":" in config.host else quote(config.host, safe="")
    return f"postgres://{auth}{host}:{config.port}/{db}"
