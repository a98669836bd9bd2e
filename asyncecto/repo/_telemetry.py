"""Query telemetry: one event per query, delivered to handlers by a background worker.

The query path only appends the event to a bounded queue; a worker of the Repo's
supervisor calls the handlers and writes the log line, so neither slows a query.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from asyncecto.errors import ArgumentError, Rollback

__all__ = ("FailoverEvent", "QueryEvent", "Telemetry", "logger")

logger = logging.getLogger("asyncecto")

Handler = Callable[["QueryEvent"], Any]


@attrs.frozen(slots=True)
class QueryEvent:
    """What happened in one query. Times are seconds (``None`` when not measured).

    :ivar sql: the SQL text sent; :ivar params: the parameters sent with it
    :ivar source: the table the query is about, when known
    :ivar queue_time: time spent waiting for a pooled connection
    :ivar query_time: time in the driver (execution, transfer and decoding of rows)
    :ivar decode_time: time turning rows into structs
    :ivar total_time: queue + query + decode
    :ivar num_rows: rows returned or affected
    :ivar result: ``"ok"`` or ``"error"``; :ivar error: the exception on error
    :ivar options: the call's ``telemetry_options=`` (Ecto's metadata ``options``), or ``None``
    :ivar log: the call's ``log=`` (``False``: no log line; a level name; ``None``: the repo's level)
    :ivar stacktrace: the caller's frames, innermost first, outside asyncecto (Ecto's ``stacktrace``
        metadata), when the repo was created with ``stacktrace=True``; else ``None``
    :ivar idle_time: how long the connection sat idle in the pool before this query checked it
        out (``None`` when the query did not check one out: inside a transaction or a checkout)
    :ivar cast_params: the parameters before dumping (Ecto's ``cast_params``): the values as
        their types cast them (a ``uuid.UUID``, a ``datetime``, an enum's member), where
        ``params`` holds what was sent (their dumped form). For statements whose parameters
        asyncecto does not dump (raw SQL, transaction statements, ``notify``, COPY) it is
        ``params`` itself
    :ivar replica: the read replica that served the query (``host:port``), ``None`` for the primary
    :ivar replica_lag: that replica's last known lag behind the primary, in bytes of WAL (``None``: unknown)
    """

    repo: str
    sql: str
    params: tuple[Any, ...]
    source: str | None
    queue_time: float | None
    query_time: float
    decode_time: float | None
    total_time: float
    num_rows: int | None
    result: str
    error: BaseException | None = None
    options: Mapping[str, Any] | None = None
    log: str | bool | None = None
    stacktrace: tuple[traceback.FrameSummary, ...] | None = None
    idle_time: float | None = None
    cast_params: tuple[Any, ...] | None = None
    replica: str | None = None
    replica_lag: int | None = None


@attrs.frozen(slots=True)
class FailoverEvent:
    """The repo's pool moved to a new primary (a repo with ``target_session_attrs=read-write`` or
    ``primary``): handlers attached with ``attach(handler, event="failover")`` get it.

    :ivar old_server: the server (``host:port``) that stopped being the primary
    :ivar new_server: the server new connections reach now
    :ivar reason: ``"read_only"`` (the old one answered SQLSTATE 25006 while read-only or in
        recovery) or ``"new_primary"`` (a new connection reached another server: the old one went away)
    :ivar drained: the old server's connections closed (idle) or to be closed at their checkin (in use)
    """

    repo: str
    old_server: str
    new_server: str
    reason: str
    drained: int


#: the kinds of event a handler can be attached to
_EVENT_KINDS = ("query", "failover")


def _ms(label: str, seconds: float | None, always: bool = False) -> str:
    if seconds is None:
        return ""
    ms = seconds * 1000
    if not always and ms < 0.1:
        return ""
    return f" {label}={ms:.1f}ms"


def format_event(event: QueryEvent) -> str:
    """The log line, in Ecto's format::

    QUERY OK source="weather" db=1.2ms decode=0.1ms queue=0.3ms
    SELECT w0."id" FROM "weather" AS w0 WHERE (w0."id" = $1) [42]
    """
    head = f"QUERY {'OK' if event.result == 'ok' else 'ERROR'}"
    if event.source:
        head += f' source="{event.source}"'
    if event.replica:
        head += f' replica="{event.replica}"'
    head += _ms("db", event.query_time, always=True) + _ms("decode", event.decode_time) + _ms("queue", event.queue_time)
    line = f"{head}\n{event.sql} {list(event.params)!r}"
    if event.stacktrace:
        frame = event.stacktrace[0]
        line += f"\n↳ {frame.name}, at: {frame.filename}:{frame.lineno}"
    return line


class Telemetry:
    """Registered handlers and the queue of events waiting for them.

    >>> t = Telemetry("repo", "debug")
    >>> seen = []
    >>> name = t.attach(seen.append)
    >>> t.detach(name)
    True
    """

    def __init__(self, repo: str, log: str | bool, max_pending: int = 10_000) -> None:
        self.repo = repo
        self.level = logging.getLevelName(log.upper()) if isinstance(log, str) else None
        self._handlers: dict[str, Handler] = {}
        self._failover_handlers: dict[str, Callable[[FailoverEvent], Any]] = {}
        #: events waiting, each with whether handlers get it (``False``: ``telemetry_event=None``, log only)
        self._pending: deque[tuple[QueryEvent | FailoverEvent, bool]] = deque()
        self._max_pending = max_pending
        self._wake: asyncio.Event | None = None
        self._delivering: asyncio.Lock | None = None  # held while events are handed out
        self._deliverer: asyncio.Task[Any] | None = None
        self.dropped = 0

    @property
    def active(self) -> bool:
        """Whether an event would reach anyone (a handler or an enabled log level)."""
        return bool(self._handlers) or (self.level is not None and logger.isEnabledFor(self.level))

    def level_for(self, log: str | bool | None) -> int | None:
        """The log level of a call given ``log=`` (``None``: no log line).

        ``False`` silences the call; a level name overrides the repo's level; ``True`` or ``None``
        keep it. As in Ecto, no per-call value logs a query when the repo was created with ``log=False``.
        """
        if log is False or self.level is None:
            return None
        if isinstance(log, str):
            return logging.getLevelNamesMapping()[log.upper()]
        level: int = self.level
        return level

    def active_for(self, log: str | bool | None, handlers: bool = True) -> bool:
        """Whether an event of a call with ``log=`` would reach anyone (``handlers=False``: the
        call gave ``telemetry_event=None``, only its log line counts)."""
        if handlers and self._handlers:
            return True
        level = self.level_for(log)
        return level is not None and logger.isEnabledFor(level)

    def attach(self, handler: Callable[[Any], Any], *, name: str | None = None, event: str = "query") -> str:
        """Call ``handler(event)`` for every query from now on (``event="failover"``: for every
        :class:`FailoverEvent` instead); returns the name to detach it by.

        An async handler is awaited. A handler that raises is logged and detached.
        """
        if event not in _EVENT_KINDS:
            raise ArgumentError(f"cannot attach telemetry handler: unknown event {event!r}; use 'query' or 'failover'")
        key = name or f"{getattr(handler, '__qualname__', 'handler')}-{id(handler)}"
        (self._failover_handlers if event == "failover" else self._handlers)[key] = handler
        return key

    def detach(self, name: str) -> bool:
        """Stop calling the handler attached as ``name``; whether it was attached."""
        found = self._failover_handlers.pop(name, None) is not None
        return self._handlers.pop(name, None) is not None or found

    def emit_failover(self, event: FailoverEvent) -> None:
        """Queue ``event`` for the handlers attached with ``event="failover"``."""
        if self._failover_handlers:
            self._pending.append((event, True))
            if self._wake is not None:
                self._wake.set()

    def emit(self, event: QueryEvent, handlers: bool = True) -> None:
        """Queue ``event`` for the log line and, unless ``handlers`` is False, the handlers."""
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append((event, handlers))
        if self._wake is not None:
            self._wake.set()

    async def deliver(self) -> None:
        """The worker: forever wait for events and hand them out."""
        self._wake = wake = asyncio.Event()
        self._delivering = asyncio.Lock()  # made here, in the loop the repo runs in
        if self._pending:
            wake.set()  # events queued while no worker ran (before a restart)
        while True:
            await wake.wait()
            wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Deliver every pending event now; also waits for a delivery the worker has in progress.

        Called from inside a handler it delivers what is pending without waiting.
        """
        lock = self._delivering
        task = asyncio.current_task()
        if lock is None or self._deliverer is task:
            await self._drain()
            return
        async with lock:
            self._deliverer = task
            try:
                await self._drain()
            finally:
                self._deliverer = None

    async def _drain(self) -> None:
        pending = self._pending
        while pending:
            event, to_handlers = pending.popleft()
            if isinstance(event, FailoverEvent):
                await self._deliver_to(self._failover_handlers, event)
                continue
            level = self.level if event.log is None else self.level_for(event.log)
            if level is not None and logger.isEnabledFor(level):
                logger.log(level, "%s", format_event(event))
            if not to_handlers:
                continue
            for name, handler in list(self._handlers.items()):
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except (Exception, Rollback):  # a handler rolling back a transaction is as wrong as a failing one
                    logger.exception("telemetry handler %r failed and was detached", name)
                    self._handlers.pop(name, None)

    async def _deliver_to(self, handlers: dict[str, Callable[[FailoverEvent], Any]], event: FailoverEvent) -> None:
        for name, handler in list(handlers.items()):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except (Exception, Rollback):
                logger.exception("telemetry handler %r failed and was detached", name)
                handlers.pop(name, None)
