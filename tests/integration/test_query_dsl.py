"""The query DSL against PostgreSQL: every clause and expression, with checked results."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from typing import Any, cast

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.errors import CastError, QueryError
from asyncecto.query import (
    E,
    Query,
    asc_nulls_first,
    avg,
    coalesce,
    count,
    desc,
    desc_nulls_last,
    distinct,
    exclude,
    field,
    first,
    fragment,
    from_,
    group_by,
    having,
    is_nil,
    join,
    last,
    limit,
    lock,
    max_,
    min_,
    offset,
    or_having,
    or_where,
    order_by,
    select,
    sum_,
    type_,
    update,
    where,
)
from asyncecto.query._ast import FieldRef, Param

from ..schemas import Post, Status, Typed, User, Weather

pytestmark = pytest.mark.usefixtures("repo")

D = decimal.Decimal

# id: (city, temp_lo, temp_hi, prcp)
WEATHER = {
    1: ("Kraków", 1, 10, 0.5),
    2: ("Kraków", 5, 15, None),
    3: ("Oslo", -3, 2, 1.5),
    4: ("Lima", 18, 25, 0.0),
    5: (None, 7, 9, 2.0),
}


@pytest.fixture
async def weather(repo: Repo) -> list[Weather]:
    rows = []
    for city, lo, hi, prcp in WEATHER.values():
        rows.append(await repo.insert(Weather(city=city, temp_lo=lo, temp_hi=hi, prcp=prcp)))
    assert [w.id for w in rows] == [1, 2, 3, 4, 5]
    return rows


@pytest.fixture
async def posts(repo: Repo) -> list[Post]:
    return [
        await repo.insert(Post(title="a", body="alpha", visits=1, rating=D("1.5"))),
        await repo.insert(Post(title="b", body="beta", visits=5, rating=D("4.25"))),
        await repo.insert(Post(title="c", body=None, visits=0, rating=None)),
    ]


@pytest.fixture
async def typed(repo: Repo) -> list[Typed]:
    return [
        await repo.insert(Typed(i=2, ints=[1, 2, 3], texts=["a", "b"], m={"k": 1}, status=Status.DRAFT)),
        await repo.insert(Typed(i=5, ints=[2], texts=[], m={"other": 2}, status=Status.PUBLISHED)),
        await repo.insert(Typed(i=9, ints=[], texts=["c"], m={}, status=None)),
    ]


async def ids(repo: Repo, q: Any) -> list[int]:
    return await repo.all(q | select(lambda w: w.id) | order_by("id"))


class Sent:
    """Collects the SQL the repo sends (through telemetry)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="dsl-sent")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


# --- comparisons, boolean logic, arithmetic ---------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (lambda w: w.temp_lo == 5, [2]),
        (lambda w: w.temp_lo != 5, [1, 3, 4, 5]),
        (lambda w: w.temp_lo < 5, [1, 3]),
        (lambda w: w.temp_lo <= 5, [1, 2, 3]),
        (lambda w: w.temp_lo > 5, [4, 5]),
        (lambda w: w.temp_lo >= 5, [2, 4, 5]),
        (lambda w: w.temp_lo < w.temp_hi - 8, [1, 2]),
        (lambda w: w.city == "Kraków", [1, 2]),
        (lambda w: w.city != "Kraków", [3, 4]),  # NULL city is neither equal nor unequal
    ],
)
async def test_comparisons(repo: Repo, weather: list[Weather], cond: Any, expected: list[int]) -> None:
    assert await ids(repo, from_(Weather) | where(cond)) == expected


async def test_compared_values_are_cast_to_the_field_type(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_lo == "5")) == [2]
    assert await ids(repo, from_(Weather) | where(temp_lo="18")) == [4]


async def test_and_or_not(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: ((w.city == "Kraków") & (w.temp_lo > 1)) | ~(w.temp_hi > 3))
    assert await ids(repo, q) == [2, 3]


async def test_not_of_an_and(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: ~((w.city == "Kraków") & (w.temp_lo == 1)))
    assert await ids(repo, q) == [2, 3, 4, 5]  # NULL AND FALSE is FALSE, so row 5 is kept


async def test_arithmetic_in_select(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | order_by("id") | select(lambda w: (w.temp_hi - w.temp_lo, w.temp_lo * 2 + 1, -w.temp_lo))
    )
    assert await repo.all(q) == [(9, 3, -1), (10, 11, -5), (5, -5, 3), (7, 37, -18), (2, 15, -7)]


async def test_integer_division_and_float_division(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: (w.temp_hi / 4, w.prcp / 2))
    assert await repo.all(q) == [(2, 0.25)]


async def test_reflected_arithmetic(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | where(lambda w: 20 - w.temp_hi > 10) | select(lambda w: 100 - w.temp_hi) | order_by("id")
    )
    assert await repo.all(q) == [98, 91]


async def test_unary_minus_in_where(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: -w.temp_lo > 0)) == [3]


# --- in_, like, is_nil, fragment, field, type_ ------------------------------------------------


async def test_in_a_list(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.in_(["Oslo", "Lima", "Paris"]))) == [3, 4]


async def test_in_an_empty_list_matches_nothing(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.in_([]))) == []


async def test_not_in_a_list(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: ~w.temp_lo.in_(["1", "5"]))) == [3, 4, 5]


async def test_in_lists_of_any_length_share_one_cached_statement(repo: Repo, weather: list[Weather]) -> None:
    first_ = await ids(repo, from_(Weather) | where(lambda w: w.temp_lo.in_([1])))
    before = repo.cache_stats()
    second = await ids(repo, from_(Weather) | where(lambda w: w.temp_lo.in_([1, 5, 7, 99])))
    after = repo.cache_stats()
    assert (first_, second) == ([1], [1, 2, 5])
    assert after["misses"] == before["misses"]
    assert after["hits"] > before["hits"]


async def test_value_in_an_array_field(repo: Repo, typed: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | where(lambda t: E(Param("2")).in_(t.ints)) | select(lambda t: t.id) | order_by("id")
    assert await repo.all(q) == [1, 2]


async def test_field_in_an_array_field(repo: Repo, typed: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | where(lambda t: t.i.in_(t.ints)) | select(lambda t: t.id) | order_by("id")
    assert await repo.all(q) == [1]


async def test_like_is_case_sensitive_and_ilike_is_not(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.like("Kr%"))) == [1, 2]
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.like("kr%"))) == []
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.ilike("kr%"))) == [1, 2]
    assert await ids(repo, from_(Weather) | where(lambda w: w.city.ilike("%O"))) == [3]


