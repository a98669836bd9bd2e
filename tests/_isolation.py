"""A database of its own for each test run and each pytest-xdist worker (test support).

The server (and the base name) come from ``$ASYNCECTO_TEST_URL``, else ``asyncecto_test`` on
127.0.0.1:5432, else the embedded server. Each process of a run creates ``<base>_<run>_<worker>``
(``<base>_<run>`` without workers), marks it with a comment naming its host and pid, and drops it at
the end, whatever the outcome. A database left by a run that was killed (its process is gone, or it
is a day old) is dropped by the next run on the same server; one somebody is connected to never is.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from pathlib import Path

import asyncpg

from asyncecto import embedded
from asyncecto.cli._project import maintenance_url
from asyncecto.repo import build_config

from ._cluster import pid_alive

__all__ = ("RUN", "WORKER", "base_url", "create_database", "drop_database", "sweep_stale", "token")

ROOT = Path(__file__).resolve().parent.parent

#: the run's id: shared by every worker of one pytest-xdist run, new for each run
RUN = (os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex)[:8]
#: this process's xdist worker (``gw0``, ``gw1``, …), or ``""`` in a run without workers
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

_MARK = "asyncecto test run"
_STALE_AFTER = 24 * 3600.0  # seconds: older than any run, wherever it ran
_MAX_NAME = 63  # bytes in a PostgreSQL identifier


def token() -> str:
    """``<run>`` or ``<run>_<worker>``: this process's part of the names it gives (databases, sessions)."""
    return f"{RUN}_{WORKER}" if WORKER else RUN


def base_url() -> str:
    """The server and base name: ``$ASYNCECTO_TEST_URL``, the local server, or the embedded one."""
    folder = ROOT / ".asyncecto" / "pgdata"
    return embedded.database_url("asyncecto_test", env="ASYNCECTO_TEST_URL", folder=folder)


def run_database_name(base: str) -> str:
    """``<base>_<token>``, the base cut so the whole fits PostgreSQL's 63 bytes."""
    suffix = "_" + token()
    room = _MAX_NAME - len(suffix.encode())
    cut = base.encode()[:room].decode(errors="ignore")
    return cut + suffix


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _maintenance(url: str) -> asyncpg.Connection:
    kwargs = build_config(url).dsn_kwargs()
    kwargs["database"] = "postgres"
    return await asyncpg.connect(**kwargs)


async def create_database(url: str) -> str:
    """Create this process's database on ``url``'s server (after sweeping stale ones); its URL."""
    config = build_config(url)
    name = run_database_name(config.database)
    conn = await _maintenance(url)
    try:
        await sweep_stale(conn, config.database)
        deadline = time.monotonic() + 30
        while True:
            try:
                await conn.execute(f"CREATE DATABASE {_quote(name)}")
                break
            except asyncpg.ObjectInUseError:  # somebody is connected to template1 right now
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        note = f"{_MARK}: host={socket.gethostname()} pid={os.getpid()} started={int(time.time())}"
        await conn.execute(f"COMMENT ON DATABASE {_quote(name)} IS {_literal(note)}")
    finally:
        await conn.close()
    return maintenance_url(config, name)


async def drop_database(url: str) -> None:
    """Drop ``url``'s database, ending any session still connected to it."""
    name = build_config(url).database
    conn = await _maintenance(url)
    try:
        if int(await conn.fetchval("SHOW server_version_num")) >= 130000:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
        else:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)}")
    finally:
        await conn.close()


def _stale(note: str, now: float) -> bool:
    found = dict(re.findall(r"(\w+)=(\S+)", note))
    try:
        pid, started = int(found["pid"]), float(found["started"])
    except (KeyError, ValueError):
        return False
    if now - started > _STALE_AFTER:
        return True
    return found.get("host") == socket.gethostname() and not pid_alive(pid)


async def sweep_stale(conn: asyncpg.Connection, base: str) -> list[str]:
    """Drop the databases of dead runs on ``base`` (never one with a session on it); their names."""
    rows = await conn.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database "
        "WHERE starts_with(datname, $1) AND shobj_description(oid, 'pg_database') LIKE $2",
        base + "_",
        _MARK + ":%",
    )
    now = time.time()
    dropped = []
    for row in rows:
        if not _stale(row["note"], now):
            continue
        try:
            await conn.execute(f"DROP DATABASE {_quote(row['datname'])}")  # fails while anyone is connected
        except (asyncpg.ObjectInUseError, asyncpg.InvalidCatalogNameError):
            continue
        dropped.append(row["datname"])
    return dropped
