"""Every field of ``Typed`` through a real PostgreSQL: insert, get, update, load, NULL and refusals.

Each value goes in as an internal value (dump is strict), comes back through the
driver and each type's ``load``, and must equal what was inserted, with the right
Python type. For a few meaningful columns the test also asks PostgreSQL, over a
separate raw connection, what it really stored.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncecto import Repo, meta
from asyncecto import types as t
from asyncecto.changeset import change
from asyncecto.errors import CastError, DatabaseError
from asyncecto.schema import schema_info

from ..schemas import Level, Status, Typed

D = decimal.Decimal
UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS0530 = dt.timezone(-dt.timedelta(hours=5, minutes=30))
PLUS1345 = dt.timezone(dt.timedelta(hours=13, minutes=45))
WARSAW = ZoneInfo("Europe/Warsaw")

FIELDS: tuple[str, ...] = tuple(schema_info(Typed).fields)
DATA_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f != "id")
TYPES: dict[str, t.Type[Any]] = {name: f.type for name, f in schema_info(Typed).fields.items()}

# The Python type every loaded (non-None) value must have.
PY_TYPES: dict[str, type] = {
    "i": int,
    "big": int,
    "f": float,
    "b": bool,
    "s": str,
    "bin": bytes,
    "dec": decimal.Decimal,
    "m": dict,
    "ints": list,
    "texts": list,
    "d": dt.date,
    "tm": dt.time,
    "tmu": dt.time,
    "nd": dt.datetime,
    "ndu": dt.datetime,
    "ud": dt.datetime,
    "udu": dt.datetime,
    "udz": dt.datetime,
    "u": uuid.UUID,
    "dur": dt.timedelta,
    "status": Status,
    "level": Level,
    "mood": str,
    "size": str,
    "any_json": dict,
}
NAIVE_FIELDS = frozenset({"nd", "ndu"})
UTC_FIELDS = frozenset({"ud", "udu", "udz"})

# One valid internal value per field: a fully populated row.
FULL: dict[str, Any] = {
    "i": -42,
    "big": 2**40 + 1,
    "f": 0.1 + 0.2,
    "b": False,
    "s": "Zażółć gęślą jaźń",
    "bin": b"\x00\xff\x00",
    "dec": D("-12345.678900"),
    "m": {"a": [1, {"b": None}], "c": "d"},
    "ints": [3, None, -3],
    "texts": ["x", None, ""],
    "d": dt.date(2024, 2, 29),
    "tm": dt.time(8, 30, 15),
    "tmu": dt.time(8, 30, 15, 123456),
    "nd": dt.datetime(2024, 2, 29, 23, 59, 59),
    "ndu": dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "ud": dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
    "udu": dt.datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
    "udz": dt.datetime(2024, 3, 1, 12, 0, 0, 654321, tzinfo=UTC),
    "u": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "dur": dt.timedelta(days=1, seconds=2, microseconds=3),
    "status": Status.DRAFT,
    "level": Level.LOW,
    "mood": "happy",
    "size": "small",
    "any_json": {"k": [1, 2.5, "three"]},
}

_SAME: Any = object()


def case(field: str, value: Any, expected: Any = _SAME, *, id: str) -> Any:
    """A ``(field, value, expected)`` parameter; ``expected`` defaults to ``value``."""
    return pytest.param(field, value, value if expected is _SAME else expected, id=f"{field}-{id}")


ROUND_TRIPS = [
    # integer (int4)
    case("i", 0, id="zero"),
    case("i", -1, id="minus-one"),
    case("i", -(2**31), id="int4-min"),
    case("i", 2**31 - 1, id="int4-max"),
    # id (int8)
    case("big", 2**31, id="beyond-int4"),
    case("big", 2**53 + 1, id="beyond-float-precision"),
    case("big", -(2**63), id="int8-min"),
    case("big", 2**63 - 1, id="int8-max"),
    # float (float8)
    case("f", 0.1 + 0.2, id="0.30000000000000004"),
    case("f", math.pi, id="pi"),
    case("f", -1.5e-300, id="tiny-negative"),
    case("f", 5e-324, id="smallest-subnormal"),
    case("f", 1.7976931348623157e308, id="float-max"),
    case("f", -0.0, id="negative-zero"),
    case("f", 3, 3.0, id="int-dumped-as-float"),
    # boolean
    case("b", True, id="true"),
    case("b", False, id="false"),
    # string (varchar(255))
    case("s", "", id="empty"),
    case("s", "Zażółć gęślą jaźń 🦀 日本語", id="unicode"),
    case("s", 'it\'s "quoted" \\ ; -- DROP TABLE typed', id="quotes"),
    case("s", "é" * 255, id="255-multibyte-chars"),
    case("s", " padded\t\n", id="whitespace"),
    # binary (bytea)
    case("bin", b"", id="empty"),
    case("bin", b"\x00", id="one-nul"),
    case("bin", b"a\x00b\x00\x00", id="nuls-inside"),
    case("bin", bytes(range(256)), id="every-byte"),
    # decimal (numeric)
    case("dec", D("0"), id="zero"),
    case("dec", D("-1.2345678901234567890123456789E-20"), id="negative-exponent"),
    case(
        "dec",
        D("123456789012345678901234567890.123456789012345678901234567890"),
        id="sixty-digits",
    ),
    case("dec", D("1.500"), id="trailing-zeros"),
    case("dec", D("1E+5"), id="positive-exponent"),
    case("dec", 7, D(7), id="int-dumped-as-decimal"),
    # map (jsonb)
    case("m", {}, id="empty"),
    case(
        "m",
        {"a": {"b": {"c": [1, 2.5, "x", None, True, False, {"d": []}]}}, "e": [[1, [2]], {}]},
        id="nested",
    ),
    case("m", {"ключ 🦀": "значение", "q": 'it\'s "q" \\'}, id="unicode-quotes"),
    case("m", {"big": 2**62, "neg": -1, "f": 0.1, "one": 1.0, "zero": 0}, id="numbers"),
    case("any_json", {}, id="empty"),
    case("any_json", {"list": [1, [2, [3]]], "n": None}, id="nested"),
    # array(integer)
    case("ints", [], id="empty"),
    case("ints", [None], id="only-none"),
    case("ints", [1, None, -3], id="none-inside"),
    case("ints", [-(2**31), 0, 2**31 - 1], id="int4-bounds"),
    case("ints", (4, 5), [4, 5], id="tuple-dumped-as-list"),
    # array(string)
    case("texts", [], id="empty"),
    case("texts", ["", None, "NULL", "a,b", "{x}", 'quote"s', "back\\slash", "ü 🦀"], id="tricky"),
    # date
    case("d", dt.date(2024, 2, 29), id="leap-day"),
    case("d", dt.date(1970, 1, 1), id="epoch"),
    case("d", dt.date(1, 1, 1), id="date-min"),
    case("d", dt.date(9999, 12, 31), id="date-max"),
    # time (time(0))
    case("tm", dt.time(0, 0, 0), id="midnight"),
    case("tm", dt.time(23, 59, 59), id="last-second"),
    # time_usec (time)
    case("tmu", dt.time(23, 59, 59, 999999), id="last-microsecond"),
    case("tmu", dt.time(0, 0, 0, 1), id="one-microsecond"),
    case("tmu", dt.time(12, 0), id="noon"),
    # naive_datetime (timestamp(0))
    case("nd", dt.datetime(2024, 2, 29, 23, 59, 59), id="leap-day"),
    case("nd", dt.datetime(1969, 12, 31, 23, 59, 59), id="before-epoch"),
    # naive_datetime_usec (timestamp)
    case("ndu", dt.datetime(2024, 2, 29, 23, 59, 59, 999999), id="last-microsecond"),
    case("ndu", dt.datetime(2000, 1, 1, 0, 0, 0, 1), id="one-microsecond"),
    # utc_datetime (second precision)
    case("ud", dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC), id="utc"),
    case(
        "ud",
        dt.datetime(2024, 6, 1, 14, 0, 0, tzinfo=PLUS2),
        dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC),
        id="plus-2h",
    ),
    case(
        "ud",
        dt.datetime(2023, 12, 31, 20, 0, 0, tzinfo=MINUS0530),
        dt.datetime(2024, 1, 1, 1, 30, 0, tzinfo=UTC),
        id="minus-5h30-next-year",
    ),
    case(
        "ud",
        dt.datetime(2024, 7, 1, 2, 0, 0, tzinfo=WARSAW),
        dt.datetime(2024, 7, 1, 0, 0, 0, tzinfo=UTC),
        id="zoneinfo-summer-time",
    ),
    # utc_datetime_usec
    case("udu", dt.datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), id="utc"),
    case(
        "udu",
        dt.datetime(2024, 1, 1, 0, 30, 0, 7, tzinfo=PLUS2),
        dt.datetime(2023, 12, 31, 22, 30, 0, 7, tzinfo=UTC),
        id="plus-2h-previous-year",
    ),
    # utc_datetime_usec on a timestamptz column
    case("udz", dt.datetime(2024, 6, 1, 12, 0, 0, 999999, tzinfo=UTC), id="utc"),
    case(
        "udz",
        dt.datetime(2024, 6, 1, 12, 0, 0, 5, tzinfo=MINUS0530),
        dt.datetime(2024, 6, 1, 17, 30, 0, 5, tzinfo=UTC),
        id="minus-5h30",
    ),
    case(
        "udz",
        dt.datetime(2024, 1, 1, 9, 0, 0, 250000, tzinfo=PLUS1345),
        dt.datetime(2023, 12, 31, 19, 15, 0, 250000, tzinfo=UTC),
        id="plus-13h45-previous-year",
    ),
    # uuid
    case("u", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), id="v4"),
    case("u", uuid.UUID(int=0), id="nil"),
    case("u", uuid.UUID(int=2**128 - 1), id="max"),
    # duration (interval)
    case("dur", dt.timedelta(0), id="zero"),
    case("dur", dt.timedelta(days=3, microseconds=7), id="days-and-microseconds"),
    case("dur", dt.timedelta(days=-2, seconds=5, microseconds=1), id="negative"),
    case("dur", dt.timedelta(hours=25, minutes=1), id="over-a-day"),
    case("dur", dt.timedelta(days=36500, seconds=86399, microseconds=999999), id="century"),
    # enum from an enum.Enum class (string values)
    case("status", Status.DRAFT, id="draft"),
    case("status", Status.PUBLISHED, id="published"),
    # enum from an enum.IntEnum class
    case("level", Level.LOW, id="low"),
    case("level", Level.HIGH, id="high"),
    # Enum(["happy", "sad"])
    case("mood", "happy", id="happy"),
    case("mood", "sad", id="sad"),
    # Enum({"small": 1, "large": 2})
    case("size", "small", id="small"),
    case("size", "large", id="large"),
]


def _strictly_equal(actual: Any, expected: Any) -> bool:
    """Equal values of the same types, all the way down (so ``1`` is not ``1.0`` nor ``True``)."""
    if isinstance(expected, dict):
        return (
            type(actual) is dict
            and actual.keys() == expected.keys()
            and all(_strictly_equal(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list):
        return (
            type(actual) is list
            and len(actual) == len(expected)
            and all(_strictly_equal(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, float) and isinstance(actual, float) and actual == 0.0 == expected:
        return math.copysign(1.0, actual) == math.copysign(1.0, expected)
    return type(actual) is type(expected) and bool(actual == expected)


def assert_loaded(field: str, actual: Any, expected: Any) -> None:
    """``actual`` (a loaded field value) equals ``expected`` and has the field's Python type."""
    if field in UTC_FIELDS and expected is not None:
        # Compare instants in UTC: by PEP 495, a wall time in a DST fold or gap never compares
        # equal (==) to a datetime in another zone, even when it names the same instant.
        expected = expected.astimezone(UTC)
    assert actual == expected, f"{field}: got {actual!r}, expected {expected!r}"
    if expected is None:
        assert actual is None
        return
    wanted = PY_TYPES[field]
    if field == "u":
        # asyncpg hands back its own subclass of uuid.UUID; it must behave as one.
        assert isinstance(actual, uuid.UUID)
        assert hash(actual) == hash(expected) and str(actual) == str(expected)
    else:
        assert type(actual) is wanted, f"{field}: got {type(actual).__name__}, expected {wanted.__name__}"
    if field in NAIVE_FIELDS:
        assert actual.tzinfo is None
    if field in UTC_FIELDS:
        assert actual.utcoffset() == dt.timedelta(0), f"{field} not in UTC: {actual!r}"
    if field in ("m", "any_json", "ints", "texts"):
        assert _strictly_equal(actual, expected), f"{field}: {actual!r} != {expected!r} (types differ)"
    if field == "f":
        assert _strictly_equal(actual, expected)
    if field == "ints":
        assert all(x is None or type(x) is int for x in actual)
    if field == "texts":
        assert all(x is None or type(x) is str for x in actual)