async def test_is_nil_and_not_is_nil(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: is_nil(w.city))) == [5]
    assert await ids(repo, from_(Weather) | where(lambda w: is_nil(w.prcp))) == [2]
    assert await ids(repo, from_(Weather) | where(lambda w: ~is_nil(w.prcp))) == [1, 3, 4, 5]


async def test_is_nil_or_comparison(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: (w.prcp > 1.0) | is_nil(w.prcp))) == [2, 3, 5]


async def test_fragment_with_a_field_and_a_value(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: fragment("lower(?) = ?", w.city, "oslo"))) == [3]


async def test_fragment_in_select(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | where(lambda w: w.id >= 3) | select(lambda w: fragment("upper(?)", w.city)) | order_by("id")
    )
    assert await repo.all(q) == ["OSLO", "LIMA", None]


async def test_fragment_with_an_escaped_question_mark(repo: Repo, typed: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | where(lambda t: fragment("? \\? ?", t.m, "k")) | select(lambda t: t.id)
    assert await repo.all(q) == [1]


async def test_field_by_name(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: field(w, "city") == "Lima")) == [4]
    q: Query[Any] = from_(Post) | where(lambda p: field(p, "body") == "beta") | select(lambda p: field(p, "title"))
    assert await repo.all(q) == ["b"]


async def test_type_casts_and_loads_a_value(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: (type_("12", t.Id), type_("2.50", D)))
    )
    assert await repo.all(q) == [(12, D("2.50"))]


async def test_type_of_a_fragment_loads_by_that_type(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: type_(fragment("'2024-05-06'::date"), dt.date))
    assert await repo.all(q) == [dt.date(2024, 5, 6)]


async def test_type_int_accepts_a_bigint_value(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: type_(3_000_000_000, int))
    assert await repo.all(q) == [3_000_000_000]


async def test_type_str_keeps_a_long_value(repo: Repo, weather: list[Weather]) -> None:
    long = "a" * 300
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: type_(long, str))
    assert await repo.all(q) == [long]


async def test_type_str_in_a_comparison_does_not_truncate(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: fragment("repeat('a', 255)") == type_("a" * 300, str))
    assert await ids(repo, q) == []


# --- aggregates in select ---------------------------------------------------------------------


