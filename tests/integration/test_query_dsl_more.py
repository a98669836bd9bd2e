"""More of the query DSL against PostgreSQL: JSON paths, time shifts, interval arithmetic, WITH TIES,
fragment modifiers, FILTER, dynamics, subqueries, windows, combinations, CTEs, select_merge and explain."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, cast

import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import (
    Query,
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
    update,
    where,
    windows,
    with_cte,
    with_ties,
)

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


@pytest.fixture
async def maps(repo: Repo) -> list[Typed]:
    """Nested JSON documents."""
    return [
        await repo.insert(Typed(i=1, m={"a": {"b": [10, 20]}, "k": 1, "s": "x", "it's; $1": "odd"})),
        await repo.insert(Typed(i=2, m={"a": {"b": []}, "k": "1", "s": None})),
        await repo.insert(Typed(i=3, m={"a": {"b": [30]}, "k": 2.5})),
        await repo.insert(Typed(i=4, m={})),
    ]


async def ids(repo: Repo, q: Any) -> list[int]:
    return await repo.all(q | select(lambda w: w.id) | order_by("id"))


def _nulls_last(values: list[Any]) -> list[Any]:
    return sorted(values, key=lambda v: (v is None, v if v is not None else ""))


class Sent:
    """Collects the SQL the repo sends (through telemetry)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="dsl-more-sent")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


# --- JSON paths ---------------------------------------------------------------------------------


async def test_json_path_of_one_key_in_select(repo: Repo, typed: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | order_by("id") | select(lambda t: (t.m["k"], t.m["other"]))
    assert await repo.all(q) == [(1, None), (None, 2), (None, None)]


async def test_json_path_into_nested_objects_and_arrays(repo: Repo, maps: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | order_by("id") | select(lambda t: (t.m["a"]["b"][0], t.m["a"]["b"][1], t.m["a"]))
    assert await repo.all(q) == [
        (10, 20, {"b": [10, 20]}),
        (None, None, {"b": []}),
        (30, None, {"b": [30]}),
        (None, None, None),
    ]


async def test_json_path_loads_each_json_type(repo: Repo, maps: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | order_by("id") | select(lambda t: (t.m["k"], t.m["s"]))
    assert await repo.all(q) == [(1, "x"), ("1", None), (2.5, None), (None, None)]


async def test_json_path_compares_as_json(repo: Repo, maps: list[Typed]) -> None:
    def matching(cond: Any) -> Any:
        return repo.all(from_(Typed) | where(cond) | order_by("id") | select(lambda t: t.i))

    assert await matching(lambda t: t.m["k"] == 1) == [1]
    assert await matching(lambda t: t.m["k"] == "1") == [2]
    assert await matching(lambda t: t.m["k"] == 2.5) == [3]
    assert await matching(lambda t: t.m["k"] != 1) == [2, 3]
    assert await matching(lambda t: t.m["a"]["b"][1] == 20) == [1]
    assert await matching(lambda t: t.m["a"] == {"b": []}) == [2]
    assert await matching(lambda t: t.m["s"] == "x") == [1]


async def test_json_path_matches_the_seeded_key(repo: Repo, typed: list[Typed]) -> None:
    assert await ids(repo, from_(Typed) | where(lambda t: t.m["k"] == 1)) == [typed[0].id]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m["other"] == 2)) == [typed[1].id]


async def test_json_path_is_nil_for_a_missing_path(repo: Repo, maps: list[Typed]) -> None:
    q: Query[Any] = from_(Typed) | where(lambda t: is_nil(t.m["a"]["b"][0])) | order_by("id") | select(lambda t: t.i)
    assert await repo.all(q) == [2, 4]


async def test_json_path_in_a_list(repo: Repo, maps: list[Typed]) -> None:
    q: Query[Any] = (
        from_(Typed) | where(lambda t: t.m["k"].in_([1, 2.5, "nope"])) | order_by("id") | select(lambda t: t.i)
    )
    assert await repo.all(q) == [1, 3]


async def test_json_path_with_an_odd_key_is_data(repo: Repo, maps: list[Typed]) -> None:
    sent = Sent(repo)
    q: Query[Any] = from_(Typed) | where(lambda t: t.m["it's; $1"] == "odd") | select(lambda t: (t.i, t.m["it's; $1"]))
    assert await repo.all(q) == [(1, "odd")]
    assert all("it's" not in s for s in await sent.statements())


# --- ago / from_now -----------------------------------------------------------------------------


def _now_naive() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@pytest.fixture
async def dated_posts(repo: Repo) -> dict[str, Post]:
    now = _now_naive()
    moments = {
        "old": now - dt.timedelta(days=40),
        "week": now - dt.timedelta(days=6),
        "hour": now - dt.timedelta(hours=1),
        "future": now + dt.timedelta(days=3),
    }
    return {name: await repo.insert(Post(title=name, inserted_at=at)) for name, at in moments.items()}


@pytest.fixture
async def dated_users(repo: Repo) -> dict[str, User]:
    now = dt.datetime.now(dt.UTC)
    moments = {
        "old": now - dt.timedelta(days=400),
        "recent": now - dt.timedelta(minutes=30),
        "future": now + dt.timedelta(hours=5),
    }
    return {name: await repo.insert(User(email=name, created_at=at)) for name, at in moments.items()}


async def titles(repo: Repo, cond: Any) -> list[str]:
    q: Query[Any] = from_(Post) | where(cond) | order_by("inserted_at") | select(lambda p: p.title)
    return await repo.all(q)


async def test_ago_on_a_naive_field(repo: Repo, dated_posts: dict[str, Post]) -> None:
    assert await titles(repo, lambda p: p.inserted_at > ago(7, "day")) == ["week", "hour", "future"]
    assert await titles(repo, lambda p: p.inserted_at < ago(1, "month")) == ["old"]
    assert await titles(repo, lambda p: p.inserted_at < ago(1, "year")) == []
    assert await titles(repo, lambda p: p.inserted_at > ago(90, "minute")) == ["hour", "future"]


async def test_from_now_on_a_naive_field(repo: Repo, dated_posts: dict[str, Post]) -> None:
    assert await titles(repo, lambda p: p.inserted_at > from_now(1, "day")) == ["future"]
    assert await titles(repo, lambda p: p.inserted_at < from_now(1, "week")) == ["old", "week", "hour", "future"]
    assert await titles(repo, lambda p: p.inserted_at > from_now(1, "week")) == []


async def test_ago_and_from_now_bound_a_range(repo: Repo, dated_posts: dict[str, Post]) -> None:
    cond = lambda p: (p.inserted_at >= ago(2, "hour")) & (p.inserted_at <= from_now(1, "hour"))  # noqa: E731
    assert await titles(repo, cond) == ["hour"]


async def test_ago_on_the_left_of_the_comparison(repo: Repo, dated_posts: dict[str, Post]) -> None:
    assert await titles(repo, lambda p: ago(2, "week") > p.inserted_at) == ["old"]


async def test_ago_and_from_now_on_a_utc_field(repo: Repo, dated_users: dict[str, User]) -> None:
    def emails(cond: Any) -> Any:
        return repo.all(from_(User) | where(cond) | order_by("created_at") | select(lambda u: u.email))

    assert await emails(lambda u: u.created_at > ago(1, "hour")) == ["recent", "future"]
    assert await emails(lambda u: u.created_at < ago(1, "year")) == ["old"]
    assert await emails(lambda u: u.created_at > from_now(4, "hour")) == ["future"]
    assert await emails(lambda u: u.created_at < from_now(3600, "second")) == ["old", "recent"]


async def test_ago_selected_alone_is_the_app_time(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: w.id == 1) | select(lambda w: ago(1, "day"))
    [moment] = await repo.all(q)
    assert moment.utcoffset() == dt.timedelta(0)
    assert abs(moment - (dt.datetime.now(dt.UTC) - dt.timedelta(days=1))) < dt.timedelta(seconds=30)


# --- datetime_add / date_add --------------------------------------------------------------------


@pytest.fixture
async def fixed_posts(repo: Repo) -> list[Post]:
    return [
        await repo.insert(Post(title="jan31", visits=2, inserted_at=dt.datetime(2024, 1, 31, 10, 0))),
        await repo.insert(Post(title="jan15", visits=-1, inserted_at=dt.datetime(2024, 1, 15, 8, 30))),
    ]


async def test_datetime_add_in_select(repo: Repo, fixed_posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Post)
        | where(title="jan31")
        | select(
            lambda p: (
                datetime_add(p.inserted_at, 1, "month"),
                datetime_add(p.inserted_at, -1.5, "day"),
                datetime_add(p.inserted_at, D("2.5"), "hour"),
                datetime_add(p.inserted_at, 90, "minute"),
                datetime_add(p.inserted_at, -1, "year"),
                datetime_add(p.inserted_at, 2, "week"),
                datetime_add(p.inserted_at, 1500, "millisecond"),
            )
        )
    )
    assert await repo.all(q) == [
        (
            dt.datetime(2024, 2, 29, 10, 0),
            dt.datetime(2024, 1, 29, 22, 0),
            dt.datetime(2024, 1, 31, 12, 30),
            dt.datetime(2024, 1, 31, 11, 30),
            dt.datetime(2023, 1, 31, 10, 0),
            dt.datetime(2024, 2, 14, 10, 0),
            dt.datetime(2024, 1, 31, 10, 0, 1, 500000),
        )
    ]


