"""benchmarks/bench_suite.py at a tiny scale: it runs against a real PostgreSQL, writes its JSON
results and its PNG chart, and cleans its tables up. No timing is asserted (CI machines are shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from asyncecto.repo import build_config

ROOT = Path(__file__).resolve().parent.parent.parent
WORKLOADS = [
    "get",
    "get_x50",
    "filtered",
    "filtered_prepared",
    "insert",
    "update",
    "tx_children",
    "m2m_create",
    "m2m_update",
    "preload",
]


def run_suite(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, str(ROOT / "benchmarks" / "bench_suite.py"), "--url", url, *extra]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=50, check=False)


async def test_the_suite_writes_ratios_statements_and_a_chart(run_database_url: str, tmp_path: Path) -> None:
    results, chart = tmp_path / "out" / "results.json", tmp_path / "img" / "chart.png"
    done = run_suite(
        run_database_url, tmp_path, "--rounds", "2", "--ops", "4", "--json", str(results), "--chart", str(chart)
    )
    assert done.returncode == 0, done.stderr
    assert "geomean of the ratios" in done.stdout and str(results) in done.stdout

    summary = json.loads(results.read_text())
    meta = summary["meta"]
    assert meta["rounds"] == 2 and meta["pool_size"] == 10 and meta["concurrency"] == 50
    assert meta["synchronous_commit"] == "off" and meta["postgresql"] and meta["caveat"]
    assert list(summary["workloads"]) == WORKLOADS
    for name, w in summary["workloads"].items():
        assert set(w["ops_per_s"]) >= {"asyncecto", "asyncpg"} and all(v > 0 for v in w["ops_per_s"].values())
        assert len(w["ratios"]) == 2 and all(r > 0 for r in w["ratios"])
        assert min(w["ratios"]) <= w["ratio"] <= max(w["ratios"])
        assert len(w["ratios_cpu"]) == 2 and min(w["ratios_cpu"]) <= w["ratio_cpu"] <= max(w["ratios_cpu"])
        assert all(v > 0 for v in w["cpu_us_per_op"].values())
        assert all(len(v) == 2 for v in w["ops_per_s_by_round"].values())
        assert ("ratio_conn" in w) == (name != "get_x50")  # 50 tasks cannot share one held connection
        statements = w["statements_per_op"]
        assert statements["asyncecto"] >= 1 and statements["asyncpg"] >= 1, (name, statements)
    by = summary["workloads"]
    assert by["get"]["statements_per_op"] == {"asyncecto": 1, "asyncpg": 1}
    # BEGIN, the parent, the children in one insert_all, COMMIT
    assert by["tx_children"]["statements_per_op"] == {"asyncecto": 4, "asyncpg": 4}
    ratios = [w["ratio"] for w in by.values()]
    assert min(ratios) <= summary["geomean"] <= max(ratios)
    assert summary["geomean_cpu"] > 0 and summary["geomean_conn"] > 0

    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000

    conn = await asyncpg.connect(**build_config(run_database_url).dsn_kwargs())
    try:  # the suite dropped its tables
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench_s_%'") == 0
    finally:
        await conn.close()


async def test_only_runs_the_named_workloads_and_replot_reads_the_results_again(
    run_database_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "crud.json"
    done = run_suite(
        run_database_url, tmp_path, "--rounds", "1", "--ops", "2", "--only", "get", "filtered", "--json", str(results)
    )
    assert done.returncode == 0, done.stderr
    assert "chart:" not in done.stdout  # no --chart, no chart
    summary = json.loads(results.read_text())
    assert list(summary["workloads"]) == ["get", "filtered"]
    assert summary["workloads"]["filtered"]["statements_per_op"] == {"asyncecto": 1, "asyncpg": 1}

    # --replot reads a results file again, without a database (with --chart it draws it, as above)
    again = run_suite("postgres://nobody@127.0.0.1:1/none", tmp_path, "--replot", str(results))
    assert again.returncode == 0, again.stderr
    assert "geomean of the ratios" in again.stdout and "filtered" in again.stdout and "preload" not in again.stdout
