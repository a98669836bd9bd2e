"""``Repo``: the public API. Each method is a thin entry point into the read or write path.

Shared options (keyword-only, on every call that talks to the database):

- ``timeout``: seconds this call may take; the client cancels the statement on the server when
  it runs out. Without it the repo's ``timeout`` applies, enforced by the server itself
  (``statement_timeout``, set when a connection opens) so that no timer is armed per query.
  That server limit applies to every statement; create the Repo with ``timeout=None`` to
  lift it.
- ``prefix``: the PostgreSQL schema to use instead of the struct's, schema's or repo's
- ``log`` (reads, bulk operations, streams, raw SQL): ``False`` silences this call's query log
  line (telemetry still fires), a level name (``"info"``) overrides the repo's level; a repo
  created with ``log=False`` stays silent whatever a call says (as Ecto)
- ``telemetry_options`` (same calls): a mapping found in each of the call's telemetry events
  (``event.options``), parallel preload queries included

A subclass may override the hooks ``prepare_query`` and ``default_options`` and declare its own
per-call options in ``query_options`` (see :class:`asyncecto.repo._options.CallHooks`).
"""

from __future__ import annotations

import contextvars
from typing import Any, NoReturn, Self

from asyncecto.errors import RepoStateError

from ._api_notifications import Notifications
from ._api_raw import QueryResult, RawSQL
from ._api_reads import Reads
from ._api_replicas import Replicas
from ._api_transactions import Transactions
from ._api_writes import Writes
from ._config import RepoConfig
from ._core import RepoCore, running_repos
from ._dynamic import DynamicRepos
from ._telemetry import Telemetry
from ._tenant import Tenants

__all__ = ("QueryResult", "Repo")

#: what a ``read_only=True`` repo refuses (Ecto leaves these undefined), and ``copy_from`` (it writes rows)
READ_ONLY_REFUSED = (
    "insert",
    "insert_all",
    "insert_or_update",
    "update",
    "update_all",
    "delete",
    "delete_all",
    "copy_from",
)


def _refuse(repo: str, name: str) -> Any:
    def refused(*args: Any, **kwargs: Any) -> NoReturn:
        raise RepoStateError(
            name,
            "read-only",
            f"the repo {repo!r} was created with read_only=True, so {name} is not available (as Ecto's "
            "read_only: true repos); write through a repo created without read_only",
        )

    refused.__name__ = refused.__qualname__ = name
    return refused


