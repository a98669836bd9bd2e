"""A private PgBouncer in transaction mode, in front of a PostgreSQL server (test support).

Each :class:`Bouncer` is its own ``pgbouncer`` process on a free port, with its config, auth file,
log and socket in a temporary folder; :meth:`Bouncer.stop` kills it and removes the folder (also at
interpreter exit, ``atexit``). The shared server's systemd service is never touched.

.. code-block:: python

    bouncer = Bouncer.launch("127.0.0.1", 5432)      # pool_mode = transaction, auth_type = trust
    try:
        repo = Repo(bouncer.url("my_db"), pooler="transaction", direct_url="postgres://...:5432/my_db")
        ...
    finally:
        bouncer.stop()

A bouncer left behind by a killed run (its owner process gone) is killed and removed by the next
:meth:`Bouncer.launch` (:func:`reap_orphans`).

PgBouncer refuses to run as root, so as root it runs as the ``postgres`` user (``runuser -u postgres
--``), who owns the folder. Where the program is missing, :func:`unavailable_reason` says what to install.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ("PGBOUNCER", "Bouncer", "BouncerError", "reap_orphans", "unavailable_reason")

PGBOUNCER = "/usr/sbin/pgbouncer"
_RUN_AS = "postgres"
_START_TIMEOUT = 15.0
_PREFIX = "ae-pgbouncer-"
_OWNER = "owner.pid"


class BouncerError(RuntimeError):
    """PgBouncer did not start; the message carries its log."""


def _program() -> str | None:
    if os.path.isfile(PGBOUNCER) and os.access(PGBOUNCER, os.X_OK):
        return PGBOUNCER
    return shutil.which("pgbouncer")


def _run_as() -> str | None:
    return _RUN_AS if os.geteuid() == 0 else None


def unavailable_reason() -> str | None:
    """Why no PgBouncer can be started here (naming what to install), or None."""
    if _program() is None:
        return "PgBouncer is not installed: apt-get install pgbouncer (the tests start their own; no service needed)"
    user = _run_as()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"running as root and there is no {user!r} user to run pgbouncer as: useradd {user}"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing: install util-linux"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> list[Path]:
    """Kill and remove the bouncers whose owning process is gone; the folders removed."""
    reaped: list[Path] = []
    for folder in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((folder / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # being created, or not made by this module
        if _alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((folder / "pgbouncer.pid").read_text().strip()), signal.SIGTERM)
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder)
    return reaped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Bouncer:
    """One running PgBouncer (``pool_mode = transaction``) and its folder.

    :ivar port: where it listens (127.0.0.1)
    :ivar folder: its config, log and pid file
    """

    def __init__(self, folder: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.folder = folder
        self.port = port
        self.process = process

    @classmethod
    def launch(
        cls,
        server_host: str = "127.0.0.1",
        server_port: int = 5432,
        *,
        pool_size: int = 20,
        max_client_conn: int = 500,
        ignore: str = "extra_float_digits",
        users: Sequence[str] = ("postgres",),
        databases: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> Bouncer:
        """Start a bouncer in transaction mode in front of ``server_host:server_port`` (any database,
        any user: ``* = host=… port=…``, ``auth_type = trust``); returns once it accepts connections.
        ``ignore`` is ``ignore_startup_parameters``; ``users`` are the names it lets in (trust still
        needs them listed); ``databases`` replaces the ``[databases]`` section's lines and
        ``settings`` adds to (or overrides) the ``[pgbouncer]`` section."""
        program = _program()
        if program is None:
            raise BouncerError(unavailable_reason() or "pgbouncer not found")
        reap_orphans()
        folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (folder / _OWNER).write_text(str(os.getpid()))
        port = _free_port()
        (folder / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in users))
        section = {
            "pool_mode": "transaction",
            "default_pool_size": str(pool_size),
            "max_client_conn": str(max_client_conn),
            "ignore_startup_parameters": ignore,
            "server_reset_query": "",
            "server_check_delay": "0",
            "admin_users": "postgres",
            **(settings or {}),
            # where it listens and keeps its files is the test's
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(folder / "userlist.txt"),
            "logfile": str(folder / "pgbouncer.log"),
            "pidfile": str(folder / "pgbouncer.pid"),
        }
        lines = databases if databases is not None else f"* = host={server_host} port={server_port}"
        body = "".join(f"{key} = {value}\n" for key, value in section.items())
        (folder / "pgbouncer.ini").write_text(f"[databases]\n{lines}\n\n[pgbouncer]\n{body}")
        command = [program, str(folder / "pgbouncer.ini")]
        user = _run_as()
        if user is not None:
            shutil.chown(folder, user)
            for path in folder.iterdir():
                shutil.chown(path, user)
            command = ["runuser", "-u", user, "--", *command]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        bouncer = cls(folder, port, process)
        atexit.register(bouncer.stop)
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = bouncer.log()
                bouncer.stop()
                raise BouncerError(f"pgbouncer did not start on port {port}:\n{log}")
            time.sleep(0.05)
        return bouncer

    def url(self, database: str, user: str = "postgres") -> str:
        """A URL through the bouncer (no pooler option: the caller adds ``pooler=transaction``)."""
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        try:
            return (self.folder / "pgbouncer.log").read_text()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Kill the process (and runuser's child) and remove the folder; idempotent."""
        process = self.process
        if process.poll() is None:
            pid_file = self.folder / "pgbouncer.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)  # pgbouncer itself
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)
