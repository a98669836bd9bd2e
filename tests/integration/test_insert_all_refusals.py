"""``insert_all``'s refusals before any SQL, and its per-schema caches emptying at their bound."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError
from asyncecto.query import from_
from asyncecto.repo import _insert_all

from ..schemas import Address, Weather


async def test_what_insert_all_refuses_sends_nothing(repo: Repo) -> None:
    rows: list[dict[str, Any]] = [{"city": "Oslo"}]
    with pytest.raises(ArgumentError, match="embedded schema Address"):
        await repo.insert_all(Address, rows)
    with pytest.raises(ArgumentError, match="returning= must be True, a list of field names"):
        await repo.insert_all(Weather, rows, returning=[1])  # type: ignore[list-item]
    with pytest.raises(ArgumentError, match="returning= must be True, a list of field names"):
        await repo.insert_all(Weather, rows, returning=[])
    with pytest.raises(ArgumentError, match="field names must be strings, got 3"):
        await repo.insert_all(Weather, [{3: "Oslo"}])  # type: ignore[dict-item]
    assert await repo.aggregate(from_(Weather), "count") == 0


async def test_the_caches_empty_at_their_bound_and_answers_stay_right(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_insert_all, "_CACHE_MAX", 1)
    _insert_all._RETURNING.clear()  # earlier tests in this process filled them
    _insert_all._COLUMNS.clear()
    for n in range(3):
        rows = [{"city": f"c{n}", "temp_lo": n}] if n % 2 else [{"city": f"c{n}"}]
        returning = ["id", "city"] if n % 2 else ["id"]
        count, inserted = await repo.insert_all(Weather, rows, returning=returning)
        assert count == 1 and inserted is not None
        assert inserted[0].city == (f"c{n}" if n % 2 else None)
        assert inserted[0].id == n + 1
    assert len(_insert_all._RETURNING) <= 1 and len(_insert_all._COLUMNS) <= 1
    assert await repo.aggregate(from_(Weather), "count") == 3
