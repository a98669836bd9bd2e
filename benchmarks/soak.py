"""Ledger soak: 64 tasks move money under random cancellations, backend kills and restarts.

It starts a private PostgreSQL on a free port (``tests/_cluster.py``: initdb from the machine's
binaries, or pgserver's), never the shared server, and runs for ``--duration`` seconds:

- workers: 40 % ``async with repo.transaction()`` (two UPDATEs in id order and the journal
  INSERT in a savepoint; 5 % also try a duplicate journal INSERT in a nested transaction and
  catch its error), 30 % ``Multi``, 20 % SERIALIZABLE ``repo.transaction(fn, retry=3)``, 10 %
  ``repo.stream`` over the accounts in a transaction (its sum must be the total) then ``preload``
  of two associations (parallel children);
- each operation is cancelled with probability 8 % by each of ``anyio.move_on_after``,
  ``anyio.fail_after``, ``CancelScope.cancel()`` from another task, ``asyncio.timeout`` and
  ``task.cancel()`` of a sub-task, after U(0, 20 ms) or (half the time) U(0, 200 ms), so that the
  cancellations land in every phase, the pool wait as much as BEGIN, statements and COMMIT;
- chaos: ``pg_terminate_backend`` of a random backend of the soak every ``--kill-every`` seconds;
  a fast restart at second 20 of every minute and an immediate (crash) restart at second 45.

Every operation ends as: ok (its id is acknowledged), its own cancellation or timeout, a library
error (counted by class; those that may have committed go to ``unknown``), an **escape** (a
``CancelledError`` reaching the worker loop) or a **foreign** error (anything else). Monitors
sample the sum of balances, sessions idle in transaction, the pool counters, open fds, RSS and
live asyncpg connections. At the end it checks the invariants below, prints a table (and writes
``--json PATH``) and exits 1 if any failed.

    PYTHONPATH=. python benchmarks/soak.py --duration 60 [--tasks 64 --accounts 100 --pool-size 20
        --kill-every 0.2 --seed N --json out.json --debug]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import inspect
import json
import logging
import os
import random
import sys
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's asyncecto and tests/_cluster.py

import anyio  # noqa: E402
import asyncpg  # noqa: E402

from asyncecto import Multi, Repo, belongs_to, has_many, schema  # noqa: E402
from asyncecto import errors as ae  # noqa: E402
from asyncecto import types as t  # noqa: E402
from asyncecto.query import from_, where  # noqa: E402
from asyncecto.repo._core import executor_of  # noqa: E402
from tests._cluster import Cluster, unavailable_reason  # noqa: E402

APP = "soak"  # application_name of the repo's connections (the only ones the chaos task kills)
ADMIN_APP = "soak_admin"
INITIAL = 1000
FLAVOURS = ("move_on_after", "fail_after", "cancel_scope", "asyncio_timeout", "task_cancel")
WARM_UP = 20.0  # seconds; RSS growth is measured from the first sample after this
#: seconds a worker may take to finish its operation once the chaos stopped: pool_timeout + timeout
#: + cleanup_timeout (5 s each) bound any one call; a worker still busy after that hangs
GRACE = 15.0

log = logging.getLogger("soak")


@schema("soak_owners")
class Owner:
    id: int | None = None
    name: str | None = None


@schema("soak_notes")
class Note:
    id: int | None = None
    account_id: int | None = None
    body: str | None = None


@schema("soak_accounts")
class Account:
    id: int | None = None
    balance: int | None = None
    owner: Owner | None = belongs_to(Owner)
    notes: list[Note] = has_many(Note, foreign_key="account_id")


@schema("soak_journal", primary_key=("id", t.UUID))
class Journal:
    id: uuid.UUID | None = None
    src: int | None = None
    dst: int | None = None
    amount: int | None = None


SCHEMA = [
    "CREATE TABLE soak_owners (id bigint PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE soak_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0), "
    "owner_id bigint REFERENCES soak_owners (id))",
    "CREATE TABLE soak_notes (id bigserial PRIMARY KEY, account_id bigint REFERENCES soak_accounts (id), body text)",
    "CREATE TABLE soak_journal (id uuid PRIMARY KEY, src bigint NOT NULL, dst bigint NOT NULL, "
    "amount bigint NOT NULL CHECK (amount > 0))",
    # one transfer in ten has a slow COMMIT (a deferred trigger sleeping 15 ms): cancellations land in it
    "CREATE FUNCTION soak_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(0.015); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER soak_slow_commit AFTER INSERT ON soak_journal DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.amount % 10 = 0) EXECUTE FUNCTION soak_slow_commit()",
]


# -- bookkeeping ----------------------------------------------------------------------------------


@dataclass
class Op:
    """One operation: its journal id and how far it got."""

    id: uuid.UUID
    kind: str
    commit: bool = False  # the COMMIT may have been sent: the outcome is unknown unless it returned
    tx: Any = None  # the Transaction, whose ``committed`` (when the library has it) settles a doubt


class Acks:
    """Acknowledged operation ids, one bit each (a set of 300,000 UUIDs would itself grow RSS by ~30 MB).

    An id is ``UUID(int=worker << 64 | n)``: the worker's index and its operation counter.
    """

    def __init__(self) -> None:
        self._bits: dict[int, bytearray] = {}
        self._count = 0

    @staticmethod
    def make(worker: int, n: int) -> uuid.UUID:
        return uuid.UUID(int=(worker << 64) | n)

    def add(self, op_id: uuid.UUID) -> None:
        worker, n = divmod(op_id.int, 1 << 64)
        bits = self._bits.setdefault(worker, bytearray())
        if len(bits) <= n // 8:
            bits.extend(bytes(n // 8 + 1 - len(bits) + 4096))
        if not bits[n // 8] & (1 << n % 8):
            bits[n // 8] |= 1 << n % 8
            self._count += 1

    def __contains__(self, op_id: object) -> bool:
        if not isinstance(op_id, uuid.UUID):
            return False
        worker, n = divmod(op_id.int, 1 << 64)
        bits = self._bits.get(worker)
        return bits is not None and n // 8 < len(bits) and bool(bits[n // 8] & (1 << n % 8))

    def __iter__(self) -> Iterator[uuid.UUID]:
        for worker, bits in self._bits.items():
            for i, byte in enumerate(bits):
                if byte:
                    for k in range(8):
                        if byte & (1 << k):
                            yield self.make(worker, i * 8 + k)

    def __len__(self) -> int:
        return self._count


@dataclass
class Figures:
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    acked: Acks = field(default_factory=lambda: Acks())
    unknown: set[uuid.UUID] = field(default_factory=set)
    committed_cancelled: set[uuid.UUID] = field(default_factory=set)  # tx.committed True, caller cancelled
    ops: Counter[str] = field(default_factory=Counter)  # kind -> attempts
    outcomes: Counter[str] = field(default_factory=Counter)  # ok / cancelled / error / unknown / rolled_back
    errors: Counter[str] = field(default_factory=Counter)  # library error class -> count
    error_samples: dict[str, str] = field(default_factory=dict)  # library error class -> first message
    cancels: Counter[str] = field(default_factory=Counter)  # flavour -> own cancellations caught
    escapes: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # in-flight invariant failures
    loop_errors: list[str] = field(default_factory=list)
    kills: int = 0
    restarts: Counter[str] = field(default_factory=Counter)
    max_idle_in_tx: int = 0  # sessions idle in transaction for more than 2 s, at one sample
    pool_mismatch: list[str] = field(default_factory=list)
    fds: list[tuple[float, int]] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    live_conns: list[int] = field(default_factory=list)
    live_closed: list[int] = field(default_factory=list)  # of which closed (dead, still referenced)
    closed_held_by: str = ""
    closed_in_pool: int = 0  # dead connections the pool still counts (at the end, before stop)
    first_restart_at: float | None = None

    def now(self) -> float:
        return time.monotonic() - self.started


def _short_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc, limit=12))[-3000:]


# -- the workload ---------------------------------------------------------------------------------


def _by_id(account_id: int) -> Any:
    return where(lambda a: a.id == account_id)


class Ledger:
    def __init__(self, repo: Repo, args: argparse.Namespace, figures: Figures) -> None:
        self.repo = repo
        self.args = args
        self.f = figures
        self.total = args.accounts * INITIAL

    def _transfer(self, rng: random.Random) -> tuple[int, int, int]:
        src, dst = rng.sample(range(1, self.args.accounts + 1), 2)
        return src, dst, rng.randint(1, 50)

    async def _move(self, src: int, dst: int, amount: int) -> None:
        for acc, delta in sorted(((src, -amount), (dst, amount))):  # id order: no deadlock
            await self.repo.update_all(from_(Account) | _by_id(acc), inc={"balance": delta})

    async def plain(self, op: Op, rng: random.Random) -> None:
        src, dst, amount = self._transfer(rng)
        async with self.repo.transaction() as tx:
            op.tx = tx
            await self._move(src, dst, amount)
            async with self.repo.transaction():  # a savepoint
                await self.repo.insert(Journal(id=op.id, src=src, dst=dst, amount=amount))
            if rng.random() < 0.05:
                try:
                    async with self.repo.transaction():
                        await self.repo.query(
                            "INSERT INTO soak_journal (id, src, dst, amount) VALUES ($1, $2, $3, $4)",
                            [op.id, src, dst, amount],
                        )
                except ae.UniqueViolationError:
                    self.f.outcomes["duplicate_caught"] += 1
            op.commit = True

    async def multi(self, op: Op, rng: random.Random) -> None:
        src, dst, amount = self._transfer(rng)
        m = Multi.new()
        for acc, delta in sorted(((src, -amount), (dst, amount))):
            m = m | Multi.update_all(f"acc{acc}", from_(Account) | _by_id(acc), inc={"balance": delta})

        def mark(_repo: Any, _changes: Any) -> None:
            op.commit = True

        m = m | Multi.insert("journal", Journal(id=op.id, src=src, dst=dst, amount=amount)) | Multi.run("mark", mark)
        await self.repo.transaction(m)

    async def serializable(self, op: Op, rng: random.Random) -> None:
        src, dst, amount = self._transfer(rng)

        async def fn() -> str:
            op.commit = False
            account = await self.repo.get(Account, src)
            if account is None or (account.balance or 0) < amount:
                self.repo.rollback("insufficient")
            await self._move(src, dst, amount)
            await self.repo.insert(Journal(id=op.id, src=src, dst=dst, amount=amount))
            op.commit = True
            return "ok"

        if await self.repo.transaction(fn, isolation="serializable", retry=3) != "ok":
            raise _RolledBack

    async def reader(self, op: Op, rng: random.Random) -> None:
        async with self.repo.transaction():
            total = count = 0
            async for account in self.repo.stream(from_(Account), max_rows=25):
                total += account.balance or 0
                count += 1
        if count == self.args.accounts and total != self.total:
            self.f.violations.append(f"a stream saw sum {total}, expected {self.total}")
        ids = rng.sample(range(1, self.args.accounts + 1), 5)
        batch = await self.repo.all(from_(Account) | where(lambda a: a.id.in_(ids)))
        loaded = await self.repo.preload(batch, "owner", "notes")  # two children in parallel
        for account in loaded:
            if account.owner is None or len(account.notes) != 2:
                self.f.violations.append(f"preload of account {account.id} gave {account.owner!r}, {account.notes!r}")
        raise _ReadOnly


class _RolledBack(Exception):
    """The serializable transfer rolled back by choice (insufficient balance)."""


class _ReadOnly(Exception):
    """A reader finished (it moves no money, so it is never acknowledged)."""


KINDS: list[tuple[str, float]] = [("plain", 0.4), ("multi", 0.3), ("serializable", 0.2), ("reader", 0.1)]


async def _run_cancelled(
    flavour: str | None, delay: float, body: Callable[[], Coroutine[Any, Any, None]]
) -> tuple[str, BaseException | None]:
    """Run ``body`` under ``flavour``'s cancellation; ``("ok"|"cancelled"|"raised", exc)``.

    "cancelled" means the caller's own scope caught its cancellation (or its own timeout came out).
    """
    if flavour is None:
        try:
            await body()
        except BaseException as exc:
            return "raised", exc
        return "ok", None
    if flavour == "move_on_after":
        try:
            with anyio.move_on_after(delay) as scope:
                await body()
        except BaseException as exc:
            return "raised", exc
        return ("cancelled", None) if scope.cancelled_caught else ("ok", None)
    if flavour == "fail_after":
        failing: anyio.CancelScope | None = None
        try:
            with anyio.fail_after(delay) as failing:
                await body()
        except TimeoutError as exc:
            # anyio raises its TimeoutError only when the scope caught its own cancellation
            if not isinstance(exc, ae.AsyncEctoError) and failing is not None and failing.cancelled_caught:
                return "cancelled", exc
            return "raised", exc
        except BaseException as exc:
            return "raised", exc
        return "ok", None
    if flavour == "cancel_scope":

        async def fire(s: anyio.CancelScope) -> None:
            await asyncio.sleep(delay)
            s.cancel()

        timer: asyncio.Task[None] | None = None
        try:
            with anyio.CancelScope() as cs:
                timer = asyncio.create_task(fire(cs))
                await body()
        except BaseException as exc:
            return "raised", exc
        finally:
            if timer is not None:
                timer.cancel()
        return ("cancelled", None) if cs.cancelled_caught else ("ok", None)
    if flavour == "asyncio_timeout":
        cm = asyncio.timeout(delay)
        try:
            async with cm:
                await body()
        except TimeoutError as exc:
            if cm.expired() and not isinstance(exc, ae.AsyncEctoError):
                return "cancelled", exc
            return "raised", exc
        except BaseException as exc:
            return "raised", exc
        return "ok", None
    # task_cancel: the body runs in a sub-task that another callback cancels
    sub: asyncio.Task[None] = asyncio.create_task(body())
    handle = asyncio.get_running_loop().call_later(delay, sub.cancel)
    try:
        await asyncio.wait({sub})  # never cancels ``sub`` on our own cancellation
    finally:
        handle.cancel()
        if not sub.done():  # the worker itself is being cancelled (end of the soak)
            sub.cancel()
    if sub.cancelled():
        return "cancelled", None
    failure = sub.exception()
    return ("raised", failure) if failure is not None else ("ok", None)


async def worker(index: int, ledger: Ledger, seed: int) -> None:
    f = ledger.f
    rng = random.Random(seed * 1000 + index)
    kinds, weights = zip(*KINDS, strict=True)
    me = asyncio.current_task()
    assert me is not None
    counter = 0
    while not f.stopping:
        kind = rng.choices(kinds, weights)[0]
        counter += 1
        op = Op(Acks.make(index, counter), kind)
        roll = rng.random()
        flavour = FLAVOURS[int(roll / 0.08)] if roll < 0.08 * len(FLAVOURS) else None
        # U(0, 20 ms), or U(0, 200 ms) half the time: with 64 tasks on 20 connections an operation
        # waits ~80 ms for its connection, and the longer delays reach BEGIN, statements and COMMIT
        delay = rng.uniform(0, 0.02 if rng.random() < 0.5 else 0.2)
        f.ops[kind] += 1
        body = functools.partial(getattr(ledger, kind), op, rng)
        try:
            result, exc = await _run_cancelled(flavour, delay, body)
        except asyncio.CancelledError as escaped:  # the worker's own cancellation (end of the soak)
            if f.stopping:
                raise
            result, exc = "raised", escaped
        _classify(f, op, flavour, result, exc)
        if isinstance(exc, asyncio.CancelledError) and not f.stopping:
            while me.cancelling():  # an escaped cancellation belongs to no scope: clear it to go on
                me.uncancel()
        if result == "raised" and exc is not None and not isinstance(exc, ae.AsyncEctoError | _RolledBack | _ReadOnly):
            await asyncio.sleep(0.01)  # a foreign error or an escape: don't spin
        del op, body, exc  # a finished operation's exception and connection are not kept alive


def _classify(f: Figures, op: Op, flavour: str | None, result: str, exc: BaseException | None) -> None:
    committed = getattr(op.tx, "committed", None) if op.tx is not None else None
    if result == "ok":
        f.outcomes["ok"] += 1
        f.acked.add(op.id)
        return
    if isinstance(exc, _ReadOnly):
        f.outcomes["read"] += 1
        return
    if isinstance(exc, _RolledBack):
        f.outcomes["rolled_back"] += 1
        return
    if result == "cancelled":
        assert flavour is not None
        f.cancels[flavour] += 1
        f.outcomes["cancelled"] += 1
        if committed is True:
            f.committed_cancelled.add(op.id)
        elif op.commit and committed is None:
            f.unknown.add(op.id)
        return
    assert exc is not None
    if isinstance(exc, asyncio.CancelledError):
        if not f.stopping:
            f.escapes.append(f"{op.kind} under {flavour}: {_short_tb(exc)}")
        if op.commit:
            f.unknown.add(op.id)
        return
    if isinstance(exc, ae.AsyncEctoError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        if sqlstate.startswith("25") and "BEGIN" in str(exc):  # e.g. 25001 on BEGIN ISOLATION LEVEL
            f.violations.append(f"a connection was handed over inside a transaction: {str(exc)[:200]}")
        f.errors[type(exc).__name__] += 1
        f.error_samples.setdefault(type(exc).__name__, f"{op.kind} under {flavour}: {str(exc)[:300]}")
        f.outcomes["error"] += 1
        if committed is True:
            f.committed_cancelled.add(op.id)
        elif op.commit and committed is None:
            f.unknown.add(op.id)
        return
    f.foreign.append(f"{op.kind} under {flavour}: {_short_tb(exc)}")
    if op.commit:
        f.unknown.add(op.id)


# -- chaos and monitors ---------------------------------------------------------------------------


class Admin:
    """The soak's own connection to the cluster (never killed); reconnects after restarts."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: asyncpg.Connection | None = None
        # the chaos task and the monitor share this connection: one query (and one reconnect) at a
        # time, else a second connect overwrote the first, left open (the soak's own ResourceWarning)
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            if self.conn is not None:
                self.conn.terminate()
            self.conn = await asyncpg.connect(
                self.dsn, timeout=2, server_settings={"application_name": ADMIN_APP}, statement_cache_size=0
            )
        return self.conn

    async def fetch(self, sql: str, *params: Any) -> list[Any]:
        async with self._lock:
            try:
                conn = await self.get()
                with anyio.fail_after(5):
                    return list(await conn.fetch(sql, *params))
            except BaseException:
                if self.conn is not None:
                    self.conn.terminate()
                    self.conn = None
                raise

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.terminate()
            self.conn = None


