"""Issue 19 acceptance against PostgreSQL: each query item of the issue once, spelled as an Ecto user
would, plus the leftovers (a fragment as a CTE body, no ``insert_all`` CTE, ``select_merge`` with an
outer join that matched nothing, relation casts as pipe steps)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.changeset import Changeset, cast, cast_assoc
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import (
    Query,
    count,
    desc,
    fragment,
    from_,
    join,
    lock,
    order_by,
    prepend_order_by,
    recursive_ctes,
    reverse_order,
    select,
    select_merge,
    union_all,
    where,
    with_cte,
)

from ..assoc_schemas import Comment, Post, Tag
from ..schemas import Typed
from .blog_data import seed_blog, texts

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)  # posts p1..p4 (visits 10..40); comments c1-c3 on p1, c4-c5 on p2, c7 on p4
    return repo


async def rows(repo: Repo, q: Any) -> list[Any]:
    return list(await repo.all(q))


def titles(posts: list[Post]) -> list[str | None]:
    return [p.title for p in posts]


# --- the query items, one test each ---------------------------------------------------------


async def test_keyword_from_with_where_and_preload(blog: Repo) -> None:
    posts = await rows(blog, from_(Post, where=lambda p: p.visits > 15, order_by="id", preload=["comments"]))
    assert [(p.title, texts(p.comments)) for p in posts] == [("p2", ["c4", "c5"]), ("p3", []), ("p4", ["c7"])]


async def test_recursive_ctes_step(blog: Repo) -> None:
    down = from_(Post) | where(lambda p: p.id == 3)  # 3, then 2, then 1: each step the post just below
    step = from_(Post) | join("inner", ("chain", Post), on=lambda p, c: p.id == c.id - 1)
    q = from_(("chain", Post)) | recursive_ctes(True) | with_cte("chain", as_=down | union_all(step)) | order_by("id")
    assert titles(await rows(blog, q)) == ["p1", "p2", "p3"]


async def test_materialized_cte(blog: Repo) -> None:
    busy = from_(Post) | where(lambda p: p.visits >= 30)
    q = from_(("busy", Post)) | with_cte("busy", as_=busy, materialized=True) | order_by("id")
    assert titles(await rows(blog, q)) == ["p3", "p4"]
    assert "CTE Scan" in await blog.explain(q)


async def test_prepend_order_by_and_reverse_order(blog: Repo) -> None:
    q = from_(Comment) | where(lambda c: c.post_id > 0) | order_by(desc="id") | prepend_order_by("post_id")
    assert [c.text for c in await rows(blog, q)] == ["c3", "c2", "c1", "c5", "c4", "c7"]
    assert [c.text for c in await rows(blog, q | reverse_order())] == ["c7", "c4", "c5", "c1", "c2", "c3"]


async def test_tablesample_hint(blog: Repo) -> None:
    assert await rows(blog, from_(Post, hints=["TABLESAMPLE SYSTEM(100)"]) | select(lambda p: count())) == [4]


async def test_lock_fragment_in_a_transaction(blog: Repo) -> None:
    q = from_(Post) | where(lambda p: p.id == 1) | lock(fragment("FOR SHARE NOWAIT"))
    async with blog.transaction():
        assert titles(await rows(blog, q)) == ["p1"]


async def test_json_containment(repo: Repo) -> None:
    a = await repo.insert(Typed(m={"k": 1, "tags": ["x"]}))
    await repo.insert(Typed(m={"k": "1"}))
    q = from_(Typed) | where(lambda t: t.m.contains({"k": 1})) | select(lambda t: t.id)
    assert await rows(repo, q) == [a.id]
    with pytest.raises(QueryError, match="expects a dict or a list"):
        await rows(repo, from_(Typed) | where(lambda t: t.m.contains('{"k": 1}')))


async def test_array_contains(repo: Repo) -> None:
    a = await repo.insert(Typed(texts=["x", "y"], ints=[1, 2]))
    await repo.insert(Typed(texts=["z"], ints=[2]))
    assert await rows(repo, from_(Typed) | where(lambda t: t.texts.contains("x")) | select(lambda t: t.id)) == [a.id]
    assert await rows(repo, from_(Typed) | where(lambda t: t.ints.contains([1, 2])) | select(lambda t: t.id)) == [a.id]


# --- with_cte(as_=fragment(...)) --------------------------------------------------------------------


async def test_fragment_as_a_cte_body(blog: Repo) -> None:
    """Ecto's ``with_cte("busy", as: fragment("..."))``: the fragment is the CTE's body, its ``?`` parameters
    numbered before the outer query's."""
    body = fragment("SELECT * FROM bl_posts WHERE visits >= ?", 20)
    q = (
        from_(("busy", Post))
        | with_cte("busy", as_=body, materialized=True)
        | where(lambda b: b.visits < 40)
        | order_by("id")
    )
    assert titles(await rows(blog, q)) == ["p2", "p3"]
    nums = fragment("SELECT generate_series(1, ?) AS n", 3)
    joined = (
        from_(Post)
        | join("inner", "nums", on=lambda p, n: p.id == n.n)
        | with_cte("nums", as_=nums)
        | order_by(lambda p: desc(p.id))
        | select(lambda p: p.title)
    )
    assert await rows(blog, joined) == ["p3", "p2", "p1"]


