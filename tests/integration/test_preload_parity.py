"""Ecto parity for preloads (issue 19): preload functions and ``on_preloader_spawn``.

Preload functions (Ecto's ``preload: [comments: fn post_ids -> ... end]``): given the parents'
keys (unique, ``None`` skipped, only of parents still to load) they return the children, matched
to their parents by the association's related key, in the order returned; many_to_many ones
return ``(owner key, struct)`` tuples. ``on_preloader_spawn`` (Ecto 3.11) runs at the start of
every parallel preload task, and not when the associations load in turn.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncecto import Repo, assoc_loaded
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import from_, join, order_by, preload, select, where
from asyncecto.schema import Association

from ..assoc_schemas import Comment, Permalink, Post, Tag, User
from .blog_data import seed_blog, texts


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


async def all_posts(repo: Repo) -> list[Post]:
    return await repo.all(from_(Post) | order_by("id"))


def ids(structs: Any) -> list[int]:
    return [s.id for s in structs]


# -- preload functions ------------------------------------------------------------------------


async def test_one_arity_function_matches_children_by_foreign_key_in_the_order_returned(blog: Repo) -> None:
    # Ecto's "preload with 1-arity function": the function may return rows of other parents
    # (ignored) and rows with a nil key; each parent gets its rows in the order returned
    everything = await blog.all(from_(Comment) | order_by(desc="id"))
    p1, p2, p3, _p4 = await all_posts(blog)
    seen: list[list[int]] = []

    def comments(post_ids: list[int]) -> list[Comment]:
        seen.append(post_ids)
        return everything

    pe3, pe1, pe2 = await blog.preload([p3, p1, p2], {"comments": comments})
    assert ids(pe1.comments) == [3, 2, 1]
    assert ids(pe2.comments) == [5, 4]
    assert pe3.comments == []
    assert sorted(seen[0]) == [1, 2, 3] and len(seen) == 1  # one call, each key once
    assert not assoc_loaded(p1.comments)  # the caller's structs are not changed


async def test_async_function_may_use_the_repo_from_a_query_preload(blog: Repo) -> None:
    async def approved(post_ids: list[int]) -> list[Comment]:
        q = from_(Comment) | where(lambda c: c.post_id.in_(post_ids) & (c.approved == True)) | order_by("id")  # noqa: E712
        return await blog.all(q)

    p1, p2, p3, p4 = await blog.all(from_(Post) | order_by("id") | preload({"comments": approved}))
    assert texts(p1.comments) == ["c1", "c3"]
    assert texts(p2.comments) == ["c5"]
    assert p3.comments == [] and p4.comments == []


async def test_two_arity_function_gets_the_association(blog: Repo) -> None:
    # Ecto's "preload with 2-arity function": fn(ids, assoc) builds its own query from the reflection
    given: list[Association] = []

    async def generic(parent_ids: list[int], a: Association) -> list[Any]:
        given.append(a)
        key = a.related_key
        assert key is not None
        return await blog.all(from_(a.related) | where(lambda r: getattr(r, key).in_(parent_ids)) | order_by("id"))

    p1 = (await all_posts(blog))[0]
    loaded = await blog.preload(p1, {"comments": generic})
    assert ids(loaded.comments) == [1, 2, 3]
    assert given[0].name == "comments" and given[0].related is Comment


async def test_belongs_to_and_has_one_functions_match_by_the_related_key(blog: Repo) -> None:
    users = {u.id: u for u in await blog.all(User)}
    links = await blog.all(Permalink)
    asked: dict[str, list[int]] = {}

    def authors(user_ids: list[int]) -> list[User]:
        asked["author"] = sorted(user_ids)
        return [users[i] for i in user_ids]  # matched by the user's primary key

    p1, p2, p3, p4 = await blog.preload(await all_posts(blog), {"author": authors, "permalink": lambda _: links})
    assert asked["author"] == [1, 2]  # post 3 has no author: its nil key is not passed
    assert p1.author is users[1] and p2.author is users[2] and p3.author is None and p4.author is users[1]
    assert p1.permalink is not None and p1.permalink.url == "/p1"
    assert p2.permalink is not None and p2.permalink.url == "/p2"
    assert p3.permalink is None and p4.permalink is None


async def test_function_not_called_without_keys_and_only_for_parents_still_to_load(blog: Repo) -> None:
    calls: list[list[int]] = []

    def authors(user_ids: list[int]) -> list[User]:
        calls.append(user_ids)
        return []

    def comments(post_ids: list[int]) -> list[Comment]:
        calls.append(post_ids)
        return []

    p1, p2, p3, _p4 = await all_posts(blog)
    assert (await blog.preload(p3, {"author": authors})).author is None
    assert calls == []  # nil owner key: nothing to fetch
    half = await blog.preload(p1, "comments")
    calls.clear()
    got = await blog.preload([half, p2], {"comments": comments})
    assert calls == [[2]]  # p1's comments were loaded already
    assert ids(got[0].comments) == ids(half.comments) and got[1].comments == []
    calls.clear()
    forced = await blog.preload(half, {"comments": comments}, force=True)
    assert calls == [[1]] and forced.comments == []


async def test_many_to_many_function_must_return_owner_key_and_struct_tuples(blog: Repo) -> None:
    posts = await all_posts(blog)

    async def wrong(post_ids: list[int]) -> list[Tag]:
        q = (
            from_(Tag)
            | join("inner", "bl_posts_tags", on=lambda t, pt: pt.tag_id == t.id)
            | where(lambda t, pt: pt.post_id.in_(post_ids))
            | order_by("id")
        )
        return await blog.all(q)

    with pytest.raises(ArgumentError) as err:
        await blog.preload(posts, {"tags": wrong})
    message = str(err.value)
    assert message.startswith("invalid custom preload for 'tags' on Post.")
    assert "select(lambda r, j: (j.post_id, r))" in message
    assert "Expected a tuple with the key and a Tag struct, got: Tag(" in message

    async def right(post_ids: list[int]) -> list[tuple[int, Tag]]:
        q = (
            from_(Tag)
            | join("inner", "bl_posts_tags", on=lambda t, pt: pt.tag_id == t.id)
            | where(lambda t, pt: pt.post_id.in_(post_ids))
            | order_by(desc="id")
            | select(lambda t, pt: (pt.post_id, t))
        )
        rows: list[Any] = await blog.all(q)
        return rows

    p1, p2, p3, p4 = await blog.preload(posts, {"tags": right})
    assert [t.name for t in p1.tags] == ["elixir", "python"]  # as returned
    assert [t.name for t in p2.tags] == ["python"]
    assert p3.tags == [] and p4.tags == []


async def test_tuples_work_for_every_kind(blog: Repo) -> None:
    c4, c7 = await blog.all(from_(Comment) | where(lambda c: c.id.in_([4, 7])) | order_by("id"))
    p1, p2, _p3, p4 = await blog.preload(await all_posts(blog), {"comments": lambda _: [(1, c7), (2, c4)]})
    assert ids(p1.comments) == [7] and ids(p2.comments) == [4] and p4.comments == []


async def test_functions_nest_with_other_preloads(blog: Repo) -> None:
    comments = await blog.all(from_(Comment) | order_by("id"))
    users = await blog.all(User)
    q = from_(Post) | order_by("id") | preload({"comments": (lambda _: comments, "author")}, "permalink")
    p1, p2, _p3, _p4 = await blog.all(q)
    assert [(c.text, c.author.name if c.author else None) for c in p1.comments] == [
        ("c1", "bob"),
        ("c2", "cid"),
        ("c3", "bob"),
    ]
    assert p1.permalink is not None and p1.permalink.url == "/p1"
    # the function's own structs are not filled in place (the caller may hold them)
    assert not any(assoc_loaded(c.author) for c in comments)

    # a function beneath a plain association
    p1b = await blog.preload(
        p1, {"comments": {"post": lambda post_ids: [p for p in [p1, p2] if p.id in post_ids]}}, force=True
    )
    assert all(c.post is p1 for c in p1b.comments)
    # through the repo.preload path, a function beside a query and a name
    q_users = from_(User) | order_by("id")
    loaded = await blog.preload(
        [p1, p2], {"comments": (lambda _: comments, {"author": q_users}), "author": lambda _: users}, force=True
    )
    assert loaded[1].author is not None and loaded[1].author.name == "bob"
    assert [c.author.name if c.author else None for c in loaded[1].comments] == ["ann", None]


async def test_function_for_a_through_association_loads_its_last_hop(blog: Repo) -> None:
    # as Ecto: the function (like a query) is given to the chain's last hop, here comments -> author
    users = await blog.all(from_(User) | order_by("id"))
    asked: list[list[int]] = []

    def authors(user_ids: list[int]) -> list[User]:
        asked.append(sorted(user_ids))
        return [u for u in users if u.id in user_ids]

    p1, p2, _p3, _p4 = await blog.preload(await all_posts(blog), {"commenters": authors})
    assert asked == [[1, 2, 3]]
    assert sorted(u.name or "" for u in p1.commenters) == ["bob", "cid"]
    assert [u.name for u in p2.commenters] == ["ann"]
    assert texts(p1.comments) == ["c1", "c2", "c3"]  # the intermediates are loaded too


async def test_function_beneath_a_join_preload(blog: Repo) -> None:
    users = await blog.all(User)
    q = (
        from_(Post)
        | join("inner", lambda p: p.comments, as_="c")
        | where(lambda p, c: p.id == 1)
        | preload(lambda p, c: {"comments": (c, {"author": lambda _: users})})
    )
    (p1,) = await blog.all(q)
    assert sorted((c.text or "", c.author.name if c.author else "") for c in p1.comments) == [
        ("c1", "bob"),
        ("c2", "cid"),
        ("c3", "bob"),
    ]


async def test_function_result_that_is_not_a_list_is_refused(blog: Repo) -> None:
    p1 = (await all_posts(blog))[0]
    for bad, shown in ((None, "None (NoneType)"), ({1: []}, "(dict)"), ("abc", "'abc' (str)")):
        with pytest.raises(ArgumentError) as err:
            await blog.preload(p1, {"comments": lambda _, bad=bad: bad})
        message = str(err.value)
        assert message.startswith("invalid custom preload for 'comments' on Post: the preload function returned")
        assert shown in message and "must return a list of Comment structs" in message
        assert "fix: return the rows, e.g. `return await repo.all(query)`" in message

    one = (await blog.all(Comment))[0]
    with pytest.raises(ArgumentError, match=r"returned Comment\(.*\(Comment\); it must return a list"):
        await blog.preload(p1, {"comments": lambda _: one})  # a struct, not a list of them


async def test_function_result_entries_must_be_related_structs(blog: Repo) -> None:
    p1 = (await all_posts(blog))[0]
    with pytest.raises(ArgumentError) as err:
        await blog.preload(p1, {"comments": lambda _: [p1]})
    assert str(err.value).startswith(
        "invalid custom preload for 'comments' on Post: the preload function must return Comment structs "
        "or (owner key, Comment) tuples, got Post("
    )
    with pytest.raises(ArgumentError, match=r"got \{'post_id': 1\} in its result"):
        await blog.preload(p1, {"comments": lambda _: [{"post_id": 1}]})


async def test_function_with_a_signature_it_cannot_be_called_with_is_refused(blog: Repo) -> None:
    p1 = (await all_posts(blog))[0]

    def three(a: Any, b: Any, c: Any) -> list[Any]:
        return []

    def none() -> list[Any]:
        return []

    for fn in (three, none):
        with pytest.raises(
            ArgumentError,
            match=r"the preload function for 'comments' on Post must take the parents' keys \(fn\(ids\)\)",
        ):
            await blog.preload(p1, {"comments": fn})


async def test_function_errors_propagate_as_themselves(blog: Repo) -> None:
    async def boom(_: list[int]) -> list[Comment]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await blog.all(from_(Post) | preload({"comments": boom}, "author", "permalink"))


async def test_function_listed_twice_is_refused_like_a_query() -> None:
    def fn(_: list[int]) -> list[Comment]:
        return []

    def other(_: list[int]) -> list[Comment]:
        return []

    assert from_(Post) | preload({"comments": fn}, {"comments": fn})  # the same one merges
    with pytest.raises(QueryError, match="preloaded twice with a custom query"):
        from_(Post) | preload({"comments": fn}, {"comments": other})


# -- on_preloader_spawn -----------------------------------------------------------------------

trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)


class Spawns:
    """A hook recording the task it runs in and setting the trace the task's work then sees."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.seen: list[tuple[str, str | None]] = []  # (association, trace seen by its function)

    def __call__(self) -> None:
        task = asyncio.current_task()
        self.tasks.append(task)
        trace.set(f"span-{len(self.tasks)}")

    def fn(self, name: str) -> Any:
        async def load(keys: list[int], a: Association) -> list[Any]:
            self.seen.append((name, trace.get()))
            key = a.related_key
            assert key is not None
            return await self_repo[0].all(from_(a.related) | where(lambda r: getattr(r, key).in_(keys)))

        return load


