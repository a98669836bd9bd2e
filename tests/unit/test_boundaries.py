"""Architecture rules that a test can check: the pure core, the public surface."""

from __future__ import annotations

import ast
import functools
import importlib
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

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
                    assert isinstance(node, ast.Import | ast.ImportFrom)
                    offenders.append(f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', 0)}")
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


# -- issue 18: the layer boundaries, read from the source (no module is imported) -------------------------
#
# Each rule has a KNOWN allowlist (empty since issue 18 moved the last violations), each entry with its
# reason. A rule fails on a violation that is not listed, and on a listed one that no longer occurs: fixing
# one means deleting its entry, so the lists only shrink.


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {_module_name(path): path for path in SOURCES}
#: compiled modules (``_speedups``): known by their stub, never part of a cycle
EXTENSIONS = {_module_name(path) for path in PACKAGE.rglob("*.pyi")}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """Every import statement in the file, functions included: ``(line, module, under TYPE_CHECKING)``.

    Relative imports are resolved; ``from package import name`` is an import of ``package.name`` when
    that is a module of asyncecto, else of ``package``.
    """
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, type_checking) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES or sub in EXTENSIONS else target, type_checking))
        for inner in ast.iter_child_nodes(node):
            visit(inner, type_checking)

    visit(_tree(path), False)
    return found


def _assert_known(found: set[Any], known: Mapping[Any, str], what: str) -> None:
    new = sorted(found - set(known), key=repr)
    gone = sorted(set(known) - found, key=repr)
    lines = [f"{what}:"]
    if new:
        lines.append("  new (fix them; the KNOWN list only shrinks):")
        lines += [f"    {item!r}" for item in new]
    if gone:
        lines.append("  fixed (delete these entries from the KNOWN list):")
        lines += [f"    {item!r}" for item in gone]
    assert not new and not gone, "\n".join(lines)


# (a) the adapters never reach up into the repo -----------------------------------------------------------

#: ``(file, imported module)``: type-only imports count (the adapter is to get plain settings)
KNOWN_ADAPTER_IMPORTS_OF_REPO: dict[tuple[str, str], str] = {}


def test_the_adapters_never_import_the_repo() -> None:
    found = {
        (_rel(path), module)
        for path in SOURCES
        if _rel(path).startswith("adapters/")
        for _line, module, _tc in _imports(path)
        if module in ("asyncecto.repo", "asyncecto.cli") or module.startswith(("asyncecto.repo.", "asyncecto.cli."))
    }
    _assert_known(found, KNOWN_ADAPTER_IMPORTS_OF_REPO, "imports of asyncecto.repo or .cli inside asyncecto/adapters")


# (b) SQL text only in adapters/postgres ------------------------------------------------------------------
#
# A string constant or f-string (placeholders read as ``{}``; docstrings never count) is SQL when
#  - it starts with a statement keyword in capitals followed by more text (``SAVEPOINT {}``,
#    ``EXISTS (SELECT …``), or is a whole statement on its own (``BEGIN``, ``COMMIT``, ``ROLLBACK``); or
#  - it is a fragment: no lowercase letter outside placeholders and quotes, two words or more (or a
#    placeholder), every word an SQL word (``{} IS NOT NULL``, ``READ COMMITTED``, `` ISOLATION LEVEL {}``).
# Left out on purpose, as they are not SQL sent to the server: lowercase words (operation names
# ``"insert"``, CLI commands ``"create"``/``"rollback"``, migration log lines ``"create table {}"``); prose
# that starts with a capital (``"Rollback"``, ``"Create the repo's database."``); error messages that
# mention SQL in the middle (``"… DROP DATABASE ... WITH (FORCE)"``, ``"LISTEN would truncate it"``);
# single words that are not statements: the command tags a reply carries (``"SELECT"``, ``"FETCH"`` in
# repo/_repo.py), the words the sandbox looks for in raw SQL (``"START"``, ``"PREPARE"``), the
# ``ANY``/``ALL`` operator names of the query AST, ``Fragment(("TRUE",), ())``; names in capitals
# (``"DATABASE_URL"``, ``"QUERY {}"`` log headers, ``" (SQLSTATE {})"``).

