"""Ecto's ``Ecto.Migrator`` helpers for releases and app start-up: ``migrations_path``,
``with_repo`` and the migrate-on-boot step (Ecto's ``{Ecto.Migrator, repos: [...]}`` child)."""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asyncecto._executor import executor_of
from asyncecto.errors import ArgumentError

from ._migrator import LogOption, run

if TYPE_CHECKING:
    from asyncecto.repo import Repo

__all__ = ("migrate_on_start", "migrations_path", "with_repo")

_T = TypeVar("_T")


def _require_repo(repo: Any, where: str) -> Repo:
    try:
        executor_of(repo)
    except ArgumentError:
        raise ArgumentError(f"{where} takes a Repo, got {repo!r}; fix: pass the repo object (Repo(url))") from None
    return cast("Repo", repo)


def _project_migrations(start: Path | None) -> tuple[Path, str]:
    """The nearest ``pyproject.toml``'s folder (else the start folder) and its ``[tool.asyncecto]
    migrations`` (default ``migrations``), as the ``asyncecto`` command reads them."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                table = tomllib.loads(candidate.read_text(encoding="utf-8")).get("tool", {}).get("asyncecto", {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ArgumentError(f"cannot read {candidate}: {exc}") from exc
            folder_name = table.get("migrations", "migrations") if isinstance(table, dict) else "migrations"
            if not isinstance(folder_name, str) or not folder_name:
                raise ArgumentError(f"cannot read {candidate}: [tool.asyncecto] migrations must be a non-empty string")
            return folder, folder_name
    return here, "migrations"


def migrations_path(repo: Repo, directory: str | None = None, *, start: Path | None = None) -> Path:
    """The migrations folder of ``repo``'s project (Ecto's ``migrations_path/2``): the nearest
    ``pyproject.toml`` upwards from ``start`` (the cwd), its ``[tool.asyncecto] migrations``
    (default ``migrations``), or ``directory`` under the project root when given.

    .. code-block:: python

        await asyncecto.migration.run(repo, migrations_path(repo), all=True)
    """
    _require_repo(repo, "migrations_path")
    if directory is not None and (not isinstance(directory, str) or not directory):
        raise ArgumentError(f"migrations_path directory must be a non-empty folder name, got {directory!r}")
    root, configured = _project_migrations(start)
    return root / (directory if directory is not None else configured)


async def with_repo(repo: Repo, fn: Callable[[Repo], Awaitable[_T] | _T]) -> _T:
    """Run ``fn(repo)`` with the repo started (Ecto's ``with_repo/3``): a repo that is not running
    is started for the call and stopped after it (size its pool with ``Repo(url, pool_size=2)``, as
    Ecto does); a running repo is used as it is. ``fn`` may be sync or async; its result is returned.

    .. code-block:: python

        versions = await with_repo(Repo(url, pool_size=2), lambda r: run(r, "migrations", all=True))
    """
    _require_repo(repo, "with_repo")
    if not callable(fn):
        raise ArgumentError(f"with_repo takes a function of the repo, got {fn!r}")
    if repo.state == "running":
        return await _call(fn, repo)
    if repo.state != "new":
        raise ArgumentError(f"with_repo needs a new or running repo, got one that is {repo.state}")
    async with repo:
        return await _call(fn, repo)


async def _call(fn: Callable[[Repo], Awaitable[_T] | _T], repo: Repo) -> _T:
    result = fn(repo)
    if inspect.isawaitable(result):
        return await result
    return result


@asynccontextmanager
async def migrate_on_start(
    *repos: Repo,
    path: str | Path | None = None,
    skip: bool = False,
    log: LogOption = "info",
) -> AsyncIterator[dict[str, list[int]]]:
    """Run every pending migration of each repo on entering (Ecto's ``{Ecto.Migrator, repos: [...],
    skip: false}`` child spec), for an app's start-up, e.g. a FastAPI lifespan; the block gets the
    versions run per repo name. Repos must be started first (listed before it, as in Ecto's
    supervision tree); ``path`` defaults to :func:`migrations_path`.

    .. code-block:: python

        @asynccontextmanager
        async def lifespan(app):
            async with repo, migrate_on_start(repo):
                yield
    """
    if not repos:
        raise ArgumentError("migrate_on_start needs at least one repo: migrate_on_start(repo)")
    ran: dict[str, list[int]] = {}
    for repo in repos:
        _require_repo(repo, "migrate_on_start")
        if repo.state != "running":
            raise ArgumentError(
                f"migrate_on_start needs a started repo, got one that is {repo.state}; "
                "fix: start it first (`async with repo, migrate_on_start(repo):`)"
            )
    if not skip:
        for repo in repos:
            ran[repo.name] = await run(
                repo, path if path is not None else migrations_path(repo), "up", all=True, log=log
            )
    yield ran