async def test_datetime_add_in_where(repo: Repo, fixed_posts: list[Post]) -> None:
    def matching(cond: Any) -> Any:
        return repo.all(from_(Post) | where(cond) | order_by("id") | select(lambda p: p.title))

    assert await matching(lambda p: datetime_add(p.inserted_at, 30, "day") > dt.datetime(2024, 3, 1)) == ["jan31"]
    assert await matching(lambda p: datetime_add(p.inserted_at, -0.5, "month") < "2024-01-01T00:00:00") == ["jan15"]
    assert await matching(lambda p: datetime_add(p.inserted_at, 1, "month") == dt.datetime(2024, 2, 15, 8, 30)) == [
        "jan15"
    ]


async def test_datetime_add_of_a_field_amount(repo: Repo, fixed_posts: list[Post]) -> None:
    q = from_(Post) | order_by("id") | select(lambda p: datetime_add(p.inserted_at, p.visits, "day"))
    assert await repo.all(q) == [dt.datetime(2024, 2, 2, 10, 0), dt.datetime(2024, 1, 14, 8, 30)]


async def test_datetime_add_on_a_utc_field_loads_aware(repo: Repo) -> None:
    await repo.insert(User(email="e", created_at=dt.datetime(2024, 1, 31, 23, 0, tzinfo=dt.UTC)))
    q: Query[Any] = from_(User) | select(
        lambda u: (datetime_add(u.created_at, 2, "hour"), datetime_add(u.created_at, -1, "day"))
    )
    assert await repo.all(q) == [
        (dt.datetime(2024, 2, 1, 1, 0, tzinfo=dt.UTC), dt.datetime(2024, 1, 30, 23, 0, tzinfo=dt.UTC))
    ]


