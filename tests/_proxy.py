"""An in-process TCP proxy between a Repo and PostgreSQL, to break the link on cue (test support).

.. code-block:: python

    async with PgProxy(("127.0.0.1", 5432)) as proxy:  # or PgProxy("/socket/dir/.s.PGSQL.5432")
        repo = Repo(f"postgres://postgres@127.0.0.1:{proxy.port}/db")
        proxy.drop_after(sql_matches("COMMIT"), forward=True)

Modes (``proxy.mode``): ``pass`` forwards everything; ``blackhole`` keeps the sockets open and forwards
nothing (a half-open link); ``drop_after(pred, forward=…)`` parses the frontend (client → server)
messages and, on the first simple Query (``Q``) or Parse (``P``) whose SQL matches ``pred``, closes both
sockets of that link: after the message reached the server and the server answered (``forward=True``:
the server ran it, the client never hears back) or before it is sent (``forward=False``: the server never
sees it). The drop fires once, then the proxy is back to ``pass``. ``hold(pred)`` keeps the first matching
``Q``/``P`` message from the server (``await proxy.held.wait()`` until one is held) and forwards it, with
whatever the client sent after it, on ``proxy.release()``; a client that goes away meanwhile ends the link
(the server sees the socket close). ``reset()`` closes every open link now.

An ``SSLRequest`` (or ``GSSENCRequest``) is answered ``N`` by the proxy itself, so the client carries on in
plain text whatever its ``ssl`` setting, as long as that setting does not require TLS.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncecto.repo import build_config

__all__ = ("PgProxy", "sql_matches")

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_ANSWER_TIMEOUT = 5.0  # forward=True: how long to wait for the server's answer before dropping anyway
_LINK_ERRORS = (
    anyio.EndOfStream,
    anyio.IncompleteRead,  # receive_exactly met EOF: the client aborted mid-message
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)

Predicate = Callable[[str], bool]
Mode = Literal["pass", "blackhole", "drop_after", "hold"]


def sql_matches(keyword: str) -> Predicate:
    """A predicate true when the SQL holds ``keyword`` as a whole word, in any case."""
    pattern = re.compile(rf"\b{re.escape(keyword)}\b", re.IGNORECASE)
    return lambda sql: pattern.search(sql) is not None


def _sql_of(kind: bytes, body: bytes) -> str | None:
    """The SQL text of a ``Q`` (query\\0) or ``P`` (name\\0 query\\0 …) message, else None."""
    if kind == b"Q":
        return body.split(b"\0", 1)[0].decode("utf-8", "replace")
    if kind == b"P":
        parts = body.split(b"\0", 2)
        return parts[1].decode("utf-8", "replace") if len(parts) > 1 else ""
    return None


class _Link:
    def __init__(self, client: anyio.abc.SocketStream, server: anyio.abc.ByteStream) -> None:
        self.client = client
        self.server = server
        self.scope = anyio.CancelScope()
        self.swallow = False  # forward=True: the next server bytes end the link instead of being forwarded
        self.answered = anyio.Event()


class PgProxy:
    """``async with PgProxy(upstream) as proxy:`` listens on 127.0.0.1:``proxy.port``.

    :param upstream: ``(host, port)`` of the server, or the path of its unix socket
    :ivar drops: how many links a ``drop_after`` has cut
    :ivar links_opened: how many client connections were accepted
    :ivar held: set once a ``hold`` holds a message (a fresh event per ``hold``)
    """

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self.mode: Mode = "pass"
        self.port = 0
        self.drops = 0
        self.links_opened = 0
        self._predicate: Predicate | None = None
        self._forward = False
        self._links: set[_Link] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self.held: anyio.Event | None = None
        self._released: anyio.Event | None = None

    # -- modes ---------------------------------------------------------------------------
    def pass_through(self) -> None:
        self.mode, self._predicate = "pass", None

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def drop_after(self, predicate: Predicate, *, forward: bool) -> None:
        """Cut the link that sends the next ``Q``/``P`` message matching ``predicate`` (once)."""
        self.mode, self._predicate, self._forward = "drop_after", predicate, forward

    def hold(self, predicate: Predicate) -> anyio.Event:
        """Hold the next ``Q``/``P`` message matching ``predicate`` until :meth:`release` (once); the
        event :attr:`held`, set when a message is held."""
        self.held, self._released = anyio.Event(), anyio.Event()
        self.mode, self._predicate = "hold", predicate
        return self.held

    def release(self) -> None:
        """Forward the held message (and what followed it); the proxy is back to ``pass``."""
        if self._released is not None:
            self._released.set()

    def reset(self) -> None:
        """Close every open link now (the clients see EOF)."""
        for link in list(self._links):
            link.scope.cancel()

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> PgProxy:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._serve, listener)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def _serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        async with listener:
            await listener.serve(self._handle)

    async def _connect(self) -> anyio.abc.ByteStream:
        if isinstance(self.upstream, str):
            return await anyio.connect_unix(self.upstream)
        return await anyio.connect_tcp(*self.upstream)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        self.links_opened += 1
        async with client:
            try:
                server = await self._connect()
            except OSError:
                return  # the client sees EOF, as if the server refused
            async with server:
                link = _Link(client, server)
                self._links.add(link)
                try:
                    with link.scope:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(self._frontend, link)
                            tg.start_soon(self._backend, link)
                finally:
                    self._links.discard(link)

    # -- pumps: each ends the link (cancels its scope) when it returns -------------------------
    async def _frontend(self, link: _Link) -> None:
        reader = BufferedByteReceiveStream(link.client)
        try:
            while True:  # the startup packet: int32 length, int32 code (no type byte)
                head = await reader.receive_exactly(8)
                length, code = struct.unpack("!ii", head)
                rest = await reader.receive_exactly(length - 8)
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    await link.client.send(b"N")  # no encryption: the client sends its startup next
                    continue
                await self._send(link, head + rest)
                break
            while True:  # typed messages: a type byte, int32 length (counting itself), the body
                head = await reader.receive_exactly(5)
                kind, (length,) = head[:1], struct.unpack("!i", head[1:])
                body = await reader.receive_exactly(length - 4)
                sql = _sql_of(kind, body)
                predicate = self._predicate
                if self.mode == "drop_after" and sql is not None and predicate is not None and predicate(sql):
                    self.pass_through()
                    self.drops += 1
                    if self._forward:
                        link.swallow = True
                        await link.server.send(head + body)
                        with anyio.move_on_after(_ANSWER_TIMEOUT):
                            await link.answered.wait()  # the server has run it
                    return  # both sockets close
                if self.mode == "hold" and sql is not None and predicate is not None and predicate(sql):
                    self.pass_through()
                    await self._hold(link, reader)
                await self._send(link, head + body)
        except _LINK_ERRORS:
            pass
        finally:
            link.scope.cancel()

    async def _hold(self, link: _Link, reader: BufferedByteReceiveStream) -> None:
        """Wait for ``release()``, reading ahead meanwhile: a client gone away ends the link."""
        held, released = self.held, self._released
        assert held is not None and released is not None
        ahead = bytearray()

        async def read_ahead() -> None:
            try:
                while True:
                    ahead.extend(await link.client.receive())
            except _LINK_ERRORS:
                link.scope.cancel()

        held.set()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_ahead)
            await released.wait()
            tg.cancel_scope.cancel()
        reader.feed_data(ahead)

    async def _send(self, link: _Link, data: bytes) -> None:
        if self.mode != "blackhole":
            await link.server.send(data)

    async def _backend(self, link: _Link) -> None:
        try:
            while True:
                data = await link.server.receive()
                if link.swallow:
                    return  # dropped unseen: the client never learns the outcome
                if self.mode != "blackhole":
                    await link.client.send(data)
        except _LINK_ERRORS:
            pass
        finally:
            link.answered.set()
            link.scope.cancel()


def upstream_of(database_url: str) -> tuple[str, int] | str:
    """Where a proxy in front of ``database_url``'s server connects: (host, port) or a socket path."""
    config = build_config(database_url)
    if config.host.startswith("/"):
        return f"{config.host}/.s.PGSQL.{config.port}"
    return config.host, config.port


def url_through(database_url: str, *, port: int | None = None, user: str | None = None) -> str:
    """``database_url`` through a proxy on 127.0.0.1:``port`` (and/or as another ``user``)."""
    config = build_config(database_url)
    name = user if user is not None else (config.user or "")
    auth = quote(name, safe="") + (f":{quote(config.password, safe='')}" if config.password and user is None else "")
    host = "127.0.0.1" if port is not None else config.host
    where = f"{host}:{port if port is not None else config.port}"
    if host.startswith("/"):
        return f"postgres://{auth}@/{quote(config.database, safe='')}?host={quote(host)}&port={config.port}"
    return f"postgres://{auth}@{where}/{quote(config.database, safe='')}"
