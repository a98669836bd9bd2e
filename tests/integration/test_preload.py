"""Preloading associations against PostgreSQL (Ecto's preload.exs and the join-preload half of
joins.exs): every association kind with every preload form, through chains, custom and
per-parent queries, join preloads, prefixes and the errors."""

from __future__ import annotations

from typing import Any, cast

import pytest

from asyncecto import QueryEvent, Repo, assoc_loaded, meta
from asyncecto.errors import ArgumentError, AssociationNotLoadedError, QueryError
from asyncecto.query import from_, join, limit, offset, order_by, preload, select, subquery, where
from asyncecto.schema._associations import NotLoaded

from ..assoc_schemas import Comment, Permalink, Post, Profile, Tag, User
from .blog_data import XComment, XPost, XProfile, XUser, names, seed_blog, texts, titles


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


async def posts(repo: Repo, *specs: Any) -> list[Any]:
    q = from_(Post) | order_by("id")
    return await repo.all(q | preload(*specs) if specs else q)


def record(repo: Repo) -> list[QueryEvent]:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    return events


# -- every kind, from a query and from repo.preload ------------------------------------------


async def test_has_many_from_a_query(blog: Repo) -> None:
    p1, p2, p3, p4 = await posts(blog, "comments")
    assert texts(p1.comments) == ["c1", "c2", "c3"]
    assert texts(p2.comments) == ["c4", "c5"]
    assert p3.comments == []
    assert texts(p4.comments) == ["c7"]
    assert all(meta(c).state == "loaded" and c.post_id == p1.id for c in p1.comments)
    # what was not asked for stays NotLoaded
    assert not assoc_loaded(p1.author) and not assoc_loaded(p1.tags)


async def test_belongs_to_from_a_query(blog: Repo) -> None:
    comments = await blog.all(from_(Comment) | order_by("id") | preload("author", "post"))
    by_text = {c.text: c for c in comments}
    assert by_text["c1"].author is not None and by_text["c1"].post is not None and by_text["c4"].author is not None
    assert by_text["c1"].author.name == "bob" and by_text["c1"].post.title == "p1"
    assert by_text["c4"].author.name == "ann"
    assert by_text["c5"].author is None  # nil foreign key
    assert by_text["c6"].post is None
    # one User struct per row, equal for equal rows
    assert by_text["c1"].author == by_text["c3"].author


async def test_has_one_from_a_query(blog: Repo) -> None:
    p1, p2, p3, _ = await posts(blog, "permalink")
    assert p1.permalink.url == "/p1" and p2.permalink.url == "/p2"
    assert p3.permalink is None
    users = await blog.all(from_(User) | order_by("id") | preload("profile"))
    assert [u.profile.bio if u.profile else None for u in users] == ["ann bio", "bob bio", None]


async def test_many_to_many_from_a_query(blog: Repo) -> None:
    p1, p2, p3, _ = await posts(blog, "tags")
    assert names(p1.tags) == ["elixir", "python"]
    assert names(p2.tags) == ["python"]
    assert p3.tags == []
    tags = await blog.all(from_(Tag) | order_by("id") | preload("posts"))  # join_through a schema
    assert [titles(t.posts) for t in tags] == [["p1", "p2"], ["p1"], []]


@pytest.mark.parametrize(
    ("schema", "name", "expected"),
    [
        (Post, "comments", {1: ["c1", "c2", "c3"], 2: ["c4", "c5"], 3: [], 4: ["c7"]}),
        (Post, "author", {1: "ann", 2: "bob", 3: None, 4: "ann"}),
        (Post, "permalink", {1: "/p1", 2: "/p2", 3: None, 4: None}),
        (Post, "tags", {1: ["elixir", "python"], 2: ["python"], 3: [], 4: []}),
        (Post, "commenters", {1: ["bob", "cid"], 2: ["ann"], 3: [], 4: ["bob"]}),
        (User, "posts", {1: ["p1", "p4"], 2: ["p2"], 3: []}),
        (User, "profile", {1: "ann bio", 2: "bob bio", 3: None}),
        (User, "post_comments", {1: ["c1", "c2", "c3", "c7"], 2: ["c4", "c5"], 3: []}),
        (Profile, "user", {1: "ann", 2: "bob"}),
        (Tag, "posts", {1: ["p1", "p2"], 2: ["p1"], 3: []}),
    ],
)
async def test_repo_preload_of_every_kind_on_a_list_and_on_single_structs(
    blog: Repo, schema: type, name: str, expected: dict[int, Any]
) -> None:
    def shown(value: Any) -> Any:
        if isinstance(value, list):
            return sorted(getattr(v, "text", None) or getattr(v, "title", None) or v.name for v in value)
        if value is None:
            return None
        return getattr(value, "name", None) or getattr(value, "url", None) or value.bio

    structs: list[Any] = await blog.all(from_(schema) | order_by("id"))
    loaded = await blog.preload(structs, name)
    assert {s.id: shown(getattr(s, name)) for s in loaded} == expected
    # copies: the given structs are untouched
    assert all(not assoc_loaded(getattr(s, name)) for s in structs)
    assert [s.id for s in loaded] == [s.id for s in structs]
    one = await blog.preload(structs[0], name)
    assert shown(getattr(one, name)) == expected[structs[0].id]