async def test_date_add_in_select_is_a_date(repo: Repo) -> None:
    await repo.insert(Typed(d=dt.date(2024, 1, 31)))
    q: Query[Any] = from_(Typed) | select(
        lambda t: (
            date_add(t.d, 1, "month"),
            date_add(t.d, -1.5, "month"),
            date_add(t.d, 2, "week"),
            date_add(t.d, -1, "day"),
            date_add(t.d, 1, "year"),
        )
    )
    [row] = await repo.all(q)
    assert row == (
        dt.date(2024, 2, 29),
        dt.date(2023, 12, 16),
        dt.date(2024, 2, 14),
        dt.date(2024, 1, 30),
        dt.date(2025, 1, 31),
    )
    assert all(type(d) is dt.date for d in row)


async def test_date_add_in_where(repo: Repo) -> None:
    await repo.insert(Typed(i=1, d=dt.date(2024, 1, 31)))
    await repo.insert(Typed(i=2, d=dt.date(2024, 2, 28)))

    def matching(cond: Any) -> Any:
        return repo.all(from_(Typed) | where(cond) | order_by("id") | select(lambda t: t.i))

    assert await matching(lambda t: date_add(t.d, 1, "day") == dt.date(2024, 2, 1)) == [1]
    assert await matching(lambda t: date_add(t.d, 1, "day") == "2024-02-29") == [2]
    assert await matching(lambda t: date_add(t.d, 1, "month") == dt.date(2024, 2, 29)) == [1]
    assert await matching(lambda t: date_add(t.d, -2, "week") < dt.date(2024, 2, 15)) == [1, 2]
    assert await matching(lambda t: date_add(t.d, -2, "week") < dt.date(2024, 1, 31)) == [1]


# --- with_ties ----------------------------------------------------------------------------------


@pytest.fixture
async def two_limas(repo: Repo, weather: list[Weather]) -> list[Weather]:
    return [*weather, await repo.insert(Weather(city="Lima", temp_lo=20, temp_hi=30))]


async def cities_and_ids(repo: Repo, q: Any) -> list[tuple[str | None, int]]:
    return sorted(await repo.all(q | select(lambda w: (w.city, w.id))), key=lambda r: r[1])


async def test_limit_with_ties_returns_the_tied_rows(repo: Repo, two_limas: list[Weather]) -> None:
    by_city = from_(Weather) | order_by("city")
    assert await cities_and_ids(repo, by_city | limit(1, with_ties=True)) == [("Kraków", 1), ("Kraków", 2)]
    assert await cities_and_ids(repo, by_city | limit(3, with_ties=True)) == [
        ("Kraków", 1),
        ("Kraków", 2),
        ("Lima", 4),
        ("Lima", 6),
    ]
    assert len(await repo.all(by_city | limit(3))) == 3


async def test_with_ties_step(repo: Repo, two_limas: list[Weather]) -> None:
    q = from_(Weather) | order_by("city") | limit(1) | with_ties()
    assert await cities_and_ids(repo, q) == [("Kraków", 1), ("Kraków", 2)]
    assert len(await repo.all(q | with_ties(False))) == 1


async def test_with_ties_after_an_offset(repo: Repo, two_limas: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: w.temp_lo > -100) | order_by("city") | offset(2) | limit(1, with_ties=True)
    assert await cities_and_ids(repo, q) == [("Lima", 4), ("Lima", 6)]
    assert await cities_and_ids(repo, q | offset(4)) == [("Oslo", 3)]


async def test_with_ties_on_a_descending_order(repo: Repo, two_limas: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: ~is_nil(w.city)) | order_by(desc="city") | limit(2, with_ties=True)
    assert await cities_and_ids(repo, q) == [("Oslo", 3), ("Lima", 4), ("Lima", 6)]


async def test_aggregate_and_exists_of_a_with_ties_query(repo: Repo, two_limas: list[Weather]) -> None:
    q = from_(Weather) | order_by("city") | limit(1, with_ties=True)
    assert await repo.aggregate(q, "count") == 2
    assert await repo.aggregate(q, "sum", "temp_lo") == 6
    assert await repo.exists(q) is True
    assert await repo.exists(q | where(city="Paris")) is False


async def test_with_ties_without_order_by_sends_nothing(repo: Repo, weather: list[Weather]) -> None:
    sent = Sent(repo)
    with pytest.raises(QueryError, match="with_ties needs an order_by"):
        await repo.all(from_(Weather) | limit(1, with_ties=True))
    assert await sent.statements() == []


# --- fragment modifiers -------------------------------------------------------------------------


