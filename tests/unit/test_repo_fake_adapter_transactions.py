"""Transaction nesting on the fake adapter: what the Repo asks of the adapter's transaction
capability, in order, and on which connection (the fake plays a server's aborted-transaction state)."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError, ConstraintError, TransactionAbortedError, UniqueViolationError
from tests.fake_adapter import FakeDatabase
from tests.fake_schemas import Post

INSERT = "insert fk_posts (title, visits) returning (id)"


class Boom(Exception):
    pass


def _unique() -> UniqueViolationError:
    return UniqueViolationError("duplicate key (fake)", sqlstate="23505", constraint_name="fk_posts_title_index")


async def test_a_transaction_is_begin_work_commit_on_one_checked_out_connection(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with fake_repo.transaction() as tx:
        await fake_repo.insert(Post(title="a"))
        await fake_repo.insert(Post(title="b"))
    assert tx.committed
    assert fake_db.steps() == ["checkout", "begin", INSERT, INSERT, "commit", "checkin"]
    assert len({c.conn for c in fake_db.log}) == 1


async def test_nested_blocks_are_savepoints_released_in_order(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    async with fake_repo.transaction():
        async with fake_repo.transaction() as inner, fake_repo.transaction():
            await fake_repo.insert(Post(title="deep"))
        assert inner.committed
        assert fake_repo.in_transaction()
    assert not fake_repo.in_transaction()
    assert fake_db.steps() == [
        "checkout",
        "begin",
        "savepoint asyncecto_2",
        "savepoint asyncecto_3",
        INSERT,
        "release asyncecto_3",
        "release asyncecto_2",
        "commit",
        "checkin",
    ]


async def test_a_failing_nested_block_rolls_back_to_its_savepoint_and_the_outer_commits(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with fake_repo.transaction() as outer:
        await fake_repo.insert(Post(title="kept"))
        with pytest.raises(Boom):
            async with fake_repo.transaction() as inner:
                await fake_repo.insert(Post(title="undone"))
                raise Boom
        await fake_repo.insert(Post(title="after"))
    assert not inner.committed and outer.committed
    assert fake_db.texts() == [
        "begin",
        INSERT,
        "savepoint asyncecto_2",
        INSERT,
        "rollback to asyncecto_2",
        "release asyncecto_2",
        INSERT,
        "commit",
    ]
    assert [c.params[0] for c in fake_db.statements() if c.sql == INSERT] == ["kept", "undone", "after"]


async def test_a_failed_statement_in_a_nested_block_does_not_poison_the_outer(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert", [(1,)], _unique(), [(3,)])
    async with fake_repo.transaction() as outer:
        await fake_repo.insert(Post(title="a"))
        with pytest.raises(ConstraintError):
            async with fake_repo.transaction():
                await fake_repo.insert(Post(title="a"))
        third = await fake_repo.insert(Post(title="c"))  # the connection is usable again
    assert outer.committed and third.id == 3
    assert fake_db.texts()[3:6] == [INSERT, "rollback to asyncecto_2", "release asyncecto_2"]


async def test_an_error_caught_inside_a_savepoint_undoes_that_block_only(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert", _unique())
    async with fake_repo.transaction() as outer:
        with pytest.raises(TransactionAbortedError, match="savepoint"):
            async with fake_repo.transaction():
                with pytest.raises(ConstraintError):
                    await fake_repo.insert(Post(title="dup"))
                # the error was swallowed: the block's end finds its transaction aborted
        await fake_repo.insert(Post(title="fine"))
    assert outer.committed
    assert fake_db.texts() == [
        "begin",
        "savepoint asyncecto_2",
        INSERT,
        "release asyncecto_2",  # refused: the savepoint's work failed
        "rollback to asyncecto_2",
        "release asyncecto_2",
        INSERT,
        "commit",
    ]


async def test_an_error_caught_in_the_outer_block_makes_the_commit_a_rollback(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    fake_db.respond("insert", _unique())
    with pytest.raises(TransactionAbortedError, match="rolled back at"):
        async with fake_repo.transaction() as tx:
            with pytest.raises(ConstraintError):
                await fake_repo.insert(Post(title="dup"))
    assert not tx.committed
    assert fake_db.steps() == ["checkout", "begin", INSERT, "commit", "checkin"]


async def test_an_outer_failure_rolls_back_and_gives_the_connection_back(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    with pytest.raises(Boom):
        async with fake_repo.transaction():
            async with fake_repo.transaction():
                await fake_repo.insert(Post(title="x"))
            raise Boom
    assert fake_db.steps() == [
        "checkout",
        "begin",
        "savepoint asyncecto_2",
        INSERT,
        "release asyncecto_2",
        "rollback",
        "checkin",
    ]


async def test_repo_rollback_ends_the_block_quietly_with_its_value(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    async def work(repo: Repo) -> str:
        await repo.insert(Post(title="x"))
        repo.rollback("undone")
        return "unreached"  # type: ignore[unreachable]

    assert await fake_repo.transaction(work) == "undone"
    async with fake_repo.transaction() as outer, fake_repo.transaction() as inner:
        fake_repo.rollback(7)
    assert (inner.rolled_back, inner.value, outer.committed) == (True, 7, True)
    assert fake_db.texts() == [
        "begin",
        INSERT,
        "rollback",
        "begin",
        "savepoint asyncecto_2",
        "rollback to asyncecto_2",
        "release asyncecto_2",
        "commit",
    ]


async def test_isolation_and_read_only_reach_the_adapter_for_the_outermost_block_only(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with fake_repo.transaction(isolation="serializable", read_only=True):
        with pytest.raises(ArgumentError, match="outermost"):
            async with fake_repo.transaction(isolation="serializable"):
                pass
    assert fake_db.texts() == ["begin serializable read_only", "commit"]


async def test_a_transaction_inside_a_checkout_begins_on_its_connection(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    async with fake_repo.checkout():
        await fake_repo.insert(Post(title="before"))
        async with fake_repo.transaction():
            await fake_repo.insert(Post(title="inside"))
        await fake_repo.insert(Post(title="after"))
    assert fake_db.steps() == ["checkout", INSERT, "begin", INSERT, "commit", INSERT, "checkin"]


async def test_sequential_transactions_reuse_the_pooled_connection(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    for _ in range(2):
        async with fake_repo.transaction():
            pass
    assert fake_db.steps() == ["checkout", "begin", "commit", "checkin"] * 2
    assert {c.conn for c in fake_db.log} == {1}