async def test_repo_preload_of_none_an_empty_list_and_a_list_with_none(blog: Repo) -> None:
    events = record(blog)
    no_post: Post | None = None
    assert await blog.preload(no_post, "comments") is None
    assert await blog.preload([], "comments") == []
    p1 = await blog.get_or_raise(Post, 1)
    got = await blog.preload([None, p1, None], "comments")
    assert got[0] is None and got[2] is None and got[1] is not None and texts(got[1].comments) == ["c1", "c2", "c3"]
    await blog.telemetry.flush()
    assert len(events) == 2  # the get and one preload query; nothing for None or []


async def test_several_associations_and_a_list_spec(blog: Repo) -> None:
    p1 = await blog.get_or_raise(Post, 1)
    a = await blog.preload(p1, "comments", "author", "tags")
    b = await blog.preload(p1, ["comments", "author", "tags"])
    for p in (a, b):
        assert (
            texts(p.comments) == ["c1", "c2", "c3"]
            and cast(User, p.author).name == "ann"
            and names(p.tags) == ["elixir", "python"]
        )


async def test_empty_results_give_empty_lists_and_none(blog: Repo) -> None:
    p3 = await blog.get_or_raise(Post, 3)
    p3 = await blog.preload(p3, "comments", "author", "permalink", "tags", "commenters", "ordered_comments")
    assert p3.comments == [] and p3.tags == [] and p3.commenters == [] and p3.ordered_comments == []
    assert p3.author is None and p3.permalink is None


async def test_preload_on_an_empty_table_result(repo: Repo) -> None:
    assert await repo.all(from_(Post) | preload("comments", "author")) == []


async def test_a_belongs_to_with_no_foreign_keys_sends_no_query(blog: Repo) -> None:
    p3 = await blog.get_or_raise(Post, 3)
    events = record(blog)
    p3 = await blog.preload(p3, "author")
    await blog.telemetry.flush()
    assert p3.author is None and events == []


# -- nested -----------------------------------------------------------------------------------


async def test_nested_preloads(blog: Repo) -> None:
    p1, p2, *_ = await posts(blog, {"comments": "author"})
    assert sorted((c.text, c.author.name) for c in p1.comments) == [("c1", "bob"), ("c2", "cid"), ("c3", "bob")]
    c5 = next(c for c in p2.comments if c.text == "c5")
    assert c5.author is None
    users = await blog.all(from_(User) | order_by("id") | preload({"posts": [{"comments": "author"}, "tags"]}))
    ann = users[0]
    assert titles(ann.posts) == ["p1", "p4"]
    p1 = next(p for p in ann.posts if p.title == "p1")
    assert names(p1.tags) == ["elixir", "python"]
    assert names(c.author for c in p1.comments) == ["bob", "bob", "cid"]
    assert users[2].posts == []


async def test_nested_preloads_three_levels_deep_with_repo_preload(blog: Repo) -> None:
    c4 = await blog.get_or_raise(Comment, 4)
    c4 = await blog.preload(c4, {"post": {"author": {"profile": "user"}}})
    assert c4.post is not None and c4.post.author is not None and c4.post.author.profile is not None
    assert c4.post.title == "p2" and c4.post.author.name == "bob"
    assert c4.post.author.profile.user is not None
    assert c4.post.author.profile.bio == "bob bio" and c4.post.author.profile.user.name == "bob"


async def test_preloads_given_in_several_calls_merge(blog: Repo) -> None:
    q = from_(Post) | where(id=1) | preload("comments") | preload({"comments": "author"}) | preload("tags")
    (p1,) = await blog.all(q)
    assert all(c.author is not None for c in p1.comments if c.author_id is not None)
    assert names(p1.tags) == ["elixir", "python"]


