"""R04: the link is lost during COMMIT (tests/_proxy.py cuts it), whether the server ran the COMMIT or not.

Either way the client cannot know the outcome: ``CommitOutcomeUnknownError`` (never "rolled back"), nothing is
retried (not even with ``retry=``), the row is there exactly when the server got the COMMIT, and the pool recovers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import anyio
import asyncpg
import pytest

from asyncecto import Multi, Repo
from asyncecto.errors import CommitOutcomeUnknownError, ConnectionLostError
from asyncecto.repo import build_config

from .._proxy import PgProxy, sql_matches
from ..conftest import APP_NAME
from ..schemas import Weather

pytestmark = pytest.mark.no_sandbox  # real commits and connections

APP = f"{APP_NAME}-r04"


def _upstream(database_url: str) -> tuple[str, int] | str:
    """Where the server listens: host and port, or the unix socket in the URL's socket directory."""
    config = build_config(database_url)
    if config.host.startswith("/"):
        return f"{config.host}/.s.PGSQL.{config.port}"
    return config.host, config.port


@contextlib.asynccontextmanager
async def _proxied(database_url: str) -> AsyncIterator[tuple[Repo, PgProxy]]:
    config = build_config(database_url)
    async with PgProxy(_upstream(database_url)) as proxy:
        auth = quote(config.user or "", safe="") + (f":{quote(config.password, safe='')}" if config.password else "")
        url = f"postgres://{auth}@127.0.0.1:{proxy.port}/{quote(config.database, safe='')}"
        async with Repo(url, pool_size=2, server_settings={"application_name": APP}) as repo:
            yield repo, proxy


async def _in_block(repo: Repo, city: str) -> int:
    async with repo.transaction():
        await repo.insert(Weather(city=city))
    return 1


async def _fn_with_retry(repo: Repo, city: str) -> int:
    runs = 0

    async def body(r: Repo) -> None:
        nonlocal runs
        runs += 1
        await r.insert(Weather(city=city))

    try:
        await repo.transaction(body, retry=3)
    finally:
        assert runs == 1, f"the function ran {runs} times: a transaction whose COMMIT was lost was retried"
    return runs


async def _multi_with_retry(repo: Repo, city: str) -> int:
    runs: list[int] = []

    def count(r: Repo, changes: dict[str, Any]) -> int:
        runs.append(1)
        return len(runs)

    try:
        await repo.transaction(Multi.new() | Multi.insert("w", Weather(city=city)) | Multi.run("n", count), retry=3)
    finally:
        assert len(runs) == 1, f"the Multi ran {len(runs)} times: a transaction whose COMMIT was lost was retried"
    return len(runs)


FORMS: dict[str, Callable[[Repo, str], Awaitable[int]]] = {
    "async_with": _in_block,
    "fn_retry": _fn_with_retry,
    "multi_retry": _multi_with_retry,
}


async def _idle_in_transaction(admin: asyncpg.Connection) -> int:
    """How many of this test's sessions are idle in a transaction, allowing up to 1 s to settle."""
    count = 0
    with anyio.move_on_after(1):
        while True:
            count = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                "AND datname = current_database() AND state LIKE 'idle in transaction%'",
                APP,
            )
            if count == 0:
                break
            await anyio.sleep(0.02)
    return int(count)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("forward", [True, False], ids=["commit_reached_server", "commit_never_sent"])
async def test_a_link_lost_during_commit_has_an_unknown_outcome(
    database_url: str, admin: asyncpg.Connection, forward: bool, form: str
) -> None:
    city = f"r04-{form}-{forward}-{uuid.uuid4().hex[:8]}"
    async with _proxied(database_url) as (repo, proxy):
        proxy.drop_after(sql_matches("COMMIT"), forward=forward)
        with anyio.fail_after(5), pytest.raises(CommitOutcomeUnknownError) as info:
            await FORMS[form](repo, city)

        error = info.value
        assert isinstance(error, ConnectionLostError)
        assert isinstance(error.__cause__, ConnectionLostError)  # the driver's own error is further down
        assert "may or may not have committed" in str(error)
        assert "nothing was retried" in str(error)
        assert "rolled back" not in str(error)
        assert proxy.drops == 1 and proxy.mode == "pass"  # one COMMIT was cut, and no second one was sent

        # the server ran the COMMIT only when it received it
        rows = await admin.fetchval("SELECT count(*) FROM weather WHERE city = $1", city)
        assert rows == (1 if forward else 0)

        # the broken connection was discarded; the pool opens a new one through the proxy
        assert repo.pool_stats()["in_use"] == 0
        assert (await repo.query("SELECT 1")).rows[0][0] == 1
        async with repo.transaction():
            await repo.insert(Weather(city=f"{city}-after"))
        assert await admin.fetchval("SELECT count(*) FROM weather WHERE city = $1", f"{city}-after") == 1
        assert await _idle_in_transaction(admin) == 0
        assert proxy.links_opened >= 2
    assert await _idle_in_transaction(admin) == 0
