"""Dynamic repos (Ecto's ``put_dynamic_repo/1`` and ``get_dynamic_repo/0``): for the current
context, every call on a Repo runs on another started Repo, e.g. one per tenant database.

The repo in effect lives in a context variable of the calling repo, so it holds for the current
task and the tasks it spawns from then on (contextvars are copied into a new task), and never
for other tasks. A Repo's ``_executor`` (what every call goes through) reads that variable: one
``ContextVar.get`` per call.

.. code-block:: python

    with repo.using(tenant_repo):        # also `async with`
        await repo.all(Post)             # runs on tenant_repo's pool and database
    previous = repo.put_dynamic_repo(tenant_repo)
    assert repo.get_dynamic_repo() is tenant_repo
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asyncecto._executor import Executor
from asyncecto.errors import ArgumentError, RepoStateError

if TYPE_CHECKING:
    from ._core import RepoCore

__all__ = ("DynamicRepos", "Using")


def _target(repo: Any, other: Any) -> RepoCore | None:
    """What ``repo``'s variable holds for ``other`` (``None``: ``repo`` itself), after checking it."""
    core = getattr(other, "_own_executor", None)
    if not isinstance(core, Executor):
        raise ArgumentError(
            f"put_dynamic_repo/using expects a Repo, got {other!r}\n\n"
            "fix: pass another started Repo, e.g. `with repo.using(Repo(tenant_url)):` after "
            "`await tenant_repo.start()`"
        )
    if other is repo:
        return None
    own: RepoCore = core  # type: ignore[assignment]
    if own.state != "running":
        raise RepoStateError(
            f"use {own.name!r} as the dynamic repo of {repo.name!r}",
            own.state,
            "start it first (`await other.start()` or `async with other:`); a dynamic repo must be running",
        )
    if own.config.read_only and not repo.config.read_only:
        raise ArgumentError(
            f"the read-only repo {own.name!r} cannot be the dynamic repo of the writable repo {repo.name!r}: "
            f"{repo.name}'s writes would reach it unrefused\n\nfix: call the read-only repo directly for reads"
        )
    return own


class Using:
    """``with repo.using(other):`` / ``async with repo.using(other):`` — ``other`` for the block.

    On exit the repo in effect before the block is restored, also when the block raises. One
    ``Using`` is entered once at a time; ``repo.using(other)`` makes a new one each call.
    """

    __slots__ = ("_other", "_repo", "_token")

    def __init__(self, repo: DynamicRepos, other: Any) -> None:
        self._repo = repo
        self._other = other
        self._token: contextvars.Token[RepoCore | None] | None = None
        _target(repo, other)  # refuse a bad argument where `using` is called, not only on entry

    def __enter__(self) -> Any:
        if self._token is not None:
            raise ArgumentError("this repo.using(...) block is already entered; call repo.using(other) again")
        self._token = self._repo._dynamic_var.set(_target(self._repo, self._other))
        return self._other

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        var = self._repo._dynamic_var
        try:
            var.reset(token)
        except ValueError:  # left in another context (an async generator finished elsewhere)
            var.set(token.old_value if token.old_value is not contextvars.Token.MISSING else None)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class DynamicRepos:
    """The Repo's dynamic-repo methods; the Repo sets ``_own_executor`` and ``_dynamic_var``."""

    _own_executor: RepoCore
    _dynamic_var: contextvars.ContextVar[RepoCore | None]

    if TYPE_CHECKING:

        @property
        def name(self) -> str: ...
        @property
        def config(self) -> Any: ...

    def using(self, repo: Any) -> Using:
        """Within the block, every call on this repo, from this task and the tasks it starts, runs
        on ``repo`` (another started Repo: its pool, database and configuration; this repo's
        ``prepare_query``/``default_options`` hooks still apply). Nesting works; on exit (also on
        an exception) the repo in effect before comes back. Sync or async:

        .. code-block:: python

            with repo.using(tenant_repo):
                await repo.insert(post)          # into tenant_repo's database

        :raises ArgumentError: ``repo`` is not a Repo, or is read-only while this one is not
        :raises RepoStateError: ``repo`` is not running
        """
        return Using(self, repo)

    def put_dynamic_repo(self, repo: Any) -> Any:
        """Make ``repo`` the one this repo's calls run on in the current context (Ecto's
        ``put_dynamic_repo/1``); returns the previous one. ``repo.put_dynamic_repo(repo)`` goes
        back to the repo itself. Prefer :meth:`using`, which restores the previous one on exit.

        :raises ArgumentError: ``repo`` is not a Repo, or is read-only while this one is not
        :raises RepoStateError: ``repo`` is not running
        """
        target = _target(self, repo)
        previous = self.get_dynamic_repo()
        self._dynamic_var.set(target)
        return previous

    def get_dynamic_repo(self) -> Any:
        """The repo this repo's calls run on in the current context: the one given to
        :meth:`put_dynamic_repo` or :meth:`using`, else this repo itself (Ecto's ``get_dynamic_repo/0``)."""
        target = self._dynamic_var.get()
        return self if target is None else target.repo
