"""The Repo's write path on the fake adapter: changeset → write plan, with no database."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.changeset import cast, change, prepare_changes, put_assoc, unique_constraint, validate_required
from asyncecto.errors import (
    ConstraintError,
    InvalidChangesetError,
    StaleEntryError,
    UniqueViolationError,
)
from asyncecto.schema import meta
from tests.fake_adapter import Call, FakeDatabase
from tests.fake_schemas import Author, Post, Tag


def _unique(name: str) -> UniqueViolationError:
    return UniqueViolationError("duplicate key (fake)", sqlstate="23505", constraint_name=name)


async def test_insert_sends_the_set_columns_in_order_and_reads_the_generated_id(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert fk_posts", [(5,)])
    post = await fake_repo.insert(cast(Post(), {"title": "hi", "visits": "3"}, ["title", "visits"]))
    assert fake_db.statements() == [
        Call("fetch", "insert fk_posts (title, visits) returning (id)", ("hi", 3), conn=1),
    ]
    assert (post.id, post.title, post.visits) == (5, "hi", 3)
    assert meta(post).state == "loaded"
    assert fake_db.steps() == ["checkout", "insert fk_posts (title, visits) returning (id)", "checkin"]


async def test_insert_sends_defaults_that_are_set_and_skips_none(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    await fake_repo.insert(Post(title="t"))  # visits defaults to 0; author_id is None
    assert fake_db.texts() == ["insert fk_posts (title, visits) returning (id)"]
    assert fake_db.statements()[0].params == ("t", 0)


async def test_insert_returning_everything_maps_the_row_back(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert", [(1, "from db", 7, None)])
    post = await fake_repo.insert(Post(title="t"), returning=True)
    assert fake_db.texts() == ["insert fk_posts (title, visits) returning (id, title, visits, author_id)"]
    assert (post.id, post.title, post.visits) == (1, "from db", 7)


async def test_a_given_primary_key_is_sent_and_nothing_is_returned(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    tag = await fake_repo.insert(Tag(name="py", uses=2))
    assert fake_db.statements() == [Call("execute", "insert fk_tags (name, uses) returning ()", ("py", 2), conn=1)]
    assert tag.name == "py"


async def test_an_invalid_changeset_sends_nothing(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    cs = cast(Post(), {}, ["title"]) | validate_required("title")
    with pytest.raises(InvalidChangesetError) as info:
        await fake_repo.insert(cs)
    assert info.value.changeset.action == "insert"
    with pytest.raises(InvalidChangesetError):
        await fake_repo.update(cast(Post(id=1, title="a"), {"title": ""}, ["title"]) | validate_required("title"))
    assert fake_db.log == []  # not even a checkout


async def test_update_sends_only_the_changes_keyed_by_the_primary_key(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    post = Post(id=4, title="old", visits=1)
    updated = await fake_repo.update(change(post, title="new", visits=2))
    assert fake_db.statements() == [
        Call("execute", "update fk_posts set (title, visits) where (id) returning ()", ("new", 2, 4), conn=1)
    ]
    assert (updated.id, updated.title, updated.visits) == (4, "new", 2)
    assert post.title == "old"  # the caller's struct is not changed


async def test_update_with_no_changes_sends_nothing(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    post = Post(id=4, title="same")
    assert await fake_repo.update(change(post, title="same")) is post
    assert await fake_repo.update(cast(post, {}, ["title"])) is post
    assert fake_db.log == []


async def test_update_that_hits_no_row_is_stale(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("update", 0)
    with pytest.raises(StaleEntryError):
        await fake_repo.update(change(Post(id=4), title="x"))
    assert await fake_repo.update(change(Post(id=4), title="x"), allow_stale=True) is not None
    assert len(fake_db.statements()) == 2


async def test_delete_filters_by_the_primary_key(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    deleted = await fake_repo.delete(Post(id=3, title="gone"))
    assert fake_db.statements() == [Call("execute", "delete fk_posts where (id) returning ()", (3,), conn=1)]
    assert meta(deleted).state == "deleted"
    fake_db.respond("delete", 0)
    with pytest.raises(StaleEntryError):
        await fake_repo.delete(Post(id=3))


async def test_a_declared_constraint_violation_becomes_a_changeset_error(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert fk_posts", _unique("fk_posts_title_index"), _unique("fk_posts_title_index"))
    cs = cast(Post(), {"title": "dup"}, ["title"]) | unique_constraint("title")
    with pytest.raises(InvalidChangesetError) as info:
        await fake_repo.insert(cs)
    assert info.value.changeset.errors[0][0] == "title"
    with pytest.raises(ConstraintError) as undeclared:  # not declared: the constraint error names it
        await fake_repo.insert(cast(Post(), {"title": "dup"}, ["title"]))
    assert (undeclared.value.type, undeclared.value.constraint) == ("unique", "fk_posts_title_index")


async def test_prepare_changes_runs_in_a_transaction_around_the_write(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    seen: list[list[str]] = []

    def prepare(cs: object) -> object:
        seen.append(fake_db.texts())
        return cs

    fake_db.respond("insert", [(1,)])
    await fake_repo.insert(cast(Post(), {"title": "p"}, ["title"]) | prepare_changes(prepare))
    assert seen == [["begin"]]
    assert fake_db.texts() == ["begin", "insert fk_posts (title, visits) returning (id)", "commit"]


async def test_a_new_parent_is_inserted_first_and_its_key_given_to_the_child(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert fk_authors", [(9,)])
    fake_db.respond("insert fk_posts", [(1,)])
    post = await fake_repo.insert(put_assoc(change(Post(title="t")), "author", Author(name="ann")))
    assert [(c.sql, c.params) for c in fake_db.statements()] == [
        ("begin", ()),
        ("insert fk_authors (name) returning (id)", ("ann",)),
        ("insert fk_posts (title, visits, author_id) returning (id)", ("t", 0, 9)),
        ("commit", ()),
    ]
    assert post.author is not None
    assert (post.id, post.author_id, post.author.id) == (1, 9, 9)


async def test_children_are_inserted_after_the_parent_with_its_key(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert fk_authors", [(9,)])
    fake_db.respond("insert fk_posts", [(1,)], [(2,)])
    author = await fake_repo.insert(put_assoc(change(Author(name="ann")), "posts", [Post(title="a"), Post(title="b")]))
    assert [(c.sql, c.params) for c in fake_db.statements()] == [
        ("begin", ()),
        ("insert fk_authors (name) returning (id)", ("ann",)),
        ("insert fk_posts (title, visits, author_id) returning (id)", ("a", 0, 9)),
        ("insert fk_posts (title, visits, author_id) returning (id)", ("b", 0, 9)),
        ("commit", ()),
    ]
    assert [(p.id, p.author_id) for p in author.posts] == [(1, 9), (2, 9)]


async def test_a_failed_child_insert_rolls_the_parent_back(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert fk_authors", [(9,)])
    fake_db.respond("insert fk_posts", _unique("fk_posts_title_index"))
    with pytest.raises(ConstraintError):
        await fake_repo.insert(put_assoc(change(Author(name="ann")), "posts", [Post(title="a")]))
    assert fake_db.texts() == [
        "begin",
        "insert fk_authors (name) returning (id)",
        "insert fk_posts (title, visits, author_id) returning (id)",
        "rollback",
    ]
