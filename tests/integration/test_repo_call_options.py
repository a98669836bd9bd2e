"""Per-call ``telemetry_event=None`` and ``query_cache=False`` (Ecto's ``telemetry_event: nil`` and
``query_cache: false``), on reads, writes, raw SQL and transactions, and from ``default_options``."""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.changeset import change
from asyncecto.errors import ArgumentError
from asyncecto.query import from_, where

from ..conftest import APP_NAME
from ..schemas import Weather


class DefaultsRepo(Repo):
    """A repo whose ``default_options`` come from a dict set by the test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.defaults: dict[str, Mapping[str, Any]] = {}

    def default_options(self, operation: str) -> Mapping[str, Any]:
        return self.defaults.get(operation, {})


@pytest.fixture
def asyncecto_repo(database_url: str, request: pytest.FixtureRequest) -> Repo:
    cls: type[Repo] = getattr(request, "param", Repo)
    return cls(database_url, pool_size=5, server_settings={"application_name": APP_NAME})


with_defaults = pytest.mark.parametrize("asyncecto_repo", [DefaultsRepo], indirect=True)


def _queries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("QUERY")]


# -- telemetry_event=None ---------------------------------------------------------------
async def test_telemetry_event_none_hides_the_calls_statements_from_handlers(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        w = await repo.insert(Weather(city="Oslo", temp_lo=1), telemetry_event=None)
        await repo.update(change(w, temp_lo=2), telemetry_event=None)
        assert [x.city for x in await repo.all(Weather, telemetry_event=None)] == ["Oslo"]
        assert await repo.get(Weather, w.id, telemetry_event=None) is not None
        assert await repo.aggregate(Weather, "count", telemetry_event=None) == 1
        await repo.update_all(Weather, set={"temp_lo": 3}, telemetry_event=None)
        await repo.query("SELECT 1", telemetry_event=None)
        async with repo.transaction(telemetry_event=None):
            pass
        await repo.delete(w, telemetry_event=None)
        await repo.telemetry.flush()
        assert events == []
        # the log line is governed by log= alone: still written
        assert len(_queries(caplog)) >= 9
        caplog.clear()
        await repo.query("SELECT 2", telemetry_event=None, log=False)
        await repo.telemetry.flush()
        assert _queries(caplog) == [] and events == []
        # a call without it is seen as before
        await repo.query("SELECT 3")
        await repo.telemetry.flush()
    assert [e.sql for e in events] == ["SELECT 3"]


async def test_telemetry_event_none_covers_preloads_and_streams(repo: Repo) -> None:
    events: list[QueryEvent] = []
    await repo.insert(Weather(city="Rome", temp_lo=4))
    repo.telemetry.attach(events.append)
    async with repo.transaction():
        await repo.telemetry.flush()  # the SAVEPOINT's own event is delivered off the query path
        before = len(events)
        async for _ in repo.stream(Weather, telemetry_event=None):
            pass
        async for _ in repo.stream_query("SELECT 1", telemetry_event=None):
            pass
        await repo.telemetry.flush()
        assert len(events) == before
    await repo.telemetry.flush()


async def test_telemetry_event_other_than_none_is_refused(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"telemetry_event= of Repo.all can only be None.*got 'my_event'"):
        await repo.all(Weather, telemetry_event="my_event")
    with pytest.raises(ArgumentError, match=r"telemetry_event= of Repo.query can only be None"):
        await repo.query("SELECT 1", telemetry_event=["my", "event"])
    with pytest.raises(ArgumentError, match=r"telemetry_event= of Repo.insert can only be None"):
        await repo.insert(Weather(city="X"), telemetry_event=False)


# -- query_cache=False -------------------------------------------------------------------
async def test_query_cache_false_skips_the_plan_cache(repo: Repo) -> None:
    await repo.insert(Weather(city="Oslo", temp_lo=1))
    q = from_(Weather) | where(lambda w: w.temp_lo > 0)
    before = repo.cache_stats()
    assert [w.city for w in await repo.all(q, query_cache=False)] == ["Oslo"]
    w = await repo.insert(Weather(city="Bergen", temp_lo=2), query_cache=False)
    await repo.update(change(w, temp_lo=5), query_cache=False)
    assert await repo.aggregate(q, "count", query_cache=False) == 2
    assert repo.cache_stats() == before  # neither consulted nor filled
    await repo.all(q)
    after = repo.cache_stats()
    assert after["hits"] + after["misses"] > before["hits"] + before["misses"]


async def _prepared(repo: Repo, like: str) -> list[str]:
    gc.collect()  # asyncpg closes a dropped statement before the next one it prepares
    await repo.query("SELECT 1")
    result = await repo.query(
        "SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1 AND statement NOT LIKE '%pg_prepared%'",
        [like],
    )
    return [row[0] for row in result.rows]


async def test_query_cache_false_keeps_no_prepared_statement(repo: Repo) -> None:
    await repo.insert(Weather(city="Oslo", temp_lo=7))
    async with repo.checkout():  # one connection: its prepared statements are the ones listed
        q = from_(Weather) | where(lambda w: w.temp_lo == 7)
        assert len(await repo.all(q, query_cache=False)) == 1
        assert await repo.update_all(q, set={"temp_hi": 9}, query_cache=False) == (1, None)
        assert await _prepared(repo, '%WHERE (w0."temp_lo" = $1)') == []
        assert await _prepared(repo, 'UPDATE "weather"%"temp_hi"%') == []
        assert len(await repo.all(q)) == 1  # the cached path keeps its statement
        assert len(await _prepared(repo, '%WHERE (w0."temp_lo" = $1)')) == 1


async def test_query_cache_must_be_a_bool(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"query_cache= of Repo.all must be True or False, got 'no'"):
        await repo.all(Weather, query_cache="no")
    with pytest.raises(ArgumentError, match=r"query_cache= of Repo.query must be True or False"):
        await repo.query("SELECT 1", query_cache=0)


# -- default_options ---------------------------------------------------------------------
@with_defaults
async def test_default_options_can_supply_both(repo: DefaultsRepo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    repo.defaults["all"] = {"telemetry_event": None, "query_cache": False}
    before = repo.cache_stats()
    await repo.all(from_(Weather) | where(lambda w: w.temp_lo > 0))
    await repo.telemetry.flush()
    assert events == [] and repo.cache_stats() == before
    repo.defaults["query"] = {"telemetry_event": "x"}
    with pytest.raises(ArgumentError, match=r"telemetry_event= of Repo.query can only be None"):
        await repo.query("SELECT 1")
    repo.defaults.clear()


# -- notify ------------------------------------------------------------------------------
async def test_notify_takes_the_shared_options(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        await repo.notify("chan", "a", log=False, telemetry_options={"k": 1})
        await repo.telemetry.flush()
        assert _queries(caplog) == []
        assert [(e.options, e.log) for e in events] == [({"k": 1}, False)]
        await repo.notify("chan", "b", telemetry_event=None)
        await repo.telemetry.flush()
    assert len(events) == 1 and len(_queries(caplog)) == 1
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.notify"):
        await repo.notify("chan", "c", bogus=1)
