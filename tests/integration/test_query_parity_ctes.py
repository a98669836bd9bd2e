"""Ecto parity against PostgreSQL for the keyword form of ``from_``, ``recursive_ctes``, ``with_cte``'s
``materialized`` and data-modifying ``operation``, ``prepend_order_by``, ``reverse_order``, named-binding
helpers, ``distinct`` with directions and ``exclude`` of one join kind."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    Query,
    count,
    desc,
    distinct,
    exclude,
    from_,
    has_named_binding,
    join,
    limit,
    order_by,
    preload,
    prepend_order_by,
    recursive_ctes,
    reverse_order,
    select,
    union_all,
    update,
    where,
    with_cte,
    with_named_binding,
)
from asyncecto.schema._associations import NotLoaded

from ..assoc_schemas import Comment, Post
from .blog_data import seed_blog, texts

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


async def rows(repo: Repo, q: Any) -> list[Any]:
    """The rows of ``q`` (selects of any shape, so typed ``Any``)."""
    return await repo.all(q)


# --- from_ keywords (Ecto's keyword query syntax) -------------------------------------------------


async def test_keyword_query_reads_what_the_pipe_query_reads(blog: Repo) -> None:
    keyword = from_(Post, where=lambda p: p.visits > 10, order_by={"desc": "visits"}, limit=2, select=lambda p: p.title)
    piped = (
        from_(Post) | where(lambda p: p.visits > 10) | order_by(desc="visits") | limit(2) | select(lambda p: p.title)
    )
    assert await rows(blog, keyword) == await rows(blog, piped) == ["p4", "p3"]


async def test_keyword_preload(blog: Repo) -> None:
    """The issue's example: ``from_(Post, where=..., preload=["comments"])``."""
    posts = await rows(blog, from_(Post, where=lambda p: p.id < 3, order_by="id", preload=["comments"]))
    assert [p.title for p in posts] == ["p1", "p2"]
    assert [texts(p.comments) for p in posts] == [["c1", "c2", "c3"], ["c4", "c5"]]
    assert isinstance(posts[0].tags, NotLoaded)


async def test_keyword_join_with_names_and_a_join_preload(blog: Repo) -> None:
    q = from_(
        Post,
        as_="p",
        left_join=(Comment, {"on": lambda p, c: c.post_id == p.id, "as_": "c"}),
        where=lambda p, c: c.approved == True,  # noqa: E712
        order_by="id",
        preload=lambda p, c: {"comments": c},
    )
    posts = await rows(blog, q)
    assert [(p.title, texts(p.comments)) for p in posts] == [("p1", ["c1", "c3"]), ("p2", ["c5"])]


async def test_keyword_grouping_and_having(blog: Repo) -> None:
    q = from_(
        Comment,
        where=lambda c: c.post_id > 0,
        group_by="post_id",
        having=lambda c: count() > 1,
        order_by="post_id",
        select=lambda c: (c.post_id, count()),
    )
    assert await rows(blog, q) == [(1, 3), (2, 2)]


async def test_keyword_update_for_update_all(blog: Repo) -> None:
    q = from_(Post, where=lambda p: p.visits >= 30, update={"inc": {"visits": 1}})
    assert await blog.update_all(q) == (2, None)
    assert await rows(blog, from_(Post, order_by="id", select=lambda p: p.visits)) == [10, 20, 31, 41]


async def test_keyword_union_all_and_exclude(blog: Repo) -> None:
    low = from_(Post, where=lambda p: p.visits < 20, select=lambda p: p.title)
    q = from_(Post, where=lambda p: p.visits > 30, select=lambda p: p.title, union_all=[low, low])
    assert sorted(await rows(blog, q)) == ["p1", "p1", "p4"]
    ordered = from_(Post) | order_by("id") | limit(1)
    assert len(await rows(blog, from_(ordered, exclude=["limit"]))) == 4


async def test_unknown_keyword(blog: Repo) -> None:
    with pytest.raises(QueryError, match=r"unsupported 'preloads' in keyword query expression; known keywords: "):
        from_(Post, preloads=["comments"])


# --- CTEs -----------------------------------------------------------------------------------------


def _chain(start: int) -> Query[Any]:
    """Posts 4, 3, 2 … walking down by id from ``start`` (a recursive CTE ``chain``)."""
    initial = from_(Post) | where(lambda p: p.id == start)
    step = from_(Post) | join("inner", ("chain", Post), on=lambda p, c: p.id == c.id - 1)
    return initial | union_all(step)


async def test_recursive_ctes_step(blog: Repo) -> None:
    q = from_(("chain", Post)) | recursive_ctes(True) | with_cte("chain", as_=_chain(3)) | order_by("id")
    assert [p.id for p in await rows(blog, q)] == [1, 2, 3]
    keyword = from_(("chain", Post), recursive_ctes=True, with_cte={"chain": _chain(2)}, select=lambda c: c.id)
    assert sorted(await rows(blog, keyword)) == [1, 2]


async def test_a_self_referencing_cte_without_recursive_is_refused_by_postgres(blog: Repo) -> None:
    q = from_(("chain", Post)) | with_cte("chain", as_=_chain(3))
    with pytest.raises(Exception, match='relation "chain" does not exist'):
        await rows(blog, q)


@pytest.mark.parametrize("materialized", [True, False])
async def test_materialized_ctes_read_the_same_rows(blog: Repo, materialized: bool) -> None:
    busy = from_(Post) | where(lambda p: p.visits >= 20)
    q = (
        from_(("busy", Post))
        | with_cte("busy", as_=busy, materialized=materialized)
        | order_by("id")
        | select(lambda b: b.title)
    )
    assert await rows(blog, q) == ["p2", "p3", "p4"]
    plan = await blog.explain(q)
    assert ("CTE Scan" in plan) is materialized


