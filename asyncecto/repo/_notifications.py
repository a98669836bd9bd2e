"""LISTEN/NOTIFY: one dedicated connection per Repo, its channels fanned out to subscribers' queues.

The :class:`Listener` is a supervised worker ("notifications"). It connects when the first
subscriber arrives, LISTENs every channel someone subscribed to, UNLISTENs a channel its last
subscriber left, and after the link drops (the termination listener, or a health check that
does not answer in time) reconnects with back-off and LISTENs everything again. Notifications
sent while it was disconnected are lost: PostgreSQL queues them only for listening sessions.

A :class:`Subscription` (what ``repo.listen`` returns) owns a bounded queue; when its reader falls
behind, the oldest notification is dropped (counted, and a warning logged once per backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs

from asyncecto._names import name_problem
from asyncecto.errors import (
    ArgumentError,
    AsyncEctoError,
    ConnectionLostError,
    DatabaseError,
    IdentifierError,
    RepoStateError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from asyncecto.adapters import ListenConnection, NotificationAdapter

    from ._core import RepoCore

__all__ = ("Listener", "Notification", "Subscription", "check_channel", "check_payload", "listener_of")

logger = logging.getLogger("asyncecto")

#: a subscription's queue length unless ``repo.listen(..., max_queue=)`` says otherwise
DEFAULT_MAX_QUEUE = 1000


@attrs.frozen
class Notification:
    """One notification received on a channel.

    :ivar channel: the channel it was sent on
    :ivar payload: its text (``""`` when none was given)
    :ivar pid: the server process of the session that sent it
    """

    channel: str
    payload: str
    pid: int


def check_channel(channel: object, adapter: NotificationAdapter) -> str:
    """``channel`` if it can name a channel, else an :class:`ArgumentError` naming it and the fix
    (an :class:`IdentifierError` when it is a string the database cannot keep as a name)."""
    if not isinstance(channel, str) or not channel:
        raise ArgumentError(
            f"a channel must be a non-empty str, got {channel!r}; name it with a string, e.g. repo.listen('events')"
        )
    limit = adapter.max_channel_bytes
    problem = name_problem(channel, limit)
    if problem is not None:
        reason, fix, size = problem
        if size is not None:
            reason = (
                f"it is {size} bytes long, over the database's limit of {limit} bytes "
                "(LISTEN would truncate it, NOTIFY refuses it)"
            )
            fix = "use a shorter name"
        raise IdentifierError("channel", channel, reason, fix, size=size, limit=limit)
    return channel


def check_payload(payload: object, adapter: NotificationAdapter) -> str:
    """``payload`` if it can be sent, else an :class:`ArgumentError` naming it and the fix."""
    if not isinstance(payload, str):
        raise ArgumentError(
            f"a notification payload must be a str, got {type(payload).__name__} {payload!r}; "
            "encode it first, e.g. json.dumps(value)"
        )
    if "\x00" in payload:
        raise ArgumentError(f"payload {payload[:50]!r}… contains a NUL character; remove it or encode the payload")
    try:
        size = len(payload.encode())
    except UnicodeEncodeError as exc:
        raise ArgumentError(
            f"a notification payload (it starts {payload[:30]!r}) contains the lone surrogate "
            f"{payload[exc.start]!r} at position {exc.start}, which is not text and cannot be sent as UTF-8; "
            "remove it, or send the data base64- or JSON-encoded (json.dumps escapes it as \\ud800)"
        ) from None
    if size > adapter.max_payload_bytes:
        raise ArgumentError(
            f"a notification payload is {size} bytes long (it starts {payload[:30]!r}); the database accepts at "
            f"most {adapter.max_payload_bytes} bytes: store the data in a table and send its key instead"
        )
    return payload


_State = Literal["new", "active", "ended"]


class Subscription:
    """Notifications from ``repo.listen(...)``: an async iterator and an async context manager.

    ``async with`` subscribes on entry (returning once LISTEN is in effect, so a notification
    committed afterwards is received) and unsubscribes on exit. A plain ``async for`` subscribes on
    its first step and unsubscribes when it ends, when the reading task is cancelled or fails
    inside it, or when the feed is garbage-collected after a ``break``. The iteration ends when
    the repo stops.

    :ivar channels: the channels this feed receives
    :ivar max_queue: how many notifications wait unread before the oldest is dropped
    :ivar dropped: notifications this feed dropped because its queue was full
    """

    __slots__ = (
        "__weakref__",
        "_error",
        "_listener",
        "_managed",
        "_queue",
        "_reading",
        "_ready",
        "_state",
        "_waiter",
        "_warned",
        "channels",
        "dropped",
        "max_queue",
    )

    def __init__(self, listener: Listener, channels: tuple[str, ...], max_queue: int) -> None:
        self._listener = listener
        self.channels = channels
        self.max_queue = max_queue
        self.dropped = 0
        self._queue: deque[Notification] = deque()
        self._state: _State = "new"
        self._managed = False
        self._reading = False  # a task is inside __anext__ (starting the feed or waiting on it)
        self._ready: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._warned = False

    def __repr__(self) -> str:
        return f"<Subscription {', '.join(self.channels)} {self._state} queued={len(self._queue)}>"

    # -- the reader's side ---------------------------------------------------------
    async def __aenter__(self) -> Subscription:
        if self._state != "new":
            raise ArgumentError(f"{self!r} was already started; call repo.listen(...) again for a new feed")
        self._managed = True
        await self._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        if self._reading:  # also while the first reader still waits for LISTEN in _start
            raise ArgumentError(f"{self!r} is already being read by another task; give each task its own")
        self._reading = True
        try:
            if self._state == "new":
                await self._start()
            while not self._queue:
                if self._state == "ended":
                    error, self._error = self._error, None
                    if error is not None:
                        raise error
                    raise StopAsyncIteration
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiter = waiter
                try:
                    await waiter
                finally:
                    self._waiter = None
        except BaseException:
            if not self._managed:
                self.close()  # a plain `async for` that stops (cancelled, failed) leaves nothing behind
            raise
        finally:
            self._reading = False
        item = self._queue.popleft()
        if not self._queue:
            self._warned = False  # the backlog is gone: warn again if it builds up anew
        return item

    def pending(self) -> int:
        """How many received notifications wait to be read."""
        return len(self._queue)

    def close(self) -> None:
        """Unsubscribe now (idempotent); an iteration in progress ends after the queued notifications."""
        if self._state == "active":
            self._listener.unsubscribe(self)
        self._state = "ended"
        self._wake()

    async def _start(self) -> None:
        if self._listener.closed:  # made before the repo was stopped: start on its current listener
            self._listener = self._listener.successor()
        ready = self._listener.subscribe(self)  # raises if the repo is not running
        self._state = "active"
        try:
            await ready
        except BaseException:
            self.close()
            raise

    def __del__(self) -> None:
        if getattr(self, "_state", None) == "active":
            with contextlib.suppress(Exception):  # the loop may be gone already
                self._listener.unsubscribe(self)

    # -- the listener's side -------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, item: Notification) -> None:
        if self._state == "ended":
            return
        queue = self._queue
        if len(queue) >= self.max_queue:
            queue.popleft()
            self.dropped += 1
            self._listener.dropped += 1
            if not self._warned:
                self._warned = True
                logger.warning(
                    "repo %s: listen(%s) fell %d notifications behind; dropping the oldest "
                    "(read faster or pass a larger max_queue=)",
                    self._listener.name,
                    ", ".join(self.channels),
                    self.max_queue,
                )
        queue.append(item)
        self._wake()

    def _set_ready(self, error: BaseException | None = None) -> None:
        ready = self._ready
        if ready is not None and not ready.done():
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

    def _end(self, error: BaseException | None = None) -> None:
        """Ended by the listener: the repo stopped (``error`` None) or the database refused a channel."""
        if self._state == "ended":
            return
        self._state = "ended"
        ready = self._ready
        if ready is not None and not ready.done():
            self._set_ready(error)  # the subscriber is still starting: it sees the error there
        else:
            self._error = error  # raised by the next read, after the queued notifications
        self._wake()


_listeners: weakref.WeakKeyDictionary[RepoCore, Listener] = weakref.WeakKeyDictionary()


def start_listener(core: RepoCore) -> Listener:
    """A fresh :class:`Listener` for ``core`` (one per start): the supervisor runs its ``run``, the core's
    shutdown calls its ``close``."""
    listener = Listener(core)
    _listeners[core] = listener
    return listener


def listener_of(core: RepoCore) -> Listener | None:
    """The listener of ``core``'s latest start, if it was ever started."""
    return _listeners.get(core)


