"""Field lists in select meeting preloads, against PostgreSQL (Ecto's ``struct(p, [:id, comments: [:body]])``
and ``map(p, ...)``, repo.exs "take with preload assocs" / "take with join assocs"): partial parents,
partial children at every level, map results, join preloads, and the errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncecto import QueryEvent, Repo, assoc_loaded
from asyncecto.errors import QueryError
from asyncecto.query import (
    from_,
    join,
    limit,
    map_,
    order_by,
    preload,
    select,
    select_merge,
    struct,
    subquery,
    where,
)

from ..assoc_schemas import Comment, Post, User
from ..props.settings import props
from .blog_data import names, seed_blog, texts


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


def record(repo: Repo) -> list[QueryEvent]:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    return events


def by_id(structs: Any) -> list[Any]:
    return sorted(structs, key=lambda s: s.id)


async def test_partial_parent_with_preload_loads_the_listed_fields_and_whole_children(blog: Repo) -> None:
    # the preloader accepts a partial parent: it reads the key it needs (id) itself
    posts = await blog.all(from_(Post) | select(["title"]) | order_by("id") | preload("comments"))
    assert [p.title for p in posts] == ["p1", "p2", "p3", "p4"]
    assert [p.visits for p in posts] == [None] * 4  # not selected: the default
    assert [p.id for p in posts] == [1, 2, 3, 4]  # the owner key the preload needs
    assert texts(posts[0].comments) == ["c1", "c2", "c3"]
    assert posts[0].comments[0].approved is not None  # whole children: no field list for them


async def test_nested_field_list_loads_children_with_their_listed_fields(blog: Repo) -> None:
    events = record(blog)
    q = from_(Post) | select(["id", "title", {"comments": ["id", "text"]}]) | order_by("id") | preload("comments")
    p1, p2, p3, _p4 = await blog.all(q)
    assert (p1.id, p1.title, p1.visits) == (1, "p1", None)
    assert [(c.id, c.text) for c in by_id(p1.comments)] == [(1, "c1"), (2, "c2"), (3, "c3")]
    assert all(c.approved is False for c in p1.comments)  # bl_comments.approved is true for c1: not read
    assert all(c.author_id is None for c in p1.comments)
    assert all(c.post_id == 1 for c in p1.comments)  # the related key, read to stitch them
    assert texts(p2.comments) == ["c4", "c5"] and p3.comments == []
    await blog.telemetry.flush()
    child_sql = [e.sql for e in events if "bl_comments" in e.sql]
    assert len(child_sql) == 1 and '"approved"' not in child_sql[0] and '"author_id"' not in child_sql[0]
    parent_sql = [e.sql for e in events if "bl_posts" in e.sql]
    assert '"visits"' not in parent_sql[0]


async def test_struct_in_a_lambda_and_the_keyword_form_match_the_list(blog: Repo) -> None:
    fields: list[Any] = ["id", "title", {"comments": ["text"]}]
    piped = await blog.all(from_(Post) | select(fields) | order_by("id") | preload("comments"))
    lam = await blog.all(from_(Post) | select(lambda p: struct(p, fields)) | order_by("id") | preload("comments"))
    keyword = await blog.all(from_(Post, select=fields, order_by="id", preload="comments"))
    assert piped == lam == keyword
    assert texts(keyword[0].comments) == ["c1", "c2", "c3"]
    assert keyword[0].comments[0].id is None  # id not listed for comments


async def test_two_levels_of_field_lists(blog: Repo) -> None:
    q = (
        from_(Post)
        | where(id=1)
        | select(["title", {"comments": ["text", {"author": ["name"]}]}])
        | preload({"comments": "author"})
    )
    [p1] = await blog.all(q)
    got = sorted((c.text, c.author.name if c.author else None) for c in p1.comments)
    assert got == [("c1", "bob"), ("c2", "cid"), ("c3", "bob")]
    author = p1.comments[0].author
    assert author is not None and author.id is not None  # the related key of a belongs_to
    assert not assoc_loaded(author.posts)


async def test_map_gives_dicts_with_nested_lists_of_dicts(blog: Repo) -> None:
    # Ecto: map(p, [:id, :title, comments: [:text, :post_id]]) → %{id:, title:, comments: [%{text:, post_id:}]}
    q = (
        from_(Post)
        | where(lambda p: p.id.in_([1, 3]))
        | order_by("id")
        | select(lambda p: map_(p, ["id", "title", {"comments": ["text", {"author": ["name"]}]}]))
        | preload({"comments": "author"})
    )
    rows: list[Any] = await blog.all(q)
    p1, p3 = rows
    assert p3 == {"id": 3, "title": "p3", "comments": []}
    assert p1["id"] == 1 and p1["title"] == "p1"
    assert sorted(p1["comments"], key=lambda c: c["text"]) == [
        {"text": "c1", "author": {"name": "bob"}},
        {"text": "c2", "author": {"name": "cid"}},
        {"text": "c3", "author": {"name": "bob"}},
    ]


async def test_map_without_preload_and_with_whole_preloaded_children(blog: Repo) -> None:
    flat: list[Any] = await blog.all(from_(Post) | order_by("id") | select(lambda p: map_(p, ["id", "title"])))
    assert flat[0] == {"id": 1, "title": "p1"}
    # an association preloaded without a field list keeps its structs (as Ecto)
    rows: list[Any] = await blog.all(
        from_(Post) | where(id=2) | select(lambda p: map_(p, ["title"])) | preload("author")
    )
    [p2] = rows
    assert p2["title"] == "p2" and isinstance(p2["author"], User) and p2["author"].name == "bob"
    assert set(p2) == {"title", "author"}


async def test_belongs_to_and_many_to_many_field_lists(blog: Repo) -> None:
    q = (
        from_(Comment)
        | where(lambda c: c.id.in_([1, 5]))
        | order_by("id")
        | select(["text", {"post": ["title", {"tags": ["name"]}]}])
        | preload({"post": "tags"})
    )
    c1, c5 = await blog.all(q)
    assert c1.post is not None and c1.post.title == "p1" and c1.post.visits is None
    assert names(c1.post.tags) == ["elixir", "python"]
    assert all(t.id is None for t in c1.post.tags)  # many_to_many keys come from the join table
    assert c5.post is not None and [t.name for t in c5.post.tags] == ["python"]


async def test_select_merge_into_a_partial_parent_with_preload(blog: Repo) -> None:
    q = (
        from_(Post)
        | where(id=1)
        | select(["title", {"comments": ["text"]}])
        | select_merge(lambda p: {"visits": p.visits * 2})
        | preload("comments")
    )
    [p1] = await blog.all(q)
    assert (p1.title, p1.visits) == ("p1", 20)
    assert texts(p1.comments) == ["c1", "c2", "c3"]


async def test_join_preload_with_field_lists(blog: Repo) -> None:
    # Ecto's "take with join assocs"
    base = (
        from_(Post) | where(id=1) | join("inner", lambda p: p.comments, as_="c") | preload(lambda p, c: {"comments": c})
    )
    [p] = await blog.all(base | select(["title", {"comments": ["text"]}]))
    assert p.title == "p1" and p.visits is None
    assert texts(p.comments) == ["c1", "c2", "c3"]
    assert all(c.approved is False for c in p.comments)
    maps: list[Any] = await blog.all(base | select(lambda p: map_(p, ["title", {"comments": ["text"]}])))
    [m] = maps
    assert m["title"] == "p1" and sorted(m["comments"], key=lambda c: c["text"]) == [
        {"text": "c1"},
        {"text": "c2"},
        {"text": "c3"},
    ]


async def test_field_list_for_an_association_that_is_not_preloaded_raises(blog: Repo) -> None:
    with pytest.raises(
        QueryError,
        match=r"association 'comments' of Post, which the query does not preload.*"
        r"preload\('comments'\)",
    ):
        await blog.all(from_(Post) | select(["id", {"comments": ["text"]}]))
    with pytest.raises(QueryError, match=r"association 'author' of Comment.*preload\(\{'comments': 'author'\}\)"):
        await blog.all(from_(Post) | select(["id", {"comments": ["text", {"author": ["name"]}]}]) | preload("comments"))


async def test_unknown_fields_and_associations_raise_naming_schema_and_fix(blog: Repo) -> None:
    with pytest.raises(QueryError, match=r"field 'nope' does not exist in schema Comment; fields are: id, text"):
        from_(Post) | select(["id", {"comments": ["nope"]}])
    with pytest.raises(QueryError, match=r"schema Post has no association 'remarks'.*associations: author, comments"):
        from_(Post) | select(["id", {"remarks": ["text"]}])
    with pytest.raises(QueryError, match=r"'comments' is an association of Post, not a field"):
        from_(Post) | select(["id", "comments"])
    with pytest.raises(QueryError, match=r"'commenters' of Post goes through comments -> author"):
        from_(Post) | select(["id", {"commenters": ["name"]}])
    assert await blog.all(from_(Post) | where(id=3) | select(["id", "title"])) == [Post(id=3, title="p3")]


async def test_partial_parent_reads_a_belongs_to_key_and_a_through_hop_key(blog: Repo) -> None:
    [p2] = await blog.all(from_(Post) | where(id=2) | select(["title"]) | preload("author", "commenters"))
    assert p2.author is not None and p2.author.name == "bob"
    assert p2.author_id == 2  # read for the belongs_to
    assert names(p2.commenters) == ["ann"]  # c4 by ann, c5 by nobody


async def test_custom_and_per_parent_preload_queries_are_narrowed_too(blog: Repo) -> None:
    approved = from_(Comment) | where(approved=True)
    [p1] = await blog.all(
        from_(Post) | where(id=1) | select(["id", {"comments": ["text"]}]) | preload({"comments": approved})
    )
    assert texts(p1.comments) == ["c1", "c3"] and all(c.approved is False for c in p1.comments)
    first = from_(Comment) | order_by(desc="id") | limit(1)
    posts: list[Any] = await blog.all(
        from_(Post)
        | order_by("id")
        | select(lambda p: map_(p, ["id", {"comments": ["text"]}]))
        | preload({"comments": first})
    )
    assert posts == [
        {"id": 1, "comments": [{"text": "c3"}]},
        {"id": 2, "comments": [{"text": "c5"}]},
        {"id": 3, "comments": []},
        {"id": 4, "comments": [{"text": "c7"}]},
    ]


async def test_map_in_the_keyword_form_and_with_one(blog: Repo) -> None:
    q = from_(Post, where={"id": 4}, select=lambda p: map_(p, ["title", {"permalink": ["url"]}]), preload="permalink")
    assert cast(Any, await blog.one(q)) == {"title": "p4", "permalink": None}
    q2 = from_(Post, where={"id": 1}, select=lambda p: map_(p, ["title", {"permalink": ["url"]}]), preload="permalink")
    assert cast(Any, await blog.one(q2)) == {"title": "p1", "permalink": {"url": "/p1"}}


# -- the property: a field list gives the full preload projected on its fields ----------------

POST_FIELDS = ("id", "title", "visits", "author_id")
COMMENT_FIELDS = ("id", "text", "approved", "post_id", "author_id")
USER_FIELDS = ("id", "name")


def _project(s: Any, fields: Sequence[str], nested: dict[str, tuple[Sequence[str], Any]]) -> dict[str, Any]:
    d = {f: getattr(s, f) for f in fields}
    for name, (sub_fields, sub_nested) in nested.items():
        v = getattr(s, name)
        if isinstance(v, list):
            d[name] = sorted((_project(c, sub_fields, sub_nested) for c in v), key=repr)
        else:
            d[name] = None if v is None else _project(v, sub_fields, sub_nested)
    return d


def _sorted_children(d: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v, key=repr) if isinstance(v, list) else v for k, v in d.items()}


@props(40)
@given(
    post=st.lists(st.sampled_from(POST_FIELDS), min_size=1, unique=True),
    comment=st.lists(st.sampled_from(COMMENT_FIELDS), min_size=1, unique=True),
    user=st.none() | st.lists(st.sampled_from(USER_FIELDS), min_size=1, unique=True),
    as_map=st.booleans(),
)
async def test_a_field_list_is_the_full_preload_projected(
    blog: Repo, post: list[str], comment: list[str], user: list[str] | None, as_map: bool
) -> None:
    comment_list: list[Any] = [*comment, {"author": user}] if user is not None else list(comment)
    fields: list[Any] = [*post, {"comments": comment_list}]
    spec: Any = {"comments": "author"} if user is not None else "comments"
    base = from_(Post) | order_by("id")
    full = await blog.all(base | preload(spec))
    got: list[Any] = await blog.all(
        base | select(lambda p: map_(p, fields) if as_map else struct(p, fields)) | preload(spec)
    )
    nested: dict[str, tuple[Sequence[str], Any]] = {"author": (user, {})} if user is not None else {}
    expected = [_project(p, post, {"comments": (comment, nested)}) for p in full]
    if as_map:
        assert [_sorted_children(g) for g in got] == expected
        return
    assert [_project(g, post, {"comments": (comment, nested)}) for g in got] == expected
    keys = {"id"}  # read for the has_many; every other unlisted field keeps its default
    for g, f in zip(got, full, strict=True):
        for name in POST_FIELDS:
            assert getattr(g, name) == (getattr(f, name) if name in post or name in keys else None)
        for c in g.comments:
            for name in COMMENT_FIELDS:
                read = name in comment or name == "post_id" or (name == "author_id" and user is not None)
                if not read:
                    assert getattr(c, name) == Comment().__getattribute__(name)


async def test_join_preload_with_a_separate_preload_beneath_reads_its_key(blog: Repo) -> None:
    q = (
        from_(Post)
        | where(id=2)
        | join("inner", lambda p: p.comments, as_="c")
        | select(["title", {"comments": ["text", {"author": ["name"]}]}])
        | preload(lambda p, c: {"comments": (c, "author")})
    )
    [p2] = await blog.all(q)
    got = sorted((c.text, c.author.name if c.author else "-") for c in p2.comments)
    assert got == [("c4", "ann"), ("c5", "-")]
    assert all(c.approved is False and c.id is not None for c in p2.comments)  # id: join rows told apart by it


async def test_select_merge_into_map_with_preload_takes_any_key(blog: Repo) -> None:
    fields: list[Any] = ["title", {"comments": ["text"]}]
    q = (
        from_(Post)
        | where(lambda p: p.id.in_([1, 3]))
        | order_by("id")
        | select(lambda p: map_(p, fields))
        | select_merge(lambda p: {"double": p.visits * 2, "title": "T"})
        | preload("comments")
    )
    rows: list[Any] = await blog.all(q)
    assert [(r["title"], r["double"], len(r["comments"])) for r in rows] == [("T", 20, 3), ("T", 60, 0)]
    assert rows[0]["comments"][0].keys() == {"text"}
    # without preload, and through a join preload
    flat: list[Any] = await blog.all(
        from_(Post) | where(id=2) | select(lambda p: map_(p, ["title"])) | select_merge(lambda p: {"n": p.visits})
    )
    assert flat == [{"title": "p2", "n": 20}]
    joined: list[Any] = await blog.all(
        from_(Post)
        | where(id=1)
        | join("inner", lambda p: p.comments, as_="c")
        | select(lambda p: map_(p, fields))
        | select_merge(lambda p: {"v": p.visits})
        | preload(lambda p, c: {"comments": c})
    )
    assert len(joined) == 1 and joined[0]["v"] == 10 and texts_of(joined[0]["comments"]) == ["c1", "c2", "c3"]


def texts_of(dicts: list[dict[str, Any]]) -> list[str]:
    return sorted(str(d["text"]) for d in dicts)


async def test_field_names_on_a_schemaless_source_give_dicts(blog: Repo) -> None:
    # Ecto: select: [:id, :title] is struct(p, fields) on a schema and map(p, fields) on a table
    rows: list[Any] = await blog.all(
        from_("bl_posts") | where(lambda p: p.id < 3) | order_by("id") | select(["id", "title"])
    )
    assert rows == [{"id": 1, "title": "p1"}, {"id": 2, "title": "p2"}]
    same: list[Any] = await blog.all(
        from_("bl_posts") | where(lambda p: p.id < 3) | order_by("id") | select(lambda p: map_(p, ["id", "title"]))
    )
    assert same == rows
    with pytest.raises(QueryError, match=r"of a schemaless source takes column names only"):
        from_("bl_posts") | select(["id", {"comments": ["text"]}])


async def test_a_subquery_of_some_fields_read_as_a_whole_source(blog: Repo) -> None:
    inner = from_(Post) | where(id=1) | select(["id", "title"])
    assert await blog.all(from_(subquery(inner))) == [Post(id=1, title="p1")]
