"""Issue 16: defects the property-based suite (``test_integrity_props*.py``) found, one regression each."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo, embedded_schema, embeds_many, embeds_one, field, schema
from asyncecto import types as t
from asyncecto.changeset import cast
from asyncecto.errors import CastError, DatabaseError
from asyncecto.query import from_, select, where
from asyncecto.repo._insert_all import COPY_MIN_ROWS

pytestmark = pytest.mark.usefixtures("repo")


@embedded_schema
class Span:
    id: uuid.UUID | None = None
    took: dt.timedelta | None = None
    label: str | None = None


@schema("found_rows")
class Found:
    id: int | None = None
    k: int | None = None
    small: int | None = None
    score: float | None = None
    grid: list[list[int | None]] | None = field(type=t.Array(t.Array(t.Integer)), default=None)
    span: Span | None = embeds_one(Span)
    spans: list[Span] = embeds_many(Span)


DDL = (
    "CREATE TABLE found_rows (id bigserial PRIMARY KEY, k bigint UNIQUE, small smallint, score double precision, "
    "grid integer[], span jsonb, spans jsonb)"
)


@pytest.fixture
async def found(repo: Repo) -> None:
    await repo.query(DDL)


async def count(admin: asyncpg.Connection) -> int:
    n = await admin.fetchval("SELECT count(*) FROM found_rows")
    assert isinstance(n, int)
    return n


LONG_SPANS = [
    dt.timedelta(days=10**6, microseconds=1),
    dt.timedelta(days=-999999, seconds=5029, microseconds=359),
    dt.timedelta.max,
    dt.timedelta(days=400, seconds=1, microseconds=3),  # a float carries this one: stored as a number
]


@pytest.mark.usefixtures("found")
async def test_props_found_embedded_duration_keeps_microseconds_beyond_float_precision(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    # stored as float seconds, a duration over ~2**33 s lost its microseconds (1e6 days + 1 µs came back 1e6 days)
    for took in LONG_SPANS:
        inserted = await repo.insert(Found(span=Span(id=uuid.uuid4(), took=took), spans=[Span(took=took)]))
        got = await repo.get(Found, inserted.id)
        assert got is not None and got.span is not None
        assert got.span.took == took and got.spans[0].took == took
    stored = await admin.fetch("SELECT jsonb_typeof(span->'took') AS kind, span->>'took' AS took FROM found_rows")
    assert sorted((r["kind"], r["took"]) for r in stored) == [
        ("number", "34560001.000003"),
        ("string", "-86399908570.999641"),
        ("string", "86399999999999.999999"),
        ("string", "86400000000.000001"),
    ]
    # what earlier versions stored (a number of seconds) still loads
    legacy = await admin.fetchval(
        """INSERT INTO found_rows (span, spans) VALUES ('{"took": 90.5}', '[]') RETURNING id"""
    )
    got = await repo.get(Found, legacy)
    assert got is not None and got.span == Span(id=None, took=dt.timedelta(seconds=90.5))


@pytest.mark.usefixtures("found")
@pytest.mark.parametrize("returning", [None, ["id", "spans"]])
@pytest.mark.parametrize("on_conflict", ["raise", "nothing"])
async def test_props_found_insert_all_keeps_embeds_many_lists_on_the_unnest_path(
    repo: Repo, admin: asyncpg.Connection, returning: Any, on_conflict: str
) -> None:
    # asyncpg read a list inside the jsonb[] array parameter as a dimension: [] was stored as NULL,
    # [a] as the object a, and [a, b] as two rows
    a, b = Span(id=uuid.uuid4(), label="a"), Span(id=uuid.uuid4(), label="b")
    rows = [{"k": 1, "spans": []}, {"k": 2, "spans": [a]}, {"k": 3, "spans": [a, b]}]
    target = "k" if on_conflict != "raise" else None
    n, got = await repo.insert_all(Found, rows, returning=returning, on_conflict=on_conflict, conflict_target=target)
    assert n == 3 and await count(admin) == 3
    assert [f.spans for f in await repo.all(from_(Found) | where(lambda f: f.k.in_([1, 2, 3])))] in ([[], [a], [a, b]],)
    if returning:
        assert got is not None and [f.spans for f in got] == [[], [a], [a, b]]


@pytest.mark.usefixtures("found")
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
async def test_props_found_query_parameters_take_a_floats_inf_and_nan(repo: Repo, value: float) -> None:
    # insert stored them, but update_all set=, upsert sets and where() refused them (cast keeps them out
    # of outside input; a query's own values are internal values)
    inserted = await repo.insert(Found(k=1, score=0.0))
    assert await repo.update_all(from_(Found) | where(k=1), set={"score": value}) == (1, None)
    got = await repo.get(Found, inserted.id)
    assert (
        got is not None
        and got.score is not None
        and (got.score == value or (math.isnan(value) and math.isnan(got.score)))
    )
    if not math.isnan(value):  # NaN = NaN is true in PostgreSQL, but a query for it is no business of this test
        ids: list[Any] = await repo.all(from_(Found) | where(lambda f: f.score == value) | select(lambda f: f.id))
        assert ids == [inserted.id]
    upserted = await repo.insert(
        Found(k=1), on_conflict={"set": {"score": -1.0 if value != -1.0 else 1.0}}, conflict_target="k", returning=True
    )
    assert upserted.id == inserted.id
    with pytest.raises(CastError) as info:  # outside input still may not send them
        await repo.update_all(from_(Found) | where(k=1), set={"score": "inf"})
    assert info.value.field == "score"
    assert not cast(Found(), {"score": value}, ["score"]).valid


@pytest.mark.usefixtures("found")
@pytest.mark.parametrize("grid", [[[]], [[], []], ([],)])
async def test_props_found_an_empty_inner_list_is_refused_not_stored_as_an_empty_array(
    repo: Repo, admin: asyncpg.Connection, grid: Any
) -> None:
    # a PostgreSQL array is rectangular: [[]] was stored as {} and came back as []
    for write in (
        lambda: repo.insert(Found(grid=grid)),
        lambda: repo.insert_all(Found, [{"grid": grid}]),
        lambda: repo.copy_from(Found, [{"grid": grid}]),
    ):
        with pytest.raises(CastError, match="empty inner list") as info:
            await write()
        assert info.value.field == "grid"
    assert await count(admin) == 0
    inserted = await repo.insert(Found(grid=[]))  # the empty array itself is fine
    assert (await repo.get(Found, inserted.id)).grid == []  # type: ignore[union-attr]


@pytest.mark.usefixtures("found")
@pytest.mark.parametrize(
    ("field_name", "value"), [("small", 40000), ("small", -(2**31)), ("grid", [[1], [2, 3]])], ids=str
)
async def test_props_found_copy_encoder_errors_are_database_errors(
    repo: Repo, admin: asyncpg.Connection, field_name: str, value: Any
) -> None:
    # asyncpg's COPY encoder raised its own OverflowError / ValueError: not a library error
    good = [{"k": i, field_name: None} for i in range(COPY_MIN_ROWS)]
    bad = [*good[:-1], {"k": COPY_MIN_ROWS, field_name: value}]
    for write in (lambda: repo.insert_all(Found, bad), lambda: repo.copy_from(Found, bad)):
        with pytest.raises(DatabaseError, match="COPY") as info:
            await write()
        assert (info.value.sqlstate or "").startswith("22"), info.value  # a data exception
    assert await count(admin) == 0
    await repo.insert_all(Found, good)
    assert await count(admin) == COPY_MIN_ROWS
