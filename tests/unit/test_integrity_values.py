"""Issue 16, defect 9 (values), pure parts: what PostgreSQL cannot store is refused by the type.

A NUL character or a lone surrogate in a string (also in a map, at any depth, and in an
array), an int beyond 64 bits, a decimal beyond ``numeric``, a NaN inside jsonb: ``cast``
and ``dump`` raise :class:`asyncecto.types.Unstorable`, ``cast_value``/``dump_value`` a
:class:`CastError` naming the field with the reason and the fix, a changeset the error
``"is invalid"`` with the reason in its metadata. Query parameters are checked by the planner.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.adapters.postgres._errors import copy_encode_error
from asyncecto.changeset import cast
from asyncecto.errors import CastError
from asyncecto.query import fragment, from_, select, update, where

from ..schemas import Post, Typed, Weather

D = decimal.Decimal
REPO = Repo("postgres://localhost/unused")

NUL = "a\x00b"
SURROGATE = "a\ud800b"

#: (type, value PostgreSQL cannot store, a word of the reason)
UNSTORABLE: list[Any] = [
    pytest.param(t.String(), NUL, "NUL", id="string-nul"),
    pytest.param(t.String(), SURROGATE, "surrogate", id="string-surrogate"),
    pytest.param(t.String(), "\udfff", "surrogate", id="string-low-surrogate-alone"),
    pytest.param(t.String(), "é" * 10 + "\ud83d", "surrogate", id="string-non-ascii-then-surrogate"),
    pytest.param(t.Array(t.String()), ["ok", NUL], "NUL", id="array-nul"),
    pytest.param(t.Array(t.Array(t.String())), [["ok"], [None, SURROGATE]], "surrogate", id="nested-array"),
    pytest.param(t.Map(), {"k": NUL}, "NUL", id="map-value"),
    pytest.param(t.Map(), {NUL: 1}, "NUL", id="map-key"),
    pytest.param(t.Map(), {"a": [1, {"b": [{"c": SURROGATE}]}]}, "surrogate", id="map-deep"),
    pytest.param(t.Map(), {"a": [{SURROGATE: None}]}, "surrogate", id="map-deep-key"),
    pytest.param(t.Map(), {"x": float("nan")}, "NaN", id="map-nan"),
    pytest.param(t.Map(), {"x": [float("-inf")]}, "infinity", id="map-infinity"),
    pytest.param(t.Map(t.String()), {"k": NUL}, "NUL", id="map-of-string"),
    pytest.param(t.Integer(), 2**63, "64-bit", id="integer-2**63"),
    pytest.param(t.Integer(), -(2**63) - 1, "64-bit", id="integer-below-int8"),
    pytest.param(t.Id(), 2**70, "64-bit", id="id-2**70"),
    pytest.param(t.Array(t.Integer()), [1, 2**64], "64-bit", id="array-of-big-int"),
    pytest.param(t.Decimal(), D("1e131072"), "131072", id="decimal-too-large"),
    pytest.param(t.Decimal(), D("-9.5e131075"), "131072", id="decimal-too-negative"),
    pytest.param(t.Decimal(), D("1e-16384"), "16383", id="decimal-too-precise"),
]


@pytest.mark.parametrize(("type_", "value", "word"), UNSTORABLE)
def test_defect_9_types_refuse_what_postgresql_cannot_store(type_: Any, value: Any, word: str) -> None:
    for method in (type_.cast, type_.dump):
        with pytest.raises(t.Unstorable, match=word):
            method(value)
    for entry in (t.cast_value, t.dump_value):
        with pytest.raises(CastError) as info:
            entry(type_, value, field="f", schema="S")
        err = info.value
        assert (err.field, err.schema, err.value, err.type) == ("f", "S", value, type_.name)
        assert err.reason is not None and word in err.reason
        assert err.fix is not None and err.fix in str(err)
        assert "field S.f" in str(err)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (t.String(), "plain"),
        (t.String(), ""),
        (t.String(), "é ü \U0001f600 \u200b \ufffd"),  # a paired surrogate is one code point: fine
        (t.String(), "\\x00 and \\ud800 as text"),
        (t.Map(), {"k": ["é", {"\U0001f600": None}], "n": 2**70, "f": 1.5}),
        (t.Integer(), 2**63 - 1),
        (t.Integer(), -(2**63)),
        (t.Id(), "9223372036854775807"),
        (t.Decimal(), D("9.9e131071")),
        (t.Decimal(), D("1e-16383")),
        (t.Decimal(), D("0E+200000")),  # zero with a large exponent is zero
    ],
)
def test_defect_9_storable_values_are_kept(type_: Any, value: Any) -> None:
    assert type_.cast(value) == (int(value) if isinstance(value, str) and type_.name == "id" else value)
    assert type_.dump(type_.cast(value)) == type_.cast(value)


def test_defect_9_decimal_nan_and_infinity_dump_as_numeric_stores_them_but_are_not_cast() -> None:
    for special in ("NaN", "Infinity", "-Infinity"):
        assert str(t.Decimal().dump(D(special))) == special
        with pytest.raises(ValueError, match="finite"):
            t.Decimal().cast(D(special))
    with pytest.raises(t.Unstorable, match="signaling"):
        t.Decimal().dump(D("sNaN"))


def test_defect_9_float_nan_and_infinity_dump_for_float8() -> None:
    for special in (float("inf"), float("-inf")):
        assert t.Float().dump(special) == special
    assert t.Float().dump(float("nan")) != t.Float().dump(float("nan"))  # NaN, kept as NaN


def test_defect_9_changeset_error_carries_the_reason_in_its_metadata() -> None:
    cs = cast(Typed(), {"s": NUL, "i": 2**64, "m": {"k": SURROGATE}, "b": "maybe"}, ["s", "i", "m", "b"])
    assert not cs.valid and cs.changes == {}
    errors = dict(cs.errors)
    assert errors["s"] == (
        "is invalid",
        {
            "type": "string",
            "validation": "cast",
            "reason": "contains a NUL character (\\x00) at index 1, which PostgreSQL text cannot store",
        },
    )
    assert errors["i"][1]["reason"].startswith("out of range: PostgreSQL integers are at most 64-bit")
    assert "lone surrogate (U+D800)" in errors["m"][1]["reason"]
    assert errors["b"] == ("is invalid", {"type": "boolean", "validation": "cast"})  # Ecto's exact metadata


def test_defect_9_changeset_message_callback_sees_the_reason() -> None:
    seen: list[Any] = []

    def message(field: str, meta: Any) -> str:
        seen.append((field, dict(meta)))
        return "cannot be stored"

    cs = cast(Typed(), {"texts": ["ok", NUL]}, ["texts"], message=message)
    assert cs.errors[0][1][0] == "cannot be stored"
    assert seen[0][0] == "texts" and "NUL" in seen[0][1]["reason"]


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (t.Date(), "10000-01-01"),
        (t.Date(), "0000-01-01"),
        (t.Date(), "2023-02-29"),
        (t.Date(), {"year": 10**20, "month": 1, "day": 1}),
        (t.Date(), {"year": "99999", "month": 1, "day": 1}),
        (t.NaiveDatetime(), "0000-01-01T00:00:00"),
        (t.NaiveDatetime(), "0001-01-01T00:00:00+01:00"),  # converted to UTC: before year 1
        (t.UtcDatetimeUsec(), "9999-12-31T23:59:59-01:00"),  # converted to UTC: after year 9999
        (t.UtcDatetime(), {"year": 2024, "month": 13, "day": 1, "hour": 0, "minute": 0}),
        (t.Time(), "24:00:00"),
        (t.TimeUsec(), {"hour": 10**30, "minute": 0}),
        (t.UUID(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"),
        (t.UUID(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\x00"),
        (t.UUID(), "g" * 32),
        (t.Integer(), "9" * 40),
    ],
)
def test_defect_9_out_of_range_dates_and_malformed_strings_are_invalid_never_a_python_error(
    type_: Any, value: Any
) -> None:
    with pytest.raises(CastError) as info:
        t.cast_value(type_, value, field="f")
    assert info.value.field == "f"
    cs = cast(({}, {"f": type_}), {"f": value}, ["f"])
    assert cs.errors == (("f", ("is invalid", cs.errors[0][1][1])),)
    assert cs.errors[0][1][1]["type"] == type_.name


def test_defect_9_aware_datetime_dump_beyond_python_range_is_a_cast_error() -> None:
    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with pytest.raises(CastError):
        t.dump_value(t.UtcDatetimeUsec(), early, field="at")


def test_defect_9_check_passed_finds_the_bad_value_in_a_column() -> None:
    t.check_passed(t.String(), ["a", None, "é"], {str, type(None)}, field="title")
    t.check_passed(t.Integer(), [1, None, 2**63 - 1], {int, type(None)}, field="n")
    with pytest.raises(CastError) as info:
        t.check_passed(t.String(), ["a", "é", None, "x\udc80"], {str, type(None)}, field="title", schema="Post")
    assert (info.value.field, info.value.value, info.value.action) == ("title", "x\udc80", "dump")
    with pytest.raises(CastError) as info:
        t.check_passed(t.Integer(), [1, None, -(2**63) - 1], {int, type(None)}, field="n")
    assert info.value.value == -(2**63) - 1
    # two lone halves in two values stay two lone surrogates once joined
    with pytest.raises(CastError):
        t.check_passed(t.String(), ["a\ud83d", "\ude00b"], {str}, field="title")


def test_defect_9_cast_error_abbreviates_a_huge_value() -> None:
    huge = "x" * 10_000_000 + "\x00"
    with pytest.raises(CastError) as info:
        t.dump_value(t.String(), huge, field="body")
    assert len(str(info.value)) < 1_000
    assert "more characters" in str(info.value)
    assert info.value.value is huge
    with pytest.raises(CastError) as info:
        t.dump_value(t.Integer(), 10**5000, field="n")  # repr() of it would itself fail
    assert "-bit integer" in str(info.value)


# -- query parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: from_(Post) | where(lambda p: p.title == NUL), id="where-lambda"),
        pytest.param(lambda: from_(Post) | where(title=SURROGATE), id="where-keyword"),
        pytest.param(lambda: from_(Post) | where(lambda p: p.title.in_(["ok", NUL])), id="in"),
        pytest.param(lambda: from_(Post) | where(lambda p: p.title.like(SURROGATE)), id="like"),
        pytest.param(lambda: from_(Post) | where(lambda p: fragment("? = ?", p.title, NUL)), id="untyped-fragment"),
        pytest.param(lambda: from_(Post) | select(lambda p: (p.id, SURROGATE)), id="untyped-literal"),
        pytest.param(lambda: from_(Typed) | where(lambda x: x.m == {"k": NUL}), id="map"),
        pytest.param(lambda: from_(Typed) | where(lambda x: x.i == "99999999999999999999"), id="digits-beyond-int8"),
    ],
)
def test_defect_9_query_parameters_postgresql_cannot_store_are_refused_before_sql(build: Any) -> None:
    with pytest.raises(CastError):
        REPO.to_sql("all", build())


def test_defect_9_update_all_set_and_inc_refuse_unstorable_values() -> None:
    with pytest.raises(CastError) as info:
        REPO.to_sql("update_all", from_(Post) | update(set={"title": NUL}))
    assert info.value.field == "title"
    with pytest.raises(CastError) as info:
        REPO.to_sql("update_all", from_(Post) | update(inc={"visits": 2**64}))
    assert info.value.field == "visits"


def test_defect_9_big_ints_beside_an_integer_field_are_typed_by_their_value() -> None:
    def sql(q: Any) -> tuple[str, list[Any]]:
        return REPO.to_sql("all", q)

    small, params = sql(from_(Weather) | where(lambda w: w.temp_lo > 5))
    assert small.endswith('WHERE (w0."temp_lo" > $1)') and params == [5]
    big, params = sql(from_(Weather) | where(lambda w: w.temp_lo > 2**40))
    assert big.endswith('WHERE (w0."temp_lo" > $1::bigint)') and params == [2**40]
    huge, params = sql(from_(Weather) | where(lambda w: w.id == 2**70))
    assert huge.endswith('WHERE (w0."id" = $1::numeric)') and params == [2**70]
    below, _ = sql(from_(Weather) | where(lambda w: -(2**31) - 1 < w.temp_lo))  # noqa: SIM300  (value first)
    assert "$1::bigint" in below
    within, _ = sql(from_(Weather) | where(lambda w: w.temp_lo.in_([1, 2])))
    assert "::" not in within.split("WHERE")[1]
    wide, params = sql(from_(Weather) | where(lambda w: w.temp_lo.in_([1, 2**40])))
    assert "$1::bigint[]" in wide and params == [[1, 2**40]]
    wider, _ = sql(from_(Weather) | where(lambda w: w.temp_lo.in_([1, 2**70])))
    assert "$1::numeric[]" in wider
    arith, _ = sql(from_(Weather) | where(lambda w: w.temp_lo + 2**40 > 0))
    assert "$1::bigint" in arith


# -- COPY: what asyncpg cannot encode ---------------------------------------------------------


def test_defect_9_copy_encode_errors_name_the_row_and_column() -> None:
    rows = [(1, "ok", None), (2, "bad\ud800", [1]), (3, "x", None)]
    try:
        rows[1][1].encode()
    except UnicodeEncodeError as exc:
        err = copy_encode_error(exc, "COPY", "notes", ["id", "body", "ns"], rows)
    assert (err.column_name, err.sqlstate, err.table_name) == ("body", "22000", "notes")
    assert "COPY row 2, column 'body'" in err.message
    overflow = copy_encode_error(
        OverflowError("value out of int32 range"), "COPY", "t", ["id", "ns"], [(1, [5, 2**40])]
    )
    assert (overflow.column_name, overflow.sqlstate) == ("ns", "22003")
    unknown = copy_encode_error(TypeError("expected str, got int"), "COPY", "t", ["a"], [(1,)], first=7)
    assert unknown.column_name is None and "expected str, got int" in unknown.message


# -- properties -------------------------------------------------------------------------------


def _storable(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=300, database=None)
@given(st.text())
def test_defect_9_any_string_is_kept_or_refused_with_the_reason(text: str) -> None:
    if _storable(text):
        assert t.String().cast(text) == text == t.String().dump(text)
        assert t.Map().dump({text: [text]}) == {text: [text]}
        assert cast(Post(), {"title": text}, ["title"]).valid
    else:
        with pytest.raises(t.Unstorable):
            t.String().dump(text)
        with pytest.raises(t.Unstorable):
            t.Map().dump({"k": {text: 1}})
        with pytest.raises(CastError):
            t.check_passed(t.String(), ["ok", text], {str}, field="title")
        cs = cast(Post(), {"title": text}, ["title"])
        assert not cs.valid and "reason" in cs.errors[0][1][1]


@settings(max_examples=200, database=None)
@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_defect_9_integers_are_kept_within_64_bits_and_refused_beyond(number: int) -> None:
    if -(2**63) <= number < 2**63:
        assert t.Integer().dump(number) == number
        assert t.Id().cast(str(number)) == number
    else:
        with pytest.raises(t.Unstorable):
            t.Integer().dump(number)