_STATEMENTS = (
    "SELECT|INSERT|UPDATE|DELETE|WITH|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|CREATE|ALTER|DROP|TRUNCATE|SET"
    "|LISTEN|UNLISTEN|NOTIFY|EXPLAIN|COPY|LOCK|VACUUM|ANALYZE|GRANT|REVOKE|DO|CALL|PREPARE|EXECUTE|DEALLOCATE"
)
_STATEMENT = re.compile(rf"\s*(?:(?:{_STATEMENTS})[\s(;]+\S|(?:BEGIN|COMMIT|ROLLBACK)\s*;?\s*$|EXISTS\s*\()")
_CLAUSE_WORDS = """
FROM WHERE JOIN ON AS IN IS NOT NULL AND OR ANY ALL SOME BETWEEN LIKE ILIKE TO INTO VALUES RETURNING CONFLICT
NOTHING DEFAULT TRUE FALSE ISOLATION LEVEL READ WRITE ONLY COMMITTED UNCOMMITTED REPEATABLE SERIALIZABLE
DEFERRABLE TRANSACTION LOCAL SESSION VERBOSE COSTS BUFFERS FORMAT ORDER BY GROUP HAVING LIMIT OFFSET DISTINCT
TABLE INDEX CONSTRAINT PRIMARY KEY REFERENCES CASCADE
"""
_SQL_WORDS = frozenset(_STATEMENTS.split("|")) | frozenset(_CLAUSE_WORDS.split())


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                ids.add(id(first.value))
    return ids


