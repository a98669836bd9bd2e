"""asyncecto.integrations: the repo's lifetime in Starlette/FastAPI and aiohttp apps, and errors as JSON."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asyncecto import Repo
from asyncecto.changeset import Changeset, cast, cast_assoc, validate_length, validate_required
from asyncecto.errors import InvalidChangesetError, NoResultsError
from asyncecto.integrations import aiohttp as aio
from asyncecto.integrations import error_response, repo_running
from asyncecto.integrations import starlette as star

from ..assoc_schemas import Comment as BlogComment
from ..assoc_schemas import Post as BlogPost
from ..schemas import Weather


def weather_changeset(params: dict[str, Any]) -> Changeset[Weather]:
    return cast(Weather(), params, ["city", "temp_lo"]) | validate_required("city") | validate_length("city", min=2)


# -- the start-if-not-running rule ---------------------------------------------------------


async def test_repo_running_starts_and_stops_a_repo_it_started(database_url: str) -> None:
    repo = Repo(database_url, pool_size=2)
    async with repo_running(repo) as running:
        assert running is repo and repo.state == "running"
        assert (await repo.query("SELECT 1")).rows == [(1,)]
    assert repo.state == "closed"
    async with repo_running(repo):  # a stopped repo starts again
        assert repo.state == "running"
    assert repo.state == "closed"


async def test_repo_running_leaves_a_running_repo_alone(repo: Repo) -> None:
    async with repo_running(repo):
        pass
    assert repo.state == "running"
    with pytest.raises(RuntimeError, match="boom"):
        async with repo_running(repo):
            raise RuntimeError("boom")
    assert repo.state == "running"


async def test_starlette_lifespan_owns_only_a_repo_it_started(database_url: str, repo: Repo) -> None:
    fresh = Repo(database_url, pool_size=2)
    app = FastAPI(lifespan=star.lifespan(fresh))
    async with app.router.lifespan_context(app):
        assert fresh.state == "running"
    assert fresh.state == "closed"

    plain = Starlette(lifespan=star.lifespan(repo))  # plain Starlette; the repo was already running
    async with plain.router.lifespan_context(plain):
        assert repo.state == "running"
    assert repo.state == "running"


async def test_starlette_lifespan_composes_in_a_users_lifespan(database_url: str) -> None:
    repo = Repo(database_url, pool_size=2)
    seen: list[str] = []

    @asynccontextmanager
    async def my_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with star.lifespan(repo)(app):
            seen.append(repo.state)
            async with repo_running(repo):  # nested: already running, left alone
                yield
            seen.append(repo.state)

    app = FastAPI(lifespan=my_lifespan)
    async with app.router.lifespan_context(app):
        pass
    assert seen == ["running", "running"] and repo.state == "closed"


# -- errors as JSON: Starlette / FastAPI ---------------------------------------------------


def error_routes(repo: Repo) -> dict[str, Callable[[], Any]]:
    async def missing() -> Any:
        return await repo.get_or_raise(Weather, 10**9)

    async def invalid() -> Any:
        return await repo.insert(weather_changeset({"city": "X", "temp_lo": "cold"}))

    async def stale() -> Any:
        ghost = await repo.insert(Weather(city="Ghost"))
        await repo.delete(ghost)
        return await repo.delete(ghost)

    async def other() -> Any:
        raise LookupError("not mapped")

    return {"missing": missing, "invalid": invalid, "stale": stale, "other": other}


EXPECTED = {
    "missing": (404, {"errors": {"detail": "Not Found"}}),
    "invalid": (422, {"errors": {"city": ["should be at least 2 character(s)"], "temp_lo": ["is invalid"]}}),
    "stale": (409, {"errors": {"detail": "Conflict"}}),
}


def starlette_routes(repo: Repo) -> list[Route]:
    def endpoint(fn: Callable[[], Any]) -> Callable[[Request], Any]:
        async def call(request: Request) -> JSONResponse:
            await fn()
            return JSONResponse({})

        return call

    return [Route(f"/{name}", endpoint(fn)) for name, fn in error_routes(repo).items()]


@pytest.mark.parametrize("how", ["fastapi_param", "fastapi_add", "starlette_param", "starlette_add"])
async def test_exception_handlers_answer_json(repo: Repo, how: str) -> None:
    app: Starlette
    if how.startswith("fastapi"):
        app = FastAPI(exception_handlers=star.exception_handlers) if how == "fastapi_param" else FastAPI()
        for name, fn in error_routes(repo).items():
            app.add_api_route(f"/{name}", fn)
    elif how == "starlette_param":
        app = Starlette(routes=starlette_routes(repo), exception_handlers=star.exception_handlers)
    else:
        app = Starlette(routes=starlette_routes(repo))
    if how.endswith("_add"):
        star.add_exception_handlers(app)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for name, (status, body) in EXPECTED.items():
            response = await client.get(f"/{name}")
            assert (response.status_code, response.json()) == (status, body), name
        assert (await client.get("/other")).status_code == 500  # anything else is not ours


# -- aiohttp ---------------------------------------------------------------------------


async def test_aiohttp_setup_runs_the_repo_and_answers_json(database_url: str) -> None:
    repo = Repo(database_url, pool_size=2)
    app = web.Application()
    aio.setup(app, repo)

    def handler(fn: Callable[[], Any]) -> Callable[[web.Request], Any]:
        async def call(request: web.Request) -> web.Response:
            assert request.app[aio.REPO] is repo
            await fn()
            return web.json_response({})

        return call

    for name, fn in error_routes(repo).items():
        app.router.add_get(f"/{name}", handler(fn))
    assert repo.state == "new"
    async with TestClient(TestServer(app)) as client:
        assert repo.state == "running"
        try:
            for name, (status, body) in EXPECTED.items():
                response = await client.get(f"/{name}")
                assert (response.status, await response.json()) == (status, body), name
            assert (await client.get("/other")).status == 500
        finally:
            await repo.query("DELETE FROM weather WHERE city = 'Ghost'")
    assert repo.state == "closed"  # setup's cleanup context started it, so it stopped it


async def test_aiohttp_repo_context_leaves_a_running_repo_alone(repo: Repo) -> None:
    app = web.Application(middlewares=[aio.error_middleware])
    app.cleanup_ctx.append(aio.repo_context(repo))

    async def show(request: web.Request) -> web.Response:
        return web.json_response({"city": (await repo.get_by_or_raise(Weather, city="Oslo")).city})

    app.router.add_get("/oslo", show)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/oslo")).status == 404
        await repo.insert(Weather(city="Oslo"))
        assert await (await client.get("/oslo")).json() == {"city": "Oslo"}
    assert repo.state == "running"


# -- the framework-free part -----------------------------------------------------------


def test_nested_changeset_errors_nest_in_the_422_body() -> None:
    def comment(c: BlogComment, params: Mapping[str, Any]) -> Changeset[BlogComment]:
        return cast(c, params, ["text"]) | validate_required("text")

    cs = cast(BlogPost(), {"title": "", "comments": [{"text": "ok"}, {"text": ""}]}, ["title"]) | validate_required(
        "title"
    )
    cs = cast_assoc(cs, "comments", with_=comment)
    assert error_response(InvalidChangesetError("insert", cs)) == (
        422,
        {"errors": {"title": ["can't be blank"], "comments": [{}, {"text": ["can't be blank"]}]}},
    )
    assert error_response(NoResultsError("q")) == (404, {"errors": {"detail": "Not Found"}})
    assert error_response(KeyError("x")) is None


def test_importing_asyncecto_loads_no_web_framework() -> None:
    code = (
        "import sys, asyncecto, asyncecto.integrations\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'aiohttp'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names() -> None:
    import asyncecto.integrations as base

    for module in (base, star, aio):
        assert isinstance(module.__all__, tuple) and list(module.__all__) == sorted(module.__all__)
        assert all(getattr(module, name) is not None for name in module.__all__)
