"""Repo configuration: the :class:`RepoConfig` record, built from a URL and keyword options.

Pure: no driver import and no I/O, apart from reading ``DATABASE_URL`` when no URL is given.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

import attrs

from asyncecto._names import check_name
from asyncecto.adapters import ConnectionSettings, known_schemes
from asyncecto.errors import ArgumentError, InvalidURLError

__all__ = ("RepoConfig", "build_config", "endpoints_url", "mask_url", "parse_url")

_SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
#: libpq's target_session_attrs values (PostgreSQL 14+), the order its docs give
_TARGET_SESSION_ATTRS: Final = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
_INVALID: Final[Any] = object()  # marks a value an option does not accept
_POOLER_OPTIONS: Final = ("pooler", "prepared_statements", "direct_url")
_POOLERS: Final = (None, "session", "transaction")
_INT_RE: Final = re.compile(r"[0-9]{1,18}")  # bounded: int() refuses very long digit strings
_FLOAT_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")

# option -> (lowest, highest or None) for integer options
_INT_RANGES: Final[dict[str, tuple[int, int | None]]] = {
    "port": (1, 65535),
    "pool_size": (1, None),
    "min_size": (0, None),
    "statement_cache_size": (0, None),
}
_POSITIVE_FLOATS: Final = frozenset(
    {"pool_timeout", "timeout", "connect_timeout", "shutdown_timeout", "cleanup_timeout"}
)

# What each option accepts, as said in error messages.
_EXPECTED: Final[dict[str, str]] = {
    "database": "a non-empty string",
    "host": "a non-empty string (a host name, an IP address or a unix-socket directory)",
    "port": "an integer from 1 to 65535",
    "user": "a string or None",
    "password": "a string or None",
    "pool_size": "an integer >= 1",
    "min_size": "an integer >= 0",
    "pool_timeout": "a positive number of seconds",
    "timeout": "a positive number of seconds, or None for no limit",
    "connect_timeout": "a positive number of seconds",
    "shutdown_timeout": "a positive number of seconds",
    "cleanup_timeout": "a positive number of seconds",
    "max_idle_time": "a number of seconds >= 0 (0 = never close idle connections)",
    "ssl": f"True, False, None or an sslmode ({', '.join(_SSL_MODES)})",
    "prefix": "a non-empty schema name or None",
    "log": f"False or a log level name ({', '.join(_LOG_LEVELS)})",
    "statement_cache_size": "an integer >= 0 (0 disables the cache)",
    "server_settings": "a mapping of strings to strings",
    "read_only": "True or False",
    "stacktrace": "True or False",
    "after_connect": "a function of the new connection (sync or async), or None",
    # read replicas (own block: asyncecto.repo._routing)
    "replicas": "a list of replica URLs (postgres://...), each with the primary's options unless its URL sets them",
    "replica_pool_size": "an integer >= 1, or None for the primary's pool_size",
    "read_your_writes": "a number of seconds >= 0, True (5.0) or False (off)",
    "endpoints": "a list of (host, port) pairs or 'host[:port]' strings",
    "target_session_attrs": f"None or one of {', '.join(_TARGET_SESSION_ATTRS)}",
    **{
        "pooler": "None, 'session' or 'transaction'",
        "prepared_statements": "True or False",
        "direct_url": "a postgres:// URL reaching PostgreSQL itself (not the pooler), or None",
    },
}
_EXAMPLES: Final[dict[str, str]] = {
    "database": "database='my_db'",
    "host": "host='localhost'",
    "port": "port=5432",
    "user": "user='postgres'",
    "password": "password=<a string>",
    "pool_size": "pool_size=10",
    "min_size": "min_size=1",
    "pool_timeout": "pool_timeout=5.0",
    "timeout": "timeout=15.0 or timeout=None",
    "connect_timeout": "connect_timeout=5.0",
    "shutdown_timeout": "shutdown_timeout=15.0",
    "cleanup_timeout": "cleanup_timeout=5.0",
    "max_idle_time": "max_idle_time=300.0",
    "ssl": "ssl='require'",
    "prefix": "prefix='public'",
    "log": "log='info' or log=False",
    "statement_cache_size": "statement_cache_size=100",
    "server_settings": "server_settings={'application_name': 'my_app'}",
    "read_only": "read_only=True",
    "stacktrace": "stacktrace=True",
    "after_connect": "after_connect=lambda conn: conn.execute('SET search_path TO app')",
    "replicas": "replicas=['postgres://app@replica1/app_db', 'postgres://app@replica2/app_db']",
    "replica_pool_size": "replica_pool_size=10",
    "read_your_writes": "read_your_writes=5.0 or read_your_writes=False",
    "endpoints": "endpoints=[('db1.example', 5432), ('db2.example', 5433)]",
    "target_session_attrs": "target_session_attrs='read-write'",
    **{
        "pooler": "pooler='transaction'",
        "prepared_statements": "prepared_statements=True",
        "direct_url": "direct_url='postgres://user:pass@db-host:5432/my_db'",
    },
}
# What each URL query option accepts, where it differs from the keyword option.
_URL_EXPECTED: Final[dict[str, str]] = {
    **_EXPECTED,
    "timeout": "a positive number of seconds, or 'infinity' for no limit",
    "ssl": "true, false, 1 or 0 (use sslmode=... to give a mode)",
    "sslmode": f"one of {', '.join(_SSL_MODES)}",
    "log": f"false or a log level name ({', '.join(_LOG_LEVELS)})",
    "prefix": "a non-empty schema name",
    "host": "a non-empty host name or unix-socket directory",
    "read_only": "true, false, 1 or 0",
    "stacktrace": "true, false, 1 or 0",
    "target_session_attrs": f"one of {', '.join(_TARGET_SESSION_ATTRS)}",
    "prepared_statements": "true, false, 1 or 0",
    "direct_url": "a percent-encoded postgres:// URL reaching PostgreSQL itself (not the pooler)",
}
_URL_OPTIONS: Final = frozenset(
    {
        "pool_size",
        "read_only",
        "stacktrace",
        "min_size",
        "pool_timeout",
        "timeout",
        "connect_timeout",
        "shutdown_timeout",
        "cleanup_timeout",
        "max_idle_time",
        "statement_cache_size",
        "ssl",
        "sslmode",
        "prefix",
        "log",
        "application_name",
        "host",
        "port",
        "user",
        "password",
        "target_session_attrs",
        *_POOLER_OPTIONS,
    }
)


def _settings_repr(settings: Mapping[str, str]) -> str:
    return repr(dict(settings))


@attrs.frozen(kw_only=True)
class RepoConfig:
    """The validated settings of one repo; build it with :func:`build_config`."""

    database: str
    host: str = "localhost"  # a path starting with "/" is a unix-socket directory
    port: int = 5432
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    pool_size: int = 10  # most connections open at once
    min_size: int = 1  # connections opened at start
    pool_timeout: float = 5.0  # seconds to wait for a free connection
    timeout: float | None = 15.0  # default per-query timeout; None = no limit
    connect_timeout: float = 5.0
    shutdown_timeout: float = 15.0  # how long stop() waits for in-flight work
    # how long ROLLBACK, savepoint release and the release reset (and a COMMIT whose caller was
    # cancelled) may take before the connection is terminated and never reused
    cleanup_timeout: float = 5.0
    max_idle_time: float = 300.0  # idle connections older than this are closed (0 = never)
    ssl: bool | str | None = None  # None = driver default; a bool; or an sslmode
    prefix: str | None = None  # default schema prefix for queries
    log: str | bool = "debug"  # query log level name, or False
    statement_cache_size: int = 100
    server_settings: Mapping[str, str] = attrs.field(factory=dict, repr=_settings_repr, hash=False)
    read_only: bool = False  # the write functions refuse (Ecto's ``read_only: true``)
    stacktrace: bool = False  # telemetry events and log lines carry the caller's frames
    # run on each new connection (Ecto's after_connect): fn(conn), sync or async; conn.execute(sql)
    after_connect: Callable[[Any], Any] | None = attrs.field(default=None, hash=False, eq=False)
    scheme: str = "postgres"  # the URL's scheme (lower case): it chooses the adapter
    # -- read replicas (asyncecto.repo._routing): reads outside a transaction go to these servers --
    replicas: tuple[str, ...] = attrs.field(default=(), repr=lambda urls: repr(tuple(mask_url(u) for u in urls)))
    replica_pool_size: int | None = None  # each replica's pool size (None: pool_size)
    #: seconds a context's reads after its write wait for a replica that has replayed it (0: off)
    read_your_writes: float = 5.0
    # libpq multi-host: every (host, port) tried in order (``host``/``port`` are the first); () = one host
    endpoints: tuple[tuple[str, int], ...] = ()
    # libpq's target_session_attrs: which server of ``endpoints`` a connection accepts (None = any)
    target_session_attrs: str | None = None

    def all_endpoints(self) -> tuple[tuple[str, int], ...]:
        """Every (host, port) a connection may be opened to, in the order tried."""
        return self.endpoints or ((self.host, self.port),)

    # -- connection poolers --------------------------------------------------------------------------
    # None / "session": every connection is a session of its own (direct, or a session-mode pooler);
    # "transaction": a transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy …) in front
    pooler: str | None = None
    # under pooler="transaction": the pooler keeps protocol-level prepared statements (PgBouncer >= 1.21
    # max_prepared_statements), so asyncpg's statement cache stays on
    prepared_statements: bool = False
    # PostgreSQL itself, for what needs a session: LISTEN, migrations (the migrator and `asyncecto migrate`)
    direct_url: str | None = attrs.field(default=None, repr=lambda u: "None" if u is None else repr(mask_url(u)))

    @property
    def transaction_pooled(self) -> bool:
        """Whether a transaction-mode pooler stands between the repo and PostgreSQL."""
        return self.pooler == "transaction"

    def direct_config(self) -> RepoConfig | None:
        """This config pointed at ``direct_url`` (a session of its own per connection), or ``None``."""
        if self.direct_url is None:
            return None
        parsed = parse_url(self.direct_url)
        settings = parsed.pop("server_settings", {})
        _resolve_endpoints(parsed)  # the direct URL names its own servers: none of the pooler's
        return attrs.evolve(
            self,
            **{"endpoints": (), "target_session_attrs": None, **parsed},
            scheme=url_scheme(self.direct_url),
            replicas=(),
            pooler=None,
            prepared_statements=False,
            direct_url=None,
            server_settings=types.MappingProxyType({**self.server_settings, **settings}),
        )

    def direct_options(self) -> dict[str, Any]:
        """Keyword options for a session-mode :class:`Repo` on ``direct_url`` with this config's
        settings (a small pool: what it runs is sequential, a lock and the work)."""
        skip = {
            *("database", "host", "port", "user", "password", "scheme", "endpoints", "target_session_attrs"),
            *("replicas", "replica_pool_size", "read_your_writes", *_POOLER_OPTIONS),
        }
        options = {f: getattr(self, f) for f in attrs.fields_dict(RepoConfig) if f not in skip}
        options["pool_size"] = 2
        options["min_size"] = 1
        options["server_settings"] = dict(self.server_settings)
        return options

    def connection_settings(self) -> ConnectionSettings:
        """What the adapter is given: where and how to connect, and how to size its pool."""
        return ConnectionSettings(
            scheme=self.scheme,
            database=self.database,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            ssl=self.ssl,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            pool_size=self.pool_size,
            min_size=self.min_size,
            pool_timeout=self.pool_timeout,
            max_idle_time=self.max_idle_time,
            cleanup_timeout=self.cleanup_timeout,
            statement_cache_size=self.statement_cache_size,
            server_settings=self.server_settings,
            after_connect=self.after_connect,
            endpoints=self.endpoints,
            target_session_attrs=self.target_session_attrs,
            **self._pooler_settings(),
        )

    def _pooler_settings(self) -> dict[str, Any]:
        direct = self.direct_config()
        return {
            "pooler": "transaction" if self.transaction_pooled else None,
            "prepared_statements": self.prepared_statements,
            "direct": None if direct is None else direct.connection_settings(),
        }

    def dsn_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``asyncpg.connect`` (a PostgreSQL repo's own connection)."""
        from asyncecto.adapters.postgres import connect_kwargs  # the driver only when asked for

        return connect_kwargs(self.connection_settings())

    def masked_url(self) -> str:
        """This config as a URL with the password shown as ``***``, for logs and errors."""
        auth = ""
        if self.user is not None or self.password is not None:
            auth = quote(self.user or "", safe="") + (":***" if self.password is not None else "") + "@"
        database = quote(self.database, safe="")
        return endpoints_url(f"{self.scheme}://{auth}", database, self.all_endpoints(), self.target_session_attrs)


