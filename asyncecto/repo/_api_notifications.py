"""The Repo's notifications: ``listen`` and ``notify`` (PostgreSQL's ``LISTEN``/``NOTIFY``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from asyncecto.errors import (
    ArgumentError,
    RepoStateError,
    UnsupportedInTransactionPoolingError,
)
from asyncecto.query import Query

from ._core import DEFAULT, RepoCore
from ._notifications import DEFAULT_MAX_QUEUE, Subscription, check_channel, check_payload, listener_of
from ._options import CallHooks

__all__ = ("Notifications",)

_T = TypeVar("_T")
Queryable = type[_T] | Query[_T] | tuple[str, type[_T]]


class Notifications(CallHooks):
    """Publish/subscribe: ``listen``, ``notify``."""

    _executor: RepoCore

    def listen(self, channel: str, /, *channels: str, max_queue: int = DEFAULT_MAX_QUEUE) -> Subscription:
        """Notifications sent on ``channel`` (and ``channels``), from one connection the repo keeps for them.

        .. code-block:: python

            async with repo.listen("events") as feed:    # returns once LISTEN is in effect
                await repo.notify("events", "hello")
                async for n in feed:                      # Notification(channel, payload, pid)
                    print(n.payload)

        A plain ``async for n in repo.listen("events"):`` works too. The iteration ends when the repo
        stops. After the connection drops, the repo reconnects and listens again; notifications sent
        meanwhile are lost. When a reader falls ``max_queue`` notifications behind, the oldest unread
        one is dropped (``feed.dropped``, ``listener_stats()["dropped"]``).

        :raises RepoStateError: the repo is not running
        :raises ArgumentError: a channel is not a non-empty str of at most 63 bytes
        :raises DatabaseUnavailableError: (on entry) the listener connection cannot be opened
        :raises UnsupportedInTransactionPoolingError: the repo is behind a transaction pooler
            (``pooler="transaction"``) and has no ``direct_url`` to listen on (with one, it listens there)
        """
        self._executor._check("listen")
        config = self._executor.config
        if config.transaction_pooled and config.direct_url is None:
            raise UnsupportedInTransactionPoolingError(
                "repo.listen(...)",
                "notifications are delivered to a session, and a transaction pooler gives the server "
                "connection to other clients after each transaction: the LISTEN would be lost",
                "give the repo direct_url= (a URL reaching the database itself, not the pooler): "
                "Repo(url, pooler='transaction', direct_url='postgres://user:pass@db-host:5432/my_db'); "
                "repo.listen then uses a connection to it",
            )
        names = tuple(dict.fromkeys(check_channel(c, self._executor.adapter) for c in (channel, *channels)))
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ArgumentError(f"max_queue must be a positive integer, got {max_queue!r}")
        listener = listener_of(self._executor)
        if listener is None:  # pragma: no cover - a running repo always has one
            raise RepoStateError("listen", self._executor.state)
        return Subscription(listener, names, max_queue)

    async def notify(
        self,
        channel: str,
        payload: str = "",
        *,
        timeout: Any = DEFAULT,
        log: str | bool | None = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Send ``payload`` on ``channel`` (``SELECT pg_notify($1, $2)``).

        Takes the shared per-call options as :meth:`query` (``log``, ``telemetry_options``,
        ``telemetry_event``, ``query_cache``); ``default_options("notify")`` applies.

        Inside a transaction it is delivered when the transaction commits, and never if it rolls back
        (so never from the test sandbox, whose transaction always rolls back).

        :raises ArgumentError: the channel is not a non-empty str of at most 63 bytes, or the payload
            is not a str of at most 7999 bytes
        """
        check_channel(channel, self._executor.adapter)
        check_payload(payload, self._executor.adapter)
        core = self._executor
        r = self._resolve("notify", "notify", None, None, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            await core.run("execute", core.adapter.notify_sql(), [channel, payload], r.timeout, None)

    def listener_stats(self) -> dict[str, Any]:
        """The listener's state: ``connected``, ``pid`` (its server process, or ``None``), ``reconnects``,
        ``channels`` (LISTENed now, sorted), ``subscribers`` and ``dropped`` (notifications over all feeds)."""
        listener = listener_of(self._executor)
        if listener is None:
            return {"connected": False, "pid": None, "reconnects": 0, "channels": [], "subscribers": 0, "dropped": 0}
        return listener.stats()
