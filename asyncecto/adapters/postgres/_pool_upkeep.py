"""The connections a pool holds, outside any checkout: opening them (with a termination listener, so
one the server or the network closes is dropped the moment asyncpg notices, counted ``lost``),
putting them back in the idle queue or into a waiter's hands, dropping them; the upkeep task (broken
and long-idle connections closed, ``min_size`` kept, a statement waiting longer than ``busy_limit``
for an answer, a half-open link, ended); and closing the pool (past its timeout, the statements
still running are cancelled on the server).

:class:`~asyncecto.adapters.postgres._pool.Pool` adds the checkout and the checkin on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import asyncpg

from asyncecto._aio import finish
from asyncecto.errors import DatabaseUnavailableError

from ._connection import PgConnection
from ._failover import FailoverState, PoolFailover, classify, note_ending, server_of
from ._pool_stats import PoolStats

__all__ = ("PoolUpkeep", "expire_statement_caches")

logger = logging.getLogger("asyncecto.pool")

#: every live pool of this process (the migrator expires their statement caches after DDL)
_live_pools: weakref.WeakSet[PoolUpkeep] = weakref.WeakSet()

#: how long ``close`` waits for a fresh connection to cancel the statements still running
_CANCEL_CONNECT_TIMEOUT = 2.0


async def expire_statement_caches() -> int:
    """Drop asyncpg's prepared-statement and type caches on every connection of every live pool.

    Called after migrations: a statement prepared before an ``ALTER`` would otherwise fail
    inside a transaction with "cached plan must not change result type". This is what
    asyncpg's own pool does on that error (in use or idle, statements in flight keep their
    reference); no I/O. Returns how many connections were expired.
    """
    count = 0
    for pool in list(_live_pools):
        for conn in list(pool._all):
            await conn.raw.reload_schema_state()
            count += 1
    return count


class PoolUpkeep:
    """A pool's state and what it does with its connections between checkouts (see the module)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        size: int,
        min_size: int,
        timeout: float,
        max_idle_time: float,
        reset_timeout: float = 5.0,
        busy_limit: float | None = None,
        target_session_attrs: str | None = None,
    ) -> None:
        self._connect = connect
        self.size = size
        self.min_size = min_size
        self.timeout = timeout
        self.max_idle_time = max_idle_time
        self.reset_timeout = reset_timeout
        self.busy_limit = busy_limit
        #: behind a transaction-mode pooler (``pooler="transaction"``), with the repo's statement timeout
        self.pooled = False
        self.default_timeout: float | None = None
        self._idle: deque[PgConnection] = deque()
        self._all: set[PgConnection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[PgConnection | None]] = deque()
        self._closed = False
        self._released = asyncio.Event()
        #: pool-owned cleanup tasks (draining a cancellation); ``close`` waits for them
        self._cleanups: set[asyncio.Task[None]] = set()
        #: after the server refused a connection: no new one is opened before ``_ceiling_until``
        self._ceiling_until = 0.0
        self._fill_error: str | None = None  # the upkeep's last refill failure, logged once
        self.stats = PoolStats()
        #: in use when ``disconnect_all`` came for them: closed at their checkin
        self._doomed: set[PgConnection] = set()
        #: which server is the primary, for a repo that asks for a writable one (see ``_failover``)
        self.failover = FailoverState(target_session_attrs)
        _live_pools.add(self)

    # -- counts ------------------------------------------------------------------
    @property
    def in_use(self) -> int:
        return len(self._all) - len(self._idle)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def total(self) -> int:
        return len(self._all)

    # -- the connections: opened, put back, dropped --------------------------------
    async def _open(self) -> PgConnection:
        self._opening += 1
        fo = self.failover
        try:
            while True:
                moves = fo.moves
                raw = await self._connect()
                if not fo.enabled or fo.moves == moves or server_of(raw) == fo.current:
                    break
                raw.terminate()  # opened before the pool moved to a new primary, it reached the old one
        except BaseException:
            self._opening -= 1
            if self._waiters:
                self._wake_one(None)  # the slot is free again: let a waiter try it
            raise
        self._opening -= 1
        conn = PgConnection(raw, pooled=self.pooled, default_timeout=self.default_timeout)
        conn.server = server_of(raw)
        raw.add_termination_listener(lambda _raw: self._ended(conn))
        self._all.add(conn)
        self.stats.opened += 1
        if self.failover.enabled:
            conn.classify = self._classify
            self._landed(conn)
        return conn

    def _ended(self, conn: PgConnection) -> None:
        """asyncpg saw the connection close: an idle one leaves the pool now."""
        if self.failover.enabled:
            note_ending(self.failover, conn)
        if conn in self._idle:
            self._discard(conn)
        else:
            self._count_lost(conn)

    def _count_lost(self, conn: PgConnection) -> None:
        """Count a connection closed by the server or the network (not by asyncecto) once."""
        if not conn.closing:
            conn.closing = True
            self.stats.lost += 1

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` to its end; a caller cancelled meanwhile waits for it, then is cancelled."""
        await finish(work)

    def _put_back(self, conn: PgConnection) -> None:
        conn.last_used = time.monotonic()
        conn.busy_since = 0.0
        if conn in self._doomed:
            if conn.failed_over:  # drained for a failover, not by disconnect_all
                self.close_drained(conn)
                return
            self._disconnect_now(conn)
            return
        if self._closed:
            self._close_one(conn)
            self._released.set()
            return
        if not self._wake_one(conn):
            self._idle.append(conn)
        self._released.set()

    def _wake_one(self, value: PgConnection | None) -> bool:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(value)
                return True
        return False

    def _discard(self, conn: PgConnection) -> None:
        self._doomed.discard(conn)
        self._count_lost(conn)
        if not conn.raw.is_closed():
            conn.raw.terminate()  # never dropped open: its socket would outlive it
        self._all.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)
        self._released.set()
        if self._waiters:
            self._wake_one(None)

    # -- upkeep and shutdown ----------------------------------------------------
    async def fill(self) -> None:
        """Open connections until ``min_size`` are held."""
        while not self._closed and len(self._all) + self._opening < self.min_size:
            conn = await self._open()
            self._put_back(conn)

    async def upkeep(self, interval: float = 1.0) -> None:
        """Forever: drop broken idle connections, close long-idle ones, end connections whose statement
        got no answer within ``busy_limit`` (a half-open link), keep ``min_size`` open."""
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            # the idle queue is LIFO (checkouts take from the right): from the left, the longest idle come
            # first, so while more than min_size are held the oldest are the ones closed
            for conn in list(self._idle):
                if conn.raw.is_closed():
                    self._discard(conn)
                elif (
                    self.max_idle_time and now - conn.last_used > self.max_idle_time and len(self._all) > self.min_size
                ):
                    self._idle.remove(conn)
                    self._close_one(conn)
            limit = self.busy_limit
            if limit is not None:
                for conn in list(self._all):
                    since = conn.busy_since
                    if since and not conn.lifted and now - since > limit and not conn.raw.is_closed():
                        why = (
                            f"no answer from the server within {limit:g}s (timeout + cleanup_timeout; "
                            "a half-open link?); asyncecto closed the connection"
                        )
                        logger.warning("connection pid=%s: %s", conn.pid, why)
                        self.stats.terminated += 1
                        conn.terminate(why)  # its holder gets ConnectionLostError and returns it
            if not self._all or now >= self._ceiling_until:
                await self._refill()

    async def _refill(self) -> None:
        """``fill``; a failure is logged (once until it changes or heals), never raised: the upkeep
        carries on and the next checkout reports the error to its caller."""
        try:
            await self.fill()
        except DatabaseUnavailableError as exc:
            text = str(exc)
            if text != self._fill_error:
                logger.warning("could not open a connection to keep min_size=%d: %s", self.min_size, text)
            self._fill_error = text
        else:
            self._fill_error = None

    def _close_one(self, conn: PgConnection) -> None:
        self._doomed.discard(conn)
        self._all.discard(conn)
        conn.terminate()

    # -- failover -------------------------------------------------------------------
    def _classify(self, conn: PgConnection, error: Any) -> Any:
        return classify(conn, error, self.failover, self._read_only_seen)

    def _read_only_seen(self, conn: PgConnection) -> None:
        """``conn``'s server answered read-only (25006): it is no longer the primary. Drain its
        connections; new ones go through the host list to the server that is (the event is sent
        when one gets there: :meth:`_landed`)."""
        if conn.failed_over:
            return  # drained already
        fo = self.failover
        server = conn.server
        drained = self._drain(lambda c: c.server == server)
        if fo.demoted != server:
            fo.demoted, fo.drained_before = server, 0
        fo.drained_before += drained
        logger.warning(
            "failover: server %s answered read-only (SQLSTATE 25006): it is no longer the primary; "
            "%d connection(s) drained, new connections go through the host list to the primary",
            server,
            drained,
        )

    def _landed(self, conn: PgConnection) -> None:
        """A new connection reached ``conn.server``: if that is not where the pool's connections went,
        the primary moved there. Drain the rest and send the event."""
        fo = self.failover
        new = conn.server
        if fo.current is None and fo.demoted is None:
            fo.current = new
            return
        if new == fo.current and fo.demoted is None:
            return
        old = fo.demoted or fo.current or "?"
        reason = "read_only" if fo.demoted is not None else "new_primary"
        drained = fo.drained_before + self._drain(lambda c: c.server != new)
        fo.current, fo.demoted, fo.drained_before = new, None, 0
        fo.moves += 1
        self.stats.failovers += 1
        logger.warning(
            "failover: the primary is now %s (was %s, %s); %d connection(s) of the old server drained",
            new,
            old,
            "which answered read-only" if reason == "read_only" else "which went away",
            drained,
        )
        if fo.listener is not None:
            try:
                fo.listener(PoolFailover(old_server=old, new_server=new, reason=reason, drained=drained))
            except Exception:
                logger.exception("the failover listener failed")

    def close_drained(self, conn: PgConnection) -> None:
        """Close a connection drained for a failover as it comes back (no reset: its server is no
        longer the primary, or gone; closing the socket rolls back what it had open)."""
        self._doomed.discard(conn)
        self._close_one(conn)
        self._released.set()
        if self._waiters and not self._closed:
            self._wake_one(None)  # a slot is free: a waiter opens a new connection

    def _drain(self, which: Callable[[PgConnection], bool]) -> int:
        """Close the idle connections ``which`` selects, and mark those in use to be closed at their
        checkin (their holders' lost links then raise ``FailoverError``); how many."""
        count = 0
        for conn in list(self._all):
            if conn.failed_over or not which(conn):
                continue
            conn.failed_over = True
            count += 1
            if conn in self._idle:
                self._idle.remove(conn)
                self._close_one(conn)
                self._released.set()
                if self._waiters and not self._closed:
                    self._wake_one(None)  # a slot is free: a waiter opens a new connection
            else:
                self._doomed.add(conn)
        self.stats.drained += count
        return count

    # -- disconnect_all -------------------------------------------------------------
    def disconnect_all(self, interval: float) -> None:
        """Close every connection held now, each at a random moment within ``interval`` seconds
        (Ecto's ``disconnect_all``): an idle one at once then, one in use at its checkin.
        The upkeep and checkouts open new ones as needed."""
        loop = asyncio.get_running_loop()
        for conn in list(self._all):
            delay = random.uniform(0.0, interval) if interval > 0 else 0.0
            if delay <= 0:
                self._disconnect(conn)
            else:
                loop.call_later(delay, self._disconnect, conn)

    def _disconnect(self, conn: PgConnection) -> None:
        if conn not in self._all:
            return  # gone meanwhile
        if conn in self._idle:
            self._idle.remove(conn)
            self._disconnect_now(conn)
        else:
            self._doomed.add(conn)

    def _disconnect_now(self, conn: PgConnection) -> None:
        self._close_one(conn)
        self.stats.disconnected += 1
        self._released.set()
        if self._waiters and not self._closed:
            self._wake_one(None)  # a slot is free: a waiter opens a new connection

    async def close(self, timeout: float) -> None:
        """Refuse new checkouts, wait up to ``timeout`` for checked-out connections, then close all.

        Past ``timeout``, the connections still checked out are terminated (their holders get
        ``ConnectionLostError`` naming the stop) and their statements are cancelled on the server
        from a fresh connection, so nothing keeps running there. Cancelling the caller does not
        interrupt the closing.
        """
        self._closed = True
        while self._waiters:
            self._wake_one(None)
        await self._shielded(self._close(timeout))

    async def _close(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self.in_use:
                    self._released.clear()
                    await self._released.wait()
        except TimeoutError:
            logger.warning("closing pool with %d connection(s) still checked out; terminating them", self.in_use)
        idle = list(self._idle)
        self._idle.clear()
        stuck = [conn for conn in self._all if conn not in idle and not conn.raw.is_closed()]
        for conn in stuck:  # first the sockets: a holder learns why at once, and sends nothing more
            self.stats.terminated += 1
            conn.terminate(f"repo.stop() ended it after shutdown_timeout={timeout:g}s")
        for task in list(self._cleanups):  # drains of connections just terminated
            task.cancel()
        for conn in list(self._all):
            self._all.discard(conn)
            if conn in idle:
                conn.closing = True
                try:
                    async with asyncio.timeout(1.0):
                        await conn.raw.close()
                    continue
                except BaseException:
                    pass
            conn.terminate()
        if stuck:
            await self._cancel_on_server([conn.pid for conn in stuck])

    async def _cancel_on_server(self, pids: list[int]) -> None:
        """Cancel what the backends ``pids`` still run, from a fresh connection (best effort: logged)."""
        raw: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(_CANCEL_CONNECT_TIMEOUT):
                raw = await self._connect()
                cancelled = await raw.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_cancel_backend(p)) FROM unnest($1::int[]) AS p", pids
                )
                await raw.close()
            logger.warning("repo.stop(): cancelled %s statement(s) still running on the server", cancelled)
        except Exception:
            logger.warning("repo.stop(): could not cancel the statements of pids %s on the server", pids, exc_info=True)
        finally:
            if raw is not None and not raw.is_closed():
                raw.terminate()