def _split_rest(rest: str) -> tuple[str | None, str, str | None]:
    """Split what follows ``scheme://`` into (userinfo, host[:port][/path], query); absent parts are None.

    Userinfo ends at the last ``@`` before the query, so raw ``@``, ``:``, ``/`` and ``#``
    in a password work; a raw ``?`` works too unless the rest of the password has ``=`` or ``&``.
    """
    pre, qmark, query = rest.partition("?")
    userinfo, at, hostpath = pre.rpartition("@")
    if at:
        return userinfo, hostpath, query if qmark else None
    match = re.match(r"[^=&]*@", rest)  # an "@" before any query pair: a raw "?" in the userinfo
    if match is None:
        return None, pre, query if qmark else None
    hostpath, qmark, query = rest[match.end() :].partition("?")
    return rest[: match.end() - 1], hostpath, query if qmark else None


def _mask_parsed(url: str) -> str:
    """``url`` with the password masked where the parser finds it (exact for a well-formed URL)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, hostpath, query = _split_rest(rest)
    out = scheme + sep
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        out += user + (":***" if password else colon) + "@"
    out += hostpath
    if query is not None:
        out += "?" + _mask_query(query)
    return out


def _mask_query(query: str) -> str:
    """The query with its ``password=`` values masked."""
    pairs = query.split("&")
    for i, pair in enumerate(pairs):
        key, eq, _ = pair.partition("=")
        if eq and unquote_plus(key) in ("password", "direct_url"):
            pairs[i] = key + "=***"
    return "&".join(pairs)


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Every stretch of ``url`` that may be (part of) a password, read as loosely as possible."""
    spans: list[tuple[int, int]] = []
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", url)
    begin = scheme.end() if scheme else 0
    last_at = url.rfind("@")
    colon = url.find(":", begin, last_at) if last_at > begin else -1
    if colon >= 0:  # "user:password@": the password may hold "?", "/", "#", "=", "&" or "@"
        spans.append((colon + 1, last_at))
    for i, char in enumerate(url):
        if char not in "?&":
            continue
        key_end = url.find("=", i + 1)
        if key_end < 0 or unquote_plus(url[i + 1 : key_end]) not in ("password", "direct_url"):
            continue
        end = len(url)  # a raw "&" may be part of the password: it ends before the next known option
        for j in range(key_end + 1, len(url)):
            if url[j] == "&":
                next_key, eq, _ = url[j + 1 :].partition("=")
                if eq and unquote_plus(next_key) in _URL_OPTIONS:
                    end = j
                    break
        spans.append((key_end + 1, end))
    return spans


