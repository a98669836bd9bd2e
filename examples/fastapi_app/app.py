"""The FastAPI app: a Repo run by the app's lifespan, and errors answered as JSON.

``create_app()`` reads the database from ``$DATABASE_URL`` (else a local or embedded server) and
creates the tables on startup; tests pass their own repo and ``migrate=False``.
Run it with ``python -m examples.fastapi_app`` or
``uvicorn --factory examples.fastapi_app.app:create_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Response

from asyncecto import Repo
from asyncecto.integrations.starlette import exception_handlers, repo_running

from .. import posts

Params = Annotated[dict[str, Any], Body()]


def create_app(repo: Repo | None = None, *, migrate: bool = True) -> FastAPI:
    """The app over ``repo`` (default: :func:`examples.posts.new_repo`)."""
    repo = repo if repo is not None else posts.new_repo()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # FastAPI(lifespan=asyncecto.integrations.starlette.lifespan(repo)) is enough when there
        # is nothing else to do; here the app also creates its tables once the repo runs.
        if migrate:
            await repo.storage_up()
        async with repo_running(repo):
            if migrate:
                await posts.migrate(repo)
            yield

    app = FastAPI(title="asyncecto posts", lifespan=lifespan, exception_handlers=exception_handlers)

    @app.get("/posts")
    async def list_posts() -> list[dict[str, Any]]:
        return [posts.post_json(p) for p in await posts.list_posts(repo)]

    @app.post("/posts", status_code=201)
    async def create_post(params: Params) -> dict[str, Any]:
        return posts.post_json(await posts.create_post(repo, params))  # 422 when invalid

    @app.get("/posts/{post_id}")
    async def show_post(post_id: int) -> dict[str, Any]:
        return posts.post_json(await posts.get_post(repo, post_id))  # 404 when missing

    @app.patch("/posts/{post_id}")
    async def update_post(post_id: int, params: Params) -> dict[str, Any]:
        return posts.post_json(await posts.update_post(repo, post_id, params))

    @app.delete("/posts/{post_id}", status_code=204)
    async def delete_post(post_id: int) -> Response:
        await posts.delete_post(repo, post_id)
        return Response(status_code=204)

    @app.post("/posts/{post_id}/comments", status_code=201)
    async def add_comment(post_id: int, params: Params) -> dict[str, Any]:
        return posts.comment_json(await posts.add_comment(repo, post_id, params))

    return app
