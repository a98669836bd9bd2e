"""Keep the server's last words on a connection it closes between statements.

A session the server ends while no statement runs (``idle_in_transaction_session_timeout``,
``pg_terminate_backend``, a shutdown) sends a FATAL ``ErrorResponse`` and closes the socket.
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
            self._keep_fatal(data)
        self.protocol.data_received(data)

    def _keep_fatal(self, data: bytes) -> None:
        # one ErrorResponse at the start of the chunk: 'E', int32 length, then (code byte, C string)
        # fields ending with a NUL byte; only a FATAL one is kept
        size = int.from_bytes(data[1:5], "big") + 1
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