def mask_url(url: str) -> str:
    """Return ``url`` with its password (in the userinfo or the query) replaced by ``***``.

    When in doubt it masks more: a password holding a raw ``?``, ``&``, ``=`` or ``@`` makes the URL
    ambiguous, so everything between the user name and the last ``@``, and what follows a
    ``password=`` up to the next known option, is masked.

    >>> mask_url("postgres://me:pa?ss=w@db.example/app")
    'postgres://me:***@db.example/app'
    """
    spans = sorted(span for span in _secret_spans(url) if span[1] > span[0])
    out: list[str] = []
    pos = 0
    for start, end in spans:
        if out and start <= pos:  # overlaps the stretch masked last: one mask for both
            pos = max(pos, end)
            continue
        out.append(url[pos:start] + "***")
        pos = end
    return "".join(out) + url[pos:]


def _from_text(name: str, text: str) -> Any:
    """Convert a URL query value to the option's Python type, or return ``_INVALID``."""
    if name in _INT_RANGES:
        return int(text) if _INT_RE.fullmatch(text) else _INVALID
    if name in _POSITIVE_FLOATS or name == "max_idle_time":
        if name == "timeout" and text.lower() == "infinity":
            return None
        return float(text) if _FLOAT_RE.fullmatch(text) else _INVALID
    if name in ("ssl", "read_only", "stacktrace", "prepared_statements"):
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), _INVALID)
    if name == "sslmode":
        return text.lower() if text.lower() in _SSL_MODES else _INVALID
    if name == "log":
        return False if text.lower() == "false" else text
    return text


