"""Issue 16 (misc): MultiError through the web integrations, and connection errors that name host and fix."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fastapi import FastAPI

from asyncecto import Multi, Repo
from asyncecto.changeset import Changeset, cast, validate_length, validate_required
from asyncecto.errors import DatabaseUnavailableError
from asyncecto.integrations import aiohttp as aio
from asyncecto.integrations import starlette as star
from asyncecto.repo import build_config

from ..schemas import Weather

# -- defect 10: MultiError through FastAPI and aiohttp ------------------------------------


def weather_changeset(params: dict[str, Any]) -> Changeset[Weather]:
    return cast(Weather(), params, ["city", "temp_lo"]) | validate_required("city") | validate_length("city", min=2)


INVALID = {"city": "X", "temp_lo": "cold"}
INVALID_ERRORS = {"errors": {"city": ["should be at least 2 character(s)"], "temp_lo": ["is invalid"]}}


def multi_routes(repo: Repo) -> dict[str, Callable[[], Any]]:
    """Each route runs a Multi that fails in one way; the first two answer 422 through ``repo.insert`` too."""

    async def preflight() -> Any:  # an invalid changeset given as data: fails before BEGIN
        multi = (
            Multi.new() | Multi.insert("ok", Weather(city="Multi ok")) | Multi.insert("w", weather_changeset(INVALID))
        )
        return await repo.transaction(multi)

    async def in_transaction() -> Any:  # built from the changes so far: fails inside the transaction
        multi = (
            Multi.new()
            | Multi.insert("ok", Weather(city="Multi ok"))
            | Multi.insert("w", lambda changes: weather_changeset(INVALID))
        )
        return await repo.transaction(multi)

    async def missing() -> Any:
        return await repo.transaction(Multi.new() | Multi.run("w", lambda r, c: r.get_or_raise(Weather, 10**9)))

    async def stale() -> Any:
        ghost = await repo.insert(Weather(city="Ghost"))
        await repo.delete(ghost)
        return await repo.transaction(Multi.new() | Multi.delete("w", ghost))

    async def error_value() -> Any:  # Multi.error with a plain value: not the library's to map
        return await repo.transaction(Multi.new() | Multi.error("w", "out of stock"))

    async def rollback_value() -> Any:
        return await repo.transaction(Multi.new() | Multi.run("w", lambda r, c: r.rollback({"why": "no"})))

    async def other_exception() -> Any:  # an exception no mapping knows
        def boom(r: Repo, c: Any) -> Any:
            raise LookupError("not mapped")

        return await repo.transaction(Multi.new() | Multi.run("w", boom))

    return {
        "preflight": preflight,
        "in_transaction": in_transaction,
        "missing": missing,
        "stale": stale,
        "error_value": error_value,
        "rollback_value": rollback_value,
        "other_exception": other_exception,
    }


MULTI_EXPECTED: dict[str, tuple[int, Any]] = {
    "preflight": (422, INVALID_ERRORS),
    "in_transaction": (422, INVALID_ERRORS),
    "missing": (404, {"errors": {"detail": "Not Found"}}),
    "stale": (409, {"errors": {"detail": "Conflict"}}),
    "error_value": (500, None),
    "rollback_value": (500, None),
    "other_exception": (500, None),
}


async def test_defect_10_multi_error_is_mapped_by_fastapi_like_the_operations_error(repo: Repo) -> None:
    app = FastAPI(exception_handlers=star.exception_handlers)
    for name, fn in multi_routes(repo).items():
        app.add_api_route(f"/{name}", fn)

    async def insert_directly() -> Any:
        return await repo.insert(weather_changeset(INVALID))

    app.add_api_route("/direct", insert_directly)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        direct = await client.get("/direct")
        assert (direct.status_code, direct.json()) == (422, INVALID_ERRORS)
        for name, (status, body) in MULTI_EXPECTED.items():
            response = await client.get(f"/{name}")
            assert response.status_code == status, name
            if body is not None:
                assert response.json() == body, name
    assert await repo.all(Weather) == []  # every Multi rolled back


async def test_defect_10_multi_error_is_mapped_by_aiohttp_like_the_operations_error(repo: Repo) -> None:
    app = web.Application()
    aio.setup(app, repo)  # the repo runs already: the cleanup context leaves it alone

    def handler(fn: Callable[[], Any]) -> Callable[[web.Request], Any]:
        async def call(request: web.Request) -> web.Response:
            await fn()
            return web.json_response({})

        return call

    for name, fn in multi_routes(repo).items():
        app.router.add_get(f"/{name}", handler(fn))
    async with TestClient(TestServer(app)) as client:
        for name, (status, body) in MULTI_EXPECTED.items():
            response = await client.get(f"/{name}")
            assert response.status == status, name
            if body is not None:
                assert await response.json() == body, name
    assert await repo.all(Weather) == []


# -- defect 15: connection errors name host, port, database and the fix; never the password ----------

PASSWORD = "Pw-9f3Kq!x7Lm"  # distinctive: any appearance in a message is a leak


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_no_password(*texts: object) -> None:
    for text in texts:
        assert PASSWORD not in str(text), text


async def start_failure(url: str, caplog: pytest.LogCaptureFixture, **options: Any) -> DatabaseUnavailableError:
    repo = Repo(url, pool_size=1, **options)
    with caplog.at_level(logging.DEBUG, logger="asyncecto"), pytest.raises(DatabaseUnavailableError) as info:
        await repo.start()
    exc = info.value
    assert_no_password(exc, repr(exc), repr(repo), repr(repo.config), caplog.text, *exc.__dict__.values())
    assert "\n\nfix: " in str(exc) and exc.fix and str(exc).endswith(exc.fix)
    return exc


async def test_defect_15_connection_errors_name_host_and_fix_for_a_closed_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    exc = await start_failure(f"postgres://app:{PASSWORD}@127.0.0.1:{port}/shop", caplog)
    assert str(exc).startswith(
        f'cannot connect to PostgreSQL at 127.0.0.1:{port} (database "shop", user "app"): connection refused'
    )
    assert "check that the server is running" in str(exc) and f"-p {port}" in str(exc)
    assert (exc.host, exc.port, exc.database, exc.user) == ("127.0.0.1", port, "shop", "app")
    assert isinstance(exc.__cause__, OSError)


async def test_connection_errors_name_host_and_fix_for_an_unresolvable_host(caplog: pytest.LogCaptureFixture) -> None:
    exc = await start_failure(f"postgres://app:{PASSWORD}@nonexistent.invalid:5433/shop", caplog)
    assert str(exc).startswith(
        'cannot connect to PostgreSQL at nonexistent.invalid:5433 (database "shop", user "app"): '
        'the host name "nonexistent.invalid" could not be resolved'
    )
    assert "check the host name" in str(exc)
    assert isinstance(exc.__cause__, socket.gaierror)


async def test_connection_errors_name_host_and_fix_for_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the connection, then never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"postgres://app:{PASSWORD}@127.0.0.1:{port}/shop?sslmode=disable"
        exc = await start_failure(url, caplog, connect_timeout=0.5)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the client never reached the silent server"
    assert str(exc).startswith(
        f'cannot connect to PostgreSQL at 127.0.0.1:{port} (database "shop", user "app"): '
        "no answer within connect_timeout=0.5s"
    )
    assert "raise connect_timeout" in str(exc) and "()" not in str(exc)


async def test_defect_15_connection_errors_name_host_and_fix_for_a_missing_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = build_config(database_url)
    name = f"asyncecto_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{config.user or 'postgres'}:{PASSWORD}@{config.host}:{config.port}/{name}"
    if config.host.startswith("/"):
        url = f"postgres://{config.user or 'postgres'}:{PASSWORD}@/{name}?host={config.host}&port={config.port}"
    exc = await start_failure(url, caplog)
    assert f'database "{name}"' in str(exc) and f"{config.host}" in str(exc) and f"{config.port}" in str(exc)
    assert f'database "{name}" does not exist (SQLSTATE 3D000)' in str(exc)
    assert "run `asyncecto create`" in str(exc) and exc.sqlstate == "3D000" and exc.database == name


# -- a private server with password authentication --------------------------------------------------


def _pg(*args: str) -> None:
    """Run a server program; initdb and pg_ctl refuse to run as root, so as the postgres user then."""
    command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
    subprocess.run(command, check=True, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def password_server() -> Iterator[tuple[str, int]]:
    """A private PostgreSQL that asks for a password (scram-sha-256): user ``postgres``, :data:`PASSWORD`."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        pytest.skip("initdb/pg_ctl are not installed: cannot start a server with password authentication")
    folder = Path(tempfile.mkdtemp(prefix="asyncecto-pwsrv-"))
    (folder / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        for path in (folder, folder / "pw"):
            shutil.chown(path, "postgres", "postgres")
    data, port = str(folder / "data"), free_port()
    _pg("initdb", "-D", data, "-U", "postgres", "-A", "scram-sha-256", f"--pwfile={folder / 'pw'}")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=10"
    _pg("pg_ctl", "-D", data, "-l", str(folder / "log"), "-w", "-t", "120", "-o", options, "start")
    try:
        yield "127.0.0.1", port
    finally:
        _pg("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


async def test_connection_errors_name_user_and_fix_for_a_wrong_password(
    password_server: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    host, port = password_server
    async with Repo(f"postgres://postgres:{PASSWORD}@{host}:{port}/postgres", pool_size=1) as repo:
        assert (await repo.query("SELECT 1")).rows == [(1,)]  # the right password works

    exc = await start_failure(f"postgres://postgres:wrong-{PASSWORD[::-1]}@{host}:{port}/postgres", caplog)
    assert str(exc).startswith(
        f'cannot connect to PostgreSQL at {host}:{port} (database "postgres", user "postgres"): '
        'password authentication failed for user "postgres" (SQLSTATE 28P01)'
    )
    assert "check the user and password" in str(exc) and exc.sqlstate == "28P01"
    assert PASSWORD[::-1] not in str(exc) + repr(exc) + caplog.text

    no_password = await start_failure(f"postgres://postgres@{host}:{port}/postgres", caplog)
    assert "password" in str(no_password) and no_password.fix


async def test_connection_failures_in_the_log_never_show_the_password(
    password_server: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """The pool's upkeep reconnects after its connection dies; its failures are logged, never the password."""
    host, port = password_server
    url = f"postgres://postgres:{PASSWORD}@{host}:{port}/postgres"
    admin = await asyncpg.connect(host=host, port=port, user="postgres", password=PASSWORD, database="postgres")
    try:
        async with Repo(url, pool_size=1, min_size=1, log="debug") as repo:
            with caplog.at_level(logging.DEBUG, logger="asyncecto"):
                await repo.query("SELECT 1")  # a query log line
                await admin.execute("ALTER ROLE postgres PASSWORD 'changed-meanwhile'")
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
                for _ in range(100):  # the upkeep worker notices, fails to reconnect and logs it
                    await asyncio.sleep(0.1)
                    if "password authentication failed" in caplog.text:
                        break
            await admin.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
    finally:
        await admin.close()
    assert "password authentication failed" in caplog.text and "127.0.0.1" in caplog.text
    assert_no_password(caplog.text, *(r.getMessage() for r in caplog.records))


# -- the command ------------------------------------------------------------------------------------


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # this checkout's asyncecto
    return subprocess.run(
        [sys.executable, "-m", "asyncecto", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.no_sandbox
def test_defect_15_connection_errors_name_host_and_fix_in_the_command(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "20240101000000_t.py").write_text('def up():\n    return "CREATE TABLE t (id int)"\n')
    config = build_config(database_url)
    name = f"asyncecto_missing_{uuid.uuid4().hex[:8]}"
    where = f"{config.host}:{config.port}"
    if config.host.startswith("/"):
        url = f"postgres://{config.user or 'postgres'}:{PASSWORD}@/{name}?host={config.host}&port={config.port}"
        where = f"{config.host}/.s.PGSQL.{config.port}"
    else:
        url = f"postgres://{config.user or 'postgres'}:{PASSWORD}@{where}/{name}"
    missing = run_cli(tmp_path, "migrate", "--url", url)
    assert missing.returncode == 1, missing
    assert f'cannot connect to PostgreSQL at {where} (database "{name}"' in missing.stderr
    assert "does not exist" in missing.stderr and "run `asyncecto create`" in missing.stderr
    assert_no_password(missing.stdout, missing.stderr)

    port = free_port()
    closed = run_cli(tmp_path, "migrations", "--url", f"postgres://app:{PASSWORD}@127.0.0.1:{port}/{name}")
    assert closed.returncode == 1, closed
    assert f"127.0.0.1:{port}" in closed.stderr and "check that the server is running" in closed.stderr
    assert_no_password(closed.stdout, closed.stderr)

    bad_url = run_cli(tmp_path, "migrate", "--url", f"postgres://app:{PASSWORD}?x=1@127.0.0.1:{port}/{name}")
    assert bad_url.returncode == 2 and "percent-encode the password" in bad_url.stderr, bad_url
    assert_no_password(bad_url.stdout, bad_url.stderr)
