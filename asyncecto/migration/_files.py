"""Finding and loading migration files (internal).

A migrations folder holds files named ``<14-digit UTC timestamp>_<name>.py``; files whose name
starts with ``_`` or ``.`` (``__init__.py``, shared helpers) are not migrations and are skipped.
Every other ``.py`` file must follow the pattern, and no two may share a version or a name:
otherwise nothing runs and :class:`~asyncecto.errors.MigrationError` names the file(s).

A file is loaded (executed) only when it is about to run, from its path, under a private module
name: ``sys.path`` is never touched, and the module is not left in ``sys.modules``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from asyncecto.errors import MigrationError

__all__ = ("Migration", "MigrationFile", "find_migrations", "from_module", "load_file")

#: ``20240101120000_create_posts.py``
FILE_NAME = re.compile(r"^(?P<version>[0-9]{14})_(?P<name>[A-Za-z0-9_]+)\.py$")

_counter = itertools.count(1)


@attrs.frozen(slots=True)
class MigrationFile:
    """A migration found in a folder (not yet loaded)."""

    version: int
    name: str
    path: Path

    def load(self) -> Migration:
        """Execute the file and check that it defines ``up()`` or ``change()``."""
        return load_file(self.path, self.version, self.name)


@attrs.frozen(slots=True)
class Migration:
    """A loaded migration: its callbacks and options.

    :ivar source: the file path, or the module's name when given a module
    """

    version: int
    name: str
    module: ModuleType
    source: str

    @property
    def disable_ddl_transaction(self) -> bool:
        return bool(getattr(self.module, "disable_ddl_transaction", False))

    @property
    def disable_migration_lock(self) -> bool:
        return bool(getattr(self.module, "disable_migration_lock", False))

    def callback(self, name: str) -> Callable[..., Any] | None:
        """The migration's own ``up``/``down``/``change``/hook: a function defined in its file, not
        one it imported (``from asyncecto.migration import *`` brings the migrator's ``up``/``down``)."""
        fn: Callable[..., Any] | None = getattr(self.module, name, None)
        if not callable(fn) or getattr(fn, "__module__", None) != self.module.__name__:
            return None
        return fn

    def __repr__(self) -> str:
        return f"<Migration {self.version} {self.name} from {self.source}>"


def _check(version: int, name: str, module: ModuleType, source: str) -> Migration:
    migration = Migration(version, name, module, source)
    if migration.callback("up") is None and migration.callback("change") is None:
        raise MigrationError(
            f"migration {version}_{name} ({source}) does not implement an up() or change() function\n\n"
            "fix: define `def change() -> None:` with DSL commands, or `def up()` (and `def down()`) "
            "returning SQL",
            f"{version}_{name}",
        )
    return migration


def load_file(path: str | os.PathLike[str], version: int | None = None, name: str | None = None) -> Migration:
    """Load one migration file; ``version`` and ``name`` default to those in its file name."""
    path = Path(path)
    if version is None or name is None:
        match = FILE_NAME.match(path.name)
        if match is None:
            raise _malformed(path)
        version, name = int(match["version"]), match["name"]
    if not path.is_file():
        raise MigrationError(f"cannot load migration {path}: no such file", str(path))
    module_name = f"asyncecto._migrations.m{version}_{name}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise MigrationError(f"cannot load migration {path}: not a Python file", str(path))
    module = importlib.util.module_from_spec(spec)
    # present while it runs (dataclasses and typing look the module up), gone afterwards
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        exc.add_note(f"while loading migration {path}")
        raise
    finally:
        sys.modules.pop(module_name, None)
    return _check(version, name, module, str(path))


def from_module(version: int, module: ModuleType) -> Migration:
    """A migration from an already imported module (``up(repo, version, module)``)."""
    name = module.__name__.rsplit(".", 1)[-1]
    match = re.match(r"^[0-9]+_(.+)$", name)
    return _check(version, match[1] if match else name, module, module.__name__)


def _malformed(path: Path) -> MigrationError:
    return MigrationError(
        f"cannot load migrations: file name {path.name!r} ({path}) is not <14-digit UTC timestamp>_<name>.py, "
        "e.g. 20240101120000_create_posts.py\n\n"
        "fix: rename the file; a helper module that is not a migration must start with _",
        str(path),
    )


def find_migrations(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[MigrationFile]:
    """Every migration file in one or more folders, sorted by version.

    :raises MigrationError: a folder is missing, a file name is malformed, or a version or name is duplicated
    """
    folders = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    found: list[MigrationFile] = []
    for folder in folders:
        if not folder.is_dir():
            raise MigrationError(
                f"cannot load migrations: {folder} is not a directory\n\nfix: create it, or pass the migrations folder",
                str(folder),
            )
        for path in sorted(folder.iterdir()):
            if path.suffix != ".py" or path.name.startswith(("_", ".")) or not path.is_file():
                continue
            match = FILE_NAME.match(path.name)
            if match is None:
                raise _malformed(path)
            found.append(MigrationFile(int(match["version"]), match["name"], path))
    by_version: dict[int, MigrationFile] = {}
    by_name: dict[str, MigrationFile] = {}
    for mf in found:
        other = by_version.get(mf.version)
        if other is not None:
            raise MigrationError(
                f"migrations can't be executed, migration version {mf.version} is duplicated: "
                f"{other.path} and {mf.path}\n\nfix: give one of them a new timestamp",
                str(mf.path),
            )
        other = by_name.get(mf.name)
        if other is not None:
            raise MigrationError(
                f"migrations can't be executed, migration name {mf.name} is duplicated: "
                f"{other.path} and {mf.path}\n\nfix: rename one of them",
                str(mf.path),
            )
        by_version[mf.version] = by_name[mf.name] = mf
    return sorted(found, key=lambda mf: mf.version)
