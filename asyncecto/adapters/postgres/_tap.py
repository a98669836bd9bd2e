"""Keep the server's last words on a connection it closes between statements.

A session the server ends while no statement runs (``idle_in_transaction_session_timeout``,
``pg_terminate_backend``, a shutdown) sends a FATAL ``ErrorResponse`` and closes the socket; it may
come in the same read as the end of the statement before (a shutdown right after it).
asyncpg, idle at that moment, drops the message: the next statement only learns that the
connection is closed. :class:`Tap` sits between the transport and asyncpg's protocol, hands
every byte on unchanged, and keeps that FATAL message so the error raised at the next
statement can say why (and carry the SQLSTATE).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ("Tap",)

_ERROR = 0x45  # b"E": ErrorResponse
_FATAL = frozenset({"FATAL", "PANIC"})
#: the non-localized severity field of a FATAL ErrorResponse (PostgreSQL 9.6+)
_FATAL_FIELD = b"VFATAL\x00"


def _error_start(data: bytes) -> int:
    """Where the ErrorResponse of a chunk that holds a FATAL begins, when it follows other messages
    (a session ended just after a statement's ReadyForQuery: both in one read); -1 if not found.

    Walks the message frames from the chunk's start (a read usually starts at a message); else backs
    up from the severity fields (``S`` localized, then ``V``) to the ``E`` header.
    """
    pos, end = 0, len(data)
    while pos + 5 <= end:
        if data[pos] == _ERROR:
            return pos
        pos += 1 + int.from_bytes(data[pos + 1 : pos + 5], "big")
    at = data.find(_FATAL_FIELD)
    severity = data.rfind(b"S", 0, at)  # the fields start with S<severity>\0, just before V
    start = severity - 5
    return start if start >= 0 and data[start] == _ERROR else -1


class Tap(asyncio.Protocol):
    """A pass-through protocol in front of asyncpg's.

    :ivar last_words: ``(sqlstate, message)`` of the FATAL error the server sent, if it sent one
    """

    __slots__ = ("last_words", "protocol")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.last_words: tuple[str | None, str] | None = None

    @classmethod
    def install(cls, raw: Any) -> Tap | None:
        """Put a tap in front of ``raw``'s (an asyncpg connection's) protocol; ``None`` if it cannot."""
        transport = getattr(raw, "_transport", None)
        if transport is None or not hasattr(transport, "set_protocol"):
            return None
        tap = cls(transport.get_protocol())
        transport.set_protocol(tap)
        return tap

    def data_received(self, data: bytes) -> None:
        if data and data[0] == _ERROR:
            self._keep_fatal(data, 0)
        elif _FATAL_FIELD in data:  # rare (a C-speed search): the FATAL came after other messages
            self._keep_fatal(data, _error_start(data))
        self.protocol.data_received(data)

    def _keep_fatal(self, data: bytes, start: int) -> None:
        # one ErrorResponse at ``start``: 'E', int32 length, then (code byte, C string) fields ending
        # with a NUL byte; only a FATAL one is kept
        if start < 0:
            return
        size = int.from_bytes(data[start + 1 : start + 5], "big") + 1
        data = data[start:]
        if len(data) < size or size < 6:
            return
        fields: dict[bytes, str] = {}
        for part in bytes(data[5 : size - 1]).split(b"\0"):
            if part:
                fields[part[:1]] = part[1:].decode("utf-8", "replace")
        if fields.get(b"V", fields.get(b"S")) in _FATAL and b"M" in fields:
            self.last_words = (fields.get(b"C"), fields[b"M"])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover - made before the tap
        self.protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def eof_received(self) -> bool | None:
        result: bool | None = self.protocol.eof_received()
        return result
