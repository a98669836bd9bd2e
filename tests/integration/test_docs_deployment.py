"""docs/deployment.md, run: every code block, in order, against a real primary, a streaming
standby (``pg_basebackup``) and a PgBouncer in transaction mode in front of the primary.

The guide's host names are replaced by those servers' addresses (``db-primary``, ``db-replica``,
``pgbouncer``); a URL naming any other host fails the test. Python blocks share one namespace and
may use top-level ``await``; a block whose first line is ``# <path>.py`` is a file the next blocks
use (a migration), written under a temporary working folder. The ``ini`` block is started as a
PgBouncer of its own and queried through.
"""

from __future__ import annotations

import ast
import asyncio
import configparser
import re
import sys
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo

from .. import _pgbouncer
from .._pgbouncer import Bouncer
from .._replica import Replication, unavailable_reason

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
_FILE = re.compile(r"# ([\w/.-]+\.py)\n")
_URL_HOSTS = re.compile(r"postgres://[^@/\s\"']*@([^/?\s\"']+)")


def blocks() -> list[tuple[int, str, str]]:
    """The guide's code blocks: (line, language, code)."""
    text = GUIDE.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


def test_the_guide_has_only_blocks_this_test_runs() -> None:
    languages = {lang for _, lang, _ in blocks()}
    assert languages == {"python", "ini"}, languages
    assert sum(lang == "python" for _, lang, _ in blocks()) >= 10


class Servers:
    def __init__(self, rep: Replication, bouncer: Bouncer) -> None:
        self.rep, self.bouncer = rep, bouncer
        self.hosts = {
            "db-primary:5432": f"127.0.0.1:{rep.primary.port}",
            "db-replica:5432": f"127.0.0.1:{rep.standbys[0].port}",
            "pgbouncer:6432": f"127.0.0.1:{bouncer.port}",
        }

    def localize(self, code: str) -> str:
        for name, address in self.hosts.items():
            code = code.replace(name, address)
        for hosts in _URL_HOSTS.findall(code):
            for host in hosts.split(","):
                assert host.startswith("127.0.0.1:"), f"a URL in the guide names a host the test does not map: {host}"
        return code


async def _prepare(rep: Replication) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=rep.primary.port, user="postgres", database="postgres")
    try:  # the application's role: no superuser, so row-level security applies to it
        await conn.execute("CREATE ROLE app LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS PASSWORD 'secret'")
        await conn.execute("CREATE DATABASE app OWNER app")
    finally:
        await conn.close()
    await rep.wait_replayed()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    reason = unavailable_reason() or _pgbouncer.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    rep = Replication.launch(standbys=1)
    bouncer: Bouncer | None = None
    try:
        asyncio.run(_prepare(rep))
        bouncer = Bouncer.launch("127.0.0.1", rep.primary.port, users=("postgres", "app"))
        yield Servers(rep, bouncer)
    finally:
        if bouncer is not None:
            bouncer.stop()
        rep.destroy()


@pytest.fixture
async def guide_module() -> AsyncIterator[types.ModuleType]:
    """The namespace the blocks share (a module, so schemas defined there resolve their names);
    every repo left running in it is stopped after the test."""
    module = types.ModuleType("docs_deployment")
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        for value in list(vars(module).values()):
            if isinstance(value, Repo) and value.state == "running":
                await value.stop()
        del sys.modules[module.__name__]


async def test_every_python_block_runs_in_order(
    servers: Servers, guide_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = vars(guide_module)
    ran = files = 0
    for line, language, code in blocks():
        if language != "python":
            continue
        code = servers.localize(code)
        named = _FILE.match(code)
        if named is not None:  # a file the following blocks use
            path = tmp_path / named.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
            compile(code, str(path), "exec")
            files += 1
            continue
        compiled = compile(code, f"{GUIDE}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, namespace)  # the project's own documentation
        if asyncio.iscoroutine(result):
            await result
        ran += 1
    assert files == 2 and ran >= 10
    stopped = [v for v in namespace.values() if isinstance(v, Repo)]
    assert stopped and all(r.state != "running" for r in stopped)  # the closing block stopped them all
    # what the guide's calls did, checked on the servers themselves
    conn = await asyncpg.connect(host="127.0.0.1", port=servers.rep.primary.port, user="postgres", database="app")
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 3
        assert await conn.fetchval("SELECT count(*) FROM tenant_notes") == 1
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = 'tenant_42'") == 1
        idle = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in transaction%'"
        assert await conn.fetchval(idle) == 0
    finally:
        await conn.close()


async def test_the_pgbouncer_ini_block_runs_a_bouncer(servers: Servers) -> None:
    (ini,) = [code for _, language, code in blocks() if language == "ini"]
    assert "host=db-primary port=5432" in ini
    ini = ini.replace("host=db-primary port=5432", f"host=127.0.0.1 port={servers.rep.primary.port}")
    parsed = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parsed.read_string(ini)
    assert parsed["pgbouncer"]["pool_mode"] == "transaction"
    databases = "\n".join(f"{name} = {value}" for name, value in parsed["databases"].items())
    settings = {key: value for key, value in parsed["pgbouncer"].items()}
    bouncer = Bouncer.launch(users=("app",), databases=databases, settings=settings)
    try:
        url = f"postgres://app:secret@127.0.0.1:{bouncer.port}/app"
        async with Repo(url, pooler="transaction", timeout=5.0) as repo:
            answer = await repo.query("SELECT current_database(), current_user")
            assert tuple(answer.rows[0]) == ("app", "app")
            async with repo.transaction():
                assert (await repo.query("SHOW statement_timeout")).rows[0][0] == "5s"  # SET LOCAL with BEGIN
    finally:
        bouncer.stop()
