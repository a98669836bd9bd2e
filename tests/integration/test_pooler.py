"""A repo behind a real PgBouncer in transaction mode (``pooler="transaction"``), started by the tests.

The bouncer (tests/_pgbouncer.py) runs on a free port in front of this run's database; PgBouncer
1.18 keeps no prepared statements across transactions and refuses a ``statement_timeout`` startup
parameter, as in production. Tables of their own (``pl_*``), created and dropped here.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import asyncpg
import pytest

from asyncecto import Multi, Repo, belongs_to, has_many, schema
from asyncecto.changeset import cast, unique_constraint, validate_required
from asyncecto.errors import (
    ArgumentError,
    DatabaseError,
    DatabaseUnavailableError,
    InvalidChangesetError,
    StatementTimeoutError,
    UnsupportedInTransactionPoolingError,
)
from asyncecto.migration import migrated_versions, run
from asyncecto.query import from_, order_by, preload, where
from asyncecto.repo import build_config

from .. import _pgbouncer

pytestmark = [pytest.mark.asyncio, pytest.mark.no_sandbox]

APP = "asyncecto-pooler-tests"


@schema("pl_authors")
class Author:
    id: int | None = None
    name: str | None = None
    books: list[Book] = has_many("Book")


@schema("pl_books")
class Book:
    id: int | None = None
    title: str | None = None
    pages: int | None = None
    author: Author | None = belongs_to(Author)
    if TYPE_CHECKING:
        author_id: int | None = None


DDL = [
    "CREATE TABLE pl_authors (id bigserial PRIMARY KEY, name text)",
    "CREATE UNIQUE INDEX pl_authors_name_index ON pl_authors (name)",
    "CREATE TABLE pl_books (id bigserial PRIMARY KEY, title text, pages int, "
    "author_id bigint REFERENCES pl_authors(id) ON DELETE CASCADE)",
]


@pytest.fixture(scope="module")
def direct_url(run_database_url: str) -> str:
    """This run's database, reached directly (a session per connection)."""
    return run_database_url


@pytest.fixture(scope="module")
def bouncer(direct_url: str) -> Iterator[_pgbouncer.Bouncer]:
    """A PgBouncer in transaction mode in front of this run's server."""
    reason = _pgbouncer.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    config = build_config(direct_url)
    if config.host.startswith("/"):
        pytest.skip(
            "the test server is reached through a unix socket of its own (the embedded server), which the "
            "bouncer (run as another user) may not reach: run against a TCP server (the default 127.0.0.1:5432)"
        )
    b = _pgbouncer.Bouncer.launch(config.host, config.port)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def pooled_url(bouncer: _pgbouncer.Bouncer, direct_url: str) -> str:
    """This run's database through the bouncer, with ``pooler=transaction`` (no direct_url)."""
    config = build_config(direct_url)
    return bouncer.url(config.database, config.user or "postgres") + "?pooler=transaction"


@pytest.fixture(scope="module")
def _tables(direct_url: str) -> Iterator[None]:
    async def setup(statements: list[str]) -> None:
        conn = await asyncpg.connect(**build_config(direct_url).dsn_kwargs())
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(setup(["DROP TABLE IF EXISTS pl_books, pl_authors", *DDL]))
    yield
    asyncio.run(setup(["DROP TABLE IF EXISTS pl_books, pl_authors"]))


@pytest.fixture
async def repo(pooled_url: str, direct_url: str, _tables: None) -> AsyncIterator[Repo]:
    r = Repo(pooled_url, pool_size=8, server_settings={"application_name": APP}, timeout=5.0)
    async with r:
        await r.query("TRUNCATE pl_books, pl_authors RESTART IDENTITY")
        yield r
        assert r.pool_stats()["in_use"] == 0
    await _no_idle_in_transaction(direct_url)


async def _no_idle_in_transaction(direct: str) -> None:
    """No server connection (the bouncer's) left idle in a transaction by this module's repos."""
    conn = await asyncpg.connect(**build_config(direct).dsn_kwargs())
    try:
        for _ in range(50):  # the bouncer's rollback of a cut-short exchange may lag a little
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                "AND state LIKE 'idle in transaction%'",
                APP,
            )
            if count == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} server connection(s) left idle in transaction")
    finally:
        await conn.close()


