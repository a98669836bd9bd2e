"""The pytest plugin, as a user's project sees it: run in a pytest of its own (pytester).

One test runs that pytest as a process of its own (the plugin found through its entry point in a
fresh interpreter); the others run it in this process, on a thread of its own so that its event
loops never meet the outer test's.
"""

from __future__ import annotations

import textwrap
import threading

import asyncpg
import pytest

pytestmark = [pytest.mark.no_sandbox, pytest.mark.timeout(180)]

APP_DB = """
import os

from asyncecto import Repo, schema


@schema("weather")
class Weather:
    city: str | None = None


repo = Repo(os.environ["PLUGIN_TEST_URL"], pool_size=2)
if os.environ.get("PLUGIN_MANUAL"):
    from asyncecto.testing import mode

    mode(repo, "manual")  # as Ecto's test_helper does: a query outside a sandbox is an error
"""

TESTS = """
import asyncio
import contextvars

import pytest

from asyncecto.errors import UniqueViolationError
from asyncecto.testing import Sandbox

from appdb import Weather, repo


async def test_writes_in_the_sandbox(sandbox):
    assert isinstance(sandbox, Sandbox) and sandbox.repo is repo and repo.state == "running"
    await repo.insert(Weather(city="one"))
    assert await repo.aggregate(Weather, "count") == 1


async def test_the_last_test_left_nothing(sandbox):
    assert await repo.aggregate(Weather, "count") == 0


async def test_a_failed_statement_and_other_tasks(sandbox):
    await repo.insert(Weather(city="kept"))
    with pytest.raises(UniqueViolationError):
        await repo.query("INSERT INTO weather (id, city) SELECT id, city FROM weather")
    other = asyncio.get_running_loop().create_task(
        repo.aggregate(Weather, "count"), context=contextvars.Context()
    )
    assert await other == 1


@pytest.mark.no_sandbox
async def test_really_commits(sandbox):
    assert sandbox is None
    await repo.insert(Weather(city="committed"))
"""


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """``pytester.runpytest_inprocess(*args)`` on a thread of its own (no event loop running there)."""
    results: list[pytest.RunResult] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(pytester.runpytest_inprocess(*args))
        except BaseException as exc:  # re-raised on the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="inner-pytest")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


@pytest.fixture
def project(pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PLUGIN_TEST_URL", database_url)
    pytester.makepyfile(appdb=APP_DB)
    pytester.makepyfile(test_app=TESTS)
    return pytester


async def test_each_test_runs_in_a_sandbox_of_the_ini_named_repo(
    project: pytest.Pytester, admin: asyncpg.Connection
) -> None:
    await admin.execute("TRUNCATE weather RESTART IDENTITY CASCADE")
    project.makeini(
        textwrap.dedent("""
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        asyncecto_repo = appdb:repo
        """)
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=4)
    # only the no_sandbox test committed
    assert [r["city"] for r in await admin.fetch("SELECT city FROM weather")] == ["committed"]
    await admin.execute("TRUNCATE weather RESTART IDENTITY CASCADE")


async def test_manual_mode_still_lets_no_sandbox_tests_commit(
    project: pytest.Pytester, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await admin.execute("TRUNCATE weather RESTART IDENTITY CASCADE")
    monkeypatch.setenv("PLUGIN_MANUAL", "1")
    project.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nasyncecto_repo = appdb:repo\n"
    )
    result = run_inner(project, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 1
    await admin.execute("TRUNCATE weather RESTART IDENTITY CASCADE")


SESSION_CONFTEST = """
import pytest
import pytest_asyncio

import appdb


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def started():
    async with appdb.repo:
        yield appdb.repo


@pytest.fixture
def asyncecto_repo(started):
    return started
"""

SESSION_TESTS = """
import pytest

from appdb import Weather, repo

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_one(sandbox):
    await repo.insert(Weather(city="one"))
    assert await repo.aggregate(Weather, "count") == 1


async def test_two(sandbox):
    assert await repo.aggregate(Weather, "count") == 0
"""


def test_a_repo_on_a_session_loop_needs_the_fixtures_there_too(project: pytest.Pytester) -> None:
    project.makeconftest(SESSION_CONFTEST)
    project.makepyfile(test_app=SESSION_TESTS)
    project.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    result = run_inner(project, "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*the repo runs on another event loop than this test's `sandbox` fixture*"])
    result.stdout.fnmatch_lines(['*asyncio_default_fixture_loop_scope = "session"*'])

    project.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n")
    result = run_inner(project, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


async def test_a_conftest_fixture_names_the_repo(project: pytest.Pytester, admin: asyncpg.Connection) -> None:
    await admin.execute("TRUNCATE weather RESTART IDENTITY CASCADE")
    project.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    project.makeconftest(
        textwrap.dedent("""
        import pytest
        import appdb

        @pytest.fixture
        def asyncecto_repo():
            return appdb.repo
        """)
    )
    result = run_inner(project, "-p", "no:cacheprovider", "-k", "not really_commits")
    result.assert_outcomes(passed=3)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


def test_an_unconfigured_plugin_says_how_to_configure_it(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    result = run_inner(project, "-p", "no:cacheprovider", "-k", "writes_in")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the `sandbox` fixture does not know which Repo to use*"])
    result.stdout.fnmatch_lines(['*asyncecto_repo = "package.module:repo"*'])

    project.makeini(  # (in this process the outer run's warnings filters apply: the loop scope is set)
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nasyncecto_repo = appdb:nothing\n"
    )
    result = run_inner(project, "-p", "no:cacheprovider", "-k", "writes_in")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*appdb has no attribute 'nothing'*"])