# -- through ----------------------------------------------------------------------------------


async def test_has_many_through_has_many_loads_the_intermediates_too(blog: Repo) -> None:
    users = await blog.all(from_(User) | order_by("id") | preload("post_comments"))
    ann, bob, cid = users
    assert texts(ann.post_comments) == ["c1", "c2", "c3", "c7"]
    assert texts(bob.post_comments) == ["c4", "c5"]
    assert cid.post_comments == [] and cid.posts == []
    assert titles(ann.posts) == ["p1", "p4"]  # the intermediate hop is loaded as well
    p1 = next(p for p in ann.posts if p.title == "p1")
    assert texts(p1.comments) == ["c1", "c2", "c3"]


async def test_has_many_through_a_belongs_to_deduplicates(blog: Repo) -> None:
    p1, p2, p3, p4 = await posts(blog, "commenters")
    assert names(p1.commenters) == ["bob", "cid"]  # bob wrote two comments on p1: listed once
    assert names(p2.commenters) == ["ann"]  # c5 has no author: a nil intermediate
    assert p3.commenters == [] and names(p4.commenters) == ["bob"]


async def test_has_one_through(blog: Repo) -> None:
    comments = await blog.all(from_(XComment) | order_by("id") | preload("post_permalink", "post_author"))
    got = {
        c.text: (c.post_permalink.url if c.post_permalink else None, getattr(c.post_author, "name", None))
        for c in comments
    }
    assert got == {
        "c1": ("/p1", "ann"),
        "c2": ("/p1", "ann"),
        "c3": ("/p1", "ann"),
        "c4": ("/p2", "bob"),
        "c5": ("/p2", "bob"),
        "c6": (None, None),  # no post: nil intermediate
        "c7": (None, "ann"),  # p4 has no permalink
    }
    assert comments[0].post is not None and comments[0].post.title == "p1"


async def test_through_a_many_to_many_and_through_a_has_one(blog: Repo) -> None:
    ann, bob, cid = await blog.all(from_(XUser) | order_by("id") | preload("tags", "permalinks"))
    assert names(ann.tags) == ["elixir", "python"]
    assert names(bob.tags) == ["python"]
    assert cid.tags == [] and cid.permalinks == []
    assert [p.url for p in ann.permalinks] == ["/p1"]  # one each: no order to settle
    assert [p.url for p in bob.permalinks] == ["/p2"]


async def test_through_a_belongs_to_then_a_has_many(blog: Repo) -> None:
    profiles = await blog.all(from_(XProfile) | order_by("id") | preload("user_posts"))
    assert [titles(p.user_posts) for p in profiles] == [["p1", "p4"], ["p2"]]


async def test_through_a_through(blog: Repo) -> None:
    ann, bob, cid = await blog.all(from_(XUser) | order_by("id") | preload("post_commenters"))
    assert names(ann.post_commenters) == ["bob", "cid"]  # commenters of p1 and p4
    assert names(bob.post_commenters) == ["ann"]
    assert cid.post_commenters == []


async def test_through_respects_the_where_of_an_intermediate_hop(blog: Repo) -> None:
    ann, bob, _ = await blog.all(from_(XUser) | order_by("id") | preload("approved_post_comments"))
    assert texts(ann.approved_post_comments) == ["c1", "c3"]
    assert texts(bob.approved_post_comments) == ["c5"]
    (p1,) = await blog.all(from_(XPost) | where(id=1) | preload("approved_commenters"))
    assert names(p1.approved_commenters) == ["bob"]


async def test_through_with_nested_preloads_and_a_custom_query(blog: Repo) -> None:
    q = from_(Comment) | where(approved=True)
    (ann,) = await blog.all(from_(User) | where(id=1) | preload({"post_comments": (q, "author")}))
    assert texts(ann.post_comments) == ["c1", "c3"]
    assert {cast(User, c.author).name for c in ann.post_comments} == {"bob"}


async def test_through_and_its_intermediate_preloaded_together(blog: Repo) -> None:
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload("commenters", {"comments": "post"}))
    assert names(p1.commenters) == ["bob", "cid"]
    assert {cast(Post, c.post).title for c in p1.comments} == {"p1"}
    assert all(assoc_loaded(c.author) for c in p1.comments)


# -- already loaded, force ----------------------------------------------------------------------


