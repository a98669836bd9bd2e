"""The read router's pure parts: which errors take a replica out, the replica event handlers, and the
``replica=`` option's refusal (no server needed)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from asyncecto import Repo
from asyncecto.errors import (
    ArgumentError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseError,
    DatabaseUnavailableError,
    PoolTimeoutError,
    UniqueViolationError,
)
from asyncecto.repo import ReplicaEvent
from asyncecto.repo._routing import ReplicaEvents, connection_failure

from ..schemas import Weather


def test_server_failures_take_a_replica_out_and_statement_failures_do_not() -> None:
    assert connection_failure(ConnectionLostError("connection lost"))
    assert connection_failure(DatabaseUnavailableError("refused"))
    assert connection_failure(DatabaseError("terminating connection due to administrator command", sqlstate="57P01"))
    assert not connection_failure(CommitOutcomeUnknownError("connection lost during COMMIT"))
    assert not connection_failure(UniqueViolationError("duplicate key", sqlstate="23505"))
    assert not connection_failure(ValueError("not a database error"))
    waited = PoolTimeoutError(1.0, 10)
    assert not connection_failure(waited)
    waited.__cause__ = DatabaseUnavailableError("too many clients", sqlstate="53300")
    assert connection_failure(waited)


def _event(kind: str) -> ReplicaEvent:
    return ReplicaEvent(("app", "replica", kind), "r1:5432", "postgres://u:***@r1/db", down_for=1.5)


async def test_handlers_sync_and_async_are_called_and_a_failing_one_is_detached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = ReplicaEvents()
    seen: list[str] = []
    done = asyncio.Event()

    async def later(event: ReplicaEvent) -> None:
        seen.append("async " + event.name[2])
        done.set()

    async def broken_later(event: ReplicaEvent) -> None:
        raise RuntimeError("async handler failed")

    def broken(event: ReplicaEvent) -> None:
        raise RuntimeError("handler failed")

    events.attach(lambda e: seen.append("sync " + e.name[2]), name="sync")
    events.attach(later, name="later")
    events.attach(broken_later, name="broken_later")
    events.attach(broken, name="broken")
    with caplog.at_level(logging.INFO, logger="asyncecto"):
        events.emit(_event("up"))
        await asyncio.wait_for(done.wait(), 5)
        for _ in range(3):
            await asyncio.sleep(0)
    assert seen == ["sync up", "async up"]
    assert not events.detach("broken")  # detached when it raised
    assert events.detach("sync") and not events.detach("sync")
    text = caplog.text
    assert "back in rotation after 1.5s" in text and "failed and was detached" in text
    assert "replica event handler failed" in text  # the async one's error, logged when its task ended


async def test_replica_option_must_be_a_bool_or_none() -> None:
    repo = Repo("postgres://u@localhost/never_started")
    with pytest.raises(ArgumentError, match="replica= must be True"):
        await repo.all(Weather, replica="yes")
    with pytest.raises(ArgumentError, match=r"replica= must be True \(run this SQL on a replica\)"):
        await repo.query("SELECT 1", replica=1)
