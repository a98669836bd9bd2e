"""Issue 16 (misc): MultiError through the web integrations, and connection errors that name host and fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI

from asyncecto import Multi, Repo
from asyncecto.changeset import Changeset, cast, validate_length, validate_required
from asyncecto.integrations import aiohttp as aio
from asyncecto.integrations import starlette as star

from ..schemas import Weather

# -- defect 10: MultiError through FastAPI and aiohttp ------------------------------------


def weather_changeset(params: dict[str, Any]) -> Changeset[Weather]:
    return cast(Weather(), params, ["city", "temp_lo"]) | validate_required("city") | validate_length("city", min=2)


INVALID = {"city": "X", "temp_lo": "cold"}
INVALID_ERRORS = {"errors": {"city": ["should be at least 2 character(s)"], "temp_lo": ["is invalid"]}}


def multi_routes(repo: Repo) -> dict[str, Callable[[], Any]]:
    """Each route runs a Multi that fails in one way; the first two answer 422 through ``repo.insert`` too."""

    async def preflight() -> Any:  # an invalid changeset given as data: fails before BEGIN
        multi = (
            Multi.new() | Multi.insert("ok", Weather(city="Multi ok")) | Multi.insert("w", weather_changeset(INVALID))
        )
        return await repo.transaction(multi)

    async def in_transaction() -> Any:  # built from the changes so far: fails inside the transaction
        multi = (
            Multi.new()
            | Multi.insert("ok", Weather(city="Multi ok"))
            | Multi.insert("w", lambda changes: weather_changeset(INVALID))
        )
        return await repo.transaction(multi)

    async def missing() -> Any:
        return await repo.transaction(Multi.new() | Multi.run("w", lambda r, c: r.get_or_raise(Weather, 10**9)))

    async def stale() -> Any:
        ghost = await repo.insert(Weather(city="Ghost"))
        await repo.delete(ghost)
        return await repo.transaction(Multi.new() | Multi.delete("w", ghost))

    async def error_value() -> Any:  # Multi.error with a plain value: not the library's to map
        return await repo.transaction(Multi.new() | Multi.error("w", "out of stock"))

    async def rollback_value() -> Any:
        return await repo.transaction(Multi.new() | Multi.run("w", lambda r, c: r.rollback({"why": "no"})))

    async def other_exception() -> Any:  # an exception no mapping knows
        def boom(r: Repo, c: Any) -> Any:
            raise LookupError("not mapped")

        return await repo.transaction(Multi.new() | Multi.run("w", boom))

    return {
        "preflight": preflight,
        "in_transaction": in_transaction,
        "missing": missing,
        "stale": stale,
        "error_value": error_value,
        "rollback_value": rollback_value,
        "other_exception": other_exception,
    }


MULTI_EXPECTED: dict[str, tuple[int, Any]] = {
    "preflight": (422, INVALID_ERRORS),
    "in_transaction": (422, INVALID_ERRORS),
    "missing": (404, {"errors": {"detail": "Not Found"}}),
    "stale": (409, {"errors": {"detail": "Conflict"}}),
    "error_value": (500, None),
    "rollback_value": (500, None),
    "other_exception": (500, None),
}


async def test_multi_error_is_mapped_by_fastapi_like_the_operations_error(repo: Repo) -> None:
    app = FastAPI(exception_handlers=star.exception_handlers)
    for name, fn in multi_routes(repo).items():
        app.add_api_route(f"/{name}", fn)

    async def insert_directly() -> Any:
        return await repo.insert(weather_changeset(INVALID))

    app.add_api_route("/direct", insert_directly)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        direct = await client.get("/direct")
        assert (direct.status_code, direct.json()) == (422, INVALID_ERRORS)
        for name, (status, body) in MULTI_EXPECTED.items():
            response = await client.get(f"/{name}")
            assert response.status_code == status, name
            if body is not None:
                assert response.json() == body, name
    assert await repo.all(Weather) == []  # every Multi rolled back


async def test_multi_error_is_mapped_by_aiohttp_like_the_operations_error(repo: Repo) -> None:
    app = web.Application()
    aio.setup(app, repo)  # the repo runs already: the cleanup context leaves it alone

    def handler(fn: Callable[[], Any]) -> Callable[[web.Request], Any]:
        async def call(request: web.Request) -> web.Response:
            await fn()
            return web.json_response({})

        return call

    for name, fn in multi_routes(repo).items():
        app.router.add_get(f"/{name}", handler(fn))
    async with TestClient(TestServer(app)) as client:
        for name, (status, body) in MULTI_EXPECTED.items():
            response = await client.get(f"/{name}")
            assert response.status == status, name
            if body is not None:
                assert await response.json() == body, name
    assert await repo.all(Weather) == []