def assert_same_struct(actual: Typed, expected: Typed) -> None:
    """Same field values and types in every field, and both loaded."""
    assert meta(actual).state == "loaded"
    for name in FIELDS:
        got, want = getattr(actual, name), getattr(expected, name)
        assert got == want, f"{name}: {got!r} != {want!r}"
        assert type(got) is type(want), f"{name}: {type(got).__name__} != {type(want).__name__}"
    assert actual == expected


async def count_rows(admin: asyncpg.Connection) -> int:
    count = await admin.fetchval("SELECT count(*) FROM typed")
    assert isinstance(count, int)
    return count


@pytest.fixture
async def utc_admin(admin: asyncpg.Connection) -> asyncpg.Connection:
    """The raw connection with text output fixed: timestamps in UTC, intervals in postgres style."""
    await admin.execute("SET TIME ZONE 'UTC'")
    await admin.execute("SET intervalstyle = 'postgres'")
    await admin.execute("SET extra_float_digits = 1")
    return admin


@pytest.fixture
def tokyo_local_time() -> Iterator[None]:
    """The Python process's local time zone set to Asia/Tokyo (UTC+9) for one test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


# -- 1. every field, insert then get -------------------------------------------------


@pytest.mark.parametrize(("field", "value", "expected"), ROUND_TRIPS)
async def test_field_round_trips_through_insert_and_get(repo: Repo, field: str, value: Any, expected: Any) -> None:
    inserted = await repo.insert(Typed(**{field: value}))
    assert isinstance(inserted.id, int)
    assert meta(inserted).state == "loaded"
    # The returned struct keeps the value as given (no reload), equal per the field's type.
    assert t.equal(TYPES[field], getattr(inserted, field), expected)

    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert got.id == inserted.id
    assert_loaded(field, getattr(got, field), expected)
    for other in DATA_FIELDS:
        if other != field:
            assert getattr(got, other) is None, f"{other} should be NULL"


def test_round_trip_cases_cover_every_field() -> None:
    covered = {p.values[0] for p in ROUND_TRIPS}
    assert covered == set(DATA_FIELDS)
    assert set(PY_TYPES) == set(DATA_FIELDS) == set(FULL)


async def test_full_row_round_trips_through_get_and_all(repo: Repo) -> None:
    inserted = await repo.insert(Typed(**FULL))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    for name, value in FULL.items():
        assert_loaded(name, getattr(got, name), value)
    listed = await repo.all(Typed)
    assert len(listed) == 1
    assert_same_struct(listed[0], got)


async def test_rows_with_different_values_load_independently(repo: Repo) -> None:
    other: dict[str, Any] = {
        **FULL,
        "i": 7,
        "s": "other",
        "status": Status.PUBLISHED,
        "level": Level.HIGH,
        "size": "large",
        "udz": dt.datetime(2001, 1, 1, tzinfo=UTC),
    }
    first = await repo.insert(Typed(**FULL))
    second = await repo.insert(Typed(**other))
    for inserted, values in ((first, FULL), (second, other)):
        got = await repo.get(Typed, inserted.id)
        assert got is not None
        for name, value in values.items():
            assert_loaded(name, getattr(got, name), value)
    listed = sorted(await repo.all(Typed), key=lambda x: x.id or 0)
    assert [x.id for x in listed] == [first.id, second.id]
    assert [x.size for x in listed] == ["small", "large"]


# JSON without floats: jsonb keeps numbers as numeric, so 1e16 would come back as an int.
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # a literal tuple argument is inferred as tuple[str]
JSON_TEXT = st.text(st.characters(exclude_categories=SURROGATES, exclude_characters="\x00"), max_size=10)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JSON_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    i=st.integers(-(2**31), 2**31 - 1),
    big=st.integers(-(2**63), 2**63 - 1),
    f=st.floats(allow_nan=False, allow_infinity=False),
    s=st.text(st.characters(exclude_categories=SURROGATES, exclude_characters="\x00"), max_size=255),
    bin=st.binary(max_size=64),
    dec=st.decimals(allow_nan=False, allow_infinity=False, places=None),
    texts=st.lists(
        st.none() | st.text(st.characters(exclude_categories=SURROGATES, exclude_characters="\x00"), max_size=8),
        max_size=5,
    ),
    tmu=st.times(),
    udz=st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, PLUS2, MINUS0530, PLUS1345, WARSAW]),
    ),
    dur=st.timedeltas(min_value=dt.timedelta(days=-(10**6)), max_value=dt.timedelta(days=10**6)),
    m=st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=4),
    ints=st.lists(st.none() | st.integers(-(2**31), 2**31 - 1), max_size=6),
    d=st.dates(),
    ndu=st.datetimes(),
)
async def test_generated_values_round_trip(
    repo: Repo,
    i: int,
    big: int,
    f: float,
    s: str,
    bin: bytes,
    dec: decimal.Decimal,
    texts: list[str | None],
    tmu: dt.time,
    udz: dt.datetime,
    dur: dt.timedelta,
    m: dict[str, Any],
    ints: list[int | None],
    d: dt.date,
    ndu: dt.datetime,
) -> None:
    values: dict[str, Any] = {
        "m": m,
        "ints": ints,
        "d": d,
        "ndu": ndu,
        "i": i,
        "big": big,
        "f": f,
        "s": s,
        "bin": bin,
        "dec": dec,
        "texts": texts,
        "tmu": tmu,
        "udz": udz,
        "dur": dur,
    }
    inserted = await repo.insert(Typed(**values))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    for name, value in values.items():
        assert_loaded(name, getattr(got, name), value)


STORED = [
    pytest.param("size", "large", "size::text", "2", id="size-large-is-2"),
    pytest.param("size", "small", "size::text", "1", id="size-small-is-1"),
    pytest.param("status", Status.PUBLISHED, "status::text", "published", id="status-value"),
    pytest.param("level", Level.HIGH, "level::text", "5", id="level-int-value"),
    pytest.param("mood", "sad", "mood::text", "sad", id="mood-string"),
    pytest.param(
        "udz",
        dt.datetime(2024, 1, 1, 12, 0, 0, 7, tzinfo=PLUS2),
        "to_char(udz, 'YYYY-MM-DD HH24:MI:SS.US')",
        "2024-01-01 10:00:00.000007",
        id="udz-instant-in-utc",
    ),
    pytest.param(
        "ud",
        dt.datetime(2023, 12, 31, 20, 0, 0, tzinfo=MINUS0530),
        "to_char(ud, 'YYYY-MM-DD HH24:MI:SS.US')",
        "2024-01-01 01:30:00.000000",
        id="ud-instant-in-utc",
    ),
    pytest.param(
        "udu",
        dt.datetime(2024, 6, 1, 12, 0, 0, 42, tzinfo=PLUS1345),
        "to_char(udu, 'YYYY-MM-DD HH24:MI:SS.US')",
        "2024-05-31 22:15:00.000042",
        id="udu-instant-in-utc",
    ),
    pytest.param("m", {"a": [1, {"b": None}]}, "pg_typeof(m)::text", "jsonb", id="m-is-jsonb"),
    pytest.param("m", {"a": [1, {"b": None}]}, "jsonb_typeof(m)", "object", id="m-is-an-object-not-a-string"),
    pytest.param("m", {"a": [1, {"b": None}]}, "m #>> '{a,1}'", '{"b": null}', id="m-nested-path"),
    pytest.param("any_json", {"x": [True]}, "jsonb_typeof(any_json -> 'x')", "array", id="any-json-array"),
    pytest.param("bin", b"a\x00b\x00", "encode(bin, 'hex')", "61006200", id="bin-keeps-nul-bytes"),
    pytest.param("bin", b"\x00\x00", "octet_length(bin)::text", "2", id="bin-length"),
    pytest.param(
        "dec",
        D("-1.2345678901234567890123E-20"),
        "dec::text",
        "-0.000000000000000000012345678901234567890123",
        id="dec-digits",
    ),
    pytest.param("big", 2**63 - 1, "big::text", "9223372036854775807", id="big-int8-max"),
    pytest.param("f", 0.1 + 0.2, "f::text", "0.30000000000000004", id="f-exact"),
    pytest.param("ints", [1, None, 3], "ints::text", "{1,NULL,3}", id="ints-null-element"),
    pytest.param("ints", [], "ints::text", "{}", id="ints-empty-array-not-null"),
    pytest.param("texts", ["NULL", None, ""], "texts::text", '{"NULL",NULL,""}', id="texts-null-vs-string"),
    pytest.param("d", dt.date(2024, 2, 29), "d::text", "2024-02-29", id="date"),
    pytest.param("tm", dt.time(1, 2, 3), "tm::text", "01:02:03", id="time"),
    pytest.param("tmu", dt.time(1, 2, 3, 4), "tmu::text", "01:02:03.000004", id="time-usec"),
    pytest.param("nd", dt.datetime(2024, 2, 29, 23, 59, 59), "nd::text", "2024-02-29 23:59:59", id="nd"),
    pytest.param("ndu", dt.datetime(2024, 2, 29, 23, 59, 59, 5), "ndu::text", "2024-02-29 23:59:59.000005", id="ndu"),
    pytest.param("dur", dt.timedelta(days=3, microseconds=7), "dur::text", "3 days 00:00:00.000007", id="interval"),
    pytest.param(
        "u",
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "u::text",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        id="uuid",
    ),
    pytest.param("b", False, "b::text", "false", id="bool-false-not-null"),
    pytest.param("s", "", "s IS NOT NULL AND s = ''", "true", id="empty-string-not-null"),
    pytest.param("s", 'it\'s "q" 🦀', "s", 'it\'s "q" 🦀', id="string-verbatim"),
]


@pytest.mark.parametrize(("field", "value", "sql", "stored"), STORED)
async def test_postgres_stores_the_dumped_value(
    repo: Repo, utc_admin: asyncpg.Connection, field: str, value: Any, sql: str, stored: str
) -> None:
    inserted = await repo.insert(Typed(**{field: value}))
    text = await utc_admin.fetchval(f"SELECT ({sql})::text FROM typed WHERE id = $1", inserted.id)
    assert text == stored


@pytest.mark.no_sandbox  # reads with a plain asyncpg connection (no asyncecto codecs)
async def test_jsonb_holds_the_same_document(repo: Repo, admin: asyncpg.Connection) -> None:
    doc: dict[str, object] = {"a": {"b": [1, 2.5, None, "x", {"c": False}]}, "ü": "🦀"}
    inserted = await repo.insert(Typed(m=doc, any_json={"n": None}))
    same = await admin.fetchval(
        "SELECT m = $2::jsonb AND any_json = '{\"n\": null}'::jsonb FROM typed WHERE id = $1",
        inserted.id,
        json.dumps(doc),
    )
    assert same is True


async def test_utc_instants_are_stored_exactly(repo: Repo, admin: asyncpg.Connection) -> None:
    values: dict[str, Any] = {
        "ud": dt.datetime(2024, 3, 31, 3, 0, 0, tzinfo=WARSAW),
        "udu": dt.datetime(2024, 3, 31, 1, 0, 0, 1, tzinfo=PLUS2),
        "udz": dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=MINUS0530),
    }
    inserted = await repo.insert(Typed(**values))
    row = await admin.fetchrow(
        "SELECT extract(epoch FROM ud), extract(epoch FROM udu), extract(epoch FROM udz) FROM typed WHERE id = $1",
        inserted.id,
    )
    assert row is not None
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    for i, value in enumerate(values.values()):
        micros = (value - epoch) // dt.timedelta(microseconds=1)
        assert D(row[i]) == D(micros).scaleb(-6)


async def test_timestamptz_instant_does_not_depend_on_local_time_zone(
    repo: Repo, admin: asyncpg.Connection, tokyo_local_time: None
) -> None:
    value = dt.datetime(2024, 1, 1, 12, 0, 0, 7, tzinfo=UTC)
    inserted = await repo.insert(Typed(ud=value.replace(microsecond=0), udu=value, udz=value))
    epoch = await admin.fetchval("SELECT extract(epoch FROM udz) FROM typed WHERE id = $1", inserted.id)
    assert D(epoch) == D("1704110400.000007")
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert_loaded("ud", got.ud, value.replace(microsecond=0))
    assert_loaded("udu", got.udu, value)
    assert_loaded("udz", got.udz, value)


# -- 2. updates ------------------------------------------------------------------------

UPDATES = [
    pytest.param("i", 2**31 - 1, id="i"),
    pytest.param("big", -(2**62), id="big"),
    pytest.param("f", -2.5e-10, id="f"),
    pytest.param("b", True, id="b"),
    pytest.param("s", "nowy 🦀 'tekst'", id="s"),
    pytest.param("bin", b"\x00new\x00", id="bin"),
    pytest.param("dec", D("0.000000000000000000001"), id="dec"),
    pytest.param("m", {"nested": {"list": [None, 1, [2]]}}, id="m"),
    pytest.param("ints", [], id="ints-to-empty"),
    pytest.param("texts", [None, "z"], id="texts"),
    pytest.param("d", dt.date(1999, 12, 31), id="d"),
    pytest.param("tm", dt.time(23, 59, 59), id="tm"),
    pytest.param("tmu", dt.time(0, 0, 0, 1), id="tmu"),
    pytest.param("nd", dt.datetime(2000, 1, 1), id="nd"),
    pytest.param("ndu", dt.datetime(2000, 1, 1, 0, 0, 0, 1), id="ndu"),
    pytest.param("ud", dt.datetime(2025, 1, 1, 1, 0, 0, tzinfo=PLUS2), id="ud-other-zone"),
    pytest.param("udu", dt.datetime(2025, 1, 1, 1, 0, 0, 3, tzinfo=MINUS0530), id="udu-other-zone"),
    pytest.param("udz", dt.datetime(2025, 1, 1, 1, 0, 0, 3, tzinfo=PLUS1345), id="udz-other-zone"),
    pytest.param("u", uuid.UUID(int=1), id="u"),
    pytest.param("dur", dt.timedelta(days=-1, microseconds=1), id="dur"),
    pytest.param("status", Status.PUBLISHED, id="status"),
    pytest.param("level", Level.HIGH, id="level"),
    pytest.param("mood", "sad", id="mood"),
    pytest.param("size", "large", id="size"),
    pytest.param("any_json", {"other": "doc"}, id="any_json"),
]


@pytest.mark.parametrize(("field", "new"), UPDATES)
async def test_update_round_trips(repo: Repo, field: str, new: Any) -> None:
    inserted = await repo.insert(Typed(**FULL))
    before = await repo.get(Typed, inserted.id)
    assert before is not None

    cs = change(inserted, **{field: new})
    assert field in cs.changes
    updated = await repo.update(cs)
    assert getattr(updated, field) == new

    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert_loaded(field, getattr(got, field), new)
    for other in FIELDS:
        if other != field:
            assert getattr(got, other) == getattr(before, other), f"{other} changed"


async def test_update_sets_every_field_to_null(repo: Repo, admin: asyncpg.Connection) -> None:
    inserted = await repo.insert(Typed(**FULL))
    await repo.update(change(inserted, dict.fromkeys(DATA_FIELDS)))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert got.id == inserted.id
    for name in DATA_FIELDS:
        assert getattr(got, name) is None, name
    nulls = await admin.fetchval(f"SELECT num_nulls({', '.join(DATA_FIELDS)}) FROM typed WHERE id = $1", inserted.id)
    assert nulls == len(DATA_FIELDS)


# -- 3. wrong-typed values are refused before anything is written -----------------------

CAST_ERRORS = [
    pytest.param("i", "hot", "integer", id="i-string"),
    pytest.param("i", "42", "integer", id="i-digit-string-dump-is-strict"),
    pytest.param("i", True, "integer", id="i-bool"),
    pytest.param("i", 1.5, "integer", id="i-float"),
    pytest.param("big", "2147483648", "id", id="big-string"),
    pytest.param("f", "1.5", "float", id="f-string"),
    pytest.param("f", 2**1024, "float", id="f-int-too-large"),
    pytest.param("f", D("1.5"), "float", id="f-decimal"),
    pytest.param("b", "yes", "boolean", id="b-yes"),
    pytest.param("b", 1, "boolean", id="b-int"),
    pytest.param("s", 5, "string", id="s-int"),
    pytest.param("s", b"bytes", "string", id="s-bytes"),
    pytest.param("bin", "text", "binary", id="bin-str"),
    pytest.param("bin", bytearray(b"x"), "binary", id="bin-bytearray"),
    pytest.param("dec", 1.5, "decimal", id="dec-float"),
    pytest.param("dec", D("sNaN"), "decimal", id="dec-signaling-nan"),  # NaN and ±Infinity: numeric stores them
    pytest.param("dec", D("1e131072"), "decimal", id="dec-beyond-numeric"),  # asyncpg would send 0 (defect 9)
    pytest.param("m", [1, 2], "map", id="m-list"),
    pytest.param("m", '{"a": 1}', "map", id="m-json-string"),
    pytest.param("any_json", [1], "map", id="any-json-list"),
    pytest.param("ints", [1, "x"], "array(integer)", id="ints-bad-element"),
    pytest.param("ints", "{1,2}", "array(integer)", id="ints-string"),
    pytest.param("ints", [1, True], "array(integer)", id="ints-bool-element"),
    pytest.param("texts", ["a", 1], "array(string)", id="texts-bad-element"),
    pytest.param("d", dt.datetime(2024, 1, 1), "date", id="d-datetime"),
    pytest.param("d", "2024-01-01", "date", id="d-string"),
    pytest.param("tm", "12:00:00", "time", id="tm-string"),
    pytest.param("tm", dt.time(1, 2, 3, tzinfo=UTC), "time", id="tm-aware"),
    pytest.param("tmu", dt.datetime(2024, 1, 1, 12), "time_usec", id="tmu-datetime"),
    pytest.param("nd", dt.datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=UTC), "naive_datetime", id="nd-aware-with-usec"),
    pytest.param("nd", dt.datetime(2024, 1, 1, 12, tzinfo=PLUS2), "naive_datetime", id="nd-aware"),
    pytest.param("nd", dt.date(2024, 1, 1), "naive_datetime", id="nd-date"),
    pytest.param("ndu", dt.datetime(2024, 1, 1, tzinfo=UTC), "naive_datetime_usec", id="ndu-aware"),
    pytest.param("ndu", "2024-01-01T00:00:00", "naive_datetime_usec", id="ndu-string"),
    pytest.param("ud", dt.datetime(2024, 1, 1, 12), "utc_datetime", id="ud-naive"),
    pytest.param("udu", dt.datetime(2024, 1, 1, 12, 0, 0, 5), "utc_datetime_usec", id="udu-naive"),
    pytest.param("udz", "2024-01-01T00:00:00Z", "utc_datetime_usec", id="udz-string"),
    pytest.param("udz", 1704067200, "utc_datetime_usec", id="udz-epoch-int"),
    pytest.param("u", "not-a-uuid", "uuid", id="u-garbage"),
    pytest.param("u", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "uuid", id="u-valid-string-dump-is-strict"),
    pytest.param("u", uuid.UUID(int=1).bytes, "uuid", id="u-bytes"),
    pytest.param("dur", 5, "duration", id="dur-int"),
    pytest.param("dur", "1 day", "duration", id="dur-string"),
    pytest.param("status", "archived", "enum", id="status-unknown"),
    pytest.param("status", "published", "enum", id="status-value-not-member"),
    pytest.param("status", Level.HIGH, "enum", id="status-other-enum"),
    pytest.param("level", 5, "enum", id="level-int-not-member"),
    pytest.param("level", Status.DRAFT, "enum", id="level-other-enum"),
    pytest.param("mood", "angry", "enum", id="mood-unknown"),
    pytest.param("mood", Status.DRAFT, "enum", id="mood-enum-member"),
    pytest.param("size", 2, "enum", id="size-db-value"),
    pytest.param("size", "medium", "enum", id="size-unknown"),
]


@pytest.mark.parametrize(("field", "value", "type_name"), CAST_ERRORS)
async def test_wrong_typed_value_raises_cast_error_and_writes_nothing(
    repo: Repo, admin: asyncpg.Connection, field: str, value: Any, type_name: str
) -> None:
    with pytest.raises(CastError) as info:
        await repo.insert(Typed(**{field: value}))
    err = info.value
    assert err.field == field
    assert err.value is value
    assert err.type == type_name
    assert err.action == "dump"
    assert f"field Typed.{field}" in str(err) or f"field {field}" in str(err)
    assert type_name in str(err)
    assert await count_rows(admin) == 0


def test_cast_error_cases_cover_every_field() -> None:
    assert {p.values[0] for p in CAST_ERRORS} == set(DATA_FIELDS)


async def test_one_bad_field_among_good_ones_writes_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(CastError) as info:
        await repo.insert(Typed(**{**FULL, "u": "not-a-uuid"}))
    assert (info.value.field, info.value.value, info.value.type) == ("u", "not-a-uuid", "uuid")
    assert await count_rows(admin) == 0


async def test_wrong_typed_update_raises_cast_error_and_leaves_the_row(repo: Repo, admin: asyncpg.Connection) -> None:
    inserted = await repo.insert(Typed(**FULL))
    with pytest.raises(CastError) as info:
        await repo.update(change(inserted, i=-1, ints=[1, "x"]))
    assert (info.value.field, info.value.value, info.value.type) == ("ints", [1, "x"], "array(integer)")
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert got.i == FULL["i"]
    assert got.ints == FULL["ints"]
    assert await admin.fetchval("SELECT i FROM typed WHERE id = $1", inserted.id) == FULL["i"]


OUT_OF_RANGE = [
    pytest.param("i", 2**31, id="i-beyond-int4"),
    pytest.param("i", -(2**31) - 1, id="i-below-int4"),
    pytest.param("big", 2**63, id="big-beyond-int8"),
    pytest.param("s", "x" * 256, id="s-256-chars"),
    pytest.param("s", "nul\x00inside", id="s-nul-char"),
    pytest.param("ints", [2**31], id="ints-beyond-int4"),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
async def test_values_the_column_cannot_hold_are_refused_and_nothing_written(
    repo: Repo, admin: asyncpg.Connection, field: str, value: Any
) -> None:
    # The types do not range-check; PostgreSQL or the driver refuses, and the refusal is clean.
    with pytest.raises((CastError, DatabaseError)):
        await repo.insert(Typed(**{field: value}))
    assert await count_rows(admin) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("udu", dt.datetime(9999, 12, 31, 23, 0, 0, tzinfo=MINUS0530), id="udu-after-year-9999"),
        pytest.param("ud", dt.datetime(1, 1, 1, 0, 0, 0, tzinfo=PLUS2), id="ud-before-year-1"),
    ],
)
async def test_utc_instant_out_of_range_raises_cast_error(
    repo: Repo, admin: asyncpg.Connection, field: str, value: dt.datetime
) -> None:
    kwargs: dict[str, Any] = {field: value}
    # astimezone(UTC) overflows here: the OverflowError must come out as a CastError.
    with pytest.raises(CastError) as info:
        await repo.insert(Typed(**kwargs))
    assert (info.value.field, info.value.value, info.value.type) == (field, value, TYPES[field].name)
    assert info.value.action == "dump"
    assert await count_rows(admin) == 0


# -- 4. second-precision types refuse microseconds on dump -------------------------------

SECOND_PRECISION = [
    pytest.param("nd", dt.datetime(2024, 1, 1, 12, 0, 0, 1), t.NaiveDatetime(), id="nd"),
    pytest.param("tm", dt.time(12, 0, 0, 500000), t.Time(), id="tm"),
    pytest.param("ud", dt.datetime(2024, 1, 1, 12, 0, 0, 999999, tzinfo=UTC), t.UtcDatetime(), id="ud"),
]


@pytest.mark.parametrize(("field", "value", "type_"), SECOND_PRECISION)
async def test_second_precision_dump_refuses_microseconds(
    repo: Repo, admin: asyncpg.Connection, field: str, value: Any, type_: t.Type[Any]
) -> None:
    with pytest.raises(CastError) as info:
        await repo.insert(Typed(**{field: value}))
    err = info.value
    assert (err.field, err.value, err.type, err.action) == (field, value, type_.name, "dump")
    assert err.reason is not None and "microseconds" in err.reason
    assert await count_rows(admin) == 0

    # cast is the lenient path: it truncates to the second, and that value goes in.
    cast = t.cast_value(type_, value, field=field)
    assert cast == value.replace(microsecond=0)
    inserted = await repo.insert(Typed(**{field: cast}))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert_loaded(field, getattr(got, field), value.replace(microsecond=0))


# -- 5. Repo.load with driver values -------------------------------------------------------


async def test_load_from_query_result_equals_get(repo: Repo) -> None:
    inserted = await repo.insert(Typed(**FULL))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    result = await repo.query("SELECT * FROM typed WHERE id = $1", [inserted.id])
    assert result.num_rows == 1
    row = result.rows[0]
    assert_same_struct(repo.load(Typed, dict(zip(result.columns, row, strict=True))), got)
    assert_same_struct(repo.load(Typed, (result.columns, row)), got)


@pytest.mark.no_sandbox  # reads with a plain asyncpg connection (no asyncecto codecs)
async def test_load_from_raw_asyncpg_record_equals_get(repo: Repo, admin: asyncpg.Connection) -> None:
    # The raw connection has no JSON codec: jsonb arrives as text and Map.load decodes it.
    inserted = await repo.insert(Typed(**FULL))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    record = await admin.fetchrow("SELECT *, 1 AS not_a_field FROM typed WHERE id = $1", inserted.id)
    assert record is not None
    assert isinstance(record["m"], str)
    assert_same_struct(repo.load(Typed, record), got)


async def test_load_from_hand_written_driver_values_equals_get(repo: Repo) -> None:
    inserted = await repo.insert(
        Typed(
            ud=dt.datetime(2024, 1, 1, 12, tzinfo=PLUS2),
            status=Status.PUBLISHED,
            level=Level.HIGH,
            size="large",
            mood="sad",
            u=FULL["u"],
            m={"a": [1]},
        )
    )
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    driver = {
        "id": inserted.id,
        "ud": dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC),
        "status": "published",
        "level": 5,
        "size": 2,
        "mood": "sad",
        "u": str(FULL["u"]),
        "m": '{"a": [1]}',
    }
    loaded = repo.load(Typed, driver)
    assert loaded == got
    assert loaded.status is Status.PUBLISHED
    assert loaded.level is Level.HIGH
    assert loaded.size == "large"
    assert type(loaded.u) is uuid.UUID
    assert loaded.ud is not None and loaded.ud.utcoffset() == dt.timedelta(0)
    assert loaded.m == {"a": [1]}
    assert all(getattr(loaded, f) is None for f in DATA_FIELDS if f not in driver)


async def test_load_of_all_nulls_equals_get(repo: Repo) -> None:
    inserted = await repo.insert(Typed())
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    result = await repo.query("SELECT * FROM typed WHERE id = $1", [inserted.id])
    assert_same_struct(repo.load(Typed, (result.columns, result.rows[0])), got)


# -- 6. NULL everywhere --------------------------------------------------------------------


async def test_null_in_every_field_round_trips_as_none(repo: Repo, admin: asyncpg.Connection) -> None:
    inserted = await repo.insert(Typed())
    assert isinstance(inserted.id, int)
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert got.id == inserted.id
    for name in DATA_FIELDS:
        assert getattr(got, name) is None, name
    nulls = await admin.fetchval(f"SELECT num_nulls({', '.join(DATA_FIELDS)}) FROM typed WHERE id = $1", inserted.id)
    assert nulls == len(DATA_FIELDS)


@pytest.mark.parametrize("field", DATA_FIELDS)
async def test_explicit_none_beside_a_value_stays_null(repo: Repo, admin: asyncpg.Connection, field: str) -> None:
    # Every other field gets a value; this one alone is None.
    values: Mapping[str, Any] = {**FULL, field: None}
    inserted = await repo.insert(Typed(**values))
    got = await repo.get(Typed, inserted.id)
    assert got is not None
    assert getattr(got, field) is None
    assert await admin.fetchval(f"SELECT {field} IS NULL FROM typed WHERE id = $1", inserted.id) is True
    for other in DATA_FIELDS:
        if other != field:
            assert_loaded(other, getattr(got, other), FULL[other])