async def chaos(cluster: Cluster, admin: Admin, f: Figures, args: argparse.Namespace, rng: random.Random) -> None:
    done: set[tuple[int, str]] = set()
    while not f.stopping:
        await asyncio.sleep(args.kill_every)
        now = f.now()
        minute, second = divmod(now, 60)
        schedule: tuple[tuple[int, Literal["fast", "immediate"]], ...] = ((20, "fast"), (45, "immediate"))
        for at, mode in schedule:
            if second >= at and (int(minute), mode) not in done and now < args.duration - 5:
                done.add((int(minute), mode))
                began = time.monotonic()
                await cluster.restart(mode)
                f.restarts[mode] += 1
                log.info("restart %s at %.1fs took %.2fs", mode, now, time.monotonic() - began)
                if f.first_restart_at is None:
                    f.first_restart_at = f.now()
        try:
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", APP
            )
            if rows:
                pid = rng.choice(rows)["pid"]
                await admin.fetch("SELECT pg_terminate_backend($1)", pid)
                f.kills += 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.debug("chaos: admin query failed (%r); retrying", exc)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _live_connections(admin: Admin) -> list[asyncpg.Connection]:
    gc.collect()  # only connections something still references
    return [o for o in gc.get_objects() if isinstance(o, asyncpg.Connection) and o is not admin.conn]