async def test_insert_all_cte_is_refused_as_in_ecto_and_a_fragment_writes_one(blog: Repo) -> None:
    with pytest.raises(QueryError, match=r"use one of 'all', 'update_all', 'delete_all' \(Ecto's with_cte has no"):
        with_cte("added", as_=from_(Tag), operation="insert_all")
    added = fragment("INSERT INTO bl_tags (name) VALUES (?) RETURNING *", "rust")
    q = from_(("added", Tag)) | with_cte("added", as_=added) | select(lambda t: t.name)
    assert await rows(blog, q) == ["rust"]
    assert await blog.aggregate(from_(Tag), "count") == 4
    with pytest.raises(QueryError, match="a fragment body is written as is; operation='delete_all' needs a query"):
        with_cte("gone", as_=fragment("DELETE FROM bl_tags RETURNING *"), operation="delete_all")


# --- select_merge with an outer join that matched nothing --------------------------------------------


async def test_select_merge_of_an_unmatched_outer_join(blog: Repo) -> None:
    """Merged values of an unmatched source are NULLs and overwrite (a plain map merge in Ecto); merging
    into an unmatched source raises Ecto's "cannot merge because the left side is not a map"."""
    first: Query[Any] = (
        from_(Post)
        | join("left", Comment, on=lambda p, c: (c.post_id == p.id) & (c.id != 2) & (c.id != 3))
        | where(lambda p: p.id <= 3)
        | order_by("id")
    )
    merged = first | select_merge(lambda p, c: {"title": c.text})
    assert [(p.id, p.title) for p in await rows(blog, merged)] == [(1, "c1"), (2, "c4"), (2, "c5"), (3, None)]
    into_comment = first | select(lambda p, c: c) | select_merge(lambda p, c: {"text": p.title})
    with pytest.raises(ArgumentError, match=r"cannot merge because the left side is not a map, got: None"):
        await rows(blog, into_comment)


# --- relation casts: pipe steps, and the lambda form still works --------------------------------------


def comment_cs(comment: Comment, params: dict[str, Any]) -> Changeset[Comment]:
    return cast(comment, params, ["text"])


async def test_cast_assoc_pipe_step_and_lambda_form_agree(blog: Repo) -> None:
    post = await blog.one(from_(Post, where=lambda p: p.id == 3, preload=["comments"]))
    assert post is not None
    params = {"comments": [{"text": "new"}]}
    piped = cast(post, params, []) | cast_assoc("comments", with_=comment_cs)
    wrapped = cast(post, params, []) | (lambda cs: cast_assoc(cs, "comments", with_=comment_cs))
    assert [c.changes for c in piped.changes["comments"]] == [c.changes for c in wrapped.changes["comments"]]
    updated = await blog.update(piped)
    assert texts(updated.comments) == ["new"]
