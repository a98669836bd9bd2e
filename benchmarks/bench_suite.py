"""asyncecto against raw asyncpg on nine workloads, interleaved, as throughput ratios (asyncecto / asyncpg).

The raw side is what a careful hand-written service does: asyncpg's pool of 10 with no reset
query on release (``reset=`` a no-op), statements prepared by asyncpg's own cache (``fetch``/
``fetchrow`` with the same SQL text), and rows turned into slotted dataclasses. asyncecto runs
through its public API only, on a ``Repo`` with a pool of 10.

Workloads:

- ``get``: one row by primary key, sequentially (``repo.get`` vs ``pool.fetchrow``)
- ``get_x50``: the same from 50 concurrent tasks sharing the pool
- ``filtered``: ``city = $1 AND temp_lo > $2 ORDER BY temp_lo LIMIT 10`` over an index on
  ``(city, temp_lo)``; parameters vary per call, so the server's part is small and the
  client's CPU shows
- ``insert``: one row (``repo.insert`` vs ``INSERT … RETURNING id``)
- ``update``: one field of a loaded row (``repo.update(change(...))`` vs ``UPDATE … WHERE id``)
- ``tx_children``: a transaction with a parent and its three children (``repo.insert`` then
  ``repo.insert_all`` vs ``INSERT … RETURNING id`` then one ``unnest`` insert)
- ``m2m_create``: an article with two existing tags (``repo.insert(Article(tags=[a, b]))`` vs
  a transaction with the article and one join-row insert)
- ``m2m_update``: a new title and one tag swapped (``repo.update(change(article, title=…,
  tags=[…]))`` vs a transaction with an ``UPDATE``, one join-row delete and one insert)
- ``preload``: a page of 20 articles with their comments (has_many) and tags (many_to_many)

A third contender, for information, runs the same statements on one held asyncpg connection (no
pool: the driver's floor; not for ``get_x50``). Each round runs every workload's contenders in
12 slices whose order rotates (A B C, B C A, …) and takes the round's ratio; the report gives the
median ops/s, the per-round ratios, their median, and the geometric mean of the workloads'
median ratios, so a machine whose speed drifts during the run does not skew them. Beside the
throughput (wall-clock) ratio it gives the client-CPU ratio: the raw side's CPU seconds per
operation over asyncecto's, this process's ``time.process_time()`` (the server is another
process), which a busy machine disturbs far less than the wall clock. Statements per operation
are counted through telemetry for asyncecto (in a separate, untimed pass) and by construction
for raw asyncpg.

Both sides' sessions run with ``synchronous_commit=off`` (``--durable`` keeps it on): a commit's
wait for the disk, shared with whatever else the machine runs, would otherwise drown the
client's cost being compared. The tables are seeded large enough that the plans PostgreSQL
caches per connection stay right while the writes grow them (at 200 articles, the generic plan
of the foreign-key check on them was a sequential scan, and the transaction workloads slowed
down round after round). Compare ratios, not ops/s, and read them with the machine's load in
mind.

    python benchmarks/bench_suite.py [--rounds 7] [--ops 1000] [--json PATH] [--chart PATH] [--url URL]
        [--only WORKLOAD ...] [--durable]
    python benchmarks/bench_suite.py --replot results.json --chart PATH
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from _measure import POOL_SIZE, raw_pool

from asyncecto import QueryEvent, Repo, has_many, many_to_many, schema
from asyncecto.changeset import change
from asyncecto.embedded import database_url
from asyncecto.query import from_, limit, order_by, preload, prepare, where
from asyncecto.repo import build_config

CONCURRENCY = 50
WEATHER_ROWS = 10_000
CITIES = 100
ARTICLES = 5_000  # enough that the generic plan of a foreign-key check on it is an index scan
COMMENTS_PER_ARTICLE = 5
TAGS = 20
PAGE = 20
#: each round's timed operations run in this many slices, alternating the sides
SLICES = 12
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"

# -- asyncecto's schemas ---------------------------------------------------------------------


@schema("bench_s_weather")
class Weather:
    id: int | None = None
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


@schema("bench_s_articles")
class Article:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many("Comment")
    tags: list[Tag] = many_to_many("Tag", join_through="bench_s_articles_tags", on_replace="delete")


@schema("bench_s_comments")
class Comment:
    id: int | None = None
    article_id: int | None = None
    body: str | None = None


@schema("bench_s_tags")
class Tag:
    id: int | None = None
    name: str | None = None


# -- the raw side's rows: slotted dataclasses ------------------------------------------------


@dataclass(slots=True)
class RawWeather:
    id: int
    city: str
    temp_lo: int
    temp_hi: int
    prcp: float


@dataclass(slots=True)
class RawComment:
    id: int
    article_id: int
    body: str


@dataclass(slots=True)
class RawTag:
    id: int
    name: str


@dataclass(slots=True)
class RawArticle:
    id: int
    title: str
    comments: list[RawComment] = field(default_factory=list)
    tags: list[RawTag] = field(default_factory=list)


COLUMNS = "id, city, temp_lo, temp_hi, prcp"
GET_SQL = f"SELECT {COLUMNS} FROM bench_s_weather WHERE id = $1"
FILTER_SQL = f"SELECT {COLUMNS} FROM bench_s_weather WHERE city = $1 AND temp_lo > $2 ORDER BY temp_lo LIMIT 10"
INSERT_SQL = "INSERT INTO bench_s_weather (city, temp_lo, temp_hi, prcp) VALUES ($1, $2, $3, $4) RETURNING id"
UPDATE_SQL = "UPDATE bench_s_weather SET temp_hi = $1 WHERE id = $2"
ARTICLE_SQL = "INSERT INTO bench_s_articles (title) VALUES ($1) RETURNING id"
CHILDREN_SQL = (
    "INSERT INTO bench_s_comments (article_id, body) SELECT $1::bigint, b FROM unnest($2::text[]) AS u(b) RETURNING id"
)
LINK_SQL = "INSERT INTO bench_s_articles_tags (article_id, tag_id) SELECT $1::bigint, unnest($2::bigint[])"
UNLINK_SQL = "DELETE FROM bench_s_articles_tags WHERE article_id = $1 AND tag_id = ANY($2::bigint[])"
TITLE_SQL = "UPDATE bench_s_articles SET title = $1 WHERE id = $2"
PAGE_SQL = "SELECT id, title FROM bench_s_articles WHERE id > $1 ORDER BY id LIMIT 20"
PAGE_COMMENTS_SQL = "SELECT id, article_id, body FROM bench_s_comments WHERE article_id = ANY($1::bigint[])"
PAGE_TAGS_SQL = (
    "SELECT at.article_id, t.id, t.name FROM bench_s_tags t "
    "JOIN bench_s_articles_tags at ON at.tag_id = t.id WHERE at.article_id = ANY($1::bigint[])"
)

#: statements the raw side sends per operation, by construction (BEGIN and COMMIT count)
RAW_STATEMENTS = {
    "get": 1,
    "get_x50": 1,
    "filtered": 1,
    "filtered_prepared": 1,
    "insert": 1,
    "update": 1,
    "tx_children": 4,
    "m2m_create": 4,
    "m2m_update": 5,
    "preload": 3,
}

DESCRIPTIONS = {
    "get": "one row by primary key, sequentially",
    "get_x50": "one row by primary key, 50 concurrent tasks",
    "filtered": "city = $1 AND temp_lo > $2 ORDER BY temp_lo LIMIT 10 (indexed, parameters vary)",
    "filtered_prepared": "the same filter through asyncecto.query.prepare (built and planned once)",
    "insert": "insert one row",
    "update": "update one field of a loaded row",
    "tx_children": "a transaction: a parent and three children",
    "m2m_create": "an article with two existing tags (many_to_many)",
    "m2m_update": "an article's title and one of its two tags changed",
    "preload": "a page of 20 articles with their comments and tags",
}

CAVEAT = (
    "Wall-clock throughput of both sides in one process on one machine, interleaved per round; "
    "ratios are comparable within a run, absolute ops/s are not. On a shared or small machine "
    "(the CI runner: 2 cores, other work running) individual ratios move by ±0.1 between runs."
)

Run = Callable[[int], Awaitable[None]]
Conn: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


# -- data ------------------------------------------------------------------------------------


async def setup(repo: Repo) -> None:
    await teardown(repo)
    await repo.query(
        "CREATE TABLE bench_s_weather (id bigserial PRIMARY KEY, city varchar(255), temp_lo integer, "
        "temp_hi integer, prcp double precision)"
    )
    await repo.query(
        "INSERT INTO bench_s_weather (city, temp_lo, temp_hi, prcp) "
        "SELECT 'city ' || (g % $2::int), g % 40 - 10, g % 40, (g % 7) * 0.25 FROM generate_series(1, $1::int) g",
        [WEATHER_ROWS, CITIES],
    )
    await repo.query("CREATE INDEX bench_s_weather_city_temp_lo ON bench_s_weather (city, temp_lo)")
    await repo.query("CREATE TABLE bench_s_articles (id bigserial PRIMARY KEY, title text)")
    await repo.query(
        "CREATE TABLE bench_s_comments (id bigserial PRIMARY KEY, "
        "article_id bigint NOT NULL REFERENCES bench_s_articles(id), body text)"
    )
    await repo.query("CREATE INDEX ON bench_s_comments (article_id)")
    await repo.query("CREATE TABLE bench_s_tags (id bigserial PRIMARY KEY, name text UNIQUE)")
    await repo.query(
        "CREATE TABLE bench_s_articles_tags (article_id bigint NOT NULL REFERENCES bench_s_articles(id), "
        "tag_id bigint NOT NULL REFERENCES bench_s_tags(id), PRIMARY KEY (article_id, tag_id))"
    )
    await repo.query("CREATE INDEX ON bench_s_articles_tags (tag_id)")
    await repo.query("INSERT INTO bench_s_tags (name) SELECT 'tag ' || g FROM generate_series(1, $1::int) g", [TAGS])
    await repo.query(
        "INSERT INTO bench_s_articles (title) SELECT 'article ' || g FROM generate_series(1, $1::int) g", [ARTICLES]
    )
    await repo.query(
        "INSERT INTO bench_s_comments (article_id, body) SELECT a, 'comment ' || a || '.' || c "
        "FROM generate_series(1, $1::int) a, generate_series(1, $2::int) c",
        [ARTICLES, COMMENTS_PER_ARTICLE],
    )
    await repo.query(
        "INSERT INTO bench_s_articles_tags (article_id, tag_id) "
        "SELECT a, 1 + (a % $2::int) FROM generate_series(1, $1::int) a "
        "UNION ALL SELECT a, 1 + ((a + 1) % $2::int) FROM generate_series(1, $1::int) a",
        [ARTICLES, TAGS],
    )
    for table in ("weather", "articles", "comments", "tags", "articles_tags"):
        await repo.query(f"ANALYZE bench_s_{table}")


async def teardown(repo: Repo) -> None:
    await repo.query(
        "DROP TABLE IF EXISTS bench_s_articles_tags, bench_s_comments, bench_s_tags, bench_s_articles, bench_s_weather"
    )


# -- the contenders --------------------------------------------------------------------------


def filtered_query(city: str, lo: int) -> Any:
    return from_(Weather) | where(lambda w: (w.city == city) & (w.temp_lo > lo)) | order_by("temp_lo") | limit(10)


#: the filter built and planned once; each call binds its two values
PREPARED_FILTER = prepare(
    lambda city, lo: (
        from_(Weather) | where(lambda w: (w.city == city) & (w.temp_lo > lo)) | order_by("temp_lo") | limit(10)
    )
)


def page_query(after: int) -> Any:
    return from_(Article) | where(lambda a: a.id > after) | order_by("id") | limit(PAGE) | preload("comments", "tags")


async def raw_page(conn: Conn, after: int) -> list[RawArticle]:
    articles = [RawArticle(r[0], r[1]) for r in await conn.fetch(PAGE_SQL, after)]
    by_id = {a.id: a for a in articles}
    ids = list(by_id)
    for r in await conn.fetch(PAGE_COMMENTS_SQL, ids):
        by_id[r[1]].comments.append(RawComment(r[0], r[1], r[2]))
    for r in await conn.fetch(PAGE_TAGS_SQL, ids):
        by_id[r[0]].tags.append(RawTag(r[1], r[2]))
    return articles


class Inputs:
    """Pre-drawn parameters, the same sequence for both sides."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.ids = [rng.randint(1, WEATHER_ROWS) for _ in range(4096)]
        self.filters = [(f"city {rng.randrange(CITIES)}", rng.randint(-10, 25)) for _ in range(4096)]
        self.pages = [rng.randrange(0, ARTICLES - PAGE) for _ in range(4096)]

    @staticmethod
    def cycle(values: Sequence[Any], offset: int, n: int) -> list[Any]:
        return [values[(offset + i) % len(values)] for i in range(n)]


