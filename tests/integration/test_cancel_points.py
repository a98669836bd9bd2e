"""Issue 17: a cancellation at any point of a transaction's life belongs to its scope, returns the
connection, leaves no session in a transaction and writes all or nothing; cleanup is bounded.

Every point runs under five cancellers: ``task.cancel()``, ``asyncio.timeout``, anyio's
``move_on_after``, ``fail_after`` and ``CancelScope.cancel()``. Each fires once the point is
reached (a proxy holding the statement, a lock wait seen in ``pg_stat_activity``, a waiter in the
pool), never on a guessed timer. Shared server only: nothing here freezes or kills a backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any

import anyio
import asyncpg
import pytest

from asyncecto import Repo, has_many, schema
from asyncecto.errors import AsyncEctoError, CommitOutcomeUnknownError, ConnectionLostError, RepoStateError
from tests._gc import new_objects_only
from tests._pg import empty_tables_sql, pg_pool

from .._proxy import PgProxy, sql_matches, upstream_of, url_through

APP = "asyncecto-cancel-points"
FACTOR = float(os.environ.get("ASYNCECTO_TIMING_FACTOR", "1"))

DDL = [
    "CREATE TABLE IF NOT EXISTS p17_cancel (id int PRIMARY KEY, note text)",
    # a COMMIT that takes 0.5 s per row: a deferred constraint trigger sleeping
    "CREATE TABLE IF NOT EXISTS p17_slow (id int PRIMARY KEY)",
    """CREATE OR REPLACE FUNCTION p17_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$""",
    "DROP TRIGGER IF EXISTS p17_slow_commit ON p17_slow",
    """CREATE CONSTRAINT TRIGGER p17_slow_commit AFTER INSERT ON p17_slow
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION p17_slow_commit()""",
]

DDL += [
    "CREATE TABLE IF NOT EXISTS p17_author (id int PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS p17_post (id int PRIMARY KEY, author_id int)",
    "CREATE TABLE IF NOT EXISTS p17_book (id int PRIMARY KEY, author_id int)",
]

FLAVOURS = ["task.cancel", "asyncio.timeout", "anyio.move_on_after", "anyio.fail_after", "anyio.CancelScope.cancel"]


def _connect_kwargs(url: str) -> dict[str, Any]:
    from asyncecto.repo import build_config

    return build_config(url).dsn_kwargs()


_EMPTY = empty_tables_sql(("p17_cancel", "p17_slow", "p17_author", "p17_post", "p17_book"))


@pytest.fixture(scope="module")
def tables(database_url: str) -> Iterator[str]:
    async def setup() -> None:
        conn = await asyncpg.connect(**_connect_kwargs(database_url))
        try:
            for statement in DDL:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(setup())
    yield database_url


@pytest.fixture
async def pg(tables: str) -> AsyncIterator[asyncpg.Connection]:
    """An admin connection beside the repo; the tables start empty."""
    conn = await asyncpg.connect(**_connect_kwargs(tables))
    await conn.execute(_EMPTY)
    try:
        yield conn
    finally:
        await conn.execute(_EMPTY)
        await conn.close()


@pytest.fixture(autouse=True)
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Nothing reaches the loop's exception handler (an unretrieved task error, say); no ResourceWarning."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    with new_objects_only():  # the collection walks what the test allocated, not the whole heap
        yield errors
        gc.collect()
    loop.set_exception_handler(previous)
    assert errors == []


def make_repo(url: str, **options: Any) -> Repo:
    return Repo(url, server_settings={"application_name": APP}, **options)


def via(proxy: PgProxy, url: str) -> str:
    return url_through(url, port=proxy.port)


def upstream(url: str) -> tuple[str, int] | str:
    return upstream_of(url)


async def app_sessions(pg: asyncpg.Connection, *states: str) -> list[Any]:
    rows: list[Any] = await pg.fetch(
        "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE application_name = $1 "
        "AND datname = current_database() AND pid <> pg_backend_pid() AND state LIKE ANY($2::text[])",
        APP,
        list(states),
    )
    return rows


async def settle(repo: Repo, pg: asyncpg.Connection, within: float = 1.0) -> None:
    """The pool is whole and no session of the app is in a transaction or running, within ``within`` s."""
    deadline = time.monotonic() + within * FACTOR
    while True:
        stats = repo.pool_stats()
        busy = await app_sessions(pg, "idle in transaction%", "active")
        if stats["in_use"] == 0 and stats["size"] == stats["idle"] and not busy:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not settled within {within}s: pool {stats}, sessions {[dict(r) for r in busy]}")
        await asyncio.sleep(0.02)


async def rows(pg: asyncpg.Connection, table: str = "p17_cancel") -> int:
    n: int = await pg.fetchval(f"SELECT count(*) FROM {table}")
    return n


async def poll(check: Callable[[], Awaitable[bool]], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within * FACTOR
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"the point was never reached: {what}")
        await asyncio.sleep(0.01)


async def cancel_at(
    flavour: str,
    body: Callable[[], Coroutine[Any, Any, None]],
    reached: Callable[[], Awaitable[object]],
    then: Callable[[], Awaitable[object]] | None = None,
) -> float:
    """Run ``body``; once ``reached()`` returns, cancel it the ``flavour`` way (then run ``then``).

    Asserts the cancellation surfaced as the caller's own: caught by its scope, or the task
    cancelled, or the canceller's own TimeoutError (never a library error); nothing escaped.
    Returns the seconds from the cancellation to the body's end.
    """
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    before = me.cancelling()
    fired: list[float] = []

    async def trigger(action: Callable[[], object]) -> None:
        await reached()
        fired.append(time.monotonic())
        action()
        if then is not None:
            await then()

    trig: asyncio.Task[None] | None = None
    try:
        if flavour == "task.cancel":
            task = asyncio.create_task(body())
            trig = asyncio.create_task(trigger(task.cancel))
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
        elif flavour == "asyncio.timeout":
            with pytest.raises(TimeoutError) as info:
                async with asyncio.timeout(None) as cm:
                    trig = asyncio.create_task(trigger(lambda: cm.reschedule(loop.time())))
                    await body()
            assert not isinstance(info.value, AsyncEctoError)
            assert cm.expired()
        elif flavour in ("anyio.move_on_after", "anyio.fail_after"):
            if flavour == "anyio.move_on_after":
                with anyio.move_on_after(None) as scope:
                    trig = asyncio.create_task(trigger(lambda: setattr(scope, "deadline", anyio.current_time())))
                    await body()
            else:
                with pytest.raises(TimeoutError) as info, anyio.fail_after(None) as scope:
                    trig = asyncio.create_task(trigger(lambda: setattr(scope, "deadline", anyio.current_time())))
                    await body()
                assert not isinstance(info.value, AsyncEctoError)
            assert scope.cancelled_caught
        else:
            assert flavour == "anyio.CancelScope.cancel"
            with anyio.CancelScope() as scope:
                trig = asyncio.create_task(trigger(scope.cancel))
                await body()
            assert scope.cancelled_caught
        ended = time.monotonic()
        assert trig is not None
        await trig
    finally:
        if trig is not None and not trig.done():
            trig.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trig
    assert me.cancelling() == before, "a cancellation escaped its scope"
    return ended - fired[0]


async def insert(repo: Repo, id_: int, table: str = "p17_cancel") -> None:
    if table == "p17_cancel":
        await repo.query("INSERT INTO p17_cancel (id, note) VALUES ($1, 'x')", [id_])
    else:
        await repo.query(f"INSERT INTO {table} (id) VALUES ($1)", [id_])


# ------------------------------------------------------------------------------------------------
# bullet 1: a cancellation during COMMIT belongs to its scope; no busy loop while cleanup runs
# ------------------------------------------------------------------------------------------------


async def _commit_running(pg: asyncpg.Connection) -> None:
    async def check() -> bool:
        return any(r["query"] == "COMMIT" for r in await app_sessions(pg, "active"))

    await poll(check, "COMMIT running on the server")


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_issue17_anyio_scope_cancelled_during_commit_is_caught_by_its_scope(
    tables: str, pg: asyncpg.Connection, flavour: str
) -> None:
    repo = make_repo(tables, pool_size=2)
    txs: list[Any] = []

    async def body() -> None:
        async with repo.transaction() as tx:
            txs.append(tx)
            await insert(repo, 1, "p17_slow")

    async with repo:
        took = await cancel_at(flavour, body, lambda: _commit_running(pg))
        # the COMMIT ran to its end (0.5 s, within cleanup_timeout); the caller then got its cancellation
        assert took < 3 * FACTOR
        assert txs[0].committed is True
        assert await rows(pg, "p17_slow") == 1
        await settle(repo, pg)
        assert repo.pool_stats()["terminated"] == 0


@pytest.mark.parametrize("flavour", ["anyio.move_on_after", "anyio.fail_after", "anyio.CancelScope.cancel"])
async def test_issue17_no_busy_loop_while_waiting_for_cleanup(
    tables: str, pg: asyncpg.Connection, flavour: str
) -> None:
    repo = make_repo(tables, pool_size=2)

    async def body() -> None:
        async with repo.transaction():
            await insert(repo, 1, "p17_slow")
            await insert(repo, 2, "p17_slow")  # COMMIT: 2 x 0.5 s

    async with repo:
        cpu = time.process_time()
        took = await cancel_at(flavour, body, lambda: _commit_running(pg))
        cpu = time.process_time() - cpu
        assert took > 0.5  # the caller did wait for the COMMIT
        # a loop re-catching anyio's level-triggered cancellation burns a whole core for the wait
        assert cpu < 0.1 * max(FACTOR, 1) + 0.1 * took, f"{cpu:.3f}s of CPU over a {took:.2f}s wait"
        assert await rows(pg, "p17_slow") == 2
        await settle(repo, pg)


# ------------------------------------------------------------------------------------------------
# bullet 2: a transaction cancelled while it begins returns its connection
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["anyio", "asyncio"])
async def test_issue17_cancelled_begin_returns_its_connection(
    tables: str, pg: asyncpg.Connection, flavour: str
) -> None:
    repo = make_repo(tables, pool_size=2)
    rng = random.Random(17)
    cancelled = 0
    async with repo:
        for _ in range(1500):
            delay = rng.uniform(0, 0.0015)
            if flavour == "anyio":
                with anyio.move_on_after(delay) as scope:
                    async with repo.transaction():
                        await repo.query("SELECT 1")
                cancelled += scope.cancelled_caught
            else:
                try:
                    async with asyncio.timeout(delay):
                        async with repo.transaction():
                            await repo.query("SELECT 1")
                except TimeoutError as exc:
                    assert not isinstance(exc, AsyncEctoError)
                    cancelled += 1
            me = asyncio.current_task()
            assert me is not None and me.cancelling() == 0
        await settle(repo, pg)
        stats = repo.pool_stats()
        assert stats["size"] <= 2
        assert cancelled > 100  # the delays did cut most transactions short, at every point
        # every connection still works
        for _ in range(4):
            async with repo.transaction():
                assert (await repo.query("SELECT 1")).rows == [(1,)]
        await settle(repo, pg)


# ------------------------------------------------------------------------------------------------
# the points: a statement held by the proxy (BEGIN, COMMIT, ROLLBACK, RELEASE, the release reset)
# ------------------------------------------------------------------------------------------------

CLEANUP = 0.3  # cleanup_timeout of the repos behind the proxy


async def _begin(repo: Repo, txs: list[Any]) -> None:
    async with repo.transaction() as tx:
        txs.append(tx)
        await insert(repo, 1)


async def _rollback(repo: Repo, txs: list[Any]) -> None:
    async with repo.transaction() as tx:
        txs.append(tx)
        await insert(repo, 1)
        raise ValueError("the block fails")


async def _release(repo: Repo, txs: list[Any]) -> None:
    async with repo.transaction() as outer:
        txs.append(outer)
        await insert(repo, 1)
        async with repo.transaction():
            await insert(repo, 2)
        await insert(repo, 3)


async def _checkin(repo: Repo, txs: list[Any]) -> None:
    async with repo.checkout():
        await repo.query("SET TIME ZONE 'UTC'")  # session state: the release resets it


#: point: (the statement the proxy holds, the block, rows written if the held statement completes)
HELD: dict[str, tuple[str, Callable[[Repo, list[Any]], Coroutine[Any, Any, None]], int]] = {
    "BEGIN": ("BEGIN", _begin, 0),
    "COMMIT": ("COMMIT", _begin, 1),
    "ROLLBACK": ("ROLLBACK", _rollback, 0),
    "savepoint release": ("RELEASE", _release, 0),
    "checkin": ("RESET", _checkin, 0),
}


@pytest.mark.parametrize("release", ["late", "never"])
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("point", list(HELD))
async def test_issue17_cancel_while_a_statement_is_held(
    tables: str, pg: asyncpg.Connection, point: str, flavour: str, release: str
) -> None:
    keyword, block, written = HELD[point]
    txs: list[Any] = []
    async with PgProxy(upstream(tables)) as proxy:
        repo = make_repo(via(proxy, tables), pool_size=1, cleanup_timeout=CLEANUP)
        async with repo:
            await repo.query("SELECT 1")
            held = proxy.hold(sql_matches(keyword))

            async def release_late() -> None:
                await asyncio.sleep(0.05)
                proxy.release()

            took = await cancel_at(
                flavour, lambda: block(repo, txs), held.wait, release_late if release == "late" else None
            )
            # bounded: the held statement's cleanup deadline, then the connection is cut
            assert took < (CLEANUP + 1.5) * FACTOR
            await settle(repo, pg)
            assert await rows(pg) == (written if release == "late" else 0)
            if point == "COMMIT":
                assert txs[0].committed is (release == "late")
            # the pool goes on: a cut connection was replaced, a finished one reused
            async with repo.transaction():
                await insert(repo, 10)
            stats = repo.pool_stats()
            assert stats["opened"] == (1 if release == "late" else 2), stats
            await settle(repo, pg)


# ------------------------------------------------------------------------------------------------
# the points on the shared server: a statement waiting for a lock, the pool wait, a stream
# ------------------------------------------------------------------------------------------------

LOCK_KEY = 171717


async def _waiting_for_lock(pg: asyncpg.Connection) -> None:
    async def check() -> bool:
        n: int = await pg.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() "
            "AND wait_event_type = 'Lock'",
            APP,
        )
        return n > 0

    await poll(check, "a statement waiting for the advisory lock")


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("where", ["transaction", "pooled"])
async def test_issue17_cancel_during_a_statement(tables: str, pg: asyncpg.Connection, flavour: str, where: str) -> None:
    repo = make_repo(tables, pool_size=2)

    async def body() -> None:
        if where == "pooled":
            await repo.query("SELECT pg_advisory_lock($1)", [LOCK_KEY])
            return
        async with repo.transaction():
            await insert(repo, 1)
            await repo.query("SELECT pg_advisory_lock($1)", [LOCK_KEY])
            await insert(repo, 2)

    await pg.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        async with repo:
            took = await cancel_at(flavour, body, lambda: _waiting_for_lock(pg))
            assert took < 2 * FACTOR
            await settle(repo, pg)
            assert await rows(pg) == 0
            assert repo.pool_stats()["terminated"] == 0  # the server cancelled the statement; nothing cut
    finally:
        await pg.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_issue17_cancel_while_waiting_for_the_pool(tables: str, pg: asyncpg.Connection, flavour: str) -> None:
    repo = make_repo(tables, pool_size=1)
    done = asyncio.Event()
    holding = asyncio.Event()

    async def holder() -> None:
        async with repo.checkout():
            holding.set()
            await done.wait()

    async def body() -> None:
        async with repo.transaction():
            await insert(repo, 1)

    async def waiting() -> None:
        async def check() -> bool:
            return len(pg_pool(repo)._waiters) > 0  # the body is queued for the one connection

        await poll(check, "a waiter in the pool")

    async with repo:
        hold = asyncio.create_task(holder())
        await holding.wait()
        try:
            await cancel_at(flavour, body, waiting)
        finally:
            done.set()
            await hold
        await settle(repo, pg)
        assert await rows(pg) == 0
        async with repo.transaction():
            await insert(repo, 2)
        stats = repo.pool_stats()
        assert (stats["opened"], stats["size"]) == (1, 1), stats  # the same connection, never lost
        await settle(repo, pg)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_issue17_cancel_while_a_connection_opens(tables: str, pg: asyncpg.Connection, flavour: str) -> None:
    async with PgProxy(upstream(tables)) as proxy:
        repo = make_repo(via(proxy, tables), pool_size=2, connect_timeout=10)
        done = asyncio.Event()
        holding = asyncio.Event()

        async def holder() -> None:
            async with repo.checkout():
                holding.set()
                await done.wait()

        async def body() -> None:
            async with repo.transaction():
                await insert(repo, 1)

        async def opening() -> None:
            async def check() -> bool:
                return pg_pool(repo)._opening > 0  # the body is opening a second connection

            await poll(check, "a connection being opened")

        async with repo:
            hold = asyncio.create_task(holder())
            await holding.wait()
            proxy.blackhole()  # the server never answers the new connection's startup
            try:
                await cancel_at(flavour, body, opening)
            finally:
                proxy.pass_through()
                done.set()
                await hold
            await settle(repo, pg)
            assert await rows(pg) == 0
            # the slot came back: two connections can be open at once again
            async with repo.transaction(), repo.checkout():
                await insert(repo, 2)
            both = await asyncio.gather(*(repo.query("SELECT pg_sleep(0.05)") for _ in range(2)))
            assert len(both) == 2
            assert repo.pool_stats()["size"] == 2
            await settle(repo, pg)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_issue17_cancel_during_stream_iteration(tables: str, pg: asyncpg.Connection, flavour: str) -> None:
    from asyncecto.query import from_

    @schema("p17_slow_rows")
    class SlowRow:
        id: int | None = None

    repo = make_repo(tables, pool_size=1)
    first = asyncio.Event()
    seen: list[int] = []

    async def body() -> None:
        async with repo.transaction():
            await insert(repo, 1)
            async for row in repo.stream(from_(SlowRow), max_rows=5):
                assert row.id is not None
                seen.append(row.id)
                first.set()

    await pg.execute(
        "CREATE OR REPLACE VIEW p17_slow_rows AS SELECT g AS id "
        "FROM generate_series(1, 100000) g, LATERAL (SELECT pg_sleep(0.05)) s"
    )
    async with repo:
        took = await cancel_at(flavour, body, first.wait)
        assert took < 2 * FACTOR
        assert 1 <= len(seen) < 100
        await settle(repo, pg)  # no FETCH left running, no cursor's transaction left open
        assert await rows(pg) == 0


@schema("p17_author")
class Author:
    id: int | None = None
    posts: list[AuthorPost] = has_many("AuthorPost", foreign_key="author_id")
    books: list[Book] = has_many("Book", foreign_key="author_id")


@schema("p17_post")
class AuthorPost:
    id: int | None = None
    author_id: int | None = None


@schema("p17_book")
class Book:
    id: int | None = None
    author_id: int | None = None


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("where", ["parallel", "transaction"])
async def test_issue17_cancel_during_preload_children(
    tables: str, pg: asyncpg.Connection, flavour: str, where: str
) -> None:
    await pg.execute("INSERT INTO p17_author VALUES (1), (2)")
    await pg.execute("INSERT INTO p17_post VALUES (1, 1), (2, 2)")
    await pg.execute("INSERT INTO p17_book VALUES (1, 1), (2, 2)")
    repo = make_repo(tables, pool_size=3)

    async def body() -> None:
        authors = await repo.all(Author)
        if where == "parallel":
            await repo.preload(authors, "posts", "books")  # two children, each on a connection of its own
            return
        async with repo.transaction():
            await insert(repo, 1)
            await repo.preload(authors, "posts", "books")  # one after the other, on the transaction's

    locker = await asyncpg.connect(**_connect_kwargs(tables))
    try:
        async with repo:
            async with locker.transaction():
                await locker.execute("LOCK TABLE p17_book IN ACCESS EXCLUSIVE MODE")
                took = await cancel_at(flavour, body, lambda: _waiting_for_lock(pg))
                assert took < 2 * FACTOR
            # the lock goes first: a cancel request that reaches the server between two protocol
            # messages (asyncpg's race, not ours) leaves that statement waiting for it
            await settle(repo, pg)  # both children's connections came back
            assert await rows(pg) == 0
    finally:
        await locker.close()


# ------------------------------------------------------------------------------------------------
# bullet 3: cleanup has a deadline, also when nobody cancels
# ------------------------------------------------------------------------------------------------


async def _fails_in_block(repo: Repo) -> None:
    async with repo.transaction():
        await insert(repo, 1)
        raise ValueError("the block fails")


async def _fails_in_nested_block(repo: Repo) -> None:
    async with repo.transaction():
        await insert(repo, 1)
        async with repo.transaction():
            await insert(repo, 2)
            raise ValueError("the block fails")


async def _dirty_checkout(repo: Repo) -> None:
    async with repo.checkout():
        await repo.query("SET TIME ZONE 'UTC'")
    raise ValueError("the block fails")  # (the checkout's release raised nothing)


@pytest.mark.parametrize(
    ("keyword", "block"),
    [("ROLLBACK", _fails_in_block), ("ROLLBACK TO", _fails_in_nested_block), ("RESET", _dirty_checkout)],
    ids=["ROLLBACK", "ROLLBACK TO SAVEPOINT", "release reset"],
)
async def test_issue17_cleanup_deadline_terminates_a_connection_that_does_not_answer(
    tables: str, pg: asyncpg.Connection, keyword: str, block: Callable[[Repo], Awaitable[None]]
) -> None:
    async with PgProxy(upstream(tables)) as proxy:
        repo = make_repo(via(proxy, tables), pool_size=1, cleanup_timeout=CLEANUP)
        async with repo:
            await repo.query("SELECT 1")
            proxy.hold(sql_matches(keyword))
            started = time.monotonic()
            with pytest.raises(ValueError, match="the block fails") as info:
                await block(repo)
            assert time.monotonic() - started < (CLEANUP + 1.0) * FACTOR
            if keyword != "RESET":
                assert any("failed as well" in note for note in getattr(info.value, "__notes__", []))
            assert proxy.held is not None and proxy.held.is_set()
            await settle(repo, pg)  # the cut connection is gone; the server rolled back
            assert await rows(pg) == 0
            async with repo.transaction():  # a new connection
                await insert(repo, 5)
            assert repo.pool_stats()["opened"] == 2
            assert await rows(pg) == 1


async def test_issue17_savepoint_release_has_a_deadline(tables: str, pg: asyncpg.Connection) -> None:
    async with PgProxy(upstream(tables)) as proxy:
        repo = make_repo(via(proxy, tables), pool_size=1, cleanup_timeout=CLEANUP)
        async with repo:
            await repo.query("SELECT 1")
            proxy.hold(sql_matches("RELEASE"))
            started = time.monotonic()
            with pytest.raises(ConnectionLostError, match="no answer within"):
                async with repo.transaction():
                    await insert(repo, 1)
                    async with repo.transaction() as inner:
                        await insert(repo, 2)
            assert time.monotonic() - started < (CLEANUP + 1.0) * FACTOR
            assert inner.committed is False
            await settle(repo, pg)
            assert await rows(pg) == 0


async def test_issue17_commit_without_an_answer_is_an_unknown_outcome_within_its_deadline(
    tables: str, pg: asyncpg.Connection
) -> None:
    # the client's COMMIT deadline: the repo's timeout (the server's own limit fires first) + cleanup_timeout
    async with PgProxy(upstream(tables)) as proxy:
        repo = make_repo(via(proxy, tables), pool_size=1, timeout=0.3, cleanup_timeout=0.3)
        async with repo:
            await repo.query("SELECT 1")
            proxy.hold(sql_matches("COMMIT"))
            started = time.monotonic()
            with pytest.raises(CommitOutcomeUnknownError, match=r"no answer within 0\.60s") as info:
                async with repo.transaction() as tx:
                    await insert(repo, 1)
            assert time.monotonic() - started < 1.5 * FACTOR
            assert isinstance(info.value.__cause__, ConnectionLostError)
            assert tx.committed is False
            await settle(repo, pg)
            assert await rows(pg) == 0  # the server never saw the COMMIT: it rolled back


# ------------------------------------------------------------------------------------------------
# shutdown waits for in-flight work: a transaction can finish (and always roll back) while closing
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_issue17_in_flight_transaction_finishes_during_stop(
    tables: str, pg: asyncpg.Connection, ending: str
) -> None:
    repo = make_repo(tables, pool_size=2)
    await repo.start()
    inside = asyncio.Event()
    go_on = asyncio.Event()

    async def work() -> None:
        async with repo.transaction():
            await insert(repo, 1)
            inside.set()
            await go_on.wait()
            await insert(repo, 2)  # a statement while the repo is closing
            if ending == "rollback":
                raise ValueError("the block fails")

    task = asyncio.create_task(work())
    await inside.wait()
    stopping = asyncio.create_task(repo.stop(timeout=5))

    async def closing() -> bool:
        return repo.state == "closing"

    await poll(closing, "the repo closing")
    with pytest.raises(RepoStateError, match="repo is closing"):
        await repo.query("SELECT 1")  # new work is refused
    go_on.set()
    if ending == "commit":
        await task
    else:
        with pytest.raises(ValueError, match="the block fails"):
            await task
    await stopping
    assert repo.state == "closed"
    assert await rows(pg) == (2 if ending == "commit" else 0)

    async def gone() -> bool:  # a closed connection's backend exits a moment after the client
        return await app_sessions(pg, "%") == []

    await poll(gone, "every session of the stopped repo ended", within=2.0)


# ------------------------------------------------------------------------------------------------
# finish() itself: the contract the points above rely on (no database)
# ------------------------------------------------------------------------------------------------


async def test_issue17_finish_names_a_cleanup_cancelled_by_someone_else() -> None:
    from asyncecto._aio import finish

    async def work() -> None:
        me = asyncio.current_task()
        assert me is not None
        me.cancel()  # the work's own task is cancelled (a loop shutting down, say); its caller is not
        await asyncio.sleep(1)

    with pytest.raises(ConnectionLostError, match="cleanup was interrupted") as info:
        await finish(work())
    assert isinstance(info.value.__cause__, asyncio.CancelledError)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_issue17_finish_gives_up_after_its_limit_and_abandons_the_work(flavour: str) -> None:
    from asyncecto._aio import finish

    gate = asyncio.Event()
    cut: list[float] = []
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await gate.wait()  # a statement that never answers until its connection is cut

    def abandon() -> None:
        cut.append(time.monotonic())
        gate.set()

    async def body() -> None:
        await finish(work(), limit=0.2, abandon=abandon)

    took = await cancel_at(flavour, body, started.wait)
    assert len(cut) == 1
    assert 0.15 < took < 1.0 * FACTOR


async def test_issue17_finish_leaves_work_that_ignores_abandon_behind() -> None:
    from asyncecto._aio import finish

    release = asyncio.Event()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        with anyio.CancelScope(shield=True):
            await release.wait()

    async def fire() -> None:
        await started.wait()
        scope.deadline = anyio.current_time()

    began = time.monotonic()
    with anyio.move_on_after(None) as scope:
        trigger = asyncio.create_task(fire())
        await finish(work(), limit=0.1, abandon=lambda: None)
    await trigger
    assert scope.cancelled_caught  # the caller's own cancellation, after limit + 1 s
    assert 1.0 < time.monotonic() - began < 2.5 * FACTOR
    release.set()  # the work left behind ends later; nothing is reported
    await asyncio.sleep(0.01)


async def test_issue17_finish_lets_a_second_native_cancel_end_the_task() -> None:
    from asyncecto._aio import finish

    started = asyncio.Event()
    gate = asyncio.Event()

    async def work() -> None:
        started.set()
        await gate.wait()

    async def body() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()  # the anyio scope cancels first, while the cleanup runs
            await finish(work(), limit=5)

    task = asyncio.create_task(body())
    await started.wait()
    await asyncio.sleep(0.02)
    task.cancel()  # then task.cancel(): it must not be swallowed by the anyio scope
    await asyncio.sleep(0.02)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
