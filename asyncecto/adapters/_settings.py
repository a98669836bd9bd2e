"""What an adapter is given to connect: plain settings, built by the Repo from its configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ("ConnectionSettings",)


def _settings_repr(settings: Mapping[str, str]) -> str:
    return repr(dict(settings))


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """Where and how an adapter connects, and how it sizes its pool (times are seconds).

    :ivar scheme: the URL scheme the adapter was chosen by (``postgres`` …)
    :ivar host: a host name, an IP address, or a unix-socket directory (starting with ``/``)
    :ivar ssl: ``None`` for the driver's default, a bool, or an sslmode
    :ivar timeout: the default statement timeout; ``None`` for no limit
    :ivar cleanup_timeout: how long a rollback or a connection reset may take before the
        connection is terminated
    :ivar max_idle_time: idle connections older than this are closed (0: never)
    """

    database: str
    scheme: str = "postgres"
    host: str = "localhost"
    port: int = 5432
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    ssl: bool | str | None = None
    connect_timeout: float = 5.0
    timeout: float | None = 15.0
    pool_size: int = 10
    min_size: int = 1
    pool_timeout: float = 5.0
    max_idle_time: float = 300.0
    cleanup_timeout: float = 5.0
    statement_cache_size: int = 100
    server_settings: Mapping[str, str] = attrs.field(factory=dict, repr=_settings_repr, hash=False)
    #: run on each new connection with a handle that can execute SQL (``after_connect``)
    after_connect: Callable[[Any], Any] | None = attrs.field(default=None, hash=False, eq=False)
    #: libpq multi-host: every (host, port) tried in order (``host``/``port`` are the first); () = one host
    endpoints: tuple[tuple[str, int], ...] = ()
    #: libpq's ``target_session_attrs``: which of those servers a connection accepts (``None``: any)
    target_session_attrs: str | None = None

    def all_endpoints(self) -> tuple[tuple[str, int], ...]:
        """Every (host, port) a connection may be opened to, in the order tried."""
        return self.endpoints or ((self.host, self.port),)

    # -- connection poolers (pooler=, prepared_statements=, direct_url=) ---------------------------
    #: ``None`` (a session of its own per connection: direct, or a session-mode pooler) or
    #: ``"transaction"`` (a transaction-mode pooler: no session state is relied on across transactions)
    pooler: str | None = None
    #: under ``pooler="transaction"``: the pooler keeps protocol-level prepared statements
    #: (PgBouncer >= 1.21 ``max_prepared_statements``), so the driver's statement cache stays on
    prepared_statements: bool = False
    #: where what needs a real session goes (LISTEN, migrations): PostgreSQL itself, not the pooler
    direct: ConnectionSettings | None = attrs.field(default=None, hash=False, eq=False)
