"""The whole suite's settings: tests/, examples/ and the doctests in asyncecto/.

- With pytest-xdist installed (the dev extra), ``python -m pytest`` runs on workers, as if given
  ``-n auto --dist loadgroup``: each file stays on one worker, in order, and tests/reliability (one
  private cluster) on one worker. ``-n0`` or ``-p no:xdist`` run in one process; ``-n 3`` picks the
  count; ``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets what ``auto`` means.
- Each process (a run, or a worker of a run) has a database of its own: ``run_database_url``
  (tests/_isolation.py), created at its start and dropped at its end.
- The workers take the long files first, alternating files that compute and files that wait
  (tests/_schedule.py); the first run of a checkout
  compiles the suite once before they start (tests/_warmup.py).
- ``ASYNCECTO_NO_SKIPS=1`` (CI) turns a skipped test into a failure, in every worker.
- Compiled modules are kept, also under ``PYTHONDONTWRITEBYTECODE`` (see ``_keep_bytecode``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _keep_bytecode() -> None:
    """Under ``PYTHONDONTWRITEBYTECODE`` (set in many containers, and on CI machines) every worker of
    every run would compile asyncecto and rewrite the assertions of every test module again, about
    5 s of CPU each. Keep them in ``.pytest_cache/bytecode`` of this checkout instead: nothing is
    written beside the sources. ``PYTHONPYCACHEPREFIX`` set too means the choice is made: kept."""
    if sys.dont_write_bytecode and sys.pycache_prefix is None:
        sys.pycache_prefix = str(Path(__file__).resolve().parent / ".pytest_cache" / "bytecode")
        sys.dont_write_bytecode = False


_keep_bytecode()

import asyncio  # noqa: E402  (after _keep_bytecode: what follows is compiled once)
from collections.abc import Generator, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402
import pytest  # noqa: E402

from tests import _gc, _isolation, _schedule, _warmup  # noqa: E402

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
    if option.dist == "loadgroup":
        option.loadscopereorder = False  # keep the workers' order (tests/_schedule.py)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each worker the controller's ``--dist``: a worker parses the command line again, where the
    ``loadgroup`` chosen above is not, and would not group the files (pytest-xdist reads it there)."""
    node.workerinput["asyncecto_dist"] = node.config.option.dist
    node.workerinput["asyncecto_unit_seconds"] = _timings(node.config).recorded


def _timings(config: pytest.Config) -> _schedule.Timings:
    """The controller's timings: last run's seconds per unit (pytest's cache), this run's as they come."""
    timings: _schedule.Timings | None = getattr(config, "_asyncecto_timings", None)
    if timings is None:
        cache = getattr(config, "cache", None)
        recorded = cache.get(_schedule.CACHE_KEY, {}) if cache is not None else {}
        timings = _schedule.Timings(recorded if isinstance(recorded, dict) else {})
        config._asyncecto_timings = timings  # type: ignore[attr-defined]
    return timings


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In the controller of a run with workers, before they start: compile the suite once
    (tests/_warmup.py)."""
    if _CONTROLLER.get("config") is session.config:
        _warmup.prime_bytecode(Path(str(session.config.rootpath)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In the controller of a run with workers: add each test's seconds to its unit's."""
    config = _CONTROLLER.get("config")
    if config is not None:
        _timings(config).add(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In the controller of a run with workers: keep the seconds for the next run's order."""
    cache = getattr(session.config, "cache", None)
    if _CONTROLLER.get("config") is session.config and cache is not None:
        cache.set(_schedule.CACHE_KEY, _timings(session.config).merged())


#: the controller's config in a run with workers (the hooks above record nothing elsewhere)
_CONTROLLER: dict[str, pytest.Config] = {}


def pytest_configure(config: pytest.Config) -> None:
    """In a worker: group as the controller does (see pytest_configure_node)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("asyncecto_dist") == "loadgroup":
        config.option.loadgroup = True
    elif workerinput is None and getattr(config.option, "dist", "no") == "loadgroup" and config.option.numprocesses:
        _CONTROLLER["config"] = config


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: two workers per core, at most four (the tests mostly wait on the server)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist reads it
    return min(_MAX_AUTO_WORKERS, 2 * (os.cpu_count() or 1))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, a file's tests form one group, tests/reliability's files one; the
    workers take them in the order of tests/_schedule.py."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_schedule.unit_of(item.nodeid)))
    workerinput = getattr(config, "workerinput", None) or {}
    _schedule.order(items, workerinput.get("asyncecto_unit_seconds", {}))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """Keep what lives on out of the collector's sight (tests/_gc.py); count the setup's CPU."""
    _gc.freeze_what_lives_on(item.nodeid.partition("::")[0])
    return (yield from _schedule.measure_cpu(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Count the test's CPU seconds (tests/_schedule.py orders the next run by them)."""
    return (yield from _schedule.measure_cpu(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """Count the teardown's CPU seconds."""
    return (yield from _schedule.measure_cpu(item))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """With ``ASYNCECTO_NO_SKIPS=1`` (CI sets it) a skipped test fails: a skip names what to install
    on a developer machine, and CI, which installs everything, must not hide a missing part.
    A doctest's ``+SKIP`` example is left alone: it is an example not meant to run.
    Each report carries its phase's CPU seconds (tests/_schedule.py)."""
    outcome = yield
    report = outcome.get_result()
    _schedule.mark_cpu(item, report)
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
