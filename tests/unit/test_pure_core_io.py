"""The pure core does no I/O: it defines no awaitable protocol either (no hand-written ``__await__``)."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncecto

PACKAGE = Path(asyncecto.__file__).parent
PURE = ("types", "schema", "changeset", "query", "multi")
_ASYNC_PROTOCOL = {"__await__", "__aiter__", "__anext__", "__aenter__", "__aexit__"}


def test_the_pure_core_defines_no_awaitables() -> None:
    offenders = []
    for name in PURE:
        path = PACKAGE / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]:
            for node in ast.walk(ast.parse(file.read_text())):
                bad = isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncWith | ast.AsyncFor) or (
                    isinstance(node, ast.FunctionDef) and node.name in _ASYNC_PROTOCOL
                )
                if bad:
                    offenders.append(f"{file.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}")
    assert offenders == []
