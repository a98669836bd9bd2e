"""asyncecto's single-row work against raw asyncpg, in the same run, as throughput ratios (asyncecto / asyncpg).

The CRUD part of ``bench_suite.py`` (which documents the method): ``get``, ``get_x50`` (50
concurrent tasks), ``filtered`` (an indexed ``city = $1 AND temp_lo > $2 ORDER BY temp_lo LIMIT
10``), ``insert``, ``update`` and ``tx_children`` (a parent and three children in a
transaction). Both sides have a pool of 10; the raw side's asyncpg pool sends no reset query on
release and turns rows into slotted dataclasses. The contenders alternate within each round;
the report gives median ops/s, the per-round ratios, their median and their geomean, and
statements per operation.

An earlier version of this script measured on a pool of one connection, a filter the server
needed about a millisecond for (a sequential scan and a sort) and an asyncpg pool that reset
each connection on release: all three flattered asyncecto.

    python benchmarks/bench_crud.py [--rounds 7] [--gets 2000] [--json PATH] [--chart PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_suite

WORKLOADS = ("get", "get_x50", "filtered", "insert", "update", "tx_children")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--gets", type=int, default=2000, help="sequential gets per round (the rest scale with it)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "crud.json")
    parser.add_argument("--chart", type=Path)
    args = parser.parse_args()
    argv = ["--rounds", str(args.rounds), "--ops", str(args.gets), "--json", str(args.json), "--only", *WORKLOADS]
    if args.chart is not None:
        argv += ["--chart", str(args.chart)]
    bench_suite.main(argv)