self_repo: list[Repo] = []


@pytest.fixture
async def real_blog(repo: Repo) -> AsyncIterator[Repo]:
    """The blog, committed for real (parallel preloads need connections of their own)."""
    await seed_blog(repo)
    self_repo[:] = [repo]
    yield repo
    self_repo.clear()


@pytest.mark.no_sandbox
async def test_spawn_hook_runs_in_each_parallel_task(real_blog: Repo) -> None:
    hook = Spawns()
    posts = await all_posts(real_blog)
    spec = {"comments": hook.fn("comments"), "author": hook.fn("author"), "permalink": hook.fn("permalink")}
    loaded = await real_blog.preload(posts, spec, on_preloader_spawn=hook)
    me = asyncio.current_task()
    assert len(hook.tasks) == 3 and len(set(map(id, hook.tasks))) == 3 and me not in hook.tasks
    # what the hook set is seen by that task's work, and by no other
    assert sorted(s or "" for _, s in hook.seen) == ["span-1", "span-2", "span-3"]
    assert trace.get() is None
    assert texts(loaded[0].comments) == ["c1", "c2", "c3"] and loaded[0].author is not None


@pytest.mark.no_sandbox
async def test_async_hook_and_query_preloads_through_all(real_blog: Repo) -> None:
    calls: list[str] = []

    async def hook() -> None:
        await asyncio.sleep(0)
        calls.append("spawned")

    q = from_(Post) | order_by("id") | preload("comments", "tags")
    p1, *_ = await real_blog.all(q, on_preloader_spawn=hook)
    assert calls == ["spawned", "spawned"]
    assert texts(p1.comments) == ["c1", "c2", "c3"] and sorted(t.name or "" for t in p1.tags) == ["elixir", "python"]


