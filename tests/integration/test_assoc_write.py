"""Writing associations with their parent: nested inserts, cast_assoc/put_assoc with every
``on_replace``, many_to_many join rows, child errors on the parent, schema ``on_delete``."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg
import attrs
import pytest

from asyncecto import (
    ConstraintError,
    InvalidChangesetError,
    Repo,
    belongs_to,
    has_many,
    has_one,
    many_to_many,
    meta,
    schema,
)
from asyncecto.changeset import (
    Changeset,
    apply_changes,
    cast,
    cast_assoc,
    change,
    no_assoc_constraint,
    put_assoc,
    traverse_errors,
    unique_constraint,
    validate_required,
)

from ..assoc_schemas import Comment, Permalink, Post, PostTagLink, Profile, Tag, User

pytestmark = pytest.mark.asyncio


async def rows(admin: asyncpg.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(sql)]


def comment_cs(comment: Comment, params: Mapping[str, Any]) -> Changeset[Comment]:
    return cast(comment, params, ["text"]) | validate_required("text")


def tag_cs(tag: Tag, params: Mapping[str, Any]) -> Changeset[Tag]:
    return cast(tag, params, ["name"]) | validate_required("name") | unique_constraint("name", name="bl_tags_name_key")


# -- inserting structs with associations ------------------------------------------------------


async def test_insert_writes_loaded_children_parents_and_has_one(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(
        Post(
            title="hello",
            author=User(name="ann"),
            comments=[Comment(text="a"), Comment(text="b")],
            permalink=Permalink(url="/hello"),
        )
    )
    assert post.author is not None and post.author.id is not None
    assert post.author_id == post.author.id
    assert [c.text for c in post.comments] == ["a", "b"]
    assert all(c.post_id == post.id and meta(c).state == "loaded" for c in post.comments)
    assert post.permalink is not None and post.permalink.post_id == post.id
    assert await rows(admin, "SELECT text, post_id FROM bl_comments ORDER BY id") == [("a", post.id), ("b", post.id)]
    assert await rows(admin, "SELECT name FROM bl_users") == [("ann",)]
    assert await rows(admin, "SELECT url, post_id FROM bl_permalinks") == [("/hello", post.id)]


async def test_insert_with_empty_or_unloaded_associations_writes_only_the_parent(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await repo.insert(Post(title="alone", comments=[]))
    assert post.comments == []
    other = await repo.insert(Post(title="other"))
    assert not isinstance(typing.cast(object, other.comments), list)  # still NotLoaded
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(2,)]


async def test_insert_with_a_loaded_child_moves_it(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await repo.insert(Post(title="first", comments=[Comment(text="c")]))
    second = await repo.insert(Post(title="second", comments=[first.comments[0]]))
    assert second.comments[0].id == first.comments[0].id
    assert await rows(admin, "SELECT post_id FROM bl_comments") == [(second.id,)]


async def test_insert_many_to_many_with_new_and_existing_tags(repo: Repo, admin: asyncpg.Connection) -> None:
    old = await repo.insert(Tag(name="old"))
    post = await repo.insert(Post(title="t", tags=[old, Tag(name="new")]))
    assert sorted(t.name for t in post.tags if t.name) == ["new", "old"]
    links = await rows(admin, "SELECT post_id, tag_id FROM bl_posts_tags ORDER BY tag_id")
    assert links == [(post.id, old.id), (post.id, post.tags[1].id)]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(2,)]


async def test_join_schema_rows_are_inserted_through_the_schema(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(Post(title="p"))
    tag = await repo.insert(Tag(name="t", posts=[post]))
    assert [p.id for p in tag.posts] == [post.id]
    assert await rows(admin, "SELECT post_id, tag_id FROM bl_posts_tags") == [(post.id, tag.id)]
    assert await repo.all(PostTagLink) != []


# -- cast_assoc -------------------------------------------------------------------------------


async def loaded_post(repo: Repo, texts: list[str]) -> Post:
    post = await repo.insert(Post(title="p", comments=[Comment(text=t) for t in texts]))
    fresh = await repo.get_or_raise(Post, post.id)
    return await repo.preload(fresh, "comments", "permalink", "tags", "author")


async def test_cast_assoc_updates_matches_inserts_new_and_deletes_left_out(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await loaded_post(repo, ["a", "b"])
    a, _b = post.comments
    params = {"comments": [{"id": a.id, "text": "a2"}, {"text": "c"}]}
    updated = await repo.update(cast(post, params, []) | cast_assoc("comments", with_=comment_cs))
    assert [c.text for c in updated.comments] == ["a2", "c"]
    assert updated.comments[0].id == a.id
    assert await rows(admin, "SELECT text, post_id FROM bl_comments ORDER BY id") == [
        ("a2", post.id),
        ("c", post.id),
    ]


async def test_cast_assoc_invalid_child_sends_no_sql(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, ["a"])
    seen: list[str] = []
    repo.telemetry.attach(lambda event: seen.append(event.sql))
    cs = cast_assoc(cast(post, {"comments": [{"text": ""}]}, []), "comments", with_=comment_cs)
    assert not cs.valid
    with pytest.raises(InvalidChangesetError) as info:
        await repo.update(cs)
    await repo.telemetry.flush()
    assert seen == []
    assert traverse_errors(info.value.changeset) == {"comments": [{"text": ["can't be blank"]}]}
    assert await rows(admin, "SELECT text FROM bl_comments") == [("a",)]


async def test_child_constraint_error_is_reported_on_the_parent_and_rolls_back(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await repo.insert(Tag(name="taken"))
    cs = cast(Post(), {"title": "new", "tags": [{"name": "fine"}, {"name": "taken"}]}, ["title"])
    cs = cast_assoc(cs, "tags", with_=tag_cs)
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    bad = info.value.changeset
    assert bad.action == "insert" and not bad.valid
    assert traverse_errors(bad) == {"tags": [{}, {"name": ["has already been taken"]}]}
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]
    assert await rows(admin, "SELECT name FROM bl_tags") == [("taken",)]
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(0,)]


async def test_undeclared_child_constraint_raises_constraint_error_and_rolls_back(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await repo.insert(Tag(name="taken"))
    with pytest.raises(ConstraintError, match="bl_tags_name_key"):
        await repo.insert(Post(title="x", tags=[Tag(name="taken")]))
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]


async def test_cast_assoc_on_an_unloaded_association_raises(repo: Repo) -> None:
    post = await repo.insert(Post(title="p"))
    loaded = await repo.get_or_raise(Post, post.id)
    with pytest.raises(ValueError, match="Please preload your associations"):
        cast_assoc(cast(loaded, {"comments": []}, []), "comments")


# -- on_replace for has_many ----------------------------------------------------------------


@schema("bl_posts")
class NilifyPost:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many(Comment, foreign_key="post_id", on_replace="nilify")


@schema("bl_posts")
class StrictPost:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many(Comment, foreign_key="post_id")
    marked: list[Comment] = has_many(Comment, foreign_key="post_id", on_replace="mark_as_invalid")


@schema("bl_posts")
class LenientPost:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many(Comment, foreign_key="post_id", on_replace="delete_if_exists")


async def test_on_replace_nilify_detaches_left_out_children(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(NilifyPost(title="p", comments=[Comment(text="a"), Comment(text="b")]))
    loaded = await repo.preload(await repo.get_or_raise(NilifyPost, post.id), "comments")
    updated = await repo.update(put_assoc(change(loaded), "comments", [loaded.comments[1]]))
    assert [c.text for c in updated.comments] == ["b"]
    assert await rows(admin, "SELECT text, post_id FROM bl_comments ORDER BY id") == [("a", None), ("b", post.id)]


async def test_on_replace_delete_if_exists_tolerates_a_child_already_gone(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await repo.insert(LenientPost(title="p", comments=[Comment(text="a")]))
    loaded = await repo.preload(await repo.get_or_raise(LenientPost, post.id), "comments")
    await admin.execute("DELETE FROM bl_comments")
    updated = await repo.update(put_assoc(change(loaded), "comments", [Comment(text="new")]))
    assert [c.text for c in updated.comments] == ["new"]


async def test_on_replace_delete_raises_stale_when_the_child_is_gone(repo: Repo, admin: asyncpg.Connection) -> None:
    from asyncecto import StaleEntryError

    post = await loaded_post(repo, ["a"])
    await admin.execute("DELETE FROM bl_comments")
    with pytest.raises(StaleEntryError):
        await repo.update(put_assoc(change(post), "comments", []))
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(1,)]


async def test_on_replace_raise_refuses_before_any_sql(repo: Repo) -> None:
    post = await repo.insert(StrictPost(title="p", comments=[Comment(text="a")]))
    loaded = await repo.preload(await repo.get_or_raise(StrictPost, post.id), "comments")
    with pytest.raises(ValueError, match="on_replace option of this relation is set to 'raise'") as info:
        put_assoc(change(loaded), "comments", [])
    assert 'has_many(Comment, on_replace="delete")' in str(info.value)


async def test_on_replace_mark_as_invalid_adds_an_error(repo: Repo) -> None:
    post = await repo.insert(StrictPost(title="p", marked=[Comment(text="a")]))
    loaded = await repo.preload(await repo.get_or_raise(StrictPost, post.id), "marked")
    cs = cast_assoc(cast(loaded, {"marked": []}, []), "marked")
    assert not cs.valid
    assert traverse_errors(cs) == {"marked": ["is invalid"]}


# -- has_one and belongs_to -------------------------------------------------------------------


@schema("bl_users")
class UpdatingUser:
    id: int | None = None
    name: str | None = None
    profile: Profile | None = has_one(Profile, foreign_key="user_id", on_replace="update")


@schema("bl_users")
class NilifyUser:
    id: int | None = None
    name: str | None = None
    profile: Profile | None = has_one(Profile, foreign_key="user_id", on_replace="nilify")


async def test_has_one_replace_deletes_the_old_entry_first(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, [])
    first = await repo.update(put_assoc(change(post), "permalink", Permalink(url="/1")))
    second = await repo.update(put_assoc(change(first), "permalink", {"url": "/2"}))
    assert second.permalink is not None and second.permalink.url == "/2"
    assert await rows(admin, "SELECT url, post_id FROM bl_permalinks") == [("/2", post.id)]
    gone = await repo.update(put_assoc(change(second), "permalink", None))
    assert gone.permalink is None
    assert await rows(admin, "SELECT count(*) FROM bl_permalinks") == [(0,)]


async def test_has_one_on_replace_update_changes_the_current_entry(repo: Repo, admin: asyncpg.Connection) -> None:
    user = await repo.insert(UpdatingUser(name="u", profile=Profile(bio="old")))
    loaded = await repo.preload(await repo.get_or_raise(UpdatingUser, user.id), "profile")
    cs = cast_assoc(cast(loaded, {"profile": {"bio": "new"}}, []), "profile")
    updated = await repo.update(cs)
    assert user.profile is not None and updated.profile is not None and updated.profile.id == user.profile.id
    assert await rows(admin, "SELECT bio FROM bl_profiles") == [("new",)]


async def test_has_one_on_replace_nilify(repo: Repo, admin: asyncpg.Connection) -> None:
    user = await repo.insert(NilifyUser(name="u", profile=Profile(bio="a")))
    loaded = await repo.preload(await repo.get_or_raise(NilifyUser, user.id), "profile")
    await repo.update(put_assoc(change(loaded), "profile", Profile(bio="b")))
    assert await rows(admin, "SELECT bio, user_id FROM bl_profiles ORDER BY id") == [("a", None), ("b", user.id)]


@schema("bl_comments")
class Reply:
    id: int | None = None
    text: str | None = None
    post: Post | None = belongs_to(Post, on_replace="delete")
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        post_id: int | None = None


async def test_belongs_to_parent_is_inserted_first_and_replaced(repo: Repo, admin: asyncpg.Connection) -> None:
    reply = await repo.insert(Reply(text="r", post=Post(title="parent")))
    assert reply.post is not None and reply.post_id == reply.post.id
    loaded = await repo.preload(await repo.get_or_raise(Reply, reply.id), "post")
    moved = await repo.update(cast_assoc(cast(loaded, {"post": {"title": "other"}}, []), "post"))
    assert moved.post is not None and moved.post.title == "other"
    assert await rows(admin, "SELECT title FROM bl_posts") == [("other",)]  # the replaced parent was deleted
    assert await rows(admin, "SELECT post_id FROM bl_comments") == [(moved.post.id,)]


async def test_belongs_to_put_nil_clears_the_key(repo: Repo, admin: asyncpg.Connection) -> None:
    comment = await repo.insert(Comment(text="c", post=Post(title="p")))
    loaded = await repo.preload(await repo.get_or_raise(Comment, comment.id), "post")
    with pytest.raises(ValueError, match="on_replace"):
        put_assoc(change(loaded), "post", None)  # Comment.post keeps the default on_replace="raise"
    reply = await repo.preload(await repo.get_or_raise(Reply, comment.id), "post")
    cleared = await repo.update(put_assoc(change(reply), "post", None))
    assert cleared.post is None and cleared.post_id is None
    assert await rows(admin, "SELECT post_id FROM bl_comments") == [(None,)]


# -- many_to_many -----------------------------------------------------------------------------


async def test_many_to_many_put_assoc_links_and_unlinks_join_rows_only(repo: Repo, admin: asyncpg.Connection) -> None:
    x, y = await repo.insert(Tag(name="x")), await repo.insert(Tag(name="y"))
    post = await loaded_post(repo, [])
    linked = await repo.update(put_assoc(change(post), "tags", [x, y]))
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags ORDER BY tag_id") == [(x.id,), (y.id,)]
    kept = await repo.update(put_assoc(change(linked), "tags", [linked.tags[1], {"name": "z"}]))
    assert [t.name for t in kept.tags] == ["y", "z"]
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(2,)]
    assert await rows(admin, "SELECT name FROM bl_tags ORDER BY name") == [("x",), ("y",), ("z",)]  # x still there


async def test_many_to_many_cast_assoc_updates_a_linked_tag(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(Post(title="p", tags=[Tag(name="x")]))
    loaded = await repo.preload(await repo.get_or_raise(Post, post.id), "tags")
    tag = loaded.tags[0]
    updated = await repo.update(cast_assoc(cast(loaded, {"tags": [{"id": tag.id, "name": "x2"}]}, []), "tags"))
    assert [t.name for t in updated.tags] == ["x2"]
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(1,)]  # no second join row


# -- nested relations --------------------------------------------------------------------------


async def test_nested_children_are_written_in_one_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    user = await repo.insert(User(name="u", posts=[Post(title="p", comments=[Comment(text="deep")])]))
    post = user.posts[0]
    assert post.author_id == user.id
    assert post.comments[0].post_id == post.id
    assert await rows(admin, "SELECT text FROM bl_comments") == [("deep",)]


async def test_a_nested_failure_leaves_nothing_behind(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(Tag(name="taken"))
    with pytest.raises(ConstraintError):
        await repo.insert(User(name="u", posts=[Post(title="p", tags=[Tag(name="taken")])]))
    assert await rows(admin, "SELECT count(*) FROM bl_users") == [(0,)]
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]


async def test_update_with_only_association_changes_writes_the_children(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, [])
    updated = await repo.update(put_assoc(change(post), "comments", [Comment(text="n")]))
    assert [c.text for c in updated.comments] == ["n"]
    assert await rows(admin, "SELECT text FROM bl_comments") == [("n",)]


async def test_writes_inside_an_outer_transaction_roll_back_with_it(repo: Repo, admin: asyncpg.Connection) -> None:
    async def work() -> str:
        await repo.insert(Post(title="p", comments=[Comment(text="c")]))
        repo.rollback("undo")

    assert await repo.transaction(work) == "undo"
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]


# -- prefixes ---------------------------------------------------------------------------------


async def test_children_inherit_the_parent_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(Post(title="archived", comments=[Comment(text="old")]), prefix="archive")
    assert meta(post).prefix == "archive" and meta(post.comments[0]).prefix == "archive"
    assert await rows(admin, "SELECT text FROM archive.bl_comments") == [("old",)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]
    loaded = await repo.preload(await repo.get_or_raise(Post, post.id, prefix="archive"), "comments")
    assert [c.text for c in loaded.comments] == ["old"]
    await repo.delete(loaded)
    assert await rows(admin, "SELECT count(*) FROM archive.bl_comments") == [(0,)]


# -- on_delete --------------------------------------------------------------------------------


async def test_on_delete_delete_all_and_nilify_all(repo: Repo, admin: asyncpg.Connection) -> None:
    user = await repo.insert(User(name="u", profile=Profile(bio="b")))
    post = await repo.insert(
        Post(
            title="p",
            author_id=user.id,
            comments=[Comment(text="c", author_id=user.id)],
            permalink=Permalink(url="/p"),
            tags=[Tag(name="t")],
        )
    )
    other = await repo.insert(Post(title="other", comments=[Comment(text="stays")]))
    await repo.delete(post)
    assert await rows(admin, "SELECT text FROM bl_comments") == [("stays",)]
    assert await rows(admin, "SELECT count(*) FROM bl_permalinks") == [(0,)]
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(0,)]
    assert await rows(admin, "SELECT name FROM bl_tags") == [("t",)]
    await repo.insert(Post(title="by u", author_id=user.id))
    await repo.delete(user)  # posts: nilify_all; comments and profile: delete_all
    assert await rows(admin, "SELECT title, author_id FROM bl_posts ORDER BY id") == [
        ("other", None),
        ("by u", None),
    ]
    assert await rows(admin, "SELECT count(*) FROM bl_profiles") == [(0,)]
    assert other.id is not None


async def test_no_assoc_constraint_default_name_from_the_association(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(StrictPost(title="p", comments=[Comment(text="c")]))
    cs = change(post) | no_assoc_constraint("comments")
    with pytest.raises(InvalidChangesetError) as info:
        await repo.delete(cs)
    assert traverse_errors(info.value.changeset) == {"comments": ["are still associated with this entry"]}
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(1,)]


@schema("bl_posts")
class PostWithOneLink:
    id: int | None = None
    permalink: Permalink | None = has_one(Permalink, foreign_key="post_id")
    tags: list[Tag] = many_to_many(Tag, join_through="bl_posts_tags")


async def test_no_assoc_constraint_on_has_one_says_is(repo: Repo) -> None:
    post = await repo.insert(PostWithOneLink(permalink=Permalink(url="/x")))
    with pytest.raises(InvalidChangesetError) as info:
        await repo.delete(change(post) | no_assoc_constraint("permalink"))
    assert traverse_errors(info.value.changeset) == {"permalink": ["is still associated with this entry"]}


@schema("bl_comments")
class EditingReply:
    id: int | None = None
    text: str | None = None
    post: Post | None = belongs_to(Post, on_replace="update")
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        post_id: int | None = None


async def test_belongs_to_on_replace_update_changes_the_current_parent(repo: Repo, admin: asyncpg.Connection) -> None:
    reply = await repo.insert(EditingReply(text="r", post=Post(title="before")))
    loaded = await repo.preload(await repo.get_or_raise(EditingReply, reply.id), "post")
    updated = await repo.update(cast_assoc(cast(loaded, {"post": {"title": "after"}}, []), "post"))
    assert updated.post is not None and updated.post.id == reply.post_id
    assert await rows(admin, "SELECT id, title FROM bl_posts") == [(reply.post_id, "after")]


async def test_a_multi_writes_associations_in_its_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    from asyncecto import Multi, MultiError

    await repo.insert(Tag(name="taken"))
    good = cast_assoc(cast(Post(), {"title": "ok", "comments": [{"text": "c"}]}, ["title"]), "comments")
    bad = cast_assoc(cast(Post(), {"title": "no", "tags": [{"name": "taken"}]}, ["title"]), "tags", with_=tag_cs)
    with pytest.raises(MultiError) as info:
        await repo.transaction(Multi.new() | Multi.insert("good", good) | Multi.insert("bad", bad))
    assert info.value.operation == "bad"
    assert traverse_errors(info.value.value) == {"tags": [{"name": ["has already been taken"]}]}
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]
    changes = await repo.transaction(Multi.new() | Multi.insert("good", good))
    assert [c.text for c in changes["good"].comments] == ["c"]


# -- review regressions -----------------------------------------------------------------------


async def test_has_one_on_replace_update_put_none_detaches_the_entry(repo: Repo, admin: asyncpg.Connection) -> None:
    user = await repo.insert(UpdatingUser(name="u", profile=Profile(bio="old")))
    loaded = await repo.preload(await repo.get_or_raise(UpdatingUser, user.id), "profile")
    cleared = await repo.update(put_assoc(change(loaded), "profile", None))
    assert cleared.profile is None
    assert await rows(admin, "SELECT bio, user_id FROM bl_profiles") == [("old", None)]
    again = await repo.preload(await repo.get_or_raise(UpdatingUser, user.id), "profile")
    assert again.profile is None


def deletable_comment(comment: Comment, params: Mapping[str, Any]) -> Changeset[Comment]:
    cs = cast(comment, params, ["text"])
    return attrs.evolve(cs, action="delete") if params.get("delete") else cs


async def test_a_child_with_action_delete_is_deleted_not_updated(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, ["a", "b"])
    a, b = post.comments
    params = {"comments": [{"id": a.id, "delete": True}, {"id": b.id, "text": "b2"}]}
    cs = cast_assoc(cast(post, params, []), "comments", with_=deletable_comment)
    assert [c.text for c in apply_changes(cs).comments] == ["b2"]
    updated = await repo.update(cs)
    assert [c.text for c in updated.comments] == ["b2"]
    assert await rows(admin, "SELECT text, post_id FROM bl_comments") == [("b2", post.id)]


async def test_a_many_to_many_child_with_action_delete_loses_only_its_join_row(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    post = await repo.insert(Post(title="p", tags=[Tag(name="x"), Tag(name="y")]))
    loaded = await repo.preload(await repo.get_or_raise(Post, post.id), "tags")
    x, y = loaded.tags

    def tag_with(tag: Tag, params: Mapping[str, Any]) -> Changeset[Tag]:
        cs = cast(tag, params, ["name"])
        return attrs.evolve(cs, action="delete") if params.get("delete") else cs

    params = {"tags": [{"id": x.id, "delete": True}, {"id": y.id}]}
    updated = await repo.update(cast_assoc(cast(loaded, params, []), "tags", with_=tag_with))
    assert [t.name for t in updated.tags] == ["y"]
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags") == [(y.id,)]
    assert await rows(admin, "SELECT name FROM bl_tags ORDER BY name") == [("x",), ("y",)]


@schema("bl_posts")
class ModeratedPost:
    id: int | None = None
    title: str | None = None
    comments: list[Comment] = has_many(Comment, foreign_key="post_id", defaults={"approved": True})


async def test_cast_assoc_and_put_assoc_build_new_children_with_the_association_defaults(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    cs = cast_assoc(cast(ModeratedPost(), {"title": "t", "comments": [{"text": "cast"}]}, ["title"]), "comments")
    await repo.insert(cs)
    await repo.insert(put_assoc(change(ModeratedPost(title="u")), "comments", [{"text": "put"}]))
    assert await rows(admin, "SELECT text, approved FROM bl_comments ORDER BY id") == [("cast", True), ("put", True)]


async def test_allow_stale_cascades_to_the_children(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await loaded_post(repo, ["a", "b"])
    a, b = post.comments
    await admin.execute("DELETE FROM bl_comments")
    params = {"title": "t2", "comments": [{"id": a.id, "text": "a2"}]}  # a: stale update; b: stale delete
    cs = cast(post, params, ["title"]) | cast_assoc("comments", with_=comment_cs)
    updated = await repo.update(cs, allow_stale=True)
    assert updated.title == "t2"
    assert await rows(admin, "SELECT title FROM bl_posts") == [("t2",)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]
    assert b.id is not None
