"""``gen.migration`` and ``gen.repo``: files written from templates."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import subprocess
import textwrap
from pathlib import Path

from asyncecto.errors import CommandError

from ._output import display_path, error, info

__all__ = ("MIGRATION_TEMPLATE", "gen_migration", "gen_repo", "underscore")

MIGRATION_TEMPLATE = '''\
"""{title}"""

from __future__ import annotations

from asyncecto.migration import add, create, index, references, table, timestamps  # noqa: F401


def change() -> None:
{body}
'''

REPO_TEMPLATE = '''\
"""The application's repo: its pool of connections to PostgreSQL.

Start it once when the application starts (``async with repo:``, or ``await repo.start()``
and ``await repo.stop()`` in startup and shutdown hooks). The ``asyncecto`` command
(``asyncecto create``, ``asyncecto migrate`` …) finds it through ``[tool.asyncecto] repo``
in pyproject.toml.
"""

from __future__ import annotations

import os

from asyncecto import Repo

repo = Repo(os.environ.get("DATABASE_URL") or "postgres://postgres@localhost:5432/{database}")
'''

_NAME = re.compile(r"[a-z0-9_]+")


def underscore(name: str) -> str:
    """``CreatePosts`` → ``create_posts`` (Elixir's ``Macro.underscore``); dashes and spaces become ``_``.

    >>> underscore("CreatePosts"), underscore("add-HTTPHeaders"), underscore("create_posts")
    ('create_posts', 'add_http_headers', 'create_posts')
    """
    name = re.sub(r"[-\s]+", "_", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def _timestamp(folder: Path) -> str:
    """UTC now as ``yyyymmddhhmmss``, moved on by a second while a file in ``folder`` already has it."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    taken = {p.name.partition("_")[0] for p in folder.glob("*_*.py")} if folder.is_dir() else set()
    while (stamp := now.strftime("%Y%m%d%H%M%S")) in taken:
        now += dt.timedelta(seconds=1)
    return stamp


def gen_migration(name: str, folder: Path, change: str | None, editor: str | None) -> Path:
    """Write ``<folder>/<UTC timestamp>_<name>.py`` with an empty ``change()``; its path."""
    base = underscore(name)
    if not _NAME.fullmatch(base):
        raise CommandError(
            f"cannot create migration {name!r}: a name is letters, digits and underscores (e.g. create_posts)", 2
        )
    if folder.is_dir() and any(folder.glob(f"*_{base}.py")):
        raise CommandError(f"migration can't be created, there is already a migration file with name {name}.")
    if not folder.is_dir():
        folder.mkdir(parents=True)
        info(f"* creating {display_path(folder)}")
    path = folder / f"{_timestamp(folder)}_{base}.py"
    body = textwrap.indent(change.strip("\n"), "    ") if change and change.strip() else "    pass"
    path.write_text(MIGRATION_TEMPLATE.format(title=f"Migration {path.stem}.", body=body), encoding="utf-8")
    info(f"* creating {display_path(path)}")
    if editor:
        try:
            subprocess.run([*shlex.split(editor), str(path)], check=False)
        except (OSError, ValueError) as exc:
            error(f"warning: cannot open {display_path(path)} with $ASYNCECTO_EDITOR ({editor!r}): {exc}")
    return path


def gen_repo(repo_path: str, root: Path, migrations: str) -> Path:
    """Write the module named by ``repo_path`` (``myapp.repo:repo``) under ``root`` and print the config."""
    module, colon, attribute = repo_path.partition(":")
    if not colon:
        module, _, attribute = repo_path.rpartition(".")
    parts = module.split(".")
    if not module or not attribute.isidentifier() or not all(p.isidentifier() for p in parts):
        raise CommandError(f"cannot generate repo {repo_path!r}: expected an import path such as 'myapp.repo:repo'", 2)
    path = root.joinpath(*parts).with_suffix(".py")
    if path.exists():
        raise CommandError(f"cannot generate repo {repo_path!r}: {display_path(path)} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = REPO_TEMPLATE.format(database=f"{parts[0]}_dev")
    if attribute != "repo":
        text = text.replace("\nrepo = Repo(", f"\n{attribute} = Repo(")
    path.write_text(text, encoding="utf-8")
    info(f"* creating {display_path(path)}")
    info(
        "\nDon't forget to add your new repo to pyproject.toml, so the asyncecto command finds it:\n\n"
        f'    [tool.asyncecto]\n    repo = "{module}:{attribute}"\n    migrations = "{migrations}"\n\n'
        "and to start it when your application starts:\n\n"
        f"    from {module} import {attribute}\n\n"
        f"    async with {attribute}:\n        ...\n"
    )
    return path