def _owner_names(container: object, skip: set[int]) -> list[str]:
    """``Type.attribute`` of the objects holding ``container`` in an attribute (else their types)."""
    found = []
    for owner in gc.get_referrers(container):
        if id(owner) in skip or inspect.isframe(owner):
            continue
        attrs = dict(getattr(owner, "__dict__", {}))
        for slot in getattr(type(owner), "__slots__", ()):
            attrs[slot] = getattr(owner, slot, None)
        named = [k for k, v in attrs.items() if v is container]
        found.append(f"{type(owner).__qualname__}.{named[0]}" if named else type(owner).__qualname__)
    return sorted(set(found))


def _held_by(obj: object, mine: object) -> str:
    """Who holds ``obj`` (``mine`` is the caller's list of it), two levels up: a leak hunt's hint."""
    skip = {id(sys._getframe()), id(mine)}
    first = [r for r in gc.get_referrers(obj) if id(r) not in skip and not inspect.isframe(r)]
    skip.add(id(first))
    parts = []
    for ref in first[:4]:
        above = [n for n in _owner_names(ref, skip) if n]
        parts.append(f"{type(ref).__qualname__} in {', '.join(above) or '?'}")
        for container in [r for r in gc.get_referrers(ref) if isinstance(r, list | set | dict | tuple)][:3]:
            if id(container) not in skip:
                parts.append(f"  {type(container).__qualname__} in {', '.join(_owner_names(container, skip)) or '?'}")
    return "; ".join(parts)


