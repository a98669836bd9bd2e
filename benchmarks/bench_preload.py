"""asyncecto's has-many preload against raw asyncpg, in the same run, as throughput ratios
(asyncecto / asyncpg).

Workloads (200 posts, 10 comments each):
- ``query``: ``repo.all(from_(Post) | preload("comments"))`` vs fetching the posts, then their
  comments with ``WHERE post_id = ANY($1)``, and grouping the comment records into a list per
  post (each post a dict with its ``comments``)
- ``loaded``: ``repo.preload(posts, "comments")`` of 200 posts already loaded vs the second
  query and the grouping alone

Each raw side is measured two ways: through an asyncpg pool of 10 sending no reset query on
release (one acquire for both queries; asyncecto's pool has 10 too) and on one held connection
(the driver's floor). In each round the contenders run back to back, in alternating order, and
the round's ratio is taken; the median ratio over the rounds is reported, so a machine whose
speed drifts during the run does not skew it. A ratio of 1.0 means as fast as asyncpg; the target is at least 0.6.

    python benchmarks/bench_preload.py [--rounds 7] [--runs 100]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from _measure import POOL_SIZE, measure, raw_pool, report

from asyncecto import Repo, has_many, schema
from asyncecto.embedded import database_url
from asyncecto.query import from_, preload
from asyncecto.repo import build_config


@schema("bench_pl_posts")
class Post:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many("Comment")


@schema("bench_pl_comments")
class Comment:
    id: int | None = None
    post_id: int | None = None
    body: str | None = None


POSTS = 200
PER_POST = 10
POSTS_SQL = "SELECT id, title FROM bench_pl_posts"
COMMENTS_SQL = "SELECT id, post_id, body FROM bench_pl_comments WHERE post_id = ANY($1)"

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def setup(repo: Repo) -> None:
    await repo.query("DROP TABLE IF EXISTS bench_pl_comments, bench_pl_posts")
    await repo.query("CREATE TABLE bench_pl_posts (id bigserial PRIMARY KEY, title text)")
    await repo.query(
        "CREATE TABLE bench_pl_comments (id bigserial PRIMARY KEY, "
        "post_id bigint NOT NULL REFERENCES bench_pl_posts(id), body text)"
    )
    await repo.query("CREATE INDEX ON bench_pl_comments (post_id)")
    await repo.query(
        "INSERT INTO bench_pl_posts (title) SELECT 'post ' || g FROM generate_series(1, $1::int) g", [POSTS]
    )
    await repo.query(
        "INSERT INTO bench_pl_comments (post_id, body) "
        "SELECT p, 'comment ' || p || '.' || c FROM generate_series(1, $1::int) p, generate_series(1, $2::int) c",
        [POSTS, PER_POST],
    )
    await repo.query("ANALYZE bench_pl_posts")
    await repo.query("ANALYZE bench_pl_comments")


def group(posts: list[Any], comments: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """Each post as a dict with the list of its comment records (what a hand-written preload builds)."""
    by_post: dict[int, list[asyncpg.Record]] = {}
    for c in comments:
        by_post.setdefault(c["post_id"], []).append(c)
    return [{"id": p["id"], "title": p["title"], "comments": by_post.get(p["id"], [])} for p in posts]


async def query_raw(conn: Conn) -> list[dict[str, Any]]:
    posts = await conn.fetch(POSTS_SQL)
    return group(posts, await conn.fetch(COMMENTS_SQL, [p["id"] for p in posts]))


async def query_pool(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return await query_raw(conn)


async def loaded_raw(conn: Conn, posts: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return group(posts, await conn.fetch(COMMENTS_SQL, [p["id"] for p in posts]))


async def loaded_pool(pool: asyncpg.Pool, posts: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return group(posts, await pool.fetch(COMMENTS_SQL, [p["id"] for p in posts]))


async def main(rounds: int, runs: int) -> None:
    url = database_url("asyncecto_bench")
    repo = Repo(url, pool_size=POOL_SIZE)
    await repo.storage_up()
    kwargs = build_config(url).dsn_kwargs()
    pool = await raw_pool(kwargs)
    conn = await asyncpg.connect(**kwargs)

    async with repo:
        await setup(repo)
        with_comments = from_(Post) | preload("comments")
        posts = await repo.all(Post)
        raw_posts = await conn.fetch(POSTS_SQL)
        # sanity: both sides build the same posts and comments
        ours = sorted((p.id, sorted(c.id for c in p.comments)) for p in await repo.all(with_comments))
        theirs = sorted((p["id"], sorted(c["id"] for c in p["comments"])) for p in await query_raw(conn))
        assert ours == theirs and len(ours) == POSTS and all(len(c) == PER_POST for _, c in ours)
        again = await repo.preload(posts, "comments")
        assert sorted((p.id, sorted(c.id for c in p.comments)) for p in again) == theirs

        contenders: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
            "query": {
                "asyncecto": lambda: repo.all(with_comments),
                "asyncpg pool": lambda: query_pool(pool),
                "asyncpg conn": lambda: query_raw(conn),
            },
            "loaded": {
                "asyncecto": lambda: repo.preload(posts, "comments"),
                "asyncpg pool": lambda: loaded_pool(pool, raw_posts),
                "asyncpg conn": lambda: loaded_raw(conn, raw_posts),
            },
        }
        results = await measure(contenders, dict.fromkeys(contenders, runs), rounds)

    await pool.close()
    await conn.close()

    report(f"asyncecto preload ({POSTS} posts x {PER_POST} comments) vs raw asyncpg", rounds, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.runs))
