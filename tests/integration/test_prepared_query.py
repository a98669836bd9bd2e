"""Prepared queries (issue 21) against PostgreSQL: every read that takes a query gives a prepared
call's rows exactly as the unprepared query's, with the same errors, SQL and telemetry; preloads,
joins, subqueries, prefixes, a repo's ``prepare_query`` hook and replica routing all hold."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import CastError, QueryError
from asyncecto.query import (
    Query,
    fragment,
    from_,
    group_by,
    join,
    limit,
    lock,
    order_by,
    preload,
    prepare,
    select,
    subquery,
    where,
)
from asyncecto.repo import build_config
from asyncecto.repo._core import executor_of
from asyncecto.repo._telemetry import QueryEvent

from ..assoc_schemas import Comment
from ..assoc_schemas import Post as BlogPost
from ..schemas import Weather

CITIES = ["Oslo", "Kraków", "Lima", "Ōsaka"]


def filtered(city: Any, t: Any) -> Query[Weather]:
    return (
        from_(Weather) | where(lambda w: (w.city == city) & (w.temp_lo > t)) | order_by(["temp_lo", "id"]) | limit(10)
    )


FILTERED = prepare(filtered)


async def _seed(repo: Repo) -> None:
    rows = [{"city": c, "temp_lo": lo, "temp_hi": lo + 10} for c in CITIES for lo in range(-5, 25, 3)]
    await repo.insert_all(Weather, rows)


async def _outcome(call: Any) -> Any:
    try:
        return ("ok", await call())
    except Exception as exc:
        return ("error", type(exc), str(exc))


VALUES: list[tuple[Any, Any]] = [
    ("Oslo", 5),
    ("Kraków", -100),
    ("Lima", 2**31 - 1),
    ("Oslo", 2**40),  # beyond integer: the unprepared path
    ("Oslo", 1.5),  # a fraction beside an integer field: the unprepared path
    ("nowhere", 0),
    ("Oslo", "7"),  # cast to the field's type, as unprepared
    ("Oslo", "warm"),  # CastError, as unprepared
    (None, 3),  # QueryError (use is_nil), as unprepared
    ("x\x00y", 3),  # a NUL: CastError, as unprepared
    (5, 3),
]


async def test_every_read_gives_what_the_unprepared_query_gives(repo: Repo) -> None:
    await _seed(repo)
    for city, t in VALUES:
        p = FILTERED(city, t)
        for read in (repo.all, repo.exists, repo.one, lambda q: repo.aggregate(q, "count")):
            got = await _outcome(lambda: read(p))  # noqa: B023
            assert got == await _outcome(lambda: read(filtered(city, t))), (read, city, t)  # noqa: B023
    assert len(await repo.all(FILTERED("Oslo", 5))) == 6
    with pytest.raises(CastError):
        await repo.all(FILTERED("Oslo", "warm"))
    with pytest.raises(QueryError, match="use is_nil"):
        await repo.all(FILTERED(None, 1))


async def test_one_raises_as_unprepared_and_stream_reads_the_rows(repo: Repo) -> None:
    await _seed(repo)
    from asyncecto.errors import MultipleResultsError

    with pytest.raises(MultipleResultsError):
        await repo.one(FILTERED("Oslo", 0))
    async with repo.transaction():
        streamed = [w async for w in repo.stream(FILTERED("Lima", 5), max_rows=2)]
    assert streamed == await repo.all(filtered("Lima", 5))


async def test_the_prepared_plan_is_used_and_cached(repo: Repo) -> None:
    await _seed(repo)
    await repo.all(FILTERED("Oslo", 1))
    before = repo.cache_stats()
    for city in CITIES:
        await repo.all(FILTERED(city, 2))
    after = repo.cache_stats()
    assert after["misses"] == before["misses"] and after["hits"] == before["hits"] + len(CITIES)
    sql, params = repo.to_sql(FILTERED("Oslo", 4))
    assert (sql, params) == repo.to_sql(filtered("Oslo", 4))


async def test_telemetry_sees_the_same_statement_and_parameters(repo: Repo) -> None:
    await _seed(repo)
    events: list[QueryEvent] = []
    name = repo.telemetry.attach(events.append)
    try:
        await repo.all(filtered("Oslo", "7"))
        await repo.all(FILTERED("Oslo", "7"))
        await repo.telemetry.flush()
    finally:
        repo.telemetry.detach(name)
    normal, prepared = events[-2], events[-1]
    assert (prepared.sql, prepared.params, prepared.cast_params) == (normal.sql, normal.params, normal.cast_params)
    assert prepared.cast_params == ("Oslo", 7, 10)


async def test_preloads_joins_subqueries_and_selects(repo: Repo) -> None:
    posts = await repo.insert_all(BlogPost, [{"title": f"p{i}", "visits": i} for i in range(4)], returning=True)
    ids = [p.id for p in posts[1] or []]
    await repo.insert_all(Comment, [{"post_id": pid, "text": f"c{j}"} for pid in ids for j in range(2)])

    def with_comments(n: Any) -> Query[Any]:
        return from_(BlogPost) | where(lambda p: p.visits >= n) | order_by("id") | preload("comments")

    def joined(text: Any, n: Any) -> Query[Any]:
        return (
            from_(BlogPost)
            | join("inner", lambda p: p.comments, as_="c")
            | where(lambda p, c: (c.text == text) & (p.visits < n))
            | order_by("id")
            | select(lambda p, c: {"title": p.title, "text": c.text})
        )

    def nested(text: Any) -> Query[Any]:
        return from_(BlogPost) | where(
            lambda p: p.id.in_(subquery(from_(Comment) | where(text=text) | select(lambda c: c.post_id)))
        )

    def listed(wanted: Any) -> Query[Any]:
        return from_(BlogPost) | where(lambda p: p.id.in_(wanted)) | order_by("id")

    cases: list[tuple[Callable[..., Query[Any]], tuple[Any, ...]]] = [
        (with_comments, (2,)),
        (joined, ("c1", 3)),
        (nested, ("c0",)),
        (listed, (ids[:2],)),
        (listed, ((ids[3],),)),
        (listed, ({ids[0]},)),  # a set: the unprepared path
        (listed, ("abc",)),
    ]
    for builder, args in cases:
        pq = prepare(builder)
        got = await _outcome(lambda: repo.all(pq(*args)))  # noqa: B023
        assert got == await _outcome(lambda: repo.all(builder(*args))), builder  # noqa: B023
    loaded = await repo.all(prepare(with_comments)(3))
    assert [len(p.comments) for p in loaded] == [2]


async def test_prefixes(repo: Repo) -> None:
    await repo.query("INSERT INTO archive.weather (city, temp_lo) VALUES ('Oslo', 9)")
    await _seed(repo)
    archived = await repo.all(FILTERED("Oslo", 8), prefix="archive")
    assert [(w.city, w.temp_lo) for w in archived] == [("Oslo", 9)]
    assert archived == await repo.all(filtered("Oslo", 8), prefix="archive")
    assert len(await repo.all(FILTERED("Oslo", 8))) == 5


class Scoped(Repo):
    """A repo whose ``prepare_query`` hook scopes every read to one city."""

    seen: list[Any]

    def prepare_query(self, operation: str, query: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        self.seen.append(query)
        return query | where(city="Oslo"), options


async def test_a_repos_prepare_query_hook_sees_the_query(repo: Repo, database_url: str) -> None:
    await _seed(repo)
    scoped = Scoped(database_url, pool_size=2)
    scoped.seen = []
    pq = prepare(lambda t: from_(Weather) | where(lambda w: w.temp_lo > t) | order_by("id"))
    async with scoped, scoped.checkout():
        # committed rows are not visible to the other repo inside the sandbox; read its answer shape
        rows = await scoped.all(pq(10))
    assert isinstance(scoped.seen[0], Query)  # the hook is given the built query, values in place
    assert repr(scoped.seen[0]) == repr(from_(Weather) | where(lambda w: w.temp_lo > 10) | order_by("id"))
    assert all(w.city == "Oslo" for w in rows)


@pytest.fixture
async def replica_repo(database_url: str) -> AsyncIterator[Repo]:
    """A repo whose one replica is the same server under another address (the events tell them apart)."""
    if "127.0.0.1" in database_url:
        replica_url = database_url.replace("127.0.0.1", "localhost")
    else:  # the embedded server's unix socket: the same folder, spelled differently
        host = build_config(database_url).host
        replica_url = database_url.replace(f"host={host}", f"host={host}/.")
    assert replica_url != database_url
    r = Repo(database_url, replicas=[replica_url], pool_size=2)
    async with r:
        yield r


@pytest.mark.no_sandbox
async def test_replica_routing(replica_repo: Repo) -> None:
    events: list[QueryEvent] = []
    replica_repo.telemetry.attach(events.append)
    pq = prepare(lambda c: from_(Weather) | where(city=c))
    locked = prepare(lambda c: from_(Weather) | where(city=c) | lock("FOR UPDATE"))
    await replica_repo.all(pq("Oslo"))
    await replica_repo.all(pq("Oslo"), replica=False)
    async with replica_repo.transaction():
        await replica_repo.all(locked("Oslo"))
    await replica_repo.all(locked("Oslo"))  # a locking read: the primary
    await replica_repo.telemetry.flush()
    served = [e.replica for e in events if e.sql.startswith("SELECT")]
    replica_host = build_config(executor_of(replica_repo).config.replicas[0]).host
    assert served[0] is not None and served[0].startswith(replica_host)
    assert served[1:] == [None, None, None]
    assert executor_of(replica_repo).router is not None


async def test_a_tenant_block_applies_to_prepared_reads(repo: Repo) -> None:
    """``repo.tenant(...)`` sets the tenant on the connection's transaction, which a prepared read uses too."""
    await _seed(repo)
    mine = prepare(
        lambda tenant, t: (
            from_(Weather)
            | where(lambda w: fragment("current_setting('app.tenant_id', true) = ?", tenant) & (w.temp_lo > t))
        )
    )
    async with repo.transaction():
        assert await repo.all(mine("7", 100)) == []
        async with repo.tenant(7):
            assert len(await repo.all(mine("7", 20))) == len(CITIES)
            assert await repo.all(mine("8", 20)) == []
            assert mine("7", 20).prepared.plan("all", None, lambda q: q).bind(("7", 20)) is not None  # prepared plan