@pytest.mark.no_sandbox
async def test_spawn_hook_at_every_parallel_level(real_blog: Repo) -> None:
    calls: list[str] = []
    posts = await all_posts(real_blog)
    await real_blog.preload(
        posts, {"comments": ["author", "post"], "permalink": []}, on_preloader_spawn=lambda: calls.append("x")
    )
    assert len(calls) == 4  # comments + permalink, then the comments' author + post


@pytest.mark.no_sandbox
async def test_spawn_hook_not_called_when_preloads_run_in_turn(real_blog: Repo) -> None:
    calls: list[str] = []

    def hook() -> None:
        calls.append("x")

    posts = await all_posts(real_blog)
    # one association only
    await real_blog.preload(posts, "comments", on_preloader_spawn=hook)
    # in_parallel=False
    await real_blog.preload(posts, ["comments", "author"], in_parallel=False, on_preloader_spawn=hook)
    # inside a transaction: in turn on the transaction's connection (Ecto: checked_out?)
    async with real_blog.transaction():
        got = await real_blog.preload(posts, ["comments", "author", "tags"], on_preloader_spawn=hook)
        assert texts(got[0].comments) == ["c1", "c2", "c3"]
    async with real_blog.checkout():
        await real_blog.preload(posts, ["comments", "author"], on_preloader_spawn=hook)
    # only one of the two still has keys to fetch (Ecto counts the queries to run)
    with_comments = await real_blog.preload(posts, "comments")
    await real_blog.preload(with_comments, ["comments", "author"], on_preloader_spawn=hook)
    assert calls == []
    # and the same calls outside, in parallel, do call it
    await real_blog.preload(posts, ["comments", "author"], on_preloader_spawn=hook)
    assert calls == ["x", "x"]


