"""Ecto's shared options on the Repo's writes and transactions (issue 19): per-call ``log=`` and
``telemetry_options=``, ``default_options(operation)``, ``query_options``, and ``prepare_query``
for ``insert_all`` from a query and for ``reload``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from asyncecto import Multi, QueryEvent, Repo
from asyncecto.changeset import change
from asyncecto.errors import ArgumentError
from asyncecto.query import Query, from_, select, where

from ..assoc_schemas import Comment
from ..assoc_schemas import Post as BlogPost
from ..conftest import APP_NAME
from ..schemas import Weather


class TenantRepo(Repo):
    """Hides the city "Hidden" unless ``with_hidden=True``; records its hooks' calls."""

    query_options = frozenset({"with_hidden"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.asked: list[str] = []
        self.defaults: dict[str, Mapping[str, Any]] = {}

    def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> tuple[Query[Any], Any]:
        self.seen.append((operation, dict(options)))
        if options.get("with_hidden") or query.source.schema is not Weather:
            return query, options
        return query | where(lambda w: w.city != "Hidden"), options

    def default_options(self, operation: str) -> Mapping[str, Any]:
        self.asked.append(operation)
        return self.defaults.get(operation, {})


@pytest.fixture
def asyncecto_repo(database_url: str, request: pytest.FixtureRequest) -> Repo:
    """The suite's repo, or a ``TenantRepo`` for tests parametrized with it (indirect)."""
    cls: type[Repo] = getattr(request, "param", Repo)
    return cls(database_url, pool_size=5, server_settings={"application_name": APP_NAME})


tenant = pytest.mark.parametrize("asyncecto_repo", [TenantRepo], indirect=True)


def _query_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("QUERY")]


async def _every_write(repo: Repo, **opts: Any) -> None:
    """Each write once, with ``opts``."""
    w = await repo.insert(Weather(city="Oslo", temp_lo=1), **opts)
    w = await repo.update(change(w, temp_lo=2), **opts)
    w = await repo.insert_or_update(change(w, temp_lo=3), **opts)
    await repo.insert_all(Weather, [{"city": "Rome"}], **opts)
    await repo.insert_all(Weather, from_(Weather) | select(lambda x: {"city": x.city}), **opts)
    await repo.reload(w, **opts)
    await repo.reload([w], **opts)
    await repo.reload_or_raise(w, **opts)
    await repo.delete(w, **opts)


# -- log= ---------------------------------------------------------------------------
async def test_log_false_silences_every_write_but_telemetry_still_fires(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        await _every_write(repo, log=False)
        await repo.telemetry.flush()
        assert _query_lines(caplog) == []
        assert len(events) == 9 and all(e.log is False for e in events)
        await repo.insert(Weather(city="Bergen"))
        await repo.telemetry.flush()
    lines = [r for r in caplog.records if r.getMessage().startswith("QUERY OK")]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG and "INSERT" in lines[0].getMessage()


async def test_a_log_level_overrides_the_repos_for_one_write(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        w = await repo.insert(Weather(city="Oslo"), log="warning")
        await repo.update(change(w, temp_lo=9), log="info")
        await repo.insert_all(Weather, [{"city": "Rome"}], log="error")
        await repo.reload(w, log="critical")
        await repo.delete(w)
        await repo.telemetry.flush()
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith("QUERY OK")]
    assert levels == [logging.WARNING, logging.INFO, logging.ERROR, logging.CRITICAL, logging.DEBUG]


async def test_a_repo_made_with_log_false_stays_silent_on_writes(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Repo(database_url, pool_size=1, log=False) as quiet:
        events: list[QueryEvent] = []
        quiet.telemetry.attach(events.append)

        async def work(r: Repo) -> None:
            w = await r.insert(Weather(city="Oslo"), log=True)
            await r.update(change(w, temp_lo=1), log="error")
            await r.reload(w, log="critical")
            r.rollback()

        with caplog.at_level(logging.DEBUG, logger="asyncecto"):
            await quiet.transaction(work, log="error")
            await quiet.telemetry.flush()
    assert _query_lines(caplog) == []
    assert [e.sql.split()[0] for e in events] == ["BEGIN", "INSERT", "UPDATE", "SELECT", "ROLLBACK"]


async def test_bad_log_and_telemetry_options_on_writes_are_refused(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"log= of Repo.insert must be False, True or a log level name.*'loud'"):
        await repo.insert(Weather(city="Oslo"), log="loud")
    with pytest.raises(ArgumentError, match=r"telemetry_options= of Repo.insert_all must be a mapping"):
        await repo.insert_all(Weather, [{"city": "Oslo"}], telemetry_options=["x"])  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"log= of Repo.transaction must be False, True or a log level"):
        repo.transaction(log=3)  # type: ignore[call-overload]
    assert await repo.all(Weather) == []


# -- telemetry_options= -----------------------------------------------------------------
async def test_telemetry_options_reach_every_event_of_every_write(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    opts = {"request_id": "r-1"}
    await _every_write(repo, telemetry_options=opts)
    await repo.telemetry.flush()
    assert len(events) == 9 and all(e.options == opts for e in events)
    events.clear()
    await repo.insert(Weather(city="Bergen"))
    await repo.telemetry.flush()
    assert [e.options for e in events] == [None]


async def test_a_nested_insert_carries_the_options_on_all_its_statements(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    post = BlogPost(title="hello", comments=[Comment(text="a"), Comment(text="b")])
    opts = {"trace": "t-9"}
    saved = await repo.insert(post, telemetry_options=opts, log=False)
    await repo.telemetry.flush()
    # the sandbox's transaction makes the insert's own transaction a savepoint
    kinds = [e.sql.split()[0] for e in events]
    assert kinds[0] == "SAVEPOINT" and kinds[-1] == "RELEASE" and kinds.count("INSERT") == 3
    assert all(e.options == opts and e.log is False for e in events)
    events.clear()
    await repo.delete(saved, telemetry_options=opts)  # on_delete="delete_all" children first
    await repo.telemetry.flush()
    assert [e.sql.split()[0] for e in events if e.sql.split()[0] == "DELETE"] and all(e.options == opts for e in events)


# -- transaction(...) ---------------------------------------------------------------------
async def test_transaction_options_apply_to_its_own_statements_only(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    opts = {"unit": "tx"}
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        async with repo.transaction(log=False, telemetry_options=opts):
            await repo.insert(Weather(city="Oslo"))
        await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options, e.log) for e in events] == [
        ("SAVEPOINT", opts, False),
        ("INSERT", None, None),
        ("RELEASE", opts, False),
    ]
    lines = _query_lines(caplog)
    assert len(lines) == 1 and "INSERT" in lines[0].getMessage()


async def test_transaction_of_a_function_and_of_a_multi_take_the_options(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)

    async def fn(r: Repo) -> int:
        await r.insert(Weather(city="Oslo"), telemetry_options={"op": "insert"})
        return 7

    assert await repo.transaction(fn, telemetry_options={"op": "fn"}) == 7
    multi = Multi.new() | Multi.insert("w", Weather(city="Rome"))
    changes = await repo.transaction(multi, telemetry_options={"op": "multi"}, log="info")
    assert changes["w"].city == "Rome"
    await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [
        ("SAVEPOINT", {"op": "fn"}),
        ("INSERT", {"op": "insert"}),
        ("RELEASE", {"op": "fn"}),
        ("SAVEPOINT", {"op": "multi"}),
        ("INSERT", None),
        ("RELEASE", {"op": "multi"}),
    ]
    assert [e.log for e in events][3:] == ["info", None, "info"]


async def test_a_failed_savepoint_rolls_back_with_the_options(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with pytest.raises(RuntimeError, match="boom"):
        async with repo.transaction(telemetry_options={"op": "tx"}):
            raise RuntimeError("boom")
    await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [
        ("SAVEPOINT", {"op": "tx"}),
        ("ROLLBACK", {"op": "tx"}),
        ("RELEASE", {"op": "tx"}),
    ]


@pytest.mark.no_sandbox
async def test_begin_and_commit_carry_the_transactions_options(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        async with repo.transaction(telemetry_options={"op": "tx"}, log="warning"):
            await repo.insert(Weather(city="Oslo"))
            async with repo.transaction(telemetry_options={"op": "inner"}):
                await repo.insert(Weather(city="Rome"))
        await repo.transaction(lambda: repo.rollback(1), log=False, telemetry_options={"op": "rb"})
        await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [
        ("BEGIN", {"op": "tx"}),
        ("INSERT", None),
        ("SAVEPOINT", {"op": "inner"}),
        ("INSERT", None),
        ("RELEASE", {"op": "inner"}),
        ("COMMIT", {"op": "tx"}),
        ("BEGIN", {"op": "rb"}),
        ("ROLLBACK", {"op": "rb"}),
    ]
    assert [r.levelno for r in _query_lines(caplog)] == [
        logging.WARNING,
        logging.DEBUG,
        logging.DEBUG,
        logging.DEBUG,
        logging.DEBUG,
        logging.WARNING,
    ]


@pytest.mark.no_sandbox
async def test_retried_transaction_keeps_its_options(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)

    async def fn() -> str:
        return "ok"

    assert await repo.transaction(fn, retry=2, telemetry_options={"op": "retry"}) == "ok"
    await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [("BEGIN", {"op": "retry"}), ("COMMIT", {"op": "retry"})]


# -- unknown options and query_options ----------------------------------------------------
async def test_unknown_options_on_writes_are_refused(repo: Repo) -> None:
    w = Weather(city="Oslo")
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.insert; the options are prefix, timeout"):
        await repo.insert(w, bogus=1)
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.insert_all.*query_options"):
        await repo.insert_all(Weather, [{"city": "Oslo"}], bogus=1)
    with pytest.raises(ArgumentError, match=r"unsupported option 'where' for Repo.delete; instead, build a query"):
        await repo.delete(w, where={"city": "Oslo"})
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.reload"):
        await repo.reload(w, bogus=1)
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.reload"):
        await repo.reload([], bogus=1)
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.transaction"):
        repo.transaction(bogus=1)
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.update"):
        await repo.update(change(w, city="x"), bogus=1)
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.insert_or_update"):
        await repo.insert_or_update(change(w, city="x"), bogus=1)
    assert await repo.all(Weather) == []  # nothing was sent


@tenant
async def test_declared_query_options_are_accepted_by_writes(repo: TenantRepo) -> None:
    w = await repo.insert(Weather(city="Oslo"), with_hidden=True)
    w = await repo.update(change(w, temp_lo=1), with_hidden=True)
    async with repo.transaction(with_hidden=True):
        await repo.insert_or_update(change(w, temp_lo=2), with_hidden=True)
    await repo.insert_all(Weather, [{"city": "Rome"}], with_hidden=True)
    await repo.delete(w, with_hidden=True)
    assert [x.city for x in await repo.all(Weather)] == ["Rome"]
    assert repo.seen == [("all", {})]  # single-struct writes run no prepare_query


# -- default_options(operation) --------------------------------------------------------------
@tenant
async def test_default_options_are_asked_per_write_operation(repo: TenantRepo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    repo.asked.clear()
    await _every_write(repo)
    async with repo.transaction():
        pass
    assert repo.asked == [
        "insert",
        "update",
        "insert_or_update",
        "insert_all",
        "insert_all",
        "reload",
        "reload",
        "reload",
        "delete",
        "transaction",
    ]


@tenant
async def test_default_options_apply_under_the_calls_own(repo: TenantRepo, caplog: pytest.LogCaptureFixture) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    repo.defaults = {
        "insert": {"telemetry_options": {"from": "defaults"}, "log": False},
        "delete": {"log": "warning"},
        "insert_all": {"telemetry_options": {"from": "insert_all"}},
        "reload": {"with_hidden": True, "telemetry_options": {"from": "reload"}},
        "transaction": {"telemetry_options": {"from": "transaction"}},
    }
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        w = await repo.insert(Weather(city="Hidden"))
        v = await repo.insert(Weather(city="Oslo"), telemetry_options={"from": "call"})
        await repo.insert_all(Weather, [{"city": "Rome"}])
        assert await repo.reload(w) == w  # the default with_hidden reaches prepare_query
        async with repo.transaction():
            await repo.delete(v)
        await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [
        ("INSERT", {"from": "defaults"}),
        ("INSERT", {"from": "call"}),
        ("INSERT", {"from": "insert_all"}),
        ("SELECT", {"from": "reload"}),
        ("SAVEPOINT", {"from": "transaction"}),
        ("DELETE", None),
        ("RELEASE", {"from": "transaction"}),
    ]
    assert repo.seen[-1] == ("all", {"with_hidden": True, "telemetry_options": {"from": "reload"}})
    levels = [r.levelno for r in _query_lines(caplog)]
    assert levels.count(logging.WARNING) == 1 and len(levels) == 5  # the first insert is silent


@tenant
async def test_bad_default_options_for_a_write_are_refused(repo: TenantRepo) -> None:
    repo.defaults = {"insert": {"bogus": 1}}
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.insert \(from default_options\)"):
        await repo.insert(Weather(city="Oslo"))
    repo.defaults = {"transaction": {"log": "loud"}}
    with pytest.raises(ArgumentError, match=r"log= of Repo.transaction must be"):
        repo.transaction()


# -- prepare_query ---------------------------------------------------------------------------
@tenant
async def test_insert_all_from_a_query_goes_through_prepare_query(repo: TenantRepo) -> None:
    await repo.insert_all(Weather, [{"city": "Oslo"}, {"city": "Hidden"}], with_hidden=True)
    assert repo.seen == []  # rows, not a query: nothing to prepare
    source = from_(Weather) | select(lambda w: {"city": w.city, "temp_lo": 5})
    count, _ = await repo.insert_all(Weather, source, telemetry_options={"k": 1})
    assert count == 1
    assert repo.seen == [("insert_all", {"telemetry_options": {"k": 1}})]
    count, _ = await repo.insert_all(Weather, source, with_hidden=True)
    assert count == 3
    assert repo.seen[-1] == ("insert_all", {"with_hidden": True})
    copied = await repo.all(from_(Weather) | where(temp_lo=5), with_hidden=True)
    assert sorted(str(w.city) for w in copied) == ["Hidden", "Oslo", "Oslo", "Oslo"]


@tenant
async def test_reload_goes_through_prepare_query_as_all(repo: TenantRepo) -> None:
    hidden = await repo.insert(Weather(city="Hidden"))
    shown = await repo.insert(Weather(city="Oslo"))
    repo.seen.clear()
    assert await repo.reload([hidden, shown]) == [None, shown]
    assert repo.seen == [("all", {})]
    assert await repo.reload(hidden, with_hidden=True, log=False) == hidden
    assert repo.seen[-1] == ("all", {"with_hidden": True, "log": False})
    with pytest.raises(Exception, match="could not reload"):
        await repo.reload_or_raise(hidden)
    assert await repo.reload_or_raise(hidden, with_hidden=True) == hidden


# -- copy_to / copy_from ---------------------------------------------------------------------
async def test_copies_take_log_and_telemetry_options(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"):
        loaded = await repo.copy_from(Weather, [{"city": "Oslo"}], log=False, telemetry_options={"op": "in"})
        data = await repo.copy_to(Weather, format="csv", log="warning", telemetry_options={"op": "out"})
        await repo.telemetry.flush()
    assert loaded == 1 and b"Oslo" in data
    assert [(e.options, e.log) for e in events] == [({"op": "in"}, False), ({"op": "out"}, "warning")]
    assert [r.levelno for r in _query_lines(caplog)] == [logging.WARNING]
    with pytest.raises(ArgumentError, match=r"log= of Repo.copy_to must be"):
        await repo.copy_to(Weather, log="loud")


async def test_a_multis_steps_take_their_own_options(repo: Repo) -> None:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    multi = (
        Multi.new()
        | Multi.insert("w", Weather(city="Oslo"), telemetry_options={"op": "step"}, log=False)
        | Multi.insert_all("rows", Weather, [{"city": "Rome"}], telemetry_options={"op": "rows"})
    )
    await repo.transaction(multi)
    await repo.telemetry.flush()
    assert [(e.sql.split()[0], e.options) for e in events] == [
        ("SAVEPOINT", None),
        ("INSERT", {"op": "step"}),
        ("INSERT", {"op": "rows"}),
        ("RELEASE", None),
    ]
    with pytest.raises(ArgumentError, match=r"unknown option 'bogus' for Repo.insert"):
        await repo.transaction(Multi.new() | Multi.insert("w", Weather(city="Oslo"), bogus=1))
