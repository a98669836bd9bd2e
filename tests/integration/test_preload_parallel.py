"""Sibling preloads run concurrently outside a transaction and one after another inside one.

The proof is the server's own record, not the wall clock. Each custom preload query calls
``pl_probe`` once per statement: it writes a row to ``pl_probe_log`` with its backend pid and the
server's clock when the call began and ended (inside a transaction that row is one of the
transaction's own writes). A probe can first wait on an advisory lock held by the ``admin``
connection, which watches ``pg_locks``:

- in parallel, the admin lets the lock go only once every sibling waits on it at the same time,
  from distinct backends; that cannot happen unless they were running together, and then their
  intervals overlap by construction;
- with ``in_parallel=False`` each sibling waits on a lock of its own, and whenever one waits it
  is the only one in the server and the only connection checked out;
- inside a transaction or a checkout every probe ran on that one backend, and each interval
  ends before the next begins.

Nothing waits for a length of time; the barrier polls carry only a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.errors import DatabaseError
from asyncecto.query import fragment, from_, preload, where

from ..assoc_schemas import Comment, Permalink, Post, Tag, User

pytestmark = pytest.mark.no_sandbox  # real commits and connections

PROBE_DDL = (
    "CREATE TABLE IF NOT EXISTS pl_probe_log (token text NOT NULL, tag text NOT NULL, pid integer NOT NULL, "
    "started timestamptz NOT NULL, finished timestamptz NOT NULL)",
    """
    CREATE OR REPLACE FUNCTION pl_probe(token text, tag text, lock_key bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        began timestamptz := clock_timestamp();
    BEGIN
        IF lock_key <> 0 THEN
            PERFORM pg_advisory_lock_shared(lock_key);
            PERFORM pg_advisory_unlock_shared(lock_key);
        END IF;
        IF tag = 'boom' THEN
            RAISE EXCEPTION 'probe % failed on purpose', tag USING ERRCODE = 'P0001';
        END IF;
        INSERT INTO pl_probe_log VALUES (token, tag, pg_backend_pid(), began, clock_timestamp());
        RETURN true;
    END $$
    """,
)

SIBLINGS = ("comments", "permalink", "tags")
#: how long to wait for the siblings to meet at the barrier before failing (a deadline, not a measurement)
DEADLINE = 30.0

Log = list[tuple[str, int, Any, Any]]


@pytest.fixture
async def blog(repo: Repo, admin: asyncpg.Connection) -> AsyncIterator[dict[str, Any]]:
    """Two posts, each with comments, a permalink and a tag; the probe function and its log
    (this test's rows are deleted afterwards)."""
    for statement in PROBE_DDL:
        await admin.execute(statement)
    users = await repo.query("INSERT INTO bl_users (name) VALUES ('ann') RETURNING id")
    uid = users.rows[0][0]
    posts = await repo.query(
        "INSERT INTO bl_posts (title, author_id) VALUES ('one', $1), ('two', $1) RETURNING id", [uid]
    )
    ids = [r[0] for r in posts.rows]
    for pid in ids:
        await repo.query("INSERT INTO bl_comments (text, post_id) VALUES ('a', $1), ('b', $1)", [pid])
        await repo.query("INSERT INTO bl_permalinks (url, post_id) VALUES ('/p/' || $1::bigint, $1)", [pid])
    tag = await repo.query("INSERT INTO bl_tags (name) VALUES ('t') RETURNING id")
    for pid in ids:
        await repo.query("INSERT INTO bl_posts_tags (post_id, tag_id) VALUES ($1, $2)", [pid, tag.rows[0][0]])
    token = uuid.uuid4().hex
    yield {"post_ids": ids, "token": token}
    await admin.execute("DELETE FROM pl_probe_log WHERE token = $1", token)


def probed(token: str, keys: Mapping[str, int] | None = None, fail: str | None = None) -> dict[str, Any]:
    """Custom preload queries for every sibling, each calling the probe once per statement
    (an uncorrelated scalar subquery is an InitPlan: evaluated once, whatever the row count).
    A sibling named in ``keys`` first waits on that advisory lock; the one named ``fail`` raises
    in the server."""
    keys = keys or {}

    def q(schema: type, tag: str) -> Any:
        name, key = ("boom" if tag == fail else tag), keys.get(tag, 0)
        return from_(schema) | where(lambda s: fragment("(SELECT pl_probe(?, ?, ?))", token, name, key))

    return {"comments": q(Comment, "comments"), "permalink": q(Permalink, "permalink"), "tags": q(Tag, "tags")}


async def probe_log(fetch: Callable[[str, list[Any]], Awaitable[list[Any]]], token: str) -> Log:
    rows = await fetch(
        "SELECT tag, pid, started, finished FROM pl_probe_log WHERE token = $1 ORDER BY started", [token]
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def repo_fetch(repo: Repo, sql: str, params: list[Any]) -> list[Any]:
    return list((await repo.query(sql, params)).rows)


def assert_in_sequence(log: Log) -> None:
    assert sorted(tag for tag, *_ in log) == sorted(SIBLINGS), log
    for (_, _, _, end), (_, _, start, _) in itertools.pairwise(log):
        assert end <= start, f"two sibling preloads overlapped: {log}"


def assert_loaded(posts: list[Post], post_ids: list[int]) -> None:
    assert sorted(p.id for p in posts) == sorted(post_ids)  # type: ignore[type-var]
    for p in posts:
        assert sorted(c.text for c in p.comments) == ["a", "b"]  # type: ignore[type-var]
        assert p.permalink is not None and p.permalink.url == f"/p/{p.id}"
        assert [t.name for t in p.tags] == ["t"]


@pytest.fixture
async def barrier(admin: asyncpg.Connection) -> AsyncIterator[int]:
    """An advisory lock key held by the admin connection for the test (released at the end)."""
    key = random.randint(1, 2**31 - 1 - len(SIBLINGS))  # the next keys are free for the test too
    await admin.execute("SELECT pg_advisory_lock($1)", key)
    try:
        yield key
    finally:
        await admin.execute("SELECT pg_advisory_unlock_all()")


async def waiters(admin: asyncpg.Connection, *keys: int) -> list[tuple[int, int]]:
    """(backend pid, key) of every backend waiting, right now, for one of the advisory locks ``keys``."""
    rows = await admin.fetch(
        "SELECT pid, objid::bigint AS key FROM pg_locks "
        "WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid::bigint = ANY($1::bigint[]) "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        list(keys),
    )
    return sorted((r["pid"], r["key"]) for r in rows)


async def wait_for_waiters(admin: asyncpg.Connection, n: int, *keys: int) -> list[tuple[int, int]]:
    """Poll ``pg_locks`` until ``n`` backends wait for ``keys`` together (fail after the deadline)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while True:
        found = await waiters(admin, *keys)
        if len(found) >= n:
            return found
        assert loop.time() < give_up, f"only {len(found)} of {n} sibling preloads ever ran at once: {found}"
        await asyncio.sleep(0.01)


PRELOAD_WAYS = ["repo.preload", "query preload"]


async def load(repo: Repo, way: str, spec: dict[str, Any], post_ids: list[int], **opts: Any) -> list[Post]:
    if way == "repo.preload":
        posts = await repo.all(from_(Post) | where(lambda p: p.id.in_(post_ids)))
        return await repo.preload(posts, spec, **opts)
    return await repo.all(from_(Post) | where(lambda p: p.id.in_(post_ids)) | preload(spec))


# -- outside a transaction: together ------------------------------------------------------------


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_siblings_overlap_on_distinct_backends_outside_a_transaction(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    token = blog["token"]
    work = asyncio.ensure_future(load(repo, way, probed(token, dict.fromkeys(SIBLINGS, barrier)), blog["post_ids"]))
    try:
        met = [pid for pid, _ in await wait_for_waiters(admin, len(SIBLINGS), barrier)]
        await admin.execute("SELECT pg_advisory_unlock($1)", barrier)
        posts = await work
    finally:
        if not work.done():
            work.cancel()
    assert_loaded(posts, blog["post_ids"])
    log = await probe_log(lambda sql, p: admin.fetch(sql, *p), token)
    assert sorted(tag for tag, *_ in log) == sorted(SIBLINGS)
    pids = sorted(pid for _, pid, _, _ in log)
    assert pids == met, "the backends that met at the barrier are the ones that ran the preloads"
    assert len(set(pids)) == len(SIBLINGS), f"siblings shared a backend: {log}"
    for tag_a, _, start_a, end_a in log:  # every pair of intervals overlaps
        for tag_b, _, start_b, end_b in log:
            assert start_a < end_b and start_b < end_a, f"{tag_a} and {tag_b} did not overlap: {log}"
    assert repo.pool_stats()["in_use"] == 0


async def test_nested_siblings_overlap_too(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int
) -> None:
    """Siblings one level down (under a user's posts) run together as well."""
    token = blog["token"]
    user_id = (await repo.query("SELECT author_id FROM bl_posts LIMIT 1")).rows[0][0]
    user = await repo.get(User, user_id)
    spec = {"posts": probed(token, dict.fromkeys(SIBLINGS, barrier))}
    work = asyncio.ensure_future(repo.preload(user, spec))
    try:
        await wait_for_waiters(admin, len(SIBLINGS), barrier)
        await admin.execute("SELECT pg_advisory_unlock($1)", barrier)
        loaded = await work
    finally:
        if not work.done():
            work.cancel()
    assert loaded is not None
    assert_loaded(loaded.posts, blog["post_ids"])
    log = await probe_log(lambda sql, p: admin.fetch(sql, *p), token)
    assert len({pid for _, pid, _, _ in log}) == len(SIBLINGS)


# -- in sequence: in_parallel=False, a transaction, a checkout -----------------------------------


async def test_in_parallel_false_runs_siblings_one_after_another(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int
) -> None:
    """Each sibling waits on a lock of its own, all held by the admin. Whenever one is waiting in
    the server it is the only one there and the only connection checked out; the admin lets it
    go, and only then does the next one arrive."""
    token = blog["token"]
    keys = {tag: barrier + i for i, tag in enumerate(SIBLINGS)}
    for key in keys.values():
        if key != barrier:
            await admin.execute("SELECT pg_advisory_lock($1)", key)
    work = asyncio.ensure_future(load(repo, "repo.preload", probed(token, keys), blog["post_ids"], in_parallel=False))
    released: list[int] = []
    try:
        for _ in SIBLINGS:
            waiting = await wait_for_waiters(admin, 1, *[k for k in keys.values() if k not in released])
            assert len(waiting) == 1, f"siblings in the server together: {waiting}"
            assert repo.pool_stats()["in_use"] == 1
            [(_, key)] = waiting
            await admin.execute("SELECT pg_advisory_unlock($1)", key)
            released.append(key)
        posts = await work
    finally:
        if not work.done():
            work.cancel()
    assert_loaded(posts, blog["post_ids"])
    log = await probe_log(lambda sql, p: admin.fetch(sql, *p), token)
    assert_in_sequence(log)
    assert [keys[tag] for tag, *_ in log] == released  # each ran when, and only after, its lock was let go


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_siblings_run_in_turn_on_the_transactions_connection(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], way: str
) -> None:
    token = blog["token"]
    async with repo.transaction():
        backend = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        posts = await load(repo, way, probed(token), blog["post_ids"])
        log = await probe_log(lambda sql, p: repo_fetch(repo, sql, p), token)
        # the probe's rows are the transaction's own writes: nobody else sees them yet
        assert await probe_log(lambda sql, p: admin.fetch(sql, *p), token) == []
        await repo.rollback()
    assert_loaded(posts, blog["post_ids"])
    assert_in_sequence(log)
    assert {pid for _, pid, _, _ in log} == {backend}
    assert await probe_log(lambda sql, p: admin.fetch(sql, *p), token) == []  # rolled back with it


async def test_siblings_run_in_turn_inside_a_checkout(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any]
) -> None:
    token = blog["token"]
    async with repo.checkout():
        backend = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
        posts = await load(repo, "repo.preload", probed(token), blog["post_ids"])
    assert_loaded(posts, blog["post_ids"])
    log = await probe_log(lambda sql, p: admin.fetch(sql, *p), token)  # a checkout commits each statement
    assert_in_sequence(log)
    assert {pid for _, pid, _, _ in log} == {backend}


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_preloads_in_a_transaction_see_its_uncommitted_rows(
    repo: Repo, admin: asyncpg.Connection, way: str
) -> None:
    async with repo.transaction():
        pid = (await repo.query("INSERT INTO bl_posts (title) VALUES ('draft') RETURNING id")).rows[0][0]
        await repo.query("INSERT INTO bl_comments (text, post_id) VALUES ('a', $1), ('b', $1)", [pid])
        await repo.query("INSERT INTO bl_permalinks (url, post_id) VALUES ('/p/' || $1::bigint, $1)", [pid])
        tag = (await repo.query("INSERT INTO bl_tags (name) VALUES ('t') RETURNING id")).rows[0][0]
        await repo.query("INSERT INTO bl_posts_tags (post_id, tag_id) VALUES ($1, $2)", [pid, tag])
        assert await admin.fetchval("SELECT count(*) FROM bl_comments WHERE post_id = $1", pid) == 0
        if way == "repo.preload":
            posts = await repo.preload(await repo.all(Post), *SIBLINGS)
        else:
            posts = await repo.all(from_(Post) | preload(*SIBLINGS))
        await repo.rollback()
    assert_loaded(posts, [pid])
    assert await admin.fetchval("SELECT count(*) FROM bl_posts") == 0


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("way", PRELOAD_WAYS)
async def test_a_failing_sibling_raises_itself_and_the_others_are_cancelled_in_the_server(
    repo: Repo, admin: asyncpg.Connection, blog: dict[str, Any], barrier: int, way: str
) -> None:
    """One sibling fails while the others are waiting in the server: the caller gets that error
    itself (no exception group), the others are cancelled there and every connection comes back."""
    token = blog["token"]
    hold = barrier + 1  # the failing sibling waits on a key of its own, held by the admin too
    await admin.execute("SELECT pg_advisory_lock($1)", hold)
    spec = probed(token, {"comments": barrier, "tags": barrier, "permalink": hold}, fail="permalink")
    work = asyncio.ensure_future(load(repo, way, spec, blog["post_ids"]))
    try:
        await wait_for_waiters(admin, len(SIBLINGS) - 1, barrier)
        await wait_for_waiters(admin, 1, hold)
        await admin.execute("SELECT pg_advisory_unlock($1)", hold)  # only the failing one goes on
        with pytest.raises(DatabaseError) as info:
            await work
    finally:
        if not work.done():
            work.cancel()
    assert not isinstance(info.value, BaseExceptionGroup)
    assert info.value.sqlstate == "P0001" and "probe boom failed on purpose" in str(info.value)
    assert repo.pool_stats()["in_use"] == 0
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while await waiters(admin, barrier):  # the server was told to stop the blocked queries
        assert loop.time() < give_up, "a cancelled sibling preload kept running in the server"
        await asyncio.sleep(0.01)
    assert await probe_log(lambda sql, p: admin.fetch(sql, *p), token) == []  # none of them finished
    assert len(await repo.all(Post)) == 2  # the pool still serves


async def test_a_failing_sibling_inside_a_transaction_raises_itself(repo: Repo, blog: dict[str, Any]) -> None:
    token = blog["token"]
    with pytest.raises(DatabaseError) as info:
        async with repo.transaction():
            await load(repo, "repo.preload", probed(token, fail="comments"), blog["post_ids"])
    assert not isinstance(info.value, BaseExceptionGroup) and info.value.sqlstate == "P0001"
    assert repo.pool_stats()["in_use"] == 0
    assert not repo.in_transaction()