def above(n: int) -> Any:
    return where(lambda a: a.id > n)


def titled(title: str) -> Any:
    return where(lambda b: b.title == title)


def author_changeset(author: Author, params: dict[str, Any]) -> Any:
    return cast(author, params, ["name"]) | validate_required(["name"]) | unique_constraint("name")


# -- a default config against a transaction-mode bouncer ------------------------------------------


async def test_default_config_fails_with_a_fix_naming_pooler(pooled_url: str) -> None:
    url = pooled_url.replace("?pooler=transaction", "")
    r = Repo(url, pool_size=1)
    with pytest.raises(DatabaseUnavailableError) as info:
        await r.start()
    assert "unsupported startup parameter: statement_timeout" in str(info.value)
    assert "pooler='transaction'" in (info.value.fix or "")


async def test_named_statements_through_a_bouncer_fail_with_the_fix(
    bouncer: _pgbouncer.Bouncer, direct_url: str, _tables: None
) -> None:
    # a bouncer that lets the statement_timeout parameter through: the next failure is the prepared statements
    config = build_config(direct_url)
    b = _pgbouncer.Bouncer.launch(config.host, config.port, pool_size=4, ignore="extra_float_digits,statement_timeout")
    try:
        r = Repo(b.url(config.database), pool_size=10, server_settings={"application_name": APP})
        async with r:
            errors: list[BaseException] = []

            async def load(i: int) -> None:
                for j in range(20):
                    try:
                        await r.all(from_(Author) | above(i * j))
                        await r.query("SELECT $1::int + 1", [i])
                    except DatabaseError as exc:
                        errors.append(exc)
                        return

            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(load, i)
            assert errors, "a named prepared statement should have met another server connection"
            assert all(isinstance(e, DatabaseError) and "pooler='transaction'" in (e.fix or "") for e in errors)
            assert all("pgbouncer" in (e.hint or "") for e in errors if isinstance(e, DatabaseError))  # asyncpg's note
    finally:
        b.stop()


# -- what works --------------------------------------------------------------------------------------


async def test_crud_preload_and_upsert(repo: Repo) -> None:
    ann = await repo.insert(author_changeset(Author(), {"name": "Ann"}))
    book = await repo.insert(Book(title="One", pages=10, author_id=ann.id))
    await repo.insert(Book(title="Two", pages=20, author_id=ann.id))
    got = await repo.get(Book, book.id)
    assert got is not None and got.title == "One"
    updated = await repo.update(cast(got, {"pages": 11}, ["pages"]))
    assert updated.pages == 11
    loaded = await repo.all(from_(Author) | preload("books"))
    assert [sorted(b.title or "" for b in a.books) for a in loaded] == [["One", "Two"]]
    with pytest.raises(InvalidChangesetError):
        await repo.insert(author_changeset(Author(), {"name": "Ann"}))  # unique_constraint, through the bouncer
    again = await repo.insert(
        Author(name="Ann"), on_conflict={"set": {"name": "Ann"}}, conflict_target="name", returning=True
    )
    assert again.id == ann.id
    await repo.delete(updated)
    assert await repo.aggregate(Book, "count") == 1


async def test_insert_all_multi_and_savepoints(repo: Repo) -> None:
    count, _ = await repo.insert_all(Author, [{"name": f"a{i}"} for i in range(300)])
    assert count == 300
    count, _ = await repo.insert_all(
        Author, [{"name": "a1"}, {"name": "new"}], on_conflict="nothing", conflict_target="name"
    )
    assert count == 1
    m = (
        Multi.new()
        | Multi.insert("author", author_changeset(Author(), {"name": "multi"}))
        | Multi.run("book", lambda r, ch: r.insert(Book(title="M", author_id=ch["author"].id)))
    )
    changes = await repo.transaction(m)
    assert changes["book"].author_id == changes["author"].id
    async with repo.transaction():
        await repo.insert(Author(name="kept"))
        with pytest.raises(InvalidChangesetError):
            async with repo.transaction():  # a savepoint: its failure leaves the outer transaction usable
                await repo.insert(author_changeset(Author(), {"name": "kept"}))
        await repo.insert(Author(name="kept too"))
    names = {a.name for a in await repo.all(from_(Author) | where(lambda a: a.name.like("kept%")))}
    assert names == {"kept", "kept too"}