async def test_already_loaded_associations_are_skipped(blog: Repo) -> None:
    p1 = await blog.preload(await blog.get_or_raise(Post, 1), "comments")
    await blog.query("DELETE FROM bl_comments WHERE id = 2")
    events = record(blog)
    again = await blog.preload(p1, "comments")
    await blog.telemetry.flush()
    assert events == [] and texts(again.comments) == ["c1", "c2", "c3"]
    one = await blog.preload(await blog.get_or_raise(Post, 2), "author")
    await blog.telemetry.flush()
    events.clear()
    await blog.preload(one, "author")
    await blog.telemetry.flush()
    assert events == []


async def test_already_loaded_parents_still_get_nested_preloads(blog: Repo) -> None:
    p1 = await blog.preload(await blog.get_or_raise(Post, 1), "comments")
    p1 = await blog.preload(p1, {"comments": "author"})
    assert names(c.author for c in p1.comments) == ["bob", "bob", "cid"]


async def test_a_mixed_list_loads_only_the_parents_that_need_it(blog: Repo) -> None:
    p1 = await blog.preload(await blog.get_or_raise(Post, 1), "comments")
    p2 = await blog.get_or_raise(Post, 2)
    events = record(blog)
    a, b = await blog.preload([p1, p2], "comments")
    await blog.telemetry.flush()
    assert texts(a.comments) == ["c1", "c2", "c3"] and texts(b.comments) == ["c4", "c5"]
    assert len(events) == 1 and list(events[0].params) == [[2]]


async def test_force_reloads(blog: Repo) -> None:
    p1 = await blog.preload(await blog.get_or_raise(Post, 1), "comments", "author", "commenters")
    await blog.query("DELETE FROM bl_comments WHERE id = 2")
    await blog.query("UPDATE bl_users SET name = 'ANN' WHERE id = 1")
    stale = await blog.preload(p1, "comments", "author", "commenters")
    assert texts(stale.comments) == ["c1", "c2", "c3"] and cast(User, stale.author).name == "ann"
    fresh = await blog.preload(p1, "comments", "author", "commenters", force=True)
    assert texts(fresh.comments) == ["c1", "c3"] and cast(User, fresh.author).name == "ANN"
    assert names(fresh.commenters) == ["bob"]


# -- ordering, where= ---------------------------------------------------------------------------


async def test_preload_order_and_a_custom_order_overrides_it(blog: Repo) -> None:
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload("ordered_comments"))
    assert [c.text for c in p1.ordered_comments] == ["c3", "c2", "c1"]
    custom = from_(Comment) | order_by("text")
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload({"ordered_comments": custom}))
    assert [c.text for c in p1.ordered_comments] == ["c1", "c2", "c3"]
    (xp1,) = await blog.all(from_(XPost) | where(id=1) | preload("tags"))  # many_to_many preload_order
    assert [t.name for t in xp1.tags] == ["elixir", "python"]


async def test_preload_order_keeps_per_parent_grouping(blog: Repo) -> None:
    ps = await blog.all(from_(Post) | order_by("id") | preload("ordered_comments"))
    assert [[c.text for c in p.ordered_comments] for p in ps] == [["c3", "c2", "c1"], ["c5", "c4"], [], ["c7"]]


async def test_where_on_has_many(blog: Repo) -> None:
    p1, p2, p3, p4 = await posts(blog, "approved_comments")
    assert texts(p1.approved_comments) == ["c1", "c3"]
    assert texts(p2.approved_comments) == ["c5"]
    assert p3.approved_comments == [] and p4.approved_comments == []


async def test_every_where_form_on_has_many_and_many_to_many(blog: Repo) -> None:
    specs = ["anonymous_comments", "signed_comments", "picked_comments", "odd_comments", "python_tags"]
    p1, p2, *_ = await blog.all(from_(XPost) | order_by("id") | preload(*specs, "first_tag_links"))
    assert p1.anonymous_comments == [] and texts(p2.anonymous_comments) == ["c5"]
    assert texts(p2.signed_comments) == ["c4"]
    assert texts(p1.picked_comments) == ["c1"] and texts(p2.picked_comments) == ["c4"]
    assert [c.text for c in p1.odd_comments] == ["c1", "c3"] and [c.text for c in p2.odd_comments] == ["c5"]
    assert names(p1.python_tags) == ["python"] and names(p2.python_tags) == ["python"]
    assert names(p1.first_tag_links) == ["python"]


async def test_where_combines_with_a_custom_query(blog: Repo) -> None:
    q = from_(Comment) | where(lambda c: c.author_id == 2)
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload({"approved_comments": q}))
    assert texts(p1.approved_comments) == ["c1", "c3"]
    q = from_(Comment) | where(lambda c: c.author_id == 3)
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload({"approved_comments": q}))
    assert p1.approved_comments == []


