"""The driver's own failures, provoked for real, as asyncecto errors (adapters/postgres/_errors.py).

Each test makes the driver fail the way it does in the field — a server that stops answering, a port
nobody listens on, a value the encoder refuses, a column type with no binary COPY encoder, a COPY
sink that breaks — and checks the error the caller gets, its cause, and that the repo works on.
"""

from __future__ import annotations

import socket
from pathlib import Path

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.errors import (
    ConnectionLostError,
    DatabaseError,
    DatabaseUnavailableError,
    StatementTimeoutError,
)

from .._proxy import PgProxy, upstream_of, url_through
from .._wait import eventually

pytestmark = pytest.mark.no_sandbox  # own repos, real connections


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_per_call_timeout_ends_the_wait_on_the_client(database_url: str) -> None:
    """A per-call ``timeout`` below the server's limit is the driver's own timer: asyncpg raises
    TimeoutError (and cancels the statement on the server); the caller gets StatementTimeoutError saying
    the client gave up, not the server's 57014."""
    async with Repo(database_url, pool_size=1, timeout=30) as repo:
        with pytest.raises(StatementTimeoutError) as info:
            await repo.query("SELECT pg_sleep(30)", timeout=0.2)
        err = info.value
        assert "timed out on the client" in str(err) and err.query == "SELECT pg_sleep(30)"
        assert isinstance(err, TimeoutError) and err.sqlstate is None
        assert isinstance(err.__cause__, TimeoutError)
        assert (await repo.query("SELECT 1")).rows == [(1,)]


async def test_a_silent_link_is_given_up_after_timeout_plus_cleanup_timeout(database_url: str) -> None:
    """When the link goes silent, the server cannot enforce ``timeout``: after ``timeout`` +
    ``cleanup_timeout`` the pool closes the connection, and says so (ConnectionLostError)."""
    async with PgProxy(upstream_of(database_url)) as proxy:
        repo = Repo(url_through(database_url, port=proxy.port), pool_size=1, timeout=0.2, cleanup_timeout=0.3)
        async with repo:
            assert (await repo.query("SELECT 1")).rows == [(1,)]
            proxy.blackhole()
            try:
                with pytest.raises(ConnectionLostError) as info:
                    await repo.query("SELECT 2")
            finally:
                proxy.pass_through()
            assert "no answer from the server within 0.5s" in str(info.value)
            await eventually(lambda: repo.pool_stats()["in_use"] == 0, "the silent connection given up")
            assert (await repo.query("SELECT 3")).rows == [(3,)]  # a fresh connection


async def test_a_refused_port_names_where_and_how_to_check(database_url: str) -> None:
    """An OSError (ECONNREFUSED) while connecting: DatabaseUnavailableError naming host and port."""
    port = _closed_port()
    url = url_through(database_url, port=port)
    with pytest.raises(DatabaseUnavailableError) as info:
        async with Repo(url, pool_size=1, connect_timeout=5):
            pass
    err = info.value
    assert f"127.0.0.1:{port}" in str(err) and "connection refused" in str(err)
    assert err.fix is not None and f"pg_isready -h 127.0.0.1 -p {port}" in err.fix
    assert isinstance(err.__cause__, OSError)


async def test_a_missing_socket_directory_says_no_server_socket(tmp_path: Path) -> None:
    """A unix-socket URL whose directory holds no server: FileNotFoundError, named as such."""
    url = f"postgres://postgres@/db?host={tmp_path}&port=5432"
    with pytest.raises(DatabaseUnavailableError) as info:
        async with Repo(url, pool_size=1):
            pass
    assert f"no server socket {tmp_path}/.s.PGSQL.5432" in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


async def test_every_address_of_a_name_refused_is_a_refusal(database_url: str) -> None:
    """``localhost`` may stand for several addresses (::1, 127.0.0.1); when each refuses, the driver
    raises one OSError for all of them: still "connection refused", with the port."""
    port = _closed_port()
    with pytest.raises(DatabaseUnavailableError) as info:
        async with Repo(f"postgres://postgres@localhost:{port}/db", pool_size=1):
            pass
    assert f"localhost:{port}" in str(info.value) and "connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


async def test_a_value_the_encoder_refuses_is_a_data_error_naming_the_parameter(database_url: str) -> None:
    """asyncpg's encoder raises DataError before anything is sent; the connection is untouched."""
    async with Repo(database_url, pool_size=1) as repo:
        with pytest.raises(DatabaseError) as info:
            await repo.query("SELECT $1::int", ["seven"])
        err = info.value
        assert str(err).startswith("invalid input for query argument $1: 'seven'")
        assert isinstance(err.__cause__, asyncpg.DataError)
        with pytest.raises(DatabaseError) as wide:
            await repo.query("SELECT $1::int", [2**40])
        assert wide.value.sqlstate == "22003" and "out of the range" in (wide.value.hint or "")
        assert (await repo.query("SELECT 1")).rows == [(1,)]
        assert repo.pool_stats()["terminated"] == 0


async def test_a_type_without_a_binary_copy_encoder_fails_the_copy_named(database_url: str) -> None:
    """asyncpg has no binary encoder for ``tsvector``: COPY … (FORMAT binary) fails in the driver with
    InternalClientError before a row is sent; the error names the type, nothing is written."""
    async with Repo(database_url, pool_size=1, cleanup_timeout=0.5) as repo:
        await repo.query("CREATE TABLE driver_docs (id serial, doc tsvector)")
        try:
            with pytest.raises(DatabaseError) as info:
                await repo.copy_from("driver_docs", [{"doc": "a fat cat"}])
            err = info.value
            assert "no binary format encoder for type tsvector" in str(err) and "INSERT" in str(err)
            assert not isinstance(err, ConnectionLostError)  # nothing was sent: the connection is fine
            assert isinstance(err.__cause__, asyncpg.InternalClientError)
            assert err.query is not None and err.query.startswith('COPY "driver_docs"')
            await eventually(lambda: repo.pool_stats()["in_use"] == 0, "the connection back in the pool")
            assert (await repo.query("SELECT count(*) FROM driver_docs")).rows == [(0,)]
        finally:
            await repo.query("DROP TABLE driver_docs")


async def test_a_copy_sink_failing_with_an_os_error_fails_the_copy_and_the_pool_recovers(database_url: str) -> None:
    """A ``copy_to`` output that raises an OSError (a broken pipe to a consumer that went away) is the
    output's error, not the connection's: the caller gets that very exception (not a lost connection),
    and the connection, interrupted mid-COPY, is not handed out again half-read."""
    pipe = BrokenPipeError(32, "Broken pipe")

    def broken_pipe(chunk: bytes) -> None:
        raise pipe

    async with Repo(database_url, pool_size=1, cleanup_timeout=0.5) as repo:
        with pytest.raises(BrokenPipeError) as info:
            await repo.copy_to("SELECT generate_series(1, 10)", output=broken_pipe)
        assert info.value is pipe
        await eventually(lambda: repo.pool_stats()["in_use"] == 0, "the connection given back")
        assert (await repo.query("SELECT 1")).rows == [(1,)]
