"""Issue 16, migrations: columns the migration DSL creates hold what the schema types send.

Every migration here runs through the migrator (``run``) from a file written in ``tmp_path``, in a
PostgreSQL schema of the test's own (``mgi_<random>``, the repo's ``search_path``), dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncecto import Repo, embedded_schema, embeds_many, embeds_one, field, schema
from asyncecto import types as t
from asyncecto.errors import DatabaseError, MigrationError
from asyncecto.migration import run
from asyncecto.query import from_
from asyncecto.repo import build_config
from asyncecto.schema import schema_info

pytestmark = [pytest.mark.asyncio, pytest.mark.no_sandbox]  # the migrator commits

V1, V2, V3 = 20240101120000, 20240102120000, 20240103120000
UTC = dt.UTC
OFFSETS = [UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(-dt.timedelta(hours=5, minutes=30))]
D = decimal.Decimal


@pytest.fixture
async def space(database_url: str) -> AsyncIterator[str]:
    name = f"mgi_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def repo(database_url: str, space: str) -> AsyncIterator[Repo]:
    r = Repo(database_url, pool_size=3, server_settings={"search_path": space})
    async with r:
        yield r


async def column_types(repo: Repo, table: str) -> dict[str, str]:
    rows = await repo.query(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped",
        [table],
    )
    return {name: type_ for name, type_ in rows.rows}


def migration(folder: Path, version: int, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}_{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


async def versions(repo: Repo) -> list[int]:
    rows = await repo.query("SELECT version FROM schema_migrations ORDER BY version")
    return [v for (v,) in rows.rows]


# -- defect 2: UTC timestamps -------------------------------------------------------------------------------


@schema("stamped_usec", timestamps={"type": "utc_datetime_usec"})
class StampedUsec:
    id: int | None = None
    at: dt.datetime | None = field(type=t.UtcDatetime, default=None)
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("stamped", timestamps={"type": "utc_datetime"})
class Stamped:
    id: int | None = None
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("stamped_naive", timestamps=True)
class StampedNaive:
    id: int | None = None
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


UTC_TIMESTAMPS = """
from asyncecto.migration import add, create, table, timestamps

def change():
    with create(table("stamped_usec")):
        add("at", "utc_datetime")
        timestamps(type="utc_datetime_usec")
    with create(table("stamped")):
        timestamps(type="utc_datetime")
    with create(table("stamped_naive")):
        timestamps()
    with create(table("hand_made")):
        add("at", "naive_datetime_usec")
