"""Failover: which server a pool's connections go to, how a call learns that it stopped being the
primary, and the event the pool sends when it moves to a new one.

Only a pool whose repo asks for a writable server (``target_session_attrs=read-write`` or
``primary``) watches for failovers: with any other target a read-only server is acceptable, so a
read-only error is the caller's own, and the hosts may legitimately differ from one connection to
the next (``prefer-standby`` picks at random when no standby answers).

The pool (:mod:`._pool_upkeep`) keeps a :class:`FailoverState`; this module holds the pure parts:
naming a connection's server, telling a failover error from another, and the event record.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import attrs

from asyncecto.errors import (
    AsyncEctoError,
    CommitOutcomeUnknownError,
    ConnectionLostError,
    DatabaseError,
    FailoverError,
)

from ._errors import server_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._connection import PgConnection

__all__ = ("WRITABLE_TARGETS", "FailoverState", "PoolFailover", "classify", "note_ending", "server_of")

#: the targets that ask for the primary: only their pools watch for failovers
WRITABLE_TARGETS = frozenset({"read-write", "primary"})

#: the server is shutting down (fast or immediate shutdown) or crashed: 57P01 admin_shutdown,
#: 57P02 crash_shutdown, 57P03 cannot_connect_now
_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})
#: what the server says with 57P01 (a shutdown, or pg_terminate_backend: the same words)
_ADMIN_WORDS = "terminating connection due to administrator command"
#: read_only_sql_transaction
_READ_ONLY = "25006"
#: seconds after a server said it was shutting down during which a link to it lost without a word is
#: taken for the same shutdown (asyncpg may drop a FATAL that races the next statement)
_ENDING_WINDOW = 10.0


@attrs.frozen(slots=True)
class PoolFailover:
    """What the pool tells its listener (the repo's telemetry) when it moved to a new primary.

    :ivar old_server: the server (``host:port``) that stopped being the primary
    :ivar new_server: the server new connections reach now
    :ivar reason: ``"read_only"`` (the old one answered 25006 while read-only or in recovery) or
        ``"new_primary"`` (a new connection reached another server: the old one went away)
    :ivar drained: how many of the old server's connections were closed (idle) or marked to be
        closed at their checkin (in use)
    """

    old_server: str
    new_server: str
    reason: str
    drained: int


class FailoverState:
    """A pool's view of its primary.

    :ivar enabled: the repo asked for a writable server (:data:`WRITABLE_TARGETS`)
    :ivar current: the server the pool's connections go to (``None`` before the first)
    :ivar demoted: the server found read-only since the last move (its connections were drained)
    :ivar listener: called with a :class:`PoolFailover` on every move
    :ivar drained_before: connections already drained for ``demoted`` (counted in the event)
    :ivar ending: server -> when (``time.monotonic()``) it last said it was shutting down, and the SQLSTATE
    :ivar moves: how many times the pool moved to a new primary (a connection opened before a move
        that reaches the old server is not used)
    """

    __slots__ = ("current", "demoted", "drained_before", "enabled", "ending", "listener", "moves")

    def __init__(self, target: str | None) -> None:
        self.enabled = target in WRITABLE_TARGETS
        self.current: str | None = None
        self.demoted: str | None = None
        self.drained_before = 0
        self.moves = 0
        self.ending: dict[str, tuple[float, str | None]] = {}
        self.listener: Callable[[PoolFailover], Any] | None = None


def server_of(raw: Any) -> str:
    """The server an asyncpg connection reached, as the URL names it (``host:port`` or a socket path)."""
    addr = getattr(raw, "_addr", None)  # asyncpg: the (host, port) or the socket path it connected to
    if isinstance(addr, str):
        return addr
    if isinstance(addr, tuple) and len(addr) >= 2:
        return server_name(str(addr[0]), int(addr[1]))
    return "?"


def read_only_now(raw: Any) -> bool:
    """Whether the server reports (PostgreSQL 14+ sends both as they change) that it is in recovery
    or makes transactions read-only by default."""
    settings = raw.get_settings()
    return (
        getattr(settings, "in_hot_standby", None) == "on"
        or getattr(settings, "default_transaction_read_only", None) == "on"
    )


def _message(server: str, what: str) -> str:
    return f"the server {server} stopped being the primary during the call: {what}"


_FIX = (
    "run the call again: the pool now opens connections through the URL's host list to the new primary "
    "(target_session_attrs); repo.transaction(fn, retry=3) retries a transaction by itself"
)


def classify(
    conn: PgConnection, error: AsyncEctoError, state: FailoverState, read_only_seen: Callable[[PgConnection], None]
) -> AsyncEctoError:
    """``error`` as a :class:`FailoverError` when it says the connection's server stopped being the
    primary (see the class); else unchanged. ``read_only_seen(conn)`` is called when a read-only
    server is found, for the pool to drain it.

    A link lost without a word from the server is a FailoverError only when the connection was
    drained for a failover, or when its server said it was shutting down (on any session of the pool)
    within the last ``_ENDING_WINDOW`` seconds; else it stays a ``ConnectionLostError``."""
    if not isinstance(error, DatabaseError) or isinstance(error, FailoverError | CommitOutcomeUnknownError):
        return error
    if error.sqlstate == _READ_ONLY and read_only_now(conn.raw):
        read_only_seen(conn)
        return FailoverError(
            _message(conn.server, f"it is read-only now ({error.message})"),
            sqlstate=error.sqlstate,
            hint="the server is in recovery (a standby) or has default_transaction_read_only on",
            query=error.query,
            fix=_FIX,
            server=conn.server,
        )
    if not isinstance(error, ConnectionLostError):
        return error
    said = conn.tap.last_words if conn.tap is not None else None
    shutdown = (
        error.sqlstate in _SHUTDOWN or (said is not None and said[0] in _SHUTDOWN) or _ADMIN_WORDS in error.message
    )
    now = time.monotonic()
    sqlstate = _shutdown_state(error, said)
    ended_at, ended_with = state.ending.get(conn.server, (-_ENDING_WINDOW, None))
    if shutdown:
        state.ending[conn.server] = (now, sqlstate)
        what = "it ended the session as it shut down"
    elif conn.failed_over:
        what = "the pool had moved to a new primary"
    elif now - ended_at < _ENDING_WINDOW:
        # the same shutdown: the server's FATAL raced this session's next statement and asyncpg lost it
        what = "its link broke as the server shut down (it said so on another session just before)"
        sqlstate = sqlstate or ended_with
    else:
        return error
    return FailoverError(
        _message(conn.server, f"{what} ({error.message})"),
        sqlstate=sqlstate,
        hint=(
            "an administrator command (a shutdown for a failover or a restart, or pg_terminate_backend) "
            "ended the session; whatever the call's transaction did was rolled back"
        ),
        query=error.query,
        fix=_FIX,
        server=conn.server,
    )


def _shutdown_state(error: DatabaseError, said: tuple[str | None, str] | None) -> str | None:
    """The SQLSTATE the server ended the session with (57P01 …), over asyncpg's 08003 for the closed
    connection: from the FATAL message kept by the tap, or from its words, which only 57P01 says."""
    if said is not None and said[0]:
        return said[0]
    if error.sqlstate not in _SHUTDOWN and _ADMIN_WORDS in error.message:
        return "57P01"
    return error.sqlstate


def note_ending(state: FailoverState, conn: PgConnection) -> None:
    """``conn`` closed: if its server's last words were a shutdown, remember when (see :func:`classify`)."""
    said = conn.tap.last_words if conn.tap is not None else None
    if said is not None and (said[0] in _SHUTDOWN or _ADMIN_WORDS in said[1]):
        state.ending[conn.server] = (time.monotonic(), said[0] or "57P01")
