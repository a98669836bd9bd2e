"""Parallel processes and parallel sandboxes (issue 17, reliability scenarios R29 and R30).

R29: two ``python`` processes run ``asyncecto migrate`` on the same fresh database at the same
instant; the migration lock makes each migration run once, and both exit 0.
R30: fifty tests' worth of private sandboxes at once on one repo, all writing the same unique key,
one of them failing half-way: none sees another's rows, and nothing is left afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import asyncecto
from asyncecto.cli._project import maintenance_url
from asyncecto.repo import Repo, build_config
from asyncecto.testing import sandbox

from ..schemas import User, Weather

pytestmark = [pytest.mark.timeout(120), pytest.mark.no_sandbox]  # real databases, real commits

VERSIONS = (20240101000001, 20240101000002, 20240101000003, 20240101000004)

#: imports first, then waits until both processes are ready, so both migrators start together
MIGRATE_TOGETHER = """\
import pathlib, sys, time
import asyncecto
from asyncecto.cli import main
print("asyncecto from", pathlib.Path(asyncecto.__file__).resolve().parent.parent, file=sys.stderr)
here = pathlib.Path(sys.argv[1])
(here / f"ready-{sys.argv[2]}").touch()
deadline = time.monotonic() + 60
while len(list(here.glob("ready-*"))) < 2 and time.monotonic() < deadline:
    time.sleep(0.005)
sys.exit(main(["migrate"]))
"""


def _migration(version: int, first: bool) -> str:
    create = (
        '"CREATE TABLE r29_log (version bigint NOT NULL, backend int NOT NULL DEFAULT pg_backend_pid())", '
        if first
        else ""
    )
    sleep = 1.0 if first else 0.1  # the other process arrives while this one holds the lock
    return (
        f"def up():\n"
        f'    return [{create}"SELECT pg_sleep({sleep})", "INSERT INTO r29_log (version) VALUES ({version})"]\n\n\n'
        f"def down():\n"
        f'    return ["DELETE FROM r29_log WHERE version = {version}"]\n'
    )


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    async with Repo(url, pool_size=1, log=False) as repo:
        result: list[tuple[object, ...]] = (await repo.query(sql)).rows  # the repo is typed Any here
        return result


def test_issue17_r29_two_processes_migrating_a_fresh_database_apply_each_migration_once(
    tmp_path: Path, database_url: str
) -> None:
    name = f"asyncecto_r29_{uuid.uuid4().hex[:10]}"
    url = maintenance_url(build_config(database_url), name)
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "r29"\n\n[tool.asyncecto]\nurl = "{url}"\nmigrations = "db/migrations"\n'
    )
    folder = tmp_path / "db" / "migrations"
    folder.mkdir(parents=True)
    for n, version in enumerate(VERSIONS):
        (folder / f"{version}_step_{n}.py").write_text(_migration(version, n == 0))
    assert asyncio.run(Repo(url).storage_up()) == "created"  # fresh: not even schema_migrations yet
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    root = str(Path(asyncecto.__file__).resolve().parent.parent)  # the asyncecto under test, not another install
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    try:
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE_TOGETHER, str(barrier), str(n)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(2)
        ]
        outputs = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=90)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            outputs.append((proc.returncode, out, err))
        for code, out, err in outputs:
            assert code == 0, (out, err)
            assert f"asyncecto from {root}" in err, err
        waited = [out for _, out, _ in outputs if "waiting for the migration lock" in out]
        assert len(waited) == 1, outputs  # they did run at the same time: one waited for the other
        for version in VERSIONS:  # each migration reported as run by exactly one of them
            assert sum(out.count(f"== Migrated {version} in") for _, out, _ in outputs) == 1, outputs
        applied = asyncio.run(_rows(url, "SELECT version FROM schema_migrations ORDER BY version"))
        assert [int(str(r[0])) for r in applied] == list(VERSIONS)
        runs = asyncio.run(_rows(url, "SELECT version, count(*) FROM r29_log GROUP BY version ORDER BY version"))
        assert [(int(str(v)), c) for v, c in runs] == [(v, 1) for v in VERSIONS]
    finally:
        asyncio.run(Repo(url, log=False).storage_down())


class _Planned(Exception):
    """The one test that fails half-way."""


async def test_issue17_r30_fifty_private_sandboxes_in_parallel_see_only_their_own_rows(database_url: str) -> None:
    key = f"r30-{uuid.uuid4().hex[:8]}@example.com"  # the unique key every sandbox writes
    failing = 17
    seen: dict[int, tuple[int, int, str | None]] = {}

    async def one_test(repo: Repo, i: int) -> None:
        async with sandbox(repo, shared=False):
            await repo.insert(Weather(city=f"r30-{i}"))
            await asyncio.sleep(0)
            # waits on the unique index until the sandbox holding the key rolls back
            user = await repo.insert(User(email=key, password_hash=f"task {i}"))
            if i == failing:
                raise _Planned(i)
            mine = await repo.get_by(User, email=key)
            seen[i] = (
                await repo.aggregate(Weather, "count"),
                await repo.aggregate(User, "count"),
                None if mine is None or mine.id != user.id else mine.password_hash,
            )

    app = "asyncecto-r30"
    settings = {"application_name": app}
    async with Repo(database_url, pool_size=10, pool_timeout=30, log=False, server_settings=settings) as repo:
        results = await asyncio.gather(*(one_test(repo, i) for i in range(50)), return_exceptions=True)
        errors = {i: r for i, r in enumerate(results) if r is not None}
        assert list(errors) == [failing] and isinstance(errors[failing], _Planned)
        assert seen == {i: (1, 1, f"task {i}") for i in range(50) if i != failing}  # nobody saw another's rows
        assert await repo.aggregate(User, "count") == 0  # nothing committed, nothing left
        assert await repo.aggregate(Weather, "count") == 0
        stats = repo.pool_stats()
        assert stats["in_use"] == 0 and stats["size"] == stats["idle"], stats
        idle_in_tx = await repo.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND application_name = $1",
            [app],
        )
        assert idle_in_tx.rows == [(0,)]