def _normalize(name: str, value: Any) -> Any:
    """Return ``value`` checked and normalized for option ``name``, or ``_INVALID``."""
    if name == "database" and isinstance(value, str) and value:
        return check_name(value, "database name")  # PostgreSQL cuts a longer one to 63 bytes
    if name in ("database", "host"):
        return value if isinstance(value, str) and value else _INVALID
    if name == "user" and isinstance(value, str) and value:
        return check_name(value, "user name")
    if name in ("user", "password"):
        return value if value is None or isinstance(value, str) else _INVALID
    if name == "prefix" and isinstance(value, str) and value:
        return check_name(value, "repo prefix")
    if name == "prefix":
        return None if value is None else _INVALID
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        if isinstance(value, int) and not isinstance(value, bool) and value >= low:
            return value if high is None or value <= high else _INVALID
        return _INVALID
    if name in _POSITIVE_FLOATS or name == "max_idle_time":
        if value is None and name == "timeout":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            ok = value >= 0 if name == "max_idle_time" else value > 0
            return float(value) if ok else _INVALID
        return _INVALID
    if name == "ssl":
        if value is None or isinstance(value, bool):
            return value
        return value.lower() if isinstance(value, str) and value.lower() in _SSL_MODES else _INVALID
    if name in ("read_only", "stacktrace"):
        return value if isinstance(value, bool) else _INVALID
    if name == "log":
        if value is False:
            return False
        return value.lower() if isinstance(value, str) and value.lower() in _LOG_LEVELS else _INVALID
    if name == "server_settings":
        if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return types.MappingProxyType(dict(value))
        return _INVALID
    if name == "after_connect":
        return value if value is None or callable(value) else _INVALID
    if name in ("replicas", "replica_pool_size", "read_your_writes"):
        return _replica_option(name, value)
    if name == "endpoints":
        return _normalize_endpoints(value)
    if name == "target_session_attrs":
        return _normalize_target(value)
    if name in _POOLER_OPTIONS:
        return _normalize_pooler(name, value)
    raise AssertionError(f"no rule for option {name!r}")  # pragma: no cover


