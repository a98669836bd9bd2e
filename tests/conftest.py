"""Test harness: a real PostgreSQL for every integration test.

The server is ``$ASYNCECTO_TEST_URL``'s, else ``127.0.0.1:5432`` when a server answers there, else an
embedded server (pgserver) in ``.asyncecto/pgdata``; ``ASYNCECTO_EMBEDDED=1`` forces the embedded one.
Each run, and each pytest-xdist worker, has a database of its own there, named after the URL's
(``asyncecto_test_<run>_<worker>``), dropped at its end: see the root ``conftest.py`` and
``tests/_isolation.py``. Never a mock.

``ASYNCECTO_TEST_POOLER=pgbouncer`` runs the integration tests through a PgBouncer in transaction mode
(tests/_pgbouncer.py; one per process): ``database_url`` then carries ``pooler=transaction`` and a
``direct_url``, and the tests that need a session of their own skip, saying why (``POOLER_SKIPS``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.testing import Sandbox

from . import _pgbouncer
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


#: ``ASYNCECTO_TEST_POOLER=pgbouncer``: ``database_url`` goes through a PgBouncer in transaction mode
#: (one per process, in front of the test server) with ``pooler=transaction`` and ``direct_url`` set;
#: the tests that need a session of their own are skipped, saying why (POOLER_SKIPS)
POOLER = os.environ.get("ASYNCECTO_TEST_POOLER") or None


@pytest.fixture(scope="session")
def database_url(run_database_url: str) -> Iterator[str]:
    """This process's database (see ``run_database_url``), with the suite's tables."""
    asyncio.run(_prepare(run_database_url))
    if POOLER is None:
        yield run_database_url
        return
    if POOLER != "pgbouncer":
        raise pytest.UsageError(f"ASYNCECTO_TEST_POOLER={POOLER!r}: the only pooler the tests start is 'pgbouncer'")
    reason = _pgbouncer.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from asyncecto.repo import build_config

    config = build_config(run_database_url)
    # search_path: the migrator tests give it as a startup parameter; it reaches the server through
    # direct_url (where their migrations run), and PgBouncer drops it on the pooled connections
    bouncer = _pgbouncer.Bouncer.launch(config.host, config.port, pool_size=10, ignore="extra_float_digits,search_path")
    try:
        pooled = bouncer.url(config.database, config.user or "postgres")
        yield f"{pooled}?pooler=transaction&direct_url={quote(run_database_url, safe='')}"
    finally:
        bouncer.stop()


#: under ASYNCECTO_TEST_POOLER: tests that need what a transaction pooler does not keep, by node id prefix
POOLER_SKIPS: dict[str, str] = {
    "tests/integration/test_migrator.py::test_the_lock_needs_two_connections": (
        "behind the pooler the migrations run on a repo of their own on direct_url, whose pool has two"
    ),
    "tests/integration/test_migrator.py::test_the_lock_is_released": "it checks the advisory lock on the pooled repo",
    "tests/integration/test_migrator.py::test_a_live_repos_cached_statements_survive_the_migration": (
        "its repo's search_path is a startup parameter, which the pooled connections cannot carry"
    ),
    "tests/integration/test_migrator.py::test_a_waiting_migrator_is_not_cut_off_by_a_server_statement_timeout": (
        "it sets statement_timeout as a startup parameter (server_settings), which PgBouncer refuses"
    ),
    "tests/integration/test_listen.py::test_a_notification_from_another_session_is_received": (
        "the pid a notification carries is the server's, the notifier's through the bouncer another"
    ),
    "tests/integration/test_listen.py::test_notifications_resume_after_a_silent_network_drop": (
        "it rewrites the URL to a proxy in front of the server, with a statement_timeout startup parameter"
    ),
    "tests/integration/test_listen.py::test_a_new_subscriber_fails_fast_when_the_listener_cannot_connect": (
        "it points the repo at a closed port with a statement_timeout startup parameter"
    ),
    "tests/integration/test_listen.py::test_a_burst_of_notifications_does_not_fail_the_health_check": (
        "it sets statement_timeout as a startup parameter (server_settings), which PgBouncer refuses"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if POOLER is None:
        return
    for item in items:
        for prefix, reason in POOLER_SKIPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.skip(reason=f"needs a session of its own (pooler=transaction): {reason}"))


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