async def test_stream_inside_a_transaction(repo: Repo) -> None:
    await repo.insert_all(Book, [{"title": f"b{i:03}", "pages": i} for i in range(250)])
    seen = []
    async with repo.transaction():
        async for book in repo.stream(from_(Book) | order_by("pages"), max_rows=40):
            seen.append(book.pages)
    assert seen == list(range(250))


async def test_sixty_concurrent_tasks_without_error(repo: Repo) -> None:
    failures: list[BaseException] = []

    async def worker(i: int) -> None:
        try:
            for j in range(5):
                a = await repo.insert(Author(name=f"w{i}-{j}"))
                async with repo.transaction():
                    await repo.insert(Book(title=f"w{i}-{j}", pages=j, author_id=a.id))
                    got = await repo.one(from_(Book) | titled(f"w{i}-{j}"))
                    assert got is not None and got.author_id == a.id
                rows = (await repo.query("SELECT $1::int * 2", [i])).rows
                assert rows == [(i * 2,)]
        except BaseException as exc:  # collected: the assertion below names them
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(worker, i)
    assert failures == []
    assert await repo.aggregate(Book, "count") == 300


async def test_timeouts_are_honoured_through_the_bouncer(repo: Repo) -> None:
    async def sleep_query(r: Repo, seconds: float, **options: Any) -> Any:
        return await r.query("SELECT pg_sleep($1)", [seconds], **options)

    r = Repo(_url_of(repo), pool_size=2, timeout=0.3)
    async with r:
        with pytest.raises(StatementTimeoutError):  # outside a transaction: the client's limit, then a cancel
            await sleep_query(r, 2)
        with pytest.raises(StatementTimeoutError) as info:  # inside: SET LOCAL statement_timeout after BEGIN
            async with r.transaction():
                await sleep_query(r, 2)
        assert info.value.sqlstate == "57014"
        async with r.transaction():
            assert (await r.query("SHOW statement_timeout")).rows == [("300ms",)]
        assert (await sleep_query(r, 0.5, timeout=3)).rows == [(None,)]  # a longer per-call limit
        async with r.transaction():
            assert (await sleep_query(r, 0.5, timeout=None)).rows == [(None,)]  # lifted inside a transaction
        with pytest.raises(StatementTimeoutError):  # and the repo's limit is back on the next checkout
            await sleep_query(r, 2)
        assert (await r.query("SELECT 1")).rows == [(1,)]


def _url_of(repo: Repo) -> str:
    c = repo.config
    return f"postgres://{c.user or 'postgres'}@{c.host}:{c.port}/{c.database}?pooler=transaction"


# -- refused ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "operation"),
    [
        ("SELECT pg_advisory_lock(1)", "session advisory lock"),
        ("SELECT pg_try_advisory_lock(1)", "session advisory lock"),
        ("SET search_path TO other", "session-level SET"),
        ("SELECT set_config('search_path', 'other', false)", "set_config"),
        ("LISTEN somewhere", "LISTEN"),
    ],
)
async def test_session_statements_are_refused(repo: Repo, sql: str, operation: str) -> None:
    with pytest.raises(UnsupportedInTransactionPoolingError) as info:
        await repo.query(sql)
    assert operation in info.value.operation
    assert "through a transaction-mode pooler" in str(info.value) and info.value.fix
    assert info.value.query == sql


async def test_transaction_scoped_forms_work(repo: Repo) -> None:
    async with repo.transaction():
        await repo.query("SELECT pg_advisory_xact_lock(42)")
        await repo.query("SET LOCAL search_path TO public")
        assert (await repo.query("SELECT set_config('application_name', 'x', true)")).rows == [("x",)]