async def test_aggregates_in_select(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | select(
        lambda w: (
            count(),
            count(w.city),
            count(w.city, distinct=True),
            sum_(w.temp_lo),
            avg(w.temp_lo),
            min_(w.temp_lo),
            max_(w.temp_lo),
        )
    )
    [row] = await repo.all(q)
    assert row == (5, 4, 3, 28, D("5.6"), -3, 18)
    assert isinstance(row[4], D)


async def test_aggregates_over_no_rows(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | where(city="nowhere") | select(lambda w: (count(), sum_(w.temp_lo), avg(w.prcp), max_(w.id)))
    )
    assert await repo.all(q) == [(0, None, None, None)]


async def test_min_and_max_load_by_the_field_type(repo: Repo, posts: list[Post]) -> None:
    q: Query[Any] = from_(Post) | select(lambda p: (min_(p.inserted_at), max_(p.rating), sum_(p.rating)))
    [(earliest, top, total)] = await repo.all(q)
    assert earliest == min(cast(dt.datetime, p.inserted_at) for p in posts)
    assert isinstance(earliest, dt.datetime)
    assert (top, total) == (D("4.25"), D("5.75"))


async def test_coalesce(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | order_by("id") | select(lambda w: (coalesce(w.city, "?"), coalesce(w.prcp, -1.0)))
    assert await repo.all(q) == [("Kraków", 0.5), ("Kraków", -1.0), ("Oslo", 1.5), ("Lima", 0.0), ("?", 2.0)]


# --- select shapes ----------------------------------------------------------------------------


async def test_select_whole_struct(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.all(from_(Weather) | order_by("id")) == weather


async def test_select_tuple_list_dict(repo: Repo, weather: list[Weather]) -> None:
    base: Query[Any] = from_(Weather) | where(lambda w: w.id == 3)
    assert await repo.all(base | select(lambda w: (w.city, w.temp_lo))) == [("Oslo", -3)]
    assert await repo.all(base | select(lambda w: [w.city, w.temp_lo])) == [["Oslo", -3]]
    assert await repo.all(base | select(lambda w: {"city": w.city, "lo": w.temp_lo})) == [{"city": "Oslo", "lo": -3}]


async def test_select_nested_shapes(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | where(lambda w: w.id == 4) | select(lambda w: {"c": w.city, "t": (w.temp_lo, [w.temp_hi])})
    )
    assert await repo.all(q) == [{"c": "Lima", "t": (18, [25])}]


async def test_select_struct_inside_a_shape(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 2) | select(lambda w: (w.id, w))
    assert await repo.all(q) == [(2, weather[1])]


async def test_select_literal_values(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 2) | select(lambda w: (w.id, "label", type_(7, t.Id)))
    assert await repo.all(q) == [(2, "label", 7)]


async def test_select_partial_struct(repo: Repo, posts: list[Post]) -> None:
    [p] = await repo.all(from_(Post) | where(title="b") | select(["id", "body"]))
    assert isinstance(p, Post)
    assert (p.id, p.body) == (posts[1].id, "beta")
    assert (p.title, p.visits, p.rating, p.inserted_at) == (None, 0, None, None)


async def test_selected_values_are_loaded_by_their_types(repo: Repo, posts: list[Post]) -> None:
    q: Query[Any] = from_(Post) | where(title="a") | select(lambda p: (p.rating, p.inserted_at, p.visits))
    [(rating, inserted_at, visits)] = await repo.all(q)
    assert rating == D("1.5") and isinstance(rating, D)
    assert inserted_at == posts[0].inserted_at and isinstance(inserted_at, dt.datetime)
    assert inserted_at.tzinfo is None
    assert visits == 1


async def test_selected_enum_and_array_fields_are_loaded(repo: Repo, typed: list[Typed]) -> None:
    q = from_(Typed) | order_by("id") | select(lambda t: {"status": t.status, "ints": t.ints, "m": t.m})
    assert await repo.all(q) == [
        {"status": Status.DRAFT, "ints": [1, 2, 3], "m": {"k": 1}},
        {"status": Status.PUBLISHED, "ints": [2], "m": {"other": 2}},
        {"status": None, "ints": [], "m": {}},
    ]


async def test_select_a_utc_datetime_is_aware(repo: Repo) -> None:
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    await repo.insert(Typed(udu=moment, dec=D("3.14")))
    q: Query[Any] = from_(Typed) | select(lambda t: (t.udu, t.dec))
    assert await repo.all(q) == [(moment, D("3.14"))]


# --- joins ------------------------------------------------------------------------------------


def _joined(kind: str) -> Any:
    return (
        from_(Weather)
        | join(kind, Post, on=lambda w, p: p.visits == w.temp_lo)
        | select(lambda w, p: (w.id, p.title))
        | order_by(lambda w, p: [w.id, p.title])
    )


async def test_inner_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    assert await repo.all(_joined("inner")) == [(1, "a"), (2, "b")]


async def test_left_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    assert await repo.all(_joined("left")) == [(1, "a"), (2, "b"), (3, None), (4, None), (5, None)]


async def test_right_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    assert await repo.all(_joined("right")) == [(1, "a"), (2, "b"), (None, "c")]


async def test_full_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    assert await repo.all(_joined("full")) == [(1, "a"), (2, "b"), (3, None), (4, None), (5, None), (None, "c")]


async def test_cross_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = from_(Weather) | join("cross", Post) | select(lambda w, p: count())
    assert await repo.all(q) == [15]


async def test_left_join_of_a_missing_row_loads_none(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | join("left", Post, on=lambda w, p: p.visits == w.temp_lo)
        | where(lambda w: w.id <= 3)
        | order_by("id")
        | select(lambda w, p: (w, p))
    )
    rows = await repo.all(q)
    assert [w for w, _p in rows] == weather[:3]
    assert [p.title if p is not None else None for _w, p in rows] == ["a", "b", None]
    assert rows[0][1] == posts[0]


async def test_right_join_of_a_missing_from_row_loads_none(
    repo: Repo, weather: list[Weather], posts: list[Post]
) -> None:
    q: Query[Any] = (
        from_(Weather)
        | join("right", Post, on=lambda w, p: p.visits == w.temp_lo)
        | order_by(lambda w, p: p.id)
        | select(lambda w, p: (w, p.title))
    )
    assert await repo.all(q) == [(weather[0], "a"), (weather[1], "b"), (None, "c")]


async def test_select_only_the_joined_source(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = from_(Weather) | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo) | select(lambda w, p: p)
    assert sorted(await repo.all(q), key=lambda p: p.id) == posts[:2]


async def test_named_bindings(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Weather, as_="w")
        | join("inner", Post, on=lambda *, w, p: p.visits == w.temp_lo, as_="p")
        | where(lambda *, p: p.body == "beta")
        | select(lambda *, w, p: {"city": w.city, "title": p.title})
    )
    assert await repo.all(q) == [{"city": "Kraków", "title": "b"}]


async def test_join_on_source_mapped_field_and_user(repo: Repo, posts: list[Post]) -> None:
    await repo.insert(User(email="beta"))
    q: Query[Any] = (
        from_(Post) | join("inner", User, on=lambda p, u: u.email == p.body) | select(lambda p, u: (p.title, u.score))
    )
    assert await repo.all(q) == [("b", 42)]


async def test_three_way_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    await repo.insert(User(email="alpha"))
    q: Query[Any] = (
        from_(Weather)
        | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo)
        | join("left", User, on=lambda w, p, u: u.email == p.body)
        | order_by("id")
        | select(lambda w, p, u: (w.id, p.title, u.email))
    )
    assert await repo.all(q) == [(1, "a", "alpha"), (2, "b", None)]


# --- where / or_where -------------------------------------------------------------------------


async def test_or_where_with_several_fields_ands_them(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Oslo") | or_where(city="Kraków", temp_lo=5)
    assert await ids(repo, q) == [2, 3]


async def test_where_after_or_where_ands_with_everything_before(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Oslo") | or_where(city="Lima") | where(lambda w: w.temp_lo > 0)
    assert await ids(repo, q) == [4]


async def test_where_keywords_and_lambdas_are_anded(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Kraków") | where(lambda w: w.temp_hi > 12)
    assert await ids(repo, q) == [2]


async def test_where_on_a_source_mapped_field(repo: Repo, posts: list[Post]) -> None:
    q: Query[Any] = from_(Post) | where(body="alpha") | select(lambda p: p.title)
    assert await repo.all(q) == ["a"]


# --- group_by / having ------------------------------------------------------------------------


async def test_group_by_and_having(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather) | group_by("city") | having(lambda w: count() > 1) | select(lambda w: (w.city, count()))
    )
    assert await repo.all(q) == [("Kraków", 2)]


async def test_or_having(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | group_by("city")
        | having(lambda w: count() > 1)
        | or_having(lambda w: max_(w.temp_lo) > 10)
        | select(lambda w: (w.city, max_(w.temp_lo)))
        | order_by("city")
    )
    assert await repo.all(q) == [("Kraków", 5), ("Lima", 18)]


async def test_group_by_an_expression(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | group_by(lambda w: is_nil(w.city))
        | select(lambda w: (is_nil(w.city), count(), sum_(w.temp_hi)))
        | order_by(lambda w: is_nil(w.city))
    )
    assert await repo.all(q) == [(False, 4, 52), (True, 1, 9)]


# --- distinct ---------------------------------------------------------------------------------


async def test_distinct(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | distinct(True) | select(lambda w: w.city) | order_by("city")
    assert await repo.all(q) == ["Kraków", "Lima", "Oslo", None]


async def test_distinct_on_keeps_the_first_row_per_group(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | distinct("city") | order_by(desc="temp_lo") | select(lambda w: (w.city, w.temp_lo))
    assert await repo.all(q) == [("Kraków", 5), ("Lima", 18), ("Oslo", -3), (None, 7)]


async def test_distinct_on_with_a_direction(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | distinct(lambda w: [desc(w.city)]) | order_by("temp_lo") | select(lambda w: w.id)
    assert await repo.all(q) == [5, 3, 4, 1]


# --- order_by / limit / offset / lock / exclude -----------------------------------------------


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (order_by("prcp"), [4, 1, 3, 5, 2]),
        (order_by(desc="prcp"), [2, 5, 3, 1, 4]),
        (order_by(asc_nulls_first="prcp"), [2, 4, 1, 3, 5]),
        (order_by(asc_nulls_last="prcp"), [4, 1, 3, 5, 2]),
        (order_by(desc_nulls_first="prcp"), [2, 5, 3, 1, 4]),
        (order_by(desc_nulls_last="prcp"), [5, 3, 1, 4, 2]),
        (order_by(lambda w: [desc_nulls_last(w.city), w.temp_lo]), [3, 4, 1, 2, 5]),
        (order_by(lambda w: [asc_nulls_first(w.city), desc(w.temp_lo)]), [5, 2, 1, 4, 3]),
        (order_by(lambda w: w.temp_hi - w.temp_lo), [5, 3, 4, 1, 2]),
    ],
)
async def test_order_by(repo: Repo, weather: list[Weather], order: Any, expected: list[int]) -> None:
    assert await repo.all(from_(Weather) | order | select(lambda w: w.id)) == expected


async def test_limit_and_offset(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | order_by("id") | limit(2) | offset(1) | select(lambda w: w.id)
    assert await repo.all(q) == [2, 3]
    assert await repo.all(q | offset(4)) == [5]
    assert await repo.all(q | limit(0)) == []


async def test_lock_inside_a_query(repo: Repo, weather: list[Weather]) -> None:
    sent = Sent(repo)
    q: Query[Any] = from_(Weather) | where(city="Kraków") | order_by("id") | lock("FOR UPDATE") | select(lambda w: w.id)
    assert await repo.all(q) == [1, 2]
    assert (await sent.statements())[-1].endswith(" FOR UPDATE")


async def test_lock_with_skip_locked_and_a_limit(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | order_by("id") | limit(1) | lock("FOR UPDATE SKIP LOCKED")
    assert await repo.all(q) == weather[:1]


async def test_exclude_clauses(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(city="Kraków") | order_by(desc="id") | limit(1) | select(lambda w: w.id)
    assert await repo.all(q) == [2]
    assert await repo.all(q | exclude("limit")) == [2, 1]
    assert await repo.all(q | exclude("where")) == [5]
    assert sorted(await repo.all(q | exclude("where", "limit", "order_by"))) == [1, 2, 3, 4, 5]
    assert await repo.all(q | exclude("select")) == weather[1:2]


# --- first / last / one -----------------------------------------------------------------------


async def test_first_and_last_by_primary_key(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.one(from_(Weather) | first()) == weather[0]
    assert await repo.one(from_(Weather) | last()) == weather[4]


async def test_first_and_last_keep_the_query_order(repo: Repo, weather: list[Weather]) -> None:
    ordered = from_(Weather) | order_by("temp_lo")
    head, tail = await repo.one(ordered | first()), await repo.one(ordered | last())
    assert head is not None and head.id == 3
    assert tail is not None and tail.id == 4


async def test_last_reverses_nulls_placement(repo: Repo, weather: list[Weather]) -> None:
    ordered = from_(Weather) | order_by(asc_nulls_first="prcp")
    head, tail = await repo.one(ordered | first()), await repo.one(ordered | last())
    assert head is not None and head.id == 2
    assert tail is not None and tail.id == 5


async def test_first_with_a_filter_and_an_order(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Kraków") | first(lambda w: desc(w.temp_hi))
    assert await repo.one(q) == weather[1]


async def test_first_of_nothing_is_none(repo: Repo) -> None:
    assert await repo.one(from_(Weather) | first()) is None


# --- exists -----------------------------------------------------------------------------------


async def test_exists(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.exists(Weather) is True
    assert await repo.exists(from_(Weather) | where(city="Oslo")) is True
    assert await repo.exists(from_(Weather) | where(city="Paris")) is False


async def test_exists_ignores_select_order_and_distinct(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Lima") | distinct("city") | order_by(desc="id") | select(lambda w: w.city)
    assert await repo.exists(q) is True


async def test_exists_on_an_empty_table(repo: Repo) -> None:
    assert await repo.exists(Weather) is False


async def test_exists_with_a_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q = from_(Weather) | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo)
    assert await repo.exists(q) is True
    assert await repo.exists(q | where(lambda w, p: p.title == "c")) is False


async def test_exists_ignores_a_lock(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.exists(from_(Weather) | where(city="Oslo") | lock("FOR UPDATE")) is True


async def test_exists_with_an_offset(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q = from_(Weather) | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo)
    assert await repo.exists(q | offset(1)) is True
    assert await repo.exists(q | offset(2)) is False


async def test_exists_with_a_limit(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.exists(from_(Weather) | limit(5)) is True


# --- aggregate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "field_name", "expected"),
    [
        ("count", None, 5),
        ("count", "city", 4),
        ("count", "prcp", 4),
        ("sum", "temp_lo", 28),
        ("avg", "temp_lo", D("5.6")),
        ("avg", "prcp", 1.0),
        ("min", "temp_lo", -3),
        ("max", "temp_hi", 25),
        ("min", "city", "Kraków"),
    ],
)
async def test_aggregate(repo: Repo, weather: list[Weather], func: str, field_name: str | None, expected: Any) -> None:
    args = (func,) if field_name is None else (func, field_name)
    result = await repo.aggregate(Weather, *args)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("func", "field_name", "expected"),
    [
        ("count", None, 0),
        ("count", "city", 0),
        ("sum", "temp_lo", None),
        ("avg", "temp_lo", None),
        ("min", "temp_lo", None),
        ("max", "temp_lo", None),
    ],
)
async def test_aggregate_over_no_rows(
    repo: Repo, weather: list[Weather], func: str, field_name: str | None, expected: Any
) -> None:
    q = from_(Weather) | where(city="Paris")
    args = (func,) if field_name is None else (func, field_name)
    assert await repo.aggregate(q, *args) == expected


async def test_aggregate_of_a_filtered_query(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Kraków") | order_by("id")
    assert await repo.aggregate(q, "count") == 2
    assert await repo.aggregate(q, "sum", "temp_hi") == 25


async def test_aggregate_with_limit_is_wrapped_in_a_subquery(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | order_by(desc="temp_lo") | limit(2)
    assert await repo.aggregate(q, "count") == 2
    assert await repo.aggregate(q, "sum", "temp_lo") == 25
    assert await repo.aggregate(q, "min", "temp_lo") == 7


async def test_aggregate_with_offset_is_wrapped_in_a_subquery(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | order_by("id") | offset(3)
    assert await repo.aggregate(q, "count") == 2
    assert await repo.aggregate(q, "max", "temp_hi") == 25


async def test_aggregate_with_distinct_on(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.aggregate(from_(Weather) | distinct("city"), "count") == 4


async def test_aggregate_count_of_a_distinct_query(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.aggregate(from_(Weather) | distinct(True), "count") == 5


async def test_aggregate_count_of_distinct_selected_values(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | distinct(True) | select(lambda w: w.city)
    assert await repo.aggregate(q, "count") == 4


async def test_aggregate_sum_of_a_distinct_query_sums_distinct_rows(repo: Repo, weather: list[Weather]) -> None:
    await repo.insert(Weather(city="Oslo", temp_lo=5, temp_hi=6))
    assert await repo.aggregate(from_(Weather) | distinct(True), "sum", "temp_lo") == 33


async def test_aggregate_refuses_group_by(repo: Repo, weather: list[Weather]) -> None:
    with pytest.raises(QueryError, match="cannot aggregate on query with group_by"):
        await repo.aggregate(from_(Weather) | group_by("city"), "count")


async def test_aggregate_loads_min_and_max_by_type(repo: Repo, posts: list[Post]) -> None:
    assert await repo.aggregate(Post, "max", "rating") == D("4.25")
    latest = await repo.aggregate(Post, "max", "inserted_at")
    assert latest == max(cast(dt.datetime, p.inserted_at) for p in posts)
    assert isinstance(latest, dt.datetime)


# --- update_all -------------------------------------------------------------------------------


async def test_update_all_set(repo: Repo, weather: list[Weather], admin: asyncpg.Connection) -> None:
    assert await repo.update_all(from_(Weather) | where(city="Kraków"), set={"city": "Cracow", "prcp": 9.5}) == (
        2,
        None,
    )
    rows = await admin.fetch("SELECT id, city, prcp FROM weather ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "Cracow", 9.5),
        (2, "Cracow", 9.5),
        (3, "Oslo", 1.5),
        (4, "Lima", 0.0),
        (5, None, 2.0),
    ]


async def test_update_all_inc(repo: Repo, weather: list[Weather], admin: asyncpg.Connection) -> None:
    assert await repo.update_all(Weather, inc={"temp_lo": -2, "temp_hi": "3"}) == (5, None)
    rows = await admin.fetch("SELECT temp_lo, temp_hi FROM weather ORDER BY id")
    assert [tuple(r) for r in rows] == [(-1, 13), (3, 18), (-5, 5), (16, 28), (5, 12)]


async def test_update_all_set_with_a_lambda(repo: Repo, weather: list[Weather], admin: asyncpg.Connection) -> None:
    q = from_(Weather) | where(lambda w: w.id <= 2)
    assert await repo.update_all(q, set={"temp_hi": lambda w: w.temp_hi * 2 + w.temp_lo}) == (2, None)
    assert [r[0] for r in await admin.fetch("SELECT temp_hi FROM weather WHERE id <= 2 ORDER BY id")] == [21, 35]


async def test_update_all_push_and_pull(repo: Repo, typed: list[Typed], admin: asyncpg.Connection) -> None:
    assert await repo.update_all(from_(Typed) | where(lambda t: t.id <= 2), push={"ints": "7"}) == (2, None)
    assert await repo.update_all(Typed, pull={"ints": 2}) == (3, None)
    rows = await admin.fetch("SELECT ints FROM typed ORDER BY id")
    assert [r["ints"] for r in rows] == [[1, 3, 7], [7], []]


async def test_update_all_push_to_text_array(repo: Repo, typed: list[Typed]) -> None:
    await repo.update_all(from_(Typed) | where(lambda t: t.id == 2), push={"texts": "x"})
    texts: Query[Any] = from_(Typed) | order_by("id") | select(lambda t: t.texts)
    assert await repo.all(texts) == [["a", "b"], ["x"], ["c"]]


async def test_update_step_in_the_query(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | where(title="a") | update(set={"body": "new"}, inc={"visits": 10})
    assert await repo.update_all(q) == (1, None)
    changed: Query[Any] = from_(Post) | where(title="a") | select(lambda p: (p.body, p.visits))
    assert await repo.all(changed) == [("new", 11)]


async def test_update_all_does_not_touch_updated_at(repo: Repo, posts: list[Post]) -> None:
    await repo.update_all(from_(Post) | where(title="a"), set={"title": "A"})
    [p] = await repo.all(from_(Post) | where(title="A"))
    assert p.updated_at == posts[0].updated_at


async def test_update_all_with_select_returns_rows(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(city="Kraków") | select(lambda w: (w.id, w.temp_lo))
    count_, rows = await repo.update_all(q, inc={"temp_lo": 10})
    assert count_ == 2
    assert sorted(rows or []) == [(1, 11), (2, 15)]


async def test_update_all_returning_structs(repo: Repo, posts: list[Post]) -> None:
    count_, rows = await repo.update_all(from_(Post) | where(title="b") | select(lambda p: p), set={"rating": "9.5"})
    assert count_ == 1
    assert rows is not None
    [p] = rows
    assert isinstance(p, Post)
    assert (p.id, p.title, p.rating) == (posts[1].id, "b", D("9.5"))


async def test_update_all_with_an_inner_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q = from_(Post) | join("inner", Weather, on=lambda p, w: w.temp_lo == p.visits) | where(lambda p, w: w.id == 2)
    assert await repo.update_all(q, set={"title": lambda p, w: w.city}) == (1, None)
    titles: Query[Any] = from_(Post) | order_by("id") | select(lambda p: p.title)
    assert await repo.all(titles) == ["a", "Kraków", "c"]


async def test_update_all_matching_nothing(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.update_all(from_(Weather) | where(city="Paris"), set={"temp_lo": 0}) == (0, None)
    assert await repo.update_all(from_(Weather) | where(city="Paris") | select(lambda w: w.id), set={"temp_lo": 0}) == (
        0,
        [],
    )


async def test_update_all_refuses_order_by_and_limit(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | order_by("id") | limit(1)
    with pytest.raises(QueryError) as info:
        await repo.update_all(q, set={"city": "x"})
    message = str(info.value)
    assert "`update_all` allows only `where` and `join` expressions" in message
    assert "got order_by, limit" in message
    assert "exclude('order_by', 'limit')" in message
    assert await repo.aggregate(from_(Weather) | where(city="x"), "count") == 0


async def test_update_all_after_exclude_works(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: w.id == 1) | order_by("id") | limit(1)
    assert await repo.update_all(q | exclude("order_by", "limit"), set={"city": "x"}) == (1, None)


async def test_update_all_cast_error_sends_nothing(repo: Repo, weather: list[Weather]) -> None:
    sent = Sent(repo)
    with pytest.raises(CastError, match=r"Weather\.temp_lo"):
        await repo.update_all(Weather, set={"temp_lo": "warm"})
    assert await sent.statements() == []


# --- delete_all -------------------------------------------------------------------------------


async def test_delete_all(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.delete_all(from_(Weather) | where(city="Kraków")) == (2, None)
    assert await ids(repo, from_(Weather)) == [3, 4, 5]
    assert await repo.delete_all(Weather) == (3, None)
    assert await repo.all(Weather) == []


async def test_delete_all_returning(repo: Repo, weather: list[Weather]) -> None:
    count_, rows = await repo.delete_all(from_(Weather) | where(lambda w: w.temp_lo < 2) | select(lambda w: w))
    assert count_ == 2
    assert sorted(rows or [], key=lambda w: w.id) == [weather[0], weather[2]]
    assert await ids(repo, from_(Weather)) == [2, 4, 5]


async def test_delete_all_returning_a_dict(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | where(title="a") | select(lambda p: {"id": p.id, "body": p.body})
    assert await repo.delete_all(q) == (1, [{"id": posts[0].id, "body": "alpha"}])


async def test_delete_all_with_an_inner_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q = from_(Weather) | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo) | where(lambda w, p: p.title == "b")
    assert await repo.delete_all(q) == (1, None)
    assert await ids(repo, from_(Weather)) == [1, 3, 4, 5]


async def test_delete_all_refuses_limit(repo: Repo, weather: list[Weather]) -> None:
    with pytest.raises(QueryError, match=r"`delete_all` allows only `where` and `join` expressions.*got limit"):
        await repo.delete_all(from_(Weather) | limit(1))
    assert await repo.aggregate(Weather, "count") == 5


# --- cache and parameter safety ---------------------------------------------------------------


async def test_second_query_of_the_same_shape_is_a_cache_hit(repo: Repo, weather: list[Weather]) -> None:
    def q(city: str, n: int) -> Any:
        return from_(Weather) | where(lambda w: (w.city == city) & (w.temp_lo > n)) | order_by("id") | limit(n + 5)

    assert await ids(repo, q("Kraków", 0)) == [1, 2]
    before = repo.cache_stats()
    assert await ids(repo, q("Kraków", 2)) == [2]
    after = repo.cache_stats()
    assert after["hits"] > before["hits"]
    assert after["misses"] == before["misses"]
    assert after["size"] == before["size"]


async def test_a_new_shape_is_a_cache_miss(repo: Repo, weather: list[Weather]) -> None:
    await repo.all(from_(Weather) | where(city="Oslo"))
    before = repo.cache_stats()
    await repo.all(from_(Weather) | where(temp_lo=1))
    assert repo.cache_stats()["misses"] == before["misses"] + 1


@pytest.mark.parametrize(
    "nasty",
    ["'; DROP TABLE weather; --", "it's", 'say "hi"', "$1", "a;b", "-- x", "\\", "?", "%"],
)
async def test_nasty_values_are_only_ever_data(repo: Repo, weather: list[Weather], nasty: str) -> None:
    sent = Sent(repo)
    w = await repo.insert(Weather(city=nasty, temp_lo=0))
    assert await ids(repo, from_(Weather) | where(city=nasty)) == [w.id]
    assert await ids(repo, from_(Weather) | where(lambda x: fragment("? = ?", x.city, nasty))) == [w.id]
    assert await ids(repo, from_(Weather) | where(lambda x: x.city.in_([nasty, "Oslo"]))) == [3, w.id]
    q: Query[Any] = from_(Weather) | where(lambda x: x.id == w.id) | select(lambda x: (x.city, nasty))
    assert await repo.all(q) == [(nasty, nasty)]
    assert await repo.update_all(from_(Weather) | where(city=nasty), set={"city": nasty + nasty}) == (1, None)
    assert await repo.aggregate(Weather, "count") == 6
    for statement in await sent.statements():
        assert nasty not in statement or nasty == "$1"


async def test_like_wildcards_are_data_not_sql(repo: Repo, weather: list[Weather]) -> None:
    await repo.insert(Weather(city="100%", temp_lo=0))
    q: Query[Any] = from_(Weather) | where(lambda w: w.city.like("100\\%")) | select(lambda w: w.city)
    assert await repo.all(q) == ["100%"]


# --- keyword form -----------------------------------------------------------------------------


async def test_keyword_form_gives_the_same_rows(repo: Repo, weather: list[Weather]) -> None:
    kw = from_(Weather, where=lambda w: w.temp_lo > 0, order_by=["city", "id"], limit=3)
    pipe = from_(Weather) | where(lambda w: w.temp_lo > 0) | order_by(["city", "id"]) | limit(3)
    assert kw == pipe
    assert await repo.all(kw) == await repo.all(pipe) == [weather[0], weather[1], weather[3]]


async def test_keyword_form_with_select_group_by_having(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(
        Weather,
        where=lambda w: ~is_nil(w.city),
        group_by="city",
        having=lambda w: sum_(w.temp_hi) > 5,
        select=lambda w: (w.city, sum_(w.temp_hi)),
        order_by=lambda w: [desc(sum_(w.temp_hi)), w.city],
    )
    assert await repo.all(q) == [("Kraków", 25), ("Lima", 25)]


# -- subqueries as sources ----------------------------------------------------------------------


async def test_from_a_subquery_of_structs(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import subquery

    warm = from_(Weather) | where(lambda w: w.temp_lo > 4)  # ids 2, 4, 5
    q = from_(subquery(warm)) | where(lambda s: s.temp_hi > 10) | order_by("id")
    result = await repo.all(q)
    assert [(w.id, w.city) for w in result] == [(2, "Kraków"), (4, "Lima")]
    assert all(isinstance(w, Weather) for w in result)
    sql, params = repo.to_sql(q)
    assert sql.startswith('SELECT s0."id"') and ') AS s0 WHERE (s0."temp_hi" > $2)' in sql
    assert params == [4, 10]


async def test_join_a_subquery_of_a_dict(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import count, subquery

    per_city = from_(Weather) | group_by("city") | select(lambda w: {"city": w.city, "n": count()})
    q: Query[Any] = (
        from_(Weather)
        | join("inner", subquery(per_city), on=lambda w, s: s.city == w.city)
        | where(lambda w: w.temp_lo > 0)
        | select(lambda w, s: (w.city, s.n))
        | order_by("city")
    )
    # the NULL city joins nothing; Kraków has two rows, each seeing the count 2
    assert await repo.all(q) == [("Kraków", 2), ("Kraków", 2), ("Lima", 1)]
    assert 'AS "n" FROM "weather" AS s1w0 GROUP BY s1w0."city") AS s1' in repo.to_sql(q)[0]


async def test_a_subquery_source_only_exposes_what_it_selects(repo: Repo) -> None:
    from asyncecto.query import subquery

    per_city = from_(Weather) | select(lambda w: {"city": w.city})
    with pytest.raises(QueryError, match="field 'temp_lo' is not available in the subquery, which selects: city"):
        repo.to_sql(from_(subquery(per_city)) | select(lambda s: s.temp_lo))
    with pytest.raises(QueryError, match="must select a struct or a dict"):
        from_(subquery(from_(Weather) | select(lambda w: w.city)))


# -- lateral joins, parent_as, selected_as, preload -------------------------------------------


async def test_lateral_join_gives_top_n_per_parent(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    from asyncecto.query import parent_as, subquery

    # for each post, the two warmest weather rows whose temp_lo is at most the post's visits
    top = (
        from_(Weather)
        | where(lambda w: w.temp_lo <= parent_as("p").visits)
        | order_by(desc="temp_hi")
        | limit(2)
        | select(lambda w: {"id": w.id})
    )
    q: Query[Any] = (
        from_(Post, as_="p")
        | join("inner_lateral", subquery(top), on=True)
        | select(lambda p, t: (p.title, t.id))
        | order_by(lambda p, t: [p.title, t.id])
    )
    # visits: a=1 (rows with temp_lo <= 1: ids 1, 3), b=5 (ids 1, 2, 3 → warmest 2, 1), c=0 (id 3)
    assert await repo.all(q) == [("a", 1), ("a", 3), ("b", 1), ("b", 2), ("c", 3)]
    assert "INNER JOIN LATERAL (SELECT" in repo.to_sql(q)[0]


async def test_left_lateral_join_loads_none_for_parents_without_rows(
    repo: Repo, weather: list[Weather], posts: list[Post]
) -> None:
    from asyncecto.query import parent_as, subquery

    hot = from_(Weather) | where(lambda w: w.temp_hi > parent_as("p").visits * 100) | select(lambda w: {"id": w.id})
    q: Query[Any] = (
        from_(Post, as_="p") | join("left_lateral", subquery(hot), on=True) | select(lambda p, h: (p.title, h.id))
    )
    assert sorted(await repo.all(q)) == [("a", None), ("b", None), ("c", 1), ("c", 2), ("c", 3), ("c", 4), ("c", 5)]


async def test_correlated_exists_with_parent_as(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    from asyncecto.query import exists, parent_as, subquery

    q: Query[Any] = (
        from_(Post, as_="p")
        | where(lambda p: exists(subquery(from_(Weather) | where(lambda w: w.temp_lo == parent_as("p").visits))))
        | select(lambda p: p.title)
    )
    assert await repo.all(q) == ["a", "b"]  # temp_lo 1 and 5 exist; 0 does not


async def test_selected_as_in_group_by_and_order_by(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import count, selected_as

    q: Query[Any] = (
        from_(Weather)
        | select(lambda w: (selected_as(w.temp_lo > 0, "warm"), count()))
        | group_by(lambda w: selected_as("warm"))
        | order_by(lambda w: selected_as("warm"))
    )
    assert await repo.all(q) == [(False, 1), (True, 4)]
    with pytest.raises(QueryError, match="selected_as\\('nope'\\) refers to an alias"):
        repo.to_sql(from_(Weather) | select(lambda w: w.id) | order_by(lambda w: selected_as("nope")))


def test_preload_names_are_checked_against_the_schema() -> None:
    from asyncecto.query import preload

    with pytest.raises(QueryError, match="schema Weather has no association 'comments' to preload"):
        from_(Weather) | preload("comments")
    with pytest.raises(QueryError, match="an inner_lateral join needs subquery"):
        from_(Weather) | join("inner_lateral", Post, on=True)


# -- values and recursive CTEs --------------------------------------------------------------------


async def test_join_a_values_table(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import values

    ranks = values([{"city": "Oslo", "rank": 1}, {"city": "Lima", "rank": 2}], {"city": str, "rank": int})
    q: Query[Any] = (
        from_(Weather)
        | join("inner", ranks, on=lambda w, r: r.city == w.city)
        | select(lambda w, r: (w.city, r.rank))
        | order_by(lambda w, r: r.rank)
    )
    assert await repo.all(q) == [("Oslo", 1), ("Lima", 2)]
    sql, params = repo.to_sql(q)
    assert '(VALUES ($1::varchar, $2::bigint), ($3::varchar, $4::bigint)) AS v1 ("city", "rank")' in sql
    assert params == ["Oslo", 1, "Lima", 2]


async def test_values_typed_by_a_schema_load_as_structs(repo: Repo) -> None:
    from asyncecto import meta
    from asyncecto.query import values

    q = from_(values([{"id": 7, "city": "X", "temp_lo": "3"}], Weather)) | where(lambda w: w.temp_lo > 1)
    (w,) = await repo.all(q)
    assert w == Weather(id=7, city="X", temp_lo=3, temp_hi=None, prcp=None)
    assert meta(w).source == "weather"


def test_values_refuses_bad_rows() -> None:
    from asyncecto.query import values

    with pytest.raises(QueryError, match="at least one row"):
        values([], {"a": int})
    with pytest.raises(QueryError, match="row 1 lacks \\['a'\\]"):
        values([{"a": 1}, {}], {"a": int})
    with pytest.raises(QueryError, match="row 0 has unknown \\['nope'\\]"):
        values([{"nope": 1}], Weather)
    with pytest.raises(CastError, match="temp_lo"):
        Repo("postgres://localhost/x").to_sql(from_(values([{"temp_lo": "warm"}], Weather)))


async def test_recursive_cte(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import union_all, with_cte

    initial = from_(Weather) | where(lambda w: w.id == 1)
    step = from_(Weather) | join("inner", ("chain", Weather), on=lambda w, c: w.id == c.id + 1)
    q: Query[Any] = (
        from_(("chain", Weather))
        | with_cte("chain", as_=initial | union_all(step), recursive=True)
        | select(lambda c: c.id)
        | order_by("id")
    )
    assert await repo.all(q) == [1, 2, 3, 4, 5]
    assert repo.to_sql(q)[0].startswith('WITH RECURSIVE "chain" AS (SELECT w0."id"')


async def test_any_and_all_over_a_subquery(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import all_, any_, subquery

    oslo = from_(Weather) | where(city="Oslo") | select(lambda w: w.temp_hi)  # 2
    krakow = from_(Weather) | where(city="Kraków") | select(lambda w: w.temp_hi)  # 10, 15
    q1: Query[Any] = (
        from_(Weather) | where(lambda w: w.temp_hi > any_(subquery(krakow))) | select(lambda w: w.id) | order_by("id")
    )
    q2: Query[Any] = (
        from_(Weather) | where(lambda w: w.temp_hi > all_(subquery(krakow))) | select(lambda w: w.id) | order_by("id")
    )
    q3: Query[Any] = from_(Weather) | where(lambda w: w.temp_hi == any_(subquery(oslo))) | select(lambda w: w.id)
    assert await repo.all(q1) == [2, 4]  # above 10: 15 and 25
    assert await repo.all(q2) == [4]  # above 15
    assert await repo.all(q3) == [3]
    assert '(w0."temp_hi" > ANY (SELECT s1w0."temp_hi"' in repo.to_sql(q1)[0]
    assert repr(q2).count("all_(subquery(") == 1


# -- review regressions (query SQL) ---------------------------------------------------------------


async def test_delete_all_refuses_combinations_instead_of_dropping_them(
    repo: Repo, weather: list[Weather], admin: asyncpg.Connection
) -> None:
    from asyncecto.query import except_

    q = from_(Weather) | except_(from_(Weather) | where(lambda w: is_nil(w.prcp)))
    with pytest.raises(QueryError, match=r"allows only `where` and `join`.*combinations"):
        await repo.delete_all(q)
    assert await admin.fetchval("SELECT count(*) FROM weather") == 5


async def test_each_where_clause_keeps_its_own_precedence(repo: Repo, weather: list[Weather]) -> None:
    q = (
        from_(Weather)
        | where(lambda w: fragment("? = 'Oslo' OR ? = 'Lima'", w.city, w.city))
        | where(lambda w: w.temp_lo > 100)
        | select(lambda w: w.id)
    )
    assert await repo.all(q) == []
    assert 'WHERE ((w0."city" = \'Oslo\' OR w0."city" = \'Lima\') AND (w0."temp_lo" > $1))' in repo.to_sql(q)[0]


async def test_sources_before_a_right_join_load_as_none(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Post)
        | join("inner", User, on=lambda p, u: u.id == p.visits)
        | join("right", Weather, on=lambda p, u, w: w.id == p.visits)
        | select(lambda p, u, w: (p, u, w.id))
        | order_by(lambda p, u, w: w.id)
    )
    rows = await repo.all(q)
    assert [r[2] for r in rows] == [1, 2, 3, 4, 5]
    assert all(p is None and u is None for p, u, _ in rows)  # no users: nothing matched the inner join


async def test_a_cte_inside_a_subquery_is_written(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.query import subquery, with_cte

    hot = from_(Weather) | where(lambda w: w.temp_hi > 9)
    inner = from_(("hot", Weather)) | with_cte("hot", as_=hot) | select(lambda h: h.id)
    q: Query[Any] = (
        from_(Weather) | where(lambda w: w.id.in_(subquery(inner))) | select(lambda w: w.id) | order_by("id")
    )
    assert await repo.all(q) == [1, 2, 4]


async def test_update_all_joined_to_a_subquery(repo: Repo, weather: list[Weather], admin: asyncpg.Connection) -> None:
    from asyncecto.query import subquery

    cold = from_(Weather) | where(lambda w: w.temp_hi < 5) | select(lambda w: {"id": w.id})
    q = from_(Weather) | join("inner", subquery(cold), on=lambda w, c: c.id == w.id)
    assert await repo.update_all(q, set={"city": "cold"}) == (1, None)
    assert await admin.fetchval("SELECT id FROM weather WHERE city = 'cold'") == 3


async def test_fractional_values_in_integer_arithmetic(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | where(lambda w: w.temp_lo / 2 > 1.5)
        | select(lambda w: (w.id, w.temp_lo * 1.5))
        | order_by("id")
    )
    assert await repo.all(q) == [(2, 7.5), (4, 27.0), (5, 10.5)]
    with pytest.raises(CastError, match="temp_lo"):
        repo.to_sql(from_(Weather) | where(lambda w: w.temp_lo > 1.5))  # a direct comparison still casts strictly


async def test_type_casts_expressions_and_loads_their_type(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | select(lambda w: type_(w.temp_lo / 2, float)) | where(lambda w: w.id == 2)
    assert await repo.all(q) == [2.0]  # integer division happened before the cast, as the SQL says


async def test_constant_strings_are_safe_whatever_the_string_setting(database_url: str) -> None:
    from asyncecto.query import constant

    settings = {"standard_conforming_strings": "off", "application_name": "asyncecto-tests"}
    async with Repo(database_url, pool_size=1, server_settings=settings) as r:
        q: Query[Any] = from_(Weather) | select(lambda w: fragment("?", constant("\\' OR TRUE) --"))) | limit(1)
        await r.query("INSERT INTO weather (city) VALUES ('one row')")
        try:
            assert await r.all(q) == ["\\' OR TRUE) --"]
        finally:
            await r.query("DELETE FROM weather WHERE city = 'one row'")


async def test_explain_options_must_be_booleans(repo: Repo) -> None:
    from asyncecto.errors import ArgumentError

    with pytest.raises(ArgumentError, match="costs must be True or False"):
        await repo.explain(from_(Weather), "delete_all", costs=cast(Any, "TRUE, ANALYZE TRUE"))


def test_lock_accepts_row_locks_only() -> None:
    for clause in ("FOR UPDATE", "for share skip locked", 'FOR NO KEY UPDATE OF w0, "x" NOWAIT', "FOR KEY SHARE"):
        assert (from_(Weather) | lock(clause)).lock == clause
    for bad in ("FOR UPDATE; DROP TABLE weather", "FOR UPDATE --", "LOCK weather"):
        with pytest.raises(QueryError, match="row lock"):
            lock(bad)


def test_last_appends_its_key_then_reverses_and_first_drops_with_ties() -> None:
    from asyncecto.query import first, last

    q = from_(Weather) | order_by(desc="temp_hi") | last("id")
    keys = [(o.direction, o.expr.name) for o in q.order_bys if isinstance(o.expr, FieldRef)]
    assert keys == [("asc", "temp_hi"), ("desc", "id")] and len(q.order_bys) == 2
    q2 = from_(Weather) | order_by("city") | limit(3, with_ties=True) | first()
    assert q2.with_ties is False and q2.limit == Param(1)


async def test_dict_select_keys_keep_their_type(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: {1: w.city, "lo": w.temp_lo})
    assert await repo.all(q) == [{1: "Kraków", "lo": 1}]


async def test_a_plan_with_an_unhashable_type_fails_clearly(repo: Repo) -> None:
    import dataclasses

    @dataclasses.dataclass
    class Money:  # eq without frozen: unhashable
        name: str = "money"

        def cast(self, v: object) -> object:
            return v

        def dump(self, v: object) -> object:
            return v

        def load(self, v: object) -> object:
            return v

        def equal(self, a: object, b: object) -> bool:
            return a == b

    with pytest.raises(QueryError, match="must be hashable"):
        repo.to_sql(from_(Weather) | select(lambda w: type_(w.temp_lo, Money())))


def test_slotted_user_types_compare_by_their_slots() -> None:
    class Scaled(t.BaseType[int]):
        __slots__ = ("factor",)
        name = "scaled"

        def __init__(self, factor: int) -> None:
            self.factor = factor

    assert Scaled(10) != Scaled(1000) and Scaled(10) == Scaled(10)


async def test_stream_checks_the_owner_every_batch(repo: Repo, weather: list[Weather]) -> None:
    from asyncecto.errors import RepoStateError

    async with repo.transaction():
        stream = repo.stream(from_(Weather) | order_by("id"), max_rows=1)
        assert isinstance(await stream.__anext__(), Weather)

        async def steal() -> object:
            return await stream.__anext__()

        with pytest.raises(RepoStateError, match="another task"):
            await asyncio.create_task(steal())
        await stream.aclose()
