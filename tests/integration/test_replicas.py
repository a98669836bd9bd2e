"""Read replicas (issue 20) against real streaming standbys (``tests/_replica.py``): reads land on a
replica, round robin over two, read-your-writes holds under lag, a replica that dies is taken out and
comes back, and what must run on the primary does.

Which server served a read is seen three ways: the telemetry event's ``replica`` (host:port), the
server's own answer (``inet_server_port()``, ``pg_is_in_recovery()``), and ``repo.replica_stats()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from asyncecto import Multi, Repo, belongs_to, has_many, schema
from asyncecto.query import fragment, from_, lock, preload, where
from asyncecto.repo._core import executor_of
from asyncecto.repo._routing import ReplicaEvent, Router
from asyncecto.repo._telemetry import QueryEvent

from .._cancellers import CANCELLERS, cancel_with
from .._replica import Replication, Standby, unavailable_reason

pytestmark = pytest.mark.no_sandbox  # private servers, real commits

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS replica_rows (id bigserial PRIMARY KEY, tag text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS replica_owners (id bigserial PRIMARY KEY, name text);"
    "CREATE TABLE IF NOT EXISTS replica_pets (id bigserial PRIMARY KEY, name text, owner_id bigint);"
    "CREATE TABLE IF NOT EXISTS replica_toys (id bigserial PRIMARY KEY, name text, owner_id bigint)"
)


@schema("replica_rows")
class Row:
    tag: str | None = None


@schema("replica_owners")
class Owner:
    name: str | None = None
    pets: list[Pet] = has_many("Pet")
    toys: list[Toy] = has_many("Toy")


@schema("replica_pets")
class Pet:
    name: str | None = None
    owner: Owner | None = belongs_to(Owner)
    if TYPE_CHECKING:
        owner_id: int | None = None


@schema("replica_toys")
class Toy:
    name: str | None = None
    owner: Owner | None = belongs_to(Owner)
    if TYPE_CHECKING:
        owner_id: int | None = None


@pytest.fixture(scope="module")
def rep() -> Iterator[Replication]:
    """A private primary and two streaming standbys for the module (skipped, naming what to install)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    r = Replication.launch(standbys=2, max_connections=40)
    try:
        yield r
    finally:
        r.destroy()


@pytest.fixture
async def servers(rep: Replication) -> AsyncIterator[Replication]:
    """The servers, running, replaying and caught up with the table in place (again after a test stopped one)."""
    for standby in rep.standbys:
        if not standby.running:
            await standby.start()
        await standby.wait_ready()
        if await standby.replay_paused():
            await standby.resume_replay()
    await rep.primary.execute(TABLE_DDL)
    await rep.wait_replayed()
    yield rep
    for standby in rep.standbys:
        if not standby.running:
            await standby.start()
        if await standby.replay_paused():
            await standby.resume_replay()


@pytest.fixture
async def make_repo(servers: Replication) -> AsyncIterator[Callable[..., Awaitable[Repo]]]:
    repos: list[Repo] = []

    async def make(replicas: list[Standby] | None = None, **options: Any) -> Repo:
        standbys = servers.standbys[:1] if replicas is None else replicas
        options.setdefault("server_settings", {"application_name": "ae-replicas"})
        options.setdefault("pool_size", 3)
        repo = Repo(servers.primary.url, replicas=[s.url for s in standbys], **options)
        await repo.start()
        repos.append(repo)
        return repo

    yield make
    for repo in repos:
        await repo.stop(5)


