"""The FastAPI example, in the test sandbox: each test's writes are rolled back at its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from asyncecto.testing import Sandbox

from .. import posts
from .app import create_app


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the sandboxed repo, called in the test's own task (no lifespan, no server)."""
    app = create_app(sandbox.repo, migrate=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def create(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.post("/posts", json={"title": "Hello", "body": "First post", **params})
    assert response.status_code == 201, response.text
    post: dict[str, Any] = response.json()
    return post


async def test_create_then_list_with_comments_preloaded(client: httpx.AsyncClient) -> None:
    post = await create(client)
    assert post == {"id": post["id"], "title": "Hello", "body": "First post", "comments": []}

    response = await client.post(f"/posts/{post['id']}/comments", json={"body": "Nice"})
    assert response.status_code == 201
    comment = response.json()
    assert comment == {"id": comment["id"], "post_id": post["id"], "body": "Nice"}

    response = await client.get("/posts")
    assert response.status_code == 200
    assert response.json() == [{**post, "comments": [comment]}]


async def test_the_previous_tests_rows_were_rolled_back(client: httpx.AsyncClient) -> None:
    assert (await client.get("/posts")).json() == []
    await create(client, title="Alone")
    assert [p["title"] for p in (await client.get("/posts")).json()] == ["Alone"]


async def test_invalid_post_is_422_with_errors_by_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/posts", json={"title": "Hi"})
    assert response.status_code == 422
    assert response.json() == {"errors": {"body": ["can't be blank"], "title": ["should be at least 3 character(s)"]}}
    assert (await client.get("/posts")).json() == []


async def test_show_and_missing_post_is_404(client: httpx.AsyncClient) -> None:
    post = await create(client)
    response = await client.get(f"/posts/{post['id']}")
    assert (response.status_code, response.json()) == (200, post)

    response = await client.get(f"/posts/{post['id'] + 1000}")
    assert (response.status_code, response.json()) == (404, {"errors": {"detail": "Not Found"}})
    response = await client.get("/posts/99999999999999999999999")  # past bigint: no such row either
    assert (response.status_code, response.json()) == (404, {"errors": {"detail": "Not Found"}})


async def test_text_postgresql_cannot_store_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/posts", json={"title": "abc", "body": "a\u0000b"})
    assert (response.status_code, response.json()) == (422, {"errors": {"body": ["is invalid"]}})
    response = await client.post(
        "/posts", content=b'{"title": "ab\\ud800c", "body": "ok"}', headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (422, {"errors": {"title": ["is invalid"]}})


async def test_update(client: httpx.AsyncClient) -> None:
    post = await create(client)
    response = await client.patch(f"/posts/{post['id']}", json={"title": "Hello again"})
    assert (response.status_code, response.json()) == (200, {**post, "title": "Hello again"})

    response = await client.patch(f"/posts/{post['id']}", json={"title": "", "body": "x"})
    assert (response.status_code, response.json()) == (422, {"errors": {"title": ["can't be blank"]}})
    assert (await client.get(f"/posts/{post['id']}")).json()["title"] == "Hello again"

    response = await client.patch(f"/posts/{post['id'] + 1000}", json={"title": "Nope"})
    assert response.status_code == 404


async def test_delete_takes_the_comments_along(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    post = await create(client)
    await client.post(f"/posts/{post['id']}/comments", json={"body": "Bye"})

    response = await client.delete(f"/posts/{post['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert (await client.get(f"/posts/{post['id']}")).status_code == 404
    assert await sandbox.repo.aggregate(posts.Comment, "count") == 0
    assert (await client.delete(f"/posts/{post['id']}")).status_code == 404


async def test_comment_errors(client: httpx.AsyncClient) -> None:
    post = await create(client)
    response = await client.post(f"/posts/{post['id']}/comments", json={"body": ""})
    assert (response.status_code, response.json()) == (422, {"errors": {"body": ["can't be blank"]}})
    response = await client.post(f"/posts/{post['id'] + 1000}/comments", json={"body": "Hi"})
    assert (response.status_code, response.json()) == (404, {"errors": {"detail": "Not Found"}})


async def test_under_uvicorn_over_real_http(sandbox: Sandbox, web_database_url: str) -> None:
    """A real server in the test's loop: its lifespan finds the repo running (the sandbox started
    it) and leaves it alone; its request tasks run in the sandbox too (shared mode)."""
    app = create_app(sandbox.repo, migrate=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None, ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not serving.done(), "uvicorn stopped before it started"
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]  # port=0: the one the OS picked
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            response = await http.post("/posts", json={"title": "Served", "body": "over TCP"})
            assert response.status_code == 201
            post_id = response.json()["id"]
            assert (await http.get(f"/posts/{post_id}")).json()["title"] == "Served"
            assert (await http.post("/posts", json={})).status_code == 422
        assert await sandbox.repo.get(posts.Post, post_id) is not None  # the test's transaction
        async with posts.new_repo(web_database_url) as outside:  # uncommitted: nobody else sees it
            assert await outside.get(posts.Post, post_id) is None
    finally:
        server.should_exit = True
        await serving
    assert sandbox.repo.state == "running"  # the app's lifespan did not stop the test's repo


@pytest.mark.no_sandbox
async def test_startup_creates_the_database_and_tables(asyncecto_repo: Any, sandbox: None) -> None:
    """The default startup path, with real commits: storage_up and the migrations are idempotent."""
    app = create_app(asyncecto_repo)
    async with app.router.lifespan_context(app):
        assert await asyncecto_repo.query("SELECT count(*) FROM web_comments") is not None
    assert asyncecto_repo.state == "running"