# -- custom queries ------------------------------------------------------------------------------


async def test_custom_query_for_every_kind(blog: Repo) -> None:
    p1, p2, *_ = await posts(
        blog,
        {
            "comments": from_(Comment) | where(approved=False),
            "author": from_(User) | where(lambda u: u.name != "ann"),
            "permalink": from_(Permalink) | where(url="/p2"),
            "tags": from_(Tag) | where(name="elixir"),
        },
    )
    assert texts(p1.comments) == ["c2"] and texts(p2.comments) == ["c4"]
    assert p1.author is None and p2.author.name == "bob"
    assert p1.permalink is None and p2.permalink.url == "/p2"
    assert names(p1.tags) == ["elixir"] and p2.tags == []


async def test_custom_query_with_nested_preloads(blog: Repo) -> None:
    q = from_(Comment) | where(approved=True)
    p1, p2, *_ = await posts(blog, {"comments": (q, {"author": "profile"})})
    assert texts(p1.comments) == ["c1", "c3"]
    assert {c.author.profile.bio for c in p1.comments} == {"bob bio"}
    assert [c.author for c in p2.comments] == [None]


async def test_custom_query_in_repo_preload(blog: Repo) -> None:
    p2 = await blog.get_or_raise(Post, 2)
    p2 = await blog.preload(p2, {"comments": from_(Comment) | where(lambda c: c.text.like("%5"))})
    assert texts(p2.comments) == ["c5"]


async def test_custom_query_must_read_the_related_schema_and_select_its_struct(blog: Repo) -> None:
    p1 = await blog.get_or_raise(Post, 1)
    with pytest.raises(QueryError, match=r"association 'comments' must read from Comment, got Query<from_\(User\)>"):
        await blog.preload(p1, {"comments": from_(User)})
    with pytest.raises(QueryError, match="preload query for 'comments' must give Comment structs"):
        await blog.preload(p1, {"comments": from_(Comment) | select(lambda c: c.text)})
    with pytest.raises(QueryError, match=r"nest preloads of 'comments' as \(query, nested\)"):
        await blog.preload(p1, {"comments": from_(Comment) | preload("author")})


# -- per-parent limit/offset -----------------------------------------------------------------------


async def test_custom_limit_applies_per_parent(blog: Repo) -> None:
    top2 = from_(Comment) | order_by(desc="id") | limit(2)
    ps = await posts(blog, {"comments": top2})
    assert [[c.text for c in p.comments] for p in ps] == [["c3", "c2"], ["c5", "c4"], [], ["c7"]]


async def test_per_parent_offset_and_params_and_where(blog: Repo) -> None:
    q = from_(Comment) | where(lambda c: c.text != "c3") | order_by("id") | offset(1) | limit(1)
    ps = await posts(blog, {"comments": q})
    assert [[c.text for c in p.comments] for p in ps] == [["c2"], ["c5"], [], []]
    (p1,) = await blog.all(from_(Post) | where(id=1) | preload({"approved_comments": from_(Comment) | limit(1)}))
    assert [c.text for c in p1.approved_comments] in (["c1"], ["c3"])


async def test_per_parent_limit_uses_preload_order_and_lateral_sql(blog: Repo) -> None:
    events = record(blog)
    ps = await posts(blog, {"ordered_comments": from_(Comment) | limit(1)})
    await blog.telemetry.flush()
    assert [[c.text for c in p.ordered_comments] for p in ps] == [["c3"], ["c5"], [], ["c7"]]
    sql = events[-1].sql
    assert "CROSS JOIN LATERAL" in sql and "unnest($" in sql
    assert events[-1].params[-1] == [1, 2, 3, 4]


async def test_per_parent_limit_on_many_to_many_and_nested(blog: Repo) -> None:
    first = from_(Tag) | order_by("name") | limit(1)
    ps = await posts(blog, {"tags": (first, "posts")})
    assert [[t.name for t in p.tags] for p in ps] == [["elixir"], ["python"], [], []]
    assert titles(ps[1].tags[0].posts) == ["p1", "p2"]


async def test_per_parent_limit_on_a_one_association_is_refused(blog: Repo) -> None:
    with pytest.raises(QueryError, match="limit/offset is only for many associations, not 'author'"):
        await posts(blog, {"author": from_(User) | limit(1)})


