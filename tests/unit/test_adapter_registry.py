"""Choosing the adapter from the URL scheme, and what the adapter is given (no database needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncecto.adapters import (
    ConnectionSettings,
    adapter_factory,
    known_schemes,
    register_adapter,
    unregister_adapter,
)
from asyncecto.errors import ArgumentError, InvalidURLError
from asyncecto.repo import Repo, RepoConfig
from asyncecto.repo._config import build_config
from tests.fake_adapter import FakeAdapter


@pytest.fixture
def other_scheme() -> Iterator[str]:
    register_adapter("other", FakeAdapter)
    try:
        yield "other"
    finally:
        unregister_adapter("other")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "ecto", "POSTGRESQL"])
def test_the_postgres_schemes_choose_the_postgres_adapter(scheme: str) -> None:
    from asyncecto.adapters.postgres import PostgresAdapter

    assert adapter_factory(scheme) is PostgresAdapter
    repo = Repo(f"{scheme}://u@h/db")
    assert repo.config.scheme == scheme.lower()


def test_an_unknown_scheme_names_itself_the_url_and_the_known_schemes() -> None:
    with pytest.raises(InvalidURLError) as info:
        Repo("mysql://root:pw@h/db")
    assert info.value.part == "scheme"
    assert "unsupported scheme 'mysql'" in str(info.value)
    assert "postgres://, postgresql:// or ecto://" in str(info.value)
    assert "mysql://root:***@h/db" in str(info.value)
    with pytest.raises(ArgumentError, match=r"no adapter for URL scheme 'mysql'; the known schemes are postgres://"):
        adapter_factory("mysql")


def test_a_registered_scheme_is_accepted_and_listed(other_scheme: str) -> None:
    assert known_schemes()[-1] == other_scheme
    made: list[ConnectionSettings] = []

    def factory(settings: ConnectionSettings) -> FakeAdapter:
        made.append(settings)
        return FakeAdapter(settings)

    register_adapter("another", factory)
    try:
        Repo("ANOTHER://u:pw@h:7/db?pool_size=3")
    finally:
        unregister_adapter("another")
    assert [(s.scheme, s.host, s.port, s.user, s.password, s.pool_size) for s in made] == [
        ("another", "h", 7, "u", "pw", 3)
    ]
    repo = Repo("OTHER://u:pw@h:7/db?pool_size=3")
    assert repo.config.scheme == "other"
    assert repo.config.masked_url() == "other://u:***@h:7/db"
    assert repr(repo) == "Repo<new other://u:***@h:7/db>"
    with pytest.raises(InvalidURLError, match=r"use postgres://, postgresql://, ecto:// or other://"):
        Repo("nope://h/db")


def test_unregistering_forgets_the_scheme() -> None:
    register_adapter("gone", FakeAdapter)
    unregister_adapter("gone")
    assert "gone" not in known_schemes()
    with pytest.raises(InvalidURLError, match="unsupported scheme 'gone'"):
        Repo("gone://h/db")


def test_registering_is_refused_for_a_taken_or_malformed_scheme(other_scheme: str) -> None:
    register_adapter(other_scheme, FakeAdapter)  # the same factory again: nothing changes
    with pytest.raises(ArgumentError, match="already has an adapter"):
        register_adapter(other_scheme, lambda settings: FakeAdapter(settings))
    with pytest.raises(ArgumentError, match="already has an adapter"):
        register_adapter("postgres", FakeAdapter)
    with pytest.raises(ArgumentError, match="is not a URL scheme"):
        register_adapter("1x", FakeAdapter)
    with pytest.raises(ArgumentError, match="expected an adapter class or factory"):
        register_adapter("y", "FakeAdapter")  # type: ignore[arg-type]


def test_the_adapter_gets_plain_connection_settings() -> None:
    config = build_config(
        "postgresql://u:pw@db:6000/app?sslmode=require&application_name=svc",
        pool_size=4,
        min_size=2,
        timeout=None,
        cleanup_timeout=2,
        statement_cache_size=0,
    )
    settings = config.connection_settings()
    assert settings == ConnectionSettings(
        scheme="postgresql",
        database="app",
        host="db",
        port=6000,
        user="u",
        password="pw",
        ssl="require",
        timeout=None,
        pool_size=4,
        min_size=2,
        cleanup_timeout=2.0,
        statement_cache_size=0,
        server_settings={"application_name": "svc"},
    )
    assert "pw" not in repr(settings)


def test_scheme_is_not_a_keyword_option() -> None:
    with pytest.raises(ArgumentError, match="unknown option 'scheme'"):
        build_config(database="db", scheme="postgres")
    assert build_config(database="db").scheme == "postgres"
    assert isinstance(build_config(database="db"), RepoConfig)


def test_a_repo_on_another_adapter_never_loads_the_postgres_adapter_or_its_driver() -> None:
    """The proof that a second adapter needs nothing above ``adapters/`` to change."""
    code = (
        "import asyncio, sys\n"
        "from asyncecto import Multi, Repo\n"
        "from tests.fake_adapter import FakeDatabase, register\n"
        "from tests.fake_schemas import Post\n"
        "register()\n"
        "async def main():\n"
        "    async with Repo('fake://h/solo') as repo:\n"
        "        await repo.transaction(Multi.new() | Multi.insert('p', Post(title='t')))\n"
        "        await repo.preload(await repo.all(Post), 'comments')\n"
        "asyncio.run(main())\n"
        "assert FakeDatabase.named('solo').texts()[0] == 'begin'\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('asyncpg', 'asyncecto.adapters.postgres')))\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=root, env=env
    )
    assert result.returncode == 0, result.stderr
