"""Repo lifecycle: named states, supervisor restarts, graceful shutdown."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid

import anyio
import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.errors import ConnectionLostError, DatabaseUnavailableError, InvalidURLError, RepoStateError
from asyncecto.repo._supervisor import Supervisor
from tests._pg import pg_pool

from .._wait import eventually, statement_running
from ..schemas import Weather

pytestmark = pytest.mark.no_sandbox  # real commits and connections


async def test_states_new_running_closed_and_restart(database_url: str) -> None:
    repo = Repo(database_url)
    assert repo.state == "new"
    with pytest.raises(RepoStateError) as info:
        await repo.all(Weather)
    assert info.value.state == "new"
    assert "repo is new" in str(info.value) and "async with repo" in str(info.value)
    async with repo:
        assert repo.state == "running"
        assert isinstance(await repo.all(Weather), list)
    assert repo.state == "closed"
    with pytest.raises(RepoStateError, match="cannot run query: repo is closed"):
        await repo.all(Weather)
    await repo.start()  # a closed repo may be started again
    try:
        assert isinstance(await repo.all(Weather), list)
    finally:
        await repo.stop()


async def test_start_twice_is_refused(database_url: str) -> None:
    async with Repo(database_url) as repo:
        with pytest.raises(RepoStateError, match="cannot start repo: repo is running"):
            await repo.start()


async def test_stop_when_not_running_does_nothing(database_url: str) -> None:
    repo = Repo(database_url)
    await repo.stop()
    assert repo.state == "new"


async def test_unreachable_database_fails_start_clearly() -> None:
    repo = Repo("postgres://postgres@127.0.0.1:1/nowhere", connect_timeout=1.0)
    with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
        await repo.start()
    assert repo.state == "new"


async def test_missing_database_fails_start_clearly(database_url: str) -> None:
    from asyncecto.repo import build_config

    cfg = build_config(database_url)
    repo = Repo(database_url.replace(f"/{cfg.database}", "/asyncecto_does_not_exist"))
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        await repo.start()


async def test_a_repo_whose_start_failed_starts_cleanly_later(database_url: str) -> None:
    from asyncecto.repo import build_config

    cfg = build_config(database_url)
    later = f"asyncecto_created_later_{uuid.uuid4().hex[:10]}"  # its own: other runs on the server drop theirs
    repo = Repo(database_url.replace(f"/{cfg.database}", f"/{later}"), pool_size=1)
    await repo.storage_down()
    with pytest.raises(DatabaseUnavailableError):
        await repo.start()
    assert repo.state == "new"
    try:
        assert await repo.storage_up() == "created"
        async with repo:
            assert (await repo.query("SELECT 1")).rows == [(1,)]
    finally:
        await repo.storage_down()


def test_invalid_url_names_the_bad_part() -> None:
    with pytest.raises(InvalidURLError, match="scheme"):
        Repo("mysql://root@localhost/db")
    with pytest.raises(InvalidURLError, match="port"):
        Repo("postgres://localhost:notaport/db")
    with pytest.raises(InvalidURLError, match="pool_size"):
        Repo("postgres://localhost/db?pool_size=many")
    with pytest.raises(InvalidURLError) as info:
        Repo("postgres://user:s3cret@localhost/db?bogus=1")
    assert "s3cret" not in str(info.value) and "bogus" in str(info.value)


async def test_start_and_stop_from_different_tasks(database_url: str) -> None:
    repo = Repo(database_url)
    await asyncio.create_task(repo.start())
    assert isinstance(await repo.all(Weather), list)
    await asyncio.create_task(repo.stop())
    assert repo.state == "closed"


async def test_graceful_shutdown_waits_for_in_flight_queries(database_url: str, admin: asyncpg.Connection) -> None:
    repo = Repo(database_url)
    await repo.start()
    await admin.execute("SELECT pg_advisory_lock(1811)")  # the query in flight waits for it: no race
    slow = asyncio.create_task(repo.query("SELECT pg_advisory_xact_lock(1811), 1"))
    try:
        await statement_running(admin, "SELECT pg_advisory_xact_lock(1811)")
        stopping = asyncio.create_task(repo.stop(timeout=30))
        await eventually(lambda: repo.state == "closing", "the repo closing")
        with pytest.raises(RepoStateError, match="repo is closing"):
            await repo.all(Weather)
        assert not slow.done() and not stopping.done()
    finally:
        await admin.execute("SELECT pg_advisory_unlock(1811)")
    result = await slow
    assert result.rows[0][1] == 1
    await stopping
    assert repo.state == "closed"


async def test_shutdown_timeout_terminates_stuck_work(database_url: str, admin: asyncpg.Connection) -> None:
    repo = Repo(database_url)
    await repo.start()
    stuck = asyncio.create_task(repo.query("SELECT pg_sleep(30)"))
    await statement_running(admin, "SELECT pg_sleep(30)")
    started = time.monotonic()
    await repo.stop(timeout=0.2)
    assert time.monotonic() - started < 3
    with pytest.raises(ConnectionLostError):
        await stuck


async def test_a_crashed_worker_is_logged_and_restarted(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    repo = Repo(database_url)
    calls = 0
    third = asyncio.Event()

    async def flaky_upkeep(interval: float = 1.0) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("upkeep exploded")
        third.set()
        await anyio.sleep_forever()

    pg_pool(repo).upkeep = flaky_upkeep  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="asyncecto"):
        async with repo:
            with anyio.fail_after(15):
                await third.wait()  # restarted twice, running the third time
            assert repo.supervisor_restarts["pool_upkeep"] == 2
            assert isinstance(await repo.all(Weather), list)  # the repo kept serving
    assert calls == 3
    assert sum("worker pool_upkeep crashed" in r.getMessage() for r in caplog.records) == 2


async def test_supervisor_backs_off_between_restarts() -> None:
    sup = Supervisor("t", min_backoff=0.05, max_backoff=0.2)
    stamps: list[float] = []
    enough = asyncio.Event()

    async def always_fails() -> None:
        stamps.append(time.monotonic())
        if len(stamps) >= 5:  # four gaps: 0.05, 0.1, 0.2, then capped at 0.2
            enough.set()
        raise ValueError("boom")

    await sup.start([("w", always_fails)])
    with anyio.fail_after(15):
        await enough.wait()
    await sup.stop()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) >= 3
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09  # 0.05, then 0.1 …
    assert max(gaps) < 0.35  # … capped at 0.2


async def test_stop_returns_as_soon_as_in_flight_work_is_done(database_url: str, admin: asyncpg.Connection) -> None:
    repo = Repo(database_url)
    await repo.start()
    await admin.execute("SELECT pg_advisory_lock(1813)")  # the query in flight waits for it: no race
    slow = asyncio.create_task(repo.query("SELECT pg_advisory_xact_lock(1813)"))
    try:
        await statement_running(admin, "SELECT pg_advisory_xact_lock(1813)")
        stopping = asyncio.create_task(repo.stop(timeout=30))
        await eventually(lambda: repo.state == "closing", "the repo closing")
        assert not stopping.done()
    finally:
        await admin.execute("SELECT pg_advisory_unlock(1813)")
    started = time.monotonic()
    await stopping
    assert time.monotonic() - started < 10  # not the 30 s timeout
    await slow


async def test_cancelling_stop_still_closes_every_connection(database_url: str, admin: asyncpg.Connection) -> None:
    repo = Repo(database_url, server_settings={"application_name": "ae-cancel-stop"})
    await repo.start()
    await admin.execute("SELECT pg_advisory_lock(1812)")  # the query in flight waits for it: no race
    slow = asyncio.create_task(repo.query("SELECT pg_advisory_xact_lock(1812)"))
    try:
        await statement_running(admin, "SELECT pg_advisory_xact_lock(1812)")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(repo.stop(timeout=30), 0.1)
        assert not slow.done()
    finally:
        await admin.execute("SELECT pg_advisory_unlock(1812)")
    await slow  # the in-flight query was allowed to finish
    await repo.stop()  # waits for the shutdown already under way
    assert repo.state == "closed"

    async def none_left() -> bool:
        n = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ae-cancel-stop' "
            "AND datname = current_database()"
        )
        return bool(n == 0)

    await eventually(none_left, "every session of the stopped repo gone")
