"""Issue 16, defects 4 and 5 against PostgreSQL: literals in every query position, preload with select_merge."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    Query,
    coalesce,
    count,
    fragment,
    from_,
    group_by,
    having,
    is_nil,
    join,
    lag,
    limit,
    ntile,
    order_by,
    over,
    preload,
    select,
    select_merge,
    subquery,
    union_all,
    where,
    with_cte,
)

from ..assoc_schemas import Comment as BlogComment
from ..assoc_schemas import Post as BlogPost
from ..assoc_schemas import Tag as BlogTag
from ..schemas import Post
from .blog_data import names, seed_blog, texts

pytestmark = pytest.mark.usefixtures("repo")

D = decimal.Decimal
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
OFFSETS = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(-dt.timedelta(hours=5, minutes=30))])
INT_EDGES = [0, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**70, -(2**70)]
NUMBERS = (
    st.integers(-(2**80), 2**80)
    | st.sampled_from(INT_EDGES)
    | st.floats()
    | st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30)
)
LITERALS = (
    st.none()
    | st.booleans()
    | NUMBERS
    | TEXT
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=OFFSETS)
    | st.times()
    | st.times(timezones=OFFSETS)
    | st.timedeltas(min_value=dt.timedelta(days=-(10**6)), max_value=dt.timedelta(days=10**6))
    | st.uuids()
    | st.binary(max_size=32)
)


def table(name: str) -> Query[Any]:
    """A schemaless query on ``name`` (``from_`` takes a table name; its annotation names schemas only)."""
    return from_(cast(Any, name))


def new_post(**fields: Any) -> Post:
    return Post(**fields)


async def fetch(repo: Repo, q: Any) -> list[Any]:
    return list(await repo.all(q))


def same(got: Any, want: Any) -> bool:
    """Equal as the value sent (NaN equals NaN; an int beyond bigint may come back as an equal Decimal)."""
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if type(want) is bool or want is None:
        return got is want
    return bool(got == want) and not (isinstance(want, str | bytes) and type(got) is not type(want))


# Each position: a query reading the literal back from one post, and how to take it out of the result.
Position = Callable[[Any], tuple[Any, Callable[[list[Any]], list[Any]]]]


def _values(rows: list[Any]) -> list[Any]:
    return rows


def _filter(v: Any) -> Callable[..., Any]:
    # true exactly when the database sees the literal as the value sent
    return (lambda p: is_nil(coalesce(None, v))) if v is None else (lambda p: coalesce(None, v) == v)


def _in_filter(v: Any) -> Callable[..., Any]:
    return (lambda p: coalesce(None, v).in_([v])) if v is not None else _filter(v)


POSITIONS: dict[str, Position] = {
    "select": lambda v: (from_(Post) | select(lambda p: v), _values),
    "select tuple": lambda v: (from_(Post) | select(lambda p: (p.id, v)), lambda rows: [r[1] for r in rows]),
    "select dict": lambda v: (from_(Post) | select(lambda p: {"v": v}), lambda rows: [r["v"] for r in rows]),
    "select_merge": lambda v: (
        from_(Post) | select(lambda p: {"id": p.id}) | select_merge(lambda p: {"v": v}),
        lambda rows: [r["v"] for r in rows],
    ),
    "fragment": lambda v: (from_(Post) | select(lambda p: fragment("?", v)), _values),
    "case fragment": lambda v: (
        from_(Post) | select(lambda p: fragment("CASE WHEN ? THEN ? END", p.id > 0, v)),
        _values,
    ),
    "coalesce": lambda v: (from_(Post) | select(lambda p: coalesce(None, v)), _values),
    "scalar subquery": lambda v: (
        from_(Post) | select(lambda p: subquery(from_(Post) | select(lambda q: v))),
        _values,
    ),
    "subquery source": lambda v: (
        from_(cast(Any, subquery(from_(Post) | select(lambda p: {"v": v})))) | select(lambda s: s.v),
        _values,
    ),
    "cte": lambda v: (
        table("lit") | with_cte("lit", as_=from_(Post) | select(lambda p: {"v": v})) | select(lambda c: c.v),
        _values,
    ),
    "union_all": lambda v: (
        from_(Post) | select(lambda p: v) | union_all(from_(Post) | select(lambda p: v)),
        _values,
    ),
    "where": lambda v: (from_(Post) | where(_filter(v)) | select(lambda p: v), _values),
    "having": lambda v: (from_(Post) | group_by(lambda p: p.id) | having(_filter(v)) | select(lambda p: v), _values),
    # a bare value is no order or group term (a string names a field): a literal inside an expression is
    "order_by": lambda v: (from_(Post) | order_by(lambda p: coalesce(None, v)) | select(lambda p: v), _values),
    "group_by": lambda v: (
        from_(Post) | group_by(lambda p: coalesce(None, v)) | select(lambda p: coalesce(None, v)),
        _values,
    ),
    "in_": lambda v: (
        from_(Post) | where(_in_filter(v)) | select(lambda p: v),
        _values,
    ),
}


def _expected(position: str, v: Any) -> list[Any]:
    return [v, v] if position == "union_all" else [v]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(LITERALS, min_size=1, max_size=4))
async def test_defect_4_literals_in_every_query_position_come_back_equal(repo: Repo, values: list[Any]) -> None:
    if await repo.aggregate(Post, "count") == 0:
        await repo.insert(new_post(title="one"))
    # one repo for every example: the statement cache sees the same shapes with values of other types
    for v in values:
        for position, make in POSITIONS.items():
            q, take = make(v)
            got = take(await fetch(repo, q))
            want = _expected(position, v)
            assert len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True)), (
                position,
                v,
                got,
            )


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v=NUMBERS)
async def test_literals_in_arithmetic_come_back_equal(repo: Repo, v: Any) -> None:
    await repo.query("INSERT INTO posts (title, visits, inserted_at, updated_at) VALUES ('a', 0, now(), now())")
    # schemaless: PostgreSQL types the literal from the integer column beside it, or it is cast to its own type
    rows = await fetch(repo, table("posts") | select(lambda p: (p.visits + v, v - p.visits, p.visits * 2 + v)))
    for row in rows:
        assert all(same(x, v) for x in row), (v, row)
    await repo.query("DELETE FROM posts")


async def test_defect_4_select_literals_come_back_with_their_own_type(repo: Repo) -> None:
    """The issue's report: ``select(lambda p: (p.id, 1))`` failed with "expected str, got int"."""
    post = await repo.insert(new_post(title="t"))
    u = uuid.uuid4()
    day = dt.date(2024, 2, 29)
    got = await fetch(repo, from_(Post) | select(lambda p: (p.id, 1, 1.5, True, None, "s", D("1.25"), day, u)))
    assert got == [(post.id, 1, 1.5, True, None, "s", D("1.25"), day, u)]
    assert [type(x) for x in got[0][1:4]] == [int, float, bool]


