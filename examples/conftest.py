"""The web examples' tests: the suite's database, the examples' tables, and each test in a sandbox.

The database is the test suite's, this process's own (``run_database_url``, the root conftest.py);
its ``web_posts``/``web_comments`` tables come from
``examples/posts/migrations/`` once per session. ``asyncecto_repo`` hands the app's Repo to the
``sandbox`` fixture of asyncecto's pytest plugin, which starts it and rolls each test back.
"""

from __future__ import annotations

import asyncio

import pytest

from asyncecto import Repo

from . import posts


async def _migrate(url: str) -> None:
    repo = posts.new_repo(url)
    await repo.storage_up()
    async with repo:
        await posts.migrate(repo)


@pytest.fixture(scope="session")
def web_database_url(run_database_url: str) -> str:
    """The test database's URL, with the examples' tables in it."""
    asyncio.run(_migrate(run_database_url))
    return run_database_url


@pytest.fixture
def asyncecto_repo(web_database_url: str) -> Repo:
    """The apps' Repo on the test database (not started: the ``sandbox`` fixture starts it)."""
    return posts.new_repo(web_database_url)
