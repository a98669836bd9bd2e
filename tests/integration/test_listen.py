"""LISTEN/NOTIFY (issue 9): ``repo.listen`` feeds, ``repo.notify``, and the listener connection's recovery.

Notifications need real commits, so these tests run outside the sandbox. Every wait is bounded and
ends on an observable condition (a notification, ``listener_stats()``), never on a bare sleep.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from asyncecto import Notification, Repo
from asyncecto.adapters.postgres._listen import PgListenConnection
from asyncecto.errors import ArgumentError, ConnectionLostError, DatabaseUnavailableError, RepoStateError
from asyncecto.repo import RepoConfig, Subscription, build_config
from asyncecto.repo._core import executor_of
from asyncecto.repo._notifications import listener_of

from ..conftest import APP_NAME

pytestmark = pytest.mark.no_sandbox

WAIT = 30.0  # generous: the machine may be busy; a passing test never waits this long


def _channel(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


async def _until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _next(feed: Subscription) -> Notification:
    async with asyncio.timeout(WAIT):
        return await anext(feed)


async def _take(feed: Subscription, count: int) -> list[Notification]:
    return [await _next(feed) for _ in range(count)]


async def test_notify_is_received(repo: Repo, admin: asyncpg.Connection) -> None:
    ch = _channel("events")
    async with repo.listen(ch) as feed:
        await repo.notify(ch, "hello")
        n = await _next(feed)
    assert isinstance(n, Notification)
    assert (n.channel, n.payload) == (ch, "hello")
    assert n.pid != repo.listener_stats()["pid"]  # the sender's backend, not the listener's
    with pytest.raises(AttributeError):
        n.payload = "changed"  # type: ignore[misc]


async def test_a_notification_from_another_session_is_received(repo: Repo, admin: asyncpg.Connection) -> None:
    ch = _channel("Mixed Case")  # a quoted identifier: the name matches exactly
    async with repo.listen(ch) as feed:
        await admin.execute("SELECT pg_notify($1, $2)", ch, "from admin")
        n = await _next(feed)
    assert (n.channel, n.payload, n.pid) == (ch, "from admin", admin.get_server_pid())


async def test_empty_payload_and_the_longest_payload(repo: Repo) -> None:
    ch = _channel("sizes")
    longest = "é" * 3999 + "x"  # 7999 bytes, the most PostgreSQL takes
    async with repo.listen(ch) as feed:
        await repo.notify(ch, "")
        await repo.notify(ch)
        await repo.notify(ch, longest)
        got = [n.payload for n in await _take(feed, 3)]
    assert got == ["", "", longest]


async def test_two_channels(repo: Repo) -> None:
    a, b = _channel("a"), _channel("b")
    async with repo.listen(a) as fa, repo.listen(b) as fb, repo.listen(a, b) as both:
        await repo.notify(a, "1")
        await repo.notify(b, "2")
        assert [(n.channel, n.payload) for n in await _take(both, 2)] == [(a, "1"), (b, "2")]
        assert (await _next(fa)).payload == "1"
        assert (await _next(fb)).payload == "2"
        assert fa.pending() == 0 and fb.pending() == 0
        assert repo.listener_stats()["channels"] == sorted([a, b])


async def test_two_subscribers_on_one_channel_each_get_every_notification(repo: Repo) -> None:
    ch = _channel("shared")
    async with repo.listen(ch) as one, repo.listen(ch) as two:
        assert repo.listener_stats()["subscribers"] == 2
        for i in range(5):
            await repo.notify(ch, str(i))
        assert [n.payload for n in await _take(one, 5)] == ["0", "1", "2", "3", "4"]
        assert [n.payload for n in await _take(two, 5)] == ["0", "1", "2", "3", "4"]


async def test_leaving_a_channel_unlistens_it(repo: Repo) -> None:
    a, b = _channel("stay"), _channel("leave")
    async with repo.listen(a) as stay:
        async with repo.listen(b):
            async with repo.listen(b):
                assert repo.listener_stats()["channels"] == sorted([a, b])
            assert b in repo.listener_stats()["channels"]  # one subscriber of b is left
        await _until(lambda: repo.listener_stats()["channels"] == [a], f"UNLISTEN {b}")
        stats = repo.listener_stats()
        assert stats["subscribers"] == 1 and stats["connected"]
        await repo.notify(b, "nobody listens")
        await repo.notify(a, "still here")
        assert (await _next(stay)).payload == "still here"
    await _until(lambda: repo.listener_stats()["channels"] == [], f"UNLISTEN {a}")
    assert repo.listener_stats()["subscribers"] == 0


async def test_the_listener_connects_lazily_on_its_own_connection(repo: Repo, admin: asyncpg.Connection) -> None:
    assert repo.listener_stats() == {
        "connected": False,
        "pid": None,
        "reconnects": 0,
        "channels": [],
        "subscribers": 0,
        "dropped": 0,
    }
    ch = _channel("lazy")
    before = repo.pool_stats()
    async with repo.listen(ch):
        pid = repo.listener_stats()["pid"]
        assert isinstance(pid, int)
        assert repo.pool_stats()["in_use"] == before["in_use"]  # not a pooled connection
        app = await admin.fetchval("SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid)
        assert app == APP_NAME  # opened with the repo's connection settings


async def test_notify_in_a_transaction_is_delivered_at_commit(repo: Repo, admin: asyncpg.Connection) -> None:
    ch = _channel("tx")
    async with repo.listen(ch) as feed:
        async with repo.transaction():
            await repo.notify(ch, "in transaction")
            # committed later than this one, so received after it: nothing was delivered before COMMIT
            await admin.execute("SELECT pg_notify($1, 'outside')", ch)
            assert (await _next(feed)).payload == "outside"
        assert (await _next(feed)).payload == "in transaction"


async def test_notify_in_a_rolled_back_transaction_is_never_delivered(repo: Repo) -> None:
    ch = _channel("rollback")
    async with repo.listen(ch) as feed:
        with pytest.raises(ZeroDivisionError):
            async with repo.transaction():
                await repo.notify(ch, "rolled back")
                1 / 0  # noqa: B018

        async def notify_then_roll_back(r: Repo) -> None:
            await r.notify(ch, "also rolled back")
            r.rollback()

        await repo.transaction(notify_then_roll_back)
        await repo.notify(ch, "committed")
        assert (await _next(feed)).payload == "committed"  # the first to arrive: the others never will
        assert feed.pending() == 0


async def test_a_full_queue_drops_the_oldest(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    ch = _channel("flood")
    async with repo.listen(ch, max_queue=2) as slow, repo.listen(ch) as fast:
        async with repo.transaction():  # one commit: delivered together, in order
            for i in range(5):
                await repo.notify(ch, str(i))
        assert [n.payload for n in await _take(fast, 5)] == ["0", "1", "2", "3", "4"]
        await _until(lambda: slow.dropped == 3, "the slow feed to drop 3")
        assert repo.listener_stats()["dropped"] == 3
        assert [n.payload for n in await _take(slow, 2)] == ["3", "4"]
    warnings = [r for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert len(warnings) == 1 and ch in warnings[0].getMessage()


async def test_notifications_resume_after_the_backend_is_killed(repo: Repo, admin: asyncpg.Connection) -> None:
    ch = _channel("killed")
    async with repo.listen(ch) as feed:
        await repo.notify(ch, "before")
        assert (await _next(feed)).payload == "before"
        old = repo.listener_stats()["pid"]
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", old)

        def back() -> bool:
            s = repo.listener_stats()
            return bool(s["connected"] and s["reconnects"] == 1 and s["channels"] == [ch])

        await _until(back, "the listener to reconnect and LISTEN again")
        assert repo.listener_stats()["pid"] != old
        await repo.notify(ch, "after")
        assert (await _next(feed)).payload == "after"
        listening = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", repo.listener_stats()["pid"]
        )
        assert listening == 1


def _url_via(config: RepoConfig, port: int) -> str:
    auth = quote(config.user or "", safe="") + (f":{quote(config.password, safe='')}" if config.password else "")
    return f"postgres://{auth}@127.0.0.1:{port}/{quote(config.database, safe='')}"


class _Forwarder:
    """A byte forwarder on 127.0.0.1:``port`` whose links can go silent (open, carrying nothing).

    tests/_proxy.py's ``blackhole`` mode does the same, but its link handler does not survive a
    client that aborts mid-read (an ``IncompleteRead`` escapes it), which is what the listener does.
    """

    def __init__(self, config: RepoConfig) -> None:
        self.config = config
        self.silent = False
        self.refuse = False  # new links are closed at once (the server is down)
        #: when set, server-to-client bytes go 8 KiB per this many seconds (a slow client link)
        self.throttle: float | None = None
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _Forwarder:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def blackhole(self) -> None:
        self.silent = True

    def pass_through(self) -> None:
        self.silent = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = self.config
        if self.refuse:
            writer.close()
            return
        try:
            if config.host.startswith("/"):
                up_reader, up_writer = await asyncio.open_unix_connection(f"{config.host}/.s.PGSQL.{config.port}")
            else:
                up_reader, up_writer = await asyncio.open_connection(config.host, config.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer, downstream=True))

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, downstream: bool = False) -> None:
        try:
            while data := await src.read(65536):
                while data and not self.silent:
                    throttle = self.throttle if downstream else None
                    size = 8192 if throttle is not None else len(data)
                    dst.write(data[:size])
                    data = data[size:]
                    await dst.drain()
                    if throttle is not None:
                        await asyncio.sleep(throttle)  # the link's pace, not a wait for a condition
        except OSError:
            pass
        finally:
            dst.close()


async def test_notifications_resume_after_a_silent_network_drop(database_url: str, repo: Repo) -> None:
    config = build_config(database_url)
    ch = _channel("silent")
    async with (
        _Forwarder(config) as proxy,
        Repo(_url_via(config, proxy.port), pool_size=1, connect_timeout=2.0) as proxied,
    ):
        listener = listener_of(executor_of(proxied))
        assert listener is not None
        listener.health_interval = 0.2
        listener.health_timeout = 2.0
        async with proxied.listen(ch) as feed:
            proxy.blackhole()  # the link stays open and carries nothing: only a health check notices
            await _until(lambda: not proxied.listener_stats()["connected"], "the health check to fail")
            proxy.pass_through()

            def back() -> bool:
                s = proxied.listener_stats()
                return bool(s["connected"] and s["reconnects"] >= 1 and s["channels"] == [ch])

            await _until(back, "the listener to reconnect through the proxy")
            await repo.notify(ch, "after the drop")  # sent around the proxy
            assert (await _next(feed)).payload == "after the drop"


async def test_a_new_subscriber_fails_fast_when_the_listener_cannot_connect(database_url: str) -> None:
    config = build_config(database_url)
    ch = _channel("down")
    async with _Forwarder(config) as proxy, Repo(_url_via(config, proxy.port), pool_size=1) as proxied:
        proxy.refuse = True
        with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
            async with proxied.listen(ch):
                pass
        with pytest.raises(DatabaseUnavailableError):
            await anext(proxied.listen(ch))
        assert proxied.listener_stats()["subscribers"] == 0
        proxy.refuse = False
        async with proxied.listen(ch) as feed:  # the worker kept trying
            await proxied.notify(ch, "up again")
            assert (await _next(feed)).payload == "up again"
        assert proxied.listener_stats()["reconnects"] == 0  # it never had a connection to lose


async def test_stop_ends_open_feeds_and_a_restarted_repo_listens_again(
    database_url: str, admin: asyncpg.Connection
) -> None:
    ch = _channel("stop")
    r = Repo(database_url, pool_size=1)
    await r.start()
    got: list[str] = []

    async def plain() -> None:
        async for n in r.listen(ch):
            got.append(n.payload)

    async def managed() -> None:
        async with r.listen(ch) as feed:
            async for n in feed:
                got.append(n.payload)

    tasks = [asyncio.create_task(plain()), asyncio.create_task(managed())]
    try:
        await _until(
            lambda: r.listener_stats()["subscribers"] == 2 and r.listener_stats()["channels"] == [ch], "LISTEN"
        )
        pid = r.listener_stats()["pid"]
        await r.notify(ch, "one")
        await _until(lambda: len(got) == 2, "both feeds to receive")
        await r.stop()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*tasks)  # both iterations ended, without an error
    finally:
        for t in tasks:
            t.cancel()
        await r.stop()
    assert got == ["one", "one"]
    assert r.listener_stats()["connected"] is False
    await _until_gone(admin, pid)
    with pytest.raises(RepoStateError, match="cannot listen: repo is closed"):
        r.listen(ch)

    async with r:
        async with r.listen(ch) as feed:
            await r.notify(ch, "after restart")
            assert (await _next(feed)).payload == "after restart"
        assert r.listener_stats()["reconnects"] == 0  # a fresh listener, not a reconnect


async def _until_gone(admin: asyncpg.Connection, pid: int) -> None:
    deadline = time.monotonic() + WAIT
    while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, f"backend {pid} still connected"
        await asyncio.sleep(0.02)


async def test_cancelling_a_reader_leaves_nothing_behind(repo: Repo) -> None:
    ch = _channel("cancel")

    async def reader() -> None:
        async for _ in repo.listen(ch):
            pass

    task = asyncio.create_task(reader())
    await _until(lambda: repo.listener_stats()["channels"] == [ch], "LISTEN")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert repo.listener_stats()["subscribers"] == 0
    await _until(lambda: repo.listener_stats()["channels"] == [], "UNLISTEN after the cancel")


async def test_a_plain_loop_left_by_break_unsubscribes(repo: Repo) -> None:
    ch = _channel("break")
    await repo.notify(ch, "not yet listening")  # nobody listens: lost
    received = []
    async with asyncio.timeout(WAIT):
        feed = repo.listen(ch)
        notifier = asyncio.create_task(_notify_when_listening(repo, ch))
        async for n in feed:
            received.append(n.payload)
            break
        await notifier
    del feed, n  # the feed's last references: it unsubscribes when collected
    assert received == ["first"]
    await _until(lambda: repo.listener_stats()["channels"] == [], "UNLISTEN after the break")


async def _notify_when_listening(repo: Repo, ch: str) -> None:
    await _until(lambda: ch in repo.listener_stats()["channels"], "LISTEN")
    await repo.notify(ch, "first")


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("", "a channel must be a non-empty str, got ''"),
        (None, "a channel must be a non-empty str, got None"),
        (b"events", "a channel must be a non-empty str, got b'events'"),
        ("x" * 64, "is 64 bytes long, over the database's limit of 63 bytes"),
        ("é" * 32, "is 64 bytes long, over the database's limit of 63 bytes"),
        ("a\x00b", "contains a NUL character"),
    ],
)
async def test_bad_channels_are_refused(repo: Repo, channel: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        repo.listen(channel)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=re.escape(message)):
        await repo.notify(channel, "x")  # type: ignore[arg-type]
    assert repo.listener_stats()["subscribers"] == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"bytes", r"payload must be a str, got bytes b'bytes'; encode it first, e.g. json.dumps\(value\)"),
        ({"id": 1}, r"payload must be a str, got dict \{'id': 1\}"),
        (None, "payload must be a str, got NoneType None"),
        ("x" * 8000, "payload is 8000 bytes long .*at most 7999 bytes: store the data in a table"),
        ("é" * 4000, "payload is 8000 bytes long"),
        ("a\x00b", "contains a NUL character"),
    ],
)
async def test_bad_payloads_are_refused(repo: Repo, payload: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        await repo.notify("events", payload)  # type: ignore[arg-type]


async def test_bad_options_and_states(repo: Repo, database_url: str) -> None:
    with pytest.raises(ArgumentError, match="max_queue must be a positive integer, got 0"):
        repo.listen("events", max_queue=0)
    with pytest.raises(RepoStateError, match=r"cannot listen: repo is new\n\nfix: start it first"):
        Repo(database_url).listen("events")
    ch = _channel("twice")
    async with repo.listen(ch) as feed:
        with pytest.raises(ArgumentError, match="was already started"):
            await feed.__aenter__()
        first = asyncio.create_task(anext(feed))
        await asyncio.sleep(0)  # the task's first step runs now: it waits on the empty feed
        with pytest.raises(ArgumentError, match="is already being read by another task"):
            await anext(feed)
        await repo.notify(ch, "to the first reader")
        async with asyncio.timeout(WAIT):
            assert (await first).payload == "to the first reader"


async def test_stop_ends_the_feeds_while_a_crashed_listener_waits_to_restart(database_url: str) -> None:
    r = Repo(database_url, pool_size=1)
    await r.start()
    ch = _channel("crashed")
    ended = asyncio.Event()

    async def reader() -> None:
        async for _ in r.listen(ch):
            pass
        ended.set()

    task = asyncio.create_task(reader())
    try:
        await _until(lambda: r.listener_stats()["channels"] == [ch], "LISTEN")
        supervisor, listener = executor_of(r)._supervisor, listener_of(executor_of(r))
        assert supervisor is not None and listener is not None
        supervisor.min_backoff = supervisor.max_backoff = 3600.0  # its restart would come long after the test

        async def crash(conn: object, wanted: set[str]) -> bool:
            raise RuntimeError("the worker crashes")

        listener._sync = crash  # type: ignore[method-assign]
        listener._changed.set()  # the worker wakes and crashes; the supervisor sleeps before restarting it
        await _until(lambda: r.supervisor_restarts.get("notifications") == 1, "the worker to crash")
        async with asyncio.timeout(WAIT):
            await r.stop()
            await task  # the iteration ended, without an error
        assert ended.is_set()
        assert r.listener_stats()["subscribers"] == 0
    finally:
        task.cancel()
        await r.stop()


class _DiesMidCommand:
    """An asyncpg connection whose backend died as LISTEN/UNLISTEN began: asyncpg has read the
    backend's FATAL (it waits for a ReadyForQuery that never comes) and refuses the next command
    with ``InternalClientError``; the socket then closes."""

    def __init__(self, raw: asyncpg.Connection) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    async def _dies(self, channel: str, callback: object) -> None:
        self._raw.terminate()
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")

    add_listener = remove_listener = _dies


async def test_a_backend_dying_mid_command_is_a_lost_link_not_a_crash(repo: Repo) -> None:
    conn = await executor_of(repo).adapter.open_listener(lambda channel, payload, pid: None, lambda: None)
    assert isinstance(conn, PgListenConnection)
    conn.raw = _DiesMidCommand(conn.raw)
    with pytest.raises(ConnectionLostError, match="connection unusable"):
        await conn.listen("events", WAIT)
    assert conn.is_closed()

    listener = listener_of(executor_of(repo))
    assert listener is not None
    ch, other = _channel("dies"), _channel("dies_new")
    async with repo.listen(ch) as feed:

        def wound() -> None:  # the next LISTEN or UNLISTEN meets the dead backend
            assert isinstance(listener._conn, PgListenConnection)
            listener._conn.raw = _DiesMidCommand(listener._conn.raw)

        wound()
        async with repo.listen(other) as second:  # LISTEN fails: the worker reconnects, LISTENs both
            assert repo.listener_stats()["reconnects"] == 1
            await repo.notify(other, "to the second")
            assert (await _next(second)).payload == "to the second"
            wound()
        await _until(  # UNLISTEN failed: reconnected again, listening only to what is still wanted
            lambda: repo.listener_stats()["reconnects"] == 2 and repo.listener_stats()["channels"] == [ch],
            "the listener to reconnect after the failed UNLISTEN",
        )
        await repo.notify(ch, "still here")
        assert (await _next(feed)).payload == "still here"
    assert repo.supervisor_restarts["notifications"] == 0  # the worker never crashed


async def test_two_tasks_starting_one_plain_feed_the_second_is_refused(repo: Repo) -> None:
    ch = _channel("two_starts")
    feed = repo.listen(ch)
    first = asyncio.create_task(anext(feed))  # runs first: it waits for LISTEN inside its first step
    second = asyncio.create_task(anext(feed))
    try:
        async with asyncio.timeout(WAIT):
            with pytest.raises(ArgumentError, match="is already being read by another task"):
                await second
        await _until(lambda: repo.listener_stats()["channels"] == [ch], "LISTEN for the first reader")
        await repo.notify(ch, "to the first reader")
        async with asyncio.timeout(WAIT):
            assert (await first).payload == "to the first reader"
        assert repo.listener_stats()["subscribers"] == 1
    finally:
        first.cancel()
        feed.close()
    assert repo.listener_stats()["subscribers"] == 0


async def test_a_burst_of_notifications_does_not_fail_the_health_check(
    database_url: str, repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    config = build_config(database_url)
    ch, count = _channel("burst"), 500
    async with (
        _Forwarder(config) as proxy,
        Repo(_url_via(config, proxy.port), pool_size=1) as proxied,
    ):
        listener = listener_of(executor_of(proxied))
        assert listener is not None
        listener.health_interval = 0.05  # a health check is in flight during the whole burst
        listener.health_timeout = 1.0
        async with proxied.listen(ch, max_queue=count) as feed:
            # ~1 MB behind a ~400 KB/s link: every SELECT 1 reply waits seconds behind notifications
            proxy.throttle = 0.02
            await repo.query(
                "SELECT count(pg_notify($1, lpad(g::text, 2000, '.'))) FROM generate_series(1, $2) g", [ch, count]
            )
            await _until(
                lambda: feed.pending() == count or proxied.listener_stats()["reconnects"] > 0,
                "the burst to arrive",
            )
            assert proxied.listener_stats()["reconnects"] == 0
            assert feed.pending() == count and feed.dropped == 0
    assert not [r for r in caplog.records if "health check failed" in r.getMessage()]


async def test_a_feed_made_before_a_restart_starts_on_the_restarted_repo(database_url: str) -> None:
    r = Repo(database_url, pool_size=1)
    ch = _channel("before_restart")
    await r.start()
    try:
        plain, managed, early = r.listen(ch), r.listen(ch), r.listen(ch)
        await r.stop()
        with pytest.raises(RepoStateError, match="cannot listen: repo is closed"):
            await anext(early)  # true: it is
        await r.start()
        async with managed:
            nxt = asyncio.create_task(anext(plain))
            await _until(lambda: r.listener_stats()["subscribers"] == 2, "both feeds to subscribe")
            await r.notify(ch, "after the restart")
            assert (await _next(managed)).payload == "after the restart"
            async with asyncio.timeout(WAIT):
                assert (await nxt).payload == "after the restart"
        plain.close()
    finally:
        await r.stop()
