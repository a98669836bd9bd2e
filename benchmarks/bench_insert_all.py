"""asyncecto's bulk insert of 20,000 rows against raw asyncpg, in the same run, as throughput
ratios (asyncecto / asyncpg).

Workloads (20,000 rows of a string, an integer, a float and a timestamp):
- ``insert``: ``repo.insert_all(Bulk, rows)`` (no ``returning``, no upsert: ``COPY``) vs one
  ``INSERT … SELECT * FROM unnest($1::varchar[], …)`` with an array per column, the
  single-statement form (``VALUES`` would need 80,000 parameters, over PostgreSQL's 32,767) —
  the target, at least 1.0 — and, for information, ``copy_records_to_table``
- ``returning``: ``repo.insert_all(Bulk, rows, returning=["id"])`` (one ``unnest`` insert, the
  ids read into structs) vs the same raw ``unnest`` insert with ``RETURNING id``

The raw side runs on one held connection. Every call inserts into an empty table: the
tables are created before the timing, one per call (the shared loop times calls back to
back, so a ``TRUNCATE`` between them would be timed too), and dropped at the end; each
new table's statement is prepared once more, about 1 ms of a 150 ms call, on both sides. The rows
are built once, outside the timing, from the same data for both sides: dicts for asyncecto,
an array per column for ``unnest``, tuples for ``COPY``; asyncecto's checking, dumping and
transposing of the dicts is timed, being part of the call. In each round the contenders run
back to back, in alternating order, and the round's ratio is taken; the median ratio over
the rounds is reported, so a machine whose speed drifts during the run does not skew it.

    python benchmarks/bench_insert_all.py [--rounds 7] [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
from _measure import Results, measure

from asyncecto import Repo, schema
from asyncecto.embedded import database_url
from asyncecto.repo import build_config


@schema("bench_bulk")
class Bulk:
    id: int | None = None
    name: str | None = None
    qty: int | None = None
    price: float | None = None
    at: dt.datetime | None = None


COLUMNS = "name, qty, price, at"
DDL = "CREATE TABLE {} (id bigserial PRIMARY KEY, name varchar(255), qty integer, price double precision, at timestamp)"
UNNEST_SQL = (
    f"INSERT INTO {{}} ({COLUMNS}) "
    "SELECT * FROM unnest($1::varchar[], $2::integer[], $3::double precision[], $4::timestamp[])"
)
SELECT_SQL = f"SELECT {COLUMNS} FROM {{}} ORDER BY id"


def make_rows(n: int) -> list[dict[str, object]]:
    start = dt.datetime(2024, 1, 1)
    return [
        {
            "name": f"item {i}",
            "qty": i % 1000,
            "price": i * 0.25,
            "at": start + dt.timedelta(seconds=i, microseconds=i % 997),
        }
        for i in range(n)
    ]


def report(title: str, rounds: int, rows: int, results: Results) -> None:
    """Median time per call of every contender, and the median of the per-round ratios asyncecto / it."""
    print(f"{title} — {rounds} rounds: median per call, and median of per-round ratios (asyncecto / contender)")
    print(f"{'workload':<10} {'contender':<16} {'ms/call':>8} {'rows/s':>10} {'ratio':>6}")
    for workload, by in results.items():
        ours = by["asyncecto"]
        for name, ops in by.items():
            med = statistics.median(ops)
            ratio = statistics.median(o / c for o, c in zip(ours, ops, strict=True))
            shown = "" if name == "asyncecto" else f"{ratio:.2f}"
            print(f"{workload:<10} {name:<16} {1000 / med:>8.1f} {med * rows:>10.0f} {shown:>6}")


async def main(rounds: int, count: int) -> None:
    url = database_url("asyncecto_bench")
    repo = Repo(url, pool_size=4)
    await repo.storage_up()
    conn = await asyncpg.connect(**build_config(url).dsn_kwargs())

    rows = make_rows(count)
    arrays = [[r[c] for r in rows] for c in ("name", "qty", "price", "at")]
    records = [tuple(r.values()) for r in rows]
    # a table per call: the sanity check's, measure's warm-up call and one a round, for 5 contenders
    names = [f"bench_bulk_{i}" for i in range(5 * (rounds + 2))]
    tables: Iterator[str] = iter(names)
    columns = COLUMNS.split(", ")

    async def insert_ours() -> tuple[int, list[Any] | None]:
        return await repo.insert_all((next(tables), Bulk), rows)

    async def returning_ours() -> tuple[int, list[Any] | None]:
        return await repo.insert_all((next(tables), Bulk), rows, returning=["id"])

    async def unnest_raw() -> str:
        return str(await conn.execute(UNNEST_SQL.format(next(tables)), *arrays))

    async def returning_raw() -> list[asyncpg.Record]:
        return list(await conn.fetch(UNNEST_SQL.format(next(tables)) + " RETURNING id", *arrays))

    async def copy_raw() -> str:
        return str(await conn.copy_records_to_table(next(tables), records=records, columns=columns))

    async with repo:
        for table in names:
            await repo.query(f"DROP TABLE IF EXISTS {table}")
            await repo.query(DDL.format(table))
        try:
            # sanity: every contender stores the same rows, the returning ones give every id
            got = [await insert_ours(), await unnest_raw(), await copy_raw()]
            assert got[0] == (count, None) and got[1] == f"INSERT 0 {count}" and got[2] == f"COPY {count}", got
            n, structs = await returning_ours()
            assert n == count and structs is not None and len({s.id for s in structs}) == count
            assert len(await returning_raw()) == count
            stored = [[tuple(r) for r in await conn.fetch(SELECT_SQL.format(t))] for t in names[:5]]
            assert all(s == [tuple(r.values()) for r in rows] for s in stored)

            timed: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
                "insert": {"asyncecto": insert_ours, "asyncpg unnest": unnest_raw, "asyncpg copy": copy_raw},
                "returning": {"asyncecto": returning_ours, "asyncpg unnest": returning_raw},
            }
            results = await measure(timed, dict.fromkeys(timed, 1), rounds)
        finally:
            for table in names:
                await repo.query(f"DROP TABLE IF EXISTS {table}")

    await conn.close()

    report(f"asyncecto insert_all of {count:,} rows vs raw asyncpg (held connection)", rounds, count, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.rows))
