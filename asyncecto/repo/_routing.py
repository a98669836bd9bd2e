"""Read replicas: which server a read runs on, read-your-writes, and each replica's health.

``Repo(url, replicas=[url1, url2])`` gives the repo one pool per replica (each replica's options are
the primary's, what its URL sets winning; ``replica_pool_size`` sizes them). :class:`Router` decides,
per statement, in ``RepoCore.run``:

- **What goes to a replica**: a statement of a read call (``all``, ``all_by``, ``one``, ``get``,
  ``get_by``, ``exists``, ``aggregate``, ``preload`` and their ``_or_raise`` twins: :func:`routed`
  marks the call) that runs outside a transaction and a checkout, and raw ``repo.query(...,
  replica=True)``. Everything else runs on the primary: writes, transactions and everything inside
  one, streams (they need a transaction), ``checkout()``, Multi, queries with ``lock`` (``FOR UPDATE``),
  migrations, raw SQL without ``replica=True``, and anything inside a test sandbox.
- **Which replica**: round robin over the healthy ones. A replica whose connection fails (refused,
  lost, 57P01 admin shutdown, a connect timeout) is taken out; a background probe (supervisor worker
  ``replica_probe``) tries it again with backoff (0.2 s doubling to 5 s) and puts it back when a
  session opens and answers. With no healthy replica, reads go to the primary.
- **Retry**: a read that fails on a replica with such a connection-level error (nothing was returned:
  a statement's rows arrive all at once) runs once more, on another healthy replica or else the
  primary. Only reads are retried; other errors (a timeout, a bad query) are raised as they are.
- **Read-your-writes**: a write outside a transaction, or a transaction's COMMIT, on the primary
  marks the caller's context (a ``contextvars`` variable: the task, and the tasks it starts
  afterwards, e.g. one request) with the time it ended, and wakes the *sampler* (worker
  ``replica_lsn_sampler``), which reads the primary's WAL insert position at most every
  :attr:`Router.sample_gap` seconds however many writes there are: a position sampled after the
  write ended is at or past its commit record. No statement is added to the write itself (asking
  after each write cost one round trip: ~+100 µs, nearly doubling a single-row insert on localhost).
  That context's reads then go only to a replica that has replayed that position (each replica's
  replayed position is cached and asked again at most every :attr:`Router.lsn_max_age` seconds, one
  query shared by concurrent readers), else to the primary (also until the first sample after the
  write arrives) — for at most ``read_your_writes`` seconds (default 5.0), after which any healthy
  replica serves it again.
- **Forcing**: ``repo.all(q, replica=False)`` and ``with repo.primary():`` read from the primary;
  ``replica=True`` reads from a replica even right after a write (no read-your-writes wait).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import attrs

from asyncecto.adapters import open_adapter
from asyncecto.errors import (
    ArgumentError,
    AsyncEctoError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseError,
    DatabaseUnavailableError,
    PoolTimeoutError,
)
from asyncecto.query._placeholder import BoundQuery
from asyncecto.query._query import Query

from ._config import RepoConfig, build_config
from ._ownership import PoolLease

if TYPE_CHECKING:
    from asyncecto.adapters import RepoAdapter, Worker

    from ._core import RepoCore

__all__ = ("PRIMARY", "Replica", "ReplicaEvent", "ReplicaEvents", "Router", "routed")

logger = logging.getLogger("asyncecto")

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: ``RepoCore.run(server=PRIMARY)``: the statement was routed, and runs on the primary
PRIMARY: Final[Any] = type("_Primary", (), {"__repr__": lambda self: "PRIMARY"})()
#: a write whose WAL position is not sampled yet: its context reads from the primary
_UNKNOWN_LSN: Final = 1 << 64
#: SQLSTATEs that say the server is going away or not there yet (57P01 admin shutdown, 57P02 crash, 57P03 starting)
_GONE_STATES: Final = frozenset({"57P01", "57P02", "57P03"})


def connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the server (not the statement) failed: the replica is taken out, the read retried."""
    if isinstance(exc, CommitOutcomeUnknownError):
        return False
    if isinstance(exc, DatabaseUnavailableError | ConnectionLostError):
        return True
    if isinstance(exc, PoolTimeoutError):
        return isinstance(exc.__cause__, DatabaseUnavailableError)  # waited on a server refusing connections
    return isinstance(exc, DatabaseError) and exc.sqlstate in _GONE_STATES


