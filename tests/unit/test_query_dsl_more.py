"""More of the query DSL without a database: JSON paths, time shifts, interval arithmetic, WITH TIES,
fragment modifiers, FILTER, dynamics, subqueries, windows, combinations, CTEs and select_merge."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    E,
    ago,
    avg,
    constant,
    count,
    cume_dist,
    date_add,
    datetime_add,
    dense_rank,
    desc,
    dynamic,
    except_,
    except_all,
    exists,
    filter_,
    first_value,
    fragment,
    from_,
    from_now,
    group_by,
    having,
    identifier,
    intersect,
    intersect_all,
    is_nil,
    join,
    lag,
    last_value,
    lead,
    limit,
    max_,
    nth_value,
    ntile,
    offset,
    order_by,
    over,
    parent_as,
    percent_rank,
    rank,
    row_number,
    select,
    select_merge,
    splice,
    subquery,
    sum_,
    union,
    union_all,
    where,
    windows,
    with_cte,
    with_ties,
)
from asyncecto.query._expr import bindings
from asyncecto.query._param_types import shift as _shift
from asyncecto.query._planner import plan

from ..schemas import Post, Typed, User, Weather

REPO = Repo("postgres://localhost/x")

W_COLS = 'w0."id", w0."city", w0."temp_lo", w0."temp_hi", w0."prcp"'
W = f'SELECT {W_COLS} FROM "weather" AS w0'
P_COLS = 'p0."id", p0."title", p0."content", p0."visits", p0."rating", p0."inserted_at", p0."updated_at"'
D = decimal.Decimal


def sql(q: Any) -> str:
    return REPO.to_sql(q)[0]


def params(q: Any) -> list[Any]:
    return REPO.to_sql(q)[1]


def fresh_sql(q: Any) -> tuple[str, list[Any]]:
    """SQL from a repo with an empty statement cache."""
    return Repo("postgres://localhost/x").to_sql(q)


# --- JSON paths on map fields -------------------------------------------------------------------


def test_json_path_in_select_is_one_text_array_parameter() -> None:
    q = from_(Typed) | select(lambda t: t.m["a"]["b"][0])
    assert REPO.to_sql(q) == ('SELECT (t0."m" #> $1) FROM "typed" AS t0', [["a", "b", "0"]])


def test_json_path_of_one_key() -> None:
    q = from_(Typed) | select(lambda t: t.m["k"])
    assert REPO.to_sql(q) == ('SELECT (t0."m" #> $1) FROM "typed" AS t0', [["k"]])


def test_json_path_compared_with_a_value_sends_the_value_uncast() -> None:
    q = from_(Typed) | where(lambda t: t.m["k"] == 1) | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE ((t0."m" #> $1) = $2)', [["k"], 1])


def test_json_path_compared_with_a_string() -> None:
    q = from_(Typed) | where(lambda t: t.m["a"][1] != "x") | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE ((t0."m" #> $1) != $2)', [["a", "1"], "x"])


def test_json_path_sql_does_not_depend_on_the_path() -> None:
    a = from_(Typed) | select(lambda t: t.m["a"])
    b = from_(Typed) | select(lambda t: t.m["x"][3])
    assert sql(a) == sql(b)
    assert plan(a)[0] == plan(b)[0]
    assert params(b) == [["x", "3"]]


def test_json_path_with_is_nil_and_params_in_order() -> None:
    q = from_(Typed) | where(lambda t: is_nil(t.m["gone"]) & (t.i > 2)) | select(lambda t: t.m["k"])
    assert REPO.to_sql(q) == (
        'SELECT (t0."m" #> $1) FROM "typed" AS t0 WHERE ((t0."m" #> $2) IS NULL AND (t0."i" > $3))',
        [["k"], ["gone"], 2],
    )


def test_json_path_keys_never_reach_sql() -> None:
    text, sent = REPO.to_sql(from_(Typed) | select(lambda t: t.m["it's; $1"]))
    assert "it's" not in text
    assert sent == [["it's; $1"]]


@pytest.mark.parametrize("key", [1.5, None, True, b"k"])
def test_json_path_rejects_other_keys(key: Any) -> None:
    (t,) = bindings(from_(Typed))
    with pytest.raises(QueryError, match="a JSON path element must be a string or an integer"):
        t.m[key]


def test_repr_of_a_json_path() -> None:
    q = from_(Typed) | where(lambda t: t.m["k"] == 1) | select(lambda t: t.m["a"]["b"][0])
    assert repr(q) == "Query<from_(Typed) | where(lambda: b0.m['k'] == 1) | select(lambda: b0.m['a']['b'][0])>"


# --- ago / from_now -----------------------------------------------------------------------------


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def test_ago_against_a_naive_field_is_a_naive_second_precision_parameter() -> None:
    before = dt.datetime.now(dt.UTC)
    text, [sent] = REPO.to_sql(from_(Post) | where(lambda p: p.inserted_at > ago(3, "day")) | select(lambda p: p.id))
    after = dt.datetime.now(dt.UTC)
    assert text == 'SELECT p0."id" FROM "posts" AS p0 WHERE (p0."inserted_at" > $1)'
    assert isinstance(sent, dt.datetime)
    assert sent.tzinfo is None
    assert sent.microsecond == 0
    low = _naive(before) - dt.timedelta(days=3, seconds=1)
    assert low <= sent <= _naive(after) - dt.timedelta(days=3)


def test_from_now_against_a_utc_field_is_an_aware_microsecond_parameter() -> None:
    before = dt.datetime.now(dt.UTC)
    text, [sent] = REPO.to_sql(
        from_(User) | where(lambda u: u.created_at < from_now(2, "hour")) | select(lambda u: u.id)
    )
    after = dt.datetime.now(dt.UTC)
    assert text == 'SELECT u0."id" FROM "users" AS u0 WHERE (u0."created_at" < $1)'
    assert sent.utcoffset() == dt.timedelta(0)
    assert before + dt.timedelta(hours=2) <= sent <= after + dt.timedelta(hours=2)


def test_ago_against_a_second_precision_utc_field_drops_microseconds() -> None:
    [sent] = params(from_(Typed) | where(lambda t: t.ud >= ago(10, "minute")))
    assert sent.utcoffset() == dt.timedelta(0)
    assert sent.microsecond == 0


def test_ago_on_the_left_takes_the_type_of_the_field_on_the_right() -> None:
    text, [sent] = REPO.to_sql(from_(Post) | where(lambda p: ago(1, "week") < p.inserted_at) | select(lambda p: p.id))
    assert text == 'SELECT p0."id" FROM "posts" AS p0 WHERE ($1 < p0."inserted_at")'
    assert sent.tzinfo is None
    assert abs(sent - (_naive(dt.datetime.now(dt.UTC)) - dt.timedelta(weeks=1))) < dt.timedelta(seconds=5)


def test_ago_alone_in_a_select_is_an_aware_utc_parameter() -> None:
    text, [sent] = REPO.to_sql(from_(Weather) | select(lambda w: ago(1, "day")))
    assert text.startswith("SELECT $1")
    assert sent.utcoffset() == dt.timedelta(0)
    assert abs(sent - (dt.datetime.now(dt.UTC) - dt.timedelta(days=1))) < dt.timedelta(seconds=5)


def test_ago_in_months_uses_the_calendar() -> None:
    before = dt.datetime.now(dt.UTC)
    [sent] = params(from_(User) | where(lambda u: u.created_at > ago(2, "month")))
    after = dt.datetime.now(dt.UTC)
    assert _shift(before, -2, "month") <= sent <= _shift(after, -2, "month")


@pytest.mark.parametrize(
    ("unit", "delta"),
    [
        ("week", dt.timedelta(weeks=2)),
        ("day", dt.timedelta(days=2)),
        ("hour", dt.timedelta(hours=2)),
        ("minute", dt.timedelta(minutes=2)),
        ("second", dt.timedelta(seconds=2)),
        ("millisecond", dt.timedelta(milliseconds=2)),
        ("microsecond", dt.timedelta(microseconds=2)),
    ],
)
def test_from_now_of_each_fixed_unit(unit: str, delta: dt.timedelta) -> None:
    before = dt.datetime.now(dt.UTC)
    [sent] = params(from_(User) | where(lambda u: u.created_at < from_now(2, unit)))
    after = dt.datetime.now(dt.UTC)
    assert before + delta <= sent <= after + delta


def test_ago_plans_are_equal_whatever_the_amount_and_time() -> None:
    a, a_params = plan(from_(Post) | where(lambda p: p.inserted_at > ago(1, "day")))
    b, b_params = plan(from_(Post) | where(lambda p: p.inserted_at > ago(9, "day")))
    assert a == b
    assert a_params != b_params


@pytest.mark.parametrize("make", [ago, from_now])
@pytest.mark.parametrize("unit", ["days", "fortnight", "", "Day"])
def test_ago_and_from_now_refuse_unknown_units(make: Any, unit: str) -> None:
    with pytest.raises(QueryError, match=f"unknown interval unit {unit!r}; use one of year, month, week, day"):
        make(1, unit)


def test_ago_in_fractional_months_raises_when_planned() -> None:
    q = from_(Post) | where(lambda p: p.inserted_at > ago(1.5, "month"))
    with pytest.raises(QueryError, match=r"ago/from_now take whole months, got -1\.5"):
        plan(q)


def test_repr_of_ago_and_from_now() -> None:
    q = from_(Post) | where(lambda p: (p.inserted_at > ago(3, "day")) & (p.updated_at < from_now(1.5, "hour")))
    assert repr(q) == (
        "Query<from_(Post) | where(lambda: (b0.inserted_at > ago(3, 'day')) & (b0.updated_at < from_now(1.5, 'hour')))>"
    )


# --- _shift: calendar arithmetic ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        (dt.datetime(2024, 1, 31, 10, 30), 1, "month", dt.datetime(2024, 2, 29, 10, 30)),
        (dt.datetime(2023, 1, 31, 10, 30), 1, "month", dt.datetime(2023, 2, 28, 10, 30)),
        (dt.datetime(2024, 3, 31), -1, "month", dt.datetime(2024, 2, 29)),
        (dt.datetime(2024, 5, 31), 1, "month", dt.datetime(2024, 6, 30)),
        (dt.datetime(2024, 12, 31), 2, "month", dt.datetime(2025, 2, 28)),
        (dt.datetime(2024, 1, 15), -13, "month", dt.datetime(2022, 12, 15)),
        (dt.datetime(2024, 11, 30), 3, "month", dt.datetime(2025, 2, 28)),
        (dt.datetime(2024, 2, 29), 1, "year", dt.datetime(2025, 2, 28)),
        (dt.datetime(2024, 2, 29), -4, "year", dt.datetime(2020, 2, 29)),
        (dt.datetime(1900, 1, 31), 1, "month", dt.datetime(1900, 2, 28)),
        (dt.datetime(2000, 1, 31), 1, "month", dt.datetime(2000, 2, 29)),
        (dt.datetime(2024, 1, 31), 2.0, "month", dt.datetime(2024, 3, 31)),
        (dt.datetime(2024, 1, 1), 1.5, "day", dt.datetime(2024, 1, 2, 12)),
        (dt.datetime(2024, 1, 1), -2, "week", dt.datetime(2023, 12, 18)),
        (dt.datetime(2024, 1, 1), 90, "minute", dt.datetime(2024, 1, 1, 1, 30)),
        (dt.datetime(2024, 1, 1), 1500, "millisecond", dt.datetime(2024, 1, 1, 0, 0, 1, 500000)),
    ],
)
def test_shift(start: dt.datetime, amount: Any, unit: str, expected: dt.datetime) -> None:
    assert _shift(start, amount, unit) == expected


def test_shift_keeps_the_time_zone() -> None:
    start = dt.datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert _shift(start, 1, "month") == dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert _shift(start, 1, "month").tzinfo is dt.UTC


@pytest.mark.parametrize(("amount", "unit"), [(0.5, "month"), (1.25, "year")])
def test_shift_refuses_fractional_months_and_years(amount: float, unit: str) -> None:
    with pytest.raises(QueryError, match=f"take whole {unit}s"):
        _shift(dt.datetime(2024, 1, 1), amount, unit)


# --- datetime_add / date_add --------------------------------------------------------------------


def test_datetime_add_in_select_is_database_interval_arithmetic() -> None:
    q = from_(Post) | select(lambda p: datetime_add(p.inserted_at, 3, "day"))
    assert REPO.to_sql(q) == (
        """SELECT (p0."inserted_at" + ($1::numeric * interval '1 day')) FROM "posts" AS p0""",
        [3],
    )


@pytest.mark.parametrize("amount", [-2, 1.5, -0.25, D("2.5")])
def test_datetime_add_sends_negative_and_decimal_amounts_as_parameters(amount: Any) -> None:
    q = from_(Post) | select(lambda p: datetime_add(p.inserted_at, amount, "hour"))
    assert REPO.to_sql(q) == (
        """SELECT (p0."inserted_at" + ($1::numeric * interval '1 hour')) FROM "posts" AS p0""",
        [amount],
    )


@pytest.mark.parametrize("unit", ["year", "month", "week", "day", "hour", "minute", "second", "millisecond"])
def test_datetime_add_writes_the_unit_into_the_interval(unit: str) -> None:
    q = from_(User) | select(lambda u: datetime_add(u.created_at, 1, unit))
    assert sql(q) == f"""SELECT (u0."created_at" + ($1::numeric * interval '1 {unit}')) FROM "users" AS u0"""


def test_datetime_add_in_where_casts_the_compared_value_to_the_field_type() -> None:
    q = from_(Post) | where(lambda p: datetime_add(p.inserted_at, 30, "day") > "2024-03-01T00:00:00") | select(["id"])
    assert REPO.to_sql(q) == (
        """SELECT p0."id" FROM "posts" AS p0 WHERE ((p0."inserted_at" + ($1::numeric * interval '1 day')) > $2)""",
        [30, dt.datetime(2024, 3, 1)],
    )


def test_datetime_add_of_a_field_amount() -> None:
    q = from_(Post) | select(lambda p: datetime_add(p.inserted_at, p.visits, "minute"))
    assert REPO.to_sql(q) == (
        """SELECT (p0."inserted_at" + (p0."visits"::numeric * interval '1 minute')) FROM "posts" AS p0""",
        [],
    )


def test_datetime_add_compared_with_ago() -> None:
    q = from_(Post) | where(lambda p: datetime_add(p.inserted_at, 1, "day") < ago(0, "day")) | select(["id"])
    text, [amount, moment] = REPO.to_sql(q)
    assert text == (
        """SELECT p0."id" FROM "posts" AS p0 WHERE ((p0."inserted_at" + ($1::numeric * interval '1 day')) < $2)"""
    )
    assert amount == 1
    assert moment.tzinfo is None and moment.microsecond == 0


def test_date_add_casts_the_result_to_a_date() -> None:
    q = from_(Typed) | select(lambda t: date_add(t.d, -1.5, "month"))
    assert REPO.to_sql(q) == (
        """SELECT (t0."d" + ($1::numeric * interval '1 month'))::date FROM "typed" AS t0""",
        [-1.5],
    )


def test_date_add_in_where_casts_the_compared_value_to_a_date() -> None:
    q = from_(Typed) | where(lambda t: date_add(t.d, 2, "week") == "2024-02-14") | select(lambda t: t.id)
    assert REPO.to_sql(q) == (
        """SELECT t0."id" FROM "typed" AS t0 WHERE ((t0."d" + ($1::numeric * interval '1 week'))::date = $2)""",
        [2, dt.date(2024, 2, 14)],
    )


@pytest.mark.parametrize("make", [datetime_add, date_add])
def test_interval_functions_refuse_unknown_units(make: Any) -> None:
    (t,) = bindings(from_(Typed))
    with pytest.raises(QueryError, match="unknown interval unit 'days'"):
        make(t.d, 1, "days")


def test_repr_of_datetime_add_and_date_add() -> None:
    q = from_(Typed) | select(lambda t: (datetime_add(t.nd, -1.5, "day"), date_add(t.d, 2, "month")))
    assert (
        repr(q)
        == "Query<from_(Typed) | select(lambda: (datetime_add(b0.nd, -1.5, 'day'), date_add(b0.d, 2, 'month')))>"
    )


# --- with_ties ----------------------------------------------------------------------------------


def test_limit_with_ties_is_fetch_first_with_ties() -> None:
    q = from_(Weather) | order_by("temp_lo") | limit(2, with_ties=True)
    assert REPO.to_sql(q) == (f'{W} ORDER BY w0."temp_lo" FETCH FIRST $1 ROWS WITH TIES', [2])


def test_with_ties_step_equals_the_limit_option() -> None:
    a = from_(Weather) | order_by("temp_lo") | limit(2) | with_ties()
    b = from_(Weather) | order_by("temp_lo") | limit(2, with_ties=True)
    assert a == b
    assert REPO.to_sql(a) == REPO.to_sql(b)


def test_with_ties_and_an_offset_put_the_offset_first() -> None:
    q = from_(Weather) | where(city="x") | order_by(desc="temp_lo") | offset(3) | limit(2, with_ties=True)
    assert REPO.to_sql(q) == (
        f'{W} WHERE (w0."city" = $1) ORDER BY w0."temp_lo" DESC OFFSET $2 ROWS FETCH FIRST $3 ROWS WITH TIES',
        ["x", 3, 2],
    )


def test_with_ties_without_an_order_by_raises() -> None:
    q = from_(Weather) | limit(2, with_ties=True)
    with pytest.raises(QueryError, match=r"with_ties needs an order_by: Query<from_\(Weather\) \| limit\(2\)"):
        REPO.to_sql(q)


def test_with_ties_without_a_limit_raises() -> None:
    with pytest.raises(QueryError, match=r"with_ties needs a limit: Query<from_\(Weather\) \| order_by\('id'\)>"):
        from_(Weather) | order_by("id") | with_ties()


def test_a_later_limit_drops_with_ties() -> None:
    q = from_(Weather) | order_by("temp_lo") | limit(2, with_ties=True) | limit(3)
    assert REPO.to_sql(q) == (f'{W} ORDER BY w0."temp_lo" LIMIT $1', [3])


def test_with_ties_false_turns_it_off() -> None:
    q = from_(Weather) | order_by("temp_lo") | limit(2) | with_ties() | with_ties(False)
    assert sql(q) == f'{W} ORDER BY w0."temp_lo" LIMIT $1'


def test_with_ties_is_part_of_the_plan_shape() -> None:
    base = from_(Weather) | order_by("temp_lo") | limit(2)
    assert plan(base)[0] != plan(base | with_ties())[0]


def test_repr_of_with_ties() -> None:
    q = from_(Weather) | order_by("temp_lo") | limit(2, with_ties=True) | offset(1)
    assert repr(q) == "Query<from_(Weather) | order_by('temp_lo') | limit(2) | offset(1) | with_ties()>"


# --- fragment modifiers -------------------------------------------------------------------------


def test_identifier_is_quoted() -> None:
    q = from_(Weather) | where(lambda w: fragment("? IS NOT NULL", identifier("city"))) | select(lambda w: w.id)
    assert REPO.to_sql(q) == ('SELECT w0."id" FROM "weather" AS w0 WHERE ("city" IS NOT NULL)', [])


def test_identifier_with_a_double_quote_is_escaped() -> None:
    q = from_(Weather) | select(lambda w: fragment("?.?", identifier("w0"), identifier('we"ird')))
    assert REPO.to_sql(q) == ('SELECT "w0"."we""ird" FROM "weather" AS w0', [])


@pytest.mark.parametrize("bad", ["", None, 3])
def test_identifier_refuses_empty_or_non_strings(bad: Any) -> None:
    with pytest.raises(QueryError, match="identifier expects a non-empty string"):
        identifier(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (0, "0"),
        (2.5, "2.5"),
        ("abc", "E'abc'"),
        ("it's", "E'it''s'"),
        ("", "E''"),
        (True, "TRUE"),
        (False, "FALSE"),
    ],
)
def test_constant_is_written_as_a_literal(value: Any, text: str) -> None:
    q = from_(Weather) | select(lambda w: fragment("coalesce(?, ?)", w.city, constant(value)))
    assert fresh_sql(q) == (f'SELECT coalesce(w0."city", {text}) FROM "weather" AS w0', [])


def test_constant_with_a_quote_cannot_escape_its_literal() -> None:
    nasty = "x'); DROP TABLE weather; --"
    q = from_(Weather) | where(lambda w: fragment("? = ?", w.city, constant(nasty))) | select(lambda w: w.id)
    assert fresh_sql(q) == (
        """SELECT w0."id" FROM "weather" AS w0 WHERE (w0."city" = E'x''); DROP TABLE weather; --')""",
        [],
    )


def test_different_string_constants_give_different_sql() -> None:
    a = from_(Weather) | select(lambda w: fragment("?", constant("a")))
    b = from_(Weather) | select(lambda w: fragment("?", constant("b")))
    assert plan(a)[0] != plan(b)[0]
    assert (sql(a), sql(b)) == ("SELECT E'a' FROM \"weather\" AS w0", "SELECT E'b' FROM \"weather\" AS w0")


def test_different_numeric_constants_give_different_sql() -> None:
    a = from_(Weather) | select(lambda w: fragment("?", constant(1)))
    b = from_(Weather) | select(lambda w: fragment("?", constant(2)))
    assert (sql(a), sql(b)) == ('SELECT 1 FROM "weather" AS w0', 'SELECT 2 FROM "weather" AS w0')


def test_constants_of_equal_value_but_other_type_give_other_sql() -> None:
    repo = Repo("postgres://localhost/x")
    one = from_(Weather) | select(lambda w: fragment("?", constant(1)))
    true = from_(Weather) | select(lambda w: fragment("?", constant(True)))
    one_float = from_(Weather) | select(lambda w: fragment("?", constant(1.0)))
    assert repo.to_sql(one)[0] == 'SELECT 1 FROM "weather" AS w0'
    assert repo.to_sql(true)[0] == 'SELECT TRUE FROM "weather" AS w0'
    assert repo.to_sql(one_float)[0] == 'SELECT 1.0 FROM "weather" AS w0'


def test_a_negative_constant_cannot_start_a_sql_comment() -> None:
    q = from_(Weather) | where(city="x") | select(lambda w: fragment("?-?", w.temp_hi, constant(-1)))
    assert "--" not in fresh_sql(q)[0]


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_float_constants_are_not_written_as_identifiers(value: float) -> None:
    try:
        q = from_(Weather) | select(lambda w: fragment("?", constant(value)))
        text = fresh_sql(q)[0]
    except QueryError:
        return
    assert text not in ('SELECT inf FROM "weather" AS w0', 'SELECT nan FROM "weather" AS w0')


@pytest.mark.parametrize("bad", [None, [1], b"x", "a\x00b"])
def test_constant_refuses_other_values(bad: Any) -> None:
    with pytest.raises(QueryError, match="constant expects a number, a bool or a string"):
        constant(bad)


def test_splice_is_one_parameter_per_element() -> None:
    q = from_(Weather) | where(lambda w: fragment("? IN (?)", w.city, splice(["a", "it's", "$1"]))) | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE (w0."city" IN ($1, $2, $3))',
        ["a", "it's", "$1"],
    )


def test_splice_parameters_are_numbered_with_the_others() -> None:
    q = (
        from_(Weather)
        | where(lambda w: w.temp_lo > 1)
        | where(lambda w: fragment("? IN (?) AND ? > ?", w.temp_hi, splice([2, 3]), w.prcp, 0.5))
        | limit(4)
    )
    assert REPO.to_sql(q) == (
        f'{W} WHERE ((w0."temp_lo" > $1) AND (w0."temp_hi" IN ($2::integer, $3::integer) '
        'AND w0."prcp" > $4::double precision)) LIMIT $5',
        [1, 2, 3, 0.5, 4],
    )


def test_splice_of_the_same_length_shares_a_plan_and_another_length_does_not() -> None:
    def q(values: list[int]) -> Any:
        return from_(Weather) | where(lambda w: fragment("? IN (?)", w.temp_lo, splice(values)))

    assert plan(q([1, 2]))[0] == plan(q([7, 8]))[0]
    assert plan(q([1, 2]))[0] != plan(q([1, 2, 3]))[0]
    assert sql(q([1])).endswith('WHERE (w0."temp_lo" IN ($1::integer))')


def test_splice_accepts_any_iterable_and_refuses_an_empty_one() -> None:
    q = from_(Weather) | where(lambda w: fragment("? IN (?)", w.temp_lo, splice(range(2))))
    assert params(q) == [0, 1]
    with pytest.raises(QueryError, match="splice expects at least one value"):
        splice([])


def test_escaped_question_mark_next_to_modifiers() -> None:
    q = from_(Typed) | where(
        lambda t: fragment("? \\?| ? AND ? \\? ?", identifier("m"), ["a", "b"], t.m, constant("k"))
    )
    assert REPO.to_sql(q | select(lambda t: t.id)) == (
        """SELECT t0."id" FROM "typed" AS t0 WHERE ("m" ?| $1 AND t0."m" ? E'k')""",
        [["a", "b"]],
    )


def test_repr_of_fragment_modifiers() -> None:
    q = from_(Weather) | where(
        lambda w: fragment("? \\? ? IN (?) ?", identifier('we"ird'), w.city, splice([1, 2]), constant("it's"))
    )
    assert repr(q) == (
        "Query<from_(Weather) | where(lambda: fragment('? \\\\? ? IN (?) ?', identifier('we\"ird'), b0.city, "
        'splice([1, 2]), constant("it\'s")))>'
    )


# --- filter_ ------------------------------------------------------------------------------------


def test_count_star_filter() -> None:
    q = from_(Weather) | select(lambda w: filter_(count(), w.temp_lo > 2))
    assert REPO.to_sql(q) == ('SELECT count(*) FILTER (WHERE (w0."temp_lo" > $1)) FROM "weather" AS w0', [2])


def test_sum_and_avg_filter_with_parameters_in_order() -> None:
    q = from_(Weather) | select(
        lambda w: (filter_(sum_(w.temp_hi), w.city == "K"), filter_(avg(w.temp_lo), (w.temp_lo > 0) & ~is_nil(w.city)))
    )
    assert REPO.to_sql(q) == (
        'SELECT sum(w0."temp_hi") FILTER (WHERE (w0."city" = $1)), '
        'avg(w0."temp_lo") FILTER (WHERE ((w0."temp_lo" > $2) AND NOT (w0."city" IS NULL))) FROM "weather" AS w0',
        ["K", 0],
    )


def test_filter_of_count_distinct() -> None:
    q = from_(Weather) | select(lambda w: filter_(count(w.city, distinct=True), w.prcp > 1.0))
    assert sql(q) == 'SELECT count(DISTINCT w0."city") FILTER (WHERE (w0."prcp" > $1)) FROM "weather" AS w0'


def test_filter_in_having_casts_the_compared_value_like_its_aggregate() -> None:
    q = (
        from_(Weather)
        | group_by("city")
        | having(lambda w: filter_(count(), w.temp_lo > 0) > "1")
        | select(lambda w: (w.city, filter_(max_(w.temp_hi), w.temp_lo > 0)))
    )
    assert REPO.to_sql(q) == (
        'SELECT w0."city", max(w0."temp_hi") FILTER (WHERE (w0."temp_lo" > $1)) FROM "weather" AS w0 '
        'GROUP BY w0."city" HAVING (count(*) FILTER (WHERE (w0."temp_lo" > $2)) > $3)',
        [0, 0, 1],
    )


def test_repr_of_filter() -> None:
    q = from_(Weather) | select(lambda w: filter_(count(), w.temp_lo > 2))
    assert repr(q) == "Query<from_(Weather) | select(lambda: filter_(count(), b0.temp_lo > 2))>"


# --- dynamic ------------------------------------------------------------------------------------

COLD = dynamic(lambda w: w.temp_hi < 5)


def test_dynamic_in_where_equals_the_lambda() -> None:
    assert from_(Weather) | where(COLD) == from_(Weather) | where(lambda w: w.temp_hi < 5)
    assert REPO.to_sql(from_(Weather) | where(COLD)) == (f'{W} WHERE (w0."temp_hi" < $1)', [5])


def test_dynamic_in_having() -> None:
    many = dynamic(lambda w: count() > 1)
    q = from_(Weather) | group_by("city") | having(many) | select(lambda w: w.city)
    assert REPO.to_sql(q) == ('SELECT w0."city" FROM "weather" AS w0 GROUP BY w0."city" HAVING (count(*) > $1)', [1])


def test_dynamic_in_join_on_gets_the_joined_binding() -> None:
    on = dynamic(lambda w, p: (p.visits == w.temp_lo) & (p.title != "x"))
    q = from_(Weather) | join("inner", Post, on=on) | select(lambda w, p: p.id)
    assert REPO.to_sql(q) == (
        'SELECT p1."id" FROM "weather" AS w0 INNER JOIN "posts" AS p1 ON ((p1."visits" = w0."temp_lo") AND '
        '(p1."title" != $1))',
        ["x"],
    )


def test_dynamic_inside_a_lambda() -> None:
    q = from_(Weather) | where(lambda w: COLD & (w.city == "x"))
    assert REPO.to_sql(q) == (f'{W} WHERE ((w0."temp_hi" < $1) AND (w0."city" = $2))', [5, "x"])


def test_dynamic_inside_another_dynamic() -> None:
    either = dynamic(lambda w: COLD | (w.prcp > 1.0))
    both = dynamic(lambda w: either & ~is_nil(w.city))
    assert REPO.to_sql(from_(Weather) | where(both)) == (
        f'{W} WHERE (((w0."temp_hi" < $1) OR (w0."prcp" > $2)) AND NOT (w0."city" IS NULL))',
        [5, 1.0],
    )


def test_dynamic_is_evaluated_against_the_query_it_is_used_in() -> None:
    by_title = dynamic(lambda *, p: p.title == "x")
    a = from_(Post, as_="p") | where(by_title)
    b = from_(Weather) | join("cross", Post, as_="p") | where(by_title)
    assert sql(a).endswith('WHERE (p0."title" = $1)')
    assert sql(b).endswith('CROSS JOIN "posts" AS p1 WHERE (p1."title" = $1)')


def test_dynamic_with_named_and_positional_bindings() -> None:
    cond = dynamic(lambda w, *, u: (u.email == w.city) & (u.score > 3))
    q = from_(Weather) | join("inner", User, on=lambda w, u: u.id == w.id, as_="u") | where(cond) | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 INNER JOIN "users" AS u1 ON (u1."id" = w0."id") '
        'WHERE ((u1."email" = w0."city") AND (u1."score" > $1))',
        [3],
    )


def test_dynamic_with_an_unknown_named_binding_raises() -> None:
    with pytest.raises(QueryError, match="could not find named binding 'u' in query"):
        from_(Weather) | where(dynamic(lambda *, u: u.score > 3))


def test_dynamic_with_too_many_bindings_raises() -> None:
    with pytest.raises(QueryError, match=r"where takes 2 binding\(s\) but the query has 1 source\(s\)"):
        from_(Weather) | where(dynamic(lambda w, p: w.id == p.id))


def test_dynamic_outside_a_query_clause_raises() -> None:
    with pytest.raises(QueryError, match="a dynamic expression can only be used inside a query clause"):
        is_nil(COLD)
    (w,) = bindings(from_(Weather))
    with pytest.raises(QueryError, match="a dynamic expression can only be used inside a query clause"):
        (w.city == "x") & COLD


def test_dynamic_needs_a_function() -> None:
    with pytest.raises(QueryError, match="dynamic expects a function of the bindings, got 3"):
        dynamic(3)  # type: ignore[arg-type]


def test_repr_of_a_query_built_with_dynamics_shows_the_expression() -> None:
    assert repr(from_(Weather) | where(COLD)) == "Query<from_(Weather) | where(lambda: b0.temp_hi < 5)>"
    assert repr(COLD) == "Dynamic<...>"


def test_dynamic_in_order_by() -> None:
    q = from_(Weather) | order_by(dynamic(lambda w: w.temp_lo))
    assert sql(q) == f'{W} ORDER BY w0."temp_lo"'


def test_dynamic_under_a_direction_in_order_by() -> None:
    q = from_(Weather) | order_by(lambda w: desc(dynamic(lambda w: w.temp_lo)))
    assert sql(q) == f'{W} ORDER BY w0."temp_lo" DESC'


def test_two_dynamics_combined_with_and() -> None:
    wet = dynamic(lambda w: w.prcp > 1.0)
    q = from_(Weather) | where(dynamic(lambda w: COLD & wet))
    assert REPO.to_sql(q) == (f'{W} WHERE ((w0."temp_hi" < $1) AND (w0."prcp" > $2))', [5, 1.0])


def test_dynamic_inside_a_select() -> None:
    q = from_(Weather) | select(lambda w: {"cold": COLD})
    assert REPO.to_sql(q) == ('SELECT (w0."temp_hi" < $1) FROM "weather" AS w0', [5])


# --- subqueries ---------------------------------------------------------------------------------


def test_in_a_subquery() -> None:
    sub = from_(Post) | where(lambda p: p.title == "t") | select(lambda p: p.visits)
    q = from_(Weather) | where(lambda w: w.temp_lo.in_(subquery(sub))) | where(city="c") | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE ((w0."temp_lo" = ANY((SELECT s1p0."visits" FROM "posts" AS s1p0 '
        'WHERE (s1p0."title" = $1)))) AND (w0."city" = $2))',
        ["t", "c"],
    )


def test_exists_of_a_subquery() -> None:
    sub = from_(Post) | where(lambda p: p.visits > 3)
    q = from_(Weather) | where(city="c") | where(lambda w: exists(subquery(sub))) | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE ((w0."city" = $1) AND EXISTS (SELECT TRUE FROM "posts" AS s1p0 '
        'WHERE (s1p0."visits" > $2)))',
        ["c", 3],
    )


def test_not_exists() -> None:
    q = from_(Weather) | where(lambda w: ~exists(subquery(Post))) | select(["id"])
    assert sql(q) == 'SELECT w0."id" FROM "weather" AS w0 WHERE NOT (EXISTS (SELECT TRUE FROM "posts" AS s1p0))'


def test_scalar_subquery_in_select_comes_before_where_params() -> None:
    top = from_(Post) | where(title="x") | select(lambda p: max_(p.visits))
    q = from_(Weather) | where(city="y") | select(lambda w: (w.id, subquery(top)))
    assert REPO.to_sql(q) == (
        'SELECT w0."id", (SELECT max(s1p0."visits") FROM "posts" AS s1p0 WHERE (s1p0."title" = $1)) '
        'FROM "weather" AS w0 WHERE (w0."city" = $2)',
        ["x", "y"],
    )


def test_scalar_subquery_in_a_where_comparison() -> None:
    mean = from_(Post) | where(title="x") | select(lambda p: avg(p.visits))
    q = from_(Weather) | where(lambda w: w.temp_lo > subquery(mean)) | where(city="y") | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE ((w0."temp_lo" > (SELECT avg(s1p0."visits") FROM "posts" AS s1p0 '
        'WHERE (s1p0."title" = $1))) AND (w0."city" = $2))',
        ["x", "y"],
    )


def test_value_compared_with_a_scalar_subquery_takes_its_type() -> None:
    top = from_(Post) | select(lambda p: max_(p.visits))
    q = from_(Weather) | where(lambda w: E(subquery(top)) > "3") | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE ((SELECT max(s1p0."visits") FROM "posts" AS s1p0) > $1)',
        [3],
    )


def test_correlated_subquery_via_parent_as() -> None:
    sub = from_(Weather) | where(lambda w: (w.temp_lo == parent_as("p").visits) & (w.city != "z"))
    q = from_(Post, as_="p") | where(lambda p: exists(subquery(sub))) | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT p0."id" FROM "posts" AS p0 WHERE EXISTS (SELECT TRUE FROM "weather" AS s1w0 '
        'WHERE ((s1w0."temp_lo" = p0."visits") AND (s1w0."city" != $1)))',
        ["z"],
    )


def test_correlated_scalar_subquery_in_select() -> None:
    below = from_(Weather) | where(lambda w: w.temp_lo <= parent_as("p").visits) | select(lambda w: count())
    q = from_(Post, as_="p") | select(lambda p: (p.title, subquery(below)))
    assert sql(q) == (
        'SELECT p0."title", (SELECT count(*) FROM "weather" AS s1w0 WHERE (s1w0."temp_lo" <= p0."visits")) '
        'FROM "posts" AS p0'
    )


def test_parent_as_value_is_cast_to_the_parent_field_type() -> None:
    sub = from_(Weather) | where(lambda w: parent_as("p").visits == "4")
    q = from_(Post, as_="p") | where(lambda p: exists(subquery(sub))) | select(["id"])
    assert params(q) == [4]


def test_parent_as_of_an_unknown_name_raises_at_plan_time() -> None:
    sub = from_(Weather) | where(lambda w: w.temp_lo == parent_as("nope").visits)
    q = from_(Post, as_="p") | where(lambda p: exists(subquery(sub)))
    with pytest.raises(QueryError, match=r"could not find named binding parent_as\('nope'\)"):
        plan(q)


def test_nested_subqueries_number_parameters_across_levels() -> None:
    innermost = from_(User) | where(
        lambda u: (u.score == parent_as("p").visits) & (u.email == "b") & (u.id == parent_as("w").id)
    )
    middle = (
        from_(Post, as_="p")
        | where(lambda p: p.title == "a")
        | where(lambda p: exists(subquery(innermost)))
        | select(lambda p: p.visits)
    )
    q = from_(Weather, as_="w") | where(lambda w: w.temp_lo.in_(subquery(middle))) | where(city="c") | select(["id"])
    assert REPO.to_sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WHERE ((w0."temp_lo" = ANY((SELECT s1p0."visits" FROM "posts" AS s1p0 '
        'WHERE ((s1p0."title" = $1) AND EXISTS (SELECT TRUE FROM "users" AS s2u0 WHERE ((s2u0."score" = '
        's1p0."visits") AND (s2u0."email" = $2) AND (s2u0."id" = w0."id"))))))) AND (w0."city" = $3))',
        ["a", "b", "c"],
    )


def _many_subqueries(v1: Any, v2: Any, v3: Any, v4: Any, v5: Any) -> Any:
    titles = from_(Post) | where(lambda x: x.body == v1) | select(lambda x: x.title)
    users = from_(User) | where(lambda u: (u.email == v3) & (u.score == parent_as("p").visits))
    counted = from_(Post) | where(lambda x: x.title == v4) | select(lambda x: count())
    nested = from_(Weather) | where(
        lambda x: x.city.in_(subquery(from_(User) | where(lambda u: u.email == v5) | select(lambda u: u.email)))
    )
    return (
        from_(Weather, as_="w")
        | join(
            "inner",
            Post,
            on=lambda w, p: (p.visits == w.temp_lo) & p.title.in_(subquery(titles)),
            as_="p",
        )
        | where(lambda w: w.city == v2)
        | where(lambda w: exists(subquery(users)) | exists(subquery(nested)))
        | select(lambda w, p: (w.id, subquery(counted)))
    )


def test_subqueries_everywhere_number_parameters_as_the_text_meets_them() -> None:
    text, sent = REPO.to_sql(_many_subqueries("v1", "v2", "v3", "v4", "v5"))
    assert text == (
        'SELECT w0."id", (SELECT count(*) FROM "posts" AS s1p0 WHERE (s1p0."title" = $1)) FROM "weather" AS w0 '
        'INNER JOIN "posts" AS p1 ON ((p1."visits" = w0."temp_lo") AND (p1."title" = ANY((SELECT s1p0."title" '
        'FROM "posts" AS s1p0 WHERE (s1p0."content" = $2))))) WHERE ((w0."city" = $3) AND (EXISTS (SELECT TRUE '
        'FROM "users" AS s1u0 WHERE ((s1u0."email" = $4) AND (s1u0."score" = p1."visits"))) OR EXISTS (SELECT TRUE '
        'FROM "weather" AS s1w0 WHERE (s1w0."city" = ANY((SELECT s2u0."email" FROM "users" AS s2u0 '
        'WHERE (s2u0."email" = $5)))))))'
    )
    assert sent == ["v4", "v1", "v2", "v3", "v5"]


NASTY = ["it's", "'; DROP TABLE weather; --", "$1", "a;b", 'say "hi"', "?", "\\", "/* c */"]


@pytest.mark.parametrize("nasty", NASTY)
def test_no_value_in_any_subquery_ever_appears_in_sql(nasty: str) -> None:
    text, sent = REPO.to_sql(_many_subqueries(nasty, nasty, nasty, nasty, nasty))
    harmless, _ = REPO.to_sql(_many_subqueries("h", "h", "h", "h", "h"))
    assert text == harmless
    for piece in ("'", ";", "--", "/*", "\\", "say"):
        assert piece not in text
    assert sent == [nasty] * 5


def test_subquery_plans_of_the_same_shape_are_equal() -> None:
    a, a_params = plan(_many_subqueries("1", "2", "3", "4", "5"))
    b, b_params = plan(_many_subqueries("a", "b", "c", "d", "e"))
    assert a == b
    assert a_params != b_params


def test_a_subquery_value_needs_a_select() -> None:
    q = from_(Weather) | where(lambda w: w.id.in_(subquery(Post)))
    with pytest.raises(QueryError, match="a subquery used as a value needs a select of one column"):
        plan(q)


def test_exists_needs_a_subquery() -> None:
    with pytest.raises(QueryError, match=r"exists expects subquery\(query\)"):
        exists(from_(Post))  # type: ignore[arg-type]


def test_repr_of_subqueries() -> None:
    sub = from_(Post) | where(title="x") | select(lambda p: p.visits)
    q = from_(Weather) | where(lambda w: w.temp_lo.in_(subquery(sub)) | exists(subquery(Post)))
    assert repr(q) == (
        "Query<from_(Weather) | where(lambda: (b0.temp_lo.in_(subquery(from_(Post) | where(title='x') "
        "| select(lambda: b0.visits)))) | (exists(subquery(from_(Post)))))>"
    )


def test_repr_of_parent_as_reads_as_the_dsl() -> None:
    q = from_(Weather) | where(lambda w: w.temp_lo == parent_as("p").visits)
    assert repr(q) == "Query<from_(Weather) | where(lambda: b0.temp_lo == parent_as('p').visits)>"


def test_exists_of_a_subquery_with_a_select_sends_only_the_parameters_it_writes() -> None:
    sub = from_(Weather) | where(city="x") | select(lambda w: w.temp_lo + 1)
    text, sent = REPO.to_sql(from_(Post) | where(lambda p: exists(subquery(sub))) | select(["id"]))
    assert text.count("$") == len(sent)


def test_exists_of_a_subquery_with_an_order_by_sends_only_the_parameters_it_writes() -> None:
    sub = from_(Weather) | where(city="x") | order_by(lambda w: w.temp_lo * 2)
    text, sent = REPO.to_sql(from_(Post) | where(lambda p: exists(subquery(sub))) | select(["id"]))
    assert text.count("$") == len(sent)


def test_exists_of_a_with_ties_subquery_keeps_its_order_by() -> None:
    sub = from_(Weather) | order_by("city") | limit(1, with_ties=True)
    text = sql(from_(Post) | where(lambda p: exists(subquery(sub))) | select(["id"]))
    assert "WITH TIES" not in text or "ORDER BY" in text


# --- windows ------------------------------------------------------------------------------------

BY_CITY = {"partition_by": lambda w: w.city, "order_by": lambda w: w.temp_lo}


def test_named_window() -> None:
    q = (
        from_(Weather)
        | windows(w=BY_CITY)
        | select(lambda w: (w.id, over(row_number(), "w"), over(sum_(w.temp_hi), "w")))
    )
    assert REPO.to_sql(q) == (
        'SELECT w0."id", row_number() OVER "w", sum(w0."temp_hi") OVER "w" FROM "weather" AS w0 '
        'WINDOW "w" AS (PARTITION BY w0."city" ORDER BY w0."temp_lo")',
        [],
    )


def test_two_named_windows_with_lists_and_directions() -> None:
    q = (
        from_(Weather)
        | windows(
            a={"partition_by": lambda w: [w.city, w.temp_lo > 3], "order_by": lambda w: [desc(w.temp_lo), w.id]},
            b={"order_by": lambda w: w.id},
        )
        | where(city="x")
        | select(lambda w: (w.id + 1, over(rank(), "a"), over(lag(w.city), "b")))
    )
    assert REPO.to_sql(q) == (
        'SELECT (w0."id" + $1), rank() OVER "a", lag(w0."city", $2) OVER "b" FROM "weather" AS w0 '
        'WHERE (w0."city" = $3) WINDOW "a" AS (PARTITION BY w0."city", (w0."temp_lo" > $4) '
        'ORDER BY w0."temp_lo" DESC, w0."id"), "b" AS (ORDER BY w0."id")',
        [1, 1, "x", 3],
    )


def test_window_defined_after_the_select_that_uses_it() -> None:
    a = from_(Weather) | select(lambda w: over(row_number(), "w")) | windows(w=BY_CITY)
    b = from_(Weather) | windows(w=BY_CITY) | select(lambda w: over(row_number(), "w"))
    assert REPO.to_sql(a) == REPO.to_sql(b)


def test_window_partition_only() -> None:
    q = from_(Weather) | windows(w={"partition_by": lambda w: w.city}) | select(lambda w: over(avg(w.temp_lo), "w"))
    assert sql(q) == 'SELECT avg(w0."temp_lo") OVER "w" FROM "weather" AS w0 WINDOW "w" AS (PARTITION BY w0."city")'


def test_inline_window() -> None:
    q = from_(Weather) | select(lambda w: over(rank(), partition_by=w.city, order_by=desc(w.temp_hi)))
    assert sql(q) == 'SELECT rank() OVER (PARTITION BY w0."city" ORDER BY w0."temp_hi" DESC) FROM "weather" AS w0'


def test_inline_window_with_lists() -> None:
    q = from_(Weather) | select(
        lambda w: over(count(), partition_by=[w.city, w.prcp], order_by=[desc(w.temp_hi), w.id])
    )
    assert sql(q) == (
        'SELECT count(*) OVER (PARTITION BY w0."city", w0."prcp" ORDER BY w0."temp_hi" DESC, w0."id") '
        'FROM "weather" AS w0'
    )


def test_empty_inline_window() -> None:
    q = from_(Weather) | select(lambda w: over(avg(w.temp_lo)))
    assert sql(q) == 'SELECT avg(w0."temp_lo") OVER () FROM "weather" AS w0'


@pytest.mark.parametrize(
    ("make", "text", "sent"),
    [
        (lambda w: row_number(), "row_number()", []),
        (lambda w: rank(), "rank()", []),
        (lambda w: dense_rank(), "dense_rank()", []),
        (lambda w: percent_rank(), "percent_rank()", []),
        (lambda w: cume_dist(), "cume_dist()", []),
        (lambda w: ntile(3), "ntile($1)", [3]),
        (lambda w: first_value(w.temp_lo), 'first_value(w0."temp_lo")', []),
        (lambda w: last_value(w.temp_lo), 'last_value(w0."temp_lo")', []),
        (lambda w: nth_value(w.temp_lo, 2), 'nth_value(w0."temp_lo", $1)', [2]),
        (lambda w: lag(w.temp_lo), 'lag(w0."temp_lo", $1)', [1]),
        (lambda w: lead(w.temp_lo), 'lead(w0."temp_lo", $1)', [1]),
        (lambda w: lag(w.temp_lo, 2, 0), 'lag(w0."temp_lo", $1, $2)', [2, 0]),
        (lambda w: lead(w.temp_lo, 3, -1), 'lead(w0."temp_lo", $1, $2)', [3, -1]),
        (lambda w: sum_(w.temp_lo), 'sum(w0."temp_lo")', []),
        (lambda w: max_(w.temp_lo), 'max(w0."temp_lo")', []),
        (lambda w: count(), "count(*)", []),
    ],
)
def test_every_window_function(make: Any, text: str, sent: list[Any]) -> None:
    q = from_(Weather) | select(lambda w: over(make(w), order_by=w.id))
    assert REPO.to_sql(q) == (f'SELECT {text} OVER (ORDER BY w0."id") FROM "weather" AS w0', sent)


def test_window_functions_in_order_by() -> None:
    q = from_(Weather) | windows(w=BY_CITY) | order_by(lambda w: desc(over(row_number(), "w"))) | select(["id"])
    assert sql(q) == (
        'SELECT w0."id" FROM "weather" AS w0 WINDOW "w" AS (PARTITION BY w0."city" ORDER BY w0."temp_lo") '
        'ORDER BY row_number() OVER "w" DESC'
    )


def test_unknown_window_name_raises_at_plan_time() -> None:
    q = from_(Weather) | windows(w=BY_CITY) | select(lambda w: over(row_number(), "nope"))
    with pytest.raises(QueryError, match=r"unknown window 'nope' in Query<.*; define it with windows"):
        plan(q)


def test_window_defined_twice_raises() -> None:
    with pytest.raises(QueryError, match="window 'w' is defined twice"):
        from_(Weather) | windows(w=BY_CITY) | windows(w=BY_CITY)


def test_unknown_window_option_raises() -> None:
    with pytest.raises(QueryError, match=r"unknown window options \['frames'\]; use partition_by, order_by and frame"):
        from_(Weather) | windows(w={"frames": "ROWS"})


def test_over_takes_a_name_or_an_inline_window_not_both() -> None:
    (w,) = bindings(from_(Weather))
    with pytest.raises(QueryError, match="over\\(\\) takes a window name or partition_by/order_by, not both"):
        over(rank(), "w", partition_by=w.city)


def test_repr_of_over() -> None:
    q = from_(Weather) | select(
        lambda w: (over(rank(), partition_by=w.city, order_by=desc(w.temp_hi)), over(lag(w.temp_lo, 2, 0), "w"))
    )
    assert repr(q) == (
        "Query<from_(Weather) | select(lambda: (over(rank(), partition_by=[b0.city], order_by=[desc(b0.temp_hi)]), "
        "over(lag(b0.temp_lo, 2, 0), 'w')))>"
    )


def test_repr_of_windows_reads_as_the_dsl() -> None:
    q = from_(Weather) | windows(w=BY_CITY)
    assert "count()" not in repr(q)


# --- combinations -------------------------------------------------------------------------------


def _left() -> Any:
    return from_(Weather) | where(lambda w: w.temp_lo > 1) | select(lambda w: w.city)


def _right() -> Any:
    return from_(Post) | where(lambda p: p.visits < 2) | select(lambda p: p.title)


@pytest.mark.parametrize(
    ("step", "keyword"),
    [
        (union, "UNION"),
        (union_all, "UNION ALL"),
        (except_, "EXCEPT"),
        (except_all, "EXCEPT ALL"),
        (intersect, "INTERSECT"),
        (intersect_all, "INTERSECT ALL"),
    ],
)
def test_combinations(step: Any, keyword: str) -> None:
    assert REPO.to_sql(_left() | step(_right())) == (
        f'SELECT w0."city" FROM "weather" AS w0 WHERE (w0."temp_lo" > $1) {keyword} '
        '(SELECT p0."title" FROM "posts" AS p0 WHERE (p0."visits" < $2))',
        [1, 2],
    )


def test_combination_with_an_outer_order_limit_and_offset() -> None:
    q = _left() | union(_right()) | order_by(lambda w: fragment("1")) | limit(3) | offset(1)
    assert REPO.to_sql(q) == (
        'SELECT w0."city" FROM "weather" AS w0 WHERE (w0."temp_lo" > $1) UNION '
        '(SELECT p0."title" FROM "posts" AS p0 WHERE (p0."visits" < $2)) ORDER BY 1 LIMIT $3 OFFSET $4',
        [1, 2, 3, 1],
    )


def test_combination_whose_other_side_has_its_own_limit() -> None:
    right = _right() | order_by("id") | limit(5)
    q = _left() | union_all(right) | limit(9)
    assert REPO.to_sql(q) == (
        'SELECT w0."city" FROM "weather" AS w0 WHERE (w0."temp_lo" > $1) UNION ALL '
        '(SELECT p0."title" FROM "posts" AS p0 WHERE (p0."visits" < $2) ORDER BY p0."id" LIMIT $3) LIMIT $4',
        [1, 2, 5, 9],
    )


def test_three_combinations_with_params_in_selects() -> None:
    a = from_(Weather) | where(city="a") | select(lambda w: w.temp_lo + 1)
    b = from_(Weather) | where(city="b") | select(lambda w: w.temp_lo + 2)
    c = from_(Post) | where(title="c") | select(lambda p: p.visits + 3)
    q = a | union(b) | except_(c)
    assert REPO.to_sql(q) == (
        'SELECT (w0."temp_lo" + $1) FROM "weather" AS w0 WHERE (w0."city" = $2) UNION '
        '(SELECT (w0."temp_lo" + $3) FROM "weather" AS w0 WHERE (w0."city" = $4)) EXCEPT '
        '(SELECT (p0."visits" + $5) FROM "posts" AS p0 WHERE (p0."title" = $6))',
        [1, "a", 2, "b", 3, "c"],
    )


def test_repr_of_combinations() -> None:
    q = _left() | except_(_right()) | union_all(_right())
    assert repr(q) == (
        "Query<from_(Weather) | where(lambda: b0.temp_lo > 1) | select(lambda: b0.city) "
        "| except_(from_(Post) | where(lambda: b0.visits < 2) | select(lambda: b0.title)) "
        "| union_all(from_(Post) | where(lambda: b0.visits < 2) | select(lambda: b0.title))>"
    )


# --- CTEs ---------------------------------------------------------------------------------------

WARM = from_(Weather) | where(lambda w: w.temp_lo > 4)
WARM_SQL = f'WITH "warm" AS ({W} WHERE (w0."temp_lo" > $1))'


def test_cte_read_from() -> None:
    q = from_(("warm", Weather)) | with_cte("warm", as_=WARM) | where(lambda w: w.temp_hi > 10) | select(["id"])
    assert REPO.to_sql(q) == (
        f'{WARM_SQL} SELECT w0."id" FROM "warm" AS w0 WHERE (w0."temp_hi" > $2)',
        [4, 10],
    )


def test_cte_read_through_a_join() -> None:
    q = (
        from_(Post)
        | with_cte("warm", as_=WARM)
        | join("inner", ("warm", Weather), on=lambda p, w: w.temp_lo == p.visits)
        | where(title="t")
        | select(lambda p, w: (p.id, w.id))
    )
    assert REPO.to_sql(q) == (
        f'{WARM_SQL} SELECT p0."id", w1."id" FROM "posts" AS p0 INNER JOIN "warm" AS w1 '
        'ON (w1."temp_lo" = p0."visits") WHERE (p0."title" = $2)',
        [4, "t"],
    )


def test_two_ctes_the_second_reading_the_first() -> None:
    q = (
        from_(("b", Weather))
        | with_cte("a", as_=from_(Weather) | where(lambda w: w.temp_lo > 1))
        | with_cte("b", as_=from_(("a", Weather)) | where(lambda w: w.temp_hi < 20))
        | where(city="z")
        | select(["id"])
    )
    assert REPO.to_sql(q) == (
        f'WITH "a" AS ({W} WHERE (w0."temp_lo" > $1)), "b" AS (SELECT a0."id", a0."city", a0."temp_lo", '
        'a0."temp_hi", a0."prcp" FROM "a" AS a0 WHERE (a0."temp_hi" < $2)) SELECT b0."id" FROM "b" AS b0 '
        'WHERE (b0."city" = $3)',
        [1, 20, "z"],
    )


def test_recursive_cte() -> None:
    initial = from_(Weather) | where(lambda w: w.id == 1)
    step = (
        from_(Weather)
        | join("inner", ("chain", Weather), on=lambda w, c: w.id == c.id + 1)
        | where(lambda w: w.id <= 3)
    )
    q = (
        from_(("chain", Weather))
        | with_cte("chain", as_=initial | union_all(step), recursive=True)
        | select(lambda c: c.id)
    )
    assert REPO.to_sql(q) == (
        f'WITH RECURSIVE "chain" AS ({W} WHERE (w0."id" = $1) UNION ALL ({W} INNER JOIN "chain" AS c1 '
        'ON (w0."id" = (c1."id" + $2)) WHERE (w0."id" <= $3))) SELECT c0."id" FROM "chain" AS c0',
        [1, 1, 3],
    )


def test_cte_defined_twice_raises() -> None:
    with pytest.raises(QueryError, match="CTE 'warm' is defined twice"):
        from_(("warm", Weather)) | with_cte("warm", as_=WARM) | with_cte("warm", as_=WARM)


def test_repr_of_ctes() -> None:
    q = from_(("warm", Weather)) | with_cte("warm", as_=WARM, recursive=True)
    assert repr(q) == (
        "Query<from_(('warm', Weather)) | with_cte('warm', as_=from_(Weather) | where(lambda: b0.temp_lo > 4), "
        "recursive=True)>"
    )


def test_a_cte_name_is_never_prefixed() -> None:
    q = from_(("warm", Weather)) | with_cte("warm", as_=WARM)
    text = Repo("postgres://localhost/x", prefix="archive").to_sql(q)[0]
    assert text.endswith('FROM "warm" AS w0')


# --- select_merge -------------------------------------------------------------------------------


def test_select_merge_into_the_from_struct_sets_a_virtual_field() -> None:
    q = from_(Post) | select_merge(lambda p: {"draft_notes": fragment("upper(?)", p.title)})
    assert REPO.to_sql(q) == (f'SELECT {P_COLS}, upper(p0."title") FROM "posts" AS p0', [])


def test_select_merge_into_an_explicit_struct_select() -> None:
    a = from_(Post) | select(lambda p: p) | select_merge(lambda p: {"draft_notes": p.title})
    b = from_(Post) | select_merge(lambda p: {"draft_notes": p.title})
    assert a == b


def test_select_merge_into_a_dict() -> None:
    q = from_(Post) | select(lambda p: {"id": p.id}) | select_merge(lambda p: {"t": p.title, "n": p.visits + 1})
    assert REPO.to_sql(q) == ('SELECT p0."id", p0."title", (p0."visits" + $1) FROM "posts" AS p0', [1])


def test_repeated_select_merge_appends() -> None:
    q = (
        from_(Post)
        | where(title="x")
        | select_merge(lambda p: {"draft_notes": p.title})
        | select_merge(lambda p: {"visits": p.visits + 1})
    )
    assert REPO.to_sql(q) == (
        f'SELECT {P_COLS}, p0."title", (p0."visits" + $1) FROM "posts" AS p0 WHERE (p0."title" = $2)',
        [1, "x"],
    )


def test_select_merge_into_a_partial_struct() -> None:
    q = from_(Post) | select(["id"]) | select_merge(lambda p: {"draft_notes": p.body})
    assert sql(q) == 'SELECT p0."id", p0."content" FROM "posts" AS p0'


def test_select_merge_into_a_joined_struct() -> None:
    q = (
        from_(Weather)
        | join("left", Post, on=lambda w, p: p.visits == w.temp_lo)
        | select(lambda w, p: p)
        | select_merge(lambda w, p: {"draft_notes": w.city})
    )
    cols = P_COLS.replace("p0.", "p1.")
    assert sql(q) == (
        f'SELECT {cols}, w0."city" FROM "weather" AS w0 LEFT OUTER JOIN "posts" AS p1 ON (p1."visits" = w0."temp_lo")'
    )


def test_select_merge_of_an_unknown_field_names_it() -> None:
    with pytest.raises(QueryError) as info:
        from_(Post) | select_merge(lambda p: {"nope": p.title})
    message = str(info.value)
    assert message.startswith("select_merge cannot set 'nope': Post has no such field; known fields: id, title")
    assert "draft_notes" in message
    assert message.endswith("(declare a virtual field to hold computed values)")


def test_select_merge_into_a_joined_struct_checks_that_schema() -> None:
    q = from_(Weather) | join("cross", Post) | select(lambda w, p: p)
    with pytest.raises(QueryError, match="select_merge cannot set 'city': Post has no such field"):
        q | select_merge(lambda w, p: {"city": w.city})


def test_select_merge_needs_a_dict() -> None:
    with pytest.raises(QueryError, match="select_merge expects a dict of expressions"):
        from_(Post) | select_merge(lambda p: (p.title,))


def test_select_merge_into_a_single_value_raises() -> None:
    with pytest.raises(QueryError, match="select_merge can merge into a struct or a dict select"):
        from_(Post) | select(lambda p: p.id) | select_merge(lambda p: {"t": p.title})


def test_repr_of_select_merge_reads_as_the_dsl() -> None:
    q = from_(Post) | select_merge(lambda p: {"draft_notes": p.title})
    assert repr(q) == "Query<from_(Post) | select_merge(lambda: {'draft_notes': b0.title})>"
