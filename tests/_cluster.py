"""A private PostgreSQL cluster for tests that kill, freeze or restart the server (test support).

Never the shared server: each :class:`Cluster` is a fresh ``initdb`` in a temporary folder, on a
free port, removed by :meth:`Cluster.close`.

.. code-block:: python

    cluster = await Cluster.start(max_connections=50)   # initdb + pg_ctl start (in a thread)
    try:
        repo = Repo(cluster.url, server_settings={"application_name": "ae-r01"})
        ...
        for pid in await cluster.backend_pids("ae-r01"):
            await cluster.terminate(pid)                # pg_terminate_backend, from an admin session
        await cluster.restart("fast")                   # pg_ctl restart -m fast
        await cluster.signal(pid, signal.SIGSTOP)       # through the OS
    finally:
        await cluster.close()                           # stop -m immediate, remove the folder

``Cluster.start(...)`` on the class creates a cluster; ``await cluster.start()`` on an instance starts
a stopped one again. Blocking variants for synchronous fixtures: :meth:`Cluster.launch` and
:meth:`Cluster.destroy`.

Programs: the newest ``/usr/lib/postgresql/*/bin``, else ``initdb`` on ``PATH``, else the
``pgserver`` package's bundled ones. initdb and pg_ctl refuse to run as root, so as root they run
as the ``postgres`` user (``runuser -u postgres --``), which owns the folder. The server log always
goes to a file (``pg_ctl -l``): without it the postmaster would keep the caller's stdout pipe and
``subprocess.run(capture_output=True)`` would never return.

A cluster is also removed when the interpreter exits (``atexit``); one left behind by a killed process
is stopped and removed by the next :meth:`Cluster.start` (:func:`reap_orphans`).
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, overload

import anyio
import asyncpg

__all__ = ("ADMIN_APP", "Cluster", "ClusterError", "find_bindir", "pid_alive", "reap_orphans", "unavailable_reason")

Mode = Literal["smart", "fast", "immediate"]

#: application_name of the cluster's own admin sessions (never in :meth:`Cluster.backend_pids`)
ADMIN_APP = "asyncecto-cluster-admin"
_PROGRAM_TIMEOUT = 120.0  # seconds any one initdb/pg_ctl call may take
_SERVER_USER = "postgres"
_PREFIX = "ae-cluster-"
_OWNER = "owner.pid"  # the pid of the process that made the cluster (see reap_orphans)


class ClusterError(RuntimeError):
    """A server program failed; the message carries its output and the server log's tail."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when no PostgreSQL server programs exist."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    from asyncecto.embedded import bundled_bin

    bundled = bundled_bin()
    if bundled is not None:
        candidates.append(bundled)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _run_as() -> str | None:
    """The system user the server programs run as: None (ourselves), or ``postgres`` when we are root."""
    return _SERVER_USER if os.geteuid() == 0 else None