def _strings(tree: ast.AST) -> Iterator[tuple[str, bool]]:
    """The file's string constants and f-strings (placeholders as ``{}``), docstrings left out:
    ``(text, whether it has a placeholder)``."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for inner in ast.walk(node):
                if inner is not node:
                    skip.add(id(inner))
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            yield "".join(str(p) for p in parts), any(not isinstance(v, ast.Constant) for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.value, False


def is_sql(text: str, placeholder: bool = False) -> bool:
    """Whether a string of the source is SQL text (see the rules above)."""
    if _STATEMENT.match(text):
        return True
    bare = re.sub(r"\{\}|\"[^\"]*\"|'[^']*'", " ", text)
    words = re.findall(r"[A-Za-z_]+", bare)
    if not words or any(not w.isupper() for w in words) or re.search(r"[a-z]", bare):
        return False
    return (len(words) >= 2 or placeholder) and all(w in _SQL_WORDS for w in words)


def _sql_known(path: str, reason: str, *texts: str) -> dict[tuple[str, str], str]:
    return {(path, text): reason for text in texts}


#: ``(file, text)``
KNOWN_SQL_OUTSIDE_THE_ADAPTER: dict[tuple[str, str], str] = {}


def test_sql_text_lives_only_in_the_postgres_adapter() -> None:
    found = set()
    for path in SOURCES:
        if _rel(path).startswith("adapters/postgres/"):
            continue
        for text, placeholder in _strings(_tree(path)):
            if is_sql(text, placeholder):
                found.add((_rel(path), text))
    _assert_known(found, KNOWN_SQL_OUTSIDE_THE_ADAPTER, "SQL text outside asyncecto/adapters/postgres")


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "SELECT count(*) FROM t",
        "INSERT INTO t VALUES ($1)",
        "  UPDATE {} SET x = 1",
        "DELETE FROM t",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "BEGIN",
        "COMMIT;",
        "ROLLBACK",
        "SAVEPOINT {}",
        "RELEASE SAVEPOINT s",
        "CREATE TABLE t (id int)",
        "ALTER TABLE t ADD x int",
        "DROP TABLE t",
        "TRUNCATE t",
        "SET search_path TO x",
        "LISTEN {}",
        "NOTIFY {}, $1",
        "EXISTS(SELECT 1)",
        "EXPLAIN ({}) {}",
        "{} IS NOT NULL",
        "READ COMMITTED",
    ],
)
def test_sql_text_is_recognised(text: str) -> None:
    assert is_sql(text, "{}" in text)


@pytest.mark.parametrize(
    "text",
    [
        "insert",
        "update",
        "create table {}",
        "Rollback",
        "Create the repo's database.",
        "rollback requested with value {} (raised outside a transaction?)",
        "end other sessions on the database (PostgreSQL 13+: DROP DATABASE ... WITH (FORCE))",
        "SELECT",
        "FETCH",
        "START",
        "ANY",
        "TRUE",
        "DATABASE_URL",
        "QUERY {}",
        " (SQLSTATE {})",
        "UPDATE",
        "SET",
        "",
    ],
)
def test_messages_and_names_are_not_sql(text: str) -> None:
    assert not is_sql(text, "{}" in text)


# (c) no awaiting and no I/O in the core -----------------------------------------------------------------

#: the pure migration command modules (not the migrator, the file loader or the package, which re-exports both)
_MIGRATION_COMMANDS = tuple(
    f"migration/{name}.py" for name in ("_ddl_commands", "_dsl", "_objects", "_reverse", "_types")
)
CORE = ("types", "errors.py", "schema", "changeset", "query", "multi.py", *_MIGRATION_COMMANDS)
_IO_MODULES = frozenset({"asyncio", "socket", "anyio", "asyncpg", "selectors", "ssl"})
_ASYNC_DUNDERS = frozenset({"__await__", "__aenter__", "__aexit__", "__aiter__", "__anext__"})

#: ``(file, what)``
KNOWN_CORE_IO: dict[tuple[str, str], str] = {}


def _core_files() -> list[Path]:
    files: list[Path] = []
    for name in CORE:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _io(path: Path) -> set[str]:
    found: set[str] = set()
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Await):
            found.add("await")
        elif isinstance(node, ast.AsyncFunctionDef):
            found.add("async def")
        elif isinstance(node, ast.AsyncWith):
            found.add("async with")
        elif isinstance(node, ast.AsyncFor) or (isinstance(node, ast.comprehension) and node.is_async):
            found.add("async for")
        elif isinstance(node, ast.FunctionDef) and node.name in _ASYNC_DUNDERS:
            found.add(f"def {node.name}")
        elif isinstance(node, ast.Attribute) and node.attr in _ASYNC_DUNDERS:
            found.add(f".{node.attr}")
    found |= {f"import {m}" for _line, m, _tc in _imports(path) if m.split(".")[0] in _IO_MODULES}
    return found


def test_the_core_neither_awaits_nor_does_io() -> None:
    assert all((PACKAGE / name).exists() for name in CORE), "a core module moved: update CORE"
    found = {(_rel(path), what) for path in _core_files() for what in _io(path)}
    _assert_known(found, KNOWN_CORE_IO, "awaiting or I/O in the core (" + ", ".join(CORE) + ")")


# (d) no import cycles -----------------------------------------------------------------------------------

#: each cycle as the set of modules that import one another (a strongly connected component of the graph
#: of every import, those inside functions included, those under ``if TYPE_CHECKING:`` left out)
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _line, module, type_checking in _imports(path):
            if type_checking or module in EXTENSIONS or module.split(".")[0] != "asyncecto":
                continue
            while module not in MODULES:  # an attribute of a module: ``asyncecto.query.where``
                module = module.rpartition(".")[0]
            if module != name:
                graph[name].add(module)
    return graph


def _cycles(graph: Mapping[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_new_import_cycles() -> None:
    graph = _graph()
    found = _cycles(graph)
    detail = []
    for cycle in sorted(found - set(KNOWN_CYCLES), key=sorted):
        detail += [f"{a} -> {b}" for a in sorted(cycle) for b in sorted(graph[a] & cycle)]
    try:
        _assert_known(found, KNOWN_CYCLES, "import cycles between modules of asyncecto")
    except AssertionError as exc:
        raise AssertionError("\n".join([str(exc), "  imports in the new cycles:", *detail])) from None


def test_the_cycle_finder_finds_a_cycle_through_a_late_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == {frozenset({"a", "b", "c"})}
    assert _cycles({"a": {"b"}, "b": set()}) == set()


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
                offenders.append(f"{rel}:{getattr(node, 'lineno', 0)}")
    assert offenders == []
