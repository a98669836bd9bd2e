"""The test sandbox's lease on the fake adapter: what the Repo asks of a connection lent inside the
sandbox's transaction (a savepoint per statement, savepoints for blocks, the lifted timeout put
back), against a pooled connection's lease, which asks nothing of the kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asyncecto.repo
from asyncecto import Repo
from asyncecto.errors import ConstraintError, SandboxError, UniqueViolationError
from asyncecto.repo._core import executor_of
from asyncecto.testing import sandbox, unboxed
from tests.fake_adapter import FakeDatabase
from tests.fake_schemas import Post

INSERT = "insert fk_posts (title, visits) returning (id)"
MARK = "savepoint asyncecto_sandbox"


def _unique() -> UniqueViolationError:
    return UniqueViolationError("duplicate key (fake)", sqlstate="23505", constraint_name="fk_posts_title_index")


async def test_each_statement_outside_a_block_runs_behind_the_sandbox_savepoint(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo):
        await fake_repo.insert(Post(title="a"))
        fake_db.respond("insert", _unique())
        with pytest.raises(ConstraintError):
            await fake_repo.insert(Post(title="b"))
        await fake_repo.insert(Post(title="c"))
    assert fake_db.steps() == [
        "checkout",
        "begin",
        MARK,
        INSERT,
        MARK,
        INSERT,
        "rollback to asyncecto_sandbox",
        MARK,
        INSERT,
        "rollback",
        "checkin",
    ]


async def test_the_outermost_transaction_on_the_sandbox_connection_is_a_savepoint(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo):
        async with fake_repo.transaction(isolation="serializable") as tx:
            await fake_repo.insert(Post(title="a"))
            async with fake_repo.transaction():
                await fake_repo.insert(Post(title="b"))
        assert tx.committed
        assert not fake_repo.in_transaction()
    assert fake_db.texts() == [
        "begin",
        "savepoint asyncecto_1",
        INSERT,
        "savepoint asyncecto_2",
        INSERT,
        "release asyncecto_2",
        "release asyncecto_1",
        "rollback",
    ]


async def test_a_checkout_in_the_sandbox_guards_its_statements_and_its_transaction_is_a_savepoint(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo), fake_repo.checkout():
        await fake_repo.insert(Post(title="a"))
        async with fake_repo.transaction():
            await fake_repo.insert(Post(title="b"))
    assert fake_db.texts() == [
        "begin",
        MARK,
        INSERT,
        "savepoint asyncecto_1",
        INSERT,
        "release asyncecto_1",
        "rollback",
    ]


async def test_a_lifted_timeout_is_put_back_on_the_sandbox_connection_not_on_a_pooled_one(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo):
        await fake_repo.query("select 1", timeout=None)
        async with fake_repo.transaction():
            await fake_repo.query("select 2", timeout=None)
    await fake_repo.query("select 3", timeout=None)  # the pool's release resets it
    configured = executor_of(fake_repo).config.timeout
    assert configured is not None
    assert [(c.kind, c.sql, c.params) for c in fake_db.log if c.kind in ("set_statement_timeout", "query")] == [
        ("set_statement_timeout", "", (None,)),
        ("query", "select 1", ()),
        ("set_statement_timeout", "", (configured,)),
        ("set_statement_timeout", "", (None,)),
        ("query", "select 2", ()),
        ("set_statement_timeout", "", (configured,)),
        ("set_statement_timeout", "", (None,)),
        ("query", "select 3", ()),
    ]


async def test_raw_transaction_control_is_refused_on_the_sandbox_connection(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo):
        with pytest.raises(SandboxError, match="raw begin cannot run in the sandbox"):
            await fake_repo.query("begin")
        async with fake_repo.checkout():
            with pytest.raises(SandboxError, match="raw commit cannot run in the sandbox"):
                await fake_repo.query("commit")
    assert fake_db.texts() == ["begin", "rollback"]  # refused before a turn on the connection


async def test_unboxed_inside_a_sandbox_checkout_runs_on_a_pooled_connection(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    async with sandbox(fake_repo), fake_repo.checkout():
        with unboxed(fake_repo):
            await fake_repo.insert(Post(title="committed"))
        await fake_repo.insert(Post(title="boxed"))
    inserts = [c for c in fake_db.statements() if c.sql == INSERT]
    assert [(c.params[0], c.conn) for c in inserts] == [("committed", 2), ("boxed", 1)]
    assert [c.sql for c in fake_db.statements() if c.conn == 2] == [INSERT]  # no savepoint on the pool


@pytest.mark.parametrize("module", ["_core", "_transaction"])
def test_the_statement_path_asks_the_lease_not_the_sandbox(module: str) -> None:
    # what a sandbox changes about a statement, a transaction or a checkout is the lease's to say
    # (repo/_ownership.py): the statement path neither imports the sandbox nor reaches for one
    path = Path(asyncecto.repo.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module is not None]
    assert not [m for m in imported if "sandbox" in m]
    assert not [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and "sandbox" in n.attr.lower()]
    assert not [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.lower() == "sandbox"]
