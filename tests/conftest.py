"""Test harness: a real PostgreSQL for every integration test.

The URL is ``$ASYNCECTO_TEST_URL``, else ``postgres://postgres@127.0.0.1:5432/asyncecto_test``
when a server answers there, else an embedded server (pgserver) in ``.asyncecto/pgdata``;
``ASYNCECTO_EMBEDDED=1`` forces the embedded server.
The database is created if missing. Never a mock.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.embedded import force_embedded, server_answers, start_embedded

from .schemas import DDL, TABLES

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "asyncecto-tests"


def _resolve_url() -> str:
    url = os.environ.get("ASYNCECTO_TEST_URL")
    if url and not force_embedded():
        return url
    if not force_embedded() and server_answers("127.0.0.1", 5432):
        return "postgres://postgres@127.0.0.1:5432/asyncecto_test"
    socket_dir = start_embedded(ROOT / ".asyncecto" / "pgdata")
    return f"postgres://postgres@/asyncecto_test?host={socket_dir}"


async def _prepare(url: str) -> None:
    await Repo(url).storage_up()
    repo = Repo(url, pool_size=1)
    async with repo:
        for statement in DDL:
            await repo.query(statement)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = _resolve_url()
    asyncio.run(_prepare(url))
    yield url


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[Repo]:
    """A started Repo on clean tables; at teardown, no connection may be left checked out or mid-transaction."""
    r = Repo(database_url, pool_size=5, server_settings={"application_name": APP_NAME})
    async with r:
        await r.query(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        yield r
        stats = r.pool_stats()
        assert stats["in_use"] == 0, f"connections left checked out: {stats}"
        leftover = await r.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
            [APP_NAME],
        )
        assert leftover.rows[0][0] == 0, "a session was left idle in transaction"


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection beside the repo, to check what was really committed."""
    from asyncecto.repo import build_config

    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        yield conn
    finally:
        await conn.close()
