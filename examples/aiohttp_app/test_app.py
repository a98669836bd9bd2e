"""The aiohttp example on a real loopback server in the test's loop, in the test sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from asyncecto.testing import Sandbox

from .. import posts
from .app import create_app

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Client]:
    """The app over the sandboxed repo; its cleanup context finds the repo running and leaves it be."""
    async with TestClient(TestServer(create_app(sandbox.repo, migrate=False))) as c:
        yield c
    assert sandbox.repo.state == "running"


async def create(client: Client, **params: Any) -> dict[str, Any]:
    response = await client.post("/posts", json={"title": "Hello", "body": "First post", **params})
    assert response.status == 201, await response.text()
    post: dict[str, Any] = await response.json()
    return post


async def test_create_then_list_with_comments_preloaded(client: Client) -> None:
    post = await create(client)
    assert post == {"id": post["id"], "title": "Hello", "body": "First post", "comments": []}

    response = await client.post(f"/posts/{post['id']}/comments", json={"body": "Nice"})
    assert response.status == 201
    comment = await response.json()
    assert comment == {"id": comment["id"], "post_id": post["id"], "body": "Nice"}

    response = await client.get("/posts")
    assert (response.status, await response.json()) == (200, [{**post, "comments": [comment]}])


async def test_the_previous_tests_rows_were_rolled_back(client: Client) -> None:
    assert await (await client.get("/posts")).json() == []


async def test_invalid_post_is_422_with_errors_by_field(client: Client) -> None:
    response = await client.post("/posts", json={"title": "Hi"})
    assert (response.status, await response.json()) == (
        422,
        {"errors": {"body": ["can't be blank"], "title": ["should be at least 3 character(s)"]}},
    )
    response = await client.post("/posts", json=["not", "an", "object"])
    assert (response.status, await response.json()) == (400, {"errors": {"detail": "expected a JSON object"}})


async def test_show_and_missing_post_is_404(client: Client) -> None:
    post = await create(client)
    response = await client.get(f"/posts/{post['id']}")
    assert (response.status, await response.json()) == (200, post)

    response = await client.get(f"/posts/{post['id'] + 1000}")
    assert (response.status, await response.json()) == (404, {"errors": {"detail": "Not Found"}})
    response = await client.get("/posts/99999999999999999999999")  # past bigint: no such row either
    assert (response.status, await response.json()) == (404, {"errors": {"detail": "Not Found"}})


async def test_text_postgresql_cannot_store_is_422(client: Client) -> None:
    response = await client.post("/posts", json={"title": "abc", "body": "a\u0000b"})
    assert (response.status, await response.json()) == (422, {"errors": {"body": ["is invalid"]}})
    response = await client.post(
        "/posts", data=b'{"title": "ab\\ud800c", "body": "ok"}', headers={"content-type": "application/json"}
    )
    assert (response.status, await response.json()) == (422, {"errors": {"title": ["is invalid"]}})


async def test_update(client: Client) -> None:
    post = await create(client)
    response = await client.patch(f"/posts/{post['id']}", json={"title": "Hello again"})
    assert (response.status, await response.json()) == (200, {**post, "title": "Hello again"})

    response = await client.patch(f"/posts/{post['id']}", json={"title": ""})
    assert (response.status, await response.json()) == (422, {"errors": {"title": ["can't be blank"]}})
    assert (await (await client.get(f"/posts/{post['id']}")).json())["title"] == "Hello again"


async def test_delete_takes_the_comments_along(client: Client, sandbox: Sandbox) -> None:
    post = await create(client)
    await client.post(f"/posts/{post['id']}/comments", json={"body": "Bye"})

    response = await client.delete(f"/posts/{post['id']}")
    assert response.status == 204
    assert (await client.get(f"/posts/{post['id']}")).status == 404
    assert await sandbox.repo.aggregate(posts.Comment, "count") == 0


async def test_comment_errors(client: Client) -> None:
    post = await create(client)
    response = await client.post(f"/posts/{post['id']}/comments", json={})
    assert (response.status, await response.json()) == (422, {"errors": {"body": ["can't be blank"]}})
    response = await client.post(f"/posts/{post['id'] + 1000}/comments", json={"body": "Hi"})
    assert (response.status, await response.json()) == (404, {"errors": {"detail": "Not Found"}})


@pytest.mark.no_sandbox
async def test_startup_creates_the_database_and_tables(asyncecto_repo: Any, sandbox: None) -> None:
    """The default startup path (storage_up, the repo, the migrations), with real commits."""
    async with TestClient(TestServer(create_app(asyncecto_repo))) as c:
        assert (await c.get("/posts/0")).status == 404