class Repo(Reads, Writes, Transactions, RawSQL, Notifications, DynamicRepos, Tenants, Replicas):
    """A pooled connection to PostgreSQL, run by a supervisor task group.

    .. code-block:: python

        repo = Repo("postgres://postgres@localhost/ecto_simple", pool_size=10)
        async with repo:
            w = await repo.insert(Weather(temp_lo=0, temp_hi=23))
            w = await repo.get(Weather, w.id)

    :param url: ``postgres://``, ``postgresql://`` or ``ecto://`` URL (default: ``$DATABASE_URL``);
        options may also be given as URL query parameters, which win over keyword options
    :param name: a name for logs and telemetry (default: the database name)
    :param options: ``pool_size``, ``pool_timeout``, ``timeout``, ``connect_timeout``,
        ``shutdown_timeout``, ``cleanup_timeout``, ``ssl``, ``prefix``, ``log``, ``server_settings``,
        ``read_only`` (the write functions refuse), ``stacktrace`` (events carry the caller's frames) …
        (see :class:`asyncecto.repo.RepoConfig`); timeouts are seconds; and ``on_preloader_spawn``,
        a function called at the start of each parallel preload task (see :meth:`preload`)

    Ecto's Repo callbacks are methods a subclass overrides: ``prepare_query(operation, query,
    options) -> (query, options)`` runs before every query-based call, ``default_options(operation)``
    gives options the call's own override, and ``query_options`` names the extra keywords calls
    may pass for them (any other unknown keyword is refused):

    .. code-block:: python

        class MyRepo(Repo):
            query_options = frozenset({"with_deleted"})

            def prepare_query(self, operation, query, options):
                if options.get("with_deleted") or query.source.schema is not Post:
                    return query, options
                return query | where(lambda p: is_nil(p.deleted_at)), options

        await repo.all(Post)                     # live posts only
        await repo.all(Post, with_deleted=True)  # every post
    """

    def __init__(self, url: str | None = None, /, *, name: str | None = None, **options: Any) -> None:
        #: this repo's own executor (pool, config, telemetry); ``_executor`` is the one in effect
        self._own_executor = own = RepoCore(url, name=name, repo=self, **options)
        #: the dynamic repo's executor for the current context (``None``: this repo's own)
        self._dynamic_var: contextvars.ContextVar[RepoCore | None] = contextvars.ContextVar(
            f"asyncecto_dynamic_{id(self):x}", default=None
        )
        if own.config.read_only:
            for method in READ_ONLY_REFUSED:
                setattr(self, method, _refuse(own.name, method))

    @property
    def _executor(self) -> RepoCore:  # type: ignore[override]
        """The executor every call runs on: the dynamic repo's in this context (:meth:`using`,
        :meth:`put_dynamic_repo`), else this repo's own. One context-variable read."""
        return self._dynamic_var.get() or self._own_executor

    @classmethod
    def all_running(cls) -> list[Self]:
        """The repos of this class (subclasses included) now running, in the order they started
        (Ecto's ``Ecto.Repo.all_running/0``).

        >>> Repo.all_running()
        []
        """
        return [repo for repo in running_repos() if isinstance(repo, cls)]

    def init(self, context: str, config: RepoConfig) -> RepoConfig:
        """Ecto's ``init/2`` callback: called with ``"supervisor"`` each time the repo starts, before
        it connects, with the config as created (not a previous start's); the config it returns is
        the one used (default: ``config`` unchanged). It may not change ``read_only``.

        .. code-block:: python

            class MyRepo(Repo):
                def init(self, context, config):
                    return attrs.evolve(config, pool_size=int(os.environ["POOL_SIZE"]))
        """
        return config

    def __repr__(self) -> str:
        return repr(self._own_executor)

    # -- lifecycle ----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The repo's name in logs and telemetry (default: the database name)."""
        return self._own_executor.name

    @property
    def config(self) -> RepoConfig:
        """The repo's options, as resolved from the URL and keywords."""
        return self._own_executor.config

    @property
    def telemetry(self) -> Telemetry:
        """Query events: ``repo.telemetry.attach(handler)`` (see ``docs/telemetry.md``)."""
        return self._own_executor.telemetry

    @property
    def state(self) -> str:
        """``"new"``, ``"starting"``, ``"running"``, ``"closing"`` or ``"closed"``."""
        return self._own_executor.state

    async def start(self) -> None:
        """Open the pool and start the supervisor; raises if the database cannot be reached.

        :raises DatabaseUnavailableError: no connection could be opened
        :raises RepoStateError: the repo is already running or starting
        """
        await self._own_executor.start()

    async def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, wait for in-flight work up to ``timeout`` (default: ``shutdown_timeout``), close.

        Past ``timeout``, the connections still in use are closed (their holders get
        ``ConnectionLostError`` naming the stop) and their statements are cancelled on the server,
        so nothing keeps running there. Calling it on a repo that is not running does nothing.
        Cancelling the caller does not leave the repo half-closed.
        """
        await self._own_executor.stop(timeout)

    async def __aenter__(self) -> Self:
        await self._own_executor.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._own_executor.stop()

    @property
    def supervisor_restarts(self) -> dict[str, int]:
        """How many times each background worker was restarted."""
        return self._own_executor.supervisor_restarts

    def pool_stats(self) -> dict[str, int]:
        """Pool counters: ``size``, ``idle``, ``in_use``, ``checkouts``, ``opened``, ``resets`` …"""
        return self._own_executor.pool_stats()

    def cache_stats(self) -> dict[str, int]:
        """Plan cache counters: ``hits``, ``misses``, ``size``."""
        return self._own_executor.cache_stats()

    # -- storage ------------------------------------------------------------------
    async def storage_up(self) -> str:
        """Create the database (``"created"``, or ``"already_up"``); the repo need not be started."""
        return await self._own_executor.adapter.storage_up()

    async def storage_down(self) -> str:
        """Drop the database (``"dropped"``, or ``"already_down"``); the repo need not be started."""
        return await self._own_executor.adapter.storage_down()
