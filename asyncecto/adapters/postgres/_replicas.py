"""What read replicas need from PostgreSQL: WAL positions (LSNs) as integers.

- the primary's position after a write: ``pg_current_wal_insert_lsn()`` (the insert position, at or past
  every commit record made so far, also under ``synchronous_commit=off`` where the *write* position
  ``pg_current_wal_lsn()`` may still be behind a commit that has returned);
- a standby's replayed position: ``pg_last_wal_replay_lsn()`` (``NULL`` on a server that is not in
  recovery: a promoted standby, or a primary given as a replica).

An LSN ``X/Y`` (two hexadecimal halves) is the 64-bit integer ``X << 32 | Y``: positions compare as integers,
and their difference is a distance in bytes of WAL.
"""

from __future__ import annotations

from typing import Any

__all__ = ("PgReplication", "parse_lsn")

_WRITE_POSITION_SQL = "SELECT pg_current_wal_insert_lsn()::text"
_REPLAY_POSITION_SQL = "SELECT pg_last_wal_replay_lsn()::text, pg_is_in_recovery()"


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` → ``0x16B374D848``."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class PgReplication:
    """The adapter's replication capability (``PostgresAdapter.replication``)."""

    async def write_position(self, conn: Any, timeout: float | None) -> int:
        """The primary's WAL insert position now, on ``conn`` (one round trip)."""
        row = await conn.fetchrow(_WRITE_POSITION_SQL, (), timeout)
        return parse_lsn(row[0])

    async def replay_position(self, conn: Any, timeout: float | None) -> int | None:
        """The WAL position a standby has replayed, on ``conn``; ``None`` when the server is not in recovery
        (it has all it wrote: every read-your-writes wait is over)."""
        row = await conn.fetchrow(_REPLAY_POSITION_SQL, (), timeout)
        if not row[1] or row[0] is None:
            return None
        return parse_lsn(row[0])
