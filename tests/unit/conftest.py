"""Fixtures for unit tests that run a Repo on the fake adapter (no database anywhere)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from asyncecto import Repo
from tests.fake_adapter import FakeDatabase, register, unregister


@pytest.fixture
def fake_db() -> Iterator[FakeDatabase]:
    """A fresh fake database, ``fake://`` served by the fake adapter for the test only."""
    register()
    name = f"fake_{uuid.uuid4().hex[:12]}"
    db = FakeDatabase.named(name)
    try:
        yield db
    finally:
        FakeDatabase.drop(name)
        unregister()


@pytest.fixture
async def fake_repo(fake_db: FakeDatabase) -> AsyncIterator[Repo]:
    """A started Repo on ``fake_db``; its log starts empty. At the end every connection is back."""
    repo = Repo(f"fake://localhost/{fake_db.name}")
    async with repo:
        fake_db.log.clear()
        yield repo
        assert repo.pool_stats()["in_use"] == 0, "a connection was left checked out"
