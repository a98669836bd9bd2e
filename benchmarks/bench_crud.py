"""asyncecto against raw asyncpg, in the same run, as throughput ratios (asyncecto / asyncpg).

Workloads:
- ``get``: one row by primary key, sequentially (``repo.get`` vs ``fetchrow``)
- ``all_10k``: 10,000 rows into structs (``repo.all`` vs ``fetch`` returning records)
- ``filtered``: a query built each time (``where`` with two conditions, ``order_by``, ``limit 10``)
  vs ``fetch`` of the same SQL text

Each raw side is measured two ways: through an asyncpg pool (what a service uses:
acquire, query, release with its reset) and on one held connection (the driver's
floor). In each round the contenders run back to back, in alternating order, and
the round's ratio is taken; the median ratio over the rounds is reported, so a
machine whose speed drifts during the run does not skew it. A ratio of 1.0 means
as fast as asyncpg; the target is at least 0.7.

    python benchmarks/bench_crud.py [--rounds 7] [--gets 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Awaitable, Callable

import asyncpg
from _measure import measure, report

from asyncecto import Repo, schema
from asyncecto.embedded import database_url
from asyncecto.query import from_, limit, order_by, where
from asyncecto.repo import build_config


@schema("bench_weather")
class Weather:
    id: int | None = None
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


@schema("bench_posts")
class Post:
    id: int | None = None
    title: str | None = None


@schema("bench_comments")
class Comment:
    id: int | None = None
    post_id: int | None = None
    body: str | None = None


ROWS = 10_000
POST_SQL = "INSERT INTO bench_posts (title) VALUES ($1) RETURNING id"
COMMENT_SQL = "INSERT INTO bench_comments (post_id, body) VALUES ($1, $2) RETURNING id"
COLUMNS = "id, city, temp_lo, temp_hi, prcp"
GET_SQL = f"SELECT {COLUMNS} FROM bench_weather WHERE id = $1"
ALL_SQL = f"SELECT {COLUMNS} FROM bench_weather"
FILTER_SQL = f"SELECT {COLUMNS} FROM bench_weather WHERE temp_lo > $1 AND prcp < $2 ORDER BY temp_hi DESC, id LIMIT 10"


def filtered(lo: int, wet: float) -> object:
    return (
        from_(Weather)
        | where(lambda w: (w.temp_lo > lo) & (w.prcp < wet))
        | order_by(desc="temp_hi", asc="id")
        | limit(10)
    )


async def setup(repo: Repo) -> None:
    await repo.query("DROP TABLE IF EXISTS bench_weather")
    await repo.query(
        "CREATE TABLE bench_weather (id bigserial PRIMARY KEY, city varchar(255), temp_lo integer, "
        "temp_hi integer, prcp double precision)"
    )
    await repo.query(
        "INSERT INTO bench_weather (city, temp_lo, temp_hi, prcp) "
        "SELECT 'city ' || g, g % 40 - 10, g % 40, (g % 7) * 0.25 FROM generate_series(1, $1::int) g",
        [ROWS],
    )
    await repo.query("ANALYZE bench_weather")
    await repo.query("DROP TABLE IF EXISTS bench_comments, bench_posts")
    await repo.query("CREATE TABLE bench_posts (id bigserial PRIMARY KEY, title text)")
    await repo.query(
        "CREATE TABLE bench_comments (id bigserial PRIMARY KEY, post_id bigint REFERENCES bench_posts(id), body text)"
    )


async def parent_and_children(repo: Repo) -> None:
    """One transaction: a post and three comments (the issue's transaction workload)."""
    async with repo.transaction():
        post = await repo.insert(Post(title="hello"))
        for i in range(3):
            await repo.insert(Comment(post_id=post.id, body=f"comment {i}"))


async def parent_and_children_raw(conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
    async with conn.transaction():
        post_id = await conn.fetchval(POST_SQL, "hello")
        for i in range(3):
            await conn.fetchval(COMMENT_SQL, post_id, f"comment {i}")


async def parent_and_children_pool(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await parent_and_children_raw(conn)


async def main(rounds: int, gets: int) -> None:
    url = database_url("asyncecto_bench")
    repo = Repo(url, pool_size=4)
    await repo.storage_up()
    kwargs = build_config(url).dsn_kwargs()
    pool = await asyncpg.create_pool(min_size=1, max_size=4, **kwargs)
    conn = await asyncpg.connect(**kwargs)
    ids = [random.randint(1, ROWS) for _ in range(gets)]
    it = iter(ids * (rounds * 10))

    async with repo:
        await setup(repo)
        # sanity: both sides see the same data
        assert (await repo.get(Weather, 1)) is not None and await conn.fetchrow(GET_SQL, 1) is not None
        assert len(await repo.all(Weather)) == len(await conn.fetch(ALL_SQL)) == ROWS
        ours = [w.id for w in await repo.all(filtered(5, 1.0))]  # type: ignore[arg-type]
        assert ours == [r["id"] for r in await conn.fetch(FILTER_SQL, 5, 1.0)] and len(ours) == 10
        los = [random.randint(-10, 20) for _ in range(gets)]
        lo_it = iter(los * (rounds * 10))

        contenders: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
            "get": {
                "asyncecto": lambda: repo.get(Weather, next(it)),
                "asyncpg pool": lambda: pool.fetchrow(GET_SQL, next(it)),
                "asyncpg conn": lambda: conn.fetchrow(GET_SQL, next(it)),
            },
            "all_10k": {
                "asyncecto": lambda: repo.all(Weather),
                "asyncpg pool": lambda: pool.fetch(ALL_SQL),
                "asyncpg conn": lambda: conn.fetch(ALL_SQL),
            },
            "filtered": {
                "asyncecto": lambda: repo.all(filtered(next(lo_it), 1.0)),  # type: ignore[arg-type]
                "asyncpg pool": lambda: pool.fetch(FILTER_SQL, next(lo_it), 1.0),
                "asyncpg conn": lambda: conn.fetch(FILTER_SQL, next(lo_it), 1.0),
            },
            "tx_1p3c": {
                "asyncecto": lambda: parent_and_children(repo),
                "asyncpg pool": lambda: parent_and_children_pool(pool),
                "asyncpg conn": lambda: parent_and_children_raw(conn),
            },
        }
        counts = {"get": gets, "all_10k": max(gets // 100, 10), "filtered": gets // 2, "tx_1p3c": gets // 4}
        results = await measure(contenders, counts, rounds)

    await pool.close()
    await conn.close()

    report("asyncecto vs raw asyncpg", rounds, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--gets", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.gets))
