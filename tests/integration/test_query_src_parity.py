"""Issue 19 round 3 against PostgreSQL: "cached plan must not change result type" recovery after
another process altered a table, and the query-source rows (lock fragment arguments, excluding some
named windows, fragment sources with columns or a schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncecto import Repo, schema
from asyncecto.errors import QueryError, StaleStatementError
from asyncecto.query import (
    desc,
    exclude,
    fragment,
    from_,
    join,
    lock,
    order_by,
    over,
    row_number,
    select,
    where,
    windows,
)


@schema("qsrc_stale")
class Stale:
    n: int | None = None


@pytest.fixture
async def two(database_url: str) -> AsyncIterator[tuple[Repo, Repo]]:
    """The app's repo (one connection, so its statements stay prepared) and an admin repo standing in
    for another process that alters the table."""
    app, admin = Repo(database_url, pool_size=1), Repo(database_url, pool_size=1)
    async with admin, app:
        await admin.query("DROP TABLE IF EXISTS qsrc_stale")
        await admin.query("CREATE TABLE qsrc_stale (id serial PRIMARY KEY, n integer)")
        await admin.query("INSERT INTO qsrc_stale (n) VALUES (1), (2)")
        try:
            yield app, admin
        finally:
            await admin.query("DROP TABLE IF EXISTS qsrc_stale")


def ns(rows: Any) -> list[int | None]:
    return [r.n for r in rows]


async def test_statement_reruns_outside_a_transaction(two: tuple[Repo, Repo]) -> None:
    app, admin = two
    q = from_(Stale) | order_by("id")
    assert ns(await app.all(q)) == [1, 2]
    await admin.query("ALTER TABLE qsrc_stale ALTER COLUMN n TYPE bigint")
    assert ns(await app.all(q)) == [1, 2]
    raw = "SELECT n FROM qsrc_stale ORDER BY id"
    assert (await app.query(raw)).rows == [(1,), (2,)]
    await admin.query("ALTER TABLE qsrc_stale ALTER COLUMN n TYPE integer")
    assert (await app.query(raw)).rows == [(1,), (2,)]


async def test_inside_a_transaction_it_is_a_named_error_and_a_rerun_succeeds(two: tuple[Repo, Repo]) -> None:
    app, admin = two
    q = from_(Stale) | order_by("id")
    assert ns(await app.all(q)) == [1, 2]
    await admin.query("ALTER TABLE qsrc_stale ALTER COLUMN n TYPE bigint")
    with pytest.raises(StaleStatementError) as info:
        async with app.transaction():
            await app.all(q)
    assert info.value.sqlstate == "0A000"
    assert "cached plan must not change result type" in str(info.value)
    assert "run the whole transaction again" in str(info.value)
    async with app.transaction():  # the caches were dropped: the rerun prepares afresh
        assert ns(await app.all(q)) == [1, 2]


async def test_transaction_retry_reruns_it(two: tuple[Repo, Repo]) -> None:
    app, admin = two
    q = from_(Stale) | order_by("id")
    assert ns(await app.all(q)) == [1, 2]
    await admin.query("ALTER TABLE qsrc_stale ALTER COLUMN n TYPE bigint")
    calls = 0

    async def body() -> list[int | None]:
        nonlocal calls
        calls += 1
        return ns(await app.all(q))

    assert await app.transaction(body, retry=1) == [1, 2]
    assert calls == 2


async def test_lock_fragment_of_a_source_locks_its_rows(two: tuple[Repo, Repo]) -> None:
    app, other = two
    locked = from_(Stale) | order_by("id") | lock(lambda s: fragment("FOR UPDATE OF ?", s))
    skip = from_(Stale) | order_by("id") | lock(lambda s: fragment("FOR UPDATE OF ? SKIP LOCKED", s))
    async with app.transaction():
        assert ns(await app.all(locked | where(n=1))) == [1]
        async with other.transaction():  # another session skips the row the first one locked
            assert ns(await other.all(skip)) == [2]


async def test_exclude_some_windows_runs(two: tuple[Repo, Repo]) -> None:
    app, _ = two
    q: Any = (
        from_(Stale)
        | windows(a={"order_by": lambda s: s.id}, b={"order_by": lambda s: desc(s.id)})
        | select(lambda s: {"n": s.n, "rank": over(row_number(), "a")})
        | order_by("id")
    )
    assert list(await app.all(q | exclude(("windows", ["b"])))) == [{"n": 1, "rank": 1}, {"n": 2, "rank": 2}]
    with pytest.raises(QueryError, match="unknown window 'a'"):
        await app.all(q | exclude(("windows", ["a"])))


async def test_fragment_columns_source(two: tuple[Repo, Repo]) -> None:
    app, _ = two
    q = from_(fragment("generate_series(1, ?)", 3, columns=["n"])) | select(lambda f: f.n) | order_by("n")
    assert list(await app.all(q)) == [1, 2, 3]
    pairs: Any = (
        from_(Stale)
        | join("inner", fragment("generate_series(1, ?)", 2, columns=["k"]), on=lambda s, g: g.k == s.n)
        | select(lambda s, g: {"id": s.id, "k": g.k})
        | order_by("id")
    )
    assert list(await app.all(pairs)) == [{"id": 1, "k": 1}, {"id": 2, "k": 2}]


async def test_fragment_mapped_onto_a_schema_loads_structs(two: tuple[Repo, Repo]) -> None:
    app, _ = two
    src = fragment("SELECT id, n * 10 AS n FROM qsrc_stale WHERE n >= ?", 2)
    got = list(await app.all(from_((src, Stale)) | where(lambda s: s.n < 100)))
    assert [(type(s), s.n) for s in got] == [(Stale, 20)]
    ten: Any = from_((src, Stale)) | select(lambda s: s.n)
    assert await app.one(ten) == 20
    assert await app.aggregate(from_((src, Stale)), "count") == 1
    named = fragment("(VALUES (7, 70), (8, 80))", columns=["id", "n"])
    rows: Any = await app.all(from_((named, Stale)) | order_by("id"))
    assert [(s.id, s.n) for s in rows] == [(7, 70), (8, 80)]


async def test_stream_in_a_transaction_gets_the_named_error(two: tuple[Repo, Repo]) -> None:
    app, admin = two
    q = from_(Stale) | order_by("id")
    assert ns(await app.all(q)) == [1, 2]  # prepares the statement the stream's cursor reuses
    await admin.query("ALTER TABLE qsrc_stale ALTER COLUMN n TYPE bigint")
    with pytest.raises(StaleStatementError, match="cached plan must not change result type"):
        async with app.transaction():
            async for _ in app.stream(q):
                pass
    async with app.transaction():
        assert [s.n async for s in app.stream(q)] == [1, 2]