def _normalize_pooler(name: str, value: Any) -> Any:
    """``pooler``, ``prepared_statements`` and ``direct_url`` checked, or ``_INVALID``."""
    if name == "pooler":
        if isinstance(value, str) and value.lower() == "statement":
            raise ArgumentError(
                "cannot configure repo: pooler='statement' is not supported: a statement-mode pooler "
                "refuses transactions of more than one statement, which repo.transaction(), Multi, "
                "insert_all of many rows and the migrator need\n\n"
                "fix: run the pooler with pool_mode = transaction and pass pooler='transaction'"
            )
        if value is None or (isinstance(value, str) and value.lower() in _POOLERS):
            return None if value is None else value.lower()
        return _INVALID
    if name == "prepared_statements":
        return value if isinstance(value, bool) else _INVALID
    if value is None:  # direct_url
        return None
    if not isinstance(value, str) or not value.strip():
        return _INVALID
    try:
        parse_url(value)
    except InvalidURLError as exc:
        raise ArgumentError(
            f"cannot configure repo: direct_url cannot be parsed: {exc}\n\nfix: pass {_EXAMPLES['direct_url']}"
        ) from None
    return value.strip()


def _parse_host_port(hostport: str, masked: str) -> tuple[str | None, int | None]:
    """Split ``host[:port]`` (or ``[ipv6][:port]``); empty parts are ``None``."""
    port_text: str | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidURLError(masked, "host", "an IPv6 address opened with '[' has no ']'")
        host, after = hostport[1:end], hostport[end + 1 :]
        if not host:
            raise InvalidURLError(masked, "host", "'[]' holds no address; write e.g. postgres://[::1]:5432/my_db")
        if after and not after.startswith(":"):
            raise InvalidURLError(masked, "host", f"unexpected {after!r} after the IPv6 address; write [addr]:port")
        port_text = after[1:] if after else None
    else:
        if hostport.count(":") > 1:
            raise InvalidURLError(
                masked, "host", "an IPv6 address must be in brackets, e.g. postgres://[::1]:5432/my_db"
            )
        host, colon, port_text = hostport.partition(":")
        port_text = port_text if colon else None
    port: int | None = None
    if port_text:  # an empty port ("host:") means the default
        checked = _normalize("port", int(port_text)) if _INT_RE.fullmatch(port_text) else _INVALID
        if checked is _INVALID:
            raise InvalidURLError(masked, "port", f"expected an integer from 1 to 65535, got {port_text!r}")
        port = checked
    return (unquote(host) or None), port


def _parse_query(query: str, masked: str) -> dict[str, Any]:
    """Parse the URL query options into their typed values."""
    result: dict[str, Any] = {}
    seen: set[str] = set()
    for name, text in parse_qsl(query, keep_blank_values=True):
        part = f"option {name!r}"
        if name not in _URL_OPTIONS:
            known = ", ".join(sorted(_URL_OPTIONS))
            raise InvalidURLError(masked, part, f"unknown option; the known options are {known}")
        if name in seen:
            raise InvalidURLError(masked, part, "given more than once; give it once")
        other = {"ssl": "sslmode", "sslmode": "ssl"}.get(name)
        if other in seen:
            raise InvalidURLError(masked, part, f"conflicts with option {other!r}; give only one of them")
        seen.add(name)
        if name in _LIST_KEYS and "," in text:  # a libpq host or port list: see _endpoint_options
            result[_LIST_KEYS[name]] = text
            continue
        if name == "application_name":
            result["server_settings"] = {"application_name": text}
            continue
        if name in ("user", "password") and not text:
            continue  # blank: not set
        key = "ssl" if name == "sslmode" else name
        value = _from_text(name, text)
        if value is not _INVALID and name != "sslmode":
            value = _normalize(key, value)
        if value is _INVALID:
            raise InvalidURLError(masked, part, f"got {text!r}, expected {_URL_EXPECTED[name]}")
        result[key] = value
    return result


