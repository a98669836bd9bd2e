"""The aiohttp app: ``setup(app, repo)`` runs the Repo with the app and answers its errors as JSON.

``create_app()`` reads the database from ``$DATABASE_URL`` (else a local or embedded server) and
creates the tables on startup; tests pass their own repo and ``migrate=False``.
Run it with ``python -m examples.aiohttp_app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from asyncecto import Repo
from asyncecto.integrations.aiohttp import REPO, setup

from .. import posts

routes = web.RouteTableDef()


def _id(request: web.Request) -> int:
    return int(request.match_info["post_id"])  # the routes only match digits


async def _params(request: web.Request) -> dict[str, Any]:
    try:
        params = await request.json()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        body = '{"errors": {"detail": "expected a JSON object"}}'
        raise web.HTTPBadRequest(text=body, content_type="application/json")
    return params


@routes.get("/posts")
async def list_posts(request: web.Request) -> web.Response:
    return web.json_response([posts.post_json(p) for p in await posts.list_posts(request.app[REPO])])


@routes.post("/posts")
async def create_post(request: web.Request) -> web.Response:
    post = await posts.create_post(request.app[REPO], await _params(request))  # 422 when invalid
    return web.json_response(posts.post_json(post), status=201)


@routes.get(r"/posts/{post_id:\d+}")
async def show_post(request: web.Request) -> web.Response:
    return web.json_response(posts.post_json(await posts.get_post(request.app[REPO], _id(request))))  # 404


@routes.patch(r"/posts/{post_id:\d+}")
async def update_post(request: web.Request) -> web.Response:
    post = await posts.update_post(request.app[REPO], _id(request), await _params(request))
    return web.json_response(posts.post_json(post))


@routes.delete(r"/posts/{post_id:\d+}")
async def delete_post(request: web.Request) -> web.Response:
    await posts.delete_post(request.app[REPO], _id(request))
    return web.Response(status=204)


@routes.post(r"/posts/{post_id:\d+}/comments")
async def add_comment(request: web.Request) -> web.Response:
    comment = await posts.add_comment(request.app[REPO], _id(request), await _params(request))
    return web.json_response(posts.comment_json(comment), status=201)


async def _migrate(app: web.Application) -> AsyncIterator[None]:
    await posts.migrate(app[REPO])  # runs after setup()'s context started the repo
    yield


async def _storage_up(app: web.Application) -> AsyncIterator[None]:
    await app[REPO].storage_up()  # creates the database if missing, before the repo starts
    yield


def create_app(repo: Repo | None = None, *, migrate: bool = True) -> web.Application:
    """The app over ``repo`` (default: :func:`examples.posts.new_repo`)."""
    app = web.Application()
    if migrate:
        app.cleanup_ctx.append(_storage_up)
    setup(app, repo if repo is not None else posts.new_repo())
    if migrate:
        app.cleanup_ctx.append(_migrate)
    app.add_routes(routes)
    return app