class Listener:
    """The Repo's "notifications" worker: one connection, every subscribed channel, the fan-out.

    The timing attributes may be changed on an instance (tests shorten them):

    :ivar health_interval: seconds between health checks (``SELECT 1``) of the connection
    :ivar health_timeout: seconds a health check, LISTEN or UNLISTEN may wait without receiving
        anything (each notification restarts the wait) before the link is considered dead and replaced
    :ivar min_backoff: the pause after the first failed reconnect, doubling up to ``max_backoff``;
        a connection lost within ``stable_after`` seconds of opening counts as a failure, so a
        link that keeps dropping is not reopened in a tight loop
    :ivar reconnects: connections opened again after one was lost
    :ivar dropped: notifications dropped, over all subscribers, because a queue was full
    """

    health_interval = 10.0
    health_timeout = 5.0
    min_backoff = 0.1
    max_backoff = 5.0
    stable_after = 30.0

    def __init__(self, core: RepoCore) -> None:
        self._core = weakref.ref(core)  # the registry maps the core to this: no strong cycle back
        self.name = core.name
        self._subs: dict[str, weakref.WeakSet[Subscription]] = {}
        self._pending: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._listening: set[str] = set()
        self._conn: ListenConnection | None = None
        self._generation = 0
        self._lost = False
        self._closed = False
        self._changed = asyncio.Event()
        self._was_connected = False
        self.reconnects = 0
        self.dropped = 0

    @property
    def closed(self) -> bool:
        """Whether the repo stopped this listener (its feeds ended; it takes no subscriber)."""
        return self._closed

    def successor(self) -> Listener:
        """The listener of the repo's latest start (this one if the repo was not started again)."""
        core = self._core()
        latest = listener_of(core) if core is not None else None
        return latest if latest is not None else self

    # -- subscribers --------------------------------------------------------------
    def subscribe(self, sub: Subscription) -> asyncio.Future[None]:
        """Register ``sub``; the future completes once its channels are LISTENed."""
        core = self._core()
        if core is not None:
            core._check("listen")  # e.g. entered after the repo began to stop
            core._check_loop("listen")
        if self._closed:  # a stopped listener whose repo is gone
            raise RepoStateError("listen", "closed", "start the repo again, then call repo.listen(...)")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sub._ready = ready
        for channel in sub.channels:
            self._subs.setdefault(channel, weakref.WeakSet()).add(sub)
        self._pending.add(sub)
        self._changed.set()
        return ready

    def unsubscribe(self, sub: Subscription) -> None:
        for channel in sub.channels:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
        self._pending.discard(sub)
        if not self._closed:
            self._changed.set()

    def _wanted(self) -> set[str]:
        for channel in [c for c, subs in self._subs.items() if not subs]:
            del self._subs[channel]  # its subscribers were garbage-collected
        return set(self._subs)

    def _subscribers(self) -> set[Subscription]:
        return {sub for subs in self._subs.values() for sub in subs}

    def stats(self) -> dict[str, Any]:
        conn = self._conn
        connected = conn is not None and not self._lost and not conn.is_closed()
        return {
            "connected": connected,
            "pid": conn.pid if connected and conn is not None else None,
            "reconnects": self.reconnects,
            "channels": sorted(self._listening) if connected else [],
            "subscribers": len(self._subscribers()),
            "dropped": self.dropped,
        }

    # -- the connection's callbacks -----------------------------------------------
    def _deliver(self, channel: str, payload: str, pid: int) -> None:
        subs = self._subs.get(channel)
        if not subs:
            return
        item = Notification(channel, payload, pid)
        for sub in list(subs):
            sub._push(item)

    def _lost_callback(self, generation: int) -> Callable[[], None]:
        def lost() -> None:
            if generation == self._generation:
                self._lost = True
                self._changed.set()

        return lost

    # -- the worker ---------------------------------------------------------------
    async def run(self) -> None:
        """Forever: keep the connection's LISTENs equal to the subscribed channels (a supervised worker)."""
        self._listening.clear()
        failures = 0
        connected_at = next_ping = time.monotonic()
        try:
            while True:
                self._changed.clear()
                wanted = self._wanted()
                conn = self._conn
                if conn is None or self._lost or conn.is_closed():
                    if conn is not None:
                        self._drop("lost")
                        if time.monotonic() - connected_at >= self.stable_after:
                            failures = 0  # it had been healthy: reconnect at once
                        elif wanted:  # it was lost soon after opening: back off, as after a failure
                            await anyio.sleep(min(self.min_backoff * 2**failures, self.max_backoff))
                            failures += 1
                        continue
                    if not wanted:
                        await self._changed.wait()  # connect lazily: only once someone listens
                        continue
                    try:
                        conn = await self._connect()
                    except AsyncEctoError as exc:
                        delay = min(self.min_backoff * 2**failures, self.max_backoff)
                        failures += 1
                        logger.warning(
                            "repo %s: cannot open the listener connection (%s); trying again in %.1f s",
                            self.name,
                            exc,
                            delay,
                        )
                        for sub in list(self._pending):  # a new subscriber fails fast; listening ones wait
                            self._pending.discard(sub)
                            sub._set_ready(exc)
                        await anyio.sleep(delay)
                        continue
                    connected_at = time.monotonic()
                    next_ping = connected_at + self.health_interval
                if not await self._sync(conn, wanted):
                    continue
                wait = next_ping - time.monotonic()
                if wait > 0:
                    with anyio.move_on_after(wait):
                        await self._changed.wait()
                    continue
                next_ping = time.monotonic() + self.health_interval
                try:
                    await conn.ping(self.health_timeout)
                except AsyncEctoError as exc:
                    if not conn.is_closed():
                        conn.terminate()
                    self._lost = True
                    logger.warning("repo %s: listener health check failed (%s); reconnecting", self.name, exc)
        finally:
            conn, self._conn = self._conn, None
            self._listening.clear()
            if conn is not None:
                with anyio.CancelScope(shield=True):
                    await conn.close(1.0)

    async def _connect(self) -> ListenConnection:
        self._generation += 1
        core = self._core()
        if core is None:
            raise RepoStateError("listen", "gone")
        conn = await core.adapter.open_listener(self._deliver, self._lost_callback(self._generation))
        self._conn = conn
        self._lost = False
        self._listening.clear()
        if self._was_connected:
            self.reconnects += 1
            logger.info("repo %s: listener reconnected (pid %s)", self.name, conn.pid)
        self._was_connected = True
        return conn

    def _drop(self, why: str) -> None:
        conn, self._conn = self._conn, None
        self._listening.clear()
        self._lost = False
        if conn is not None:
            conn.terminate()
            logger.warning(
                "repo %s: listener connection %s; notifications sent until it is back are lost", self.name, why
            )

    async def _sync(self, conn: ListenConnection, wanted: set[str]) -> bool:
        """LISTEN what is wanted, UNLISTEN the rest, wake the subscribers now served; ``False`` if the link broke."""
        timeout = self.health_timeout
        for channel in sorted(wanted - self._listening):
            try:
                await conn.listen(channel, timeout)
            except ConnectionLostError:
                self._lost = True
                return False
            except DatabaseError as exc:
                if conn.is_closed():  # a client-side timeout: the connection was cut
                    self._lost = True
                    return False
                self._refuse(channel, exc)
                continue
            self._listening.add(channel)
        for channel in sorted(self._listening - wanted):
            try:
                await conn.unlisten(channel, timeout)
            except DatabaseError:
                conn.terminate()  # UNLISTEN has no reason to fail on a sound link: start afresh
                self._lost = True
                return False
            self._listening.discard(channel)
        for sub in list(self._pending):
            if all(c in self._listening for c in sub.channels):
                self._pending.discard(sub)
                sub._set_ready()
        return True

    def _refuse(self, channel: str, exc: DatabaseError) -> None:
        """The database refused to LISTEN on ``channel``: end its subscribers with the error."""
        logger.warning("repo %s: LISTEN %s refused: %s", self.name, channel, exc)
        for sub in list(self._subs.pop(channel, ())):
            self._pending.discard(sub)
            self.unsubscribe(sub)
            sub._end(exc)

    def close(self) -> None:
        """The repo stops (called by its shutdown, whatever the worker's state, e.g. crashed and
        waiting to be restarted): refuse new subscribers, end every feed (each stops iterating)."""
        self._closed = True
        subs = self._subscribers() | set(self._pending)
        self._subs.clear()
        self._pending.clear()
        for sub in subs:
            sub._end()
