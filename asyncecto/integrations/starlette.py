"""Starlette and FastAPI: the repo's lifespan and JSON error handlers.

.. code-block:: python

    from fastapi import FastAPI
    from asyncecto.integrations.starlette import exception_handlers, lifespan

    app = FastAPI(lifespan=lifespan(repo), exception_handlers=exception_handlers)

``lifespan(repo)`` starts the repo unless it is already running and stops it only if it started
it. Inside a lifespan of your own, use ``async with repo_running(repo):`` (re-exported here).
``add_exception_handlers(app)`` adds the handlers to an existing app.
Requires ``pip install "asyncecto[fastapi]"`` (or Starlette alone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from asyncecto.errors import InvalidChangesetError, MultiError, NoResultsError, StaleEntryError

from . import error_response, repo_running

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from asyncecto.repo import Repo

__all__ = ("add_exception_handlers", "exception_handlers", "lifespan", "repo_running")


def lifespan(repo: Repo) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)`` that runs ``repo``."""

    @asynccontextmanager
    async def repo_lifespan(app: Any) -> AsyncIterator[None]:
        async with repo_running(repo):
            yield

    return repo_lifespan


async def _handle_error(request: Request, exc: Exception) -> Response:
    """The JSON response for ``NoResultsError`` (404), ``StaleEntryError`` (409),
    ``InvalidChangesetError`` (422) and a ``MultiError`` whose value is one of these or an invalid
    changeset; any other exception is raised again."""
    mapped = error_response(exc)
    if mapped is None:
        raise exc
    status, body = mapped
    return JSONResponse(body, status_code=status)


#: for ``FastAPI(exception_handlers=...)`` or ``Starlette(exception_handlers=...)``
exception_handlers: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    NoResultsError: _handle_error,
    StaleEntryError: _handle_error,
    InvalidChangesetError: _handle_error,
    MultiError: _handle_error,
}


def add_exception_handlers(app: Starlette) -> None:
    """Add :data:`exception_handlers` to ``app`` (a FastAPI or Starlette application)."""
    for exc_class, handler in exception_handlers.items():
        app.add_exception_handler(exc_class, handler)
