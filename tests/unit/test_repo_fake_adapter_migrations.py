"""The migrator on the fake adapter: what it asks of the migration capability, in order."""

from __future__ import annotations

import types

import pytest

from asyncecto import Repo
from asyncecto.errors import DatabaseError
from asyncecto.migration import down, up
from tests.fake_adapter import FakeDatabase

VERSION = 20240101000000


def _migration() -> types.ModuleType:
    module = types.ModuleType(f"{VERSION}_add_things")
    source = "def up():\n    return 'make things'\n\ndef down():\n    return ['unmake things', 'forget things']\n"
    exec(source, module.__dict__)  # functions of the module itself, as a migration file's
    return module


def _script(db: FakeDatabase, *applied: int) -> None:
    db.respond("current schema", ([], [("public",)], "1"))
    db.respond("try lock", ([], [(True,)], "1"))
    db.respond("versions of", [(v,) for v in applied], [(v,) for v in applied])


async def test_a_migration_runs_in_its_transaction_under_the_lock(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    _script(fake_db)
    assert await up(fake_repo, VERSION, _migration(), log=False) == "ok"
    statements = fake_db.statements()
    assert [c.sql for c in statements] == [
        "create versions schema_migrations",
        "current schema",
        "try lock $1",
        "versions of schema_migrations",
        "no statement timeout",
        "begin",
        "make things",
        "insert version into schema_migrations",
        "commit",
        "unlock $1",
    ]
    lock_conn = statements[1].conn
    assert {c.conn for c in statements[1:4]} == {lock_conn} and statements[-1].conn == lock_conn
    assert {c.conn for c in statements[4:9]} == {statements[4].conn} != {lock_conn}  # a connection of its own
    assert statements[7].params == (VERSION,)


async def test_an_applied_migration_is_not_run_again_and_down_reverses_it(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    _script(fake_db, VERSION)
    assert await up(fake_repo, VERSION, _migration(), log=False) == "already_up"
    assert "begin" not in fake_db.texts()
    fake_db.clear()
    _script(fake_db, VERSION)
    assert await down(fake_repo, VERSION, _migration(), log=False) == "ok"
    assert fake_db.texts()[5:10] == [
        "begin",
        "unmake things",
        "forget things",
        "delete version from schema_migrations",
        "commit",
    ]


async def test_a_versions_table_made_meanwhile_by_another_migrator_is_fine(
    fake_repo: Repo, fake_db: FakeDatabase
) -> None:
    """The adapter tells a lost creation race from a real failure (PostgreSQL: by SQLSTATE)."""
    fake_db.respond("create versions", DatabaseError("relation already exists (fake)"), DatabaseError("disk full"))
    _script(fake_db)
    assert await up(fake_repo, VERSION, _migration(), log=False) == "ok"
    with pytest.raises(DatabaseError, match="disk full"):
        await up(fake_repo, VERSION, _migration(), log=False)


async def test_storage_up_and_down_reach_the_adapter(fake_db: FakeDatabase) -> None:
    repo = Repo(f"fake://localhost/{fake_db.name}")  # not started: storage needs no pool
    assert await repo.storage_up() == "already_up"
    assert await repo.storage_down() == "dropped"
    assert await repo.storage_down() == "already_down"
    assert await repo.storage_up() == "created"
    assert [c.kind for c in fake_db.log] == ["storage_up", "storage_down", "storage_down", "storage_up"]
