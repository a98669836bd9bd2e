"""Multi sequencing on the fake adapter: steps in order in one transaction, a failure stops the rest."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Multi, Repo
from asyncecto.changeset import cast, change, validate_required
from asyncecto.errors import ConstraintError, MultiError, UniqueViolationError
from tests.fake_adapter import FakeDatabase
from tests.fake_schemas import Comment, Post


def _unique() -> UniqueViolationError:
    return UniqueViolationError("duplicate key (fake)", sqlstate="23505", constraint_name="fk_posts_title_index")


async def test_steps_run_in_order_in_one_transaction_each_seeing_the_changes_before(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert fk_posts", [(1,)])
    fake_db.respond("insert fk_comments", [(10,)])
    seen: list[dict[Any, Any]] = []

    def count(repo: Repo, changes: dict[Any, Any]) -> int:
        seen.append(changes)
        return len(changes)

    multi = (
        Multi.new()
        | Multi.insert("post", Post(title="t"))
        | Multi.run("count", count)
        | Multi.insert("comment", lambda changes: Comment(text="c", post_id=changes["post"].id))
        | Multi.update("rename", lambda changes: change(changes["post"], title="t2"))
        | Multi.put("answer", 42)
    )
    changes = await fake_repo.transaction(multi)
    assert [(c.sql, c.params) for c in fake_db.statements()] == [
        ("begin", ()),
        ("insert fk_posts (title, visits) returning (id)", ("t", 0)),
        ("insert fk_comments (text, post_id) returning (id)", ("c", 1)),
        ("update fk_posts set (title) where (id) returning ()", ("t2", 1)),
        ("commit", ()),
    ]
    assert list(changes) == ["post", "count", "comment", "rename", "answer"]
    assert (changes["post"].id, changes["count"], changes["comment"].id, changes["rename"].title) == (1, 1, 10, "t2")
    assert list(seen[0]) == ["post"]
    assert len({c.conn for c in fake_db.statements()}) == 1  # every step on the transaction's connection


async def test_a_failing_step_stops_the_rest_and_rolls_back(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert fk_posts", [(1,)], _unique())
    ran: list[str] = []
    multi = (
        Multi.new()
        | Multi.insert("first", Post(title="a"))
        | Multi.insert("second", Post(title="a"))
        | Multi.run("third", lambda repo, changes: ran.append("third"))
    )
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(multi)
    err = info.value
    assert err.operation == "second"
    assert isinstance(err.value, ConstraintError)
    assert list(err.changes) == ["first"] and err.changes["first"].id == 1
    assert ran == []
    assert fake_db.texts() == [
        "begin",
        "insert fk_posts (title, visits) returning (id)",
        "insert fk_posts (title, visits) returning (id)",
        "rollback",
    ]
    assert fake_db.log[-1].kind == "checkin"


async def test_an_invalid_changeset_fails_before_begin(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    bad = cast(Post(), {}, ["title"]) | validate_required("title")
    multi = Multi.new() | Multi.put("x", 1) | Multi.insert("post", bad)
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(multi)
    assert info.value.operation == "post"
    assert info.value.value.action == "insert"
    assert info.value.changes == {}
    assert fake_db.log == []


async def test_an_error_step_fails_before_begin(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    multi = Multi.new() | Multi.insert("post", Post(title="t")) | Multi.error("stop", "because")
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(multi)
    assert (info.value.operation, info.value.value, info.value.changes) == ("stop", "because", {})
    assert fake_db.log == []


async def test_an_invalid_changeset_built_by_a_step_fails_it_after_the_steps_before(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert fk_posts", [(1,)])

    def invalid(changes: dict[Any, Any]) -> Any:
        return cast(Comment(post_id=changes["post"].id), {}, ["text"]) | validate_required("text")

    multi = Multi.new() | Multi.insert("post", Post(title="t")) | Multi.insert("comment", invalid)
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(multi)
    assert info.value.operation == "comment"
    assert info.value.value.errors[0][0] == "text"
    assert list(info.value.changes) == ["post"]
    assert fake_db.texts() == ["begin", "insert fk_posts (title, visits) returning (id)", "rollback"]


async def test_repo_rollback_in_a_step_fails_the_multi_with_its_value(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    def give_up(repo: Repo, changes: dict[Any, Any]) -> None:
        repo.rollback("no thanks")

    multi = Multi.new() | Multi.put("a", 1) | Multi.run("give_up", give_up) | Multi.put("b", 2)
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(multi)
    assert (info.value.operation, info.value.value, info.value.changes) == ("give_up", "no thanks", {"a": 1})
    assert fake_db.texts() == ["begin", "rollback"]


async def test_a_merged_multi_runs_in_the_same_transaction(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert fk_posts", [(1,)])
    fake_db.respond("insert fk_comments", [(10,)])
    multi = (
        Multi.new()
        | Multi.insert("post", Post(title="t"))
        | Multi.merge(
            lambda changes: Multi.new() | Multi.insert("comment", Comment(text="c", post_id=changes["post"].id))
        )
    )
    changes = await fake_repo.transaction(multi)
    assert list(changes) == ["post", "comment"]
    assert fake_db.texts() == [
        "begin",
        "insert fk_posts (title, visits) returning (id)",
        "insert fk_comments (text, post_id) returning (id)",
        "commit",
    ]


async def test_an_empty_multi_sends_nothing(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    assert await fake_repo.transaction(Multi.new()) == {}
    assert fake_db.log == []


async def test_a_multi_inside_a_transaction_is_a_savepoint(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    fake_db.respond("insert fk_posts", [(1,)], _unique())
    async with fake_repo.transaction():
        await fake_repo.insert(Post(title="kept"))
        with pytest.raises(MultiError):
            await fake_repo.transaction(Multi.new() | Multi.insert("dup", Post(title="kept")))
    assert fake_db.texts() == [
        "begin",
        "insert fk_posts (title, visits) returning (id)",
        "savepoint asyncecto_2",
        "insert fk_posts (title, visits) returning (id)",
        "rollback to asyncecto_2",
        "release asyncecto_2",
        "commit",
    ]
