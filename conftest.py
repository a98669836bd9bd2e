"""The whole suite's settings: tests/, examples/ and the doctests in asyncecto/.

- With pytest-xdist installed (the dev extra), ``python -m pytest`` runs on workers, as if given
  ``-n auto --dist loadgroup``: each file stays on one worker, in order, and tests/reliability (one
  private cluster) on one worker. ``-n0`` or ``-p no:xdist`` run in one process; ``-n 3`` picks the
  count; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets what ``auto`` means.
- Each process (a run, or a worker of a run) has a database of its own: ``run_database_url``
  (tests/_isolation.py), created at its start and dropped at its end.
- ``ASYNCECTO_NO_SKIPS=1`` (CI) turns a skipped test into a failure, in every worker.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Generator, Iterator
from typing import Any

import asyncpg
import pytest

from tests import _isolation

_MAX_AUTO_WORKERS = 4


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Workers by default (runs before pytest-xdist reads its options); not in a worker, not under --pdb."""
    option = config.option
    if not hasattr(option, "numprocesses") or hasattr(config, "workerinput"):
        return  # no pytest-xdist (-p no:xdist), or this is a worker
    if option.numprocesses is None and not option.collectonly and not config.getoption("usepdb", False):
        option.numprocesses = "auto"
        if option.dist == "no":
            option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker the controller's ``--dist``: a worker parses the command line again, where the
    ``loadgroup`` chosen above is not, and would not group the files (pytest-xdist reads it there)."""
    node.workerinput["asyncecto_dist"] = node.config.option.dist


def pytest_configure(config: pytest.Config) -> None:
    """In a worker: group as the controller does (see pytest_configure_node)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("asyncecto_dist") == "loadgroup":
        config.option.loadgroup = True


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: two workers per core, at most four (the tests mostly wait on the server)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist reads it
    return min(_MAX_AUTO_WORKERS, 2 * (os.cpu_count() or 1))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, a file's tests form one group; tests/reliability's files form one."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        path = item.nodeid.partition("::")[0]
        group = "reliability" if path.startswith("tests/reliability/") else path
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """With ``ASYNCECTO_NO_SKIPS=1`` (CI sets it) a skipped test fails: a skip names what to install
    on a developer machine, and CI, which installs everything, must not hide a missing part.
    A doctest's ``+SKIP`` example is left alone: it is an example not meant to run."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("ASYNCECTO_NO_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
        and not isinstance(item, pytest.DoctestItem)
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped under ASYNCECTO_NO_SKIPS=1 (CI): {report.longrepr}"


@pytest.fixture(scope="session")
def run_database_url() -> Iterator[str]:
    """A database of this process's own on the test server, dropped at the end (see tests/_isolation.py)."""
    url = asyncio.run(_isolation.create_database(_isolation.base_url()))
    try:
        yield url
    finally:
        try:
            asyncio.run(_isolation.drop_database(url))
        except (OSError, asyncpg.PostgresError) as exc:  # best effort: the next run sweeps it
            print(f"\nasyncecto tests: could not drop {url}: {exc!r}", file=sys.stderr)
