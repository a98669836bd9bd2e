"""The pytest plugin (entry point ``pytest11``): each test in a sandbox, rolled back at the end.

Tell it which Repo to sandbox, in ``pyproject.toml``::

    [tool.pytest.ini_options]
    asyncecto_repo = "myapp.db:repo"

or with a fixture of your own named ``asyncecto_repo`` that returns the Repo. Then::

    async def test_create_post(sandbox):
        await repo.insert(Post(title="hello"))     # rolled back after the test

    @pytest.mark.no_sandbox
    async def test_really_commits(sandbox):       # sandbox is None: real commits, clean up yourself
        ...

The ``sandbox`` fixture starts the repo if it is not running (and stops it after the
test) and needs pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncecto.errors import SandboxError

from . import Sandbox
from . import sandbox as _open_sandbox

__all__ = ("asyncecto_repo", "sandbox")

_INI = "asyncecto_repo"
_HOW = (
    f'set {_INI} = "package.module:repo" under [tool.pytest.ini_options] in pyproject.toml, '
    "or define a fixture named `asyncecto_repo` (in conftest.py) that returns your Repo"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(_INI, "the Repo the `sandbox` fixture wraps, as 'package.module:attribute'", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_sandbox: run the test without the sandbox (real commits)")


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise SandboxError("?", f"{_INI} = {path!r} is not 'package.module:attribute'", _HOW)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SandboxError("?", f"{_INI} = {path!r}: cannot import {module_name!r} ({exc})", _HOW) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise SandboxError("?", f"{_INI} = {path!r}: {module_name} has no attribute {attribute!r}", _HOW)
        target = getattr(target, part)
    return target


@pytest.fixture
def asyncecto_repo(request: pytest.FixtureRequest) -> Any:
    """The Repo under test, from the ``asyncecto_repo`` ini option; override it with your own fixture."""
    path = str(request.config.getini(_INI) or "")
    if not path:
        raise SandboxError("?", "the `sandbox` fixture does not know which Repo to use", _HOW)
    return _load(path)


async def _sandbox(asyncecto_repo: Any, request: pytest.FixtureRequest) -> AsyncIterator[Sandbox | None]:
    """The test's sandbox, shared by every task; ``None`` under ``@pytest.mark.no_sandbox``."""
    repo = asyncecto_repo
    started = repo.state != "running"
    if started:
        await repo.start()
    elif repo.running_loop is not asyncio.get_running_loop():
        raise SandboxError(
            repo.name,
            "the repo runs on another event loop than this test's `sandbox` fixture",
            "run the fixture on the repo's loop: with a session-scoped loop, also set "
            'asyncio_default_fixture_loop_scope = "session" (or leave starting the repo to the fixture)',
        )
    try:
        if request.node.get_closest_marker("no_sandbox") is not None:
            owners = repo.ownership
            mode = owners.mode
            owners.mode = "auto"  # real commits, even when the repo is in manual mode
            try:
                yield None
            finally:
                owners.mode = mode
        else:
            async with _open_sandbox(repo) as sb:
                yield sb
    finally:
        if started:
            await repo.stop()


def _needs_pytest_asyncio(asyncecto_repo: Any) -> Any:
    raise SandboxError("?", "the `sandbox` fixture is async and needs pytest-asyncio", "pip install pytest-asyncio")


def _sandbox_fixture() -> Any:
    try:
        import pytest_asyncio
    except ImportError:  # the plugin still loads; the fixture explains
        return pytest.fixture(name="sandbox")(_needs_pytest_asyncio)
    return pytest_asyncio.fixture(name="sandbox")(_sandbox)


#: the test's sandbox (a :class:`~asyncecto.testing.Sandbox`), or ``None`` under ``no_sandbox``
sandbox = _sandbox_fixture()
