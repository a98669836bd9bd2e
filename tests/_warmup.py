"""Compiling the suite once before the pytest-xdist workers start (test support).

Every worker imports every test module, and pytest rewrites each module's asserts before it runs
(about 5 s of CPU per worker on the 2-core machine). Kept compiled (see ``_keep_bytecode`` in the
root conftest.py), that is paid once per checkout; but on a fresh checkout the workers would all
pay it at once. So the first run with workers has them wait while two processes, one per half of
the suite, collect it (``--collect-only``: nothing runs) and leave it compiled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ("prime_bytecode",)

#: the halves of the suite collected side by side (about equal work)
_HALVES = (("tests/integration", "tests/reliability"), ("tests/unit", "asyncecto", "examples"))
_TIMEOUT = 120.0  # seconds: a slower collection only means the workers compile what is left


def _marker(root: Path) -> Path:
    version = f"py{sys.version_info.major}{sys.version_info.minor}-pytest{pytest.__version__}"
    return root / ".pytest_cache" / f"asyncecto-compiled-{version}"


def prime_bytecode(root: Path) -> None:
    """Collect the suite in two processes unless this checkout's suite was compiled before."""
    marker = _marker(root)
    if marker.exists() or sys.dont_write_bytecode:
        return
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"]
    present = [[path for path in half if (root / path).exists()] for half in _HALVES]
    halves = [
        subprocess.Popen(
            [*command, *paths],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTEST_ADDOPTS": ""},
        )
        for paths in present
        if paths
    ]
    try:
        codes: list[int | None] = [process.wait(timeout=_TIMEOUT) for process in halves]
    except subprocess.TimeoutExpired:
        codes = [None]
    finally:
        for process in halves:
            if process.poll() is None:
                process.kill()
                process.wait()
    if all(code == 0 for code in codes):
        marker.parent.mkdir(exist_ok=True)
        marker.touch()