async def test_identifier_names_a_column(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(lambda w: fragment("? > 4", identifier("temp_lo"))) | select(lambda w: w.id)
    assert sorted(await repo.all(q)) == [2, 4, 5]
    city: Query[Any] = from_(Weather) | where(lambda w: w.id == 3) | select(lambda w: fragment("?", identifier("city")))
    assert await repo.all(city) == ["Oslo"]


async def test_identifier_with_a_double_quote(repo: Repo, weather: list[Weather]) -> None:
    inner = from_(Weather) | select(lambda w: {'we"ird': w.temp_lo, "id": w.id})
    q = from_(subquery(inner)) | order_by("id") | select(lambda s: fragment("? + 1", identifier('we"ird')))
    assert await repo.all(q) == [2, 6, -2, 19, 8]


async def test_constants_of_each_type(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | where(lambda w: w.id == 3)
        | select(
            lambda w: (
                fragment("? + ?", w.temp_lo, constant(10)),
                fragment("? * 2", constant(2.5)),
                fragment("? || ?", w.city, constant("-it's")),
                fragment("NOT ?", constant(False)),
            )
        )
    )
    assert await repo.all(q) == [(7, D("5.0"), "Oslo-it's", True)]


async def test_constant_in_where(repo: Repo, weather: list[Weather]) -> None:
    await repo.insert(Weather(city="it's", temp_lo=0))
    assert await ids(repo, from_(Weather) | where(lambda w: fragment("? = ?", w.city, constant("Oslo")))) == [3]
    assert await ids(repo, from_(Weather) | where(lambda w: fragment("? = ?", w.city, constant("it's")))) == [6]
    assert await ids(repo, from_(Weather) | where(lambda w: fragment("?", constant(False)))) == []
    assert await ids(repo, from_(Weather) | where(lambda w: fragment("? > ?", w.temp_lo, constant(6)))) == [4, 5]


async def test_a_quote_in_a_constant_stays_inside_its_literal(repo: Repo, weather: list[Weather]) -> None:
    nasty = "'); DROP TABLE weather; --"
    q = from_(Weather) | where(lambda w: fragment("? = ?", w.city, constant(nasty)))
    assert await ids(repo, q) == []
    assert await repo.aggregate(Weather, "count") == 5


async def test_constants_of_equal_value_and_other_type_give_other_results(repo: Repo, weather: list[Weather]) -> None:
    base: Query[Any] = from_(Weather) | where(lambda w: w.id == 1)
    assert await repo.all(base | select(lambda w: fragment("? / 2", constant(1)))) == [0]
    assert await repo.all(base | select(lambda w: fragment("? / 2", constant(1.0)))) == [D("0.5")]


async def test_a_negative_constant_after_a_minus(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | where(city="Oslo") | select(lambda w: fragment("?-?", w.temp_hi, constant(-1)))
    assert await repo.all(q) == [3]


async def test_splice(repo: Repo, weather: list[Weather]) -> None:
    q = from_(Weather) | where(lambda w: fragment("? IN (?)", w.city, splice(["Oslo", "Lima", "it's", "$1"])))
    assert await ids(repo, q) == [3, 4]
    q = from_(Weather) | where(lambda w: fragment("? NOT IN (?)", w.temp_lo, splice([1, 5, 7])))
    assert await ids(repo, q) == [3, 4]


async def test_splice_next_to_other_parameters(repo: Repo, weather: list[Weather]) -> None:
    q = (
        from_(Weather)
        | where(lambda w: w.temp_hi > 5)
        | where(lambda w: fragment("? IN (?) OR ? = ?", w.temp_lo, splice([1, 18]), w.city, "Kraków"))
    )
    assert await ids(repo, q) == [1, 2, 4]


async def test_escaped_question_marks_are_jsonb_operators(repo: Repo, typed: list[Typed]) -> None:
    any_of = from_(Typed) | where(lambda t: fragment("? \\?| ?", t.m, ["k", "nope"]))
    all_of = from_(Typed) | where(lambda t: fragment("? \\?& ?", t.m, ["k", "other"]))
    has = from_(Typed) | where(lambda t: fragment("? \\? ?", t.m, constant("other")))
    assert await ids(repo, any_of) == [typed[0].id]
    assert await ids(repo, all_of) == []
    assert await ids(repo, has) == [typed[1].id]


# --- filter_ ------------------------------------------------------------------------------------


async def test_aggregates_with_filter(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | select(
        lambda w: (
            count(),
            filter_(count(), w.temp_lo > 2),
            filter_(count(w.prcp), w.temp_lo > 0),
            filter_(sum_(w.temp_hi), w.city == "Kraków"),
            filter_(avg(w.temp_lo), w.temp_lo > 0),
            filter_(max_(w.temp_hi), is_nil(w.city)),
        )
    )
    assert await repo.all(q) == [(5, 3, 3, 25, D("7.75"), 9)]


async def test_filter_matching_nothing(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | select(
        lambda w: (filter_(count(), w.temp_lo > 100), filter_(sum_(w.temp_lo), w.id < 0))
    )
    assert await repo.all(q) == [(0, None)]


async def test_filter_per_group_and_in_having(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | group_by("city")
        | having(lambda w: filter_(count(), w.temp_hi >= 10) >= "1")
        | select(lambda w: (w.city, count(), filter_(count(), w.temp_lo > 2)))
        | order_by("city")
    )
    assert await repo.all(q) == [("Kraków", 2, 1), ("Lima", 1, 1)]


# --- dynamic ------------------------------------------------------------------------------------

COLD = dynamic(lambda w: w.temp_hi < 5)


async def test_dynamic_in_where(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(COLD)) == [3]


async def test_dynamics_composed(repo: Repo, weather: list[Weather]) -> None:
    either = dynamic(lambda w: COLD | (w.prcp > 1.0))
    both = dynamic(lambda w: either & ~is_nil(w.city))
    assert await ids(repo, from_(Weather) | where(either)) == [3, 5]
    assert await ids(repo, from_(Weather) | where(both)) == [3]


async def test_dynamic_inside_a_lambda(repo: Repo, weather: list[Weather]) -> None:
    assert await ids(repo, from_(Weather) | where(lambda w: COLD | (w.city == "Lima"))) == [3, 4]
    assert await ids(repo, from_(Weather) | where(lambda w: (w.temp_lo < 5) & COLD)) == [3]


async def test_dynamic_in_having(repo: Repo, weather: list[Weather]) -> None:
    many = dynamic(lambda w: count() > 1)
    q: Query[Any] = from_(Weather) | group_by("city") | having(many) | select(lambda w: (w.city, count()))
    assert await repo.all(q) == [("Kraków", 2)]


async def test_dynamic_in_join_on(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    on = dynamic(lambda w, p: (p.visits == w.temp_lo) & (p.title != "zzz"))
    q: Query[Any] = from_(Weather) | join("inner", Post, on=on) | order_by("id") | select(lambda w, p: (w.id, p.title))
    assert await repo.all(q) == [(1, "a"), (2, "b")]


async def test_dynamic_with_a_named_binding_in_two_queries(
    repo: Repo, weather: list[Weather], posts: list[Post]
) -> None:
    by_title = dynamic(lambda *, p: p.title == "b")
    visits: Query[Any] = from_(Post, as_="p") | where(by_title) | select(lambda p: p.visits)
    assert await repo.all(visits) == [5]
    q: Query[Any] = (
        from_(Weather)
        | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo, as_="p")
        | where(by_title)
        | select(lambda w, p: (w.id, p.title))
    )
    assert await repo.all(q) == [(2, "b")]


async def test_dynamic_in_order_by(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | order_by(dynamic(lambda w: w.temp_lo)) | select(lambda w: w.id)
    assert await repo.all(q) == [3, 1, 2, 5, 4]


# --- subqueries ---------------------------------------------------------------------------------


async def test_in_a_subquery(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    visits = from_(Post) | select(lambda p: p.visits)
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_lo.in_(subquery(visits)))) == [1, 2]
    assert await ids(repo, from_(Weather) | where(lambda w: ~w.temp_lo.in_(subquery(visits)))) == [3, 4, 5]
    few = visits | where(lambda p: p.title != "b")
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_lo.in_(subquery(few)))) == [1]


async def test_in_an_empty_subquery(repo: Repo, weather: list[Weather]) -> None:
    none = from_(Post) | select(lambda p: p.visits)
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_lo.in_(subquery(none)))) == []


