"""Issue 16, defect 9 (values), on a real PostgreSQL: every value PostgreSQL cannot store fails
with the library's error on every write path and in queries, and nothing is written.

Every table here is created inside the test's sandbox and goes with its rollback.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncecto import Repo, field, schema
from asyncecto import types as t
from asyncecto.changeset import cast, change
from asyncecto.errors import CastError, DatabaseError, InvalidChangesetError
from asyncecto.query import from_, where

pytestmark = pytest.mark.usefixtures("repo")

D = decimal.Decimal


@schema("integrity_values")
class Val:
    id: int | None = None
    title: str | None = None  # varchar(255)
    body: str | None = None  # text
    n: int | None = None  # integer
    big: int | None = field(type=t.Id)  # bigint
    m: dict[str, Any] | None = None  # jsonb
    tags: list[str] | None = None  # text[]
    dec: decimal.Decimal | None = None  # numeric
    f: float | None = None  # double precision


@schema("integrity_small_keys")
class SmallKey:
    id: int | None = None  # a serial (integer) key column
    title: str | None = None


DDL = (
    "CREATE TABLE integrity_values (id bigserial PRIMARY KEY, title varchar(255), body text, n integer, big bigint, "
    "m jsonb, tags text[], dec numeric, f double precision)",
    "CREATE TABLE integrity_small_keys (id serial PRIMARY KEY, title text)",
)

COPY_ROWS = 250  # insert_all uses COPY from 200 rows (COPY_MIN_ROWS)


@pytest.fixture
async def tables(repo: Repo) -> Repo:
    for statement in DDL:
        await repo.query(statement)
    return repo


async def count(admin: Any) -> int:
    return int(await admin.fetchval("SELECT count(*) FROM integrity_values"))


#: (field, value PostgreSQL cannot store, a word of the reason, the type's name)
UNSTORABLE: list[Any] = [
    pytest.param("title", "a\x00b", "NUL", "string", id="title-nul"),
    pytest.param("body", "a\ud800b", "surrogate", "string", id="body-surrogate"),
    pytest.param("tags", ["ok", "\udfff"], "surrogate", "array(string)", id="tags-surrogate"),
    pytest.param("tags", ["\x00"], "NUL", "array(string)", id="tags-nul"),
    pytest.param("m", {"k": ["x", {"a\x00": 1}]}, "NUL", "map", id="map-key-nul"),
    pytest.param("m", {"k": {"v": "\ud83d"}}, "surrogate", "map", id="map-value-surrogate"),
    pytest.param("m", {"k": float("nan")}, "NaN", "map", id="map-nan"),
    pytest.param("n", 2**70, "64-bit", "integer", id="n-2**70"),
    pytest.param("big", -(2**63) - 1, "64-bit", "id", id="big-below-int8"),
    pytest.param("dec", D("1e131072"), "131072", "decimal", id="dec-beyond-numeric"),
]

Write = Callable[[Repo, str, Any], Awaitable[Any]]


def _rows(name: str, value: Any, n: int) -> list[dict[str, Any]]:
    """``n`` rows of ``name``, the bad value in the last but one (a good row after it)."""
    good = {"title": "ok", "body": "ok", "tags": ["ok"], "m": {"ok": 1}, "n": 1, "big": 1, "dec": D(1)}[name]
    rows = [{name: good} for _ in range(n)]
    rows[-2 if n > 1 else 0] = {name: value}
    return rows


def _generated(name: str, value: Any) -> Iterator[dict[str, Any]]:
    yield from _rows(name, value, 5)


async def _update_all(r: Repo, name: str, value: Any) -> Any:
    await r.insert(Val(title="kept"))
    try:
        return await r.update_all(from_(Val), set={name: value})
    finally:
        assert [v.title for v in await r.all(from_(Val))] == ["kept"]
        await r.delete_all(from_(Val))


async def _update(r: Repo, name: str, value: Any) -> Any:
    stored = await r.insert(Val(title="kept"))
    try:
        return await r.update(change(stored, {name: value}))
    finally:
        assert [v.title for v in await r.all(from_(Val))] == ["kept"]
        await r.delete_all(from_(Val))


#: every write path a struct's values take, as (name, call)
WRITES: list[tuple[str, Write]] = [
    ("insert struct", lambda r, name, v: r.insert(Val(**{name: v}))),
    ("update change", _update),
    ("insert_all unnest", lambda r, name, v: r.insert_all(Val, _rows(name, v, 3))),
    ("insert_all returning", lambda r, name, v: r.insert_all(Val, _rows(name, v, 3), returning=["id"])),
    ("insert_all on_conflict", lambda r, name, v: r.insert_all(Val, _rows(name, v, 3), on_conflict="nothing")),
    ("insert_all copy", lambda r, name, v: r.insert_all(Val, _rows(name, v, COPY_ROWS))),
    ("copy_from list", lambda r, name, v: r.copy_from(Val, _rows(name, v, 5))),
    ("copy_from iterator", lambda r, name, v: r.copy_from(Val, _generated(name, v))),
    ("update_all set", _update_all),
    ("upsert set", lambda r, name, v: r.insert(Val(title="x"), on_conflict={"set": {name: v}}, conflict_target="id")),
]


@pytest.mark.parametrize(("path", "write"), WRITES, ids=[w[0] for w in WRITES])
@pytest.mark.parametrize(("name", "value", "word", "type_name"), UNSTORABLE)
async def test_defect_9_unstorable_values_raise_cast_error_on_every_write_path(
    tables: Repo, admin: asyncpg.Connection, path: str, write: Write, name: str, value: Any, word: str, type_name: str
) -> None:
    with pytest.raises(CastError) as info:
        await write(tables, name, value)
    err = info.value
    assert (err.field, err.type) == (name, type_name), path
    assert err.value == value, path
    assert err.reason is not None and word in err.reason, path
    assert err.fix is not None, path
    assert await count(admin) == 0, path


@pytest.mark.parametrize(("name", "value", "word", "type_name"), UNSTORABLE)
async def test_defect_9_changeset_cast_marks_unstorable_values_invalid_and_nothing_is_sent(
    tables: Repo, admin: asyncpg.Connection, name: str, value: Any, word: str, type_name: str
) -> None:
    cs = cast(Val(), {name: value, "title": "fine"} if name != "title" else {name: value}, [name, "title"])
    assert not cs.valid
    message, meta = dict(cs.errors)[name]
    assert message == "is invalid"
    assert meta["type"] == type_name and meta["validation"] == "cast" and word in meta["reason"]
    with pytest.raises(InvalidChangesetError) as info:
        await tables.insert(cs)
    assert info.value.changeset.errors == cs.errors
    stored = await tables.insert(Val(title="stored"))
    with pytest.raises(InvalidChangesetError):
        await tables.update(cast(stored, {name: value}, [name]))
    assert [v.title for v in await tables.all(from_(Val))] == ["stored"]
    assert await count(admin) == 1


QUERY_PARAMETERS: list[Any] = [
    pytest.param(lambda v: from_(Val) | where(lambda x: x.title == v), "a\x00b", id="where-nul"),
    pytest.param(lambda v: from_(Val) | where(body=v), "a\ud800", id="where-keyword-surrogate"),
    pytest.param(lambda v: from_(Val) | where(lambda x: x.body.in_(["ok", v])), "\x00", id="in-nul"),
    pytest.param(lambda v: from_(Val) | where(lambda x: x.m == v), {"k": "\x00"}, id="map-nul"),
    pytest.param(lambda v: from_(Val) | where(lambda x: x.tags == v), ["\udfff"], id="array-surrogate"),
]


@pytest.mark.parametrize(("build", "value"), QUERY_PARAMETERS)
async def test_defect_9_query_parameters_postgresql_cannot_store_are_refused_before_sql(
    tables: Repo, build: Callable[[Any], Any], value: Any
) -> None:
    await tables.insert(Val(title="a", body="ok"))
    with pytest.raises(CastError):
        await tables.all(build(value))
    with pytest.raises(CastError):
        await tables.update_all(build(value), set={"title": "changed"})
    assert [v.title for v in await tables.all(from_(Val))] == ["a"]  # the connection is still good


async def test_defect_9_get_by_with_unstorable_strings_is_a_cast_error(tables: Repo) -> None:
    with pytest.raises(CastError) as info:
        await tables.get_by(Val, title="a\ud800")
    assert info.value.field == "title"
    with pytest.raises(CastError):
        await tables.get_by(Val, body="\x00")


async def test_defect_9_get_with_an_id_no_row_can_have_returns_none(tables: Repo) -> None:
    stored = await tables.insert(Val(title="a"))
    for missing in (2**70, -(2**70), 2**63, "99999999999999999999"):
        assert await tables.get(Val, missing) is None
        assert await tables.get(from_(Val), missing) is None
    assert await tables.get_by(Val, id=2**70) is None
    assert await tables.get(Val, stored.id) == stored
    for queryable in (Val, from_(Val)):
        with pytest.raises(CastError) as info:  # not a number at all: still the caller's mistake
            await tables.get(queryable, "abc")
        assert (info.value.field, info.value.schema) == ("id", "Val")


async def test_defect_9_get_beyond_integer_on_an_integer_key_column_is_none(tables: Repo) -> None:
    row = await tables.insert(SmallKey(title="a"))
    assert await tables.get(SmallKey, 2**40) is None
    assert await tables.get_by(SmallKey, id=2**40) is None
    assert await tables.get(SmallKey, row.id) == row  # the cached plan still serves small ids
    assert await tables.get(SmallKey, 2**40) is None


async def test_defect_9_comparisons_with_big_ints_give_the_true_answer(tables: Repo) -> None:
    await tables.insert_all(
        Val, [{"title": "low", "n": -5, "big": 2**62}, {"title": "high", "n": 2**31 - 1, "big": None}]
    )

    async def titles(q: Any) -> list[str]:
        return sorted(v.title for v in await tables.all(q))

    assert await titles(from_(Val) | where(lambda x: x.n > 2**40)) == []
    assert await titles(from_(Val) | where(lambda x: x.n < 2**40)) == ["high", "low"]
    assert await titles(from_(Val) | where(lambda x: x.n > -(2**70))) == ["high", "low"]
    assert await titles(from_(Val) | where(lambda x: x.id == 2**70)) == []
    assert await titles(from_(Val) | where(lambda x: x.id != 2**70)) == ["high", "low"]
    assert await titles(from_(Val) | where(lambda x: x.big < 2**64)) == ["low"]
    assert await titles(from_(Val) | where(lambda x: x.n.in_([-5, 2**40, 2**70]))) == ["low"]
    assert await titles(from_(Val) | where(lambda x: x.n + 2**40 > 2**40)) == ["high"]
    assert await tables.get_by(Val, n=2**40) is None


# -- a value beyond its column's own integer type: the database refuses it, naming the column ----

INT4_PATHS: list[tuple[str, Write]] = [
    ("insert struct", lambda r, name, v: r.insert(Val(**{name: v}))),
    ("insert changeset", lambda r, name, v: r.insert(cast(Val(), {name: v}, [name]))),
    ("insert_all unnest", lambda r, name, v: r.insert_all(Val, _rows(name, v, 3))),
    ("insert_all copy", lambda r, name, v: r.insert_all(Val, _rows(name, v, COPY_ROWS))),
    ("copy_from list", lambda r, name, v: r.copy_from(Val, _rows(name, v, 5))),
    ("copy_from iterator", lambda r, name, v: r.copy_from(Val, _generated(name, v))),
    ("update_all set", _update_all),
]


@pytest.mark.parametrize(("path", "write"), INT4_PATHS, ids=[w[0] for w in INT4_PATHS])
@pytest.mark.parametrize("value", [2**40, -(2**31) - 1])
async def test_defect_9_int_beyond_an_integer_column_fails_with_22003_naming_the_column(
    tables: Repo, admin: asyncpg.Connection, path: str, write: Write, value: int
) -> None:
    with pytest.raises(DatabaseError) as info:
        await write(tables, "n", value)
    err = info.value
    assert err.sqlstate == "22003", path
    assert err.column_name == "n", path
    assert await count(admin) == 0, path
    await tables.insert(Val(n=2**31 - 1))  # the connection (and the sandbox's transaction) still work
    assert await count(admin) == 1


# -- what asyncpg cannot encode, without a schema to check it first -------------------------------


async def test_defect_9_schemaless_copy_with_a_lone_surrogate_is_a_database_error(
    tables: Repo, admin: asyncpg.Connection
) -> None:
    rows = [{"title": "ok", "body": "fine"} for _ in range(COPY_ROWS)]
    rows[200] = {"title": "ok", "body": "bad\ud800"}
    with pytest.raises(DatabaseError) as info:
        await tables.insert_all("integrity_values", rows)
    assert info.value.column_name == "body"
    assert "COPY row 201" in info.value.message
    with pytest.raises(DatabaseError) as by_copy:
        await tables.copy_from("integrity_values", iter(rows))
    assert by_copy.value.column_name == "body" and "COPY row 201" in by_copy.value.message
    with pytest.raises(DatabaseError) as by_unnest:
        await tables.insert_all("integrity_values", rows[195:205])
    assert by_unnest.value.column_name == "body"
    with pytest.raises(DatabaseError):
        await tables.insert_all("integrity_values", [{"n": "not a number"}] * COPY_ROWS)
    assert await count(admin) == 0


# -- what PostgreSQL does store comes back equal ----------------------------------------------------


async def test_defect_9_decimal_nan_and_infinity_and_float_specials_round_trip(
    tables: Repo, admin: asyncpg.Connection
) -> None:
    specials = [D("NaN"), D("Infinity"), D("-Infinity"), D("9.9e131071"), D("1e-16383")]

    def same(d: Any) -> Any:
        return "NaN" if d.is_nan() else d  # NaN equals nothing, itself included

    for i, dec in enumerate(specials):
        stored = await tables.insert(Val(title=f"s{i}", dec=dec, f=[math.inf, -math.inf, math.nan, 1.0, 2.0][i]))
        got = await tables.get(Val, stored.id)
        assert got is not None and same(got.dec) == same(dec)
    await tables.insert_all(Val, [{"dec": d} for d in specials])
    await tables.insert_all(Val, [{"dec": d} for d in specials] * 50)
    stored = await admin.fetch("SELECT dec FROM integrity_values")
    assert len(stored) == 5 + 5 + 250
    assert {same(r[0]) for r in stored} == {same(d) for d in specials}
    floats = await admin.fetch("SELECT f FROM integrity_values WHERE f IS NOT NULL ORDER BY title")
    assert [math.isnan(r[0]) or r[0] for r in floats] == [math.inf, -math.inf, True, 1.0, 2.0]


# -- property: any string is stored unchanged, or refused on every path --------------------------


def _storable(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
async def test_defect_9_any_string_round_trips_or_is_refused_on_every_path(
    tables: Repo, admin: asyncpg.Connection, text: str
) -> None:
    await tables.delete_all(from_(Val))
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: tables.insert(Val(body=text, m={text: [text]}, tags=[text])),
        lambda: tables.insert_all(Val, [{"body": text}]),
        lambda: tables.insert_all(Val, [{"body": text}] * COPY_ROWS),
        lambda: tables.copy_from(Val, [{"body": text}]),
    ]
    if _storable(text):
        for call in calls:
            await call()
        bodies = {r[0] for r in await admin.fetch("SELECT body FROM integrity_values")}
        assert bodies == {text}
        first = await tables.one(from_(Val) | where(lambda x: x.m == {text: [text]}))
        assert first is not None and first.m == {text: [text]} and first.tags == [text]
        await tables.update_all(from_(Val), set={"title": text[:255]})
        assert {v.title for v in await tables.all(from_(Val) | where(body=text))} == {text[:255]}
    else:
        for call in calls:
            with pytest.raises(CastError):
                await call()
        with pytest.raises(CastError):
            await tables.all(from_(Val) | where(body=text))
        with pytest.raises(CastError):
            await tables.update_all(from_(Val), set={"body": text})
        assert not cast(Val(), {"body": text}, ["body"]).valid
        assert await count(admin) == 0