@pytest.mark.no_sandbox
async def test_repo_option_and_per_call_override(real_blog: Repo, database_url: str) -> None:
    repo_calls: list[str] = []
    call_calls: list[str] = []
    async with Repo(database_url, pool_size=3, on_preloader_spawn=lambda: repo_calls.append("repo")) as other:
        posts = await all_posts(other)
        await other.preload(posts, ["comments", "author"])
        assert repo_calls == ["repo", "repo"]
        await other.preload(posts, ["comments", "author"], on_preloader_spawn=lambda: call_calls.append("call"))
        assert call_calls == ["call", "call"] and len(repo_calls) == 2
        await other.all(from_(Post) | preload("comments", "author"), on_preloader_spawn=None)  # off for this call
        assert len(repo_calls) == 2
        await other.all(from_(Post) | preload("comments", "author"))
        assert len(repo_calls) == 4


@pytest.mark.no_sandbox
async def test_spawn_hook_errors(real_blog: Repo, database_url: str) -> None:
    posts = await all_posts(real_blog)
    with pytest.raises(ArgumentError) as err:
        await real_blog.preload(posts, "comments", on_preloader_spawn="trace")
    assert str(err.value).startswith(
        "on_preloader_spawn must be a function taking no arguments (sync or async), or None; got 'trace'"
    )
    with pytest.raises(ArgumentError, match="on_preloader_spawn must be a function"):
        Repo(database_url, on_preloader_spawn=42)

    def failing() -> None:
        raise LookupError("no tracer")

    with pytest.raises(LookupError, match="no tracer"):
        await real_blog.preload(posts, ["comments", "author"], on_preloader_spawn=failing)
    # the repo is fine afterwards
    assert texts((await real_blog.preload(posts, "comments"))[0].comments) == ["c1", "c2", "c3"]