"""


async def test_defect_2_utc_timestamps_from_the_migration_dsl_create_timestamptz_and_accept_utc_fields(
    repo: Repo, tmp_path: Path
) -> None:
    migration(tmp_path, V1, "stamps", UTC_TIMESTAMPS)
    assert await run(repo, tmp_path, all=True) == [V1]
    assert await column_types(repo, "stamped_usec") == {
        "id": "bigint",
        "at": "timestamp(0) with time zone",
        "inserted_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    }
    assert (await column_types(repo, "stamped"))["inserted_at"] == "timestamp(0) with time zone"
    assert (await column_types(repo, "stamped_naive"))["inserted_at"] == "timestamp(0) without time zone"
    assert (await column_types(repo, "hand_made"))["at"] == "timestamp without time zone"

    at = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    usec = await repo.insert(StampedUsec(at=at))
    assert usec.inserted_at is not None and usec.inserted_at.tzinfo is UTC and usec.inserted_at == usec.updated_at
    assert await repo.get(StampedUsec, usec.id) == usec
    assert usec.at == at
    stamped = await repo.insert(Stamped())
    assert stamped.inserted_at is not None and stamped.inserted_at.microsecond == 0
    assert await repo.get(Stamped, stamped.id) == stamped
    naive = await repo.insert(StampedNaive())
    assert naive.inserted_at is not None and naive.inserted_at.tzinfo is None
    assert await repo.get(StampedNaive, naive.id) == naive


@schema("hand_made")
class HandMade:
    id: int | None = None
    at: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)


async def test_defect_2_aware_datetime_into_a_timestamp_column_names_the_column_the_value_and_the_fix(
    repo: Repo, tmp_path: Path
) -> None:
    migration(tmp_path, V1, "stamps", UTC_TIMESTAMPS)  # hand_made.at is `timestamp` (naive_datetime_usec)
    await run(repo, tmp_path, all=True)
    at = dt.datetime(2024, 5, 1, 12, 30, 15, 5, tzinfo=UTC)
    with pytest.raises(DatabaseError) as insert_info:
        await repo.insert(HandMade(at=at))
    err = insert_info.value
    assert err.column_name == "at"
    assert err.message == "cannot write a timezone-aware datetime to column 'at': it is `timestamp without time zone`"
    assert err.detail == f"query argument $1 is {at!r}"
    assert err.hint is not None
    assert 'modify("at", "utc_datetime_usec")' in err.hint and "TYPE timestamptz" in err.hint
    assert "NaiveDatetime" in err.hint
    assert await repo.aggregate(HandMade, "count") == 0  # nothing written

    row = await repo.insert(HandMade())
    with pytest.raises(DatabaseError, match="column 'at'") as update_info:
        await repo.update_all(from_(HandMade), set={"at": at})
    assert update_info.value.column_name == "at"
    from asyncecto.changeset import change

    with pytest.raises(DatabaseError, match="column 'at'"):
        await repo.update(change(row, at=at))
    with pytest.raises(DatabaseError, match="a parameter: it is `timestamp without time zone`"):
        await repo.query("SELECT $1::timestamp", [at])
    assert (await repo.get(HandMade, row.id)) == row  # still NULL


# -- defect 13: a plain-SQL up() that returns None ------------------------------------------------------


async def test_defect_13_plain_sql_up_returning_none_is_refused_naming_the_file(repo: Repo, tmp_path: Path) -> None:
    path = migration(
        tmp_path,
        V1,
        "forgot",
        """
        def up():
            "CREATE TABLE forgot (id int)"

        def down():
            return "DROP TABLE forgot"
        """,
    )
    with pytest.raises(MigrationError) as info:
        await run(repo, tmp_path, all=True)
    message = str(info.value)
    assert f"migration {V1}_forgot ({path}): up() returned nothing; return the SQL string or a list of strings" in (
        message
    )
    assert info.value.migration == f"{V1}_forgot"
    assert await versions(repo) == []  # not recorded as migrated

    path.write_text(
        textwrap.dedent(
            """
            def up():
                sql = ["CREATE TABLE forgot (id int)", "INSERT INTO forgot VALUES (1)"]

            def down():
                return "DROP TABLE forgot"
            """
        )
    )
    with pytest.raises(MigrationError, match=r"up\(\) returned nothing"):
        await run(repo, tmp_path, all=True)
    assert await versions(repo) == []


async def test_plain_sql_down_and_change_returning_none_are_refused(repo: Repo, tmp_path: Path) -> None:
    down_path = migration(
        tmp_path,
        V1,
        "no_down_sql",
        """
        def up():
            return "CREATE TABLE no_down_sql (id int)"

        def down():
            sql = "DROP TABLE no_down_sql"
        """,
    )
    assert await run(repo, tmp_path, all=True) == [V1]
    with pytest.raises(MigrationError, match=rf"\({down_path}\): down\(\) returned nothing"):
        await run(repo, tmp_path, "down", all=True)
    assert await versions(repo) == [V1]  # still applied: nothing was undone
    assert await column_types(repo, "no_down_sql") == {"id": "integer"}

    change_path = migration(
        tmp_path / "b",
        V2,
        "change_sql",
        """
        def change():
            "CREATE TABLE change_sql (id int)"
        """,
    )
    with pytest.raises(MigrationError, match=rf"\({change_path}\): change\(\) returned nothing"):
        await run(repo, tmp_path / "b", all=True)
    assert await versions(repo) == [V1]


async def test_dsl_up_returning_none_and_deliberately_empty_migrations_still_run(repo: Repo, tmp_path: Path) -> None:
    migration(
        tmp_path,
        V1,
        "dsl",
        """
        from asyncecto.migration import add, create, drop, execute, table

        def up():
            with create(table("dsl_made")):
                add("name", "text")
            execute("INSERT INTO dsl_made (name) VALUES ('x')")

        def down():
            drop(table("dsl_made"))
        """,
    )
    migration(
        tmp_path,
        V2,
        "generated_empty",
        """
        def change() -> None:
            pass
        """,
    )
    migration(
        tmp_path,
        V3,
        "nothing_on_purpose",
        '''
        def up():
            """Data fixed by hand in production."""
            return []

        def down():
            return []
        ''',
    )
    assert await run(repo, tmp_path, all=True) == [V1, V2, V3]
    assert (await repo.query("SELECT name FROM dsl_made")).rows == [("x",)]
    assert await run(repo, tmp_path, "down", all=True) == [V3, V2, V1]
    assert await versions(repo) == []


# -- the proof: every built-in type through a DSL-made column -------------------------------------------------


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 5


class Cents(t.BaseType[D]):
    """A user type: an amount of money kept as a whole number of cents in a ``bigint``."""

    name = "cents"
    db_type = "bigint"
    load_is_identity = False

    def cast(self, value: Any) -> D:
        return D(value).quantize(D("0.01"))

    def dump(self, value: Any) -> int:
        return int(D(value) * 100)

    def load(self, value: Any) -> D:
        return D(value) / 100


@embedded_schema
class Line:
    label: str | None = None
    qty: int | None = None
    price: D | None = None
    on: dt.date | None = None
    at: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)


@schema("every", timestamps={"type": "utc_datetime_usec"})
class Every:
    id: int | None = None
    s: str | None = None
    s_wide: str | None = None
    txt: str | None = None
    i: int | None = None
    big: int | None = field(type=t.Id, default=None)
    small: int | None = None
    f: float | None = None
    dec: D | None = None
    dec_free: D | None = None
    b: bool | None = None
    bin: bytes | None = None
    d: dt.date | None = None
    tm: dt.time | None = field(type=t.Time, default=None)
    tmu: dt.time | None = field(type=t.TimeUsec, default=None)
    nd: dt.datetime | None = field(type=t.NaiveDatetime, default=None)
    ndu: dt.datetime | None = field(type=t.NaiveDatetimeUsec, default=None)
    ud: dt.datetime | None = field(type=t.UtcDatetime, default=None)
    udu: dt.datetime | None = field(type=t.UtcDatetimeUsec, default=None)
    u: uuid.UUID | None = field(type=t.UUID, default=None)
    bid: uuid.UUID | None = field(type=t.BinaryId, default=None)
    m: dict[str, Any] | None = None
    m_typed: dict[str, Any] | None = field(type=t.Map(t.String()), default=None)
    ints: list[int | None] | None = None
    grid: list[list[int]] | None = field(type=t.Array(t.Array(t.Integer())), default=None)
    strs: list[str | None] | None = None
    stamps: list[dt.datetime] | None = field(type=t.Array(t.UtcDatetimeUsec()), default=None)
    dur: dt.timedelta | None = None
    status: Status | None = None
    level: Level | None = None
    mood: str | None = field(type=t.Enum(["happy", "sad"]), default=None)
    amount: D | None = field(type=Cents(), default=None)
    line: Line | None = embeds_one(Line)
    lines: list[Line] = embeds_many(Line)
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("every_uuid", primary_key=("id", t.BinaryId))
class EveryUuid:
    id: uuid.UUID | None = None
    n: int | None = None


@schema("every_int_id", primary_key=("id", t.Integer))
class EveryIntId:
    id: int | None = None
    n: int | None = None


EVERY = """
from asyncecto.migration import add, create, table, timestamps

