"""Ecto's newer changeset features through the Repo: cast_assoc/cast_embed with ``sort_param`` and
``drop_param`` (a form's "add", "reorder" and "remove" buttons), ``with_`` taking the position,
and changeset functions as pipe steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.changeset import (
    Changeset,
    cast,
    cast_assoc,
    cast_embed,
    get_assoc,
    merge,
    put_change,
    reorder_assoc,
    traverse_errors,
    validate_required,
)
from asyncecto.errors import InvalidChangesetError

from ..assoc_schemas import Comment, Post
from ..schemas import Profile

pytestmark = pytest.mark.asyncio


async def rows(admin: asyncpg.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(sql)]


def comment_cs(comment: Comment, params: Mapping[str, Any]) -> Changeset[Comment]:
    return cast(comment, params, ["text"]) | validate_required("text")


async def loaded_post(repo: Repo, texts: list[str]) -> Post:
    post = await repo.insert(Post(title="p", comments=[Comment(text=t) for t in texts]))
    return await repo.preload(await repo.get_or_raise(Post, post.id), "comments")


async def test_insert_writes_children_in_sort_param_order_without_dropped_ones(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    params = {
        "title": "new",
        "comments": {"0": {"text": "a"}, "1": {"text": "b"}, "2": {"text": "c"}},
        "comments_sort": ["2", "0", "1"],
        "comments_drop": ["0"],
    }
    cs = cast(Post(), params, ["title"]) | cast_assoc(
        "comments", with_=comment_cs, sort_param="comments_sort", drop_param="comments_drop"
    )
    post = await repo.insert(cs)
    assert [c.text for c in post.comments] == ["c", "b"]
    assert await rows(admin, "SELECT text FROM bl_comments ORDER BY id") == [("c",), ("b",)]


async def test_update_reorders_drops_and_adds_through_sort_and_drop_params(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await loaded_post(repo, ["a", "b", "c"])
    a, b, c = post.comments
    params = {
        "comments": {"0": {"id": str(a.id), "text": "a"}, "1": {"id": str(b.id), "text": "b2"}, "2": {"id": str(c.id)}},
        "sort": ["1", "new", "0"],  # "new": an unknown index, a new entry ("add" button)
        "drop": ["2"],  # c is dropped: on_replace="delete" deletes its row
    }

    def with_position(comment: Comment, p: Mapping[str, Any], position: int | None) -> Changeset[Comment]:
        return cast(comment, {"text": f"#{position}", **p}, ["text"]) | validate_required("text")

    cs = cast(post, params, []) | cast_assoc("comments", with_=with_position, sort_param="sort", drop_param="drop")
    assert [x.text for x in get_assoc(cs, "comments", "struct")] == ["b2", "#1", "a"]
    updated = await repo.update(cs)
    assert [x.text for x in updated.comments] == ["b2", "#1", "a"]
    assert updated.comments[0].id == b.id and updated.comments[2].id == a.id
    assert await rows(admin, "SELECT id, text FROM bl_comments ORDER BY id") == [
        (a.id, "a"),
        (b.id, "b2"),
        (updated.comments[1].id, "#1"),
    ]


async def test_dropping_every_entry_of_a_required_association_is_refused_without_sql(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await loaded_post(repo, ["a"])
    params = {"comments": {"0": {"id": str(post.comments[0].id)}}, "drop": ["0"]}
    cs = cast(post, params, []) | cast_assoc("comments", with_=comment_cs, drop_param="drop", required=True)
    with pytest.raises(InvalidChangesetError) as info:
        await repo.update(cs)
    assert traverse_errors(info.value.changeset) == {"comments": ["can't be blank"]}
    assert await rows(admin, "SELECT text FROM bl_comments") == [("a",)]


async def test_embeds_many_sorted_and_dropped_then_read_back(repo: Repo) -> None:
    params = {"name": "ada", "places": [{"label": "a"}, {"label": "b"}, {"label": "c"}], "s": [1, 2, 0], "d": [2]}
    cs = cast(Profile(), params, ["name"]) | cast_embed("places", sort_param="s", drop_param="d")
    profile = await repo.insert(cs)
    stored = await repo.get_or_raise(Profile, profile.id)
    assert [p.label for p in stored.places] == ["b", "a"]


async def test_pipe_steps_and_merge_through_insert(repo: Repo, admin: asyncpg.Connection) -> None:
    base = Post()
    form = cast(base, {"title": "t", "comments": [{"text": "x"}]}, ["title"]) | cast_assoc("comments")
    extra = cast(base, {"visits": "3"}, ["visits"]) | put_change("title", "merged")
    post = await repo.insert(merge(form, extra))
    assert (post.title, post.visits, [c.text for c in post.comments]) == ("merged", 3, ["x"])
    assert await rows(admin, "SELECT title, visits FROM bl_posts") == [("merged", 3)]


async def test_reorder_assoc_writes_updates_before_inserts(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, ["a", "b"])
    a, b = post.comments
    params = {"comments": [{"text": "new"}, {"id": b.id, "text": "b2"}]}
    cs = cast(post, params, []) | cast_assoc("comments", with_=comment_cs) | reorder_assoc("comments")
    updated = await repo.update(cs)
    assert [c.text for c in updated.comments] == ["b2", "new"]
    assert await rows(admin, "SELECT id, text FROM bl_comments ORDER BY id") == [
        (b.id, "b2"),
        (updated.comments[1].id, "new"),
    ]
    assert a.id not in {c.id for c in updated.comments}