class Seen:
    """The telemetry events of a repo: which server served each statement."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.events: list[QueryEvent] = []
        repo.telemetry.attach(self.events.append)

    async def servers(self) -> list[str | None]:
        await self.repo.telemetry.flush()
        out = [e.replica for e in self.events]
        self.events.clear()
        return out


def port_of(standby: Standby) -> str:
    return f"127.0.0.1:{standby.port}"


async def server_port(repo: Repo, **options: Any) -> tuple[int, bool]:
    """(inet_server_port(), pg_is_in_recovery()) of the server a raw read ran on."""
    result = await repo.query("SELECT inet_server_port(), pg_is_in_recovery()", **options)
    port, recovery = result.rows[0]
    return int(port), bool(recovery)


async def wait_for(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > within:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)


# -- where reads go --------------------------------------------------------------------------------
async def test_reads_land_on_the_replica(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo(read_your_writes=False)
    seen = Seen(repo)
    tag = uuid.uuid4().hex
    await servers.primary.execute("INSERT INTO replica_rows (tag) VALUES ($1)", tag)
    await servers.wait_replayed()

    rows = await repo.all(from_(Row) | where(tag=tag))
    assert [r.tag for r in rows] == [tag]
    assert (await repo.get_by(Row, tag=tag)) is not None
    assert await repo.exists(from_(Row) | where(tag=tag))
    assert await repo.aggregate(from_(Row) | where(tag=tag), "count") == 1
    assert (await repo.get(Row, rows[0].id)) == rows[0]
    assert await seen.servers() == [port_of(standby)] * 5

    # the server itself says so: raw SQL runs on a replica only when asked
    assert await server_port(repo, replica=True) == (standby.port, True)
    assert await server_port(repo) == (servers.primary.port, False)
    assert await seen.servers() == [port_of(standby), None]
    stats = repo.replica_stats()
    assert [s["replica"] for s in stats] == [port_of(standby)] and stats[0]["healthy"] is True
    assert stats[0]["reads"] == 6 and stats[0]["pool"]["in_use"] == 0


async def test_round_robin_over_two_replicas(servers: Replication, make_repo: Any) -> None:
    first, second = servers.standbys
    repo = await make_repo(replicas=[first, second])
    seen = Seen(repo)
    ports = [(await server_port(repo, replica=True))[0] for _ in range(4)]
    assert ports == [first.port, second.port, first.port, second.port]
    for _ in range(4):
        await repo.all(from_(Row) | where(tag="none"))
    served = await seen.servers()
    assert served[4:] == [port_of(first), port_of(second)] * 2
    assert [s["reads"] for s in repo.replica_stats()] == [4, 4]


async def test_what_runs_on_the_primary(servers: Replication, make_repo: Any) -> None:
    repo = await make_repo()
    seen = Seen(repo)
    await repo.all(from_(Row), replica=False)
    with repo.primary():
        await repo.all(from_(Row))
        assert await server_port(repo) == (servers.primary.port, False)
        assert (await server_port(repo, replica=True))[1] is True  # the call's own option wins
    await repo.all(from_(Row) | lock("FOR UPDATE"))
    await repo.all(from_(Row) | lock("FOR SHARE"), replica=True)  # a standby refuses row locks: the primary
    async with repo.transaction():
        await repo.all(from_(Row))
        assert await server_port(repo, replica=True) == (servers.primary.port, False)  # inside: the primary
        async for _ in repo.stream(from_(Row)):
            pass
    async with repo.checkout():
        await repo.all(from_(Row))
    await repo.insert(Row(tag="primary-only"))
    served = await seen.servers()
    assert [s for s in served if s is not None] == [port_of(servers.standbys[0])], served
    assert repo.replica_stats()[0]["reads"] == 1


async def test_preloads_and_multi(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo(read_your_writes=False)
    seen = Seen(repo)
    changes = await repo.transaction(
        Multi.new()
        | Multi.insert("owner", Owner(name="ann"))
        | Multi.run("pets", lambda r, c: r.insert(Pet(name="rex", owner_id=c["owner"].id)))
    )
    owner = changes["owner"]
    await repo.insert(Toy(name="ball", owner_id=owner.id))
    assert set(await seen.servers()) == {None}  # the Multi's statements and the insert: the primary
    await servers.wait_replayed()

    loaded = await repo.all(from_(Owner) | where(id=owner.id) | preload("pets", "toys"))  # parallel preloads
    assert [p.name for p in loaded[0].pets] == ["rex"] and [t.name for t in loaded[0].toys] == ["ball"]
    again = await repo.preload(owner, "pets")
    assert [p.name for p in again.pets] == ["rex"]
    assert await seen.servers() == [port_of(standby)] * 4


async def test_the_write_position_is_sampled_not_asked_per_write(servers: Replication, make_repo: Any) -> None:
    repo = await make_repo()
    router = executor_of(repo).router
    assert router is not None
    before = router.samples
    for i in range(40):
        await repo.insert(Row(tag=f"many-{i}"))
    await asyncio.sleep(router.sample_gap * 3)
    taken = router.samples - before
    assert 1 <= taken < 40, taken  # coalesced: at most one sample per gap, however many writes
    assert router.sample is not None and router.primary_lsn > 0


# -- read-your-writes ---------------------------------------------------------------------------------
async def test_read_your_writes_under_lag(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo()
    seen = Seen(repo)
    await standby.pause_replay()
    row = await repo.insert(Row(tag="mine"))

    # this context wrote: its reads stay on the primary and see the write
    assert (await repo.get(Row, row.id)) == row
    assert [r.id for r in await repo.all(from_(Row) | where(tag="mine"))] == [row.id]
    assert await seen.servers() == [None, None, None]  # the insert, then two reads

    async def elsewhere() -> Any:  # another request: no write of its own, the (lagging) replica serves it
        return await repo.get(Row, row.id)

    other = asyncio.create_task(elsewhere(), context=contextvars.Context())
    assert await other is None
    assert await repo.get(Row, row.id, replica=True) is None  # forced onto the replica: not there yet
    assert await seen.servers() == [port_of(standby)] * 2

    # a committed transaction counts as a write too
    async with repo.transaction():
        await repo.insert(Row(tag="mine-in-txn"))
    assert await repo.get_by(Row, tag="mine-in-txn") is not None

    await standby.resume_replay()
    await standby.wait_replayed()
    await asyncio.sleep(lsn_age())
    await seen.servers()
    assert (await repo.get(Row, row.id)) == row  # replayed: back on the replica
    assert await seen.servers() == [port_of(standby)]
    assert repo.replica_stats()[0]["replay_lsn"] is not None


def lsn_age() -> float:
    """Long enough for the repo to ask a replica its replayed position again."""
    return Router.lsn_max_age * 2


async def test_read_your_writes_window_is_bounded(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo(read_your_writes=0.3)
    seen = Seen(repo)
    await standby.pause_replay()
    row = await repo.insert(Row(tag="bounded"))
    assert (await repo.get(Row, row.id)) == row
    await asyncio.sleep(0.4)
    assert (await repo.get(Row, row.id)) is None  # past the window: the replica again, lag and all
    assert (await seen.servers())[1:] == [None, port_of(standby)]

    off = await make_repo(read_your_writes=False)
    seen_off = Seen(off)
    row = await off.insert(Row(tag="off"))
    assert (await off.get(Row, row.id)) is None
    assert await seen_off.servers() == [None, port_of(standby)]


async def test_lag_is_reported(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo()
    seen = Seen(repo)
    await standby.pause_replay()
    await repo.insert(Row(tag="lagging"))  # the sampler reads the primary's position after it

    async def lagging() -> bool:
        lag = repo.replica_stats()[0]["lag_bytes"]
        return lag is not None and lag > 0

    await wait_for(lagging, 5, "the replica's lag known and > 0 (refreshed every lag_refresh)")
    await repo.all(from_(Row) | where(tag="none"), replica=True)
    await repo.telemetry.flush()
    event = seen.events[-1]
    assert event.replica == port_of(standby) and event.replica_lag is not None and event.replica_lag > 0
    await standby.resume_replay()
    await standby.wait_replayed()

    async def caught_up() -> bool:
        return bool(repo.replica_stats()[0]["lag_bytes"] == 0)

    await wait_for(caught_up, 5, "the lag back to 0 after replay")


# -- failures -----------------------------------------------------------------------------------------
async def test_a_stopped_replica_is_taken_out_and_comes_back(servers: Replication, make_repo: Any) -> None:
    first, second = servers.standbys
    repo = await make_repo(replicas=[first, second])
    changes: list[ReplicaEvent] = []
    repo.replica_events.attach(changes.append)
    seen = Seen(repo)
    for _ in range(2):
        await repo.all(from_(Row) | where(tag="x"))  # a connection open on each
    await second.stop("fast")

    for _ in range(6):  # every read succeeds: the failed one is retried on the other replica
        assert await repo.all(from_(Row) | where(tag="x")) == []
    served = await seen.servers()
    assert served[2:] == [port_of(first)] * 6, served
    stats = repo.replica_stats()
    assert stats[1]["healthy"] is False and stats[1]["taken_out"] == 1 and stats[1]["last_error"]
    assert [(e.name[1:], e.replica) for e in changes] == [(("replica", "down"), port_of(second))]

    await first.stop("fast")  # no replica left: the primary serves
    assert await repo.all(from_(Row) | where(tag="x")) == []
    assert await server_port(repo, replica=True) == (servers.primary.port, False)
    assert [s["healthy"] for s in repo.replica_stats()] == [False, False]

    await first.start()
    await second.start()

    async def both_back() -> bool:
        return all(s["healthy"] for s in repo.replica_stats())

    await wait_for(both_back, 15, "both replicas back in rotation")
    assert sorted(e.name[2] for e in changes) == ["down", "down", "up", "up"]
    await seen.servers()
    ports = {(await server_port(repo, replica=True))[0] for _ in range(2)}
    assert ports == {first.port, second.port}


async def test_replica_down_at_start(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[1]
    await standby.stop("fast")
    repo = await make_repo(replicas=[standby])  # starts: the replica starts out of rotation
    assert repo.replica_stats()[0]["healthy"] is False
    assert await server_port(repo, replica=True) == (servers.primary.port, False)
    await standby.start()

    async def back() -> bool:
        return bool(repo.replica_stats()[0]["healthy"])

    await wait_for(back, 15, "the replica back in rotation")
    assert await server_port(repo, replica=True) == (standby.port, True)


# -- cancellation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["asyncio.timeout", "task.cancel", "anyio.move_on_after", "anyio.CancelScope.cancel"])
async def test_cancelled_read_on_a_replica_leaves_nothing_checked_out(
    servers: Replication, make_repo: Any, how: str
) -> None:
    assert how in CANCELLERS
    standby = servers.standbys[0]
    app = f"ae-rep-cancel-{uuid.uuid4().hex[:8]}"
    repo = await make_repo(server_settings={"application_name": app})
    tag = f"slow-{uuid.uuid4().hex}"
    await servers.primary.execute("INSERT INTO replica_rows (tag) VALUES ($1)", tag)  # a row to sleep on
    await servers.wait_replayed()
    q = from_(Row) | where(tag=tag) | where(lambda r: fragment("pg_sleep(?) IS NOT NULL", 5.0))

    async def slow_read() -> None:
        await repo.all(q)

    await cancel_with(how, slow_read, 0.3)

    async def settled() -> bool:
        stats = repo.replica_stats()[0]["pool"]
        busy = [a for a in await standby.activity(app) if a["state"] == "active"]
        return stats["in_use"] == 0 and repo.pool_stats()["in_use"] == 0 and not busy

    await wait_for(settled, 10, "the replica's connection back in its pool and its statement cancelled")
    assert repo.replica_stats()[0]["healthy"] is True
    assert await repo.all(from_(Row) | where(tag="after-cancel")) == []  # the pool still serves


async def test_a_read_whose_replica_session_ends_is_retried(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    app = f"ae-rep-term-{uuid.uuid4().hex[:8]}"
    repo = await make_repo(server_settings={"application_name": app})
    changes: list[ReplicaEvent] = []
    repo.replica_events.attach(changes.append)
    seen = Seen(repo)
    read = asyncio.create_task(repo.query("SELECT inet_server_port() FROM pg_sleep(1)", replica=True))

    async def running() -> bool:
        return any(a["state"] == "active" for a in await standby.activity(app))

    await wait_for(running, 5, "the read running on the standby")
    for pid in await standby.backend_pids(app):
        await standby.terminate(pid)  # 57P01 on the replica's session
    assert (await read).rows == [(servers.primary.port,)]  # retried, on the primary (the only replica is out)
    served = await seen.servers()
    assert served == [port_of(standby), None], served
    assert repo.replica_stats()[0]["taken_out"] == 1
    assert [e.name[2] for e in changes][:1] == ["down"]

    async def back() -> bool:
        return bool(repo.replica_stats()[0]["healthy"])

    await wait_for(back, 10, "the replica back in rotation (the server never went away)")
    assert await server_port(repo, replica=True) == (standby.port, True)


async def test_every_context_reads_its_own_writes_under_load(servers: Replication, make_repo: Any) -> None:
    repo = await make_repo(replicas=servers.standbys, pool_size=6, replica_pool_size=4)
    missing: list[int] = []

    async def client(n: int) -> None:
        for i in range(8):
            row = await repo.insert(Row(tag=f"load-{n}-{i}"))
            if await repo.get(Row, row.id) is None:
                missing.append(row.id or 0)
            async with repo.transaction():
                other = await repo.insert(Row(tag=f"load-txn-{n}-{i}"))
            if await repo.get_by(Row, tag=other.tag) is None:
                missing.append(other.id or 0)

    async with asyncio.TaskGroup() as tg:
        for n in range(20):
            tg.create_task(client(n))
    assert missing == []
    await servers.wait_replayed()
    await asyncio.sleep(lsn_age())
    stats = repo.replica_stats()
    assert all(s["healthy"] for s in stats) and all(s["pool"]["in_use"] == 0 for s in stats)
    assert repo.pool_stats()["in_use"] == 0


async def test_stop_and_start_again(servers: Replication, make_repo: Any) -> None:
    standby = servers.standbys[0]
    repo = await make_repo()
    assert await server_port(repo, replica=True) == (standby.port, True)
    await repo.stop(5)
    assert repo.replica_stats() == []
    await repo.start()
    assert await server_port(repo, replica=True) == (standby.port, True)
    assert repo.replica_stats()[0]["reads"] == 1  # a new router: counters start afresh
