"""Transaction control: ``BEGIN``, ``COMMIT``, savepoints, and the raw statements that end a transaction."""

from __future__ import annotations

import re

__all__ = (
    "SET_LOCAL_SQL",
    "begin_sql",
    "commit_rolled_back",
    "remark_sql",
    "transaction_control",
)

_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
    "read_uncommitted": "READ UNCOMMITTED",
}

#: raw statements that would end (or begin) a transaction
_TX_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"})
#: a statement's first two words, past blanks and ``--``/``/* */`` comments
_GAP = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)"
_FIRST_WORDS = re.compile(rf"{_GAP}*([A-Za-z_]+)(?:{_GAP}+([A-Za-z_]+))?", re.S)


#: a setting (parameter 1) set to a text (parameter 2) until the transaction ends, as SET LOCAL
#: (which takes no parameters): what ``repo.tenant`` sends; nothing of it outlives the transaction
SET_LOCAL_SQL = "SELECT set_config($1, $2, true)"


def begin_sql(isolation: str | None, read_only: bool) -> str:
    sql = "BEGIN"
    if isolation:
        sql += f" ISOLATION LEVEL {_ISOLATION[isolation]}"
    if read_only:
        sql += " READ ONLY"
    return sql


def remark_sql(name: str, released: bool) -> str:
    """Set savepoint ``name``; first release the previous one of that name if ``released`` is False."""
    return f"SAVEPOINT {name}" if released else f"RELEASE SAVEPOINT {name}; SAVEPOINT {name}"


def commit_rolled_back(status: str) -> bool:
    """PostgreSQL answers ``COMMIT`` in a failed transaction with the tag ``ROLLBACK``."""
    return status == "ROLLBACK"


def transaction_control(sql: str) -> str | None:
    m = _FIRST_WORDS.match(sql)
    first = m.group(1).upper() if m else ""
    second = (m.group(2) or "").upper() if m else ""
    if first in _TX_CONTROL or (first == "PREPARE" and second == "TRANSACTION"):
        return first
    return None