def asyncecto_side(
    repo: Repo, inputs: Inputs, loaded: list[Weather], tags: list[Tag], article: Article
) -> dict[str, Run]:
    state: dict[str, Any] = {"article": article, "flip": 0, "n": 0}

    async def get(n: int) -> None:
        for i in Inputs.cycle(inputs.ids, state["n"], n):
            await repo.get(Weather, i)
        state["n"] += n

    async def get_x50(n: int) -> None:
        async def task(ids: list[int]) -> None:
            for i in ids:
                await repo.get(Weather, i)

        ids = Inputs.cycle(inputs.ids, state["n"], n)
        await asyncio.gather(*(task(ids[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        state["n"] += n

    async def filtered(n: int) -> None:
        for city, lo in Inputs.cycle(inputs.filters, state["n"], n):
            await repo.all(filtered_query(city, lo))
        state["n"] += n

    async def filtered_prepared(n: int) -> None:
        for city, lo in Inputs.cycle(inputs.filters, state["n"], n):
            await repo.all(PREPARED_FILTER(city, lo))
        state["n"] += n

    async def insert(n: int) -> None:
        for i in range(n):
            await repo.insert(Weather(city="new city", temp_lo=i % 30, temp_hi=i % 40, prcp=0.5))

    async def update(n: int) -> None:
        for i in range(n):
            k = (state["n"] + i) % len(loaded)
            loaded[k] = await repo.update(change(loaded[k], temp_hi=(loaded[k].temp_hi or 0) + 1))
        state["n"] += n

    async def tx_children(n: int) -> None:
        for _ in range(n):
            async with repo.transaction():
                parent = await repo.insert(Article(title="parent"))
                await repo.insert_all(
                    Comment, [{"article_id": parent.id, "body": f"child {c}"} for c in range(3)], returning=["id"]
                )

    async def m2m_create(n: int) -> None:
        for i in range(n):
            await repo.insert(Article(title="tagged", tags=[tags[i % TAGS], tags[(i + 1) % TAGS]]))

    async def m2m_update(n: int) -> None:
        for _ in range(n):
            state["flip"] ^= 1
            swapped = [tags[0], tags[2]] if state["flip"] else [tags[0], tags[1]]
            current: Article = state["article"]
            state["article"] = await repo.update(change(current, title=f"title {state['flip']}", tags=swapped))

    async def preload_page(n: int) -> None:
        for after in Inputs.cycle(inputs.pages, state["n"], n):
            await repo.all(page_query(after))
        state["n"] += n

    return {
        "get": get,
        "get_x50": get_x50,
        "filtered": filtered,
        "filtered_prepared": filtered_prepared,
        "insert": insert,
        "update": update,
        "tx_children": tx_children,
        "m2m_create": m2m_create,
        "m2m_update": m2m_update,
        "preload": preload_page,
    }


class Held:
    """``async with Held(conn)``: the same connection every time (the driver's floor: no pool)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def __call__(self) -> Held:
        return self

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        return None


def asyncpg_side(
    acquire: Callable[[], Any], inputs: Inputs, loaded: list[RawWeather], article_id: int, *, concurrent: bool = True
) -> dict[str, Run]:
    """The raw side's workloads; ``acquire`` is ``pool.acquire`` or a :class:`Held` connection."""
    state: dict[str, Any] = {"flip": 0, "n": 0}

    async def get_one(i: int) -> RawWeather | None:
        async with acquire() as conn:
            r = await conn.fetchrow(GET_SQL, i)
        return None if r is None else RawWeather(r[0], r[1], r[2], r[3], r[4])

    async def get(n: int) -> None:
        for i in Inputs.cycle(inputs.ids, state["n"], n):
            await get_one(i)
        state["n"] += n

    async def get_x50(n: int) -> None:
        async def task(ids: list[int]) -> None:
            for i in ids:
                await get_one(i)

        ids = Inputs.cycle(inputs.ids, state["n"], n)
        await asyncio.gather(*(task(ids[k::CONCURRENCY]) for k in range(CONCURRENCY)))
        state["n"] += n

    async def filtered(n: int) -> None:
        for city, lo in Inputs.cycle(inputs.filters, state["n"], n):
            async with acquire() as conn:
                rows = await conn.fetch(FILTER_SQL, city, lo)
            [RawWeather(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        state["n"] += n

    async def insert(n: int) -> None:
        for i in range(n):
            row = RawWeather(0, "new city", i % 30, i % 40, 0.5)
            async with acquire() as conn:
                row.id = await conn.fetchval(INSERT_SQL, row.city, row.temp_lo, row.temp_hi, row.prcp)

    async def update(n: int) -> None:
        for i in range(n):
            row = loaded[(state["n"] + i) % len(loaded)]
            row.temp_hi += 1
            async with acquire() as conn:
                await conn.execute(UPDATE_SQL, row.temp_hi, row.id)
        state["n"] += n

    async def tx_children(n: int) -> None:
        for _ in range(n):
            async with acquire() as conn, conn.transaction():
                parent = RawArticle(await conn.fetchval(ARTICLE_SQL, "parent"), "parent")
                bodies = [f"child {c}" for c in range(3)]
                ids = await conn.fetch(CHILDREN_SQL, parent.id, bodies)
                parent.comments = [RawComment(r[0], parent.id, b) for r, b in zip(ids, bodies, strict=True)]

    async def m2m_create(n: int) -> None:
        for i in range(n):
            tag_ids = [1 + i % TAGS, 1 + (i + 1) % TAGS]
            async with acquire() as conn, conn.transaction():
                new_id = await conn.fetchval(ARTICLE_SQL, "tagged")
                await conn.execute(LINK_SQL, new_id, tag_ids)

    async def m2m_update(n: int) -> None:
        # the article starts with tags 1 and 2 (ids), swapping tag 2 and tag 3 each call
        for _ in range(n):
            state["flip"] ^= 1
            old, new = ([2], [3]) if state["flip"] else ([3], [2])
            async with acquire() as conn, conn.transaction():
                await conn.execute(TITLE_SQL, f"title {state['flip']}", article_id)
                await conn.execute(UNLINK_SQL, article_id, old)
                await conn.execute(LINK_SQL, article_id, new)

    async def preload_page(n: int) -> None:
        for after in Inputs.cycle(inputs.pages, state["n"], n):
            async with acquire() as conn:
                await raw_page(conn, after)
        state["n"] += n

    runs: dict[str, Run] = {
        "get": get,
        "get_x50": get_x50,
        "filtered": filtered,
        "filtered_prepared": filtered,
        "insert": insert,
        "update": update,
        "tx_children": tx_children,
        "m2m_create": m2m_create,
        "m2m_update": m2m_update,
        "preload": preload_page,
    }
    if not concurrent:
        del runs["get_x50"]
    return runs


# -- measuring -------------------------------------------------------------------------------

#: a workload's operations per timed call, relative to ``--ops``
WEIGHTS = {
    "get": 1.0,
    "get_x50": 2.0,
    "filtered": 1.0,
    "filtered_prepared": 1.0,
    "insert": 0.5,
    "update": 0.5,
    "tx_children": 0.25,
    "m2m_create": 0.25,
    "m2m_update": 0.25,
    "preload": 0.1,
}


async def timed_pair(sides: Sequence[tuple[str, Run]], n: int, slices: int) -> dict[str, tuple[float, float]]:
    """Each side's ops/s (wall clock) and client CPU seconds per operation over ``n`` operations,
    run in ``slices`` slices whose order rotates (A B C, B C A, C A B, …) so that a burst of other work on the machine
    lands on both sides alike. The CPU is this process's (the client's: the server is another)."""
    wall = dict.fromkeys((name for name, _ in sides), 0.0)
    cpu = dict.fromkeys(wall, 0.0)
    done = dict.fromkeys(wall, 0)
    per = max(n // slices, 1)
    for k in range(slices):
        for name, run in [*sides[k % len(sides) :], *sides[: k % len(sides)]]:
            start, start_cpu = time.perf_counter(), time.process_time()
            await run(per)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            done[name] += per
    return {name: (done[name] / wall[name], cpu[name] / done[name]) for name in wall}


async def count_statements(repo: Repo, run: Run, n: int) -> float:
    """asyncecto's statements per operation: telemetry events over ``n`` untimed operations."""
    seen: list[str] = []

    def handler(event: QueryEvent) -> None:
        seen.append(event.sql)

    await repo.telemetry.flush()
    name = repo.telemetry.attach(handler, name="bench-suite-count")
    try:
        await run(n)
        await repo.telemetry.flush()
    finally:
        repo.telemetry.detach(name)
    return len(seen) / n


async def check_same_answers(repo: Repo, pool: asyncpg.Pool) -> None:
    """Both sides read the same rows before anything is timed."""
    ours = await repo.get(Weather, 42)
    theirs = await pool.fetchrow(GET_SQL, 42)
    assert ours is not None and theirs is not None and ours.id == theirs["id"] == 42
    city, lo = "city 3", 5
    mine = [(w.id, w.temp_lo) for w in await repo.all(filtered_query(city, lo))]
    raw = [(r["id"], r["temp_lo"]) for r in await pool.fetch(FILTER_SQL, city, lo)]
    assert [t for _, t in mine] == [t for _, t in raw] and 0 < len(mine) <= 10, (mine, raw)
    page = await repo.all(page_query(10))
    async with pool.acquire() as conn:
        raw_articles = await raw_page(conn, 10)
    assert [(a.id, sorted(c.id for c in a.comments), sorted(t.id for t in a.tags)) for a in page] == [
        (a.id, sorted(c.id for c in a.comments), sorted(t.id for t in a.tags)) for a in raw_articles
    ]
    assert len(page) == PAGE and all(len(a.tags) == 2 for a in page)


async def run_suite(
    url: str, rounds: int, ops: int, only: Sequence[str] | None = None, *, durable: bool = False
) -> dict[str, Any]:
    # synchronous_commit=off on both sides (unless durable): a commit's wait for the disk, shared
    # with whatever else the machine runs, would otherwise swamp the client's cost being compared
    settings = {} if durable else {"synchronous_commit": "off"}
    await Repo(url).storage_up()
    repo = Repo(url, pool_size=POOL_SIZE, server_settings=settings)
    kwargs = build_config(url).dsn_kwargs()
    kwargs["server_settings"] = {**kwargs.get("server_settings", {}), **settings}
    inputs = Inputs()
    names = [w for w in RAW_STATEMENTS if only is None or w in only]
    async with repo:
        await setup(repo)
        pool = await raw_pool(kwargs)
        held = await asyncpg.connect(**kwargs)
        try:
            await check_same_answers(repo, pool)
            tags = sorted(await repo.all(Tag), key=lambda t: t.id or 0)
            ours_loaded = await repo.all(from_(Weather) | where(lambda w: w.id <= 100))
            raw_loaded = [
                RawWeather(*r) for r in await pool.fetch(f"SELECT {COLUMNS} FROM bench_s_weather WHERE id <= 100")
            ]
            # one article each side for m2m_update, starting with tags 1 and 2
            ours_article = await repo.insert(Article(title="title 0", tags=[tags[0], tags[1]]))
            raw_article = await repo.insert(Article(title="title 0", tags=[tags[0], tags[1]]))
            held_article = await repo.insert(Article(title="title 0", tags=[tags[0], tags[1]]))
            assert raw_article.id is not None and held_article.id is not None
            contenders = {
                "asyncecto": asyncecto_side(repo, inputs, ours_loaded, tags, ours_article),
                "asyncpg": asyncpg_side(pool.acquire, inputs, raw_loaded, raw_article.id),
                "asyncpg_conn": asyncpg_side(
                    Held(held), inputs, [RawWeather(*astuple(r)) for r in raw_loaded], held_article.id, concurrent=False
                ),
            }
            counts = {w: max(int(ops * WEIGHTS[w]), CONCURRENCY if w == "get_x50" else 2) for w in names}
            # warm-up: caches, prepared statements, the pools' connections
            for w in names:
                for side in contenders.values():
                    if w in side:
                        await side[w](max(counts[w] // 4, 2))
            statements = {w: await count_statements(repo, contenders["asyncecto"][w], 4) for w in names}
            results: dict[str, dict[str, list[float]]] = {
                w: {k: [] for k, side in contenders.items() if w in side} for w in names
            }
            cpu: dict[str, dict[str, list[float]]] = {w: {k: [] for k in results[w]} for w in names}
            for r in range(rounds):
                for w in names:
                    order = [(name, side[w]) for name, side in contenders.items() if w in side]
                    speeds = await timed_pair(order[r % len(order) :] + order[: r % len(order)], counts[w], SLICES)
                    for side_name, (speed, cpu_per_op) in speeds.items():
                        results[w][side_name].append(speed)
                        cpu[w][side_name].append(cpu_per_op)
            server = await pool.fetchval("SHOW server_version")
        finally:
            await held.close()
            await pool.close()
            await teardown(repo)
    return summarize(results, cpu, statements, counts, rounds, ops, str(server), durable)


def summarize(
    results: dict[str, dict[str, list[float]]],
    cpu: dict[str, dict[str, list[float]]],
    statements: dict[str, float],
    counts: dict[str, int],
    rounds: int,
    ops: int,
    server: str,
    durable: bool,
) -> dict[str, Any]:
    workloads: dict[str, Any] = {}
    for w, by in results.items():
        ratios = [o / p for o, p in zip(by["asyncecto"], by["asyncpg"], strict=True)]
        workloads[w] = {
            "description": DESCRIPTIONS[w],
            "ops_per_round": counts[w],
            "ops_per_s": {k: round(statistics.median(v), 1) for k, v in by.items()},
            "ops_per_s_by_round": {k: [round(x, 1) for x in v] for k, v in by.items()},
            "ratios": [round(x, 4) for x in ratios],
            "ratio": round(statistics.median(ratios), 4),
            "cpu_us_per_op": {k: round(statistics.median(v) * 1e6, 1) for k, v in cpu[w].items()},
            "ratios_cpu": [round(p / o, 4) for o, p in zip(cpu[w]["asyncecto"], cpu[w]["asyncpg"], strict=True)],
            "statements_per_op": {"asyncecto": round(statements[w], 2), "asyncpg": RAW_STATEMENTS[w]},
        }
        workloads[w]["ratio_cpu"] = round(statistics.median(workloads[w]["ratios_cpu"]), 4)
        if "asyncpg_conn" in by:
            floor = [o / c for o, c in zip(by["asyncecto"], by["asyncpg_conn"], strict=True)]
            workloads[w]["ratios_conn"] = [round(x, 4) for x in floor]
            workloads[w]["ratio_conn"] = round(statistics.median(floor), 4)
    import asyncecto  # the version measured

    return {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "rounds": rounds,
            "ops": ops,
            "pool_size": POOL_SIZE,
            "concurrency": CONCURRENCY,
            "slices": SLICES,
            "synchronous_commit": "on" if durable else "off",
            "asyncecto": getattr(asyncecto, "__version__", "dev"),
            "asyncpg": asyncpg.__version__,
            "postgresql": server,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "caveat": CAVEAT,
        },
        "workloads": workloads,
        "geomean": round(geomean([v["ratio"] for v in workloads.values()]), 4),
        "geomean_cpu": round(geomean([v["ratio_cpu"] for v in workloads.values()]), 4),
        "geomean_conn": round(geomean([v["ratio_conn"] for v in workloads.values() if "ratio_conn" in v]), 4),
    }


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else 0.0


# -- output ----------------------------------------------------------------------------------


def report(summary: dict[str, Any]) -> str:
    meta = summary["meta"]
    lines = [
        f"asyncecto vs raw asyncpg — {meta['rounds']} rounds, pools of {meta['pool_size']}: "
        "median ops/s and the median of per-round ratios",
        "(wall: asyncecto / asyncpg's pool, throughput; cpu: the same by client CPU per operation; "
        "vs conn: wall / one held asyncpg connection, the driver's floor; statements: per operation)",
        f"{'workload':<12} {'asyncecto':>9} {'asyncpg':>9} {'pg conn':>9} {'wall':>5} {'cpu':>5} {'vs conn':>7}  "
        f"{'per-round wall ratios':<36} {'statements':>10}",
    ]
    for w, v in summary["workloads"].items():
        per = " ".join(f"{x:.2f}" for x in v["ratios"])
        st = v["statements_per_op"]
        ops = v["ops_per_s"]
        conn = f"{ops['asyncpg_conn']:>9.0f}" if "asyncpg_conn" in ops else f"{'-':>9}"
        floor = f"{v['ratio_conn']:>7.2f}" if "ratio_conn" in v else f"{'-':>7}"
        lines.append(
            f"{w:<12} {ops['asyncecto']:>9.0f} {ops['asyncpg']:>9.0f} {conn} {v['ratio']:>5.2f} "
            f"{v['ratio_cpu']:>5.2f} {floor}  {per:<36} {st['asyncecto']:>5g} / {st['asyncpg']:<3}"
        )
    lines.append(
        f"geomean of the ratios: wall {summary['geomean']:.2f}, cpu {summary['geomean_cpu']:.2f}, "
        f"wall vs a held connection {summary['geomean_conn']:.2f}"
    )
    lines.append(f"note: {meta['caveat']}")
    return "\n".join(lines)


def chart(summary: dict[str, Any], path: Path) -> None:
    """The ratios as a horizontal bar chart (PNG), with 1.0 (raw asyncpg) and the 0.8 target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = list(summary["workloads"])[::-1]
    ratios = [summary["workloads"][w]["ratio"] for w in names]
    by_cpu = [summary["workloads"][w]["ratio_cpu"] for w in names]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(names) + 1.8), dpi=110)
    y = list(range(len(names)))
    colors = ["#2a7ab0" if r >= 0.8 else "#d08a2c" for r in ratios]
    walls = ax.barh([i + 0.18 for i in y], ratios, height=0.36, color=colors, label="throughput (wall clock)")
    cpus = ax.barh([i - 0.18 for i in y], by_cpu, height=0.36, color="#b8b8b8", label="client CPU per operation")
    for bars, values in ((walls, ratios), (cpus, by_cpu)):
        for bar, r in zip(bars, values, strict=True):
            ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"{r:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, names)
    handles = [
        Patch(color="#2a7ab0", label="throughput (wall clock), at least 0.8"),
        Patch(color="#d08a2c", label="throughput (wall clock), below 0.8"),
        Patch(color="#b8b8b8", label="client CPU per operation"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.axvline(0.8, color="grey", linewidth=1, linestyle="--")
    ax.set_xlim(0, max([1.1, *[r + 0.12 for r in ratios + by_cpu]]))
    meta = summary["meta"]
    ax.set_xlabel("asyncecto / raw asyncpg (1.0 = as fast; above: faster; dashed: the 0.8 target)")
    ax.set_title(
        f"asyncecto / raw asyncpg, pools of {meta['pool_size']}: geomean {summary['geomean']:.2f} "
        f"(client CPU {summary['geomean_cpu']:.2f})\n"
        f"median of {meta['rounds']} interleaved rounds; PostgreSQL {meta['postgresql']}, {meta['cpus']} CPUs",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=1000, help="operations per timed call (scaled per workload)")
    parser.add_argument("--only", nargs="+", choices=list(RAW_STATEMENTS), help="run these workloads only")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--chart", type=Path, help="draw the ratios as a PNG bar chart here (needs matplotlib)")
    parser.add_argument("--durable", action="store_true", help="keep synchronous_commit on (commits wait for the disk)")
    parser.add_argument("--url", help="database URL (default: $DATABASE_URL or the local server's asyncecto_bench)")
    parser.add_argument("--replot", type=Path, metavar="JSON", help="only draw --chart from a results file")
    args = parser.parse_args(argv)
    if args.replot is not None:
        summary = json.loads(args.replot.read_text())
        print(report(summary))
        if args.chart is not None:
            chart(summary, args.chart)
            print(f"chart: {args.chart}")
        return dict(summary)
    url = args.url or database_url("asyncecto_bench_suite")
    summary = asyncio.run(run_suite(url, args.rounds, args.ops, args.only, durable=args.durable))
    print(report(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results: {args.json}")
    if args.chart is not None:
        chart(summary, args.chart)
        print(f"chart: {args.chart}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
