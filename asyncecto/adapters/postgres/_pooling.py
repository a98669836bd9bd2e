"""Behind a transaction-mode pooler (``pooler="transaction"``): what a statement may not rely on.

PgBouncer (``pool_mode = transaction``), Supavisor, RDS Proxy and Neon's pooler hand each
transaction (and each statement outside one) to whichever server connection is free, so nothing
set on a session survives to the next transaction, or worse, leaks into another client's. Here:

- :func:`session_operation` finds the statements that would change or need a session (a session
  advisory lock, a session-level ``SET``, ``set_config(…, false)``, ``LISTEN``), refused with
  :class:`~asyncecto.errors.UnsupportedInTransactionPoolingError` before anything is sent;
- :func:`begin_with_timeout` appends ``SET LOCAL statement_timeout`` to a ``BEGIN`` (one message,
  simple protocol: no extra round trip), so the repo's timeout is the server's in every transaction.
"""

from __future__ import annotations

import re

from asyncecto.errors import UnsupportedInTransactionPoolingError

__all__ = ("begin_with_timeout", "is_begin", "refuse", "session_operation", "timeout_ms")

#: blanks and comments between statements
_GAP = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_SESSION_LOCK = re.compile(r"\bpg_(?:try_)?advisory_(?:un)?lock(?:_shared|_all)?\s*\(", re.I)
_SESSION_SET = re.compile(
    rf"(?:^|;){_GAP}(?:set(?!{_GAP}(?:local|transaction|constraints)\b)\b|reset\b|discard\b)", re.I | re.S
)
_LISTEN = re.compile(rf"(?:^|;){_GAP}listen\b", re.I | re.S)
_SET_CONFIG = re.compile(r"\bset_config\s*\((?:[^()]|\([^()]*\))*,\s*(?:false|'f'|'false'|'off'|'0')\s*\)", re.I)
_BEGIN = re.compile(rf"{_GAP}(?:begin|start{_GAP}transaction)\b", re.I | re.S)

_FIX = (
    "give the repo direct_url= (a URL reaching PostgreSQL itself, not the pooler) and run it there, "
    "or use the transaction-scoped form inside repo.transaction()"
)


def session_operation(sql: str) -> tuple[str, str, str] | None:
    """``(operation, reason, fix)`` when ``sql`` needs or changes a session; ``None`` when it is
    transaction-safe. Substring tests first: ~0.3 µs for an ordinary statement."""
    text = sql.lower()
    if "advisory" in text and _SESSION_LOCK.search(sql):
        return (
            "a session advisory lock",
            "the lock stays on the server connection the pooler chose, which other clients then use, "
            "and the next statement (the unlock, say) may run on another one",
            "take a transaction-scoped lock inside repo.transaction(): pg_advisory_xact_lock(key) "
            "(released at COMMIT or ROLLBACK); or use the session lock on a repo without the pooler (direct_url)",
        )
    if "set_config" in text and _SET_CONFIG.search(sql):
        return (
            "set_config(..., false) (a session-level setting)",
            "the setting stays on the server connection the pooler chose, for other clients",
            "pass true as its third argument, set_config(name, value, true), inside repo.transaction(); "
            "or, for every connection, set it on the role or database (ALTER ROLE ... SET)",
        )
    if ("set" in text or "reset" in text or "discard" in text) and _SESSION_SET.search(sql):
        return (
            "a session-level SET, RESET or DISCARD",
            "it would change the server connection the pooler chose, which other clients then use, "
            "while this repo's next transaction may run on another one",
            "use SET LOCAL inside repo.transaction() (it ends with the transaction); for every "
            "connection, set it on the role or database (ALTER ROLE app SET search_path = ...)",
        )
    if "listen" in text and _LISTEN.search(sql):
        return (
            "LISTEN",
            "notifications are delivered to a session, and the pooler gives this one's server "
            "connection to other clients after each transaction",
            "use repo.listen(...) with direct_url= set: it listens on a connection to PostgreSQL itself",
        )
    return None


def refuse(sql: str) -> None:
    """Raise :class:`UnsupportedInTransactionPoolingError` if ``sql`` needs or changes a session."""
    found = session_operation(sql)
    if found is not None:
        operation, reason, fix = found
        raise UnsupportedInTransactionPoolingError(operation, reason, fix or _FIX, sql)


def timeout_ms(seconds: float | None) -> str:
    """``statement_timeout``'s value for ``seconds`` (``"0"``: no limit)."""
    return "0" if seconds is None else str(max(1, round(seconds * 1000)))


def is_begin(sql: str) -> bool:
    """Whether ``sql`` starts a transaction (``BEGIN …`` or ``START TRANSACTION …``)."""
    return _BEGIN.match(sql) is not None


def begin_with_timeout(sql: str, seconds: float | None) -> str:
    """``BEGIN …; SET LOCAL statement_timeout = '…'``: sent as one simple-protocol message, so the
    transaction gets the repo's timeout on the server without another round trip.

    >>> begin_with_timeout("BEGIN", 15.0)
    "BEGIN; SET LOCAL statement_timeout = '15000'"
    """
    return f"{sql}; SET LOCAL statement_timeout = '{timeout_ms(seconds)}'"
