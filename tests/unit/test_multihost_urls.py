"""libpq multi-host URLs and ``target_session_attrs`` (issue 20, failover): parsing, the keyword forms,
masking, what the adapter gives asyncpg, the connect errors, FailoverError's retry, the failover event.

No database: the failover itself runs against real streaming replicas in
tests/integration/test_failover.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto.adapters import ConnectionSettings
from asyncecto.adapters.postgres import connect_kwargs
from asyncecto.adapters.postgres._errors import connect_error
from asyncecto.errors import (
    ArgumentError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseUnavailableError,
    FailoverError,
    InvalidURLError,
    SerializationError,
)
from asyncecto.repo import FailoverEvent
from asyncecto.repo._api_transactions import _with_retry
from asyncecto.repo._config import build_config, mask_url, parse_url
from asyncecto.repo._telemetry import Telemetry

SECRET = "s3cr3t-pw"
TARGETS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def url_error(url: str) -> InvalidURLError:
    with pytest.raises(InvalidURLError) as info:
        parse_url(url)
    return info.value


# --- the URL's netloc: host[:port],host[:port]… ------------------------------------------------------


def test_the_issue_example_parses() -> None:
    # before: "bad host: an IPv6 address must be in brackets"
    config = build_config("postgres://h1,h2/db")
    assert config.endpoints == (("h1", 5432), ("h2", 5432))
    assert (config.host, config.port) == ("h1", 5432)


@pytest.mark.parametrize(
    ("netloc", "expected"),
    [
        ("h1:5432,h2:5433", (("h1", 5432), ("h2", 5433))),
        ("h1,h2:5433", (("h1", 5432), ("h2", 5433))),
        ("h1:6000,h2", (("h1", 6000), ("h2", 5432))),
        ("h1:,h2:", (("h1", 5432), ("h2", 5432))),
        ("[::1]:5432,[fe80::1%25eth0]", (("::1", 5432), ("fe80::1%eth0", 5432))),
        ("10.0.0.1:1,[2001:db8::7]:6000,db.example", (("10.0.0.1", 1), ("2001:db8::7", 6000), ("db.example", 5432))),
        ("%2Ftmp,%2Fvar%2Frun%2Fpostgresql:5433", (("/tmp", 5432), ("/var/run/postgresql", 5433))),
        (",h2", (("localhost", 5432), ("h2", 5432))),  # an empty host is the default
    ],
)
def test_netloc_host_lists(netloc: str, expected: tuple[tuple[str, int], ...]) -> None:
    config = build_config(f"postgres://u:{SECRET}@{netloc}/db?target_session_attrs=read-write")
    assert config.endpoints == expected
    assert (config.host, config.port) == expected[0]
    assert config.target_session_attrs == "read-write"
    assert config.password == SECRET


def test_one_host_is_not_a_list() -> None:
    assert parse_url("postgres://h:6000/db") == {"host": "h", "port": 6000, "database": "db"}
    config = build_config("postgres://h:6000/db")
    assert config.endpoints == ()
    assert config.all_endpoints() == (("h", 6000),)


def test_the_port_option_is_the_default_port_of_each_listed_host() -> None:
    config = build_config("postgres://h1,h2:7000/db", port=6000)
    assert config.endpoints == (("h1", 6000), ("h2", 7000))


@pytest.mark.parametrize(
    ("netloc", "part", "needle"),
    [
        ("h1,::1", "host", "brackets"),
        ("h1,[::1", "host", "no ']'"),
        ("h1:5432,h2:0", "port", "1 to 65535"),
        ("h1:5432,h2:x", "port", "'x'"),
    ],
)
def test_bad_entries_in_a_list(netloc: str, part: str, needle: str) -> None:
    err = url_error(f"postgres://u:{SECRET}@{netloc}/db")
    assert err.part == part
    assert needle in err.reason
    assert SECRET not in str(err)


# --- the query's host= and port= (comma lists, as libpq) --------------------------------------------------


def test_query_host_and_port_lists_pair_up() -> None:
    config = build_config("postgres:///db?host=/run/a,/run/b&port=5432,5433")
    assert config.endpoints == (("/run/a", 5432), ("/run/b", 5433))


def test_one_query_port_serves_every_host() -> None:
    config = build_config("postgres:///db?host=h1,h2,h3&port=6000")
    assert config.endpoints == (("h1", 6000), ("h2", 6000), ("h3", 6000))


def test_query_hosts_replace_the_netloc_hosts_and_keep_its_port() -> None:
    # as libpq: a query option wins over the URL part, each whole
    config = build_config("postgres://ignored:6000/db?host=h1,h2")
    assert config.endpoints == (("h1", 6000), ("h2", 6000))


def test_query_ports_replace_the_netloc_ports() -> None:
    config = build_config("postgres://h1:1,h2:2/db?port=7,8")
    assert config.endpoints == (("h1", 7), ("h2", 8))


def test_empty_entries_of_a_query_port_list_are_the_default() -> None:
    assert build_config("postgres:///db?host=h1,h2&port=,5433").endpoints == (("h1", 5432), ("h2", 5433))


def test_query_host_list_takes_bare_and_bracketed_ipv6() -> None:
    config = build_config("postgres:///db?host=::1,[fe80::2]&port=1,2")
    assert config.endpoints == (("::1", 1), ("fe80::2", 2))


@pytest.mark.parametrize(
    ("url", "part", "needle"),
    [
        ("postgres://h1,h2,h3/db?port=1,2", "port", "could not match 2 port numbers to 3 hosts"),
        ("postgres://h/db?port=1,2", "port", "could not match 2 port numbers to 1 hosts"),
        ("postgres:///db?host=h1,,h3", "option 'host'", "non-empty host names"),
        ("postgres:///db?host=h1,h2&port=1,99999", "option 'port'", "from 1 to 65535"),
        ("postgres:///db?host=h1,h2&port=1,x", "option 'port'", "'1,x'"),
    ],
)
def test_bad_query_lists(url: str, part: str, needle: str) -> None:
    err = url_error(url)
    assert err.part == part
    assert needle in err.reason


# --- target_session_attrs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_libpq_target(target: str) -> None:
    assert parse_url(f"postgres://h1,h2/db?target_session_attrs={target}")["target_session_attrs"] == target
    assert build_config("postgres://h/db", target_session_attrs=target).target_session_attrs == target


def test_target_defaults_to_none() -> None:
    assert build_config("postgres://h1,h2/db").target_session_attrs is None


def test_keyword_target_accepts_python_spelling() -> None:
    assert build_config(database="db", target_session_attrs="Prefer_Standby").target_session_attrs == "prefer-standby"


def test_unknown_target_in_the_url_lists_the_known_ones() -> None:
    err = url_error("postgres://h1,h2/db?target_session_attrs=master")
    assert err.part == "option 'target_session_attrs'"
    assert "got 'master'" in err.reason
    for target in TARGETS:
        assert target in err.reason


@pytest.mark.parametrize("value", ["master", 1, True, ""])
def test_bad_keyword_target(value: Any) -> None:
    with pytest.raises(ArgumentError, match="target_session_attrs must be None or one of any, read-write") as info:
        build_config(database="db", target_session_attrs=value)
    assert "target_session_attrs='read-write'" in str(info.value)  # the fix


# --- the endpoints= keyword (Postgrex's :endpoints) -----------------------------------------------------------


def test_keyword_endpoints_in_every_form() -> None:
    config = build_config(database="db", endpoints=[("a", 1), "b", "c:3", "[::1]:4", "/run/pg"], port=6000)
    assert config.endpoints == (("a", 1), ("b", 6000), ("c", 3), ("::1", 4), ("/run/pg", 6000))
    assert (config.host, config.port) == ("a", 1)


def test_one_keyword_endpoint_is_host_and_port() -> None:
    config = build_config(database="db", endpoints=["db.example:6543"])
    assert (config.host, config.port, config.endpoints) == ("db.example", 6543, ())


@pytest.mark.parametrize(
    "value",
    ["h1,h2", [("h", 0)], [("h", "5432")], [("", 1)], [("h",)], ["::1"], ["h:x"], [42], [("h", True)]],
)
def test_bad_keyword_endpoints(value: Any) -> None:
    with pytest.raises(ArgumentError, match="endpoints must be a list of") as info:
        build_config(database="db", endpoints=value)
    assert "endpoints=[('db1.example', 5432), ('db2.example', 5433)]" in str(info.value)


def test_no_endpoints_is_host_and_port() -> None:
    # a config's own fields passed back as options (the CLI does) include endpoints=()
    config = build_config(database="db", host="h", port=6000, endpoints=())
    assert (config.host, config.port, config.endpoints) == ("h", 6000, ())


def test_the_url_host_wins_over_keyword_endpoints() -> None:
    config = build_config("postgres://url_host/db", endpoints=["a", "b"])
    assert (config.host, config.endpoints) == ("url_host", ())
    listed = build_config("postgres://x1,x2/db", endpoints=["a", "b"])
    assert listed.endpoints == (("x1", 5432), ("x2", 5432))


def test_keyword_endpoints_serve_a_url_without_host() -> None:
    assert build_config("postgres:///db", endpoints=["a", "b"]).endpoints == (("a", 5432), ("b", 5432))


def test_a_nul_in_an_endpoint_host_is_refused() -> None:
    with pytest.raises(ArgumentError, match="endpoints host"):
        build_config(database="db", endpoints=["a", "b\x00"])


# --- masking -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://u:{SECRET}@h1:5432,h2:5433/db?target_session_attrs=read-write",
        f"postgres://u:{SECRET}@[::1]:5432,[::2]/db",
        f"postgres://u@h1,h2/db?password={SECRET}&target_session_attrs=primary",
        f"postgres:///db?host=/a,/b&password={SECRET}&port=1,2",
    ],
)
def test_mask_url_hides_the_password_of_multi_host_urls(url: str) -> None:
    masked = mask_url(url)
    assert SECRET not in masked
    assert "***" in masked
    config = build_config(url)
    assert SECRET not in config.masked_url()
    assert SECRET not in repr(config)


def test_masked_url_names_every_endpoint_and_parses_back() -> None:
    config = build_config(f"postgres://u:{SECRET}@h1:5432,[::1]:5433/db?target_session_attrs=read-write")
    assert config.masked_url() == "postgres://u:***@h1:5432,[::1]:5433/db?target_session_attrs=read-write"
    again = build_config(config.masked_url())
    assert (again.endpoints, again.target_session_attrs) == (config.endpoints, "read-write")


def test_masked_url_of_socket_lists_uses_query_options() -> None:
    config = build_config("postgres:///db?host=/a,/b&port=1,2")
    assert config.masked_url() == "postgres:///db?host=/a,/b&port=1,2"
    assert build_config(config.masked_url()).endpoints == config.endpoints


def test_masked_url_of_one_host_is_unchanged() -> None:
    assert build_config("postgres://h:6000/db").masked_url() == "postgres://h:6000/db"
    assert build_config("postgres:///db?host=/run").masked_url() == "postgres://:5432/db?host=/run"


_hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True),
    st.ip_addresses().map(str),
)


@settings(database=None, max_examples=100)
@given(st.lists(st.tuples(_hosts, st.integers(1, 65535)), min_size=2, max_size=4), st.sampled_from(TARGETS))
def test_endpoints_round_trip_through_the_masked_url(endpoints: list[tuple[str, int]], target: str) -> None:
    config = build_config(database="db", endpoints=endpoints, target_session_attrs=target, password=SECRET)
    again = build_config(config.masked_url())
    assert again.endpoints == tuple(endpoints)
    assert again.target_session_attrs == target


# --- what asyncpg is given -------------------------------------------------------------------------------------


def test_connect_kwargs_pass_the_lists_and_the_target() -> None:
    settings_ = build_config("postgres://h1:1,h2:2/db?target_session_attrs=read-write").connection_settings()
    kwargs = connect_kwargs(settings_)
    assert (kwargs["host"], kwargs["port"]) == (["h1", "h2"], [1, 2])
    assert kwargs["target_session_attrs"] == "read-write"


def test_connect_kwargs_of_one_host_are_unchanged() -> None:
    kwargs = connect_kwargs(build_config("postgres://h:6000/db").connection_settings())
    assert (kwargs["host"], kwargs["port"]) == ("h", 6000)
    assert "target_session_attrs" not in kwargs


# --- connect errors --------------------------------------------------------------------------------------------


def _settings(**fields: Any) -> ConnectionSettings:
    return build_config(database="app", user="me", password=SECRET, **fields).connection_settings()


def test_no_host_of_the_wanted_kind() -> None:
    settings_ = _settings(endpoints=["h1:5432", "[::1]:5433"], target_session_attrs="read-write")
    exc = asyncpg.exceptions.TargetServerAttributeNotMatched("None of the hosts match")
    err = connect_error(exc, settings_, "app")
    assert isinstance(err, DatabaseUnavailableError)
    text = str(err)
    assert "cannot connect to PostgreSQL at any of h1:5432, [::1]:5433" in text
    assert "target_session_attrs=read-write" in text
    assert "accepts writes" in text  # what read-write wants
    assert "fix: during a failover, wait for the standby's promotion" in text
    assert "retry=3" in text
    assert SECRET not in text
    assert (err.host, err.port, err.database, err.user) == ("h1", 5432, "app", "me")


def test_every_host_refused() -> None:
    settings_ = _settings(endpoints=["h1:5432", "h2:5433"], target_session_attrs="primary")
    err = connect_error(ConnectionRefusedError(111, "Connect call failed ('10.0.0.2', 5433)"), settings_, "app")
    text = str(err)
    assert "at any of h1:5432, h2:5433" in text
    assert "the last one tried failed: connection refused" in text
    assert "a primary (not in recovery)" in text
    assert "pg_isready" in text


def test_a_server_refusal_keeps_its_sqlstate_and_fix() -> None:
    settings_ = _settings(endpoints=["h1", "h2"])
    exc = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    err = connect_error(exc, settings_, "app")
    assert isinstance(err, DatabaseUnavailableError)
    assert err.sqlstate == "53300"  # the pool waits on it as on one server's refusal
    assert err.fix is not None and "max_connections" in err.fix


def test_one_host_with_a_target_names_the_target() -> None:
    exc = asyncpg.exceptions.TargetServerAttributeNotMatched("None of the hosts match")
    err = connect_error(exc, _settings(target_session_attrs="standby"), "app")
    assert "at any of localhost:5432" in str(err)
    assert "a standby (in recovery)" in str(err)


# --- FailoverError and retries ---------------------------------------------------------------------------------


def test_failover_error_is_a_lost_connection_with_the_server_and_a_fix() -> None:
    err = FailoverError("the server h1:5432 stopped being the primary", server="h1:5432", sqlstate="25006", fix="x")
    assert isinstance(err, ConnectionLostError)
    assert not isinstance(err, CommitOutcomeUnknownError)
    assert err.server == "h1:5432"
    assert "(SQLSTATE 25006)" in str(err)


async def test_transaction_retry_reruns_on_failover_but_not_on_an_unknown_commit() -> None:
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise FailoverError("the server h1:5432 stopped being the primary", server="h1:5432")
        return "done"

    assert await _with_retry(flaky, 3) == "done"
    assert len(calls) == 3

    async def unknown() -> None:
        calls.append(1)
        raise CommitOutcomeUnknownError("lost during COMMIT")

    calls.clear()
    with pytest.raises(CommitOutcomeUnknownError):
        await _with_retry(unknown, 3)
    assert len(calls) == 1  # never retried: it may have committed

    async def conflict() -> None:
        raise SerializationError("could not serialize")

    with pytest.raises(SerializationError):
        await _with_retry(conflict, 1)  # the old retryable errors still are


# --- the failover event ---------------------------------------------------------------------------------------


async def test_failover_handlers_get_failover_events_only() -> None:
    telemetry = Telemetry("repo", False)
    moves: list[FailoverEvent] = []
    queries: list[object] = []
    telemetry.attach(queries.append, name="queries")
    name = telemetry.attach(moves.append, name="moves", event="failover")
    event = FailoverEvent(repo="repo", old_server="h1:5432", new_server="h2:5433", reason="new_primary", drained=3)
    telemetry.emit_failover(event)
    await telemetry.flush()
    assert moves == [event]
    assert queries == []  # a query handler never sees another kind of event
    assert telemetry.detach(name) is True
    telemetry.emit_failover(event)
    await telemetry.flush()
    assert moves == [event]


async def test_a_failing_failover_handler_is_detached(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry("repo", False)

    async def broken(event: FailoverEvent) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    telemetry.attach(broken, name="broken", event="failover")
    telemetry.emit_failover(FailoverEvent(repo="r", old_server="a:1", new_server="b:2", reason="read_only", drained=0))
    await telemetry.flush()
    assert "telemetry handler 'broken' failed and was detached" in caplog.text
    assert telemetry.detach("broken") is False


def test_unknown_event_kind() -> None:
    with pytest.raises(ArgumentError, match="unknown event 'failovers'; use 'query' or 'failover'"):
        Telemetry("repo", False).attach(print, event="failovers")


# --- the server's last words, when a shutdown's FATAL shares a read with the statement before ------------------


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


_FATAL_57P01 = _message(
    b"E", b"SFATAL\x00VFATAL\x00C57P01\x00Mterminating connection due to administrator command\x00\x00"
)


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def data_received(self, data: bytes) -> None:
        self.data += data


@pytest.mark.parametrize(
    "chunk",
    [
        _FATAL_57P01,
        _message(b"C", b"SELECT 1\x00") + _message(b"Z", b"I") + _FATAL_57P01,  # after a statement's end
        b"\x00\x00\x01" + _FATAL_57P01,  # the read began inside a message: found from the severity
    ],
)
def test_the_tap_keeps_a_fatal_wherever_it_is_in_the_read(chunk: bytes) -> None:
    from asyncecto.adapters.postgres._tap import Tap

    sink = _Sink()
    tap = Tap(sink)
    tap.data_received(chunk)
    assert tap.last_words == ("57P01", "terminating connection due to administrator command")
    assert sink.data == chunk  # every byte handed on unchanged


def test_the_tap_ignores_errors_that_are_not_fatal() -> None:
    from asyncecto.adapters.postgres._tap import Tap

    tap = Tap(_Sink())
    tap.data_received(_message(b"E", b"SERROR\x00VERROR\x00C23505\x00Mduplicate key\x00\x00"))
    tap.data_received(_message(b"D", b"\x00\x01\x00\x00\x00\x07VFATAL\x00"))  # a row holding the bytes
    assert tap.last_words is None


# --- the command line's libpq programs (pg_dump, psql) and maintenance URLs ---------------------------------------


def test_client_programs_get_libpq_host_lists_and_the_target() -> None:
    from asyncecto.cli._structure import client_env

    env = client_env(build_config("postgres://u@h1:1,[::1]:2/db?target_session_attrs=read-write"))
    assert (env["PGHOST"], env["PGPORT"], env["PGTARGETSESSIONATTRS"]) == ("h1,::1", "1,2", "read-write")
    one = client_env(build_config("postgres://u@h1/db"))
    assert (one["PGHOST"], one["PGPORT"]) == ("h1", "5432")


def test_maintenance_url_keeps_every_host_and_the_password() -> None:
    from asyncecto.cli._project import maintenance_url

    config = build_config(f"postgres://u:{SECRET}%40x@h1:1,h2:2/db?target_session_attrs=primary")
    url = maintenance_url(config, "postgres")
    assert url == f"postgres://u:{SECRET}%40x@h1:1,h2:2/postgres?target_session_attrs=primary"
    again = build_config(url)
    assert (again.endpoints, again.password, again.database) == (config.endpoints, f"{SECRET}@x", "postgres")


# --- with read replicas: a replica URL names its own servers -------------------------------------------------


def test_a_replica_does_not_inherit_the_primarys_host_list_or_target() -> None:
    # _replica_config skips "endpoints" and "target_session_attrs": else a replica of a read-write
    # multi-host primary would ask its standby for read-write and never connect
    from asyncecto.repo import _routing as routing

    primary = build_config("postgres://u@p1,p2/db?target_session_attrs=read-write", replicas=["postgres://u@r1/db"])
    replica = routing._replica_config(primary, "postgres://u@r1/db")
    assert (replica.host, replica.endpoints, replica.target_session_attrs) == ("r1", (), None)
    listed = routing._replica_config(primary, "postgres://u@r1,r2/db?target_session_attrs=standby")
    assert (listed.endpoints, listed.target_session_attrs) == ((("r1", 5432), ("r2", 5432)), "standby")