async def test_update_all_cte_returns_the_changed_rows(blog: Repo) -> None:
    """Ecto: the outer query selects from a data-modifying CTE to see the rows it changed."""
    changed = from_(Post) | where(lambda p: p.visits <= 20) | update(set={"title": "quiet"}) | select(lambda p: p)
    q = from_(("changed", Post)) | with_cte("changed", as_=changed, operation="update_all") | order_by("id")
    changed_rows = await rows(blog, q)
    assert [(p.id, p.title, p.visits) for p in changed_rows] == [(1, "quiet", 10), (2, "quiet", 20)]
    titles = await rows(blog, from_(Post) | order_by("id") | select(lambda p: p.title))
    assert titles == ["quiet", "quiet", "p3", "p4"]


async def test_delete_all_cte_with_a_dict_select_and_an_outer_aggregate(blog: Repo) -> None:
    gone = from_(Comment) | where(lambda c: c.approved == False) | select(lambda c: {"id": c.id})  # noqa: E712
    q = from_(("gone", Comment)) | with_cte("gone", as_=gone, operation="delete_all") | select(lambda g: count())
    assert await rows(blog, q) == [4]
    assert texts(await rows(blog, from_(Comment))) == ["c1", "c3", "c5"]


async def test_a_data_modifying_cte_runs_even_when_the_outer_query_ignores_it(blog: Repo) -> None:
    """PostgreSQL runs every data-modifying CTE to completion, read or not."""
    gone = from_(Comment) | where(lambda c: c.id == 6)
    q = from_(Post) | with_cte("gone", as_=gone, operation="delete_all") | select(lambda p: count())
    assert await rows(blog, q) == [4]
    assert await blog.aggregate(from_(Comment), "count") == 6


async def test_update_all_cte_in_the_keyword_form(blog: Repo) -> None:
    changed = from_(Post, where={"id": 3}, update={"inc": {"visits": 5}}, select=lambda p: {"visits": p.visits})
    q = from_(
        ("changed", Post),
        with_cte={"changed": {"as_": changed, "operation": "update_all", "materialized": True}},
        select=lambda c: c.visits,
    )
    assert await rows(blog, q) == [35]


# --- prepend_order_by, reverse_order ---------------------------------------------------------------


async def test_prepend_order_by(blog: Repo) -> None:
    q = from_(Comment) | where(lambda c: c.post_id > 0) | order_by(desc="id")
    q = q | prepend_order_by("post_id") | select(lambda c: c.text)
    assert await rows(blog, q) == ["c3", "c2", "c1", "c5", "c4", "c7"]


async def test_reverse_order(blog: Repo) -> None:
    q = from_(Comment) | where(lambda c: c.post_id > 0) | order_by(lambda c: [c.post_id, desc(c.id)])
    texts_ = await rows(blog, q | reverse_order() | select(lambda c: c.text))
    assert texts_ == ["c7", "c4", "c5", "c1", "c2", "c3"]
    assert [p.id for p in await rows(blog, from_(Post) | reverse_order())] == [4, 3, 2, 1]
    assert [p.id for p in await rows(blog, from_(Post) | reverse_order() | reverse_order())] == [1, 2, 3, 4]


# --- named bindings, distinct, exclude --------------------------------------------------------------


def _with_comments(q: Query[Any]) -> Query[Any]:
    return q | with_named_binding("c", lambda q: q | join("left", lambda p: p.comments, as_="c"))


async def test_with_named_binding_joins_once(blog: Repo) -> None:
    q = _with_comments(_with_comments(from_(Post)))
    assert has_named_binding(q, "c") and len(q.joins) == 1
    q = q | where(lambda p, c: c.approved == True) | order_by("id") | select(lambda p, c: (p.title, c.text))  # noqa: E712
    assert sorted(await rows(blog, q)) == [("p1", "c1"), ("p1", "c3"), ("p2", "c5")]


async def test_distinct_on_with_directions(blog: Repo) -> None:
    """DISTINCT ON keeps the first row of each group in the (prepended) order."""
    q = (
        from_(Comment)
        | where(lambda c: c.post_id > 0)
        | distinct({"desc": "post_id"})
        | order_by(desc="id")
        | select(lambda c: (c.post_id, c.text))
    )
    assert await rows(blog, q) == [(4, "c7"), (2, "c5"), (1, "c3")]


async def test_exclude_a_trailing_join_kind(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("inner", lambda p: p.author, as_="a")
        | join("left", lambda p, a: p.comments, as_="c")
        | order_by("id")
    )
    assert len(await rows(blog, q)) == 6  # p1 x3, p2 x2, p4 x1
    kept = q | exclude("left_join") | preload(lambda p, a: {"author": a})
    posts = await rows(blog, kept)
    assert [(p.title, p.author.name) for p in posts] == [("p1", "ann"), ("p2", "bob"), ("p4", "ann")]


async def test_a_data_modifying_cte_reads_computed_columns_by_their_keys(blog: Repo) -> None:
    changed = (
        from_(Post)
        | where(lambda p: p.id <= 2)
        | update(inc={"visits": 1})
        | select(lambda p: {"id": p.id, "visits": p.visits * 2})
    )
    q = from_(("c", Post)) | with_cte("c", as_=changed, operation="update_all") | order_by("id")
    assert await rows(blog, q | select(lambda c: (c.id, c.visits))) == [(1, 22), (2, 42)]
