"""Issue 16, write paths: no cast narrower than the column, upserts on partitioned tables, COPY.

Every table here is created inside the test's sandbox and goes with its rollback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from asyncecto import QueryEvent, Repo, field, meta, placeholder, schema, unsafe_fragment
from asyncecto import types as t
from asyncecto.errors import (
    ArgumentError,
    AsyncEctoError,
    CastError,
    DatabaseError,
    NotNullViolationError,
    StatementTimeoutError,
    UniqueViolationError,
)
from asyncecto.query import fragment, from_, order_by, select, type_, update, values, where

from .._wait import statement_running

pytestmark = pytest.mark.usefixtures("repo")


# -- defect 1: no write path casts a value to a narrower type ---------------------------------


class Numeric41(t.BaseType[decimal.Decimal]):
    """A decimal type whose declared column type is narrower than the real column."""

    name = "numeric41"
    db_type = "numeric(4,1)"


@schema("integrity_notes")
class Note:
    id: int | None = None
    body: str | None = None  # a String field (varchar(255) in the DSL) on a text column
    short: str | None = None  # varchar(255) column
    tags: list[str] | None = field(type=t.Array(t.String), default=None)  # an array column: the VALUES path
    exact: decimal.Decimal | None = field(type=Numeric41(), default=None)  # numeric column
    price: decimal.Decimal | None = None  # numeric(5,2) column


NOTES_DDL = (
    "CREATE TABLE integrity_notes (id bigserial PRIMARY KEY, body text, short varchar(255), tags text[], "
    "exact numeric, price numeric(5,2))"
)

LONG = "y" * 1000

#: every insert_all path, as (name, call) with the rows to insert
Path = Callable[[Repo, list[dict[str, Any]]], Awaitable[Any]]
PATHS: list[tuple[str, Path]] = [
    ("unnest", lambda r, rows: r.insert_all(Note, rows)),
    ("unnest returning", lambda r, rows: r.insert_all(Note, rows, returning=["id"])),
    ("unnest on_conflict", lambda r, rows: r.insert_all(Note, rows, on_conflict="nothing")),
    ("values (array column)", lambda r, rows: r.insert_all(Note, [{**row, "tags": None} for row in rows])),
    (
        "values (placeholder)",
        lambda r, rows: r.insert_all(Note, [{**row, "tags": placeholder("t")} for row in rows], placeholders={"t": []}),
    ),
    ("copy", lambda r, rows: r.insert_all(Note, rows * 250)),
]


async def _notes(repo: Repo) -> None:
    await repo.query(NOTES_DDL)


@pytest.mark.parametrize(("path", "run"), PATHS, ids=[p for p, _ in PATHS])
async def test_defect_1_insert_all_unnest_never_truncates_long_strings(
    repo: Repo, admin: asyncpg.Connection, path: str, run: Path
) -> None:
    await _notes(repo)
    await run(repo, [{"body": LONG}])
    lengths = {r[0] for r in await admin.fetch("SELECT length(body) FROM integrity_notes")}
    assert lengths == {1000}, f"{path}: stored lengths {lengths}"


@pytest.mark.parametrize(("path", "run"), PATHS, ids=[p for p, _ in PATHS])
async def test_defect_1_insert_all_too_long_for_varchar_fails_as_insert_does(
    repo: Repo, admin: asyncpg.Connection, path: str, run: Path
) -> None:
    await _notes(repo)
    with pytest.raises(DatabaseError) as by_insert:
        await repo.insert(Note(short=LONG))
    with pytest.raises(AsyncEctoError) as by_path:
        await run(repo, [{"short": "ok"}, {"short": LONG}])
    assert type(by_path.value) is type(by_insert.value)
    assert by_path.value.sqlstate == by_insert.value.sqlstate == "22001", path
    assert await admin.fetchval("SELECT count(*) FROM integrity_notes") == 0


@pytest.mark.parametrize(("path", "run"), PATHS, ids=[p for p, _ in PATHS])
async def test_insert_all_never_rounds_numeric_to_the_type_precision(
    repo: Repo, admin: asyncpg.Connection, path: str, run: Path
) -> None:
    await _notes(repo)
    await run(repo, [{"exact": decimal.Decimal("123.456789")}])
    stored = {r[0] for r in await admin.fetch("SELECT exact FROM integrity_notes")}
    assert stored == {decimal.Decimal("123.456789")}, path
    with pytest.raises(DatabaseError) as out_of_range:
        await run(repo, [{"price": decimal.Decimal("12345.6")}])
    assert out_of_range.value.sqlstate == "22003"  # numeric field overflow, from the column itself


async def test_query_casts_never_truncate_parameters(repo: Repo) -> None:
    await _notes(repo)
    q: Any = from_(Note) | select(lambda n: type_(LONG, t.String))
    await repo.insert(Note(body="x"))
    assert await repo.all(q) == [LONG]
    rows = values([{"s": LONG, "n": 3_000_000_000}], {"s": t.String, "n": t.Integer})
    query: Any = from_(rows) | select(lambda v: (v.s, v.n))
    assert await repo.all(query) == [(LONG, 3_000_000_000)]


async def test_update_all_and_upserts_never_truncate(repo: Repo, admin: asyncpg.Connection) -> None:
    await _notes(repo)
    await repo.query("CREATE UNIQUE INDEX integrity_notes_short ON integrity_notes (short)")
    note = await repo.insert(Note(short="k"))
    await repo.update_all(from_(Note), set={"body": LONG, "exact": decimal.Decimal("1.23456")})
    assert await admin.fetchval("SELECT length(body) FROM integrity_notes") == 1000
    upserted = await repo.insert(
        Note(short="k", body=LONG + "z"), on_conflict={"set": {"body": LONG + "zz"}}, conflict_target="short"
    )
    assert upserted.id == note.id
    _, got = await repo.insert_all(
        Note, [{"short": "k", "body": LONG + "zzz"}], on_conflict="replace_all", conflict_target="short", returning=True
    )
    assert got is not None and got[0].body == LONG + "zzz"
    assert await admin.fetchval("SELECT length(body) FROM integrity_notes") == 1003
    with pytest.raises(DatabaseError) as too_long:
        await repo.update_all(from_(Note), set={"short": LONG})
    assert too_long.value.sqlstate == "22001"
    with pytest.raises(DatabaseError) as too_long:
        await repo.insert(Note(short="k"), on_conflict={"set": {"short": LONG}}, conflict_target="short")
    assert too_long.value.sqlstate == "22001"
    assert await admin.fetchval("SELECT short FROM integrity_notes") == "k"


# -- defect 3: upserts on partitioned tables --------------------------------------------------


@schema("integrity_visits")
class Visit:
    id: int | None = None
    region: str | None = None
    name: str | None = None
    hits: int | None = None
    note: str | None = None


@schema("integrity_visits", primary_key=False)
class KeylessVisit:
    region: str | None = None
    name: str | None = None
    hits: int | None = None


PARTITIONED = {
    "list": (
        "CREATE TABLE integrity_visits (id bigserial, region text NOT NULL, name text NOT NULL, "
        "hits integer NOT NULL DEFAULT 0, note text, PRIMARY KEY (id, region), UNIQUE (region, name)) "
        "PARTITION BY LIST (region)",
        "CREATE TABLE integrity_visits_eu PARTITION OF integrity_visits FOR VALUES IN ('eu')",
        "CREATE TABLE integrity_visits_us PARTITION OF integrity_visits FOR VALUES IN ('us')",
    ),
    "range": (
        "CREATE TABLE integrity_visits (id bigserial, region text NOT NULL, name text NOT NULL, "
        "hits integer NOT NULL DEFAULT 0, note text, PRIMARY KEY (id, region), UNIQUE (region, name)) "
        "PARTITION BY RANGE (region)",
        "CREATE TABLE integrity_visits_a_m PARTITION OF integrity_visits FOR VALUES FROM ('a') TO ('m')",
        "CREATE TABLE integrity_visits_m_z PARTITION OF integrity_visits FOR VALUES FROM ('m') TO ('zz')",
    ),
}

TARGET = ["region", "name"]

#: every on_conflict form that may update, with the hits a conflicting Visit(hits=5) leaves on a row of 1
UPDATING: list[tuple[str, Any, int]] = [
    ("replace_all", "replace_all", 5),
    ("replace", ("replace", ["hits"]), 5),
    ("replace_all_except", ("replace_all_except", ["note"]), 5),
    ("update dict", {"inc": {"hits": 10}}, 11),
    ("update query", from_(Visit) | where(lambda v: v.hits < 100) | update(inc={"hits": 100}), 101),
]


@pytest.fixture(params=sorted(PARTITIONED))
async def partitioned(request: pytest.FixtureRequest, repo: Repo) -> str:
    for statement in PARTITIONED[request.param]:
        await repo.query(statement)
    kind = await repo.query("SELECT relkind::text FROM pg_class WHERE oid = 'integrity_visits'::regclass")
    assert kind.rows == [("p",)]  # really a partitioned table
    return str(request.param)


@pytest.mark.parametrize(("form", "on_conflict", "hits"), UPDATING, ids=[f for f, _, _ in UPDATING])
async def test_defect_3_upserts_on_partitioned_tables_keep_meta_inserted(
    repo: Repo, admin: asyncpg.Connection, partitioned: str, form: str, on_conflict: Any, hits: int
) -> None:
    for region in ("eu", "us"):
        new = await repo.insert(Visit(region=region, name="a", hits=1), on_conflict=on_conflict, conflict_target=TARGET)
        assert meta(new).inserted is True and isinstance(new.id, int), form
        again = await repo.insert(
            Visit(region=region, name="a", hits=5), on_conflict=on_conflict, conflict_target=TARGET, returning=True
        )
        assert (again.id, again.hits, meta(again).inserted) == (new.id, hits, False), form
    rows = await admin.fetch("SELECT region, hits FROM integrity_visits ORDER BY region")
    assert [tuple(r) for r in rows] == [("eu", hits), ("us", hits)]


async def test_upsert_nothing_on_partitioned_tables(repo: Repo, partitioned: str) -> None:
    new = await repo.insert(Visit(region="eu", name="a"), on_conflict="nothing")
    assert meta(new).inserted is True and new.id is not None
    for target in (None, TARGET, unsafe_fragment("(region, name)")):
        kept = await repo.insert(Visit(region="eu", name="a"), on_conflict="nothing", conflict_target=target)
        assert meta(kept).inserted is False and kept.id is None


async def test_defect_3_insert_all_upserts_on_partitioned_tables(
    repo: Repo, admin: asyncpg.Connection, partitioned: str
) -> None:
    await repo.insert_all(Visit, [{"region": "eu", "name": "a", "hits": 1}])
    rows = [{"region": "eu", "name": "a", "hits": 2}, {"region": "us", "name": "b", "hits": 3}]
    for form, on_conflict, _ in UPDATING:
        count, got = await repo.insert_all(Visit, rows, on_conflict=on_conflict, conflict_target=TARGET, returning=True)
        assert count == 2 and got is not None, form
        assert [(v.region, v.name, meta(v).inserted) for v in got] == [("eu", "a", False), ("us", "b", True)]
        await repo.query("DELETE FROM integrity_visits WHERE name = 'b'")
    # returning= without the key, a fragment target, the VALUES path, and no returning at all
    _, got = await repo.insert_all(
        Visit, rows, on_conflict="replace_all", conflict_target=unsafe_fragment("(region, name)"), returning=["hits"]
    )
    assert got is not None and [(v.hits, meta(v).inserted) for v in got] == [(2, False), (3, True)]
    count, got = await repo.insert_all(
        Visit,
        [{**row, "note": placeholder("n")} for row in rows],
        placeholders={"n": "x"},
        on_conflict={"inc": {"hits": 1}},
        conflict_target=TARGET,
        returning=["name"],
    )
    assert got is not None and [(v.name, meta(v).inserted) for v in got] == [("a", False), ("b", False)]
    assert await repo.insert_all(Visit, rows, on_conflict="replace_all", conflict_target=TARGET) == (2, None)
    stored = await admin.fetch("SELECT name, hits FROM integrity_visits ORDER BY name")
    assert [tuple(r) for r in stored] == [("a", 2), ("b", 3)]


async def test_keyless_schema_upserts_on_partitioned_tables(repo: Repo, partitioned: str) -> None:
    rows = [{"region": "eu", "name": "a", "hits": 1}]
    _, got = await repo.insert_all(
        KeylessVisit, rows, on_conflict="replace_all", conflict_target=TARGET, returning=True
    )
    assert got is not None and meta(got[0]).inserted is True
    _, got = await repo.insert_all(
        KeylessVisit, rows, on_conflict="replace_all", conflict_target=TARGET, returning=True
    )
    assert got is not None and meta(got[0]).inserted is False
    again = await repo.insert(
        KeylessVisit(region="eu", name="a", hits=7), on_conflict="replace_all", conflict_target=TARGET
    )
    assert meta(again).inserted is False


async def test_upsert_flag_sees_rows_written_earlier_in_the_transaction(repo: Repo, partitioned: str) -> None:
    async with repo.transaction():
        await repo.insert(Visit(region="eu", name="a"))
        again = await repo.insert(Visit(region="eu", name="a"), on_conflict="replace_all", conflict_target=TARGET)
        assert meta(again).inserted is False


# -- defect 11: COPY through query() drops the data; copy_to / copy_from ----------------------


@schema("integrity_copies", primary_key=("uuid", t.BinaryId))
class Copied:
    uuid: uuid.UUID | None = None
    title: str | None = None  # varchar(20), NOT NULL
    n: int | None = None
    at: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)
    mood: str | None = field(type=t.Enum(["happy", "sad"]), default=None)
    meta_: dict[str, Any] | None = field(type=t.Map(), source="meta", default=None)
    tags: list[str] | None = field(type=t.Array(t.String), default=None)


COPIES_DDL = (
    "CREATE TABLE integrity_copies (uuid uuid PRIMARY KEY, title varchar(20) NOT NULL UNIQUE, n integer, "
    "at timestamptz, mood varchar(255), meta jsonb, tags text[])"
)
AT = dt.datetime(2024, 2, 29, 12, 30, 1, 123456, tzinfo=dt.UTC)


async def _copies(repo: Repo, count: int = 0) -> None:
    await repo.query(COPIES_DDL)
    if count:
        await repo.query(
            "INSERT INTO integrity_copies (uuid, title, n) "
            "SELECT gen_random_uuid(), 'row ' || i, i FROM generate_series(1, $1::int) AS i",
            [count],
        )


async def test_defect_11_query_refuses_copy_to_stdout_and_points_to_copy_api(repo: Repo) -> None:
    await _copies(repo, 5002)
    sent: list[QueryEvent] = []
    repo.telemetry.attach(sent.append, name="copy-refused")
    with pytest.raises(ArgumentError, match=r"copy_to") as out:
        await repo.query("COPY integrity_copies TO STDOUT")
    assert "would drop" in str(out.value)
    with pytest.raises(ArgumentError, match=r"copy_from"):
        await repo.query("  -- load\n copy integrity_copies (title) from stdin with (format csv)")
    await repo.telemetry.flush()
    assert sent == []  # refused before any statement
    data = await repo.copy_to("TABLE integrity_copies")
    assert data.count(b"\n") == 5002  # what query() used to drop


async def test_defect_11_copy_to_gives_every_row_in_each_format(repo: Repo) -> None:
    await _copies(repo, 3)
    text = await repo.copy_to(from_(Copied) | where(lambda c: c.n >= 2) | select(lambda c: (c.n, c.title)))
    assert text == b"2\trow 2\n3\trow 3\n"
    csv = await repo.copy_to(
        "SELECT n, title || $1 FROM integrity_copies WHERE n < $2 ORDER BY n", ["'\",x", 3], format="csv", header=True
    )
    assert csv.decode().splitlines() == ["n,?column?", '1,"row 1\'"",x"', '2,"row 2\'"",x"']
    # COPY takes no parameters: they are quoted in by the server, never into a string that says $1
    tricky = await repo.copy_to(
        from_(Copied) | where(lambda c: c.title == "row 1") | select(lambda c: fragment("? || ' $1 ''$2'''", c.title))
    )
    assert tricky == b"row 1 $1 '$2'\n"
    hostile = "'); DROP TABLE integrity_copies; --"
    got = await repo.copy_to("SELECT $1::text, '$1', E'\\' $1'", [hostile])
    assert got == (hostile + "\t$1\t' $1\n").encode()
    whole = await repo.copy_to(Copied, format="csv")
    assert len(whole.splitlines()) == 3 and whole.count(b",row ") == 3
    binary = io.BytesIO()
    assert await repo.copy_to(Copied, format="binary", output=binary) == 3
    assert binary.getvalue().startswith(b"PGCOPY\n\xff\r\n\x00")
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    assert await repo.copy_to(Copied, output=collect) == 3 and b"".join(chunks).count(b"\n") == 3
    with pytest.raises(ArgumentError, match="header=True needs format='csv'"):
        await repo.copy_to(Copied, header=True)
    with pytest.raises(ArgumentError, match="format="):
        await repo.copy_to(Copied, format="xml")  # type: ignore[call-overload]
    with pytest.raises(ArgumentError, match="not a COPY statement"):
        await repo.copy_to("COPY integrity_copies TO STDOUT")


async def test_copy_from_dumps_rows_through_the_schema_types(repo: Repo) -> None:
    await _copies(repo)

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(3):
            yield {"title": f"t{i}", "n": i, "at": AT, "mood": "sad", "meta_": {"ключ": [1, None]}, "tags": ["a", None]}

    assert await repo.copy_from(Copied, rows()) == 3
    got = await repo.all(from_(Copied) | order_by(lambda c: c.n))
    assert [(c.title, c.n, c.at, c.mood, c.meta_, c.tags) for c in got] == [
        (f"t{i}", i, AT, "sad", {"ключ": [1, None]}, ["a", None]) for i in range(3)
    ]
    assert all(isinstance(c.uuid, uuid.UUID) for c in got)  # generated, as insert_all does
    assert await repo.copy_from("integrity_copies", iter([{"uuid": uuid.uuid4(), "title": "plain"}])) == 1
    assert await repo.copy_from(Copied, []) == 0


async def test_defect_11_copy_from_errors_name_the_column_and_write_nothing(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await _copies(repo)
    sent: list[QueryEvent] = []
    repo.telemetry.attach(sent.append, name="copy-errors")
    with pytest.raises(CastError, match=r"Copied\.n"):
        await repo.copy_from(Copied, [{"title": "a", "n": 1}, {"title": "b", "n": "two"}])
    with pytest.raises(ArgumentError, match=r"row 1 has different keys.*missing: \['n'\]"):
        await repo.copy_from(Copied, [{"title": "a", "n": 1}, {"title": "b"}])
    with pytest.raises(DatabaseError) as too_long:
        await repo.copy_from(Copied, [{"title": "ok"}, {"title": "x" * 21}])
    assert (too_long.value.sqlstate, too_long.value.column_name) == ("22001", "title")
    assert "row 2" in str(too_long.value) and "title" in str(too_long.value)
    with pytest.raises(NotNullViolationError) as null:
        await repo.copy_from(Copied, [{"title": None, "n": 1}])
    assert null.value.column_name == "title"
    with pytest.raises(UniqueViolationError) as dup:
        await repo.copy_from(Copied, [{"title": "same"}, {"title": "same"}])
    assert dup.value.constraint_name == "integrity_copies_title_key"
    assert await admin.fetchval("SELECT count(*) FROM integrity_copies") == 0
    await repo.telemetry.flush()
    assert [e.result for e in sent] == ["error"] * 3  # the cast and key errors sent nothing
    assert all(e.sql.startswith('COPY "integrity_copies"') for e in sent)
    # a generator is read as the load goes: a bad row aborts the COPY, and nothing is written
    lazy = ({"title": f"t{i}", "n": i if i < 500 else "bad"} for i in range(1000))
    with pytest.raises(CastError, match=r"Copied\.n"):
        await repo.copy_from(Copied, lazy)
    assert await admin.fetchval("SELECT count(*) FROM integrity_copies") == 0
    assert await repo.copy_from(Copied, ({"title": f"t{i}"} for i in range(1000))) == 1000


async def test_copy_runs_on_the_statement_path(repo: Repo, admin: asyncpg.Connection) -> None:
    await _copies(repo, 2)
    sent: list[QueryEvent] = []
    repo.telemetry.attach(sent.append, name="copy-path")
    await repo.copy_to(Copied, format="csv")
    async with repo.transaction():
        assert await repo.copy_from(Copied, [{"title": "in tx"}]) == 1
        assert (await repo.copy_to("SELECT title FROM integrity_copies WHERE title = 'in tx'")) == b"in tx\n"
        repo.rollback()
    assert await admin.fetchval("SELECT count(*) FROM integrity_copies") == 2
    await repo.telemetry.flush()
    out = sent[0]
    assert out.sql.startswith("COPY (SELECT") and out.sql.endswith("TO STDOUT (FORMAT csv)")
    assert (out.result, out.num_rows, out.source) == ("ok", 2, "integrity_copies")
    with pytest.raises(StatementTimeoutError):
        await repo.copy_to("SELECT pg_sleep(5)", timeout=0.2)
    assert await repo.copy_to("SELECT 1") == b"1\n"  # the connection is still usable


@pytest.mark.no_sandbox
async def test_copy_cancelled_leaves_no_connection_checked_out(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.query("DROP TABLE IF EXISTS integrity_copies")
    await repo.query(COPIES_DDL)
    try:

        async def slow(chunk: bytes) -> None:
            await asyncio.sleep(0.05)

        out = asyncio.ensure_future(repo.copy_to("SELECT generate_series(1, 500000)", output=slow))
        await statement_running(admin, "COPY (SELECT generate_series(1, 500000))")
        assert repo.pool_stats()["in_use"] == 1  # the copy is running
        out.cancel()
        with pytest.raises(asyncio.CancelledError):
            await out
        assert repo.pool_stats()["in_use"] == 0

        async def stalls() -> AsyncIterator[dict[str, Any]]:
            for i in range(100):
                yield {"title": f"t{i}"}
            await asyncio.sleep(30)
            yield {"title": "never"}

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await repo.copy_from(Copied, stalls())
        assert repo.pool_stats()["in_use"] == 0
        assert await admin.fetchval("SELECT count(*) FROM integrity_copies") == 0
        assert await repo.copy_from(Copied, [{"title": "after"}]) == 1
        assert await repo.copy_to("SELECT title FROM integrity_copies") == b"after\n"
    finally:
        await repo.query("DROP TABLE integrity_copies")
