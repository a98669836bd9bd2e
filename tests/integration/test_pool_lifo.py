"""Issue 21: the pool hands out the connection returned last (LIFO, as asyncpg's pool), and the ones a
sequential workload does not need sit at the other end of the idle queue, where the upkeep closes
them past ``max_idle_time``."""

from __future__ import annotations

import asyncio
import time

import pytest

from asyncecto import Repo

pytestmark = pytest.mark.no_sandbox  # real connections: the pids are the server's


async def _pid(repo: Repo) -> int:
    pid: int = (await repo.query("SELECT pg_backend_pid()")).rows[0][0]
    return pid


async def _fill(repo: Repo, n: int) -> set[int]:
    """Open ``n`` connections (held at once), all returned idle afterwards; their pids."""
    pids: set[int] = set()

    async def hold() -> None:
        async with repo.checkout():
            pids.add(await _pid(repo))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(hold() for _ in range(n)))
    return pids


async def test_sequential_statements_on_a_pool_of_ten_use_one_backend(database_url: str) -> None:
    async with Repo(database_url, pool_size=10) as repo:
        opened = await _fill(repo, 10)
        assert len(opened) == 10 and repo.pool_stats()["idle"] == 10
        used = {await _pid(repo) for _ in range(20)}
        assert len(used) == 1 and used <= opened  # FIFO would rotate through all ten
        async with repo.transaction():
            in_tx = await _pid(repo)
        assert in_tx in used  # a transaction's checkout too: the warm connection
        assert repo.pool_stats()["idle"] == 10 and repo.pool_stats()["in_use"] == 0


async def test_the_connection_returned_last_is_checked_out_first(database_url: str) -> None:
    async with Repo(database_url, pool_size=3) as repo:
        await _fill(repo, 3)
        first, second = asyncio.Event(), asyncio.Event()
        pids: dict[str, int] = {}
        holding = {"a": asyncio.Event(), "b": asyncio.Event()}

        async def hold(name: str, until: asyncio.Event) -> None:
            async with repo.checkout():
                pids[name] = await _pid(repo)
                holding[name].set()
                await until.wait()

        a = asyncio.create_task(hold("a", first))
        b = asyncio.create_task(hold("b", second))
        await holding["a"].wait()
        await holding["b"].wait()
        second.set()
        await b  # b's connection returns after a's: it is the next one out
        first.set()
        await a
        assert await _pid(repo) == pids["a"]


async def test_idle_connections_a_sequential_workload_leaves_alone_are_closed(database_url: str) -> None:
    # max_idle_time short: the three connections LIFO never hands out again go; the warm one stays
    async with Repo(database_url, pool_size=4, min_size=1, max_idle_time=0.3) as repo:
        opened = await _fill(repo, 4)
        assert repo.pool_stats()["size"] == 4
        warm: set[int] = set()
        deadline = time.monotonic() + 10
        while repo.pool_stats()["size"] > 1 and time.monotonic() < deadline:
            warm.add(await _pid(repo))  # a statement every 50 ms keeps its connection fresh
            await asyncio.sleep(0.05)
        stats = repo.pool_stats()
        assert stats["size"] == 1 and stats["idle"] == 1, stats
        assert len(warm) == 1 and warm <= opened
        assert await _pid(repo) in warm  # the connection in use was never the one closed
