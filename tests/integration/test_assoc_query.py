"""``asyncecto.assoc`` queries and joins on associations against PostgreSQL (Ecto's assoc.exs
query half and the assoc joins of joins.exs)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from asyncecto import QueryEvent, Repo, assoc, meta
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import Query, from_, join, order_by, select, where

from ..assoc_schemas import Comment, Post, Profile, Tag, User
from .blog_data import XComment, XPost, XProfile, XUser, names, seed_blog, texts, titles


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


_S = TypeVar("_S")


async def get(repo: Repo, schema: type[_S], id: int, **opts: Any) -> _S:
    found = await repo.get(schema, id, **opts)
    assert found is not None, f"{schema.__name__} {id} not seeded"
    return found


# -- assoc() for every kind -------------------------------------------------------------------------


async def test_assoc_has_many(blog: Repo) -> None:
    p1 = await get(blog, Post, 1)
    assert texts(await blog.all(assoc(p1, "comments"))) == ["c1", "c2", "c3"]
    p3 = await get(blog, Post, 3)
    assert await blog.all(assoc(p3, "comments")) == []


async def test_assoc_of_a_list_deduplicates_owner_keys_in_one_array_parameter(blog: Repo) -> None:
    p1, p2 = await get(blog, Post, 1), await get(blog, Post, 2)
    q = assoc([p1, p2, p1], "comments")
    sql, params = blog.to_sql(q)
    assert '"post_id" = ANY($1)' in sql and params == [[1, 2]]
    assert texts(await blog.all(q)) == ["c1", "c2", "c3", "c4", "c5"]


async def test_assoc_belongs_to_and_a_nil_foreign_key(blog: Repo) -> None:
    c1, c5 = await get(blog, Comment, 1), await get(blog, Comment, 5)
    assert names(await blog.all(assoc(c1, "author"))) == ["bob"]
    assert await blog.all(assoc(c5, "author")) == []  # author_id is NULL
    assert names(await blog.all(assoc([c1, c5], "author"))) == ["bob"]
    assert blog.to_sql(assoc([c1, c5], "author"))[1] == [[2]]


async def test_assoc_has_one(blog: Repo) -> None:
    p1, u3 = await get(blog, Post, 1), await get(blog, User, 3)
    assert [link.url for link in await blog.all(assoc(p1, "permalink"))] == ["/p1"]
    assert await blog.one(assoc(u3, "profile")) is None
    profile = await blog.one(assoc(await get(blog, User, 2), "profile"))
    assert profile is not None and profile.bio == "bob bio"
    user = await blog.one(assoc(await get(blog, Profile, 1), "user"))
    assert user is not None and user.name == "ann"


async def test_assoc_many_to_many_with_a_table_or_a_schema_join_through(blog: Repo) -> None:
    p1 = await get(blog, Post, 1)
    q = assoc(p1, "tags")
    assert names(await blog.all(q)) == ["elixir", "python"]
    assert '"bl_posts_tags"' in blog.to_sql(q)[0]
    tag = await get(blog, Tag, 1)
    assert titles(await blog.all(assoc(tag, "posts"))) == ["p1", "p2"]
    assert await blog.all(assoc(await get(blog, Tag, 3), "posts")) == []


async def test_assoc_has_many_through(blog: Repo) -> None:
    ann = await get(blog, User, 1)
    assert texts(await blog.all(assoc(ann, "post_comments"))) == ["c1", "c2", "c3", "c7"]
    p1 = await get(blog, Post, 1)
    assert names(await blog.all(assoc(p1, "commenters"))) == ["bob", "cid"]  # distinct rows: a subquery per hop
    assert names(await blog.all(assoc(await get(blog, Post, 2), "commenters"))) == ["ann"]  # c5 has no author


async def test_assoc_through_a_many_to_many_a_has_one_a_belongs_to_and_a_through(blog: Repo) -> None:
    ann = await get(blog, XUser, 1)
    assert names(await blog.all(assoc(ann, "tags"))) == ["elixir", "python"]
    assert [p.url for p in await blog.all(assoc(ann, "permalinks"))] == ["/p1"]
    assert names(await blog.all(assoc(ann, "post_commenters"))) == ["bob", "cid"]
    profile = await get(blog, XProfile, 2)
    assert titles(await blog.all(assoc(profile, "user_posts"))) == ["p2"]
    c4 = await get(blog, XComment, 4)
    assert [p.url for p in await blog.all(assoc(c4, "post_permalink"))] == ["/p2"]
    c6 = await get(blog, XComment, 6)  # no post: nothing at the end of the path
    assert await blog.all(assoc(c6, "post_permalink")) == []


async def test_assoc_of_a_multi_hop_path(blog: Repo) -> None:
    ann, bob = await get(blog, User, 1), await get(blog, User, 2)
    assert names(await blog.all(assoc(ann, ["posts", "comments", "author"]))) == ["bob", "cid"]
    assert texts(await blog.all(assoc([ann, bob], ["posts", "comments"]))) == ["c1", "c2", "c3", "c4", "c5", "c7"]
    assert names(await blog.all(assoc(ann, ["posts", "tags"]))) == ["elixir", "python"]
    sql, params = blog.to_sql(assoc(ann, ["posts", "comments", "author"]))
    assert sql.count("ANY(") == 3 and params == [[1]]  # one parameter, nested subqueries


async def test_assoc_applies_where_conditions(blog: Repo) -> None:
    p1, p2 = await get(blog, XPost, 1), await get(blog, XPost, 2)
    assert texts(await blog.all(assoc(p1, "approved_comments"))) == ["c1", "c3"]
    assert texts(await blog.all(assoc(p2, "anonymous_comments"))) == ["c5"]
    assert texts(await blog.all(assoc(p2, "signed_comments"))) == ["c4"]
    assert texts(await blog.all(assoc([p1, p2], "picked_comments"))) == ["c1", "c4"]
    assert texts(await blog.all(assoc(p1, "odd_comments"))) == ["c1", "c3"]
    assert names(await blog.all(assoc(p1, "python_tags"))) == ["python"]
    assert names(await blog.all(assoc(p1, "first_tag_links"))) == ["python"]  # join_where on the join table
    ann = await get(blog, XUser, 1)
    assert texts(await blog.all(assoc(ann, "approved_post_comments"))) == ["c1", "c3"]
    assert names(await blog.all(assoc(p1, "approved_commenters"))) == ["bob"]


async def test_assoc_queries_compose(blog: Repo) -> None:
    p1 = await get(blog, Post, 1)
    q = assoc(p1, "comments") | where(lambda c: c.author_id == 2) | order_by(desc="id") | select(["text"])
    assert [c.text for c in await blog.all(q)] == ["c3", "c1"]
    assert await blog.aggregate(assoc(p1, "comments"), "count") == 3
    assert await blog.exists(assoc(p1, "tags") | where(name="elixir"))


async def test_assoc_repr_reads_as_the_dsl(blog: Repo) -> None:
    p1 = await get(blog, Post, 1)
    assert repr(assoc(p1, "comments")) == "Query<from_(Comment) | where(lambda: b0.post_id.in_([1]))>"
    assert "approved" in repr(assoc(p1, "approved_comments"))


async def test_assoc_follows_the_struct_prefix_on_every_hop(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    old_ann = await get(repo, User, 1, prefix="archive")
    assert meta(old_ann).prefix == "archive"
    q = assoc(old_ann, "post_comments")
    sql, _ = repo.to_sql(q)
    assert sql.count('"archive".') == 2, sql  # the comments and the intermediate posts
    # archive: ann wrote p7 (c2, c3); public: ann wrote p1 and p4 (c1 c2 c3 c7)
    assert texts(await repo.all(q)) == ["old c2", "old c3"]
    assert titles(await repo.all(assoc(old_ann, "posts"))) == ["old p7"]
    assert names(await repo.all(assoc(await get(repo, Post, 1, prefix="archive"), "commenters"))) == ["old ann"]


async def test_assoc_prefix_option(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    ann = await get(repo, User, 1)
    assert titles(await repo.all(assoc(ann, "posts", prefix="archive"))) == ["old p7"]
    assert titles(await repo.all(assoc(ann, "posts"))) == ["p1", "p4"]


async def test_assoc_errors(blog: Repo) -> None:
    p1 = await get(blog, Post, 1)
    with pytest.raises(ArgumentError, match="cannot retrieve association 'comments' for None"):
        assoc(None, "comments")
    with pytest.raises(ArgumentError, match="cannot retrieve association 'comments' for None"):
        assoc([], "comments")
    with pytest.raises(ArgumentError, match="cannot retrieve association 'comments' for None"):
        assoc([p1, None], "comments")
    with pytest.raises(ArgumentError, match="schema Post has no association 'nope'; associations: author, comments"):
        assoc(p1, "nope")
    with pytest.raises(ArgumentError, match="schema Comment has no association 'likes'"):
        assoc(p1, ["comments", "likes"])
    with pytest.raises(ArgumentError, match="for structs of different schemas"):
        assoc([p1, await get(blog, User, 1)], "comments")
    with pytest.raises(ArgumentError, match="for the class Post; pass a struct"):
        assoc(Post, "comments")
    with pytest.raises(ArgumentError, match="expected an association name or a list of names"):
        assoc(p1, [])


# -- joins on associations ---------------------------------------------------------------------------


async def test_inner_join_has_many_with_a_filter_on_the_joined_binding(blog: Repo) -> None:
    q: Query[Any] = (
        from_(Post)
        | join("inner", lambda p: p.comments, as_="c")
        | where(lambda *, c: c.approved == True)  # noqa: E712
        | order_by("id")
        | select(lambda p, c: (p.title, c.text))
    )
    assert sorted(await blog.all(q)) == [("p1", "c1"), ("p1", "c3"), ("p2", "c5")]
    sql, _ = blog.to_sql(q)
    assert 'INNER JOIN "bl_comments" AS b1 ON (b1."post_id" = b0."id")' in sql


async def test_left_join_belongs_to_keeps_parents_without_one(blog: Repo) -> None:
    q: Query[Any] = (
        from_(Post)
        | join("left", lambda p: p.author, as_="author")
        | order_by("id")
        | select(lambda p, *, author: (p.title, author.name))
    )
    assert await blog.all(q) == [("p1", "ann"), ("p2", "bob"), ("p3", None), ("p4", "ann")]
    q2 = from_(Post) | join("left", lambda p: p.author, as_="author") | where(lambda *, author: author.name == "ann")
    assert titles(await blog.all(q2)) == ["p1", "p4"]


async def test_join_has_one(blog: Repo) -> None:
    q: Query[Any] = from_(Post) | join("inner", lambda p: p.permalink, as_="l") | select(lambda p, l: (p.title, l.url))  # noqa: E741
    assert sorted(await blog.all(q)) == [("p1", "/p1"), ("p2", "/p2")]
    q2: Query[Any] = (
        from_(User) | join("left", lambda u: u.profile) | order_by("id") | select(lambda u, pr: (u.name, pr.bio))
    )
    assert await blog.all(q2) == [("ann", "ann bio"), ("bob", "bob bio"), ("cid", None)]


async def test_join_many_to_many(blog: Repo) -> None:
    q: Query[Any] = from_(Post) | join("inner", lambda p: p.tags, as_="t") | select(lambda p, *, t: (p.title, t.name))
    assert sorted(await blog.all(q)) == [("p1", "elixir"), ("p1", "python"), ("p2", "python")]
    q2 = from_(Post) | join("inner", lambda p: p.tags, as_="t") | where(lambda *, t: t.name == "elixir")
    assert titles(await blog.all(q2)) == ["p1"]
    q3: Query[Any] = (
        from_(Tag) | join("left", lambda t: t.posts) | order_by("id") | select(lambda t, p: (t.name, p.title))
    )
    assert sorted(await blog.all(q3), key=str) == sorted(
        [("python", "p1"), ("python", "p2"), ("elixir", "p1"), ("sql", None)], key=str
    )


async def test_join_many_to_many_join_where_and_where(blog: Repo) -> None:
    q: Query[Any] = (
        from_(XPost) | join("inner", lambda p: p.first_tag_links, as_="t") | select(lambda p, t: (p.title, t.name))
    )
    assert sorted(await blog.all(q)) == [("p1", "python"), ("p2", "python")]
    q2: Query[Any] = from_(XPost) | join("inner", lambda p: p.python_tags, as_="t") | select(lambda p, t: p.title)
    assert sorted(await blog.all(q2)) == ["p1", "p2"]


async def test_join_through_associations(blog: Repo) -> None:
    q: Query[Any] = (
        from_(Post) | join("inner", lambda p: p.commenters, as_="u") | select(lambda p, *, u: (p.title, u.name))
    )
    assert sorted(await blog.all(q)) == [("p1", "bob"), ("p1", "cid"), ("p2", "ann"), ("p4", "bob")]
    q2 = from_(User) | join("inner", lambda u: u.post_comments, as_="c") | where(lambda *, c: c.text == "c7")
    assert names(await blog.all(q2)) == ["ann"]
    q3 = from_(XUser) | join("inner", lambda u: u.tags, as_="t") | where(lambda *, t: t.name == "elixir")
    assert names(await blog.all(q3)) == ["ann"]
    q4: Query[Any] = (
        from_(XComment) | join("left", lambda c: c.post_permalink, as_="l") | select(lambda c, l: (c.text, l.url))  # noqa: E741
    )
    assert dict(await blog.all(q4)) == {
        "c1": "/p1",
        "c2": "/p1",
        "c3": "/p1",
        "c4": "/p2",
        "c5": "/p2",
        "c6": None,
        "c7": None,
    }


async def test_join_through_applies_every_hops_where(blog: Repo) -> None:
    q: Query[Any] = (
        from_(XPost) | join("inner", lambda p: p.approved_commenters, as_="u") | select(lambda p, u: (p.title, u.name))
    )
    assert await blog.all(q) == [("p1", "bob")]  # only the authors of approved comments
    q2: Query[Any] = (
        from_(XUser)
        | join("inner", lambda u: u.approved_post_comments, as_="c")
        | select(lambda u, c: (u.name, c.text))
    )
    assert sorted(await blog.all(q2)) == [("ann", "c1"), ("ann", "c3"), ("bob", "c5")]


async def test_join_applies_the_associations_where(blog: Repo) -> None:
    q: Query[Any] = from_(Post) | join("inner", lambda p: p.approved_comments, as_="c") | select(lambda p, c: c.text)
    assert sorted(await blog.all(q)) == ["c1", "c3", "c5"]
    for name, expected in [
        ("anonymous_comments", ["c5"]),
        ("signed_comments", ["c1", "c2", "c3", "c4", "c7"]),
        ("picked_comments", ["c1", "c4"]),
        ("odd_comments", ["c1", "c3", "c5", "c7"]),
    ]:
        xq: Query[Any] = from_(XPost) | join("inner", _assoc_of(name), as_="c") | select(lambda p, c: c.text)
        assert sorted(await blog.all(xq)) == expected, name


def _assoc_of(name: str) -> Any:
    return lambda p: getattr(p, name)


async def test_join_with_extra_on_conditions(blog: Repo) -> None:
    q: Query[Any] = (
        from_(Post)
        | join("left", lambda p: p.comments, as_="c", on=lambda p, c: c.author_id == 2)
        | order_by("id")
        | select(lambda p, c: (p.title, c.text))
    )
    assert sorted(await blog.all(q), key=str) == sorted(
        [("p1", "c1"), ("p1", "c3"), ("p2", None), ("p3", None), ("p4", "c7")], key=str
    )


async def test_join_from_a_joined_binding(blog: Repo) -> None:
    q: Query[Any] = (
        from_(Post)
        | join("inner", lambda p: p.comments, as_="c")
        | join("inner", lambda p, c: c.author, as_="ca")
        | where(lambda *, ca: ca.name == "cid")
        | select(lambda p, *, c, ca: (p.title, c.text, ca.name))
    )
    assert await blog.all(q) == [("p1", "c2", "cid")]


async def test_join_on_an_association_under_a_prefix(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    q: Query[Any] = from_(Post) | join("inner", lambda p: p.comments, as_="c") | select(lambda p, c: (p.title, c.text))
    assert sorted(await repo.all(q, prefix="archive")) == [
        ("old p1", "old c1"),
        ("old p7", "old c2"),
        ("old p7", "old c3"),
    ]
    through = from_(Post, prefix="archive") | join("inner", lambda p: p.commenters, as_="u", prefix="archive")
    rows: list[Any] = await repo.all(through | select(lambda p, u: (p.title, u.name)))
    # archive p1 has one comment, by archive user 1 ("old ann"); p7's are by users 2 and 1
    assert sorted(rows) == [("old p1", "old ann"), ("old p7", "old ann"), ("old p7", "old bob")]
    # the call's prefix reaches the path's intermediate tables too (they are resolved when planned)
    plain: Query[Any] = (
        from_(Post) | join("inner", lambda p: p.commenters, as_="u") | select(lambda p, u: (p.title, u.name))
    )
    assert sorted(await repo.all(plain, prefix="archive")) == sorted(rows)
    sql, _ = repo.to_sql(plain, prefix="archive")
    assert '"archive"."bl_comments" AS __h0' in sql
    assert '"bl_comments"' not in sql.replace('"archive"."bl_comments"', "")


async def test_join_sql_for_paths_is_an_exists_with_its_conditions_as_parameters(blog: Repo) -> None:
    q = from_(XPost) | join("inner", lambda p: p.approved_commenters, as_="u")
    sql, params = blog.to_sql(q)
    assert "ON EXISTS (SELECT 1 FROM" in sql and '"approved" = $1' in sql
    assert params == [True]
    events: list[QueryEvent] = []
    blog.telemetry.attach(events.append)
    await blog.all(q)
    await blog.telemetry.flush()
    assert events[0].params == (True,)


async def test_join_errors(blog: Repo) -> None:
    with pytest.raises(QueryError, match=r"field 'nope' does not exist in schema Post.*associations: author, comments"):
        from_(Post) | join("inner", lambda p: p.nope)
    with pytest.raises(QueryError, match="a cross join cannot join an association; use inner or left"):
        from_(Post) | join("cross", lambda p: p.comments)
    with pytest.raises(QueryError, match="a join on an association takes a function returning one"):
        from_(Post) | join("inner", lambda p: p.title)
    with pytest.raises(QueryError, match="association 'comments' is not a value; join it"):
        from_(Post) | where(lambda p: p.comments == 1)
    with pytest.raises(QueryError, match="association 'author' is not a value; join it"):
        from_(Post) | where(lambda p: p.author.name == "ann")
    with pytest.raises(QueryError, match="association 'author' is not a value"):
        from_(Post) | select(lambda p: p.author)
