"""What the benchmarks share: timing contenders in alternating order and reporting ratios.

Each round runs a workload's contenders back to back, in alternating order, and the report
gives the median of the per-round ratios against the two raw asyncpg baselines, so a machine
whose speed drifts during the run does not skew them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

Contenders = Mapping[str, Mapping[str, Callable[[], Awaitable[object]]]]
Results = dict[str, dict[str, list[float]]]

#: both sides' pool size (asyncecto's ``pool_size``, asyncpg's ``max_size``)
POOL_SIZE = 10


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """asyncpg's ``reset=``: send nothing on release (the default sends ``RESET ALL`` and friends)."""


async def raw_pool(kwargs: Mapping[str, Any]) -> asyncpg.Pool:
    """The raw side's pool: asyncpg's own, of ``POOL_SIZE`` connections, sending no reset query on release."""
    return await asyncpg.create_pool(min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset, **kwargs)


async def timed(fn: Callable[[], Awaitable[object]], n: int) -> float:
    """Operations per second of ``n`` sequential calls."""
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return n / (time.perf_counter() - start)


async def measure(contenders: Contenders, counts: Mapping[str, int], rounds: int) -> Results:
    """Ops/s of every contender in every round (after a warm-up of caches and prepared statements)."""
    results: Results = {w: {k: [] for k in c} for w, c in contenders.items()}
    for workload, fns in contenders.items():
        for fn in fns.values():
            await timed(fn, counts[workload] // 4 + 1)
    for r in range(rounds):
        for workload, fns in contenders.items():
            order = list(fns.items())
            for name, fn in order if r % 2 == 0 else reversed(order):
                results[workload][name].append(await timed(fn, counts[workload]))
    return results


def report(title: str, rounds: int, results: Results) -> None:
    """Median ops/s per contender and the median per-round ratios against asyncpg's pool and connection."""
    print(f"{title} — {rounds} rounds: median ops/s, and median of per-round ratios")
    print(f"{'workload':<10} {'asyncecto':>11} {'pg pool':>11} {'pg conn':>11} {'ratio/pool':>11} {'ratio/conn':>11}")
    for workload, by in results.items():
        med = {k: statistics.median(v) for k, v in by.items()}
        ours = by["asyncecto"]
        per_pool = statistics.median(o / p for o, p in zip(ours, by["asyncpg pool"], strict=True))
        per_conn = statistics.median(o / c for o, c in zip(ours, by["asyncpg conn"], strict=True))
        print(
            f"{workload:<10} {med['asyncecto']:>11.0f} {med['asyncpg pool']:>11.0f} {med['asyncpg conn']:>11.0f} "
            f"{per_pool:>11.2f} {per_conn:>11.2f}"
        )