@attrs.frozen
class ReplicaEvent:
    """A replica was taken out of rotation (``"down"``) or put back (``"up"``).

    :ivar name: ``(repo, "replica", "down" | "up")`` (Ecto-style event name)
    :ivar replica: the replica's ``host:port``; :ivar url: its URL, password masked
    :ivar error: what took it out (``"down"``), else ``None``
    :ivar down_for: seconds it was out (``"up"``), else ``None``
    """

    name: tuple[str, str, str]
    replica: str
    url: str
    error: BaseException | None = None
    down_for: float | None = None


class ReplicaEvents:
    """Handlers of :class:`ReplicaEvent` (``repo.replica_events.attach(handler)``); each event is also logged
    on logger ``asyncecto`` (``down`` at WARNING, ``up`` at INFO). A handler is called in the task that saw the
    change; an async one runs in a task of its own. A handler that raises is logged and detached."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[ReplicaEvent], Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, handler: Callable[[ReplicaEvent], Any], *, name: str | None = None) -> str:
        """Call ``handler(event)`` on every replica change from now on; the name to detach it by."""
        key = name or f"{getattr(handler, '__qualname__', 'handler')}-{id(handler)}"
        self._handlers[key] = handler
        return key

    def detach(self, name: str) -> bool:
        """Stop calling the handler attached as ``name``; whether it was attached."""
        return self._handlers.pop(name, None) is not None

    def emit(self, event: ReplicaEvent) -> None:
        if event.name[2] == "down":
            logger.warning("repo %s: replica %s taken out of rotation: %s", event.name[0], event.url, event.error)
        else:
            logger.info("repo %s: replica %s back in rotation after %.1fs", event.name[0], event.url, event.down_for)
        for key, handler in list(self._handlers.items()):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
            except Exception:
                logger.exception("replica event handler %r failed and was detached", key)
                self._handlers.pop(key, None)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("replica event handler failed", exc_info=task.exception())


class Replica:
    """One replica: its pool, health and last known replayed WAL position."""

    def __init__(self, config: RepoConfig, adapter: RepoAdapter) -> None:
        self.config = config
        self.adapter = adapter
        self.url = config.masked_url()
        self.label = f"{config.host}:{config.port}"
        self.healthy = True
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.backoff = 0.0
        self.taken_out = 0  # times taken out of rotation
        self.last_error: str | None = None
        self.replay_lsn: int | None = None  # last known replayed position (None: not known yet)
        self.in_recovery = True  # False: the server is not a standby (it has everything it wrote)
        self.lsn_at = float("-inf")  # when replay_lsn was read (monotonic)
        self.refreshing: asyncio.Task[None] | None = None
        self.reads = 0  # statements routed here

    async def lease(self) -> PoolLease:
        """A pooled connection of this replica."""
        adapter = self.adapter
        conn = adapter.checkout_nowait()
        if conn is None:
            conn = await adapter.checkout()
        return PoolLease(conn, adapter)

    def lag(self, primary_lsn: int) -> int | None:
        """Bytes of WAL the replica is behind the primary's last position this repo saw (None: unknown)."""
        if not self.in_recovery:
            return 0
        if self.replay_lsn is None or primary_lsn == 0:
            return None
        return max(primary_lsn - self.replay_lsn, 0)

    def __repr__(self) -> str:
        return f"<Replica {self.url} {'up' if self.healthy else 'down'}>"


@attrs.frozen
class _Written:
    at: float  # monotonic time the write ended: a primary WAL position sampled after it covers it
    until: float  # monotonic time after which the context reads from any replica again


