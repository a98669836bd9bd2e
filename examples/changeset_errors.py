"""Turning a changeset's errors into a JSON 422 body, as a web handler would.

Run it with ``python examples/changeset_errors.py`` (database found as in the quickstart).
``create_user`` is what a FastAPI or aiohttp handler calls: it returns a status and a JSON
body. Validation errors and a declared unique constraint end up in the same shape:
``{"errors": {"email": ["has already been taken"]}}``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from asyncecto import Repo, migration, schema
from asyncecto.changeset import (
    Changeset,
    cast,
    traverse_errors,
    unique_constraint,
    validate_format,
    validate_length,
    validate_number,
    validate_required,
)
from asyncecto.embedded import database_url
from asyncecto.errors import InvalidChangesetError


@schema("example_users")
class User:
    id: int | None = None
    email: str | None = None
    name: str | None = None
    age: int | None = None


def registration(user: User, params: dict[str, Any]) -> Changeset[User]:
    return (
        cast(user, params, ["email", "name", "age"])
        | validate_required(["email", "name"])
        | validate_format("email", r"@")
        | validate_length("name", min=2, max=80)
        | validate_number("age", greater_than_or_equal_to=13)
        # the migration's unique index is example_users_email_index (a database made by an older
        # version of this example has example_users_email_key): match both by their common prefix
        | unique_constraint("email", name="example_users_email", match="prefix")
    )


async def create_user(repo: Repo, params: dict[str, Any]) -> tuple[int, str]:
    """``(status, JSON body)``: 201 with the user, or 422 with the errors by field."""
    try:
        user = await repo.insert(registration(User(), params))
    except InvalidChangesetError as exc:
        return 422, json.dumps({"errors": traverse_errors(exc.changeset)}, sort_keys=True)
    return 201, json.dumps({"id": user.id, "email": user.email, "name": user.name, "age": user.age})


async def main() -> None:
    repo = Repo(database_url("asyncecto_quickstart"), pool_size=2)
    await repo.storage_up()
    async with repo:
        await migration.run(repo, Path(__file__).parent / "migrations", all=True)
        await repo.query("TRUNCATE example_users RESTART IDENTITY")
        for params in (
            {"email": "ada@example.com", "name": "Ada", "age": "36"},  # 201
            {"email": "not-an-email", "name": "A", "age": "ten"},  # 422: no SQL was sent
            {"email": "ada@example.com", "name": "Ada Again"},  # 422: the unique constraint fired
        ):
            status, body = await create_user(repo, params)
            print(status, body)


if __name__ == "__main__":
    asyncio.run(main())