async def test_select_literal_where_having_comparisons_in_either_order(repo: Repo) -> None:
    await repo.insert(new_post(title="t", visits=3, rating=D("2.5")))
    base = from_(Post) | select(lambda p: (p.title, 7))
    assert await fetch(repo, base | where(lambda p: p.visits == 3)) == [("t", 7)]
    assert await fetch(repo, base | where(lambda p: 3 == p.visits)) == [("t", 7)]  # noqa: SIM300
    assert await fetch(repo, base | where(lambda p: 2 < p.rating)) == [("t", 7)]  # noqa: SIM300
    assert await fetch(repo, base | where(lambda p: p.title == "t") | where(lambda p: p.visits + 1 == 4)) == [("t", 7)]
    grouped = from_(Post) | group_by(lambda p: p.title) | having(lambda p: count() == 1)
    assert await fetch(repo, grouped | select(lambda p: (p.title, True, count()))) == [("t", True, 1)]


async def test_big_int_literal_is_numeric_never_wrapped(repo: Repo) -> None:
    await repo.insert(new_post(title="t", visits=3))
    big = 2**70
    assert await fetch(repo, from_(Post) | select(lambda p: big)) == [big]
    assert type((await fetch(repo, from_(Post) | select(lambda p: big)))[0]) is int
    assert await fetch(repo, from_(Post) | select(lambda p: -big)) == [-big]
    # beside schemaless integer columns the literal keeps its own type: no match, no overflow, no wrap
    assert await fetch(repo, table("posts") | where(lambda p: p.visits == 2**64 + 3) | select(lambda p: p.id)) == []
    assert await fetch(repo, table("posts") | where(lambda p: p.id != 2**63) | select(lambda p: p.visits)) == [3]
    assert await fetch(repo, table("posts") | select(lambda p: p.visits + 3_000_000_000)) == [3_000_000_003]
    assert await fetch(repo, table("posts") | select(lambda p: p.visits + big)) == [big + 3]