def _replica_config(primary: RepoConfig, url: str) -> RepoConfig:
    """The replica's config: the primary's options, what ``url`` sets winning; sized by ``replica_pool_size``.
    Where to connect (host, port) is the URL's alone: a URL without a port means 5432, as for libpq."""
    skip = {
        "scheme",
        "host",
        "port",
        "replicas",
        "replica_pool_size",
        "read_your_writes",
        "endpoints",
        "target_session_attrs",
        "direct_url",  # the primary's session URL: a replica's own is in its URL, if it is pooled too
    }
    options = {f: getattr(primary, f) for f in attrs.fields_dict(RepoConfig) if f not in skip}
    size = primary.replica_pool_size or primary.pool_size
    options.update(pool_size=size, min_size=min(primary.min_size, size))
    return build_config(url, **options)


class Router:
    """The repo's replicas and the routing of reads (see the module docstring)."""

    #: seconds a replica's replayed WAL position is trusted before it is asked again
    lsn_max_age = 0.05
    #: first and longest wait between probes of a replica taken out
    probe_backoff = (0.2, 5.0)
    #: a healthy replica's replayed position is read at least this often (seconds), for its reported lag
    lag_refresh = 1.0
    #: least seconds between two samples of the primary's WAL position (one query per gap at most, however
    #: many writes)
    sample_gap = 0.01

    def __init__(self, core: RepoCore) -> None:
        self.core = core
        config = core.config
        replication = getattr(core.adapter, "replication", None)
        if replication is None:
            raise ArgumentError(
                f"the {config.scheme!r} adapter cannot route reads to replicas (it reads no WAL positions)\n\n"
                "fix: drop replicas=, or use a PostgreSQL URL"
            )
        self.replication: Any = replication
        self.replicas = [Replica(c, open_adapter(c.connection_settings())) for c in self._configs(config)]
        self.read_your_writes = config.read_your_writes
        self.events = core.replica_events
        ident = f"{id(core):x}"
        #: inside a read call (``routed``)
        self.read_var: contextvars.ContextVar[bool] = contextvars.ContextVar(f"asyncecto_read_{ident}", default=False)
        #: ``True``: a replica even after a write; ``False``: the primary; ``None``: route
        self.prefer_var: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
            f"asyncecto_prefer_{ident}", default=None
        )
        #: the context's last write on the primary
        self.written_var: contextvars.ContextVar[_Written | None] = contextvars.ContextVar(
            f"asyncecto_written_{ident}", default=None
        )
        self._next = 0
        self.primary_lsn = 0  # the highest primary WAL position sampled
        #: the last sample of the primary's WAL position: (monotonic time it was asked, position)
        self.sample: tuple[float, int] | None = None
        self.samples = 0
        self._wanted: asyncio.Event | None = None  # set by a write: take a sample
        self.on_primary = 0  # routed reads the primary served (no replica fit)
        self.retried = 0  # reads retried after a replica's connection failed

    @staticmethod
    def _configs(config: RepoConfig) -> list[RepoConfig]:
        return [_replica_config(config, url) for url in config.replicas]

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Open each replica's pool; a replica that cannot be reached starts out of rotation (never fails the start)."""
        for replica in self.replicas:
            try:
                await replica.adapter.start()
            except AsyncEctoError as exc:
                self.take_out(replica, exc)

    def workers(self) -> list[Worker]:
        """The probe, and each replica pool's upkeep."""
        found: list[Worker] = [("replica_probe", self.probe)]
        if self.read_your_writes > 0:
            found.append(("replica_lsn_sampler", self.sampler))
        for i, replica in enumerate(self.replicas):
            found += [(f"replica{i}_{name}", fn) for name, fn in replica.adapter.workers()]
        return found

    async def stop(self, timeout: float) -> None:
        """Close every replica's pool (in-flight reads get ``timeout`` seconds)."""
        for replica in self.replicas:
            if replica.refreshing is not None:
                replica.refreshing.cancel()
        await asyncio.gather(*(r.adapter.stop(timeout) for r in self.replicas), return_exceptions=True)

    # -- what goes where ------------------------------------------------------------------
    def routes(self, bound: Any) -> bool:
        """Whether this statement (with ``bound``: the task's pinned connection) may go to a replica."""
        if bound is not None and bound.active:
            return False
        prefer = self.prefer_var.get()
        if prefer is False or self.core.ownership.active:  # forced, or a test sandbox may own the task
            return False
        return prefer is True or self.read_var.get()

    def captures(self) -> bool:
        """Whether a statement run on the primary now marks the context as having written."""
        return (
            self.read_your_writes > 0
            and not self.read_var.get()
            and self.prefer_var.get() is not True
            and not self.core.ownership.active
        )

    @contextmanager
    def reading(self, replica: bool | None, locked: bool = False) -> Iterator[None]:
        """The block is a read call; ``replica`` (the call's option) forces a replica (True) or the primary.
        A ``locked`` read (``FOR UPDATE`` …) runs on the primary whatever the call says (a standby refuses it)."""
        if locked:
            replica = False
        read_token = self.read_var.set(not locked)
        prefer_token = self.prefer_var.set(replica) if replica is not None else None
        try:
            yield
        finally:
            if prefer_token is not None:
                self.prefer_var.reset(prefer_token)
            self.read_var.reset(read_token)

    @contextmanager
    def forcing(self, replica: bool) -> Iterator[None]:
        """``with repo.primary():`` (``replica=False``)."""
        token = self.prefer_var.set(replica)
        try:
            yield
        finally:
            self.prefer_var.reset(token)

    # -- reads -------------------------------------------------------------------------------
    def _needed(self) -> int | None:
        """The WAL position a replica must have replayed to serve this context (None: any will do)."""
        if self.prefer_var.get() is True:
            return None
        written = self.written_var.get()
        if written is None or time.monotonic() >= written.until:
            return None
        sample = self.sample
        if sample is None or sample[0] < written.at:
            return _UNKNOWN_LSN  # no position sampled since the write yet: the primary
        return sample[1]

    async def run_read(
        self,
        core: RepoCore,
        kind: str,
        sql: str,
        params: Any,
        timeout: Any,
        source: str | None,
        decode: Callable[[Any], Any] | None,
        client_timeout: float | None,
    ) -> tuple[Any, Any]:
        """``core.run`` of a read on a chosen replica (or the primary); retried once after a connection failure."""
        needed = self._needed()
        replica = await self.pick(needed)
        if replica is None:
            self.on_primary += 1
            return await core.run(kind, sql, params, timeout, source, decode, None, client_timeout, server=PRIMARY)
        try:
            replica.reads += 1
            return await core.run(kind, sql, params, timeout, source, decode, None, client_timeout, server=replica)
        except AsyncEctoError as exc:
            if not connection_failure(exc):
                raise
            self.take_out(replica, exc)
        self.retried += 1
        other = await self.pick(needed, exclude=replica)
        if other is None:
            self.on_primary += 1
        else:
            other.reads += 1
        server = PRIMARY if other is None else other
        return await core.run(kind, sql, params, timeout, source, decode, None, client_timeout, server=server)

    async def pick(self, needed: int | None, exclude: Replica | None = None) -> Replica | None:
        """The next healthy replica (round robin) that has replayed ``needed``; None: use the primary."""
        if needed == _UNKNOWN_LSN:
            return None
        replicas = self.replicas
        count = len(replicas)
        start = self._next
        self._next = (start + 1) % count
        for i in range(count):
            replica = replicas[(start + i) % count]
            if replica is exclude or not replica.healthy:
                continue
            if needed is None or await self._has_replayed(replica, needed):
                return replica
        return None

    async def _has_replayed(self, replica: Replica, needed: int) -> bool:
        if not replica.in_recovery or (replica.replay_lsn is not None and replica.replay_lsn >= needed):
            return True
        if time.monotonic() - replica.lsn_at < self.lsn_max_age:
            return False
        task = replica.refreshing
        if task is None:
            # one query for every reader waiting on this replica; a reader cancelled meanwhile leaves it to
            # finish (and check its connection in) on its own
            task = replica.refreshing = asyncio.get_running_loop().create_task(self._refresh(replica))
        await asyncio.shield(task)
        return replica.healthy and (
            not replica.in_recovery or (replica.replay_lsn is not None and replica.replay_lsn >= needed)
        )

    async def _refresh(self, replica: Replica) -> None:
        """Read the replica's replayed position (a connection failure takes it out)."""
        try:
            asked = time.monotonic()
            lease = await replica.lease()
            try:
                lsn = await self.replication.replay_position(lease.conn, replica.config.connect_timeout)
            finally:
                await lease.checkin()
            replica.in_recovery = lsn is not None
            if lsn is not None:
                replica.replay_lsn = max(lsn, replica.replay_lsn or 0)
            replica.lsn_at = asked
        except AsyncEctoError as exc:
            if connection_failure(exc):
                self.take_out(replica, exc)
            else:
                replica.lsn_at = time.monotonic()  # asked again after lsn_max_age; reads go to the primary meanwhile
                logger.warning("repo %s: cannot read replica %s's WAL position: %s", self.core.name, replica.url, exc)
        except Exception:  # a task of its own: nothing may escape unretrieved
            replica.lsn_at = time.monotonic()
            logger.exception("repo %s: cannot read replica %s's WAL position", self.core.name, replica.url)
        finally:
            replica.refreshing = None

    # -- writes -------------------------------------------------------------------------------
    def note_write(self) -> None:
        """After a write outside a transaction, or a COMMIT, on the primary: this context's reads need a replica
        that has replayed the primary's WAL position as sampled after now (for ``read_your_writes`` seconds).
        Sends no statement: it wakes the sampler."""
        now = time.monotonic()
        self.written_var.set(_Written(now, now + self.read_your_writes))
        if self._wanted is not None:
            self._wanted.set()

    async def sampler(self) -> None:
        """The worker: after writes, read the primary's WAL insert position (at most every :attr:`sample_gap`
        seconds, however many writes): a sample taken after a write ended is at or past that write's commit."""
        self._wanted = wanted = asyncio.Event()
        core = self.core
        while True:
            await wanted.wait()
            wanted.clear()
            started = time.monotonic()
            try:
                adapter = core.adapter
                conn = adapter.checkout_nowait() or await adapter.checkout()
                lease = PoolLease(conn, adapter)
                try:
                    lsn: int = await self.replication.write_position(conn, core.config.cleanup_timeout)
                finally:
                    await lease.checkin()
            except AsyncEctoError as exc:
                if core.state != "running":
                    continue  # shutting down: the pool is closed
                logger.warning("repo %s: cannot read the primary's WAL position: %s", core.name, exc)
                wanted.set()  # try again after the gap; the writers' reads stay on the primary meanwhile
            else:
                self.primary_lsn = max(self.primary_lsn, lsn)
                self.sample = (started, self.primary_lsn)
                self.samples += 1
            await asyncio.sleep(self.sample_gap)

    # -- health --------------------------------------------------------------------------------
    def take_out(self, replica: Replica, exc: BaseException) -> None:
        """Take ``replica`` out of rotation (the probe puts it back); emits ``(repo, "replica", "down")``."""
        replica.last_error = str(exc).split("\n", 1)[0]
        if not replica.healthy:
            return
        now = time.monotonic()
        replica.healthy = False
        replica.down_since = now
        replica.taken_out += 1
        replica.backoff = self.probe_backoff[0]
        replica.retry_at = now + replica.backoff
        replica.replay_lsn, replica.lsn_at = None, float("-inf")
        replica.adapter.disconnect_all(0)  # its other connections are suspect: idle ones close now, others at checkin
        self.events.emit(ReplicaEvent((self.core.name, "replica", "down"), replica.label, replica.url, error=exc))

    def put_back(self, replica: Replica) -> None:
        """Put ``replica`` back in rotation; emits ``(repo, "replica", "up")``."""
        if replica.healthy:
            return
        down_for = time.monotonic() - (replica.down_since or time.monotonic())
        replica.healthy, replica.down_since = True, None
        self.events.emit(ReplicaEvent((self.core.name, "replica", "up"), replica.label, replica.url, down_for=down_for))

    async def probe(self) -> None:
        """The worker: try each replica taken out when its backoff has passed (a session that answers puts it back);
        read a healthy replica's replayed position when it is older than :attr:`lag_refresh` (for its lag)."""
        low, high = self.probe_backoff
        loop = asyncio.get_running_loop()
        while True:
            wait = low
            for replica in self.replicas:
                if replica.healthy:
                    if replica.refreshing is None and time.monotonic() - replica.lsn_at > self.lag_refresh:
                        replica.refreshing = loop.create_task(self._refresh(replica))
                    continue
                now = time.monotonic()
                if now >= replica.retry_at:
                    if await self._probe(replica):
                        continue
                    replica.backoff = min(max(replica.backoff * 2, low), high)
                    replica.retry_at = time.monotonic() + replica.backoff
                wait = min(wait, max(replica.retry_at - time.monotonic(), 0.01))
            await asyncio.sleep(wait)

    async def _probe(self, replica: Replica) -> bool:
        try:
            lease = PoolLease(await replica.adapter.checkout(replica.config.connect_timeout), replica.adapter)
            try:
                lsn = await self.replication.replay_position(lease.conn, replica.config.connect_timeout)
            finally:
                await lease.checkin()
        except (AsyncEctoError, OSError) as exc:
            replica.last_error = str(exc).split("\n", 1)[0]
            return False
        replica.in_recovery = lsn is not None
        replica.replay_lsn, replica.lsn_at = lsn, time.monotonic()
        self.put_back(replica)
        return True

    # -- stats ------------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Per replica: ``replica`` (host:port), ``url`` (masked), ``healthy``, ``down_for`` (seconds or None),
        ``taken_out`` (times), ``last_error``, ``reads`` (statements routed there), ``replay_lsn`` and ``lag_bytes``
        (last known; None when unknown), ``in_recovery``, and its pool's counters under ``pool``."""
        now = time.monotonic()
        return [
            {
                "replica": r.label,
                "url": r.url,
                "healthy": r.healthy,
                "down_for": None if r.down_since is None else now - r.down_since,
                "taken_out": r.taken_out,
                "last_error": r.last_error,
                "reads": r.reads,
                "replay_lsn": r.replay_lsn,
                "lag_bytes": r.lag(self.primary_lsn),
                "in_recovery": r.in_recovery,
                "pool": r.adapter.stats(),
            }
            for r in self.replicas
        ]


