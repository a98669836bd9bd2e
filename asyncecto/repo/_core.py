"""The Repo's lifecycle and its execution core: every statement goes through ``RepoCore.run``."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import os
import sys
import time
import traceback
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from asyncecto._executor import DEFAULT, Executor, executor_of
from asyncecto.adapters import Connection, RepoAdapter, open_adapter
from asyncecto.errors import ArgumentError, AsyncEctoError, QueryError, RepoStateError, SandboxError

from ._config import RepoConfig, build_config
from ._notifications import Listener, start_listener
from ._ownership import Lease, Ownership, PoolLease
from ._routing import PRIMARY, ReplicaEvents, Router
from ._supervisor import Supervisor
from ._telemetry import FailoverEvent, QueryEvent, Telemetry

__all__ = ("DEFAULT", "Bound", "RepoCore", "RepoState", "check_spawn_hook", "executor_of")

_R = TypeVar("_R")


class CallOptions(NamedTuple):
    """A call's per-call options for its statements (``None``: the repo's defaults).

    ``telemetry``: ``False`` when the call gave ``telemetry_event=None`` (handlers see no event);
    ``query_cache``: ``False`` when the call gave ``query_cache=False`` (no plan cache, no
    prepared-statement cache)."""

    log: str | bool | None = None
    telemetry_options: Mapping[str, Any] | None = None
    telemetry: bool = True
    query_cache: bool = True


#: the options of a call that gave none
NO_CALL_OPTIONS = CallOptions()

#: the package's folder: frames inside it are left out of a query's ``stacktrace``
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: the running repos, in the order they started (``Repo.all_running()``)
_RUNNING: dict[int, weakref.ref[Any]] = {}


def running_repos() -> list[Any]:
    """The public repos now running, in the order they started."""
    repos = (ref() for ref in list(_RUNNING.values()))
    return [repo for repo in repos if repo is not None and repo._own_executor.state == "running"]


def caller_stack(limit: int = 30) -> tuple[traceback.FrameSummary, ...]:
    """The frames calling into asyncecto, innermost first (the library's own frames left out)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    frames: list[traceback.FrameSummary] = []
    while frame is not None and len(frames) < limit:
        code = frame.f_code
        frames.append(traceback.FrameSummary(code.co_filename, frame.f_lineno or 0, code.co_qualname, line=None))
        frame = frame.f_back  # type: ignore[assignment]
    return tuple(frames)


class Bound:
    """A connection pinned to a task by a transaction or a checkout.

    :ivar owner: the task that pinned it; another task using it concurrently is refused
    :ivar depth: transactions open on it (0 for a plain checkout); nested ones are savepoints
    :ivar active: ``False`` once released (a stream built on it then refuses to go on)
    :ivar lease: how the ownership layer lent the connection (the pool's, or a test sandbox's)
    :ivar tenant: the ``(setting, value)`` its transaction holds for ``repo.tenant`` (``None``: none)
    """

    __slots__ = ("active", "conn", "depth", "lease", "owner", "repo", "tenant")

    def __init__(self, repo: object, lease: Lease, owner: object, depth: int) -> None:
        self.repo = repo
        self.lease = lease
        self.conn = lease.conn
        self.owner = owner
        self.depth = depth
        self.active = True
        self.tenant: tuple[str, str] | None = None


async def _no_tenants(*args: Any) -> Any:
    raise AssertionError("a tenant is in effect but no repo.tenant block wired its statement path")


class RepoState(enum.Enum):
    """The Repo's lifecycle: new → running → closing → closed (and back to running on restart)."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


_HINTS = {
    RepoState.NEW: "start it first: `async with repo:` or `await repo.start()`",
    RepoState.STARTING: "await repo.start() before using the repo",
    RepoState.CLOSING: "the repo is shutting down; start a new one",
    RepoState.CLOSED: "start it again with `await repo.start()` or `async with repo:`",
}


def check_spawn_hook(hook: Any) -> None:
    """Refuse an ``on_preloader_spawn`` that cannot be called."""
    if hook is not None and not callable(hook):
        raise ArgumentError(
            f"on_preloader_spawn must be a function taking no arguments (sync or async), or None; got {hook!r}\n\n"
            "fix: on_preloader_spawn=lambda: tracer.attach(span_context), called at the start of each "
            "parallel preload task"
        )


class RepoCore(Executor):
    """The executor behind a public ``Repo``: configuration, adapter, the ownership layer lending
    connections, supervisor, telemetry, the plan/loader caches, and ``run`` (every statement)."""

    def __init__(self, url: str | None = None, /, *, name: str | None = None, repo: Any = None, **options: Any) -> None:
        #: the public Repo this executes for (what user callbacks receive, what ``Rollback`` names)
        self.repo: Any = self if repo is None else repo
        #: ``on_preloader_spawn``: called at the start of each parallel preload task (a repo
        #: option, not a connection setting; a call's own option wins)
        self.on_preloader_spawn: Any = options.pop("on_preloader_spawn", None)
        check_spawn_hook(self.on_preloader_spawn)
        self.config: RepoConfig = build_config(url, **options)
        #: the config as given, which the ``init`` hook receives on every start
        self.given_config = self.config
        self.name = name or f"{self.config.database}"
        self.adapter: RepoAdapter = open_adapter(self.config.connection_settings())
        self.telemetry = Telemetry(self.name, self.config.log)
        self._state = RepoState.NEW
        #: this repo's connection pinned to the current task (each repo has its own)
        self.bound_var: contextvars.ContextVar[Bound | None] = contextvars.ContextVar(
            f"asyncecto_pinned_{id(self):x}", default=None
        )
        #: the current call's ``(log, telemetry_options)`` (``None``: the repo's defaults); child tasks
        #: (parallel preloads) inherit it with the context
        self.call_var: contextvars.ContextVar[CallOptions | None] = contextvars.ContextVar(
            f"asyncecto_call_{id(self):x}", default=None
        )
        #: the repo's ``prepare_query`` for the current call's preload queries (``None``: not overridden)
        self.preload_prepare_var: contextvars.ContextVar[Callable[[Any], Any] | None] = contextvars.ContextVar(
            f"asyncecto_preload_prepare_{id(self):x}", default=None
        )
        #: the tenant of ``repo.tenant(...)`` in effect here (``asyncecto.repo._tenant``)
        self.tenant_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
            f"asyncecto_tenant_{id(self):x}", default=None
        )
        #: a statement's way through a tenant's transaction, and setting the tenant on one: set by
        #: the first ``repo.tenant`` block (``asyncecto.repo._tenant``, which builds on this module)
        self.tenant_run: Callable[..., Awaitable[tuple[Any, Any]]] = _no_tenants
        self.tenant_sync: Callable[[RepoCore, Bound], Awaitable[None]] = _no_tenants
        #: who lends connections: the pool, or a test sandbox (``asyncecto.testing``)
        self.ownership = Ownership(self)
        #: the event loop the repo was started on: its connections belong to it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: Supervisor | None = None
        self._listener: Listener | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._cache: dict[Hashable, Any] = {}
        self._cache_hits = 0
        self._cache_misses = 0
        #: read replicas (``replicas=``): made at each start; ``None`` without replicas or while not running
        self.router: Router | None = None
        #: ``repo.replica_events``: handlers of replicas taken out of / put back in rotation
        self.replica_events = ReplicaEvents()

    def __repr__(self) -> str:
        return f"Repo<{self._state.value} {self.config.masked_url()}>"

    # -- lifecycle --------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"new"``, ``"starting"``, ``"running"``, ``"closing"`` or ``"closed"``."""
        return self._state.value

    def _check(self, action: str) -> None:
        if self._state is not RepoState.RUNNING:
            raise RepoStateError(action, self._state.value, _HINTS.get(self._state, ""))

    async def start(self) -> None:
        """Open the pool and start the supervisor; raises if the database cannot be reached.

        :raises DatabaseUnavailableError: no connection could be opened
        :raises RepoStateError: the repo is already running or starting
        """
        if self._state in (RepoState.RUNNING, RepoState.STARTING, RepoState.CLOSING):
            raise RepoStateError("start repo", self._state.value)
        if self._state is RepoState.CLOSED:
            self.adapter = open_adapter(self.config.connection_settings())
        self._state = RepoState.STARTING
        self._loop = asyncio.get_running_loop()
        listener: Listener | None = None
        router: Router | None = None
        try:
            self._run_init()
        except BaseException:
            self._state = RepoState.NEW
            raise
        try:
            self.adapter.watch_failover(self._failover_seen)
            await self.adapter.start()
            if self.config.replicas:  # read replicas: their pools, probe and upkeep (asyncecto.repo._routing)
                router = Router(self)
                await router.start()
            supervisor = Supervisor(self.name)
            listener = start_listener(self)
            await supervisor.start(
                [
                    *self.adapter.workers(),
                    ("telemetry", self.telemetry.deliver),
                    ("notifications", listener.run),
                    *(router.workers() if router is not None else ()),
                ]
            )
        except BaseException:
            if listener is not None:
                listener.close()
            if router is not None:
                await router.stop(0)
            await self.adapter.stop(0)
            self.adapter = open_adapter(self.config.connection_settings())  # a stopped pool never reopens: start afresh
            self._state = RepoState.NEW
            raise
        self._supervisor = supervisor
        self._listener = listener
        self.router = router
        self._state = RepoState.RUNNING
        _RUNNING[id(self)] = weakref.ref(self.repo)

    def _failover_seen(self, moved: Any) -> None:
        """The pool moved to a new primary: a :class:`FailoverEvent` for the telemetry handlers."""
        self.telemetry.emit_failover(
            FailoverEvent(
                repo=self.name,
                old_server=moved.old_server,
                new_server=moved.new_server,
                reason=moved.reason,
                drained=moved.drained,
            )
        )

    def _run_init(self) -> None:
        """Call the public repo's ``init("supervisor", config)`` hook, if it has one, and use its config."""
        hook = getattr(self.repo, "init", None)
        if hook is None:
            return
        given = self.given_config
        config = hook("supervisor", given)
        where = f"{type(self.repo).__name__}.init('supervisor', config)"
        if not isinstance(config, RepoConfig):
            raise ArgumentError(
                f"{where} must return a RepoConfig, got {config!r}\n\n"
                "fix: return attrs.evolve(config, pool_size=20) (or the config unchanged)"
            )
        if config.read_only != given.read_only:
            raise ArgumentError(
                f"{where} cannot change read_only (from {given.read_only} to {config.read_only}): the write "
                f"functions are chosen when the Repo is created\n\nfix: Repo(url, read_only={config.read_only})"
            )
        if config != self.config:
            self.config = config
            self.adapter = open_adapter(config.connection_settings())
            self.telemetry.level = Telemetry(self.name, config.log).level

    async def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, wait for in-flight work up to ``timeout`` (default: ``shutdown_timeout``), close.

        Past ``timeout``, the connections still in use are closed (their holders get
        ``ConnectionLostError`` naming the stop) and their statements are cancelled on the server
        (``pg_cancel_backend`` from a fresh connection), so nothing keeps running there.
        Calling it on a repo that is not running does nothing. The shutdown runs in a task
        of its own: cancelling the caller does not leave the repo half-closed.
        """
        if self._state is RepoState.CLOSING and self._stopping is not None:
            await asyncio.shield(self._stopping)
            return
        if self._state is not RepoState.RUNNING:
            return
        self._state = RepoState.CLOSING
        self._stopping = asyncio.get_running_loop().create_task(self._shutdown(timeout))
        await asyncio.shield(self._stopping)

    async def _shutdown(self, timeout: float | None) -> None:
        try:
            await self.adapter.stop(self.config.shutdown_timeout if timeout is None else timeout)
        finally:
            if self.router is not None:
                await self.router.stop(self.config.shutdown_timeout if timeout is None else timeout)
                self.router = None
            await self.telemetry.flush()
            if self._supervisor is not None:
                await self._supervisor.stop()
            self._supervisor = None
            if self._listener is not None:
                # here, not in the worker's cancellation: the worker may be between a crash and its restart
                self._listener.close()
            self._listener = None
            self._state = RepoState.CLOSED
            _RUNNING.pop(id(self), None)

    @property
    def supervisor_restarts(self) -> dict[str, int]:
        """How many times each background worker was restarted."""
        return dict(self._supervisor.restarts) if self._supervisor else {}

    def pool_stats(self) -> dict[str, int]:
        """Pool counters: ``size``, ``idle``, ``in_use``, ``checkouts``, ``opened``, ``resets`` …"""
        return self.adapter.stats()

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per read replica: health, reads routed there, last known lag, pool counters (``Router.stats``)."""
        return self.router.stats() if self.router is not None else []

    def cache_stats(self) -> dict[str, int]:
        """Plan cache counters: ``hits``, ``misses``, ``size``."""
        return {"hits": self._cache_hits, "misses": self._cache_misses, "size": len(self._cache)}

    #: plans kept at most; the least recently used is dropped first
    cache_size = 4096

    def cache_get(self, key: Hashable) -> Any:
        """The cached value for ``key`` (counted as a hit), or ``None`` (always under ``query_cache=False``)."""
        call = self.call_var.get()
        if call is not None and not call.query_cache:
            return None
        value = self._cache.get(key)
        if value is not None:
            self._cache_hits += 1
        return value

    def cached(self, key: Hashable, build: Callable[[], _R]) -> _R:
        """The cached value for ``key``, built once; the cache keeps the most recently used plans.

        Under a call's ``query_cache=False`` the value is built and the cache left alone."""
        call = self.call_var.get()
        if call is not None and not call.query_cache:
            return build()
        cache = self._cache
        # a hit costs one lookup (a plan caches its own hash); the pop and re-insert keep it most recent
        try:
            value: _R = cache.pop(key)
        except (KeyError, TypeError):
            try:
                hash(key)  # a pop from an empty dict does not hash
            except TypeError as exc:
                raise QueryError(
                    f"cannot cache this query's plan: {exc}; a custom type used in a query must be hashable "
                    "(an attrs or dataclass type with frozen=True, or define __hash__)"
                ) from exc
            self._cache_misses += 1
            value = build()
            if len(cache) >= self.cache_size:
                cache.pop(next(iter(cache)))
        else:
            self._cache_hits += 1
        cache[key] = value
        return value

    @contextmanager
    def call_options(self, call: CallOptions) -> Iterator[None]:
        """Within the block, this task's statements follow the call's options (log level,
        ``telemetry_options``, telemetry event on/off, query cache on/off)."""
        if call == NO_CALL_OPTIONS:
            yield
            return
        token = self.call_var.set(call)
        try:
            yield
        finally:
            self.call_var.reset(token)

    @contextmanager
    def preload_prepare(self, prepare: Callable[[Any], Any] | None) -> Iterator[None]:
        """Within the block, this task's preload queries go through ``prepare`` (the repo's ``prepare_query``)."""
        if prepare is None:
            yield
            return
        token = self.preload_prepare_var.set(prepare)
        try:
            yield
        finally:
            self.preload_prepare_var.reset(token)

    def holds_connection(self) -> bool:
        """Whether this task holds a connection of this repo (in a checkout or a transaction)."""
        return self.bound() is not None

    async def disconnect_pool(self, interval: float) -> None:
        """Close every pooled connection, each at a random moment within ``interval`` seconds."""
        self._check("disconnect all connections")
        self.adapter.disconnect_all(interval)

    def require_transaction(self, action: str) -> Bound:
        """This task's transaction connection; refuses outside a transaction (cursors need one)."""
        bound = self.bound()
        if bound is None or bound.depth == 0:
            raise RepoStateError(
                action, "outside of a transaction", f"iterate the {action} inside `async with repo.transaction():`"
            )
        return bound

    async def stream_batches(
        self,
        bound: Bound,
        sql: str,
        params: list[Any] | tuple[Any, ...],
        max_rows: int,
        timeout: Any,
        source: str | None,
        call: CallOptions | None,
    ) -> AsyncGenerator[list[Any], None]:
        """Rows of a cursor on ``bound``'s connection, ``max_rows`` at a time; one telemetry event per
        fetch, carrying the cursor's statement and parameters (as Ecto's stream)."""
        self._check_owner(bound)
        if self.tenant_var.get() is not None or bound.tenant is not None:
            await self.tenant_sync(self, bound)  # the cursor's rows are the tenant's
        batches = bound.conn.batches(sql, params, max_rows, None if timeout is DEFAULT else timeout)
        active = self.telemetry.active if call is None else self.telemetry.active_for(call.log, call.telemetry)
        try:
            while True:
                if not bound.active:
                    raise RepoStateError(
                        "iterate stream", "past its transaction", "a stream can only be iterated inside its transaction"
                    )
                self._check_owner(bound)  # every batch: a child task must not take over the cursor
                t0 = time.perf_counter()
                try:
                    rows = await batches.__anext__()
                except StopAsyncIteration:
                    return
                except AsyncEctoError as exc:
                    if active:
                        took = time.perf_counter() - t0
                        self._emit(sql, params, source, None, took, None, took, None, exc, call)
                    raise
                if active:
                    took = time.perf_counter() - t0
                    self._emit(sql, params, source, None, took, None, took, len(rows), None, call)
                yield rows
        finally:
            await batches.aclose()

    def bound(self) -> Bound | None:
        """The connection this task has pinned on this repo (transaction or checkout), if any."""
        b = self.bound_var.get()
        return b if b is not None and b.active else None

    @property
    def running_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the repo was started on (``None`` unless running)."""
        return self._loop if self._state is RepoState.RUNNING else None

    def _check_loop(self, action: str) -> None:
        """Refuse a call made on another event loop than the repo's (whose connections belong to it)."""
        if asyncio.get_running_loop() is not self._loop:
            raise self._other_loop(action)

    def _other_loop(self, action: str) -> AsyncEctoError:
        client = (
            "    transport = httpx.ASGITransport(app=app)\n"
            '    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:'
        )
        if self.ownership.open:
            return SandboxError(
                self.name,
                f"cannot {action} from another event loop than the sandbox's (the test's): a test client that "
                "runs the app on an event loop of its own, such as Starlette's synchronous TestClient (a thread "
                "with its own loop), cannot use the sandbox's connection",
                f"drive the app in the test's own loop with httpx.AsyncClient and ASGITransport:\n\n{client}",
            )
        return RepoStateError(
            action,
            "running on another event loop",
            "a repo's connections belong to the event loop that started it: use the repo from that loop only "
            "(start one repo per loop otherwise); to test a web app, drive it in the test's own loop with "
            f"httpx.AsyncClient and ASGITransport, not Starlette's synchronous TestClient:\n\n{client}",
        )

    @staticmethod
    def _check_owner(bound: Bound) -> None:
        if not bound.active:
            raise RepoStateError(
                "use the transaction's connection",
                "past that transaction",
                "the transaction (or checkout) this code ran in has ended; run it inside a new one",
            )
        task = asyncio.current_task()
        if bound.owner is not task:
            raise RepoStateError(
                "use the transaction's connection from another task concurrently",
                "inside a transaction owned by another task",
                "one connection runs one statement at a time: await the work in the transaction's own task, "
                "or give the child task its own transaction",
            )

    # -- execution --------------------------------------------------------------
    def _emit(
        self,
        sql: str,
        params: list[Any] | tuple[Any, ...],
        source: str | None,
        queue: float | None,
        query: float,
        decode: float | None,
        total: float,
        rows: int | None,
        error: AsyncEctoError | None,
        call: CallOptions | None = None,
        idle: float | None = None,
        server: Any = None,
    ) -> None:
        if call is None:
            call = self.call_var.get()
        sent = tuple(params)
        cast = getattr(params, "cast", None)  # a planned statement's values before dumping (Params)
        replica = lag = None
        if server is not None and server is not PRIMARY and self.router is not None:  # served by a read replica
            replica, lag = server.label, server.lag(self.router.primary_lsn)
        self.telemetry.emit(
            QueryEvent(
                self.name,
                sql,
                sent,
                source,
                queue,
                query,
                decode,
                total,
                rows,
                "ok" if error is None else "error",
                error,
                None if call is None else call.telemetry_options,
                None if call is None else call.log,
                caller_stack() if self.config.stacktrace else None,
                idle,
                sent if cast is None else tuple(cast),
                replica,
                lag,
            ),
            call is None or call.telemetry,
        )

    async def run(
        self,
        kind: str,
        sql: str,
        params: list[Any] | tuple[Any, ...],
        timeout: Any,
        source: str | None,
        decode: Callable[[Any], _R] | None = None,
        pinned: Connection | None = None,
        client_timeout: float | None = None,
        server: Any = None,
    ) -> tuple[Any, _R | None]:
        """Run one statement on the task's bound connection or a pooled one.

        ``kind`` is the connection method (``fetch``, ``fetchrow``, ``execute``, ``query``);
        ``decode`` turns its result into structs and is timed as decode time; ``pinned``
        runs on that connection (transaction bookkeeping). ``client_timeout`` (with ``timeout``
        DEFAULT) bounds the call on the client (a cleanup's deadline; the driver's timeout error
        is raised on expiry). Returns ``(raw result, decoded)``. While the repo is closing,
        statements on a pinned connection still run: in-flight work may finish. ``server``: where the
        read router sent it (a ``Replica``, or ``PRIMARY``); ``None``: not routed yet.
        """
        bound = self.bound_var.get() if pinned is None else None
        if pinned is None:
            tenant = self.tenant_var.get()
            if (tenant is not None or (bound is not None and bound.tenant is not None)) and (
                bound is None or bound.depth == 0 or bound.tenant != (None if tenant is None else tenant.key)
            ):  # repo.tenant: the connection's transaction must hold the tenant first (on the primary)
                return await self.tenant_run(self, bound, kind, sql, params, timeout, source, decode, client_timeout)
        router = self.router
        if router is not None and server is None and pinned is None and router.routes(bound):
            return await router.run_read(self, kind, sql, params, timeout, source, decode, client_timeout)
        if self._state is not RepoState.RUNNING and not (
            self._state is RepoState.CLOSING and (pinned is not None or bound is not None)
        ):
            self._check("run query")
        if asyncio.get_running_loop() is not self._loop:
            raise self._other_loop("run a statement")
        lift = False
        if timeout is DEFAULT:
            timeout = client_timeout  # the server enforces the configured default (statement_timeout)
        elif self.config.timeout is not None and (timeout is None or timeout > self.config.timeout):
            lift = True  # the server's default limit would cut this call short
        t0 = time.perf_counter()
        ownership = self.ownership
        conn: Connection
        queue: float | None = None
        idle: float | None = None
        lease: Lease
        guarded = False  # outside any block of the task: the lease guards the statement
        lent = False  # checked out for this statement only
        if pinned is not None:
            conn = pinned
            lease = Lease(pinned)  # the caller's (transaction control): nothing to guard or give back
        elif bound is None:
            lent = guarded = True
            if server is not None and server is not PRIMARY:
                lease = await server.lease()  # a read replica's pool
            else:
                lease = ownership.checkout_nowait() or await ownership.checkout(
                    "a statement", sql if kind == "query" else None
                )
            conn = lease.conn
            queue = time.perf_counter() - t0
            if isinstance(lease, PoolLease):
                last_used = getattr(conn, "last_used", None)  # when the pool took it back
                if last_used is not None:
                    idle = max(time.monotonic() - last_used, 0.0)
        else:
            self._check_owner(bound)
            lease, conn = bound.lease, bound.conn
            if kind == "query":
                lease.check_sql(sql)
            guarded = bound.depth == 0  # a checkout: its lease is held already
        t1 = time.perf_counter()
        call = self.call_var.get()
        active = self.telemetry.active if call is None else self.telemetry.active_for(call.log, call.telemetry)
        # read-your-writes: a statement on the primary outside a transaction marks the context as having written
        capture = router is not None and server is None and pinned is None and (bound is None or bound.depth == 0)
        try:
            if guarded:
                await lease.before_statement()
            if lift:
                await conn.set_statement_timeout(timeout)
            if call is not None and not call.query_cache and kind in ("fetch", "fetchrow", "execute"):
                result = await conn.uncached(kind, sql, params, timeout)
            else:
                result = await getattr(conn, kind)(sql, params, timeout)
            if lift:
                await lease.restore_timeout()
            if capture and router is not None and router.captures():
                router.note_write()  # no statement: the WAL position is sampled by the router's worker
        except BaseException as exc:
            if guarded:
                await lease.undo_statement()
            if isinstance(exc, AsyncEctoError) and active:
                now = time.perf_counter()
                self._emit(sql, params, source, queue, now - t1, None, now - t0, None, exc, None, idle, server)
            raise
        finally:
            if lent:
                await lease.checkin()
        t2 = time.perf_counter()
        decoded = decode(result) if decode is not None else None
        if active:
            t3 = time.perf_counter()
            rows = result if isinstance(result, int) else (len(result) if isinstance(result, list) else None)
            if kind == "fetchrow":
                rows = 0 if result is None else 1
            elif kind == "query":
                rows = len(result[1])
            self._emit(
                sql,
                params,
                source,
                queue,
                t2 - t1,
                (t3 - t2) if decode is not None else None,
                t3 - t0,
                rows,
                None,
                None,
                idle,
                server,
            )
        return result, decoded