async def test_per_parent_limit_from_repo_preload_and_through(blog: Repo) -> None:
    users = await blog.all(from_(User) | order_by("id"))
    q = from_(Comment) | order_by("id") | limit(1)
    ann, bob, cid = await blog.preload(users, {"post_comments": q})
    # the limit applies to the last hop, per intermediate post
    assert texts(ann.post_comments) == ["c1", "c7"] and texts(bob.post_comments) == ["c4"]
    assert cid.post_comments == []


# -- keys as one array parameter --------------------------------------------------------------------


async def test_keys_are_one_array_parameter_for_every_kind(blog: Repo) -> None:
    ps = await blog.all(from_(Post) | order_by("id"))
    events = record(blog)
    await blog.preload(ps, "comments", "author", "permalink", "tags", in_parallel=False)
    await blog.telemetry.flush()
    assert len(events) == 4
    for e in events:
        assert "= ANY($1)" in e.sql and " IN (" not in e.sql
        assert len(e.params) == 1 and isinstance(e.params[0], list)
    by_source = {e.source: e.params[0] for e in events}
    assert by_source["bl_comments"] == [1, 2, 3, 4]
    assert by_source["bl_users"] == [1, 2]  # unique keys, nil foreign keys left out


async def test_the_same_sql_for_any_number_of_parents(blog: Repo) -> None:
    events = record(blog)

    def upto(n: int) -> Any:
        return where(lambda p: p.id <= n)

    for n in (1, 2, 4):
        await blog.all(from_(Post) | upto(n) | preload("comments"))
    await blog.telemetry.flush()
    preload_sql = {e.sql for e in events if e.source == "bl_comments"}
    assert len(preload_sql) == 1


# -- join preloads ------------------------------------------------------------------------------------


async def test_join_preload_of_has_many_deduplicates_parents(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("left", lambda p: p.comments, as_="c")
        | order_by("id")
        | preload(lambda p, *, c: {"comments": c})
    )
    events = record(blog)
    ps = await blog.all(q)
    await blog.telemetry.flush()
    assert [p.title for p in ps] == ["p1", "p2", "p3", "p4"]  # p1 once, though joined to three rows
    assert [texts(p.comments) for p in ps] == [["c1", "c2", "c3"], ["c4", "c5"], [], ["c7"]]
    assert len(events) == 1 and "LEFT OUTER JOIN" in events[0].sql


async def test_join_preload_with_an_inner_join_and_a_filter_on_the_binding(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("inner", lambda p: p.comments, as_="c")
        | where(lambda *, c: c.approved == True)  # noqa: E712
        | order_by("id")
        | preload(lambda p, c: {"comments": c})
    )
    ps = await blog.all(q)
    assert [(p.title, texts(p.comments)) for p in ps] == [("p1", ["c1", "c3"]), ("p2", ["c5"])]


async def test_join_preload_of_belongs_to_and_has_one(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("left", lambda p: p.author, as_="a")
        | join("left", lambda p: p.permalink, as_="pl")
        | order_by("id")
        | preload(lambda p, *, a, pl: {"author": a, "permalink": pl})
    )
    ps = await blog.all(q)
    assert [(p.author.name if p.author else None, p.permalink.url if p.permalink else None) for p in ps] == [
        ("ann", "/p1"),
        ("bob", "/p2"),
        (None, None),
        ("ann", None),
    ]


async def test_join_preload_nested_and_mixed_with_separate_preloads(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("left", lambda p: p.comments, as_="c")
        | join("left", lambda p, c: c.author, as_="ca")
        | where(lambda p: p.id <= 2)
        | order_by("id")
        | preload(lambda p, *, c, ca: {"comments": (c, {"author": ca})})
        | preload("tags", {"comments": "post"})
    )
    p1, p2 = await blog.all(q)
    assert sorted((c.text, cast(User, c.author).name) for c in p1.comments) == [
        ("c1", "bob"),
        ("c2", "cid"),
        ("c3", "bob"),
    ]
    assert [c.author for c in p2.comments if c.text == "c5"] == [None]
    assert {cast(Post, c.post).title for c in p1.comments} == {"p1"}  # a separate preload beneath the join preload
    assert names(p1.tags) == ["elixir", "python"]


async def test_join_preload_of_two_has_many_does_not_multiply_children(blog: Repo) -> None:
    q = (
        from_(Post)
        | join("left", lambda p: p.comments, as_="c")
        | join("left", lambda p: p.tags, as_="t")
        | where(id=1)
        | preload(lambda p, *, c, t: {"comments": c, "tags": t})
    )
    (p1,) = await blog.all(q)  # 3 comments x 2 tags = 6 rows
    assert texts(p1.comments) == ["c1", "c2", "c3"] and names(p1.tags) == ["elixir", "python"]


