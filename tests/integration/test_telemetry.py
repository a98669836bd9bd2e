"""One telemetry event per query, delivered off the hot path, and a debug log line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.errors import DatabaseError

from ..schemas import Weather


async def test_every_query_emits_one_event(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    w = await repo.insert(Weather(city="Kraków"))
    await repo.get(Weather, w.id)
    await repo.all(Weather)
    await repo.telemetry.flush()
    assert len(events) == 3
    insert, get, all_ = events
    assert insert.sql.startswith('INSERT INTO "weather"') and insert.params == ("Kraków", 0.0)
    assert get.params == (w.id,) and get.num_rows == 1
    assert all_.num_rows == 1
    for e in events:
        assert e.result == "ok" and e.error is None
        assert e.source == "weather" and e.repo == repo.name
        assert e.queue_time is not None and e.queue_time >= 0
        assert e.query_time > 0
        assert e.total_time >= e.query_time + e.queue_time
    assert get.decode_time is not None and insert.decode_time is None


async def test_events_are_delivered_by_the_worker_not_the_query(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    await repo.all(Weather)
    assert events == []  # the query returned before any handler ran
    for _ in range(50):
        if events:
            break
        await asyncio.sleep(0.01)
    assert len(events) == 1


async def test_failed_query_emits_an_error_event(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with pytest.raises(DatabaseError):
        await repo.query("SELECT * FROM no_such_table")
    await repo.telemetry.flush()
    assert [e.result for e in events] == ["error"]
    assert isinstance(events[0].error, DatabaseError) and events[0].error.sqlstate == "42P01"


async def test_async_handlers_are_awaited_and_failing_ones_detached(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def async_handler(e: QueryEvent) -> None:
        await asyncio.sleep(0)
        seen.append(e.sql)

    def broken(e: QueryEvent) -> None:
        raise RuntimeError("handler bug")

    repo.telemetry.attach(async_handler)
    name = repo.telemetry.attach(broken, name="broken")
    with caplog.at_level(logging.ERROR, logger="asyncecto"):
        await repo.all(Weather)
        await repo.all(Weather)
        await repo.telemetry.flush()
    assert len(seen) == 2
    assert sum("telemetry handler 'broken' failed" in r.getMessage() for r in caplog.records) == 1
    assert repo.telemetry.detach(name) is False  # already detached


async def test_debug_log_line_in_ecto_format(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        w = await repo.insert(Weather(city="Log"))
        await repo.get(Weather, w.id)
        await repo.telemetry.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncecto"]
    assert len(lines) == 2
    head, sql = lines[1].split("\n", 1)
    assert head.startswith('QUERY OK source="weather" db=') and head.split("db=")[1].split(" ")[0].endswith("ms")
    assert sql.startswith('SELECT w0."id", w0."city"') and sql.endswith(f"[{w.id}]")


async def test_log_false_disables_the_log_line(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with Repo(database_url, log=False) as repo:
        with caplog.at_level(logging.DEBUG, logger="asyncecto"):
            await repo.all(Weather)
            await repo.telemetry.flush()
    assert not [r for r in caplog.records if r.getMessage().startswith("QUERY")]


async def test_flush_waits_for_the_workers_delivery_in_progress(repo: Repo) -> None:
    await repo.telemetry.flush()
    seen: list[str] = []
    started = asyncio.Event()

    async def slow(e: QueryEvent) -> None:
        if e.sql == "SELECT 1":
            started.set()
            await asyncio.sleep(0.2)
        seen.append(e.sql)

    repo.telemetry.attach(slow)
    await repo.query("SELECT 1")
    await asyncio.wait_for(started.wait(), 5)  # the worker is inside the handler
    await repo.query("SELECT 2")
    await repo.telemetry.flush()
    assert seen == ["SELECT 1", "SELECT 2"]  # in order, and none still in flight


async def test_a_handler_may_flush_without_deadlock(repo: Repo) -> None:
    await repo.telemetry.flush()
    seen: list[str] = []

    async def flushing(e: QueryEvent) -> None:
        seen.append(e.sql)
        await repo.telemetry.flush()

    repo.telemetry.attach(flushing)
    await repo.query("SELECT 1")
    await repo.query("SELECT 2")
    await asyncio.wait_for(repo.telemetry.flush(), 5)
    assert seen == ["SELECT 1", "SELECT 2"]
