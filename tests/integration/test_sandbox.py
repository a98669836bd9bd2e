"""The test sandbox (Ecto's SQL sandbox): one connection, a transaction rolled back at the end.

These tests open and close sandboxes themselves, so they run outside the suite's own
sandbox (``no_sandbox``) and check with a second connection what was really committed.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.changeset import change, unique_constraint
from asyncecto.errors import (
    ConnectionLostError,
    InvalidChangesetError,
    MultiError,
    SandboxError,
    StatementTimeoutError,
    TransactionAbortedError,
    UniqueViolationError,
)
from asyncecto.multi import Multi
from asyncecto.query import from_, preload
from asyncecto.testing import checkin, checkout, mode, sandbox, unboxed, unboxed_run

from .._wait import statement_running
from ..assoc_schemas import Post as BlogPost
from ..schemas import User, Weather

pytestmark = pytest.mark.no_sandbox  # each test opens its own sandboxes

APP = "asyncecto-sandbox-tests"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Repo]:
    r = Repo(database_url, pool_size=3, pool_timeout=5.0, server_settings={"application_name": APP})
    async with r:
        await r.query("TRUNCATE weather, users, bl_posts, bl_comments RESTART IDENTITY CASCADE")
        yield r
        assert r.pool_stats()["in_use"] == 0


async def committed(admin: asyncpg.Connection, table: str = "weather") -> int:
    n: int = await admin.fetchval(f"SELECT count(*) FROM {table}")
    return n


async def backend_pid(repo: Repo) -> int:
    pid: int = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
    return pid


async def test_everything_is_rolled_back_and_invisible_to_other_sessions(db: Repo, admin: asyncpg.Connection) -> None:
    async with sandbox(db) as sb:
        await db.insert(Weather(city="Kraków"))
        async with db.transaction():
            await db.insert(Weather(city="Lagos"))
        assert await db.aggregate(Weather, "count") == 2
        assert await committed(admin) == 0  # uncommitted: no other session sees it
        assert sb.state == "open" and sb.statements >= 2
    assert sb.state == "closed"
    assert await committed(admin) == 0
    assert await db.aggregate(Weather, "count") == 0  # the repo is back on its pool
    idle = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() "
        "AND state LIKE 'idle in transaction%'",
        APP,
    )
    assert idle == 0


async def test_a_failed_statement_does_not_taint_the_sandbox(db: Repo) -> None:
    def user(email: str) -> object:
        return change(User(), email=email) | unique_constraint("email", name="users_email_key")

    async with sandbox(db):
        await db.insert(user("a@example.com"))
        with pytest.raises(InvalidChangesetError):
            await db.insert(user("a@example.com"))
        with pytest.raises(UniqueViolationError):
            await db.query("INSERT INTO users (email, created_at, updated_at) VALUES ('a@example.com', now(), now())")
        # the test's transaction is still usable, with the rows written before the failures
        assert await db.aggregate(User, "count") == 1
        await db.insert(user("b@example.com"))
        assert sorted(cast(str, u.email) for u in await db.all(User)) == ["a@example.com", "b@example.com"]


async def test_transactions_inside_are_savepoints(db: Repo) -> None:
    async with sandbox(db):
        assert not db.in_transaction()  # as in Ecto: false at the sandbox's top level
        await db.insert(Weather(city="kept"))
        with pytest.raises(RuntimeError):
            async with db.transaction():
                assert db.in_transaction()
                await db.insert(Weather(city="undone"))
                raise RuntimeError("boom")
        result: object = await db.transaction(lambda: db.rollback("value"))
        assert result == "value"
        async with db.transaction():
            await db.insert(Weather(city="outer"))
            with pytest.raises(RuntimeError):
                async with db.transaction():
                    await db.insert(Weather(city="inner"))
                    raise RuntimeError("inner fails")
        # isolation and read_only cannot apply to a savepoint: they are ignored, not refused
        async with db.transaction(isolation="serializable"):
            await db.insert(Weather(city="iso"))
        assert sorted(cast(str, w.city) for w in await db.all(Weather)) == ["iso", "kept", "outer"]


async def test_a_failed_multi_leaves_no_partial_write(db: Repo) -> None:
    async def boom(repo: Repo, changes: dict[str, object]) -> None:
        raise ValueError("no")

    m = Multi.new() | Multi.insert("w", Weather(city="first")) | Multi.run("boom", boom)
    async with sandbox(db):
        with pytest.raises(MultiError):
            await db.transaction(m)
        assert await db.aggregate(Weather, "count") == 0
        changes = await db.transaction(Multi.new() | Multi.insert("w", Weather(city="ok")))
        assert changes["w"].city == "ok"
        assert await db.aggregate(Weather, "count") == 1


async def test_tasks_share_the_connection_one_statement_at_a_time(db: Repo, admin: asyncpg.Connection) -> None:
    async with sandbox(db):
        pid = await backend_pid(db)

        async def work(i: int) -> int:
            await db.insert(Weather(city=f"c{i}"))
            return await backend_pid(db)

        pids = await asyncio.gather(*(work(i) for i in range(20)))
        assert set(pids) == {pid}  # every task ran on the sandbox's connection
        # shared: even a task started from an empty context (a server's, a worker pool's) uses it
        fresh = asyncio.get_running_loop().create_task(work(99), context=contextvars.Context())
        assert await fresh == pid
        assert await db.aggregate(Weather, "count") == 21
        assert db.pool_stats()["in_use"] == 1
    assert await committed(admin) == 0


async def test_preloads_and_streams_and_copy_run_in_the_sandbox(db: Repo) -> None:
    async with sandbox(db):
        post = await db.insert(BlogPost(title="p"))
        await db.query("INSERT INTO bl_comments (text, post_id) VALUES ('a', $1), ('b', $1)", [post.id])
        [loaded] = await db.all(from_(BlogPost) | preload("comments", "author"))  # two preloads: in parallel
        assert sorted(cast(str, c.text) for c in loaded.comments) == ["a", "b"]
        count, _ = await db.insert_all(Weather, [{"city": f"w{i}"} for i in range(300)])  # COPY
        assert count == 300
        async with db.transaction():
            seen = [w.city async for w in db.stream(from_(Weather), max_rows=100)]
        assert len(seen) == 300


async def test_a_transaction_inside_a_checkout_does_not_commit_the_sandbox(db: Repo, admin: asyncpg.Connection) -> None:
    async with sandbox(db), db.checkout():
        await db.insert(Weather(city="a"))
        async with db.transaction():
            await db.insert(Weather(city="b"))
        with pytest.raises(UniqueViolationError):
            await db.query("INSERT INTO weather (id, city) VALUES (1, 'dup')")
        assert await db.aggregate(Weather, "count") == 2  # the failure did not taint it
    assert await committed(admin) == 0


async def test_a_timed_out_or_cancelled_statement_leaves_the_sandbox_usable(
    db: Repo, admin: asyncpg.Connection
) -> None:
    async with sandbox(db):
        await db.insert(Weather(city="before"))
        with pytest.raises(StatementTimeoutError):
            await db.query("SELECT pg_sleep(5)", timeout=0.2)
        task = asyncio.create_task(db.query("SELECT pg_sleep(5)"))
        await statement_running(admin, "SELECT pg_sleep(5)")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(StatementTimeoutError):
            async with db.transaction():
                await db.insert(Weather(city="in the timed-out transaction"))
                await db.query("SELECT pg_sleep(5)", timeout=0.2)
        assert [w.city for w in await db.all(Weather)] == ["before"]


async def test_raw_transaction_control_is_refused(db: Repo, admin: asyncpg.Connection) -> None:
    async with sandbox(db):
        await db.insert(Weather(city="x"))
        for sql in (
            "COMMIT",
            "  commit;",
            "/* c */ COMMIT",
            "-- c\nCOMMIT",
            "COMMIT/**/",
            "BEGIN",
            "ROLLBACK",
            "end",
            "START TRANSACTION",
            "PREPARE /* x */ TRANSACTION 'a'",
        ):
            with pytest.raises(SandboxError, match="cannot run in the sandbox"):
                await db.query(sql)
        async with db.transaction():
            with pytest.raises(SandboxError, match=r"raw COMMIT cannot run in the sandbox"):
                await db.query("COMMIT")
        assert await db.aggregate(Weather, "count") == 1
    assert await committed(admin) == 0


async def test_isolation_level_of_the_sandbox(db: Repo) -> None:
    async with sandbox(db, isolation="serializable"):
        level = (await db.query("SHOW transaction_isolation")).rows[0][0]
    assert level == "serializable"


async def test_unboxed_commits_for_real(db: Repo, admin: asyncpg.Connection) -> None:
    async with sandbox(db):
        await db.insert(Weather(city="boxed"))
        with unboxed(db):
            await db.insert(Weather(city="unboxed"))
        assert await committed(admin) == 1
        again = await unboxed_run(db, lambda r: r.insert(Weather(city="run")))
        assert again.city == "run" and await committed(admin) == 2
    assert sorted(r["city"] for r in await admin.fetch("SELECT city FROM weather")) == ["run", "unboxed"]


async def test_private_sandbox_manual_mode_and_allow(db: Repo) -> None:
    mode(db, "manual")
    try:
        with pytest.raises(SandboxError) as err:
            await db.all(Weather)
        text = str(err.value)
        assert "cannot find a sandbox for task" in text and "manual sandbox mode" in text
        assert "sandbox(repo, shared=True)" in text and "sb.allow()" in text and "docs/testing.md" in text
        async with sandbox(db, shared=False) as sb:
            await db.insert(Weather(city="mine"))
            # a child task inherits the sandbox
            assert await asyncio.create_task(db.aggregate(Weather, "count")) == 1

            async def elsewhere() -> int:
                with sb.allow():
                    count: int = await db.aggregate(Weather, "count")
                    return count

            loop = asyncio.get_running_loop()
            outsider = loop.create_task(db.aggregate(Weather, "count"), context=contextvars.Context())
            with pytest.raises(SandboxError, match="cannot find a sandbox"):
                await outsider
            assert await loop.create_task(elsewhere(), context=contextvars.Context()) == 1

        with pytest.raises(SandboxError, match="cannot find a sandbox"):
            await db.all(Weather)
        with unboxed(db):
            assert await db.aggregate(Weather, "count") == 0
    finally:
        mode(db, "auto")


async def test_a_private_sandbox_refuses_use_after_it_ended(db: Repo) -> None:
    async with sandbox(db, shared=False) as sb:
        pass
    with pytest.raises(SandboxError, match="the sandbox has ended"), sb.allow():
        pass
    async with sandbox(db, shared=False):
        ctx = contextvars.copy_context()  # a context that still points at the sandbox
    with pytest.raises(SandboxError, match="the sandbox has ended"):
        await asyncio.get_running_loop().create_task(db.all(Weather), context=ctx)


async def test_misuse_is_refused_with_a_reason(db: Repo, database_url: str) -> None:
    stopped = Repo(database_url)
    with pytest.raises(SandboxError, match="the repo is new") as err:
        async with sandbox(stopped):
            pass
    assert "start the repo first" in str(err.value)
    async with sandbox(db):
        with pytest.raises(SandboxError, match="already in a sandbox"):
            async with sandbox(db):
                pass
        with pytest.raises(SandboxError, match="already in a sandbox"):  # a private one inside it too
            async with sandbox(db, shared=False):
                pass
        with unboxed(db), pytest.raises(SandboxError, match="already has a shared sandbox"):
            async with sandbox(db):
                pass
    async with sandbox(db, shared=False):
        with pytest.raises(SandboxError, match="already in a sandbox"):
            async with sandbox(db, shared=False):
                pass
    # two shared sandboxes opening at once: one of them is refused
    first, second = sandbox(db), sandbox(db)
    opened = await asyncio.gather(first.__aenter__(), second.__aenter__(), return_exceptions=True)
    assert sorted(type(o).__name__ for o in opened) == ["Sandbox", "SandboxError"]
    for sb in (first, second):
        await sb.close()
    async with db.transaction():
        with pytest.raises(SandboxError, match="inside a transaction or checkout"):
            async with sandbox(db):
                pass
    sb = sandbox(db)
    async with sb:
        pass
    with pytest.raises(SandboxError, match="cannot open a sandbox that is closed"):
        async with sb:
            pass
    with pytest.raises(ValueError, match="unknown isolation level"):
        sandbox(db, isolation="chaos")
    with pytest.raises(ValueError, match="'auto' or 'manual'"):
        mode(db, "shared")


async def test_waiting_on_a_task_that_needs_the_connection_fails_instead_of_hanging(db: Repo) -> None:
    async with sandbox(db, wait_timeout=0.3):
        async with db.transaction():
            await db.insert(Weather(city="held"))
            other = asyncio.get_running_loop().create_task(db.all(Weather), context=contextvars.Context())
            with pytest.raises(SandboxError) as err:
                await other  # queued behind this transaction, which waits for it
        text = str(err.value)
        assert "waited 0.3s for the sandbox's connection" in text and "in a transaction" in text
        assert "end the transaction before awaiting them" in text
        assert await db.aggregate(Weather, "count") == 1


async def test_closing_waits_for_other_tasks_then_gives_up_and_terminates(db: Repo, admin: asyncpg.Connection) -> None:
    async def let_go_later() -> None:
        await asyncio.sleep(0.3)  # the scenario: the statement runs on while the sandbox closes
        await admin.execute("SELECT pg_advisory_unlock(1831)")

    sb = sandbox(db, wait_timeout=30)
    await admin.execute("SELECT pg_advisory_lock(1831)")  # the statement in flight waits for it
    async with sb:
        slow = asyncio.create_task(db.query("SELECT pg_advisory_xact_lock(1831)"))
        await statement_running(admin, "SELECT pg_advisory_xact_lock(1831)")
        unlocking = asyncio.create_task(let_go_later())
    await unlocking
    assert slow.done() and not slow.cancelled()  # the close waited for the statement in flight

    blocked = asyncio.Event()
    sb = sandbox(db, wait_timeout=0.2)
    with pytest.raises(SandboxError, match="closed while task"):
        async with sb:

            async def hold() -> None:
                async with db.transaction():
                    blocked.set()
                    await asyncio.sleep(5)

            holder = asyncio.create_task(hold(), name="holder")
            await blocked.wait()
    holder.cancel()
    with pytest.raises((asyncio.CancelledError, ConnectionLostError)):
        await holder
    assert await committed(admin) == 0
    assert await db.aggregate(Weather, "count") == 0  # the pool works on


async def test_a_lost_sandbox_connection_fails_its_statements_and_closes_cleanly(
    db: Repo, admin: asyncpg.Connection
) -> None:
    async with sandbox(db):
        await db.insert(Weather(city="x"))
        pid = await backend_pid(db)
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(ConnectionLostError):
            await db.all(Weather)
    assert await committed(admin) == 0
    assert await db.aggregate(Weather, "count") == 0


async def test_an_error_caught_inside_a_transaction_undoes_that_transaction_only(db: Repo) -> None:
    async with sandbox(db):
        await db.insert(Weather(city="before"))
        with pytest.raises(TransactionAbortedError, match="rolled back at the transaction's savepoint") as err:
            async with db.transaction():
                await db.insert(Weather(city="lost"))
                with pytest.raises(UniqueViolationError):
                    await db.query("INSERT INTO weather (id, city) SELECT id, city FROM weather")
        assert "nested `async with repo.transaction():`" in str(err.value)
        assert [w.city for w in await db.all(Weather)] == ["before"]  # the sandbox goes on


async def test_cancelling_at_every_point_leaves_the_sandbox_usable(db: Repo) -> None:
    async with sandbox(db):
        kept = 0
        for n in range(160):

            async def work(i: int = n) -> None:
                if i % 3 == 0:
                    await db.insert(Weather(city=f"plain {i}"))
                elif i % 3 == 1:
                    async with db.transaction():
                        await db.insert(Weather(city=f"tx {i}"))
                else:
                    async with db.checkout(), db.transaction():
                        await db.insert(Weather(city=f"checkout {i}"))

            task = asyncio.create_task(work())
            if n % 2:
                for _ in range(n % 20):  # at each await point before the I/O
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep((n % 8) * 0.0005)  # with a command in flight
            task.cancel()
            try:
                await task
                finished = True
            except asyncio.CancelledError:
                finished = False  # a cancel that met the commit (RELEASE) waited for it: the row may stay
            # whatever was interrupted, the sandbox answers, and holds the row or not: never half of one
            count = await db.aggregate(Weather, "count")
            assert count - kept == 1 if finished else count - kept in (0, 1)
            kept = count
        assert db.pool_stats()["in_use"] == 1


async def test_a_lifted_statement_timeout_does_not_outlive_its_call(database_url: str) -> None:
    async with Repo(database_url, pool_size=1, timeout=1.0) as r, sandbox(r):
        await r.query("SELECT pg_sleep(0.01)", timeout=None)
        assert (await r.query("SHOW statement_timeout")).rows[0][0] == "1s"
        async with r.transaction():
            await r.query("SELECT pg_sleep(0.01)", timeout=30)
            assert (await r.query("SHOW statement_timeout")).rows[0][0] == "1s"


async def test_migrations_and_unboxed_blocks_commit_even_inside_a_sandboxed_transaction(
    db: Repo, admin: asyncpg.Connection, tmp_path: Path
) -> None:
    from asyncecto.migration import down, up

    migration = tmp_path / "20990101000001_sandbox_probe.py"
    migration.write_text(
        "from asyncecto.migration import execute\n\n"
        "def up():\n    execute('CREATE TABLE sandbox_probe (id int)')\n\n"
        "def down():\n    execute('DROP TABLE sandbox_probe')\n"
    )
    try:
        async with sandbox(db):
            assert await up(db, 20990101000001, migration) == "ok"
            async with db.transaction():
                await db.insert(Weather(city="rolled back"))
                with unboxed(db):
                    await db.insert(Weather(city="committed"))
        assert await admin.fetchval("SELECT to_regclass('sandbox_probe') IS NOT NULL")
        assert [r["city"] for r in await admin.fetch("SELECT city FROM weather")] == ["committed"]
    finally:
        if await admin.fetchval("SELECT to_regclass('sandbox_probe') IS NOT NULL"):
            assert await down(db, 20990101000001, migration) == "ok"


async def test_checkout_and_checkin_without_a_block(db: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(SandboxError, match="no open sandbox to check in"):
        await checkin(db)
    sb = await checkout(db)
    assert sb.state == "open"
    await db.insert(Weather(city="x"))
    assert await db.aggregate(Weather, "count") == 1
    await checkin(db)
    assert sb.state == "closed" and await committed(admin) == 0
    private = await checkout(db, shared=False)
    await db.insert(Weather(city="y"))
    await checkin(db)
    assert private.state == "closed" and await committed(admin) == 0
