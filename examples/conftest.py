"""The web examples' tests: the suite's database, the examples' tables, and each test in a sandbox.

The database is the test suite's (``$ASYNCECTO_TEST_URL``, else ``asyncecto_test`` on
127.0.0.1:5432, else the embedded server); its ``web_posts``/``web_comments`` tables come from
``examples/posts/migrations/`` once per session. ``asyncecto_repo`` hands the app's Repo to the
``sandbox`` fixture of asyncecto's pytest plugin, which starts it and rolls each test back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asyncecto import Repo
from asyncecto.embedded import database_url

from . import posts

ROOT = Path(__file__).resolve().parent.parent


def _test_url() -> str:
    return database_url("asyncecto_test", env="ASYNCECTO_TEST_URL", folder=ROOT / ".asyncecto" / "pgdata")


async def _migrate(url: str) -> None:
    repo = posts.new_repo(url)
    await repo.storage_up()
    async with repo:
        await posts.migrate(repo)


@pytest.fixture(scope="session")
def web_database_url() -> str:
    """The test database's URL, with the examples' tables in it."""
    url = _test_url()
    asyncio.run(_migrate(url))
    return url


@pytest.fixture
def asyncecto_repo(web_database_url: str) -> Repo:
    """The apps' Repo on the test database (not started: the ``sandbox`` fixture starts it)."""
    return posts.new_repo(web_database_url)
