"""The embedded fallback is a real PostgreSQL, started from pgserver in a folder of ours."""

from __future__ import annotations

import pytest

from asyncecto import Repo, embedded

from .._isolation import ROOT
from ..schemas import Weather


async def test_embedded_server_runs_real_crud() -> None:
    # the checkout's own folder (the suite's embedded fallback uses it too), not pytest's tmp: another
    # pytest session of the same user resets that to 0700, which the server's own user cannot enter
    folder = ROOT / ".asyncecto" / "pgdata"
    socket_dir = embedded.start_embedded(folder)
    repo = Repo(f"postgres://postgres@/embedded_check?host={socket_dir}")
    assert await repo.storage_up() in ("created", "already_up")
    async with repo:
        version = (await repo.query("SHOW server_version_num")).rows[0][0]
        assert int(version) >= 120000
        await repo.query(
            "CREATE TABLE IF NOT EXISTS weather (id bigserial PRIMARY KEY, city text, temp_lo int, "
            "temp_hi int, prcp float8)"
        )
        w = await repo.insert(Weather(city="embedded"))
        assert await repo.get(Weather, w.id) == w


def test_database_url_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/explicit")
    monkeypatch.delenv("ASYNCECTO_EMBEDDED", raising=False)
    assert embedded.database_url("x") == "postgres://u@h/explicit"
    monkeypatch.delenv("DATABASE_URL")
    if embedded.server_answers():
        assert embedded.database_url("x") == "postgres://postgres@127.0.0.1:5432/x"
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/explicit")
    monkeypatch.setenv("ASYNCECTO_EMBEDDED", "1")
    assert embedded.database_url("x").startswith("postgres://postgres@/x?host=")