async def test_after_connect_runs_but_refuses_session_settings(pooled_url: str, _tables: None) -> None:
    seen: list[Any] = []

    async def hook(conn: Any) -> None:
        seen.append(await conn.fetch("SELECT 1"))
        await conn.execute("SET search_path TO other")

    r = Repo(pooled_url, pool_size=1, after_connect=hook)
    with pytest.raises(UnsupportedInTransactionPoolingError, match="session-level SET"):
        await r.start()
    assert seen == [[(1,)]]
    await r.stop()


async def test_listen_without_direct_url_is_refused(repo: Repo) -> None:
    with pytest.raises(UnsupportedInTransactionPoolingError, match="direct_url"):
        repo.listen("pooler_events")


async def test_listen_with_direct_url_goes_to_the_server(pooled_url: str, direct_url: str, _tables: None) -> None:
    r = Repo(pooled_url, direct_url=direct_url, pool_size=2)
    async with r:
        async with r.listen("pooler_events") as feed:
            await r.notify("pooler_events", "hello")  # NOTIFY goes through the bouncer: a transaction
            with anyio.fail_after(5):
                note = await feed.__anext__()
        assert note.payload == "hello"
        assert r.listener_stats()["pid"] is not None


async def test_config_options() -> None:
    c = build_config("postgres://h:6432/db?pooler=transaction&direct_url=postgres%3A%2F%2Fu%3Asecret%40h%3A5432%2Fdb")
    assert c.pooler == "transaction" and c.transaction_pooled
    assert "secret" not in repr(c)
    assert c.dsn_kwargs()["statement_cache_size"] == 0
    assert (
        build_config("postgres://h/db", pooler="transaction", prepared_statements=True).dsn_kwargs()[
            "statement_cache_size"
        ]
        == 100
    )
    assert not build_config("postgres://h/db", pooler="session").transaction_pooled
    with pytest.raises(ArgumentError, match="pool_mode = transaction"):
        build_config("postgres://h/db", pooler="statement")
    with pytest.raises(ArgumentError, match="direct_url"):
        build_config("postgres://h/db", pooler="transaction", direct_url="mysql://nope")


# -- cancellation ---------------------------------------------------------------------------------------


async def test_cancelled_calls_leave_nothing_idle_in_transaction(repo: Repo, direct_url: str) -> None:
    async def in_transaction() -> None:
        async with repo.transaction():
            await repo.insert(Author(name="c"))
            await repo.query("SELECT pg_sleep(5)")

    for _ in range(3):
        task = asyncio.create_task(in_transaction())
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.15):
                await repo.query("SELECT pg_sleep(5)")
        with anyio.move_on_after(0.15) as scope:
            await in_transaction()
        assert scope.cancelled_caught
        with anyio.CancelScope() as cs:

            async def cancel_soon() -> None:
                await asyncio.sleep(0.15)
                cs.cancel()

            waiter = asyncio.create_task(cancel_soon())
            await repo.query("SELECT pg_sleep(5)")
        await waiter
    assert await repo.aggregate(Author, "count") == 0  # every transaction rolled back
    assert (await repo.query("SELECT 1")).rows == [(1,)]
    await _no_idle_in_transaction(direct_url)


# -- migrations ---------------------------------------------------------------------------------------


def _migrations(tmp_path: Path, table: str, concurrently: bool = False) -> Path:
    """Two migrations: a table, then an index on it; ``concurrently``: ``CREATE INDEX CONCURRENTLY``
    outside a transaction (as Ecto says, with ``disable_migration_lock`` too: it waits for every
    older snapshot, the other migrator's waiting lock statement's included)."""
    folder = tmp_path / "migrations"
    folder.mkdir(parents=True)
    (folder / "20240101000000_create.py").write_text(
        f"def up():\n    return 'CREATE TABLE {table} (id int)'\n\ndef down():\n    return 'DROP TABLE {table}'\n"
    )
    header = "disable_ddl_transaction = True\ndisable_migration_lock = True\n\n" if concurrently else ""
    how = "CONCURRENTLY " if concurrently else ""
    (folder / "20240102000000_index.py").write_text(
        f"{header}def up():\n    return 'CREATE INDEX {how}{table}_id ON {table} (id)'\n\n"
        f"def down():\n    return 'DROP INDEX {table}_id'\n"
    )
    return folder