def parse_url(url: str) -> dict[str, Any]:
    """Parse a ``postgres://``, ``postgresql://`` or ``ecto://`` URL (or one of a scheme given to
    :func:`asyncecto.adapters.register_adapter`) into typed repo options.

    Only what the URL sets is returned, the scheme aside (:func:`url_scheme`). ``application_name``
    is returned inside ``server_settings``.
    """
    if not isinstance(url, str):
        raise ArgumentError(f"cannot parse repo URL: expected a string, got {type(url).__name__}")
    url = url.strip()
    masked = mask_url(url)
    try:
        return _parse_url(url, masked)
    except InvalidURLError:
        if masked == _mask_parsed(url):
            raise
        # the password may hold a character that splits the URL elsewhere: what the parser saw as
        # a port, a path or an option may be part of it, so nothing it read is shown
        raise InvalidURLError(
            masked,
            "password",
            "the URL cannot be parsed, and its password may hold a character with a meaning in URLs "
            "(? & = # / @ % or a space); percent-encode the password: urllib.parse.quote(password, safe='')",
        ) from None


def _schemes_text() -> str:
    """The known schemes (one per adapter registered), as a user writes them: ``postgres:// or ecto://``."""
    names = [f"{s}://" for s in known_schemes()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def url_scheme(url: str) -> str:
    """The scheme of a URL :func:`parse_url` accepted, in lower case."""
    return url.strip().partition("://")[0].lower()


def _parse_url(url: str, masked: str) -> dict[str, Any]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidURLError(
            masked, "scheme", f"missing scheme; use {_schemes_text()}, e.g. postgres://localhost/my_db"
        )
    if scheme.lower() not in known_schemes():
        raise InvalidURLError(masked, "scheme", f"unsupported scheme {scheme!r}; use {_schemes_text()}")
    userinfo, hostpath, query = _split_rest(rest)
    result: dict[str, Any] = {}
    if userinfo is not None:
        user, _, password = userinfo.partition(":")
        if user:
            result["user"] = check_name(unquote(user), "user name")
        if password:
            result["password"] = unquote(password)
    hostport, _, path = hostpath.partition("/")
    netloc = _netloc_endpoints(hostport, masked)
    if not path:
        raise InvalidURLError(masked, "database", "the path must name the database, e.g. postgres://localhost/my_db")
    if "/" in path:
        raise InvalidURLError(
            masked, "database", f"the path must be one database name, got {path!r}; write a '/' in it as %2F"
        )
    result["database"] = check_name(unquote(path), "database name")  # PostgreSQL cuts a longer one
    options = _parse_query(query or "", masked)
    result.update(_endpoint_options(netloc, options, masked))
    result.update(options)
    return result


def _replica_option(name: str, value: Any) -> Any:
    """The read-replica options, checked (``replicas``: each URL parsed, so a bad one fails here)."""
    if name == "replicas":
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            return _INVALID
        for url in value:
            if not isinstance(url, str):
                return _INVALID
            parse_url(url)  # InvalidURLError names the part that is wrong
        return tuple(value)
    if name == "replica_pool_size":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        return value if ok else _INVALID
    if value is None or value is False:
        return 0.0
    if value is True:
        return 5.0
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return _INVALID


def _bad_option(name: str, value: Any) -> ArgumentError:
    shown = f"a value of type {type(value).__name__}" if name == "password" else repr(value)
    return ArgumentError(
        f"cannot configure repo: {name} must be {_EXPECTED[name]}, got {shown}\n\nfix: pass {_EXAMPLES[name]}"
    )


def build_config(url: str | None = None, /, **options: Any) -> RepoConfig:
    """Build a :class:`RepoConfig` from a URL (default: ``$DATABASE_URL``) and keyword options.

    As in Ecto, what the URL sets (its parts and its query options) wins over keyword options.
    """
    fields = {name for name in attrs.fields_dict(RepoConfig) if name != "scheme"}  # the URL's, not an option
    values: dict[str, Any] = {}
    for name, value in options.items():
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ArgumentError(
                f"cannot configure repo: unknown option {name!r}{hint}\n\nfix: use one of {', '.join(sorted(fields))}"
            )
        checked = _normalize(name, value)
        if checked is _INVALID:
            raise _bad_option(name, value)
        values[name] = checked
    from_env = False
    if url is None:
        url = os.environ.get("DATABASE_URL") or None
        from_env = url is not None
    if url is not None:
        try:
            from_url = parse_url(url)
        except InvalidURLError as exc:
            if not from_env:
                raise
            raise InvalidURLError(exc.url, exc.part, f"{exc.reason} (URL read from DATABASE_URL)") from None
        settings = from_url.pop("server_settings", {})
        values.update(from_url)
        values["scheme"] = url_scheme(url)
        values["server_settings"] = {**values.get("server_settings", {}), **settings}
        if "host" in from_url and "endpoints" not in from_url:
            values.pop("endpoints", None)  # the URL's one host wins over keyword endpoints
    _resolve_endpoints(values)
    if "database" not in values:
        raise ArgumentError(
            "cannot configure repo: no database URL and no database option\n\n"
            "fix: pass a URL such as Repo('postgres://user:pass@localhost/my_db'), "
            "set the DATABASE_URL environment variable, or pass database='my_db'"
        )
    values["server_settings"] = types.MappingProxyType(dict(values.get("server_settings", {})))
    config = RepoConfig(**values)
    if config.min_size > config.pool_size:
        raise ArgumentError(
            f"cannot configure repo: min_size must be at most pool_size, got min_size={config.min_size} "
            f"and pool_size={config.pool_size}\n\nfix: lower min_size or raise pool_size"
        )
    _check_startup_texts(config)
    return config


def _check_startup_texts(config: RepoConfig) -> None:
    """Refuse what the connection's startup message cannot carry as given: a NUL or a lone surrogate
    anywhere (database and user names are checked as identifiers where they are set)."""
    texts: list[tuple[str, str | None]] = [
        ("database", config.database),
        ("user", config.user),
        ("host", config.host),
        ("password", config.password),
    ]
    texts += [("endpoints host", host) for host, _ in config.endpoints]
    texts += [(f"server_settings key {k!r}", k) for k in config.server_settings]
    texts += [(f"server_settings[{k!r}]", v) for k, v in config.server_settings.items()]
    for name, text in texts:
        if text is None:
            continue
        shown = "the password" if name == "password" else f"{name} {text!r}"
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            size = -1
        if size < 0 or "\x00" in text:
            found = "a lone surrogate" if size < 0 else "a NUL character"
            raise ArgumentError(
                f"cannot configure repo: {shown} holds {found}, which a connection cannot carry\n\n"
                "fix: remove it (decode text from outside strictly)"
            )


# -- libpq multi-host URLs and target_session_attrs (failover) ---------------------------------------------

#: a URL query's ``host``/``port`` holding a comma list, kept as text until the netloc's hosts are known
_LIST_KEYS: Final = {"host": "_host_list", "port": "_port_list"}


def _netloc_endpoints(hostport: str, masked: str) -> list[tuple[str | None, int | None]]:
    """The URL's ``host[:port][,host[:port]]…`` (libpq's multi-host form); empty parts are ``None``."""
    return [_parse_host_port(part, masked) for part in hostport.split(",")]


def _query_hosts(text: str, masked: str) -> list[str | None]:
    hosts: list[str | None] = []
    for part in text.split(","):
        host = part[1:-1] if part.startswith("[") and part.endswith("]") else part
        if not host:
            raise InvalidURLError(
                masked,
                "option 'host'",
                f"got {text!r}, expected a comma list of non-empty host names or socket directories",
            )
        hosts.append(host)
    return hosts


def _query_ports(text: str, masked: str) -> list[int | None]:
    ports: list[int | None] = []
    for part in text.split(","):
        checked = _normalize("port", int(part)) if _INT_RE.fullmatch(part) else _INVALID
        if part and checked is _INVALID:
            raise InvalidURLError(
                masked, "option 'port'", f"got {text!r}, expected a comma list of integers from 1 to 65535"
            )
        ports.append(checked if part else None)
    return ports


def _endpoint_options(
    netloc: list[tuple[str | None, int | None]], options: dict[str, Any], masked: str
) -> dict[str, Any]:
    """``host``/``port`` (one server) or ``endpoints`` (several, libpq's multi-host URL), from the URL's
    netloc and its ``host=``/``port=`` options (which win, each whole, as in libpq); removes those
    options from ``options``. Ports pair with hosts in order, or one port serves every host."""
    hosts: list[str | None] = [host for host, _ in netloc]
    ports: list[int | None] = [port for _, port in netloc]
    if "_host_list" in options:
        hosts = _query_hosts(options.pop("_host_list"), masked)
    elif "host" in options:
        hosts = [options.pop("host")]
    if "_port_list" in options:
        ports = _query_ports(options.pop("_port_list"), masked)
    elif "port" in options:
        ports = [options.pop("port")]
    if len(ports) > 1 and len(ports) != len(hosts):
        raise InvalidURLError(
            masked,
            "port",
            f"could not match {len(ports)} port numbers to {len(hosts)} hosts; give one port for every host "
            "(postgres://h1:5432,h2:5433/db) or a single port for all",
        )
    if len(hosts) == 1:
        out: dict[str, Any] = {}
        if hosts[0] is not None:
            out["host"] = hosts[0]
        if ports[0] is not None:
            out["port"] = ports[0]
        return out
    if len(ports) == 1:
        ports = ports * len(hosts)
    return {"endpoints": tuple(zip(hosts, ports, strict=True))}


def _normalize_endpoints(value: Any) -> Any:
    """The ``endpoints=`` option: (host, port) pairs or ``"host[:port]"`` strings; a missing port is
    ``None`` until :func:`_resolve_endpoints` gives it the repo's ``port``."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        return _INVALID
    if not value:
        return ()  # none: host/port (a config's own fields passed back as options, as the CLI does)
    out: list[tuple[str, int | None]] = []
    for entry in value:
        if isinstance(entry, str):
            try:
                host, port = _parse_host_port(entry, "endpoints")
            except InvalidURLError:
                return _INVALID
            if host is None:
                return _INVALID
            out.append((host, port))
            continue
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            return _INVALID
        host, port = entry
        if not isinstance(host, str) or not host or _normalize("port", port) is _INVALID:
            return _INVALID
        out.append((host, port))
    return tuple(out)


def _normalize_target(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        return _INVALID
    text = value.strip().lower().replace("_", "-")
    return text if text in _TARGET_SESSION_ATTRS else _INVALID


def _resolve_endpoints(values: dict[str, Any]) -> None:
    """Turn ``endpoints`` (from the URL or the keyword) into the config's: missing hosts are
    ``localhost``, missing ports the repo's ``port``; ``host``/``port`` become the first; one endpoint
    is just ``host``/``port``."""
    endpoints = values.pop("endpoints", None)
    if not endpoints:
        return
    default_port = values.get("port", 5432)
    resolved = tuple((host or "localhost", port or default_port) for host, port in endpoints)
    values["host"], values["port"] = resolved[0]
    if len(resolved) > 1:
        values["endpoints"] = resolved


def _endpoint_text(host: str, port: int) -> str:
    """``host:port`` as a URL writes it (an IPv6 address in brackets)."""
    shown = f"[{quote(host, safe=':')}]" if ":" in host else quote(host, safe="")
    return f"{shown}:{port}"


def endpoints_url(head: str, database: str, endpoints: tuple[tuple[str, int], ...], target: str | None) -> str:
    """A URL (``head`` is ``scheme://[userinfo@]``) naming every endpoint: in the netloc
    (``h1:5432,h2:5433``), or in ``host=``/``port=`` options when one is a unix-socket directory;
    ``target_session_attrs`` as an option when set."""
    query: list[str] = []
    tail = f"?target_session_attrs={target}" if target is not None else ""
    if len(endpoints) == 1:  # one server: the form asyncecto always wrote
        host, port = endpoints[0]
        if host.startswith("/"):
            return f"{head}:{port}/{database}?host={quote(host, safe='/')}" + tail.replace("?", "&")
        shown = f"[{quote(host, safe=':')}]" if ":" in host else quote(host, safe="")
        return f"{head}{shown}:{port}/{database}{tail}"
    if any(host.startswith("/") for host, _ in endpoints):
        hosts = ",".join(quote(host, safe="/:") for host, _ in endpoints)
        ports = {port for _, port in endpoints}
        port_text = str(endpoints[0][1]) if len(ports) == 1 else ",".join(str(port) for _, port in endpoints)
        url = f"{head}/{database}"
        query += [f"host={hosts}", f"port={port_text}"]
    else:
        url = f"{head}{','.join(_endpoint_text(host, port) for host, port in endpoints)}/{database}"
    if target is not None:
        query.append(f"target_session_attrs={target}")
    return url + ("?" + "&".join(query) if query else "")
