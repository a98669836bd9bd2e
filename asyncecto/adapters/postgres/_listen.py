"""The connection behind ``repo.listen``: one asyncpg connection outside the pool, kept for LISTEN.

asyncpg issues ``LISTEN "<channel>"`` (a quoted identifier, so the name matches ``pg_notify``'s text
exactly) when the first callback is added for a channel and ``UNLISTEN`` when the last is removed;
its termination listener tells us when the link closes for any reason.

A command's deadline restarts with every notification received while it waits: its reply queues
behind notifications already in the socket (a burst), and traffic is proof that the link lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from asyncecto.adapters import NotificationCallback
from asyncecto.errors import UnsupportedInTransactionPoolingError

from ._errors import DRIVER_ERRORS, translate
from ._sql import quote_name

__all__ = ("PgListenConnection", "listen_refused")


def listen_refused() -> UnsupportedInTransactionPoolingError:
    """``repo.listen`` on a repo behind a transaction pooler without ``direct_url``."""
    return UnsupportedInTransactionPoolingError(
        "repo.listen(...) (LISTEN)",
        "notifications are delivered to a session, and a transaction pooler gives the server connection "
        "to other clients after each transaction: the LISTEN would be lost (or another client's)",
        "give the repo direct_url= (a URL reaching PostgreSQL itself, not the pooler): "
        "Repo(url, pooler='transaction', direct_url='postgres://user:pass@db-host:5432/my_db'); "
        "repo.listen then uses a connection to it",
    )


class PgListenConnection:
    """A connection that only listens; every failure leaves it translated to :mod:`asyncecto.errors`.

    A command that times out or loses the link terminates the connection (its protocol state is
    unknown); an error the server answered with (the connection still works) only propagates.
    A driver error that is no server answer (e.g. asyncpg's ``InternalClientError`` when the
    backend died mid-command) becomes :class:`~asyncecto.errors.ConnectionLostError`.
    """

    __slots__ = ("_deadline", "_deliver", "_lost", "_on_lost", "_on_notification", "_timeout", "pid", "raw")

    def __init__(self, raw: asyncpg.Connection, on_notification: NotificationCallback, on_lost: Callable[[], None]):
        self.raw = raw
        self.pid: int = raw.get_server_pid()
        self._on_notification = on_notification
        self._on_lost = on_lost
        self._lost = False
        self._deadline: asyncio.Timeout | None = None  # the command in flight's, if any
        self._timeout = 0.0
        self._deliver = self._notified  # one bound method: asyncpg removes a callback by equality
        raw.add_termination_listener(self._terminated)

    def _notified(self, _conn: Any, pid: int, channel: str, payload: str) -> None:
        deadline = self._deadline
        if deadline is not None and not deadline.expired():  # the link lives: give the reply its time anew
            deadline.reschedule(asyncio.get_running_loop().time() + self._timeout)
        self._on_notification(channel, payload, pid)

    def _terminated(self, _conn: Any) -> None:
        if not self._lost:
            self._lost = True
            self._on_lost()

    async def _command(self, sql: str, timeout: float, work: Callable[[], Any]) -> None:
        try:
            async with asyncio.timeout(timeout) as deadline:
                self._deadline, self._timeout = deadline, timeout
                await work()
        except DRIVER_ERRORS as exc:
            if not isinstance(exc, asyncpg.PostgresError) or self.raw.is_closed():
                self.terminate()
            raise translate(exc, sql) from exc
        except BaseException:
            self.terminate()  # interrupted mid-command: the protocol state is unknown
            raise
        finally:
            self._deadline = None

    async def listen(self, channel: str, timeout: float) -> None:
        await self._command(
            f"LISTEN {quote_name(channel, 'channel')}", timeout, lambda: self.raw.add_listener(channel, self._deliver)
        )

    async def unlisten(self, channel: str, timeout: float) -> None:
        await self._command(
            f"UNLISTEN {quote_name(channel, 'channel')}",
            timeout,
            lambda: self.raw.remove_listener(channel, self._deliver),
        )

    async def ping(self, timeout: float) -> None:
        await self._command("SELECT 1", timeout, lambda: self.raw.execute("SELECT 1"))

    async def close(self, timeout: float) -> None:
        if self.raw.is_closed():
            return
        try:
            async with asyncio.timeout(timeout):
                await self.raw.close()
        except Exception:
            self.terminate()  # best effort: a link that does not answer in time is cut
        except BaseException:
            self.terminate()
            raise

    def terminate(self) -> None:
        if not self.raw.is_closed():
            self.raw.terminate()

    def is_closed(self) -> bool:
        return bool(self.raw.is_closed())
