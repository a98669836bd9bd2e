"""The public Repo shows the documented API only; its executor stays private (composition); the
modules of ``asyncecto.repo`` import each other one way only."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncecto
from asyncecto import Repo
from asyncecto.repo._core import RepoCore, executor_of

#: README, docs/*.md and DESIGN.md document these; anything else is reached through ``executor_of``
DOCUMENTED = [
    "aggregate",
    "all",
    "all_by",
    "all_running",
    "cache_stats",
    "checked_out",
    "checkout",
    "config",
    "copy_from",
    "copy_to",
    "current_tenant",
    "default_options",
    "delete",
    "delete_all",
    "disconnect_all",
    "exists",
    "explain",
    "format_table",
    "get",
    "get_by",
    "get_by_or_raise",
    "get_dynamic_repo",
    "get_or_raise",
    "in_transaction",
    "init",
    "insert",
    "insert_all",
    "insert_or_update",
    "listen",
    "listener_stats",
    "load",
    "name",
    "notify",
    "one",
    "one_or_raise",
    "pool_stats",
    "preload",
    "prepare_query",
    "prepare_transaction",
    "primary",
    "put_dynamic_repo",
    "query",
    "query_options",
    "reload",
    "reload_or_raise",
    "replica_events",
    "replica_stats",
    "rollback",
    "start",
    "state",
    "stop",
    "storage_down",
    "storage_up",
    "stream",
    "stream_query",
    "supervisor_restarts",
    "table_exists",
    "telemetry",
    "tenant",
    "to_sql",
    "transaction",
    "update",
    "update_all",
    "using",
]


def test_the_public_repo_shows_the_documented_api_only() -> None:
    repo = Repo("postgres://localhost/surface")
    assert sorted(n for n in dir(repo) if not n.startswith("_")) == DOCUMENTED


def test_the_repo_holds_its_executor() -> None:
    repo = Repo("postgres://localhost/surface", name="surface")
    core = executor_of(repo)
    assert isinstance(core, RepoCore) and not isinstance(repo, RepoCore)
    assert core.repo is repo and core.name == repo.name == "surface" and core.config is repo.config
    assert repr(repo) == repr(core)


REPO_PACKAGE = Path(asyncecto.__file__).parent / "repo"


def _repo_imports(tree: ast.Module, module: str) -> tuple[set[str], list[int]]:
    """The repo modules ``module`` imports when it runs (``if TYPE_CHECKING:`` blocks left out), and
    the lines of imports of repo modules inside functions."""
    runtime: set[str] = set()
    hidden: list[int] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = ("asyncecto.repo" if node.level == 1 else "") + (f".{node.module}" if node.module else "")
        base = base.lstrip(".")
        if base == "asyncecto.repo":  # from . import _write / from asyncecto.repo import _write
            return [f"asyncecto.repo.{a.name}" for a in node.names]
        return [base]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found = [n for n in targets(child) if n.startswith("asyncecto.repo.")]
                if in_function and found:
                    hidden.append(child.lineno)
                runtime.update(n.split(".")[2] for n in found)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    runtime.discard(module)
    return runtime, hidden


def test_repo_modules_import_each_other_one_way() -> None:
    graph: dict[str, set[str]] = {}
    hidden: list[str] = []
    for path in sorted(REPO_PACKAGE.glob("*.py")):
        imports, lines = _repo_imports(ast.parse(path.read_text()), path.stem)
        graph[path.stem] = imports
        hidden += [f"{path.name}:{n}" for n in lines]
    assert hidden == [], "imports of repo modules hidden inside functions"
    cycles: list[list[str]] = []

    def walk(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in trail:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            else:
                walk(nxt, [*trail, nxt])

    for start in graph:
        walk(start, [start])
    assert cycles == []
