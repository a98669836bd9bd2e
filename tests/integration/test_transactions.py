"""Transactions (savepoints when nested), rollback, checkout, and streams inside transactions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import asyncpg
import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.errors import DatabaseError, RepoStateError
from asyncecto.query import from_, order_by
from asyncecto.repo._core import executor_of

from .._wait import eventually, statement_running
from ..conftest import APP_NAME
from ..schemas import Weather

# the transaction machinery itself (BEGIN/COMMIT on pooled connections, isolation, cancellation):
# the sandbox would replace it with savepoints
pytestmark = [pytest.mark.usefixtures("repo"), pytest.mark.no_sandbox]


async def count(admin: asyncpg.Connection) -> int:
    n: int = await admin.fetchval("SELECT count(*) FROM weather")
    return n


async def test_commit_is_visible_and_an_exception_rolls_back(repo: Repo, admin: asyncpg.Connection) -> None:
    async with repo.transaction():
        await repo.insert(Weather(city="kept"))
        assert await count(admin) == 0  # not visible before commit
    assert await count(admin) == 1
    with pytest.raises(ValueError, match="boom"):
        async with repo.transaction():
            await repo.insert(Weather(city="lost"))
            raise ValueError("boom")
    assert [c for (c,) in await admin.fetch("SELECT city FROM weather")] == ["kept"]


async def test_transaction_of_a_function_returns_its_result(repo: Repo, admin: asyncpg.Connection) -> None:
    async def work(r: Repo) -> int:
        w = await r.insert(Weather(city="fn"))
        assert w.id is not None
        return w.id

    new_id = await repo.transaction(work)
    assert await admin.fetchval("SELECT city FROM weather WHERE id = $1", new_id) == "fn"

    async def no_args() -> str:
        return "done"

    assert await repo.transaction(no_args) == "done"


async def test_rollback_returns_its_value_and_writes_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    async def work(r: Repo) -> str:
        await r.insert(Weather(city="never"))
        r.rollback("changed my mind")

    assert await repo.transaction(work) == "changed my mind"
    assert await count(admin) == 0
    async with repo.transaction() as tx:
        await repo.insert(Weather(city="never either"))
        repo.rollback(42)
    assert (tx.rolled_back, tx.value) == (True, 42)
    assert await count(admin) == 0


async def test_rollback_outside_a_transaction_raises(repo: Repo) -> None:
    with pytest.raises(RepoStateError, match="cannot call rollback: repo is outside of a transaction"):
        repo.rollback()


async def test_nested_transaction_is_a_savepoint(repo: Repo, admin: asyncpg.Connection) -> None:
    async with repo.transaction():
        await repo.insert(Weather(city="outer"))
        with pytest.raises(DatabaseError):
            async with repo.transaction():
                await repo.insert(Weather(city="inner"))
                await repo.query("SELECT 1/0")
        # the failure did not poison the outer transaction
        await repo.insert(Weather(city="after"))
        async with repo.transaction():
            await repo.insert(Weather(city="inner rolled back"))
            repo.rollback()
    cities = sorted(c for (c,) in await admin.fetch("SELECT city FROM weather"))
    assert cities == ["after", "outer"]


async def test_in_transaction(repo: Repo) -> None:
    assert repo.in_transaction() is False
    async with repo.transaction():
        assert repo.in_transaction() is True
        async with repo.transaction():
            assert repo.in_transaction() is True
    assert repo.in_transaction() is False


async def test_every_call_in_the_block_uses_one_connection(repo: Repo) -> None:
    async with repo.transaction():
        pids = {(await repo.query("SELECT pg_backend_pid()")).rows[0][0] for _ in range(5)}
        assert len(pids) == 1
        assert (await repo.query("SELECT txid_current_if_assigned() IS NULL OR true")).rows == [(True,)]


async def test_checkout_pins_one_connection_without_a_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    async with repo.checkout():
        pids = {(await repo.query("SELECT pg_backend_pid()")).rows[0][0] for _ in range(3)}
        assert len(pids) == 1
        assert repo.in_transaction() is False
        await repo.insert(Weather(city="autocommitted"))
        assert await count(admin) == 1
        async with repo.transaction():
            assert (await repo.query("SELECT pg_backend_pid()")).rows[0][0] in pids


async def test_another_task_cannot_use_the_transaction_connection(repo: Repo) -> None:
    async with repo.transaction():
        child = asyncio.create_task(repo.all(Weather))  # the child copies the context
        with pytest.raises(RepoStateError, match="from another task concurrently"):
            await child
        assert await repo.all(Weather) == []  # the owner is unaffected


async def test_isolation_and_read_only(repo: Repo) -> None:
    async with repo.transaction(isolation="serializable"):
        assert (await repo.query("SHOW transaction_isolation")).rows == [("serializable",)]
    with pytest.raises(DatabaseError) as info:
        async with repo.transaction(read_only=True):
            await repo.insert(Weather(city="x"))
    assert info.value.sqlstate == "25006"
    from asyncecto.errors import ArgumentError

    with pytest.raises(ArgumentError, match="unknown isolation level"):
        repo.transaction(isolation="chaotic")


async def test_cancelled_transaction_leaves_nothing_behind(
    repo: Repo, admin: asyncpg.Connection, database_url: str
) -> None:
    started = asyncio.Event()

    async def work() -> None:
        async with repo.transaction():
            await repo.insert(Weather(city="cancelled"))
            started.set()
            await repo.query("SELECT pg_sleep(5)")

    task = asyncio.create_task(work())
    await started.wait()
    await statement_running(admin, "SELECT pg_sleep(5)")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: repo.pool_stats()["in_use"] == 0, "the connection back in the pool")
    assert repo.pool_stats()["rollbacks"] == 0  # the transaction rolled back itself; the pool had nothing to undo
    assert await count(admin) == 0
    idle = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        "AND application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()",
        APP_NAME,
    )
    assert idle == 0


async def test_begin_commit_and_savepoints_are_reported_to_telemetry(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    async with repo.transaction(), repo.transaction():
        await repo.all(Weather)
    await repo.telemetry.flush()
    sqls = [e.sql.split(" ")[0] for e in events]
    assert sqls == ["BEGIN", "SAVEPOINT", "SELECT", "RELEASE", "COMMIT"]


async def test_stream_in_batches_inside_a_transaction(repo: Repo) -> None:
    for i in range(5):
        await repo.insert(Weather(city=f"c{i}", temp_lo=i))
    seen: list[str | None] = []
    async with repo.transaction():
        async for w in repo.stream(from_(Weather) | order_by("temp_lo"), max_rows=2):
            assert isinstance(w, Weather)
            seen.append(w.city)
    assert seen == ["c0", "c1", "c2", "c3", "c4"]


async def test_stream_outside_a_transaction_raises(repo: Repo) -> None:
    with pytest.raises(RepoStateError, match="cannot stream: repo is outside of a transaction"):
        async for _ in repo.stream(Weather):
            pass


async def test_stream_cannot_outlive_its_transaction(repo: Repo) -> None:
    for i in range(3):
        await repo.insert(Weather(city=f"c{i}"))
    async with repo.transaction():
        stream = repo.stream(Weather, max_rows=1)
        first = await stream.__anext__()
        assert isinstance(first, Weather)
    with pytest.raises(RepoStateError):
        await stream.__anext__()
    assert isinstance(stream, AsyncGenerator)  # Repo.stream is annotated AsyncIterator; it is a generator
    await stream.aclose()


# -- review regressions -------------------------------------------------------------------------


async def test_two_repos_in_one_task_keep_their_own_transactions(
    repo: Repo, database_url: str, admin: asyncpg.Connection
) -> None:
    other = Repo(database_url, pool_size=2)
    async with other, repo.transaction():
        async with other.transaction():
            await repo.insert(Weather(city="A inside B"))
            assert repo.in_transaction() and other.in_transaction()
            async with repo.transaction():  # a savepoint of repo's transaction, not a new one
                await repo.insert(Weather(city="A nested"))
        repo.rollback()
    assert await count(admin) == 0


async def test_a_failed_begin_inside_a_checkout_changes_nothing(
    repo: Repo, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        type(executor_of(repo).adapter), "begin_sql", lambda self, isolation, read_only: "BEGIN NONSENSE"
    )
    async with repo.checkout():
        with pytest.raises(DatabaseError):
            async with repo.transaction():
                pass  # pragma: no cover
        assert repo.in_transaction() is False
        await repo.insert(Weather(city="after the failed begin"))
    assert await count(admin) == 1


async def test_a_transaction_exited_in_another_task_still_cleans_up(repo: Repo, admin: asyncpg.Connection) -> None:
    tx = repo.transaction()
    await tx.__aenter__()
    await repo.insert(Weather(city="committed elsewhere"))
    await asyncio.create_task(tx.__aexit__(None, None, None))  # another context: reset() cannot be used
    assert repo.pool_stats()["in_use"] == 0
    assert await count(admin) == 1
    idle = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        "AND application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()",
        APP_NAME,
    )
    assert idle == 0


async def test_cancelling_at_every_point_leaves_all_or_nothing_and_no_open_transaction(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    """Cancel after 0, 1, 2 … loop iterations: at checkout, BEGIN, a statement, a SAVEPOINT,
    its RELEASE, or COMMIT. Each run writes three rows or none, and leaves no session idle
    in a transaction and no connection checked out.
    """
    outcomes: set[int] = set()
    n = -2
    while 3 not in outcomes:  # until a run finishes before its cancel: a slow machine needs more yields
        assert n < 100_000, outcomes
        n = n + 2 if n < 80 else n + n // 4
        city = f"run {n}"

        async def work(city: str) -> None:
            async with repo.transaction():
                await repo.insert(Weather(city=city, temp_lo=1))
                async with repo.transaction():
                    await repo.insert(Weather(city=city, temp_lo=2))
                await repo.insert(Weather(city=city, temp_lo=3))

        task = asyncio.create_task(work(city))
        for _ in range(n):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _ in range(100):
            if repo.pool_stats()["in_use"] == 0:
                break
            await asyncio.sleep(0.01)
        assert repo.pool_stats()["in_use"] == 0, n
        written = await admin.fetchval("SELECT count(*) FROM weather WHERE city = $1", city)
        assert written in (0, 3), (n, written)
        outcomes.add(written)
        idle = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
            "AND application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()",
            APP_NAME,
        )
        assert idle == 0, n
    assert outcomes == {0, 3}  # the loop reached both early cancellations and a finished run
    # at every point (checkout, BEGIN, a statement, SAVEPOINT, RELEASE, COMMIT) the transaction
    # cleaned up itself: no release ever found a transaction left open for the pool to roll back
    assert repo.pool_stats()["rollbacks"] == 0