def unavailable_reason() -> str | None:
    """Why no private cluster can be started here (a sentence naming what to install), or None."""
    if find_bindir() is None:
        return (
            "no PostgreSQL server programs (initdb, pg_ctl) found: install them "
            '(apt-get install postgresql, or pip install "asyncecto[embedded]" for pgserver)'
        )
    user = _run_as()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no {user!r} system user to run initdb/pg_ctl as: useradd {user}"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing: install util-linux"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process of this pid exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> list[Path]:
    """Stop and remove the clusters whose owning process is gone (a run killed before its teardown);
    the folders removed. Clusters of live processes are left alone."""
    bindir = find_bindir()
    reaped: list[Path] = []
    for folder in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((folder / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # being created, or not made by this module
        if pid_alive(owner):
            continue
        if bindir is not None and (folder / "data" / "postmaster.pid").exists():
            Cluster(folder, 0, bindir, 0, {})._program(
                "pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "-w", "stop", check=False
            )
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class _Create(Protocol):
    def __call__(
        self, port: int | None = None, max_connections: int = 200, *, settings: Mapping[str, str] | None = None
    ) -> Awaitable[Cluster]: ...


class _StartBoth:
    """``Cluster.start(...)`` creates a cluster; ``cluster.start()`` starts a stopped one."""

    @overload
    def __get__(self, obj: None, owner: type[Cluster]) -> _Create: ...
    @overload
    def __get__(self, obj: Cluster, owner: type[Cluster]) -> Callable[[], Awaitable[None]]: ...
    def __get__(self, obj: Cluster | None, owner: type[Cluster]) -> Any:
        if obj is None:
            return owner._create
        return obj._start_again


class Cluster:
    """One private PostgreSQL: user ``postgres``, trust authentication, database ``postgres``.

    :ivar port: the TCP port on 127.0.0.1
    :ivar folder: the temporary folder (data directory ``data``, unix socket, log ``log``)
    """

    start = _StartBoth()

    def __init__(self, folder: Path, port: int, bindir: Path, max_connections: int, settings: Mapping[str, str]):
        self.folder = folder
        self.port = port
        self.bindir = bindir
        self.max_connections = max_connections
        self.settings = dict(settings)
        self.data = folder / "data"
        self.log = folder / "log"
        self.running = False

    # -- creation and removal ------------------------------------------------------------
    @classmethod
    def launch(
        cls, port: int | None = None, max_connections: int = 200, *, settings: Mapping[str, str] | None = None
    ) -> Cluster:
        """Blocking :meth:`start` (for synchronous fixtures): initdb a new cluster and start it."""
        reason = unavailable_reason()
        if reason is not None:
            raise ClusterError(reason)
        bindir = find_bindir()
        assert bindir is not None
        reap_orphans()
        folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (folder / _OWNER).write_text(str(os.getpid()))
        user = _run_as()
        if user is not None:
            shutil.chown(folder, user, user)
        cluster = cls(folder, port or _free_port(), bindir, max_connections, settings or {})
        try:
            cluster._program("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
            for attempt in range(3):
                try:
                    cluster._pg_ctl("start")
                    break
                except ClusterError:
                    if port is not None or attempt == 2:
                        raise
                    cluster.port = _free_port()  # someone took the port meanwhile
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        cluster.running = True
        atexit.register(cluster.destroy)  # an interrupted run still removes it (a killed one: reap_orphans)
        return cluster

    @classmethod
    async def _create(
        cls, port: int | None = None, max_connections: int = 200, *, settings: Mapping[str, str] | None = None
    ) -> Cluster:
        return await anyio.to_thread.run_sync(
            functools.partial(cls.launch, port, max_connections, settings=settings), abandon_on_cancel=False
        )

    def destroy(self) -> None:
        """Blocking :meth:`close`: stop at once (``-m immediate``) and remove the folder."""
        atexit.unregister(self.destroy)
        try:
            if self.data.exists():
                self._program("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        finally:
            self.running = False
            shutil.rmtree(self.folder, ignore_errors=True)

    async def close(self) -> None:
        """Stop at once (``-m immediate``) and remove the folder."""
        await self._thread(self.destroy)

    # -- server control --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``postgres://postgres@127.0.0.1:PORT/postgres``."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """The URL of ``database`` on this cluster."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    async def restart(self, mode: Mode = "fast") -> None:
        """``pg_ctl restart -m MODE``: waits until the server accepts connections again."""
        await self._thread(functools.partial(self._pg_ctl, "restart", "-m", mode))
        self.running = True

    async def stop(self, mode: Mode = "fast") -> None:
        """``pg_ctl stop -m MODE``: waits until the server is down."""
        await self._thread(functools.partial(self._program, "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"))
        self.running = False

    async def _start_again(self) -> None:
        await self._thread(functools.partial(self._pg_ctl, "start"))
        self.running = True

    async def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until a session can be opened (after a crash restart); the seconds it took."""
        began = time.monotonic()
        while True:
            try:
                conn = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                if time.monotonic() - began > timeout:
                    raise
                await anyio.sleep(0.05)
            else:
                await conn.close()
                return time.monotonic() - began

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- sessions ------------------------------------------------------------------------------
    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run ``sql`` in a short admin session (database ``postgres``); its rows."""
        conn = await self._connect()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def execute(self, sql: str, *args: Any) -> str:
        """Run ``sql`` in a short admin session; the command tag."""
        conn = await self._connect()
        try:
            return str(await conn.execute(sql, *args))
        finally:
            await conn.close()

    async def activity(self, app: str) -> list[dict[str, Any]]:
        """``pg_stat_activity`` rows (pid, state, query, wait_event_type, xact_start) of ``app``'s sessions."""
        rows = await self.fetch(
            "SELECT pid, state, query, wait_event_type, xact_start FROM pg_stat_activity "
            "WHERE application_name = $1 AND backend_type = 'client backend' ORDER BY pid",
            app,
        )
        return [dict(row) for row in rows]

    async def backend_pids(self, app: str) -> list[int]:
        """The server pids of the sessions whose application_name is ``app``."""
        return [row["pid"] for row in await self.activity(app)]

    async def terminate(self, pid: int) -> bool:
        """``pg_terminate_backend(pid)``: the session ends with "terminating connection due to administrator
        command"."""
        return bool((await self.fetch("SELECT pg_terminate_backend($1)", pid))[0][0])

    async def cancel(self, pid: int) -> bool:
        """``pg_cancel_backend(pid)``: the running statement fails with "canceling statement due to user request"."""
        return bool((await self.fetch("SELECT pg_cancel_backend($1)", pid))[0][0])

    async def signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` (``signal.SIGSTOP``, ``SIGCONT``, ``SIGKILL`` …) to a server process through the OS."""
        os.kill(pid, _signal.Signals(sig))

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            database="postgres",
            timeout=5,
            server_settings={"application_name": ADMIN_APP},
        )

    # -- programs --------------------------------------------------------------------------------
    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": str(self.max_connections),
            **self.settings,
        }
        return " ".join([f"-p {self.port}", f"-k {self.folder}", *(f"-c {k}={v}" for k, v in settings.items())])

    def _pg_ctl(self, action: str, *extra: str) -> None:
        """``pg_ctl start|restart`` with the log file and the options (both always given)."""
        self._program(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            self._options(),
            *extra,
            action,
        )

    def _program(self, name: str, *args: str, check: bool = True) -> None:
        command: Sequence[str] = [str(self.bindir / name), *args]
        user = _run_as()
        if user is not None:
            command = ["runuser", "-u", user, "--", *command]
        done = subprocess.run(
            command,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PROGRAM_TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            raise ClusterError(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}\n"
                f"server log:\n{self.log_tail()}"
            )

    @staticmethod
    async def _thread(fn: Callable[[], None]) -> None:
        await anyio.to_thread.run_sync(fn, abandon_on_cancel=False)

    def __repr__(self) -> str:
        return f"<Cluster 127.0.0.1:{self.port} {self.folder} {'running' if self.running else 'stopped'}>"