def change():
    with create(table("every")):
        add("s", "string")
        add("s_wide", "string", size=2000)
        add("txt", "text")
        add("i", "integer")
        add("big", "bigint")
        add("small", "smallint")
        add("f", "float")
        add("dec", "decimal", precision=12, scale=4)
        add("dec_free", "decimal")
        add("b", "boolean")
        add("bin", "binary")
        add("d", "date")
        add("tm", "time")
        add("tmu", "time_usec")
        add("nd", "naive_datetime")
        add("ndu", "naive_datetime_usec")
        add("ud", "utc_datetime")
        add("udu", "utc_datetime_usec")
        add("u", "uuid")
        add("bid", "binary_id")
        add("m", "map")
        add("m_typed", ("map", "string"))
        add("ints", ["integer"])
        add("grid", ("array", ("array", "integer")))
        add("strs", ("array", "string"))
        add("stamps", ["utc_datetime_usec"])
        add("dur", "duration")
        add("status", "string")
        add("level", "integer")
        add("mood", "string")
        add("amount", "bigint")
        add("line", "map")
        add("lines", "map")
        timestamps(type="utc_datetime_usec")
    with create(table("every_uuid", primary_key=False)):
        add("id", "binary_id", primary_key=True)
        add("n", "integer")
    with create(table("every_int_id", primary_key={"type": "serial"})):
        add("n", "integer")
