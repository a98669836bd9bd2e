"""Web framework helpers, framework-free: the repo's lifetime and the error → HTTP mapping.

The framework glue lives in :mod:`asyncecto.integrations.starlette` (Starlette and FastAPI)
and :mod:`asyncecto.integrations.aiohttp`; each imports its framework, this module imports none.

- :func:`repo_running` starts a repo that is not running and, on exit, stops it only if it
  started it: a test can start the repo (and open a sandbox) before the app's lifespan runs,
  and the lifespan leaves it alone.
- :func:`error_response` maps the errors a handler lets through to a status and a JSON body in
  Phoenix's shape: ``NoResultsError`` → 404 ``{"errors": {"detail": "Not Found"}}``,
  ``StaleEntryError`` → 409, ``InvalidChangesetError`` → 422 with
  ``{"errors": traverse_errors(changeset)}``. A ``MultiError`` answers as its value would: an
  invalid changeset → 422, a mapped error (``NoResultsError`` …) → that error's answer; any
  other value is not mapped (the framework answers 500).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from asyncecto.changeset import Changeset, traverse_errors
from asyncecto.errors import InvalidChangesetError, MultiError, NoResultsError, StaleEntryError

if TYPE_CHECKING:
    from asyncecto.repo import Repo

__all__ = ("error_response", "repo_running")


@asynccontextmanager
async def repo_running(repo: Repo) -> AsyncIterator[Repo]:
    """Run the body with ``repo`` started; stop it afterwards only if this call started it."""
    if repo.state == "running":
        yield repo
        return
    await repo.start()
    try:
        yield repo
    finally:
        await repo.stop()


def error_response(exc: BaseException) -> tuple[int, dict[str, Any]] | None:
    """``(status, JSON body)`` for an error a web handler may let through, or ``None`` for others.

    >>> error_response(NoResultsError("get Post 1"))
    (404, {'errors': {'detail': 'Not Found'}})
    >>> error_response(ValueError()) is None
    True
    """
    if isinstance(exc, InvalidChangesetError):
        changeset = exc.changeset
        errors = traverse_errors(changeset) if isinstance(changeset, Changeset) else {}
        return 422, {"errors": errors}
    if isinstance(exc, MultiError):  # answer as the failed operation's value would
        if isinstance(exc.value, Changeset):
            return 422, {"errors": traverse_errors(exc.value)}
        if isinstance(exc.value, BaseException) and exc.value is not exc:
            return error_response(exc.value)
        return None
    if isinstance(exc, NoResultsError):
        return 404, {"errors": {"detail": "Not Found"}}
    if isinstance(exc, StaleEntryError):
        return 409, {"errors": {"detail": "Conflict"}}
    return None