async def _drop(direct_url: str, table: str, source: str) -> None:
    conn = await asyncpg.connect(**build_config(direct_url).dsn_kwargs())
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}, {source}")
    finally:
        await conn.close()


async def test_migrations_through_the_bouncer_with_the_table_lock(
    pooled_url: str, direct_url: str, tmp_path: Path
) -> None:
    folder = _migrations(tmp_path, "pl_mig_t")
    settings: dict[str, Any] = {"migration_source": "pl_versions_t"}
    try:
        repos = [Repo(pooled_url, pool_size=3) for _ in range(2)]
        async with repos[0], repos[1]:
            with pytest.raises(UnsupportedInTransactionPoolingError, match="migration_lock='table'"):
                await run(repos[0], folder, all=True, migration_lock="advisory", **settings)
            results = await asyncio.gather(*(run(r, folder, all=True, log=False, **settings) for r in repos))
            assert sorted(v for ran in results for v in ran) == [20240101000000, 20240102000000]  # each once
            assert await migrated_versions(repos[1], **settings) == [20240101000000, 20240102000000]
            assert await run(repos[0], folder, "down", all=True, log=False, **settings) == [
                20240102000000,
                20240101000000,
            ]
        async with Repo(pooled_url, pool_size=2, timeout=0.5) as r:  # outside a transaction, no time limit
            # CONCURRENTLY waits for every transaction open when it starts, the table lock's too: in a run
            # of its own, with disable_migration_lock (as Ecto documents for its table lock)
            concurrent = _migrations(tmp_path / "cic", "pl_mig_t", concurrently=True)
            assert await run(r, concurrent, to=20240101000000, log=False, **settings) == [20240101000000]
            assert await run(r, concurrent, all=True, log=False, **settings) == [20240102000000]
    finally:
        await _drop(direct_url, "pl_mig_t", "pl_versions_t")


def _session_migration(folder: Path) -> None:
    """A migration only a session can run (refused through the pooler): proof that it ran on direct_url."""
    (folder / "20240103000000_session.py").write_text(
        "def up():\n    return ['SET statement_timeout = 0', 'SELECT pg_advisory_lock(77)', "
        "'SELECT pg_advisory_unlock(77)']\n\ndef down():\n    return []\n"
    )


VERSIONS = [20240101000000, 20240102000000, 20240103000000]


async def test_asyncecto_migrate_uses_direct_url(pooled_url: str, direct_url: str, tmp_path: Path) -> None:
    folder = _migrations(tmp_path / "db", "pl_mig_cli")
    _session_migration(folder)
    url = f"{pooled_url}&direct_url={quote(direct_url, safe='')}"
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.asyncecto]\nurl = "{url}"\nmigrations = "db/migrations"\n'
        'migration_source = "pl_versions_cli"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    try:
        result = await anyio.run_process(
            [sys.executable, "-m", "asyncecto", "migrate"], cwd=tmp_path, env=env, check=False
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        async with Repo(pooled_url, pool_size=1) as r:
            rows = (await r.query("SELECT version FROM pl_versions_cli ORDER BY version")).rows
        assert [v for (v,) in rows] == VERSIONS
    finally:
        await _drop(direct_url, "pl_mig_cli", "pl_versions_cli")


@pytest.mark.parametrize("lock", ["advisory", "table"])
async def test_migrations_through_direct_url_in_both_lock_modes(
    pooled_url: str, direct_url: str, tmp_path: Path, lock: str
) -> None:
    folder = _migrations(tmp_path, f"pl_mig_{lock}")
    _session_migration(folder)  # refused through the pooler: it runs on direct_url
    settings: dict[str, Any] = {"migration_source": f"pl_versions_{lock}", "migration_lock": lock}
    url = f"{pooled_url}&direct_url={quote(direct_url, safe='')}"
    try:
        repos = [Repo(url, pool_size=2) for _ in range(2)]
        async with repos[0], repos[1]:
            results = await asyncio.gather(*(run(r, folder, all=True, log=False, **settings) for r in repos))
            assert sorted(v for ran in results for v in ran) == VERSIONS
            assert await migrated_versions(repos[0], **settings) == VERSIONS
    finally:
        await _drop(direct_url, f"pl_mig_{lock}", f"pl_versions_{lock}")