async def monitor(repo: Repo, admin: Admin, f: Figures, total: int) -> None:
    tick = 0
    while not f.stopping:
        await asyncio.sleep(1)
        tick += 1
        stats = repo.pool_stats()
        if stats["size"] != stats["idle"] + stats["in_use"]:
            f.pool_mismatch.append(f"{f.now():.0f}s: {stats}")
        try:
            [[total_now, negative]] = await admin.fetch(
                "SELECT sum(balance), count(*) FILTER (WHERE balance < 0) FROM soak_accounts"
            )
            [[idle]] = await admin.fetch(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                "AND state = 'idle in transaction' AND now() - state_change > interval '2 seconds'",
                APP,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            continue  # the server is restarting
        if total_now != total or negative:
            f.violations.append(f"{f.now():.0f}s: sum {total_now} (expected {total}), {negative} negative")
        f.max_idle_in_tx = max(f.max_idle_in_tx, int(idle))
        if tick % 10 == 1:
            f.fds.append((f.now(), len(os.listdir("/proc/self/fd"))))
            f.rss.append((f.now(), _rss_kb()))
            live = _live_connections(admin)
            f.live_conns.append(len(live))
            f.live_closed.append(sum(1 for c in live if c.is_closed()))
            del live


# -- the run --------------------------------------------------------------------------------------


async def setup(admin: Admin, accounts: int) -> None:
    conn = await admin.get()
    for sql in SCHEMA:
        await conn.execute(sql)
    await conn.execute("CREATE INDEX ON soak_journal (src)")
    await conn.execute("CREATE INDEX ON soak_journal (dst)")
    await conn.executemany("INSERT INTO soak_owners (id, name) VALUES ($1, $2)", [(i, f"owner {i}") for i in range(10)])
    await conn.executemany(
        "INSERT INTO soak_accounts (id, balance, owner_id) VALUES ($1, $2, $3)",
        [(i, INITIAL, i % 10) for i in range(1, accounts + 1)],
    )
    await conn.executemany(
        "INSERT INTO soak_notes (account_id, body) VALUES ($1, $2)",
        [(i, f"note {k}") for i in range(1, accounts + 1) for k in range(2)],
    )


async def drain(workers: list[asyncio.Task[None]], grace: float) -> int:
    """Let the workers finish their operation, then cancel the rest; how many had to be cancelled."""
    _, pending = await asyncio.wait(workers, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=grace)
    return len(pending)


async def soak(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    f = Figures()
    loop = asyncio.get_running_loop()
    if args.debug:
        loop.set_debug(True)

    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        origin = context.get("source_traceback") or getattr(context.get("future"), "_source_traceback", None)
        where = "".join(traceback.format_list(origin[-4:])) if origin else ""  # with --debug
        f.loop_errors.append(f"{context.get('message')}: {exc!r}" + (f"\ncreated at:\n{where}" if where else ""))

    loop.set_exception_handler(on_loop_error)
    rng = random.Random(args.seed)
    # synchronous_commit on: a crash restart must not lose what COMMIT acknowledged (fsync off is
    # fine: only the server process dies, never the machine)
    cluster = await Cluster.start(None, max(200, args.pool_size * 3 + 20), settings={"synchronous_commit": "on"})
    admin = Admin(cluster.url)
    failures: list[str] = []
    try:
        await setup(admin, args.accounts)
        repo = Repo(
            cluster.url,
            pool_size=args.pool_size,
            min_size=min(4, args.pool_size),
            pool_timeout=5.0,
            timeout=5.0,
            shutdown_timeout=5.0,
            server_settings={"application_name": APP},
            log=False,
            # the private cluster serves no TLS; with asyncpg's default sslmode=prefer, a connect cut
            # by a kill or a restart during its TLS probe leaves an unretrieved future inside asyncpg
            # (reported by the loop, not raised to anyone): see docs/architecture.md, "Cancellation"
            ssl=False,
        )
        ledger = Ledger(repo, args, f)
        await repo.start()
        f.started = time.monotonic()
        f.fds.append((0.0, len(os.listdir("/proc/self/fd"))))
        f.rss.append((0.0, _rss_kb()))
        workers = [asyncio.create_task(worker(i, ledger, args.seed)) for i in range(args.tasks)]
        helpers = [
            asyncio.create_task(chaos(cluster, admin, f, args, rng)),
            asyncio.create_task(monitor(repo, admin, f, ledger.total)),
        ]
        await asyncio.sleep(args.duration)
        f.stopping = True
        await asyncio.wait(helpers, timeout=30)  # a restart in progress finishes
        for task in helpers:
            task.cancel()
        force_cancelled = await drain(workers, grace=GRACE)
        for task in workers:
            if task.done() and not task.cancelled() and task.exception() is not None:
                f.foreign.append(f"worker crashed: {_short_tb(task.exception())}")  # type: ignore[arg-type]
        in_use = repo.pool_stats()["in_use"]
        for _ in range(24):  # connections in cleanup come back within cleanup_timeout (5 s)
            if in_use == 0:
                break
            await asyncio.sleep(0.25)
            in_use = repo.pool_stats()["in_use"]
        stats_before_stop = repo.pool_stats()
        pool_all = getattr(getattr(executor_of(repo).adapter, "pool", None), "_all", ())  # a diagnostic only
        f.closed_in_pool = sum(1 for c in pool_all if c.raw.is_closed())
        closed = [c for c in _live_connections(admin) if c.is_closed()]
        f.live_closed.append(len(closed))
        if closed:
            f.closed_held_by = _held_by(closed[0], closed)
        del closed
        failures += await verify(admin, f, ledger.total, args)
        began = time.monotonic()
        await repo.stop(timeout=5)
        stop_took = time.monotonic() - began
        left = -1
        for _ in range(20):
            [[left]] = await admin.fetch("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", APP)
            if left == 0:
                break
            await asyncio.sleep(0.1)
        gc.collect()
        await asyncio.sleep(0.05)
        if force_cancelled:
            failures.append(f"{force_cancelled} workers still in an operation {GRACE:.0f} s after the end (a hang)")
        if in_use:
            failures.append(f"{in_use} connections still checked out at the end ({stats_before_stop})")
        if left:
            failures.append(f"{left} backends of the soak still on the server after stop(timeout=5)")
    finally:
        await admin.close()
        await cluster.close()
    failures += judge(f, args)
    fds = [n for _, n in f.fds]
    rss = [kb for _, kb in f.rss]
    report = {
        "duration": args.duration,
        "tasks": args.tasks,
        "pool_size": args.pool_size,
        "seed": args.seed,
        "ops": dict(f.ops),
        "outcomes": dict(f.outcomes),
        "acked": len(f.acked),
        "unknown": len(f.unknown),
        "committed_while_cancelled": len(f.committed_cancelled),
        "errors": dict(f.errors),
        "error_samples": f.error_samples,
        "cancellations": dict(f.cancels),
        "kills": f.kills,
        "restarts": dict(f.restarts),
        "escapes": len(f.escapes),
        "foreign": len(f.foreign),
        "loop_errors": len(f.loop_errors),
        "resource_warnings": 0,
        "violations": len(f.violations),
        "max_idle_in_tx_over_2s": f.max_idle_in_tx,
        "pool_stats_at_end": stats_before_stop,
        "workers_force_cancelled": force_cancelled,
        "stop_seconds": round(stop_took, 2),
        "fds_min": min(fds),
        "fds_max": max(fds),
        "rss_start_mb": round(rss[0] / 1024, 1),
        "rss_max_mb": round(max(rss) / 1024, 1),
        "live_conns_max": max(f.live_conns, default=0),
        "live_closed_conns_max": max(f.live_closed, default=0),
        "closed_conn_held_by": f.closed_held_by,
        "closed_conns_in_pool_at_end": f.closed_in_pool,
        "failures": failures,
        "samples": {"escapes": f.escapes[:3], "foreign": f.foreign[:3], "loop_errors": f.loop_errors[:5]},
        "resource_warning_samples": [],
    }
    return report, failures


async def verify(admin: Admin, f: Figures, total: int, args: argparse.Namespace) -> list[str]:
    """The ledger's end invariants, read from the server."""
    failures: list[str] = []
    [[total_now, negative]] = await admin.fetch(
        "SELECT sum(balance), count(*) FILTER (WHERE balance < 0) FROM soak_accounts"
    )
    if total_now != total:
        failures.append(f"sum of balances is {total_now}, expected {total}")
    if negative:
        failures.append(f"{negative} negative balances")
    mismatched = await admin.fetch(
        "SELECT a.id, a.balance, $1::bigint + coalesce(i.s, 0) - coalesce(o.s, 0) AS expected "
        "FROM soak_accounts a "
        "LEFT JOIN (SELECT dst, sum(amount) s FROM soak_journal GROUP BY dst) i ON i.dst = a.id "
        "LEFT JOIN (SELECT src, sum(amount) s FROM soak_journal GROUP BY src) o ON o.src = a.id "
        "WHERE a.balance <> $1::bigint + coalesce(i.s, 0) - coalesce(o.s, 0)",
        INITIAL,
    )
    if mismatched:
        failures.append(f"journal disagrees with balances for {len(mismatched)} accounts, e.g. {dict(mismatched[0])}")
    journal = {r["id"] for r in await admin.fetch("SELECT id FROM soak_journal")}
    lost = [op_id for op_id in f.acked if op_id not in journal]
    if lost:
        failures.append(f"{len(lost)} acknowledged transfers are not in the journal (lost)")
    lost_committed = f.committed_cancelled - journal
    if lost_committed:
        failures.append(f"{len(lost_committed)} transfers reported committed are not in the journal")
    phantom = [j for j in journal if j not in f.acked and j not in f.unknown and j not in f.committed_cancelled]
    if phantom:
        failures.append(f"{len(phantom)} journal rows were neither acknowledged nor of unknown outcome (phantom)")
    f.outcomes["unknown_committed"] = len(f.unknown & journal)
    return failures


def judge(f: Figures, args: argparse.Namespace) -> list[str]:
    """The process-side invariants."""
    failures: list[str] = []
    if f.escapes:
        failures.append(f"{len(f.escapes)} cancellations escaped their scope; first:\n{f.escapes[0]}")
    if f.foreign:
        failures.append(f"{len(f.foreign)} foreign (non-library) errors; first:\n{f.foreign[0]}")
    if f.violations:
        failures.append(f"{len(f.violations)} invariant violations while running; first: {f.violations[0]}")
    if f.loop_errors:
        failures.append(f"{len(f.loop_errors)} errors reached the loop's exception handler; first: {f.loop_errors[0]}")
    if f.max_idle_in_tx:
        failures.append(f"up to {f.max_idle_in_tx} sessions idle in transaction for more than 2 s")
    if f.pool_mismatch:
        failures.append(
            f"pool counters disagreed (size != idle + in_use) {len(f.pool_mismatch)} times: {f.pool_mismatch[0]}"
        )
    after = [n for at, n in f.fds if f.first_restart_at is None or at >= f.first_restart_at]
    if after:
        growth = max(after) - after[0]
        if growth > args.pool_size + 8:
            failures.append(f"open fds grew by {growth} after the first restart (bound {args.pool_size + 8})")
    warm = [kb for at, kb in f.rss if at >= min(WARM_UP, args.duration / 3)]
    if warm:
        growth_mb = (max(warm) - warm[0]) / 1024
        if growth_mb >= 30:
            failures.append(f"RSS grew by {growth_mb:.1f} MB after warm-up (bound 30 MB)")
    if f.live_conns and max(f.live_conns) > args.pool_size + 3:
        failures.append(
            f"up to {max(f.live_conns)} live asyncpg connections (bound pool_size + 3 = {args.pool_size + 3})"
        )
    if not f.outcomes["ok"]:
        failures.append("no transfer succeeded")
    return failures


def print_report(r: dict[str, Any]) -> None:
    o = r["outcomes"]
    rows = [
        ("duration s / tasks / pool", f"{r['duration']} / {r['tasks']} / {r['pool_size']} (seed {r['seed']})"),
        ("operations", ", ".join(f"{k} {v}" for k, v in sorted(r["ops"].items()))),
        ("transfers ok (acked)", r["acked"]),
        ("transfers unknown (committed)", f"{r['unknown']} ({o.get('unknown_committed', 0)})"),
        ("committed while cancelled", r["committed_while_cancelled"]),
        ("rolled back by choice", o.get("rolled_back", 0)),
        ("reads", o.get("read", 0)),
        ("duplicates caught", o.get("duplicate_caught", 0)),
        ("own cancellations", ", ".join(f"{k} {v}" for k, v in sorted(r["cancellations"].items())) or "0"),
        ("library errors", ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "0"),
        ("kills / restarts", f"{r['kills']} / {r['restarts']}"),
        ("escapes", r["escapes"]),
        ("foreign errors", r["foreign"]),
        ("loop handler errors", r["loop_errors"]),
        ("ResourceWarnings", r["resource_warnings"]),
        ("running invariant violations", r["violations"]),
        ("max idle in tx > 2 s", r["max_idle_in_tx_over_2s"]),
        ("pool at end", r["pool_stats_at_end"]),
        ("workers force-cancelled", r["workers_force_cancelled"]),
        ("stop() took s", r["stop_seconds"]),
        ("fds min / max", f"{r['fds_min']} / {r['fds_max']}"),
        ("RSS start / max MB", f"{r['rss_start_mb']} / {r['rss_max_mb']}"),
        ("live asyncpg conns max", r["live_conns_max"]),
        ("of which closed, max", r["live_closed_conns_max"]),
        ("a closed one is held by", r["closed_conn_held_by"] or "-"),
        ("closed conns in the pool at end", r["closed_conns_in_pool_at_end"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if r["failures"]:
        print(f"\nFAILED ({len(r['failures'])}):")
        for failure in r["failures"]:
            print(f"- {failure}")
    else:
        print("\nall invariants held")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--kill-every", type=float, default=0.2, help="seconds between backend kills")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--debug", action="store_true", help="asyncio debug mode (ResourceWarnings name the opener)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    reason = unavailable_reason()
    if reason is not None:
        print(f"soak: cannot start a private PostgreSQL: {reason}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncecto").setLevel(logging.ERROR)  # kills make every layer log; the figures count them

    captured: list[str] = []
    shown = warnings.showwarning

    def on_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, ResourceWarning):
            captured.append(f"{filename}:{lineno}: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", ResourceWarning)
    warnings.showwarning = on_warning
    began = time.monotonic()
    report, failures = anyio.run(soak, args)
    gc.collect()
    if captured:
        report["resource_warnings"] = len(captured)
        report["resource_warning_samples"] = captured[:3]
        failures.append(f"{len(captured)} ResourceWarnings; first: {captured[0]}")
        report["failures"] = failures
    report["wall_seconds"] = round(time.monotonic() - began, 1)
    print_report(report)
    print(f"wall time {report['wall_seconds']} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
