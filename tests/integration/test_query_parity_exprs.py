"""Ecto parity of query expressions and sources against PostgreSQL (issue 19): window frames,
subqueries in order_by/group_by/distinct, fragment and query join targets, hints, lock
fragments, keyword ``on=``, JSON containment and key existence, field references in JSON paths
and array containment."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    count,
    desc,
    distinct,
    fragment,
    from_,
    group_by,
    join,
    json_extract_path,
    lock,
    order_by,
    over,
    parent_as,
    range_between,
    rows_between,
    select,
    subquery,
    sum_,
    where,
    windows,
)

from ..schemas import Post, Typed, Weather

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture
async def weather(repo: Repo) -> list[Weather]:
    rows = [("Kraków", 1, 10, 0.5), ("Kraków", 5, 15, None), ("Oslo", -3, 2, 1.5), ("Lima", 18, 25, 0.0)]
    return [await repo.insert(Weather(city=c, temp_lo=lo, temp_hi=hi, prcp=prcp)) for c, lo, hi, prcp in rows]


@pytest.fixture
async def posts(repo: Repo) -> list[Post]:
    return [await repo.insert(Post(title=t, visits=v)) for t, v in (("a", 1), ("b", 5), ("c", 0), ("d", 3))]


@pytest.fixture
async def docs(repo: Repo) -> list[Typed]:
    return [
        await repo.insert(Typed(i=1, s="k", m={"k": 1, "a": {"b": [10, 20]}, "tags": ["x", "y"]}, texts=["x", "y"])),
        await repo.insert(Typed(i=2, s="a", m={"k": "1", "a": {"b": []}}, texts=[], ints=[1, 2, 3])),
        await repo.insert(Typed(i=3, s="z", m={"a": {"b": [30]}, "z": None}, texts=["z"], ints=[2])),
        await repo.insert(Typed(i=4, s="k", m={}, texts=None, ints=None)),
    ]


async def rows(repo: Repo, q: Any) -> list[Any]:
    return list(await repo.all(q))


async def one(repo: Repo, q: Any) -> Any:
    return await repo.one(q)


async def ids(repo: Repo, q: Any) -> list[int]:
    return await repo.all(q | select(lambda t: t.id) | order_by("id"))


# --- window frames ------------------------------------------------------------------------------


async def test_running_sum_over_rows_frame(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | order_by("id") | select(lambda p: over(sum_(p.visits), order_by=p.id, frame=rows_between(-1, 0)))
    assert await rows(repo, q) == [1, 6, 5, 3]


async def test_frame_fragment_as_ecto(repo: Repo, posts: list[Post]) -> None:
    frame = fragment("ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING")
    q = from_(Post) | order_by("id") | select(lambda p: over(sum_(p.visits), order_by=p.id, frame=frame))
    assert await rows(repo, q) == [6, 5, 3, 3]


async def test_named_window_with_frame(repo: Repo, posts: list[Post]) -> None:
    q = (
        from_(Post)
        | windows(w={"order_by": lambda p: p.visits, "frame": range_between(None, 0)})
        | order_by("visits")
        | select(lambda p: over(count(), "w"))
    )
    assert await rows(repo, q) == [1, 2, 3, 4]


# --- subqueries in order_by / group_by / distinct --------------------------------------------------


async def test_subquery_orders_rows(repo: Repo, posts: list[Post], weather: list[Weather]) -> None:
    # per post: how many weather rows have temp_lo below its visits (a correlated scalar subquery)
    colder = from_(Weather) | select(lambda w: count())
    below = subquery(colder | where(lambda w: w.temp_lo < parent_as("p").visits))
    q = from_(Post, as_="p") | order_by(lambda p: [desc(below), p.id]) | select(lambda p: p.title)
    # visits a=1 (1 colder: -3), b=5 (2: -3, 1), c=0 (1: -3), d=3 (2)
    assert await rows(repo, q) == ["b", "d", "a", "c"]


async def test_subquery_in_group_by_and_distinct(repo: Repo, posts: list[Post], weather: list[Weather]) -> None:
    n = subquery(from_(Weather) | where(lambda w: w.city == "Kraków") | select(lambda w: count()))
    grouped = from_(Post) | group_by(lambda p: n) | select(lambda p: count())
    assert await rows(repo, grouped) == [4]
    first = from_(Post) | distinct(lambda p: n) | order_by("id") | select(lambda p: p.title)
    assert await rows(repo, first) == ["a"]


# --- fragment and query sources, hints ------------------------------------------------------------


async def test_fragment_from_source(repo: Repo) -> None:
    q = from_(fragment("SELECT generate_series(1, ?) AS n", 3)) | select(lambda f: f.n)
    assert await rows(repo, q) == [1, 2, 3]


async def test_fragment_join_source(repo: Repo, posts: list[Post]) -> None:
    q = (
        from_(Post)
        | join("inner", fragment("SELECT generate_series(0, ?) AS n", 3), on=lambda p, f: p.visits == f.n)
        | order_by("id")
        | select(lambda p, f: (p.title, f.n))
    )
    assert await rows(repo, q) == [("a", 1), ("c", 0), ("d", 3)]


async def test_query_join_target_keeps_its_conditions(repo: Repo, posts: list[Post], weather: list[Weather]) -> None:
    krakow = from_(Weather) | where(city="Kraków")
    q = (
        from_(Post)
        | join("left", krakow, on=lambda p, w: p.visits == w.temp_lo)
        | order_by("id")
        | select(lambda p, w: (p.title, w.id))
    )
    # visits 1 and 5 match Kraków's temp_lo; Oslo's -3 and Lima's 18 are filtered by the join query
    assert await rows(repo, q) == [("a", weather[0].id), ("b", weather[1].id), ("c", None), ("d", None)]


async def test_tablesample_hint(repo: Repo, posts: list[Post]) -> None:
    every = from_(Post, hints=["TABLESAMPLE SYSTEM(100)"]) | select(lambda p: count())
    none = from_(Post, hints=["TABLESAMPLE BERNOULLI(0)"]) | select(lambda p: count())
    assert await one(repo, every) == 4
    assert await one(repo, none) == 0
    joined = (
        from_(Post)
        | join("inner", Post, on=lambda a, b: a.id == b.id, hints=["TABLESAMPLE BERNOULLI(100) REPEATABLE (1)"])
        | select(lambda a: count())
    )
    assert await one(repo, joined) == 4


async def test_lock_fragment_runs(repo: Repo, posts: list[Post]) -> None:
    q = from_(Post) | where(title="a") | lock(fragment("FOR SHARE NOWAIT")) | select(lambda p: p.visits)
    async with repo.transaction():
        assert await rows(repo, q) == [1]


async def test_keyword_on(repo: Repo, posts: list[Post], weather: list[Weather]) -> None:
    q = (
        from_(Post)
        | join("inner", Weather, on={"temp_lo": lambda p: p.visits, "city": "Kraków"})
        | order_by("id")
        | select(lambda p, w: (p.title, w.temp_hi))
    )
    assert await rows(repo, q) == [("a", 10), ("b", 15)]


# --- JSON ---------------------------------------------------------------------------------------


async def test_json_containment_matches_documents(repo: Repo, docs: list[Typed]) -> None:
    a, b, c, _d = (d.id for d in docs)
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.contains({"k": 1}))) == [a]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.contains({"k": "1"}))) == [b]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.contains({"a": {"b": [20]}}))) == [a]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.contains({}))) == [a, b, c, _d]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.contains({"z": None}))) == [c]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m["tags"].contains(["y"]))) == [a]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m["a"]["b"].contains([30]))) == [c]


async def test_json_containment_refuses_json_text(repo: Repo, docs: list[Typed]) -> None:
    with pytest.raises(QueryError, match="expects a dict or a list"):
        await rows(repo, from_(Typed) | where(lambda t: t.m.contains('{"k": 1}')))


async def test_json_key_existence(repo: Repo, docs: list[Typed]) -> None:
    a, b, c, _d = (d.id for d in docs)
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.has_key("k"))) == [a, b]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.has_key("z"))) == [c]  # a JSON null value
    assert await ids(repo, from_(Typed) | where(lambda t: t.m["tags"].has_key("x"))) == [a]  # string element
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.has_any_keys(["z", "tags"]))) == [a, c]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.has_all_keys(["k", "tags"]))) == [a]
    assert await ids(repo, from_(Typed) | where(lambda t: t.m.has_key(t.s))) == [a, b, c]


async def test_field_in_a_json_path(repo: Repo, docs: list[Typed]) -> None:
    q = from_(Typed) | order_by("id") | select(lambda t: t.m[t.s])
    assert await rows(repo, q) == [1, {"b": []}, None, None]
    q2 = from_(Typed) | where(lambda t: t.i == 1) | select(lambda t: json_extract_path(t.m, ["tags", t.i]))
    assert await one(repo, q2) == "y"


# --- arrays ---------------------------------------------------------------------------------------


async def test_value_in_an_array_field(repo: Repo, docs: list[Typed]) -> None:
    a, b, c, _d = (d.id for d in docs)
    assert await ids(repo, from_(Typed) | where(lambda t: t.texts.contains("x"))) == [a]
    assert await ids(repo, from_(Typed) | where(lambda t: t.ints.contains(2))) == [b, c]
    assert await ids(repo, from_(Typed) | where(lambda t: t.ints.contains([1, 3]))) == [b]
    assert await ids(repo, from_(Typed) | where(lambda t: ~t.ints.contains(1))) == [c]  # NULL arrays: unknown
    assert await ids(repo, from_(Typed) | where(lambda t: t.texts.contains(t.s))) == [c]
