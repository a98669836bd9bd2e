"""docs/ecto-parity.md stays honest: every ✓ row names things that exist, no row lacks a status.

The document's tables have three cells, ``Ecto | asyncecto | status`` (a ``|`` inside a cell is
written ``\\|``). For a row whose status starts with ✓, the asyncecto cell's code spans are read:

- ``repo.x`` / ``Repo.x`` / ``Multi.x`` / ``cs.x`` / ``Changeset.x`` / ``QueryEvent.x``: the attribute exists;
- ``asyncecto.a.b``: the dotted path imports / resolves;
- ``name(`` (a call, not a method, not after ``def``, not inside a string, not a builtin): ``name``
  is exported by one of the public modules (asyncecto, query, changeset, schema, migration, testing, types).
"""

from __future__ import annotations

import builtins
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.changeset import Changeset
from asyncecto.multi import Multi

DOC = Path(__file__).resolve().parents[2] / "docs" / "ecto-parity.md"

# by import path: ``asyncecto.schema`` as an attribute is the ``schema`` decorator, not the module
_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(name)
    for name in (
        "asyncecto",
        "asyncecto.query",
        "asyncecto.changeset",
        "asyncecto.schema",
        "asyncecto.migration",
        "asyncecto.testing",
        "asyncecto.types",
    )
)
_OWNERS: dict[str, Any] = {
    "repo": Repo,
    "Repo": Repo,
    "Multi": Multi,
    "cs": Changeset,
    "Changeset": Changeset,
    "QueryEvent": QueryEvent,
}
# placeholders standing for the user's own callables in the examples
_PLACEHOLDERS = frozenset({"fn", "async_fn", "handler"})

_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SPAN = re.compile(r"`([^`]+)`")
_ATTR = re.compile(r"(?<![\w.])(repo|Repo|Multi|cs|Changeset|QueryEvent)\.(\w+)")
_DOTTED = re.compile(r"(?<![\w.])asyncecto(?:\.\w+)+")
_CALL = re.compile(r"(?<![\w.])(?<!def )([A-Za-z_]\w*)\(")
_STRING = re.compile(r'"[^"]*"')  # SQL text inside string literals is not a call
_STATUS = re.compile(r"^(✓|departure: \S|not yet)")


def _rows() -> list[tuple[int, list[str]]]:
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("|"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        if cells == ["Ecto", "asyncecto", "status"] or all(set(c) <= {"-", ":"} for c in cells):
            continue
        rows.append((number, cells))
    return rows


def _resolve_dotted(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def _names(cell: str) -> list[str]:
    found: list[str] = []
    for span in _SPAN.findall(cell):
        found += [f"{owner}.{attr}" for owner, attr in _ATTR.findall(span)]
        found += _DOTTED.findall(span)
        calls = _CALL.findall(_STRING.sub('""', span))
        found += [name for name in calls if name not in _PLACEHOLDERS and not hasattr(builtins, name)]
    return found


def _exists(name: str) -> bool:
    if "." in name:
        head, _, rest = name.partition(".")
        if head in _OWNERS:
            return hasattr(_OWNERS[head], rest)
        try:
            _resolve_dotted(name)
        except (ImportError, AttributeError):
            return False
        return True
    return any(hasattr(module, name) for module in _MODULES)


def test_the_document_has_every_inventory_section_and_no_code_block() -> None:
    text = DOC.read_text(encoding="utf-8")
    for section in range(1, 14):
        assert re.search(rf"^## 1\.{section} ", text, re.M), f"section 1.{section} missing"
    # every code block in the docs must run in the tests: this document has none
    assert "```" not in text


def test_every_row_has_three_cells_and_a_status() -> None:
    rows = _rows()
    assert len(rows) > 200
    for number, cells in rows:
        assert len(cells) == 3, f"line {number}: expected 3 cells, got {cells}"
        ecto, spelling, status = cells
        assert ecto, f"line {number}: empty Ecto cell"
        assert spelling, f"line {number}: empty asyncecto cell"
        assert _STATUS.match(status), f"line {number}: status must be ✓, 'departure: <reason>' or 'not yet': {status!r}"


def test_every_departure_gives_a_reason() -> None:
    for number, (_, _, status) in _rows():
        if status.startswith("departure"):
            reason = status.removeprefix("departure:").strip()
            assert len(reason.split()) >= 4, f"line {number}: departure without a real reason: {status!r}"


def test_names_in_done_rows_exist() -> None:
    missing: list[str] = []
    checked = 0
    for number, (_, spelling, status) in _rows():
        if not status.startswith("✓"):
            continue
        for name in _names(spelling):
            checked += 1
            if not _exists(name):
                missing.append(f"line {number}: {name}")
    assert checked > 300
    assert not missing, "names marked ✓ that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("cell", "names"),
    [
        ("`repo.get_or_raise(Post, 1)`", ["repo.get_or_raise", "get_or_raise"][:1]),
        ('`cs \\| validate_required(["a"])`', ["validate_required"]),
        ("`asyncecto.errors.QueryError`, `def up()`", ["asyncecto.errors.QueryError"]),
        ('`p.title.like("a%")`, `fn(ids)`', []),
    ],
)
def test_the_name_reader(cell: str, names: list[str]) -> None:
    assert _names(cell.replace("\\|", "|")) == names


def test_the_checker_refuses_unknown_names() -> None:
    assert not _exists("repo.transact")
    assert not _exists("asyncecto.query.no_such_thing")
    assert not _exists("no_such_function")
    assert _exists("repo.all") and _exists("asyncecto.multi.Multi.run") and _exists("where")