async def test_join_preload_of_many_to_many(blog: Repo) -> None:
    q = from_(Tag) | join("left", lambda t: t.posts, as_="p") | order_by("id") | preload(lambda t, p: {"posts": p})
    tags = await blog.all(q)
    assert [(t.name, titles(t.posts)) for t in tags] == [("python", ["p1", "p2"]), ("elixir", ["p1"]), ("sql", [])]


async def test_join_preload_through_repo_one(blog: Repo) -> None:
    q = from_(Post) | join("left", lambda p: p.comments, as_="c") | where(id=2) | preload(lambda *, c: {"comments": c})
    p2 = await blog.one(q)
    assert p2 is not None and texts(p2.comments) == ["c4", "c5"]


async def test_join_preload_refuses_a_right_join(blog: Repo) -> None:
    q = from_(Post) | join("right", lambda p: p.comments, as_="c") | preload(lambda *, c: {"comments": c})
    with pytest.raises(QueryError, match="join preload requires an inner, left or lateral join, got right join"):
        await blog.all(q)


async def test_join_preload_of_a_binding_of_another_schema_is_refused(blog: Repo) -> None:
    q = from_(Post) | join("inner", lambda p: p.comments, as_="c")
    with pytest.raises(
        QueryError, match=r"cannot preload 'author' \(a User\) from join binding 1, which reads Comment"
    ):
        q | preload(lambda *, c: {"author": c})


async def test_join_preload_of_a_through_association_is_refused(blog: Repo) -> None:
    q = from_(Post) | join("inner", lambda p: p.commenters, as_="u") | preload(lambda *, u: {"commenters": u})
    with pytest.raises(QueryError, match="'commenters' goes through others; it cannot be preloaded from a join"):
        await blog.all(q)


# -- prefixes --------------------------------------------------------------------------------------