def routed(method: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Mark a Repo read method: its statements may go to a replica; it takes ``replica=True|False``
    (pass it on through ``**options``). Without replicas it only drops a ``replica=`` option."""

    @functools.wraps(method)
    async def read(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        replica = kwargs.pop("replica", None)
        if replica is not None and not isinstance(replica, bool):
            raise ArgumentError(
                f"replica= must be True (a replica, even right after a write), False (the primary) or None, "
                f"got {replica!r}"
            )
        router = args[0]._executor.router  # type: ignore[attr-defined]
        if router is None:
            return await method(*args, **kwargs)
        query = args[1] if len(args) > 1 else None
        locked = (
            isinstance(query, Query | BoundQuery) and query.lock is not None
        )  # FOR UPDATE and the like: the primary
        with router.reading(replica, locked):
            return await method(*args, **kwargs)

    return read


def routed_raw(method: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Mark raw SQL: it goes to the primary unless the call says ``replica=True``."""

    @functools.wraps(method)
    async def raw(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        replica = kwargs.pop("replica", None)
        if replica is not None and not isinstance(replica, bool):
            raise ArgumentError(f"replica= must be True (run this SQL on a replica), False or None, got {replica!r}")
        router = args[0]._executor.router  # type: ignore[attr-defined]
        if router is None or replica is not True:
            return await method(*args, **kwargs)
        with router.forcing(True):
            return await method(*args, **kwargs)

    return raw