async def test_literal_update_all_set_into_schemaless_columns(repo: Repo) -> None:
    await repo.insert(new_post(title="t", visits=3))
    n, _ = await repo.update_all(table("posts"), set={"visits": 5, "title": "x", "rating": 1.5})
    assert n == 1
    assert await fetch(repo, from_(Post) | select(lambda p: (p.visits, p.title, p.rating))) == [(5, "x", D("1.5"))]
    await repo.update_all(table("posts"), inc={"visits": 2})
    assert await fetch(repo, from_(Post) | select(lambda p: p.visits)) == [7]


async def test_literal_inserted_by_insert_all_from_a_query_takes_the_column_type(repo: Repo) -> None:
    await repo.insert(new_post(title="t", visits=3))
    u = "6d4b2f4e-6b5b-4b53-9c6b-0d7d9f0e8e01"
    # schemaless target: each literal typed by its column (a str into a uuid column)
    n, _ = await repo.insert_all("items", from_(Post) | select(lambda p: {"uuid": u, "name": "n"}))
    assert n == 1
    assert await fetch(repo, table("items") | select(lambda i: (i.uuid, i.name))) == [(uuid.UUID(u), "n")]
    # schema target: the field's type casts and dumps it
    at = dt.datetime(2024, 1, 2, 3, 4, 5)
    copy = from_(Post) | select(lambda p: {"title": "copy", "visits": "9", "inserted_at": at, "updated_at": at})
    n, _ = await repo.insert_all(Post, copy)
    assert n == 1
    copied = from_(Post) | where(title="copy") | select(lambda p: (p.visits, p.inserted_at))
    assert await fetch(repo, copied) == [(9, at)]


async def test_literal_starts_a_recursive_cte(repo: Repo) -> None:
    await repo.insert(new_post(title="t"))
    seed = from_(Post) | select(lambda p: {"n": 1})
    step = table("nums") | where(lambda n: n.n < 4) | select(lambda n: {"n": n.n + 1})
    q = table("nums") | with_cte("nums", as_=seed | union_all(step), recursive=True) | select(lambda n: n.n)
    assert sorted(await fetch(repo, q)) == [1, 2, 3, 4]


async def test_literals_typed_by_their_context_still_work(repo: Repo) -> None:
    """No regression where PostgreSQL types a parameter from the SQL around it."""
    post = await repo.insert(new_post(title="hello", visits=3))
    u = uuid.uuid4()
    await repo.query("INSERT INTO items (uuid, name) VALUES ($1, 'n')", [u])
    # integer arguments of integer-only functions and operators
    assert await fetch(repo, from_(Post) | select(lambda p: fragment("substr(?, ?, ?)", p.title, 2, 3))) == ["ell"]
    assert await fetch(repo, from_(Post) | select(lambda p: fragment("(?::date + ?)", dt.date(2024, 1, 1), 2))) == [
        dt.date(2024, 1, 3)
    ]
    assert await fetch(repo, from_(Post) | select(lambda p: over(ntile(2), order_by=p.id))) == [1]
    assert await fetch(repo, from_(Post) | select(lambda p: over(lag(p.visits, 1, 0), order_by=p.id))) == [0]
    # a string where the SQL around it wants a uuid or a regconfig
    assert await fetch(repo, table("items") | where(lambda i: i.uuid == str(u)) | select(lambda i: i.name)) == ["n"]
    by_fragment = table("items") | where(lambda i: fragment("? = ?", i.uuid, str(u))) | select(lambda i: 1)
    assert await fetch(repo, by_fragment) == [1]
    assert await fetch(repo, table("items") | select(lambda i: coalesce(i.uuid, str(u)))) == [u]
    tsv = await fetch(repo, from_(Post) | select(lambda p: fragment("to_tsvector(?, ?)::text", "simple", p.title)))
    assert tsv == ["'hello':1"]
    assert await fetch(repo, from_(Post) | where(lambda p: p.id == post.id) | select(lambda p: p.visits * 1.5)) == [4.5]