async def test_a_bad_prefix_and_a_bad_value_raise_as_unprepared(repo: Repo) -> None:
    for city in (None, "Oslo"):
        for read in (repo.all, repo.exists):
            got = await _outcome(lambda: read(FILTERED(city, 1), prefix="no such"))  # noqa: B023
            assert got == await _outcome(lambda: read(filtered(city, 1), prefix="no such"))  # noqa: B023
            assert got[0] == "error"


async def test_aggregates_take_the_prepared_plan(repo: Repo) -> None:
    await _seed(repo)
    limited = prepare(lambda c, n: from_(Weather) | where(city=c) | order_by("temp_lo") | limit(n))
    for func, field in [("count", None), ("count", "temp_lo"), ("max", "temp_lo"), ("avg", "temp_hi")]:
        for city, t in VALUES:
            got = await _outcome(lambda: repo.aggregate(FILTERED(city, t), func, field))  # noqa: B023
            assert got == await _outcome(lambda: repo.aggregate(filtered(city, t), func, field)), (func, city, t)  # noqa: B023
        for n in (0, 3, 2**40, -1):
            got = await _outcome(lambda: repo.aggregate(limited("Oslo", n), func, field))  # noqa: B023
            expected = await _outcome(lambda: repo.aggregate(limited.build(("Oslo", n)), func, field))  # noqa: B023
            assert got == expected, (func, field, n)
    before = repo.cache_stats()
    assert await repo.aggregate(FILTERED("Oslo", 1), "max", "temp_lo") == 22
    assert await repo.aggregate(limited("Lima", 2), "max", "temp_lo") == -2
    after = repo.cache_stats()
    assert after["misses"] == before["misses"]  # both plans were made before, by the loop
    with pytest.raises(QueryError, match="group_by"):
        await repo.aggregate(prepare(lambda c: from_(Weather) | where(city=c) | group_by("city"))("Oslo"), "count")


async def test_call_options_keep_the_prepared_plan_and_query_cache_false_drops_it(repo: Repo) -> None:
    await _seed(repo)
    events: list[QueryEvent] = []
    name = repo.telemetry.attach(events.append)
    try:
        await repo.all(FILTERED("Oslo", 2))
        before = repo.cache_stats()
        rows = await repo.all(FILTERED("Oslo", 2), log=False, telemetry_options={"route": "x"})
        assert repo.cache_stats()["hits"] == before["hits"] + 1
        assert rows == await repo.all(filtered("Oslo", 2), log=False)
        assert await repo.exists(FILTERED("Oslo", 2), telemetry_options={"route": "y"})
        before = repo.cache_stats()
        assert await repo.all(FILTERED("Oslo", 2), query_cache=False) == rows
        assert repo.cache_stats() == before  # no plan cache touched
        await repo.telemetry.flush()
    finally:
        repo.telemetry.detach(name)
    assert [e.options for e in events if e.options] == [{"route": "x"}, {"route": "y"}]
