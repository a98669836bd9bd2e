"""Test harness: a real PostgreSQL for every integration test.

The server is ``$ASYNCECTO_TEST_URL``'s, else ``127.0.0.1:5432`` when a server answers there, else an
embedded server (pgserver) in ``.asyncecto/pgdata``; ``ASYNCECTO_EMBEDDED=1`` forces the embedded one.
Each run, and each pytest-xdist worker, has a database of its own there, named after the URL's
(``asyncecto_test_<run>_<worker>``), dropped at its end: see the root ``conftest.py`` and
``tests/_isolation.py``. Never a mock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.testing import Sandbox

from ._isolation import token
from ._pg import empty_tables_sql
from .schemas import DDL, TABLES

#: this process's sessions: other runs and workers on the same server name theirs differently
APP_NAME = f"asyncecto-tests-{token()}"

pytest_plugins = ["pytester"]


async def _prepare(url: str) -> None:
    await Repo(url).storage_up()
    repo = Repo(url, pool_size=1)
    async with repo:
        for statement in DDL:
            await repo.query(statement)


@pytest.fixture(scope="session")
def database_url(run_database_url: str) -> Iterator[str]:
    """This process's database (see ``run_database_url``), with the suite's tables."""
    asyncio.run(_prepare(run_database_url))
    yield run_database_url


#: ids start at 1 in every test (tests compare ids). The sandbox rolls rows back but not
#: sequences; ``setval`` takes no lock that outlives it (``ALTER SEQUENCE … RESTART`` would hold
#: one to the sandbox's end and block other sessions' inserts), and the tables are empty here
TRUNCATE = empty_tables_sql(TABLES)  # as TRUNCATE … RESTART IDENTITY CASCADE, on the tables with rows

RESTART_SEQUENCES = """
SELECT count(setval(c.oid, 1, false)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname IN ('public', 'archive')
"""


@pytest.fixture
def asyncecto_repo(database_url: str) -> Repo:
    """The Repo asyncecto's pytest plugin wraps in a sandbox (see asyncecto.testing.plugin)."""
    return Repo(database_url, pool_size=5, server_settings={"application_name": APP_NAME})


@pytest.fixture
async def repo(asyncecto_repo: Repo, sandbox: Sandbox | None) -> AsyncIterator[Repo]:
    """A started Repo whose test runs in the sandbox: a transaction rolled back at the end.

    Under ``@pytest.mark.no_sandbox`` it commits for real, on tables truncated before (and after,
    by ``_clean_after_real_commits``). At teardown, no connection may be left checked out or
    mid-transaction.
    """
    r = asyncecto_repo
    if sandbox is None:
        await r.query(TRUNCATE)
    else:
        await r.query(RESTART_SEQUENCES)  # inside the sandbox: undone with the rest at its end
    yield r
    stats = r.pool_stats()
    held = 0 if sandbox is None else 1  # the sandbox's own connection, until its fixture ends
    assert stats["in_use"] == held, f"connections left checked out: {stats}"
    leftover = await r.query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() "
        "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
        [APP_NAME],
    )
    assert leftover.rows[0][0] == 0, "a session was left idle in transaction"


class SandboxPeer:
    """``admin`` inside a sandboxed test: the asyncpg calls the tests use, run on the sandbox's
    connection (another session could not see the test's uncommitted rows), one at a time and
    behind the sandbox's statement savepoint, as the repo's own statements are."""

    def __init__(self, sb: Sandbox) -> None:
        self._sb = sb

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        sb = self._sb
        conn = await sb.acquire()
        try:
            await sb.before_statement(conn)
            try:
                return await getattr(conn.raw, method)(sql, *args)  # type: ignore[attr-defined]
            except BaseException:
                await sb.undo_statement(conn)
                raise
        finally:
            sb.release()

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self._run("execute", sql, args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._run("fetch", sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, args)


async def _connect(database_url: str) -> asyncpg.Connection:
    from asyncecto.repo import build_config

    return await asyncpg.connect(**build_config(database_url).dsn_kwargs())


@pytest.fixture(autouse=True)
async def _clean_after_real_commits(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test that commits for real (``no_sandbox``) and touches the database leaves the tables
    empty: the sandboxed tests after it count on that (their sandboxes roll back, never truncate)."""
    yield
    if request.node.get_closest_marker("no_sandbox") is None or "database_url" not in request.fixturenames:
        return
    conn = await _connect(request.getfixturevalue("database_url"))
    try:
        await conn.execute(TRUNCATE)
    finally:
        await conn.close()


@pytest.fixture
async def admin(database_url: str, sandbox: Sandbox | None) -> AsyncIterator[Any]:
    """Raw SQL beside the repo, to check what was really written: a plain asyncpg connection,
    or, in a sandboxed test, the same calls on the sandbox's connection."""
    if sandbox is not None:
        yield SandboxPeer(sandbox)
        return
    conn = await _connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