# -- defect 5: preload with select_merge --------------------------------------------------------


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


def upper_title(p: Any) -> dict[str, Any]:
    return {"title": fragment("upper(?)", p.title)}


async def test_defect_5_preload_with_select_merge_into_the_source_struct(blog: Repo) -> None:
    q = from_(BlogPost) | where(lambda p: p.id <= 2) | order_by("id") | select_merge(upper_title) | preload("comments")
    p1, p2 = await fetch(blog, q)
    assert (p1.title, p2.title) == ("P1", "P2")  # the merged values stay
    assert (texts(p1.comments), texts(p2.comments)) == (["c1", "c2", "c3"], ["c4", "c5"])
    # nested, many_to_many and belongs_to preloads from the same merged query
    q2 = from_(BlogPost) | where(id=1) | select_merge(upper_title) | preload("tags", "author", {"comments": "author"})
    (p,) = await fetch(blog, q2)
    assert p.title == "P1" and names(p.tags) == ["elixir", "python"] and p.author.name == "ann"
    assert sorted(c.author.name for c in p.comments if c.author is not None) == ["bob", "bob", "cid"]


async def test_preload_with_select_merge_and_a_join_preload(blog: Repo) -> None:
    q = (
        from_(BlogPost)
        | join("left", lambda p: p.comments, as_="c")
        | where(lambda p: p.id <= 2)
        | order_by("id")
        | select_merge(lambda p, c: {"title": fragment("upper(?)", p.title), "visits": p.visits + 1})
        | preload(lambda p, *, c: {"comments": c})
        | preload("tags")
    )
    p1, p2 = await fetch(blog, q)
    assert (p1.title, p1.visits, p2.title, p2.visits) == ("P1", 11, "P2", 21)
    assert (texts(p1.comments), texts(p2.comments)) == (["c1", "c2", "c3"], ["c4", "c5"])
    assert (names(p1.tags), names(p2.tags)) == (["elixir", "python"], ["python"])


async def test_defect_5_custom_preload_query_with_select_merge(blog: Repo) -> None:
    shout = from_(BlogComment) | select_merge(lambda c: {"text": fragment("upper(?)", c.text)})
    (p1,) = await fetch(blog, from_(BlogPost) | where(id=1) | preload({"comments": shout}))
    assert texts(p1.comments) == ["C1", "C2", "C3"]
    p2: Any = await blog.preload(await blog.get(BlogPost, 2), {"comments": shout})
    assert texts(p2.comments) == ["C4", "C5"]
    # per parent (limit) and many_to_many (the join table's key selected beside the merged struct)
    top = shout | order_by("id") | limit(1)
    p1, p2 = await fetch(
        blog, from_(BlogPost) | where(lambda p: p.id <= 2) | order_by("id") | preload({"comments": top})
    )
    assert (texts(p1.comments), texts(p2.comments)) == (["C1"], ["C4"])
    loud = from_(BlogTag) | select_merge(lambda t: {"name": fragment("upper(?)", t.name)})
    (p1,) = await fetch(blog, from_(BlogPost) | where(id=1) | preload({"tags": loud}))
    assert names(p1.tags) == ["ELIXIR", "PYTHON"]


async def test_preload_into_something_else_than_the_source_struct_is_refused(blog: Repo) -> None:
    ecto = "the binding used in `from` must be selected in `select` when using `preload`"
    for q in (
        from_(BlogPost) | select(lambda p: (p.id, p.title)) | preload("comments"),
        from_(BlogPost) | select(lambda p: {"id": p.id}) | select_merge(lambda p: {"n": 1}) | preload("comments"),
        from_(BlogPost) | select(lambda p: (p, 1)) | preload("comments"),
        from_(BlogPost) | join("inner", lambda p: p.comments) | select(lambda p, c: c) | preload("comments"),
    ):
        with pytest.raises(QueryError, match=re.escape(ecto)):
            await fetch(blog, q)
    p1 = await blog.get(BlogPost, 1)
    with pytest.raises(QueryError, match=re.escape(ecto) + r" \(the preload query for 'comments' must give Comment"):
        await blog.preload(p1, {"comments": from_(BlogComment) | select(lambda c: {"t": c.text})})
