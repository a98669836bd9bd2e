"""The 422 example (examples/changeset_errors.py) against the test database."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest

from asyncecto import Repo

EXAMPLE = Path(__file__).parents[2] / "examples" / "changeset_errors.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("changeset_errors_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def example(repo: Repo) -> ModuleType:
    await repo.query("DROP TABLE IF EXISTS example_users")
    await repo.query(
        "CREATE TABLE example_users (id bigserial PRIMARY KEY, email varchar(255) UNIQUE, "
        "name varchar(255), age integer)"
    )
    return load_example()


async def test_created_then_422_for_validation_and_for_the_unique_constraint(
    repo: Repo, admin: asyncpg.Connection, example: ModuleType
) -> None:
    status, body = await example.create_user(repo, {"email": "ada@example.com", "name": "Ada", "age": "36"})
    assert status == 201
    assert json.loads(body)["email"] == "ada@example.com"

    status, body = await example.create_user(repo, {"email": "nope", "name": "A", "age": "ten"})
    assert (status, json.loads(body)) == (
        422,
        {
            "errors": {
                "age": ["is invalid"],
                "email": ["has invalid format"],
                "name": ["should be at least 2 character(s)"],
            }
        },
    )

    status, body = await example.create_user(repo, {"email": "ada@example.com", "name": "Ada Again"})
    assert (status, json.loads(body)) == (422, {"errors": {"email": ["has already been taken"]}})
    assert await admin.fetchval("SELECT count(*) FROM example_users") == 1

    status, body = await example.create_user(repo, {})
    assert json.loads(body) == {"errors": {"email": ["can't be blank"], "name": ["can't be blank"]}}
