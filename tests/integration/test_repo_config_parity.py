"""Ecto Repo configuration parity (issue 19): ``read_only``, ``init/2``, ``all_running/0``,
``stacktrace``, and the ``idle_time`` telemetry measurement, against the real database."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest

from asyncecto import Multi, QueryEvent, Repo
from asyncecto.errors import ArgumentError, MultiError, RepoStateError
from asyncecto.query import from_, where
from asyncecto.repo import RepoConfig
from asyncecto.repo._telemetry import format_event

from ..schemas import Weather


async def _events(repo: Repo, events: list[QueryEvent]) -> list[QueryEvent]:
    await repo.telemetry.flush()
    return events


async def test_read_only_repo_refuses_every_write_function(database_url: str) -> None:
    repo = Repo(database_url, pool_size=2, read_only=True)
    assert repo.config.read_only is True
    async with repo:
        assert isinstance(await repo.all(Weather), list)  # reads still work
        for name in ("insert", "update", "delete", "insert_or_update", "insert_all", "update_all", "delete_all"):
            with pytest.raises(RepoStateError) as info:
                await getattr(repo, name)(Weather(city="x"))
            assert str(info.value).startswith(f"cannot {name}: repo is read-only")
            assert "read_only=True" in str(info.value)
        with pytest.raises(RepoStateError, match="cannot copy_from: repo is read-only"):
            await repo.copy_from(Weather, [])
        rows = await repo.query("SELECT 1 AS one")
        assert rows.num_rows == 1


async def test_read_only_from_the_url_and_a_bad_value(database_url: str) -> None:
    sep = "&" if "?" in database_url else "?"  # the embedded server's URL has a query already
    assert Repo(f"{database_url}{sep}read_only=true").config.read_only is True
    assert Repo(database_url).config.read_only is False
    with pytest.raises(ArgumentError, match="read_only"):
        Repo(database_url, read_only="yes")


async def test_writes_of_another_repo_are_not_touched(database_url: str) -> None:
    ro = Repo(database_url, read_only=True)
    rw = Repo(database_url)
    assert "insert" in vars(ro)
    assert "insert" not in vars(rw)
    assert rw.insert.__func__ is Repo.insert  # type: ignore[attr-defined]


class SizedRepo(Repo):
    def __init__(self, url: str) -> None:
        super().__init__(url, pool_size=2)
        self.calls: list[tuple[str, RepoConfig]] = []

    def init(self, context: str, config: RepoConfig) -> RepoConfig:
        self.calls.append((context, config))
        return attrs.evolve(config, pool_size=3, log="info")


async def test_init_is_called_on_each_start_and_its_config_used(database_url: str) -> None:
    repo = SizedRepo(database_url)
    assert repo.calls == []
    async with repo:
        assert [c for c, _ in repo.calls] == ["supervisor"]
        assert repo.calls[0][1].pool_size == 2
        assert repo.config.pool_size == 3
        assert repo.pool_stats()["size"] <= 3
        results = await asyncio.gather(*(repo.query("SELECT pg_sleep(0.05)") for _ in range(3)))
        assert len(results) == 3
        assert repo.telemetry.level == logging.INFO
    async with repo:
        assert len(repo.calls) == 2
        assert repo.calls[1][1].pool_size == 2  # the config as given, not the one init returned last time
        assert repo.config.pool_size == 3


class ReadOnlyInitRepo(Repo):
    def init(self, context: str, config: RepoConfig) -> RepoConfig:
        return attrs.evolve(config, read_only=True)


async def test_init_cannot_switch_read_only(database_url: str) -> None:
    repo = ReadOnlyInitRepo(database_url)
    with pytest.raises(ArgumentError, match=r"cannot change read_only \(from False to True\)"):
        await repo.start()
    assert repo.state == "new"


class BadInitRepo(Repo):
    def init(self, context: str, config: RepoConfig) -> RepoConfig:
        return {"pool_size": 3}  # type: ignore[return-value]


async def test_init_returning_something_else_is_refused_and_the_repo_stays_new(database_url: str) -> None:
    repo = BadInitRepo(database_url)
    with pytest.raises(ArgumentError, match=r"BadInitRepo.init\('supervisor', config\) must return a RepoConfig"):
        await repo.start()
    assert repo.state == "new"
    assert repo not in Repo.all_running()


async def test_all_running_lists_started_repos_in_start_order(database_url: str) -> None:
    first, second = Repo(database_url, pool_size=1), SizedRepo(database_url)
    assert first not in Repo.all_running()
    async with first:
        async with second:
            running = Repo.all_running()
            assert running.index(first) < running.index(second)
            assert second in SizedRepo.all_running()
            assert first not in SizedRepo.all_running()
        assert second not in Repo.all_running()
        assert first in Repo.all_running()
    assert first not in Repo.all_running()


async def test_stacktrace_names_the_caller_in_the_event_and_log_line(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    repo = Repo(database_url, pool_size=1, stacktrace=True)
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    caplog.set_level(logging.DEBUG, logger="asyncecto")
    async with repo:
        await repo.all(Weather)
        await repo.query("SELECT 1")
        got = await _events(repo, events)
    assert len(got) == 2
    for event in got:
        assert event.stacktrace is not None
        top = event.stacktrace[0]
        assert top.filename == __file__
        assert top.name == "test_stacktrace_names_the_caller_in_the_event_and_log_line"
        assert all("/asyncecto/" not in f.filename.replace("\\", "/") for f in event.stacktrace[:1])
    line = format_event(got[0])
    assert f"↳ test_stacktrace_names_the_caller_in_the_event_and_log_line, at: {__file__}:" in line
    assert any("↳ test_stacktrace_names_the_caller" in r.getMessage() for r in caplog.records)


async def test_no_stacktrace_by_default(database_url: str) -> None:
    repo = Repo(database_url, pool_size=1)
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    async with repo:
        await repo.query("SELECT 1")
        got = await _events(repo, events)
    assert got[0].stacktrace is None
    assert "↳" not in format_event(got[0])


async def test_idle_time_is_how_long_the_connection_sat_in_the_pool(database_url: str) -> None:
    repo = Repo(database_url, pool_size=1, min_size=1)
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    async with repo:
        await repo.query("SELECT 1")
        await asyncio.sleep(0.3)
        await repo.query("SELECT 2")
        async with repo.transaction():
            await repo.query("SELECT 3")
        got = await _events(repo, events)
    by_sql = {e.sql: e for e in got}
    second = by_sql["SELECT 2"].idle_time
    assert second is not None and 0.3 <= second < 5.0
    first = by_sql["SELECT 1"].idle_time
    assert first is not None and first >= 0.0
    assert by_sql["SELECT 3"].idle_time is None  # inside a transaction: no checkout of its own


async def test_a_multi_on_a_read_only_repo_is_refused_before_writing(database_url: str) -> None:
    repo = Repo(database_url, pool_size=1, read_only=True)
    multi = Multi() | Multi.insert("w", Weather(city="Nowhere"))
    async with repo:
        with pytest.raises(MultiError, match="Multi operation 'w' failed with RepoStateError") as info:
            await repo.transaction(multi)
        assert isinstance(info.value.__cause__ or info.value.__context__, RepoStateError)
        assert await repo.all(from_(Weather) | where(lambda w: w.city == "Nowhere")) == []