async def test_a_struct_from_a_prefix_preloads_from_that_prefix(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    old = await repo.get_or_raise(Post, 1, prefix="archive")
    assert old.title == "old p1" and meta(old).prefix == "archive"
    old = await repo.preload(old, "comments", "author", "commenters")
    assert texts(old.comments) == ["old c1"] and cast(User, old.author).name == "old bob"
    assert names(old.commenters) == ["old ann"]
    assert meta(old.comments[0]).prefix == "archive" and meta(old.author).prefix == "archive"


async def test_a_query_with_a_prefix_preloads_from_it(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    users = await repo.all(from_(User) | order_by("id") | preload({"posts": "comments"}), prefix="archive")
    assert [(u.name, titles(u.posts)) for u in users] == [("old ann", ["old p7"]), ("old bob", ["old p1"])]
    assert texts(users[0].posts[0].comments) == ["old c2", "old c3"]
    (ann,) = await repo.all(from_(User, prefix="archive") | where(id=1) | preload("post_comments"))
    assert texts(ann.post_comments) == ["old c2", "old c3"]


async def test_the_prefix_option_wins_over_the_struct(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    p1 = await repo.get_or_raise(Post, 1)  # public: by ann
    assert cast(User, (await repo.preload(p1, "author")).author).name == "ann"
    assert cast(User, (await repo.preload(p1, "author", prefix="archive")).author).name == "old ann"
    assert texts((await repo.preload(p1, "comments", prefix="archive")).comments) == ["old c1"]


async def test_per_parent_limit_from_a_prefix(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    q = from_(Comment) | order_by(desc="id") | limit(1)
    (p7,) = await repo.all(from_(Post, prefix="archive") | where(id=7) | preload({"comments": q}))
    assert [c.text for c in p7.comments] == ["old c3"]


async def test_join_preload_from_a_prefix(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    q = (
        from_(Post)
        | join("left", lambda p: p.comments, as_="c")
        | order_by("id")
        | preload(lambda *, c: {"comments": c})
    )
    ps = await repo.all(q, prefix="archive")
    assert [(p.title, texts(p.comments)) for p in ps] == [("old p1", ["old c1"]), ("old p7", ["old c2", "old c3"])]


# -- errors ---------------------------------------------------------------------------------------


async def test_unknown_association_names_the_schema_and_the_known_ones(blog: Repo) -> None:
    p1 = await blog.get_or_raise(Post, 1)
    known = "associations: author, comments, ordered_comments, approved_comments, permalink, tags, commenters"
    with pytest.raises(QueryError, match=f"schema Post has no association 'nope' to preload; {known}"):
        await blog.preload(p1, "nope")
    with pytest.raises(QueryError, match="schema Post has no association 'nope'"):
        from_(Post) | preload("comments", {"nope": "x"})
    with pytest.raises(
        QueryError, match="schema Comment has no association 'likes' to preload; associations: post, author"
    ):
        await blog.preload(p1, {"comments": "likes"})
    with pytest.raises(QueryError, match="schema Post has no association 'title' to preload"):
        await blog.preload(p1, "title")  # a field is not an association


async def test_heterogeneous_lists_are_refused(blog: Repo) -> None:
    p1, u1 = await blog.get_or_raise(Post, 1), await blog.get_or_raise(User, 1)
    with pytest.raises(ArgumentError, match="cannot preload structs of different schemas together: Post, User"):
        await blog.preload([p1, u1], "comments")


async def test_preload_on_a_query_selecting_something_else_is_refused(blog: Repo) -> None:
    q = from_(Post) | select(lambda p: p.title) | preload("comments")
    with pytest.raises(QueryError, match="binding used in `from` must be selected in `select` when using `preload`"):
        await blog.all(q)
    q2 = from_(Post) | join("inner", lambda p: p.comments) | select(lambda p, c: c) | preload("comments")
    with pytest.raises(QueryError, match="binding used in `from` must be selected in `select` when using `preload`"):
        await blog.all(q2)


async def test_selecting_the_struct_itself_is_allowed(blog: Repo) -> None:
    (p2,) = await blog.all(from_(Post) | where(id=2) | select(lambda p: p) | preload("comments"))
    assert texts(p2.comments) == ["c4", "c5"]


async def test_preloads_in_a_subquery_are_refused(blog: Repo) -> None:
    with pytest.raises(QueryError, match="cannot preload associations in a subquery"):
        from_(subquery(from_(Post) | preload("comments")))


async def test_preload_of_a_schema_class_or_an_embedded_struct_is_refused(blog: Repo) -> None:
    with pytest.raises((ArgumentError, QueryError)):
        await blog.preload(Post, "comments")


async def test_not_loaded_used_as_data_raises_with_how_to_preload(blog: Repo) -> None:
    p1 = await blog.get_or_raise(Post, 1)
    assert (
        isinstance(cast(object, p1.comments), NotLoaded)
        and repr(p1.comments) == "NotLoaded<association 'comments' is not loaded>"
    )
    for use in (lambda: len(p1.comments), lambda: list(p1.comments), lambda: p1.comments[0], lambda: bool(p1.author)):
        with pytest.raises(AssociationNotLoadedError) as info:
            use()
        assert "is not loaded; preload it first" in str(info.value)
    with pytest.raises(AssociationNotLoadedError) as info:
        _ = cast(Any, p1.author).name  # author is a NotLoaded here, not a User
    message = str(info.value)
    assert "association 'author' of Post is not loaded" in message
    assert "await repo.preload(struct, 'author')" in message and "from_(Post) | preload('author')" in message
    assert info.value.schema == "Post" and info.value.association == "author"


async def test_inserted_and_loaded_structs_hold_not_loaded(blog: Repo) -> None:
    p = await blog.insert(Post(title="new"))
    assert not assoc_loaded(p.comments) and not assoc_loaded(p.author)
    (p,) = await blog.all(from_(Post) | where(title="new") | select(["id", "title"]))
    assert not assoc_loaded(p.comments)


# -- transactions --------------------------------------------------------------------------------------


async def test_preload_inside_a_transaction_sees_its_writes(blog: Repo) -> None:
    async with blog.transaction():
        await blog.query("INSERT INTO bl_comments (text, post_id) VALUES ('c8', 3)")
        p3 = await blog.preload(await blog.get_or_raise(Post, 3), "comments", "author", "tags")
        assert texts(p3.comments) == ["c8"] and p3.author is None and p3.tags == []
        (p1,) = await blog.all(from_(Post) | where(id=1) | preload("comments", "tags", "permalink"))
        assert texts(p1.comments) == ["c1", "c2", "c3"]


async def test_preload_results_are_copies_and_keep_meta(blog: Repo) -> None:
    p1 = await blog.get_or_raise(Post, 1)
    got = await blog.preload(p1, "comments")
    assert got is not p1 and got.id == p1.id and got.title == p1.title
    assert meta(got).state == "loaded" and meta(got).source == "bl_posts"
    assert not assoc_loaded(p1.comments)