async def test_uncorrelated_exists(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    busy = from_(Post) | where(lambda p: p.visits > 3)
    assert await ids(repo, from_(Weather) | where(lambda w: exists(subquery(busy)))) == [1, 2, 3, 4, 5]
    assert await ids(repo, from_(Weather) | where(lambda w: exists(subquery(busy | where(title="a"))))) == []
    assert await ids(repo, from_(Weather) | where(lambda w: ~exists(subquery(busy | where(title="a"))))) == [
        1,
        2,
        3,
        4,
        5,
    ]


async def test_correlated_exists(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    matched = from_(Post) | where(lambda p: p.visits == parent_as("w").temp_lo)
    assert await ids(repo, from_(Weather, as_="w") | where(lambda w: exists(subquery(matched)))) == [1, 2]
    assert await ids(repo, from_(Weather, as_="w") | where(lambda w: ~exists(subquery(matched)))) == [3, 4, 5]


async def test_scalar_subquery_in_select(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    top = from_(Post) | select(lambda p: max_(p.visits))
    q: Query[Any] = (
        from_(Weather) | where(lambda w: w.id <= 2) | order_by("id") | select(lambda w: (w.id, subquery(top)))
    )
    assert await repo.all(q) == [(1, 5), (2, 5)]


async def test_correlated_scalar_subquery_in_select(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    below = from_(Weather) | where(lambda w: w.temp_lo <= parent_as("p").visits) | select(lambda w: count())
    q: Query[Any] = from_(Post, as_="p") | order_by("id") | select(lambda p: (p.title, subquery(below)))
    assert await repo.all(q) == [("a", 2), ("b", 3), ("c", 1)]


async def test_scalar_subquery_loads_by_its_type(repo: Repo, posts: list[Post]) -> None:
    newest = from_(Post) | select(lambda p: max_(p.inserted_at))
    q: Query[Any] = from_(Post) | where(title="a") | select(lambda p: (p.title, subquery(newest)))
    [(title, moment)] = await repo.all(q)
    assert title == "a"
    assert moment == max(cast(dt.datetime, p.inserted_at) for p in posts)
    assert isinstance(moment, dt.datetime)


async def test_scalar_subquery_in_where(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    mean = from_(Post) | select(lambda p: avg(p.visits))  # 2
    hottest = from_(Weather) | select(lambda w: max_(w.temp_hi))
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_lo > subquery(mean))) == [2, 4, 5]
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_hi == subquery(hottest))) == [4]
    assert await ids(repo, from_(Weather) | where(lambda w: w.temp_hi + 20 < subquery(hottest))) == [3]


@pytest.fixture
async def users(repo: Repo) -> list[User]:
    return [await repo.insert(User(email="alpha", score=3)), await repo.insert(User(email="beta", score=4))]


def _nested(nasty: str) -> Any:
    innermost = from_(User) | where(
        lambda u: (u.email == parent_as("p").body) & (u.score >= parent_as("w").temp_lo) & (u.email != nasty)
    )
    middle = (
        from_(Post, as_="p")
        | where(lambda p: p.title != nasty)
        | where(lambda p: exists(subquery(innermost)))
        | select(lambda p: p.visits)
    )
    counted = from_(Post) | where(lambda p: p.body != nasty) | select(lambda p: count())
    return (
        from_(Weather, as_="w")
        | where(lambda w: w.temp_lo.in_(subquery(middle)))
        | where(lambda w: fragment("coalesce(?, '')", w.city) != nasty)
        | select(lambda w: (w.id, subquery(counted)))
    )


@pytest.mark.parametrize("nasty", ["it's", "$1 OR TRUE", "a;b", "'; DROP TABLE posts; --", 'say "hi"', "? OR ?"])
async def test_nested_subqueries_with_values_that_look_like_sql(
    repo: Repo, weather: list[Weather], posts: list[Post], users: list[User], nasty: str
) -> None:
    sent = Sent(repo)
    # weather 1 (temp_lo 1) ← post a (body alpha) ← user alpha (score 3 >= 1);
    # weather 2 (temp_lo 5) ← post b (body beta) ← user beta, but score 4 < 5
    assert await repo.all(_nested(nasty)) == [(1, 2)]
    assert await repo.aggregate(Post, "count") == 3
    statements = await sent.statements()
    assert statements
    for statement in statements:
        assert nasty not in statement


async def test_nested_subqueries_see_each_level(
    repo: Repo, weather: list[Weather], posts: list[Post], users: list[User]
) -> None:
    await repo.update_all(from_(User) | where(email="beta"), set={"score": 9})
    assert sorted(await repo.all(_nested("x"))) == [(1, 2), (2, 2)]


async def test_subquery_with_its_own_limit(repo: Repo, weather: list[Weather]) -> None:
    two_coldest = from_(Weather) | order_by("temp_lo") | limit(2) | select(lambda w: w.id)
    assert await ids(repo, from_(Weather) | where(lambda w: w.id.in_(subquery(two_coldest)))) == [1, 3]


async def test_exists_of_a_subquery_with_a_select(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    matched = from_(Weather) | where(lambda w: w.temp_lo == parent_as("p").visits) | select(lambda w: w.temp_lo + 1)
    q: Query[Any] = (
        from_(Post, as_="p") | where(lambda p: exists(subquery(matched))) | order_by("id") | select(lambda p: p.title)
    )
    assert await repo.all(q) == ["a", "b"]


async def test_exists_of_an_ordered_subquery(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    oslo = from_(Weather) | where(city="Oslo") | order_by(lambda w: w.temp_lo * 2)
    q: Query[Any] = from_(Post) | where(lambda p: exists(subquery(oslo))) | select(lambda p: p.id)
    assert await repo.all(q) == [1, 2, 3]


async def test_exists_of_a_with_ties_subquery(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    first_city = from_(Weather) | order_by("city") | limit(1, with_ties=True)
    q: Query[Any] = from_(Post) | where(lambda p: exists(subquery(first_city))) | select(lambda p: p.id)
    assert await repo.all(q) == [
        1,
        2,
        3,
    ]


# --- windows ------------------------------------------------------------------------------------

BY_CITY = {"partition_by": lambda w: w.city, "order_by": lambda w: w.temp_lo}


async def test_named_window(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | windows(w=BY_CITY)
        | order_by("id")
        | select(lambda w: (w.id, over(row_number(), "w"), over(sum_(w.temp_hi), "w"), over(count(), "w")))
    )
    assert await repo.all(q) == [(1, 1, 10, 1), (2, 2, 25, 2), (3, 1, 2, 1), (4, 1, 25, 1), (5, 1, 9, 1)]


async def test_named_window_with_a_value_in_its_partition(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | windows(w={"partition_by": lambda w: w.temp_lo > 4, "order_by": lambda w: desc(w.temp_hi)})
        | where(lambda w: w.id != 99)
        | order_by("id")
        | select(lambda w: (w.id, over(rank(), "w")))
    )
    # temp_lo > 4: ids 2 (15), 4 (25), 5 (9); otherwise: ids 1 (10), 3 (2)
    assert await repo.all(q) == [(1, 1), (2, 2), (3, 2), (4, 1), (5, 3)]


async def test_inline_windows(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | order_by("id")
        | select(
            lambda w: (
                over(rank(), order_by=w.city),
                over(dense_rank(), order_by=w.city),
                over(avg(w.temp_lo), partition_by=w.city),
                over(sum_(w.temp_lo)),
                over(max_(w.temp_hi), partition_by=[w.city], order_by=[desc(w.temp_hi)]),
            )
        )
    )
    assert await repo.all(q) == [
        (1, 1, D(3), 28, 15),
        (1, 1, D(3), 28, 15),
        (4, 3, D(-3), 28, 2),
        (3, 2, D(18), 28, 25),
        (5, 4, D(7), 28, 9),
    ]


async def test_ranking_window_functions(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | order_by("id")
        | select(
            lambda w: (
                over(row_number(), order_by=w.temp_lo),
                over(percent_rank(), order_by=w.temp_lo),
                over(cume_dist(), order_by=w.temp_lo),
                over(ntile(2), order_by=w.id),
            )
        )
    )
    # temp_lo order: id 3 (-3), 1 (1), 2 (5), 5 (7), 4 (18)
    assert await repo.all(q) == [
        (2, 0.25, 0.4, 1),
        (3, 0.5, 0.6, 1),
        (1, 0.0, 0.2, 1),
        (5, 1.0, 1.0, 2),
        (4, 0.75, 0.8, 2),
    ]


async def test_value_window_functions(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = (
        from_(Weather)
        | windows(by_id={"order_by": lambda w: w.id})
        | order_by("id")
        | select(
            lambda w: (
                over(first_value(w.temp_lo), "by_id"),
                over(last_value(w.temp_lo), "by_id"),
                over(nth_value(w.temp_lo, 2), "by_id"),
                over(lag(w.temp_lo), "by_id"),
                over(lead(w.temp_lo), "by_id"),
                over(lag(w.temp_lo, 2, 0), "by_id"),
                over(lead(w.temp_lo, 1, -1), "by_id"),
                over(lag(w.city, 1, "none"), "by_id"),
            )
        )
    )
    # temp_lo by id: 1, 5, -3, 18, 7
    assert await repo.all(q) == [
        (1, 1, None, None, 5, 0, 5, "none"),
        (1, 5, 5, 1, -3, 0, -3, "Kraków"),
        (1, -3, 5, 5, 18, 1, 18, "Kraków"),
        (1, 18, 5, -3, 7, 5, 7, "Oslo"),
        (1, 7, 5, 18, None, -3, -1, "Lima"),
    ]


async def test_window_function_in_order_by(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = from_(Weather) | windows(w=BY_CITY) | order_by(lambda w: [desc(over(row_number(), "w")), w.id])
    assert await repo.all(q | select(lambda w: w.id)) == [2, 1, 3, 4, 5]


async def test_unknown_window_sends_nothing(repo: Repo, weather: list[Weather]) -> None:
    sent = Sent(repo)
    with pytest.raises(QueryError, match="unknown window 'nope'"):
        await repo.all(from_(Weather) | windows(w=BY_CITY) | select(lambda w: over(rank(), "nope")))
    assert await sent.statements() == []


# --- combinations -------------------------------------------------------------------------------

# temp_lo > 0: Kraków, Kraków, Lima, None; temp_hi < 12: Kraków, Oslo, None
LEFT: Query[Any] = from_(Weather) | where(lambda w: w.temp_lo > "0") | select(lambda w: w.city)
RIGHT: Query[Any] = from_(Weather) | where(lambda w: w.temp_hi < 12) | select(lambda w: w.city)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (union, ["Kraków", "Lima", "Oslo", None]),
        (union_all, ["Kraków", "Kraków", "Kraków", "Lima", "Oslo", None, None]),
        (except_, ["Lima"]),
        (except_all, ["Kraków", "Lima"]),
        (intersect, ["Kraków", None]),
        (intersect_all, ["Kraków", None]),
    ],
)
async def test_combinations(repo: Repo, weather: list[Weather], step: Any, expected: list[Any]) -> None:
    assert _nulls_last(await repo.all(LEFT | step(RIGHT))) == expected


async def test_intersect_all_keeps_duplicates(repo: Repo, weather: list[Weather]) -> None:
    kraków: Query[Any] = from_(Weather) | where(city="Kraków") | select(lambda w: w.city)
    assert await repo.all(kraków | intersect_all(kraków)) == ["Kraków", "Kraków"]
    assert await repo.all(kraków | intersect(kraków)) == ["Kraków"]


async def test_combination_of_two_tables(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    titles_: Query[Any] = from_(Post) | where(lambda p: p.visits > 0) | select(lambda p: p.title)
    cities = from_(Weather) | where(lambda w: w.temp_lo < 0) | select(lambda w: w.city)
    assert sorted(await repo.all(titles_ | union_all(cities))) == ["Oslo", "a", "b"]


async def test_combination_with_an_outer_limit(repo: Repo, weather: list[Weather]) -> None:
    q: Query[Any] = LEFT | union(RIGHT) | order_by(lambda w: fragment("1")) | limit(2)
    assert await repo.all(q) == ["Kraków", "Lima"]
    assert await repo.all(q | offset(1)) == ["Lima", "Oslo"]
    assert await repo.all(q | limit(10) | offset(3)) == [None]


async def test_combination_with_values_on_both_sides(repo: Repo, weather: list[Weather]) -> None:
    left = from_(Weather) | where(city="Oslo") | select(lambda w: w.temp_lo + 100)
    right = from_(Weather) | where(city="Lima") | select(lambda w: w.temp_lo + 1000)
    q: Query[Any] = left | union_all(right) | order_by(lambda w: desc(fragment("1"))) | limit(5)
    assert await repo.all(q) == [1018, 97]


async def test_aggregate_of_a_combination(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.aggregate(LEFT | union(RIGHT), "count") == 4
    assert await repo.aggregate(LEFT | union_all(RIGHT), "count") == 7


async def test_combination_ordered_by_a_field(repo: Repo, weather: list[Weather]) -> None:
    assert await repo.all(LEFT | union(RIGHT) | order_by("city") | limit(2)) == ["Kraków", "Lima"]


async def test_exists_of_a_combination(repo: Repo, weather: list[Weather]) -> None:
    none = from_(Weather) | where(city="Nowhere") | select(lambda w: w.id)
    oslo = from_(Weather) | where(city="Oslo") | select(lambda w: w.id)
    assert await repo.exists(none | union(oslo)) is True


# --- CTEs ---------------------------------------------------------------------------------------

WARM = from_(Weather) | where(lambda w: w.temp_lo > 4)  # ids 2, 4, 5


async def test_cte_read_with_from(repo: Repo, weather: list[Weather]) -> None:
    q = from_(("warm", Weather)) | with_cte("warm", as_=WARM)
    assert await repo.all(q | order_by("id")) == [weather[1], weather[3], weather[4]]
    assert await ids(repo, q | where(lambda w: w.temp_hi > 10)) == [2, 4]


async def test_cte_read_through_a_join(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Post)
        | with_cte("warm", as_=WARM)
        | join("inner", ("warm", Weather), on=lambda p, w: w.temp_lo == p.visits)
        | select(lambda p, w: (p.title, w.id, w.city))
    )
    assert await repo.all(q) == [("b", 2, "Kraków")]


async def test_cte_left_joined(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Post)
        | with_cte("warm", as_=WARM)
        | join("left", ("warm", Weather), on=lambda p, w: w.temp_lo == p.visits)
        | order_by("id")
        | select(lambda p, w: (p.title, w))
    )
    assert await repo.all(q) == [("a", None), ("b", weather[1]), ("c", None)]


async def test_two_ctes(repo: Repo, weather: list[Weather]) -> None:
    q = (
        from_(("b", Weather))
        | with_cte("a", as_=from_(Weather) | where(lambda w: w.temp_lo > 1))
        | with_cte("b", as_=from_(("a", Weather)) | where(lambda w: w.temp_hi < 20))
        | where(lambda w: w.id != 99)
    )
    assert await ids(repo, q) == [2, 5]


async def test_recursive_cte_walking_down(repo: Repo, weather: list[Weather]) -> None:
    initial = from_(Weather) | where(lambda w: w.id == 5)
    step = (
        from_(Weather)
        | join("inner", ("chain", Weather), on=lambda w, c: w.id == c.id - 1)
        | where(lambda w: w.id >= 2)
    )
    q: Query[Any] = from_(("chain", Weather)) | with_cte("chain", as_=initial | union_all(step), recursive=True)
    assert await ids(repo, q) == [2, 3, 4, 5]
    assert await repo.all(q | select(lambda c: sum_(c.temp_lo))) == [27]


# --- select_merge -------------------------------------------------------------------------------


async def test_select_merge_sets_a_virtual_field(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | order_by("id") | select_merge(lambda p: {"draft_notes": fragment("upper(?)", p.title)})
    rows = await repo.all(q)
    assert all(isinstance(p, Post) for p in rows)
    assert [(p.id, p.title, p.body, p.visits, p.draft_notes) for p in rows] == [
        (posts[0].id, "a", "alpha", 1, "A"),
        (posts[1].id, "b", "beta", 5, "B"),
        (posts[2].id, "c", None, 0, "C"),
    ]
    assert [p.inserted_at for p in rows] == [p.inserted_at for p in posts]


async def test_select_merge_overrides_a_persisted_field(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | order_by("id") | select_merge(lambda p: {"visits": p.visits + 100})
    assert [(p.title, p.visits) for p in await repo.all(q)] == [("a", 101), ("b", 105), ("c", 100)]


async def test_repeated_select_merge(repo: Repo, posts: list[Post]) -> None:
    q = (
        from_(Post)
        | where(title="b")
        | select_merge(lambda p: {"draft_notes": p.body})
        | select_merge(lambda p: {"visits": p.visits * 2})
    )
    [p] = await repo.all(q)
    assert (p.title, p.draft_notes, p.visits, p.rating) == ("b", "beta", 10, D("4.25"))


async def test_select_merge_into_a_dict(repo: Repo, posts: list[Post]) -> None:
    q: Query[Any] = (
        from_(Post)
        | order_by("id")
        | select(lambda p: {"title": p.title, "n": p.visits})
        | select_merge(lambda p: {"body": p.body})
        | select_merge(lambda p: {"n": p.visits + 1})
    )
    assert await repo.all(q) == [
        {"title": "a", "n": 2, "body": "alpha"},
        {"title": "b", "n": 6, "body": "beta"},
        {"title": "c", "n": 1, "body": None},
    ]


async def test_select_merge_into_a_left_joined_struct(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    def merged(last_id: int) -> Query[Any]:
        return (
            from_(Weather)
            | join("left", Post, on=lambda w, p: p.visits == w.temp_lo)
            | where(lambda w: w.id <= last_id)
            | order_by("id")
            | select(lambda w, p: p)
            | select_merge(lambda w, p: {"draft_notes": w.city})
        )

    rows = await repo.all(merged(2))
    assert [(p.title, p.draft_notes) for p in rows] == [("a", "Kraków"), ("b", "Kraków")]
    # weather 3 matches no post: Ecto raises "cannot merge because the left side is not a map, got: nil"
    with pytest.raises(ArgumentError, match="cannot merge because the left side is not a map, got: None"):
        await repo.all(merged(3))


async def test_select_merge_of_an_unknown_field_sends_nothing(repo: Repo, posts: list[Post]) -> None:
    sent = Sent(repo)
    with pytest.raises(QueryError, match="select_merge cannot set 'draft': Post has no such field"):
        await repo.all(from_(Post) | select_merge(lambda p: {"draft": p.title}))
    assert await sent.statements() == []


# --- explain ------------------------------------------------------------------------------------


async def test_explain_text_names_the_table(repo: Repo, weather: list[Weather]) -> None:
    text = await repo.explain(from_(Weather) | where(city="Oslo"))
    assert isinstance(text, str)
    assert "weather" in text
    assert "actual time" not in text


async def test_explain_json_is_parsed(repo: Repo, weather: list[Weather]) -> None:
    plan_ = await repo.explain(from_(Weather) | where(lambda w: w.temp_lo > 1), format="json")
    assert isinstance(plan_, list)
    node = plan_[0]["Plan"]
    assert node["Node Type"] == "Seq Scan"
    assert node["Relation Name"] == "weather"


async def test_explain_of_a_join_and_window(repo: Repo, weather: list[Weather], posts: list[Post]) -> None:
    q = (
        from_(Weather)
        | join("inner", Post, on=lambda w, p: p.visits == w.temp_lo)
        | windows(w=BY_CITY)
        | select(lambda w, p: over(row_number(), "w"))
    )
    text = await repo.explain(q)
    assert "WindowAgg" in text
    assert "weather" in text and "posts" in text


async def test_explain_analyze_runs_a_select(repo: Repo, weather: list[Weather]) -> None:
    text = await repo.explain(from_(Weather) | where(city="Oslo"), analyze=True)
    assert "actual time" in text
    assert "Execution Time" in text


async def test_explain_analyze_json_reports_actual_rows(repo: Repo, weather: list[Weather]) -> None:
    plan_ = await repo.explain(from_(Weather) | where(city="Kraków"), analyze=True, format="json")
    assert plan_[0]["Plan"]["Actual Rows"] == 2


async def test_explain_of_delete_all_does_not_delete(repo: Repo, weather: list[Weather]) -> None:
    text = await repo.explain(from_(Weather) | where(city="Oslo"), "delete_all")
    assert text.startswith("Delete on weather")
    assert await repo.aggregate(Weather, "count") == 5


@pytest.mark.parametrize("op", ["delete_all", "update_all"])
async def test_explain_analyze_refuses_writes(repo: Repo, weather: list[Weather], op: str) -> None:
    sent = Sent(repo)
    q = from_(Weather) | where(city="Oslo")
    if op == "update_all":
        q = q | update(set={"city": "gone"})
    with pytest.raises(ArgumentError, match=f"explain\\(analyze=True\\) would run {op} and change rows"):
        await repo.explain(q, op, analyze=True)
    assert await sent.statements() == []
    assert await ids(repo, from_(Weather) | where(city="Oslo")) == [3]


async def test_explain_refuses_an_unknown_format(repo: Repo, weather: list[Weather]) -> None:
    with pytest.raises(ArgumentError, match="explain format must be text, json, yaml or xml, got 'html'"):
        await repo.explain(Weather, format="html")