"""

SURROGATES: list[Literal["Cs"]] = ["Cs"]
CHARS = st.characters(exclude_categories=SURROGATES, exclude_characters="\x00")  # what PostgreSQL text holds
TEXT = st.text(CHARS)
JSON_TEXT = st.text(CHARS, max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=10,
)
AWARE = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.sampled_from(OFFSETS)
)


def _seconds(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.map(lambda v: v.replace(microsecond=0))


def _rectangle(rows: int, cols: int) -> st.SearchStrategy[list[list[int]]]:
    return st.lists(
        st.lists(st.integers(-(2**31), 2**31 - 1), min_size=cols, max_size=cols), min_size=rows, max_size=rows
    )


LINE = st.builds(
    Line,
    label=st.none() | JSON_TEXT,
    qty=st.none() | st.integers(-(2**31), 2**31 - 1),
    price=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9),
    on=st.none() | st.dates(),
    at=st.none() | AWARE.map(lambda v: v.astimezone(UTC)),
)

VALUES = st.fixed_dictionaries(
    {
        "s": TEXT.filter(lambda s: len(s) <= 255),
        "s_wide": st.text(CHARS, max_size=2000),
        "txt": TEXT | st.just("é" * 5000),
        "i": st.integers(-(2**31), 2**31 - 1),
        "big": st.integers(-(2**63), 2**63 - 1),
        "small": st.integers(-(2**15), 2**15 - 1),
        "f": st.floats(allow_nan=False),
        "dec": st.decimals(places=4, min_value=-(10**8) + 1, max_value=10**8 - 1),
        "dec_free": st.decimals(allow_nan=False, allow_infinity=False),
        "b": st.booleans(),
        "bin": st.binary(max_size=64),
        "d": st.dates(),
        "tm": _seconds(st.times()),
        "tmu": st.times(),
        "nd": _seconds(st.datetimes()),
        "ndu": st.datetimes(),
        "ud": _seconds(AWARE),
        "udu": AWARE,
        "u": st.uuids(),
        "bid": st.uuids(),
        "m": st.dictionaries(JSON_TEXT, JSON, max_size=4),
        "m_typed": st.dictionaries(JSON_TEXT, JSON_TEXT, max_size=4),
        "ints": st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=5),
        "grid": st.integers(1, 3).flatmap(lambda rows: st.integers(1, 3).flatmap(lambda cols: _rectangle(rows, cols))),
        "strs": st.lists(st.none() | TEXT.filter(lambda s: len(s) <= 255), max_size=4),
        "stamps": st.lists(AWARE, max_size=3),
        "dur": st.timedeltas(min_value=dt.timedelta(days=-(10**6)), max_value=dt.timedelta(days=10**6)),
        "status": st.sampled_from(Status),
        "level": st.sampled_from(Level),
        "mood": st.sampled_from(["happy", "sad"]),
        "amount": st.decimals(places=2, min_value=-(10**12), max_value=10**12, allow_nan=False),
        "line": st.none() | LINE,
        "lines": st.lists(LINE, max_size=3),
    }
)


def _without_ids(value: Any) -> Any:
    """An embedded struct as its fields but the generated ``id``; anything else as it is."""
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    if isinstance(value, Line):
        return {name: getattr(value, name) for name in schema_info(Line).fields if name != "id"}
    return value


@pytest.fixture
async def every(repo: Repo, tmp_path: Path) -> Repo:
    migration(tmp_path, V1, "every", EVERY)
    assert await run(repo, tmp_path, all=True) == [V1]
    return repo


async def test_migration_dsl_columns_match_the_schema_types_db_types(every: Repo) -> None:
    columns = await column_types(every, "every")
    assert columns["ud"] == "timestamp(0) with time zone" and columns["udu"] == "timestamp with time zone"
    assert columns["nd"] == "timestamp(0) without time zone" and columns["ndu"] == "timestamp without time zone"
    assert columns["tm"] == "time(0) without time zone" and columns["tmu"] == "time without time zone"
    assert columns["stamps"] == "timestamp with time zone[]" and columns["grid"] == "integer[]"
    assert columns["dec"] == "numeric(12,4)" and columns["s"] == "character varying(255)"
    assert columns["inserted_at"] == "timestamp with time zone"
    assert (await column_types(every, "every_uuid"))["id"] == "uuid"
    assert (await column_types(every, "every_int_id"))["id"] == "integer"


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(values=VALUES)
async def test_migration_dsl_schema_round_trip_every_type(every: Repo, values: dict[str, Any]) -> None:
    inserted = await every.insert(Every(**values))
    got = await every.get(Every, inserted.id)
    assert got is not None
    for name, value in values.items():
        assert _without_ids(getattr(got, name)) == _without_ids(value), name
    assert got == inserted  # embeds with the ids the insert generated
    assert got.inserted_at is not None and got.inserted_at.tzinfo is UTC

    other = await every.insert(EveryUuid(n=values["i"]))
    assert isinstance(other.id, uuid.UUID) and await every.get(EveryUuid, other.id) == other
    small = await every.insert(EveryIntId(n=values["small"]))
    assert await every.get(EveryIntId, small.id) == small
