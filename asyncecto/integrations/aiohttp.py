"""aiohttp: the repo as a cleanup context and a middleware for JSON errors.

.. code-block:: python

    from aiohttp import web
    from asyncecto.integrations.aiohttp import REPO, setup

    app = web.Application()
    setup(app, repo)          # cleanup context + error middleware + app[REPO] = repo

    async def show(request: web.Request) -> web.Response:
        post = await request.app[REPO].get_or_raise(Post, int(request.match_info["id"]))  # 404

The cleanup context starts the repo unless it is already running and stops it only if it
started it. Requires ``pip install "asyncecto[aiohttp]"``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from asyncecto.repo import Repo

from . import error_response, repo_running

__all__ = ("REPO", "error_middleware", "repo_context", "setup")

#: where :func:`setup` keeps the repo: ``request.app[REPO]``
REPO: web.AppKey[Repo] = web.AppKey("asyncecto_repo", Repo)


def repo_context(repo: Repo) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context for ``app.cleanup_ctx.append(...)`` that runs ``repo`` while the app runs."""

    async def repo_cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
        async with repo_running(repo):
            yield

    return repo_cleanup_ctx


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer ``NoResultsError`` with 404, ``StaleEntryError`` with 409 and ``InvalidChangesetError``
    with 422 and the changeset's errors, as JSON (a ``MultiError`` as its value would); anything
    else passes through."""
    try:
        return await handler(request)
    except Exception as exc:
        mapped = error_response(exc)
        if mapped is None:
            raise
        status, body = mapped
        return web.json_response(body, status=status)


def setup(app: web.Application, repo: Repo) -> None:
    """Run ``repo`` with ``app`` (:func:`repo_context`), map its errors (:func:`error_middleware`)
    and keep it as ``app[REPO]``."""
    app[REPO] = repo
    app.cleanup_ctx.append(repo_context(repo))
    app.middlewares.append(error_middleware)
