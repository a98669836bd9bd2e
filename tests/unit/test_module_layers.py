"""The layers import one way: no import cycle between modules, and no import hidden inside a function
(only ``if TYPE_CHECKING:`` imports may wait) in the pure core and the packages around it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import asyncecto

PACKAGE = Path(asyncecto.__file__).parent
CHECKED = ("query", "schema", "changeset", "migration", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    """The asyncecto modules an import statement loads (a submodule when a name is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in known:
            out.append(sub)
        elif target in known:
            out.append(target)
    return out


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif (isinstance(node, ast.If) and not _is_type_checking(node)) or isinstance(node, ast.Try):
            found.extend(n for n in node.body if isinstance(n, ast.Import | ast.ImportFrom))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        graph[name] = {t for node in _top_level_imports(tree) for t in _resolve(name, path, node, known)} - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _in_checked(module: str) -> bool:
    return any(module == f"asyncecto.{p}" or module.startswith(f"asyncecto.{p}.") for p in CHECKED)


def test_no_import_cycle_touches_the_core_packages() -> None:
    cycles = [c for c in _cycles(_graph()) if any(_in_checked(m) for m in c)]
    assert cycles == []


def test_no_import_hidden_in_a_function() -> None:
    known = set(_modules())
    offenders = []
    for folder in CHECKED:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix()
            tree = ast.parse(path.read_text())
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        targets = _resolve(_module_name(path), path, node, known) or ["?"]
                        offenders += [(rel, t) for t in targets]
    assert offenders == []


def test_the_migration_dsl_and_migrator_import_without_the_repo() -> None:
    code = (
        "import sys\nimport asyncecto.migration\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('asyncecto.repo', 'asyncpg')))\nassert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
