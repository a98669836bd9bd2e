"""Ecto Repo parity (issue 19): ``all_by``, ``checked_out``, per-call ``log``/``telemetry_options``,
the ``prepare_query``/``default_options`` hooks, ``disconnect_all`` and raw ``stream_query``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.errors import ArgumentError, MultipleResultsError, QueryError, RepoStateError
from asyncecto.query import Query, from_, order_by, preload, where

from ..assoc_schemas import Comment
from ..assoc_schemas import Post as BlogPost
from ..conftest import APP_NAME
from ..schemas import Weather


class TenantRepo(Repo):
    """A repo hiding the city "Hidden" unless ``with_hidden=True`` (Ecto's prepare_query example)."""

    query_options = frozenset({"with_hidden"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.defaults: dict[str, Mapping[str, Any]] = {}

    def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> tuple[Query[Any], Any]:
        self.seen.append((operation, dict(options)))
        if options.get("with_hidden") or query.source.schema is not Weather:
            return query, options
        return query | where(lambda w: w.city != "Hidden"), options

    def default_options(self, operation: str) -> Mapping[str, Any]:
        return self.defaults.get(operation, {})


@pytest.fixture
def asyncecto_repo(database_url: str, request: pytest.FixtureRequest) -> Repo:
    """The suite's repo, or a ``TenantRepo`` for tests parametrized with it (indirect)."""
    cls: type[Repo] = getattr(request, "param", Repo)
    return cls(database_url, pool_size=5, server_settings={"application_name": APP_NAME})


tenant = pytest.mark.parametrize("asyncecto_repo", [TenantRepo], indirect=True)


async def _cities(repo: Repo, *names: str) -> None:
    for n in names:
        await repo.insert(Weather(city=n, temp_lo=len(n)))


async def _events(repo: Repo, events: list[QueryEvent]) -> list[QueryEvent]:
    await repo.telemetry.flush()
    return events


# -- all_by ------------------------------------------------------------------------
async def test_all_by_returns_every_row_matching_the_clauses(repo: Repo) -> None:
    await _cities(repo, "Oslo", "Oslo", "Rome")
    found = await repo.all_by(Weather, city="Oslo")
    assert [w.city for w in found] == ["Oslo", "Oslo"]
    assert await repo.all_by(Weather, {"city": "Rome", "temp_lo": 4}) == await repo.all(
        from_(Weather) | where(city="Rome")
    )
    assert await repo.all_by(Weather, city="Nowhere") == []
    # on a query: the clauses add to its filters, its order stays
    q = from_(Weather) | where(lambda w: w.temp_lo > 3) | order_by(desc="id")
    assert [w.id for w in await repo.all_by(q, city="Oslo")] == [2, 1]


async def test_all_by_refuses_none_and_no_clauses(repo: Repo) -> None:
    with pytest.raises(QueryError, match=r"comparing city with None is forbidden.*is_nil"):
        await repo.all_by(Weather, city=None)
    with pytest.raises(ArgumentError, match="all_by needs at least one field=value clause"):
        await repo.all_by(Weather)


async def test_get_by_still_raises_on_more_than_one(repo: Repo) -> None:
    await _cities(repo, "Oslo", "Oslo")
    with pytest.raises(MultipleResultsError, match="expected at most one result but got 2"):
        await repo.get_by(Weather, city="Oslo", log=False)


# -- checked_out -------------------------------------------------------------------
@pytest.mark.no_sandbox
async def test_checked_out_inside_checkout_and_transaction_only(repo: Repo) -> None:
    assert repo.checked_out() is False
    async with repo.checkout():
        assert repo.checked_out() is True
        async with repo.checkout():  # nested: the same connection
            assert repo.checked_out() is True
        assert repo.in_transaction() is False
    assert repo.checked_out() is False
    async with repo.transaction():
        assert repo.checked_out() is True and repo.in_transaction() is True
    assert repo.checked_out() is False


async def test_checked_out_is_false_at_the_top_of_a_sandboxed_test(repo: Repo) -> None:
    # as Ecto's sandbox: the test owns a connection, but no checkout/transaction block is open
    assert repo.checked_out() is False
    async with repo.transaction():
        assert repo.checked_out() is True


# -- per-call log= and telemetry_options= -------------------------------------------
async def test_log_false_silences_the_log_line_but_not_telemetry(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        await repo.all(Weather, log=False)
        await repo.query("SELECT 1", log=False)
        await repo.exists(Weather, log=False)
        await repo.telemetry.flush()
        assert [r for r in caplog.records if r.getMessage().startswith("QUERY")] == []
        await repo.all(Weather)
        await repo.telemetry.flush()
    assert len(events) == 4 and [e.log for e in events] == [False, False, False, None]
    lines = [r for r in caplog.records if r.getMessage().startswith("QUERY OK")]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG


async def test_log_level_overrides_the_repos_for_one_call(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        await repo.all(Weather, log="warning")
        await repo.aggregate(Weather, "count", log="info")
        await repo.telemetry.flush()
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith("QUERY OK")]
    assert levels == [logging.WARNING, logging.INFO]


async def test_a_repo_with_log_false_stays_silent_whatever_the_call_says(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Repo(database_url, pool_size=1, log=False) as quiet:
        with caplog.at_level(logging.DEBUG, logger="asyncecto"):
            await quiet.query("SELECT 1", log=True)
            await quiet.query("SELECT 1", log="error")
            await quiet.telemetry.flush()
    assert [r for r in caplog.records if r.getMessage().startswith("QUERY")] == []


async def test_bad_log_and_telemetry_options_are_refused(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"log= of Repo.all must be False, True or a log level name.*got 'loud'"):
        await repo.all(Weather, log="loud")
    with pytest.raises(ArgumentError, match=r"telemetry_options= of Repo.query must be a mapping"):
        await repo.query("SELECT 1", telemetry_options=["x"])  # type: ignore[arg-type]


async def test_telemetry_options_reach_every_event_of_the_call(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    w = await repo.insert(Weather(city="Oslo"))
    await repo.telemetry.flush()
    events.clear()
    opts = {"request_id": "r-1"}
    await repo.all(Weather, telemetry_options=opts)
    await repo.get(Weather, w.id, telemetry_options=opts)
    await repo.get_by(Weather, city="Oslo", telemetry_options=opts)
    await repo.all_by(Weather, city="Oslo", telemetry_options=opts)
    await repo.one(from_(Weather), telemetry_options=opts)
    await repo.exists(Weather, telemetry_options=opts)
    await repo.aggregate(Weather, "max", "temp_lo", telemetry_options=opts)
    await repo.update_all(Weather, set={"temp_hi": 1}, telemetry_options=opts)
    await repo.query("SELECT 1", telemetry_options=opts)
    await repo.preload(w, [], telemetry_options=opts)  # nothing to load: no query
    await repo.delete_all(Weather, telemetry_options=opts)
    await repo.all(Weather)  # the next call carries nothing
    await _events(repo, events)
    assert [e.options for e in events] == [opts] * 10 + [None]
    assert all(e.options is opts for e in events[:10])


async def test_unknown_and_query_style_options_are_refused(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"unknown option 'skip_soft_delete' for Repo.all; .*query_options"):
        await repo.all(Weather, skip_soft_delete=True)
    with pytest.raises(ArgumentError, match=r"unsupported option 'where' for Repo.delete_all; instead, build a query"):
        await repo.delete_all(Weather, where={"city": "Oslo"})
    with pytest.raises(ArgumentError, match=r"unsupported option 'limit' for Repo.one"):
        await repo.one(Weather, limit=1)
    assert await repo.aggregate(Weather, "count") == 0  # nothing was deleted


# -- prepare_query / default_options ----------------------------------------------------
@tenant
async def test_prepare_query_filters_every_query_operation(repo: TenantRepo) -> None:
    await _cities(repo, "Oslo", "Hidden", "Rome")
    hidden = await repo.get_by(Weather, city="Hidden", with_hidden=True)
    assert hidden is not None
    assert sorted(w.city or "" for w in await repo.all(Weather)) == ["Oslo", "Rome"]
    assert await repo.get(Weather, hidden.id) is None
    assert (await repo.get(Weather, hidden.id, with_hidden=True)) == hidden
    assert await repo.get_by(Weather, city="Hidden") is None
    assert await repo.all_by(Weather, city="Hidden") == []
    assert await repo.all_by(Weather, city="Hidden", with_hidden=True) == [hidden]
    assert await repo.one(from_(Weather) | where(city="Hidden")) is None
    assert await repo.exists(from_(Weather) | where(city="Hidden")) is False
    assert await repo.aggregate(Weather, "count") == 2
    assert await repo.aggregate(Weather, "count", with_hidden=True) == 3
    assert await repo.update_all(Weather, set={"temp_hi": 9}) == (2, None)
    assert "WHERE" in repo.to_sql(Weather)[0] and "WHERE" not in repo.to_sql(Weather, with_hidden=True)[0]
    async with repo.transaction():
        assert sorted([w.city or "" async for w in repo.stream(Weather)]) == ["Oslo", "Rome"]
    assert await repo.delete_all(Weather) == (2, None)
    assert await repo.all(Weather, with_hidden=True) == [hidden]
    ops = {op for op, _ in repo.seen}
    assert ops == {"all", "update_all", "stream", "delete_all"}
    assert ("all", {"with_hidden": True}) in repo.seen


@tenant
async def test_prepare_query_sees_the_calls_options_and_its_answer_is_used(repo: TenantRepo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    repo.seen.clear()
    await repo.all(Weather, timeout=5.0, log=False, telemetry_options={"a": 1}, with_hidden=True)
    assert repo.seen == [("all", {"timeout": 5.0, "log": False, "telemetry_options": {"a": 1}, "with_hidden": True})]
    await _events(repo, events)
    assert events[-1].options == {"a": 1} and events[-1].log is False


@tenant
async def test_default_options_merge_under_the_calls(repo: TenantRepo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    await _cities(repo, "Hidden")
    repo.defaults = {"all": {"with_hidden": True, "telemetry_options": {"from": "defaults"}}}
    assert len(await repo.all(Weather)) == 1  # the default opts out of the filter
    assert await repo.all(Weather, with_hidden=False) == []  # the call's own option wins
    await repo.all(Weather, telemetry_options={"from": "call"})
    await _events(repo, events)
    assert [e.options for e in events[-3:]] == [{"from": "defaults"}, {"from": "defaults"}, {"from": "call"}]
    repo.defaults = {"query": {"log": False, "with_hidden": True}}  # raw SQL: only the shared options apply
    await repo.query("SELECT 1")
    await _events(repo, events)
    assert events[-1].log is False
    repo.defaults = {"all": {"limit": 1}}
    with pytest.raises(ArgumentError, match=r"unsupported option 'limit' for Repo.all \(from default_options\)"):
        await repo.all(Weather)


@tenant
async def test_a_bad_prepare_query_answer_is_refused(repo: TenantRepo) -> None:
    class Broken(TenantRepo):
        def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> Any:
            return query

    broken = Broken("postgres://localhost/unused")
    with pytest.raises(ArgumentError, match=r"prepare_query\('all', ...\) must return a \(query, options\) tuple"):
        broken.to_sql(Weather)
    with pytest.raises(ArgumentError, match=r"unknown option 'with_hiden' for Repo.all"):
        await repo.all(Weather, with_hiden=True)


# -- stream options and stream_query -------------------------------------------------
async def test_stream_query_yields_rows_of_raw_sql_inside_a_transaction(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    sql = "SELECT n, n * 2 FROM generate_series(1, $1::int) AS n"
    async with repo.transaction():
        rows = [r async for r in repo.stream_query(sql, [5], max_rows=2, telemetry_options={"k": "v"})]
    assert rows == [(n, n * 2) for n in range(1, 6)]
    await _events(repo, events)
    fetches = [e for e in events if e.sql == sql]
    assert [e.num_rows for e in fetches] == [2, 2, 1] and all(e.options == {"k": "v"} for e in fetches)
    assert fetches[0].params == (5,)


async def test_stream_query_refuses_outside_a_transaction_and_copy(repo: Repo) -> None:
    with pytest.raises(RepoStateError, match=r"stream_query.*outside of a transaction"):
        async for _ in repo.stream_query("SELECT 1"):
            pass
    async with repo.transaction():
        with pytest.raises(ArgumentError, match=r"repo.stream_query cannot run 'COPY weather TO STDOUT'.*copy_to"):
            async for _ in repo.stream_query("COPY weather TO STDOUT"):
                pass
        with pytest.raises(ArgumentError, match="max_rows must be a positive integer"):
            async for _ in repo.stream_query("SELECT 1", max_rows=0):
                pass


async def test_stream_query_can_stop_early_and_the_transaction_goes_on(repo: Repo) -> None:
    async with repo.transaction():
        async with aclosing(repo.stream_query("SELECT n FROM generate_series(1, 1000) AS n", max_rows=10)) as rows:
            async for (n,) in rows:
                if n == 3:
                    break
        assert (await repo.query("SELECT 42")).rows == [(42,)]


async def test_stream_emits_events_with_the_calls_options(repo: Repo) -> None:
    await _cities(repo, "Oslo", "Rome", "Lima")
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    async with repo.transaction():
        got = [w.city async for w in repo.stream(from_(Weather), max_rows=2, log=False, telemetry_options={"s": 1})]
    assert sorted(c or "" for c in got) == ["Lima", "Oslo", "Rome"]
    await _events(repo, events)
    fetches = [e for e in events if e.source == "weather"]
    assert [e.num_rows for e in fetches] == [2, 1]
    assert all(e.options == {"s": 1} and e.log is False for e in fetches)


# -- disconnect_all ----------------------------------------------------------------
async def _pids(repo: Repo, n: int) -> set[int]:
    """Backend pids of ``n`` connections held at once."""
    pids: set[int] = set()
    hold = asyncio.Event()
    started = 0
    done = asyncio.Event()

    async def one() -> None:
        nonlocal started
        async with repo.checkout():
            pids.add((await repo.query("SELECT pg_backend_pid()")).rows[0][0])
            started += 1
            if started == n:
                done.set()
            await hold.wait()

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.wait_for(done.wait(), 10)
    hold.set()
    await asyncio.gather(*tasks)
    return pids


@pytest.mark.no_sandbox
async def test_disconnect_all_closes_idle_connections_and_the_repo_reconnects(repo: Repo) -> None:
    before = await _pids(repo, 3)
    assert repo.pool_stats()["idle"] == 3
    await repo.disconnect_all()
    stats = repo.pool_stats()
    assert stats["disconnected"] == 3 and stats["size"] == 0, stats
    after = await _pids(repo, 3)
    assert before.isdisjoint(after)
    alive = (await repo.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", [list(before)])).rows
    assert alive == [(0,)]


@pytest.mark.no_sandbox
async def test_disconnect_all_closes_a_connection_in_use_at_its_checkin(repo: Repo) -> None:
    async with repo.checkout():
        pid = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        await repo.disconnect_all()
        assert (await repo.query("SELECT pg_backend_pid()")).rows == [(pid,)]  # not interrupted
        assert repo.pool_stats()["disconnected"] == 0
    assert repo.pool_stats()["disconnected"] == 1
    assert (await repo.query("SELECT pg_backend_pid()")).rows != [(pid,)]


@pytest.mark.no_sandbox
async def test_disconnect_all_spreads_the_closing_over_the_interval(repo: Repo) -> None:
    await _pids(repo, 4)
    await repo.disconnect_all(interval=0.3)
    await asyncio.sleep(0.5)
    assert repo.pool_stats()["disconnected"] == 4
    assert (await repo.query("SELECT 1")).rows == [(1,)]


async def test_disconnect_all_refuses_a_bad_interval(repo: Repo) -> None:
    for bad in (-1, "5", True, float("nan")):
        with pytest.raises(ArgumentError, match="disconnect_all interval must be a number of seconds >= 0"):
            await repo.disconnect_all(interval=bad)  # type: ignore[arg-type]


async def test_disconnect_all_needs_a_running_repo(database_url: str) -> None:
    with pytest.raises(RepoStateError, match="disconnect all connections"):
        await Repo(database_url).disconnect_all()


# -- prepare_query on preload queries --------------------------------------------------
class ApprovedRepo(Repo):
    """Comments not approved are hidden unless ``with_unapproved=True``."""

    query_options = frozenset({"with_unapproved"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> tuple[Query[Any], Any]:
        self.seen.append((operation, dict(options)))
        if options.get("with_unapproved") or query.source.schema is not Comment:
            return query, options
        return query | where(approved=True), options


@pytest.mark.parametrize("asyncecto_repo", [ApprovedRepo], indirect=True)
async def test_prepare_query_runs_for_preload_queries(repo: ApprovedRepo) -> None:
    post = await repo.insert(BlogPost(title="p"))
    for text, ok in (("yes", True), ("no", False)):
        await repo.insert(Comment(text=text, approved=ok, post_id=post.id))
    loaded = await repo.preload(post, "comments")
    assert [c.text for c in loaded.comments] == ["yes"]
    assert ("all", {"ecto_query": "preload"}) in repo.seen
    loaded = await repo.preload(post, "comments", with_unapproved=True)
    assert sorted(c.text or "" for c in loaded.comments) == ["no", "yes"]
    (from_query,) = await repo.all(from_(BlogPost) | preload("comments"))
    assert [c.text for c in from_query.comments] == ["yes"]
    (from_query,) = await repo.all(from_(BlogPost) | preload("comments"), with_unapproved=True)
    assert len(from_query.comments) == 2
    with pytest.raises(ArgumentError, match=r"unknown option 'with_unaproved' for Repo.preload"):
        await repo.preload(post, "comments", with_unaproved=True)


async def test_disconnect_all_inside_the_sandbox_spares_the_tests_connection(repo: Repo) -> None:
    await _cities(repo, "Oslo")
    await repo.disconnect_all()
    # the sandbox's connection is in use: it is closed only when the sandbox gives it back
    assert [w.city for w in await repo.all(Weather)] == ["Oslo"]
