"""Tests for asyncecto.repo._config: URL parsing, option validation and RepoConfig."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto.errors import ArgumentError, InvalidURLError
from asyncecto.repo._config import RepoConfig, build_config, mask_url, parse_url

SECRET = "s3cr3t-pw"


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def url_error(url: str) -> InvalidURLError:
    with pytest.raises(InvalidURLError) as info:
        parse_url(url)
    return info.value


def config_error(url: str | None = None, **options: Any) -> ArgumentError:
    with pytest.raises(ArgumentError) as info:
        build_config(url, **options)
    return info.value


# --- schemes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "ecto", "POSTGRES"])
def test_supported_schemes(scheme: str) -> None:
    assert parse_url(f"{scheme}://u:pw@db.example.com:6543/app") == {
        "user": "u",
        "password": "pw",
        "host": "db.example.com",
        "port": 6543,
        "database": "app",
    }


def test_unsupported_scheme() -> None:
    err = url_error(f"mysql://u:{SECRET}@h/db")
    assert err.part == "scheme"
    assert "unsupported scheme 'mysql'" in err.reason
    assert "postgres://" in err.reason
    assert err.url == "mysql://u:***@h/db"


def test_missing_scheme() -> None:
    err = url_error(f"u:{SECRET}@localhost/db")
    assert err.part == "scheme"
    assert "missing scheme" in err.reason
    assert SECRET not in str(err)


def test_url_must_be_a_string() -> None:
    with pytest.raises(ArgumentError, match="expected a string, got bytes"):
        parse_url(b"postgres://h/db")  # type: ignore[arg-type]


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_url("  postgres://h/db\n") == {"host": "h", "database": "db"}


# --- user and password -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("netloc", "user", "password"),
    [
        ("u:p%40ss%3Aw@h", "u", "p@ss:w"),  # percent-encoded "@" and ":"
        ("u:pa:ss@h", "u", "pa:ss"),  # raw ":" in the password: split at the first ":"
        ("u:p@ss@h", "u", "p@ss"),  # raw "@" in the password: userinfo ends at the last "@"
        ("u:a/b#c@h", "u", "a/b#c"),  # raw "/" and "#"
        ("u:p?ss@h", "u", "p?ss"),  # raw "?"
        ("us%40er:pw@h", "us@er", "pw"),  # percent-encoded user
        ("u%3Ax:pw@h", "u:x", "pw"),  # encoded ":" in the user stays in the user
        ("u:%20@h", "u", " "),
    ],
)
def test_userinfo(netloc: str, user: str, password: str) -> None:
    parsed = parse_url(f"postgres://{netloc}/db")
    assert (parsed["user"], parsed["password"], parsed["host"]) == (user, password, "h")


def test_empty_password_is_not_set() -> None:
    assert parse_url("postgres://u:@h/db") == {"user": "u", "host": "h", "database": "db"}
    assert build_config("postgres://u:@h/db").password is None


def test_user_without_password() -> None:
    assert parse_url("postgres://u@h/db") == {"user": "u", "host": "h", "database": "db"}


def test_no_userinfo() -> None:
    assert parse_url("postgres://h/db") == {"host": "h", "database": "db"}
    config = build_config("postgres://h/db")
    assert (config.user, config.password) == (None, None)


def test_empty_user_with_password() -> None:
    assert parse_url("postgres://:pw@h/db") == {"password": "pw", "host": "h", "database": "db"}


@settings(database=None, max_examples=200)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1))
def test_percent_encoded_password_round_trips(password: str) -> None:
    parsed = parse_url(f"postgres://user:{quote(password, safe='')}@localhost:5432/db")
    assert parsed["password"] == password
    assert parsed["user"] == "user"
    assert parsed["host"] == "localhost"


# --- host and port -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("netloc", "host", "port"),
    [
        ("[::1]:5433", "::1", 5433),
        ("[::1]", "::1", None),
        ("u:pw@[2001:db8::7]:6000", "2001:db8::7", 6000),
        ("[fe80::1%25eth0]:5432", "fe80::1%eth0", 5432),
        ("127.0.0.1:1", "127.0.0.1", 1),
        ("h:65535", "h", 65535),
        ("h:", "h", None),  # empty port: default
        ("%2Fvar%2Frun%2Fpostgresql", "/var/run/postgresql", None),  # encoded socket directory
    ],
)
def test_host_and_port(netloc: str, host: str, port: int | None) -> None:
    parsed = parse_url(f"postgres://{netloc}/db")
    assert parsed["host"] == host
    assert parsed.get("port") == port


def test_port_defaults_to_5432() -> None:
    assert "port" not in parse_url("postgres://h/db")
    assert build_config("postgres://h/db").port == 5432
    assert build_config("postgres://h/db", port=6000).port == 6000


@pytest.mark.parametrize("port", ["0", "65536", "99999", "abc", "+5", "5_4", "-1", "5432x", "\u0665"])
def test_bad_port(port: str) -> None:
    err = url_error(f"postgres://u:{SECRET}@h:{port}/db")
    assert err.part == "port"
    assert repr(port) in err.reason
    assert "1 to 65535" in err.reason
    assert SECRET not in str(err)


@pytest.mark.parametrize(
    ("netloc", "needle"),
    [
        ("::1", "brackets"),
        ("[::1:5432", "no ']'"),
        ("[]:5432", "no address"),
        ("[::1]x", "after the IPv6 address"),
    ],
)
def test_bad_host(netloc: str, needle: str) -> None:
    err = url_error(f"postgres://{netloc}/db")
    assert err.part == "host"
    assert needle in err.reason


def test_empty_host_with_socket_in_query() -> None:
    assert parse_url("postgres://u@/db?host=/var/run/postgresql") == {
        "user": "u",
        "host": "/var/run/postgresql",
        "database": "db",
    }


def test_empty_host_is_not_set() -> None:
    assert parse_url("postgres:///db") == {"database": "db"}
    assert build_config("postgres:///db").host == "localhost"


# --- database ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["postgres://h", "postgres://h/", "postgres://h?pool_size=2", "postgres://h/?x=1", "postgres://"]
)
def test_missing_database(url: str) -> None:
    err = url_error(url)
    assert err.part == "database"
    assert "must name the database" in err.reason
    assert "postgres://localhost/my_db" in err.reason


def test_database_with_raw_slash_is_rejected() -> None:
    err = url_error("postgres://h/a/b")
    assert err.part == "database"
    assert "'a/b'" in err.reason
    assert "%2F" in err.reason


def test_database_is_percent_decoded() -> None:
    assert parse_url("postgres://h/my%20db%2Fx")["database"] == "my db/x"


# --- query options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("pool_size=20", {"pool_size": 20}),
        ("min_size=0", {"min_size": 0}),
        ("pool_timeout=2.5", {"pool_timeout": 2.5}),
        ("pool_timeout=3", {"pool_timeout": 3.0}),
        ("timeout=30", {"timeout": 30.0}),
        ("timeout=.5", {"timeout": 0.5}),
        ("timeout=infinity", {"timeout": None}),
        ("timeout=Infinity", {"timeout": None}),
        ("connect_timeout=1.5", {"connect_timeout": 1.5}),
        ("shutdown_timeout=60", {"shutdown_timeout": 60.0}),
        ("cleanup_timeout=0.5", {"cleanup_timeout": 0.5}),
        ("max_idle_time=0", {"max_idle_time": 0.0}),
        ("max_idle_time=120.", {"max_idle_time": 120.0}),
        ("statement_cache_size=0", {"statement_cache_size": 0}),
        ("ssl=true", {"ssl": True}),
        ("ssl=TRUE", {"ssl": True}),
        ("ssl=1", {"ssl": True}),
        ("ssl=false", {"ssl": False}),
        ("ssl=0", {"ssl": False}),
        ("prefix=tenant_1", {"prefix": "tenant_1"}),
        ("log=false", {"log": False}),
        ("log=INFO", {"log": "info"}),
        ("log=warning", {"log": "warning"}),
        ("application_name=my%20app", {"server_settings": {"application_name": "my app"}}),
        ("application_name=", {"server_settings": {"application_name": ""}}),
        ("host=/tmp/sockets", {"host": "/tmp/sockets"}),
        ("port=6000", {"port": 6000}),
        ("user=alice", {"user": "alice"}),
        ("password=p%40ss%26word", {"password": "p@ss&word"}),
        ("user=&password=", {}),  # blank: not set
        ("pool_size=3&min_size=2&log=error", {"pool_size": 3, "min_size": 2, "log": "error"}),
    ],
)
def test_query_option(query: str, expected: dict[str, Any]) -> None:
    parsed = parse_url(f"postgres://h/db?{query}")
    assert parsed == {"host": "h", "database": "db", **expected}


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])
def test_sslmode(mode: str) -> None:
    assert parse_url(f"postgres://h/db?sslmode={mode}")["ssl"] == mode
    assert parse_url(f"postgres://h/db?sslmode={mode.upper()}")["ssl"] == mode
    assert build_config(f"postgres://h/db?sslmode={mode}").ssl == mode


def test_ssl_and_sslmode_conflict() -> None:
    err = url_error("postgres://h/db?ssl=true&sslmode=require")
    assert err.part == "option 'sslmode'"
    assert "conflicts with option 'ssl'" in err.reason


def test_ssl_mode_in_ssl_option_points_to_sslmode() -> None:
    err = url_error("postgres://h/db?ssl=require")
    assert err.part == "option 'ssl'"
    assert "'require'" in err.reason
    assert "sslmode=" in err.reason


def test_application_name_goes_to_server_settings() -> None:
    config = build_config("postgres://h/db?application_name=worker")
    assert config.server_settings == {"application_name": "worker"}
    assert config.dsn_kwargs()["server_settings"] == {"application_name": "worker"}


def test_unknown_query_option() -> None:
    err = url_error(f"postgres://u:{SECRET}@h/db?poolsize=3")
    assert err.part == "option 'poolsize'"
    assert "unknown option" in err.reason
    assert "pool_size" in err.reason
    assert "statement_cache_size" in err.reason
    assert SECRET not in str(err)


def test_duplicate_query_option() -> None:
    err = url_error("postgres://h/db?pool_size=3&pool_size=4")
    assert err.part == "option 'pool_size'"
    assert "more than once" in err.reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pool_size", "0"),
        ("pool_size", "ten"),
        ("pool_size", "1.5"),
        ("pool_size", ""),
        ("pool_size", "-3"),
        ("pool_size", "9" * 5000),  # too long for int(): still a clean error
        ("min_size", "-1"),
        ("min_size", "x"),
        ("statement_cache_size", "-1"),
        ("statement_cache_size", "big"),
        ("pool_timeout", "0"),
        ("pool_timeout", "soon"),
        ("pool_timeout", "nan"),
        ("pool_timeout", "inf"),
        ("pool_timeout", "1e3"),
        ("timeout", "0"),
        ("timeout", "-5"),
        ("timeout", "forever"),
        ("connect_timeout", "0.0"),
        ("shutdown_timeout", "never"),
        ("cleanup_timeout", "0"),
        ("max_idle_time", "-1"),
        ("max_idle_time", "infinity"),
        ("ssl", "yes"),
        ("sslmode", "sometimes"),
        ("log", "verbose"),
        ("log", "true"),
        ("log", ""),
        ("prefix", ""),
        ("host", ""),
        ("port", "0"),
        ("port", "http"),
    ],
)
def test_bad_query_value(name: str, value: str) -> None:
    err = url_error(f"postgres://u:{SECRET}@h/db?{name}={value}")
    assert err.part == f"option {name!r}"
    assert f"got {value!r}" in err.reason
    assert "expected" in err.reason
    assert SECRET not in str(err)
    assert err.url == f"postgres://u:***@h/db?{name}={value}"


def test_bad_query_value_names_what_is_expected() -> None:
    assert "or 'infinity'" in url_error("postgres://h/db?timeout=x").reason
    assert "verify-full" in url_error("postgres://h/db?sslmode=x").reason
    assert "critical" in url_error("postgres://h/db?log=x").reason
    assert ">= 1" in url_error("postgres://h/db?pool_size=0").reason


# --- precedence --------------------------------------------------------------------------------


def test_url_parts_beat_keyword_options() -> None:
    config = build_config(
        "postgres://url_user:url_pw@url_host:6000/url_db",
        user="kw_user",
        password="kw_pw",
        host="kw_host",
        port=7000,
        database="kw_db",
    )
    assert (config.user, config.password, config.host, config.port, config.database) == (
        "url_user",
        "url_pw",
        "url_host",
        6000,
        "url_db",
    )


def test_query_options_beat_keyword_options() -> None:
    config = build_config(
        "postgres://h/db?pool_size=3&timeout=infinity&sslmode=require&log=false&prefix=q",
        pool_size=20,
        timeout=1.0,
        ssl=False,
        log="info",
        prefix="kw",
    )
    assert (config.pool_size, config.timeout, config.ssl, config.log, config.prefix) == (
        3,
        None,
        "require",
        False,
        "q",
    )


def test_keyword_options_fill_what_the_url_lacks() -> None:
    config = build_config("postgres://h/db", user="kw_user", password="kw_pw", port=7000, pool_size=4, prefix="p")
    assert (config.user, config.password, config.port, config.pool_size, config.prefix) == (
        "kw_user",
        "kw_pw",
        7000,
        4,
        "p",
    )
    assert config.host == "h"
    assert config.database == "db"


def test_empty_url_password_keeps_keyword_password() -> None:
    assert build_config("postgres://u:@h/db", password="kw_pw").password == "kw_pw"


def test_query_connection_parts_beat_netloc() -> None:
    parsed = parse_url("postgres://a:pw1@netloc_host:1/db?host=/sock&port=2&user=b&password=pw2")
    assert (parsed["host"], parsed["port"], parsed["user"], parsed["password"]) == ("/sock", 2, "b", "pw2")


def test_server_settings_merge_url_wins_per_key() -> None:
    config = build_config(
        "postgres://h/db?application_name=from_url",
        server_settings={"application_name": "from_kw", "search_path": "app"},
    )
    assert config.server_settings == {"application_name": "from_url", "search_path": "app"}


# --- DATABASE_URL and keyword-only configs ------------------------------------------------------


def test_database_url_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://env_user:env_pw@env_host:6001/env_db?pool_size=2")
    config = build_config(min_size=2)
    assert (config.user, config.password, config.host, config.port, config.database) == (
        "env_user",
        "env_pw",
        "env_host",
        6001,
        "env_db",
    )
    assert (config.pool_size, config.min_size) == (2, 2)


def test_database_url_beats_keyword_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://h/env_db")
    assert build_config(database="kw_db").database == "env_db"


def test_explicit_url_ignores_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://env_host/env_db")
    config = build_config("postgres://arg_host/arg_db")
    assert (config.host, config.database) == ("arg_host", "arg_db")


def test_empty_database_url_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    assert build_config(database="kw_db").database == "kw_db"
    assert "DATABASE_URL" in str(config_error())


def test_bad_database_url_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"mysql://u:{SECRET}@h/db")
    with pytest.raises(InvalidURLError) as info:
        build_config()
    assert info.value.part == "scheme"
    assert "DATABASE_URL" in info.value.reason
    assert SECRET not in str(info.value)


def test_explicit_empty_url_is_an_error() -> None:
    with pytest.raises(InvalidURLError) as info:
        build_config("", database="db")
    assert info.value.part == "scheme"


def test_no_url_and_no_database() -> None:
    message = str(config_error(host="h", pool_size=3))
    assert "no database URL" in message
    assert "DATABASE_URL" in message
    assert "database='my_db'" in message
    assert "postgres://" in message


def test_keyword_only_config() -> None:
    config = build_config(
        database="app",
        host="/var/run/postgresql",
        port=5433,
        user="me",
        password="pw",
        pool_size=5,
        min_size=0,
        pool_timeout=1,
        timeout=None,
        connect_timeout=2.5,
        shutdown_timeout=30,
        max_idle_time=0,
        ssl="VERIFY-FULL",
        prefix="tenant",
        log="WARNING",
        statement_cache_size=0,
        server_settings={"application_name": "x"},
    )
    assert config == RepoConfig(
        database="app",
        host="/var/run/postgresql",
        port=5433,
        user="me",
        password="pw",
        pool_size=5,
        min_size=0,
        pool_timeout=1.0,
        timeout=None,
        connect_timeout=2.5,
        shutdown_timeout=30.0,
        max_idle_time=0.0,
        ssl="verify-full",
        prefix="tenant",
        log="warning",
        statement_cache_size=0,
        server_settings={"application_name": "x"},
    )
    assert isinstance(config.pool_timeout, float)


def test_defaults() -> None:
    config = build_config(database="app")
    assert config == RepoConfig(database="app")
    assert (config.host, config.port, config.pool_size, config.min_size) == ("localhost", 5432, 10, 1)
    assert (config.timeout, config.log, config.ssl, config.prefix) == (15.0, "debug", None, None)
    assert config.server_settings == {}


def test_config_is_frozen_and_server_settings_read_only() -> None:
    settings_in = {"application_name": "x"}
    config = build_config(database="app", server_settings=settings_in)
    settings_in["application_name"] = "changed"
    assert config.server_settings == {"application_name": "x"}
    with pytest.raises(TypeError):
        config.server_settings["application_name"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.database = "other"  # type: ignore[misc]
    assert hash(config) == hash(build_config(database="app", server_settings={"application_name": "x"}))


# --- keyword validation ------------------------------------------------------------------------


def test_unknown_keyword_option() -> None:
    message = str(config_error(database="db", poolsize=3))
    assert "unknown option 'poolsize'" in message
    assert "did you mean 'pool_size'?" in message
    fields = (
        "cleanup_timeout, connect_timeout, database, direct_url, endpoints, host, log, max_idle_time, min_size, "
        "password, pool_size, pool_timeout, pooler, port, prefix, prepared_statements, read_only, "
        "read_your_writes, replica_pool_size, replicas, server_settings, shutdown_timeout, ssl, stacktrace, "
        "statement_cache_size, target_session_attrs, timeout, user"
    )
    listed = message.rpartition("use one of ")[2].split(", ")  # new options join the sorted list
    assert listed == sorted(listed)
    assert set(fields.split(", ")) <= set(listed)


def test_unknown_keyword_option_is_checked_even_with_url() -> None:
    assert "unknown option 'nonsense'" in str(config_error("postgres://h/db", nonsense=1))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("database", ""),
        ("database", 5),
        ("host", ""),
        ("host", None),
        ("port", 0),
        ("port", 65536),
        ("port", "5432"),
        ("port", True),
        ("user", 42),
        ("pool_size", 0),
        ("pool_size", -1),
        ("pool_size", 2.0),
        ("pool_size", True),
        ("pool_size", "10"),
        ("min_size", -1),
        ("min_size", None),
        ("pool_timeout", 0),
        ("pool_timeout", -1.5),
        ("pool_timeout", True),
        ("pool_timeout", "5"),
        ("pool_timeout", float("nan")),
        ("pool_timeout", float("inf")),
        ("pool_timeout", None),
        ("timeout", 0),
        ("timeout", False),
        ("timeout", "infinity"),
        ("connect_timeout", 0.0),
        ("connect_timeout", None),
        ("shutdown_timeout", -1),
        ("max_idle_time", -0.1),
        ("max_idle_time", None),
        ("statement_cache_size", -1),
        ("statement_cache_size", 1.0),
        ("ssl", "sometimes"),
        ("ssl", 1),
        ("log", True),
        ("log", "verbose"),
        ("log", None),
        ("log", 0),
        ("prefix", ""),
        ("prefix", 3),
        ("server_settings", {"application_name": 1}),
        ("server_settings", [("a", "b")]),
    ],
)
def test_bad_keyword_value(name: str, value: Any) -> None:
    message = str(config_error(**{"database": "db", name: value}))
    assert f"{name} must be" in message
    assert f"got {value!r}" in message
    assert f"fix: pass {name}=" in message


def test_bad_keyword_value_messages_say_what_is_expected() -> None:
    assert "an integer >= 1" in str(config_error(database="db", pool_size=0))
    assert "or None for no limit" in str(config_error(database="db", timeout=-1))
    assert "verify-full" in str(config_error(database="db", ssl="x"))
    assert "False or a log level name" in str(config_error(database="db", log="x"))


def test_bad_password_type_hides_the_value() -> None:
    message = str(config_error(database="db", password=987654321))
    assert "password must be a string or None, got a value of type int" in message
    assert "987654321" not in message


def test_min_size_above_pool_size() -> None:
    message = str(config_error(database="db", pool_size=2, min_size=3))
    assert "min_size must be at most pool_size" in message
    assert "min_size=3" in message
    assert "pool_size=2" in message


def test_min_size_from_url_checked_against_keyword_pool_size() -> None:
    assert "min_size=5" in str(config_error("postgres://h/db?min_size=5", pool_size=4))
    assert build_config("postgres://h/db?min_size=5", pool_size=5).min_size == 5


def test_min_size_zero_and_equal_to_pool_size_are_fine() -> None:
    assert build_config(database="db", min_size=0).min_size == 0
    assert build_config(database="db", pool_size=1, min_size=1).pool_size == 1


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://u:{SECRET}@h/db",
        f"postgres://u:{SECRET}@h:bad/db",
        f"postgres://u:{SECRET}@h",
        f"postgres://u:{SECRET}@h/db?pool_size=0",
        f"postgres://u:{SECRET}@h/db?unknown=1",
        f"postgres://u:{SECRET}@@h:0/db",
        f"postgres://u:{SECRET}/x@h:0/db",
        f"postgres://u:{SECRET}?x@h:0/db",
        f"postgres://h:0/db?password={SECRET}",
        f"postgres://h/db?password={SECRET}&pool_size=0",
        f"postgres://u:{SECRET}@[::1/db",
    ],
)
def test_password_never_in_url_errors(url: str) -> None:
    err = url_error(url)
    assert SECRET not in str(err)
    assert SECRET not in err.url
    assert SECRET not in repr(err)
    assert "***" in err.url


def test_password_not_in_repr() -> None:
    config = build_config(f"postgres://u:{SECRET}@h/db")
    assert config.password == SECRET
    assert SECRET not in repr(config)
    assert "password" not in repr(config)


def test_mask_url() -> None:
    assert mask_url(f"postgres://u:{SECRET}@h/db") == "postgres://u:***@h/db"
    assert mask_url(f"postgres://u:{SECRET}@x@h/db") == "postgres://u:***@h/db"
    assert mask_url("postgres://u@h/db") == "postgres://u@h/db"
    assert mask_url("postgres://u:@h/db") == "postgres://u:@h/db"
    assert mask_url(f"postgres://h/db?password={SECRET}&ssl=1") == "postgres://h/db?password=***&ssl=1"
    assert mask_url(f"postgres://h/db?pass%77ord={SECRET}") == "postgres://h/db?pass%77ord=***"
    assert mask_url("postgres://h/db?application_name=a@b") == "postgres://h/db?application_name=a@b"
    assert mask_url(f"u:{SECRET}@h/db") == "u:***@h/db"


# --- RepoConfig methods ------------------------------------------------------------------------


def test_dsn_kwargs_full() -> None:
    config = build_config(
        "postgres://u:pw@db.local:6000/app?sslmode=require&application_name=svc&connect_timeout=2",
        statement_cache_size=50,
        timeout=99,
    )
    assert config.dsn_kwargs() == {
        "host": "db.local",
        "port": 6000,
        "user": "u",
        "password": "pw",
        "database": "app",
        "ssl": "require",
        "timeout": 2.0,
        "statement_cache_size": 50,
        "server_settings": {"application_name": "svc"},
    }


def test_dsn_kwargs_omits_unset_ssl_and_empty_server_settings() -> None:
    kwargs = build_config(database="app").dsn_kwargs()
    assert kwargs == {
        "host": "localhost",
        "port": 5432,
        "user": None,
        "password": None,
        "database": "app",
        "timeout": 5.0,
        "statement_cache_size": 100,
    }


def test_dsn_kwargs_keeps_ssl_false_and_returns_a_fresh_dict() -> None:
    config = build_config(database="app", ssl=False, server_settings={"search_path": "x"})
    kwargs = config.dsn_kwargs()
    assert kwargs["ssl"] is False
    assert type(kwargs["server_settings"]) is dict
    kwargs["server_settings"]["search_path"] = "changed"
    assert config.server_settings == {"search_path": "x"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"user": "u", "password": SECRET}, "postgres://u:***@localhost:5432/app"),
        ({"user": "u"}, "postgres://u@localhost:5432/app"),
        ({}, "postgres://localhost:5432/app"),
        ({"password": SECRET}, "postgres://:***@localhost:5432/app"),
        ({"host": "::1", "port": 5433}, "postgres://[::1]:5433/app"),
        ({"host": "/var/run/postgresql"}, "postgres://:5432/app?host=/var/run/postgresql"),
        ({"user": "a@b:c", "database": "my db"}, "postgres://a%40b%3Ac@localhost:5432/my%20db"),
    ],
)
def test_masked_url(options: dict[str, Any], expected: str) -> None:
    config = build_config(**{"database": "app", **options})
    assert config.masked_url() == expected
    assert SECRET not in config.masked_url()


@pytest.mark.parametrize(
    "options",
    [
        {"user": "a@b:c", "password": "pw", "database": "my/db", "host": "h.example", "port": 6000},
        {"host": "/tmp/sock", "database": "x"},
        {"host": "fe80::1%eth0", "database": "x", "user": "u"},
    ],
)
def test_masked_url_parses_back(options: dict[str, Any]) -> None:
    config = build_config(**options)
    parsed = parse_url(config.masked_url())
    assert parsed.pop("password", None) == ("***" if config.password is not None else None)
    assert build_config(**parsed, password=config.password) == config
