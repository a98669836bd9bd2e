"""Architecture rules that a test can check: the pure core, the public surface."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import asyncecto

PACKAGE = Path(asyncecto.__file__).parent
PURE = ("types", "errors", "schema", "changeset", "query", "multi")


def test_pure_core_never_imports_asyncpg() -> None:
    code = (
        "import sys\n"
        + "".join(f"import asyncecto.{m}\n" for m in PURE)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('asyncpg', 'anyio'))\n"
        + "assert not bad, bad\n"
        + "assert 'asyncecto.repo' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for name in PURE:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return files


def test_pure_core_never_awaits() -> None:
    offenders = []
    for path in _pure_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncWith | ast.AsyncFor):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_only_the_postgres_adapter_imports_asyncpg() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("adapters/postgres/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "asyncpg" for n in names):
                offenders.append(rel)
    assert offenders == []


def test_the_migrator_and_the_cli_reach_postgres_only_through_the_adapter() -> None:
    offenders = []
    for folder in ("migration", "cli"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(f"{n}.".startswith("asyncecto.adapters.postgres.") for n in names):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_public_all_is_a_sorted_tuple_of_real_names() -> None:
    for name in (
        "asyncecto",
        "asyncecto.errors",
        "asyncecto.types",
        "asyncecto.schema",
        "asyncecto.query",
        "asyncecto.changeset",
        "asyncecto.repo",
        "asyncecto.embedded",
        "asyncecto.migration",
    ):
        module = importlib.import_module(name)
        names = module.__all__
        assert isinstance(names, tuple), module.__name__
        assert list(names) == sorted(names), module.__name__
        for name in names:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_every_error_derives_from_the_base_and_lives_in_errors() -> None:
    from asyncecto import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is errors.Rollback:  # a control-flow signal, not an error: no `except Exception` may catch it
            assert not issubclass(cls, Exception)
        else:
            assert issubclass(cls, errors.AsyncEctoError)
        assert cls.__module__ == "asyncecto.errors"
        assert cls.__doc__, f"{name} has no docstring"


def test_typed_marker_is_shipped() -> None:
    assert (PACKAGE / "py.typed").exists()


def test_adapters_never_import_the_repo() -> None:
    """The adapters receive plain settings (``ConnectionSettings``); they never reach back up."""
    offenders = []
    for path in sorted((PACKAGE / "adapters").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(f"{n}.".startswith(("asyncecto.repo.", "asyncecto.cli.")) for n in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_the_repo_chooses_its_adapter_by_scheme_only() -> None:
    """No module above the adapters names the PostgreSQL adapter: the registry picks it from the URL."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("adapters/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = isinstance(node, ast.ImportFrom) and any(a.name == "PostgresAdapter" for a in node.names)
            named = isinstance(node, ast.Name | ast.Attribute) and "PostgresAdapter" in ast.unparse(node)
            if imported or named:
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
