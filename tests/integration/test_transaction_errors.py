"""Driver errors inside transactions: aborted transactions, serialization failures, deadlocks, retry."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from asyncecto import Multi, Repo
from asyncecto.errors import (
    ArgumentError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseError,
    DeadlockError,
    SerializationError,
    StatementTimeoutError,
    TransactionAbortedError,
    TransactionConflictError,
)

from .._wait import eventually
from ..schemas import Weather

# the transaction machinery itself (BEGIN/COMMIT on pooled connections, isolation, cancellation):
# the sandbox would replace it with savepoints
pytestmark = [pytest.mark.usefixtures("repo"), pytest.mark.no_sandbox]


async def test_a_statement_after_a_failed_one_names_the_fix(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(RuntimeError, match="leave"):
        async with repo.transaction():
            await repo.insert(Weather(city="lost"))
            with pytest.raises(DatabaseError):
                await repo.query("SELECT 1/0")
            with pytest.raises(TransactionAbortedError) as info:
                await repo.query("SELECT 1")
            assert info.value.sqlstate == "25P02"
            assert "nested `async with repo.transaction():`" in str(info.value)
            assert isinstance(info.value.__cause__, asyncpg.InFailedSQLTransactionError)
            raise RuntimeError("leave")
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0


async def test_a_savepoint_keeps_the_transaction_usable_after_an_error(repo: Repo, admin: asyncpg.Connection) -> None:
    async with repo.transaction():
        await repo.insert(Weather(city="kept"))
        with pytest.raises(DatabaseError):
            async with repo.transaction():
                await repo.query("SELECT 1/0")
        await repo.insert(Weather(city="also kept"))
    assert await admin.fetchval("SELECT count(*) FROM weather") == 2


async def _conflicting(repo: Repo, both_read: asyncio.Barrier, attempts: list[str], name: str) -> int:
    async def body(r: Repo) -> int:
        attempts.append(name)
        total = (await r.query("SELECT count(*) FROM weather")).rows[0][0]
        if len(attempts) <= 2:  # the first attempts of both tasks read before either writes
            await both_read.wait()
        await r.insert(Weather(city=f"{name} saw {total}"))
        return int(total)

    return await repo.transaction(body, isolation="serializable", retry=3)


async def test_serialization_failures_are_retried(repo: Repo, admin: asyncpg.Connection) -> None:
    barrier = asyncio.Barrier(2)
    attempts: list[str] = []
    seen = await asyncio.gather(_conflicting(repo, barrier, attempts, "a"), _conflicting(repo, barrier, attempts, "b"))
    assert sorted(seen) == [0, 1]  # one of them ran again and saw the other's row
    assert len(attempts) == 3
    assert await admin.fetchval("SELECT count(*) FROM weather") == 2


async def test_without_retry_the_conflict_is_raised(repo: Repo) -> None:
    barrier = asyncio.Barrier(2)

    async def body(r: Repo) -> None:
        await r.query("SELECT count(*) FROM weather")
        await barrier.wait()
        await r.insert(Weather(city="x"))

    results = await asyncio.gather(
        repo.transaction(body, isolation="serializable"),
        repo.transaction(body, isolation="serializable"),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], SerializationError)
    assert isinstance(failures[0], TransactionConflictError) and failures[0].sqlstate == "40001"
    assert "retry=" in str(failures[0])


async def test_deadlocks_are_mapped(repo: Repo) -> None:
    a = await repo.insert(Weather(city="a"))
    b = await repo.insert(Weather(city="b"))
    locked = asyncio.Barrier(2)

    async def cross(first: int, second: int) -> None:
        async def body(r: Repo) -> None:
            await r.query("SET LOCAL deadlock_timeout = '50ms'")
            await r.query("SELECT 1 FROM weather WHERE id = $1 FOR UPDATE", [first])
            await locked.wait()
            await r.query("SELECT 1 FROM weather WHERE id = $1 FOR UPDATE", [second])

        await repo.transaction(body)

    results = await asyncio.gather(cross(a.id, b.id), cross(b.id, a.id), return_exceptions=True)  # type: ignore[arg-type]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], DeadlockError)
    assert failures[0].sqlstate == "40P01"


async def test_retry_refuses_misuse(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="needs a function"):
        repo.transaction(retry=2)
    async with repo.transaction():
        with pytest.raises(ArgumentError, match="outermost transaction only"):
            repo.transaction(lambda: asyncio.sleep(0), retry=2)


async def test_retry_reruns_a_multi(repo: Repo, admin: asyncpg.Connection) -> None:
    tries: list[int] = []

    def flaky(r: Repo, changes: dict[str, object]) -> int:
        tries.append(1)
        if len(tries) == 1:
            raise SerializationError("simulated conflict", sqlstate="40001")
        return len(tries)

    changes = await repo.transaction(
        Multi.new() | Multi.insert("w", Weather(city="m")) | Multi.run("f", flaky), retry=2
    )
    assert changes["f"] == 2
    assert await admin.fetchval("SELECT count(*) FROM weather") == 1


async def test_a_statement_timeout_inside_a_transaction_rolls_it_all_back(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    with pytest.raises(StatementTimeoutError):
        async with repo.transaction():
            await repo.insert(Weather(city="lost"))
            await repo.query("SELECT pg_sleep(2)", timeout=0.1)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    assert repo.pool_stats()["in_use"] == 0
    assert (await repo.query("SELECT 1")).rows[0][0] == 1


async def test_a_link_lost_at_commit_is_reported_as_unknown_outcome(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(CommitOutcomeUnknownError) as info:
        async with repo.transaction():
            await repo.insert(Weather(city="maybe"))
            pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
            await admin.execute("SELECT pg_terminate_backend($1)", pid)

            async def gone() -> bool:
                return not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

            await eventually(gone, "the backend gone before COMMIT is sent")
    assert isinstance(info.value, ConnectionLostError)
    assert "may or may not have committed" in str(info.value)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0  # here it did not: read back to know
    assert repo.pool_stats()["in_use"] == 0
    assert (await repo.query("SELECT 1")).rows[0][0] == 1


async def test_an_error_caught_inside_a_transaction_fails_its_commit(repo: Repo, admin: asyncpg.Connection) -> None:
    # PostgreSQL answers COMMIT in a failed transaction with ROLLBACK: that is not a success
    with pytest.raises(TransactionAbortedError, match="rolled back at COMMIT, not committed"):
        async with repo.transaction():
            await repo.insert(Weather(city="lost"))
            with pytest.raises(DatabaseError):
                await repo.query("SELECT 1 / 0")
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    with pytest.raises(TransactionAbortedError, match="rolled back at the transaction's savepoint"):
        async with repo.transaction():
            await repo.insert(Weather(city="kept"))
            async with repo.transaction():
                await repo.insert(Weather(city="inner"))
                with pytest.raises(DatabaseError):
                    await repo.query("SELECT 1 / 0")
            raise AssertionError("not reached: the inner block raises")  # pragma: no cover
    assert await admin.fetchval("SELECT count(*) FROM weather") == 0
    assert repo.pool_stats()["in_use"] == 0
