"""Ecto parity of raw SQL on the Repo (explain options, table_exists, format_table), connection
``after_connect``, migration NOTICEs, migrate-on-boot helpers and the sandbox's ownership_timeout."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError
from asyncecto.query import from_, where

from ..schemas import Weather


async def test_explain_sends_ectos_flags(repo: Repo) -> None:
    text = await repo.explain(from_(Weather) | where(city="Oslo"), analyze=True, timing=False, summary=True)
    assert "Seq Scan on weather" in text and "actual rows=" in text and "Execution Time" in text
    assert "actual time=" not in text  # TIMING FALSE
    settings = await repo.explain(Weather, settings=True, costs=False, format="json")
    assert "Total Cost" not in settings[0]["Plan"]


async def test_explain_fallback_generic_plan_uses_null_parameters(repo: Repo) -> None:
    q = from_(Weather) | where(city="Oslo")
    text = await repo.explain(q, plan="fallback_generic")
    assert "$1" in text and "weather" in text
    with pytest.raises(ArgumentError, match="cannot be used with plan='fallback_generic'"):
        await repo.explain(q, plan="fallback_generic", analyze=True)
    with pytest.raises(ArgumentError, match="explain plan must be 'custom' or 'fallback_generic', got 'x'"):
        await repo.explain(q, plan="x")


async def test_explain_without_a_wrapping_transaction(repo: Repo) -> None:
    text = await repo.explain(Weather, wrap_in_transaction=False, buffers=True)
    assert "weather" in text
    with pytest.raises(ArgumentError, match="explain option wrap_in_transaction must be True or False"):
        await repo.explain(Weather, wrap_in_transaction="yes")  # type: ignore[arg-type]


async def test_table_exists(repo: Repo) -> None:
    assert await repo.table_exists("weather") is True
    assert await repo.table_exists("no_such_table") is False
    with pytest.raises(ArgumentError, match="table_exists takes a table name, got 3"):
        await repo.table_exists(3)  # type: ignore[arg-type]


async def test_format_table_of_a_query(repo: Repo) -> None:
    result = await repo.query("SELECT 1 AS a, NULL::text AS bb UNION ALL SELECT 22, 'x' ORDER BY a")
    assert repo.format_table(result) == ("+----+----+\n| a  | bb |\n+----+----+\n| 1  |    |\n| 22 | x  |\n+----+----+")
    empty = await repo.query("SELECT 1 AS a WHERE false")
    assert repo.format_table(empty) == "+---+\n| a |\n+---+"
    assert repo.format_table(await repo.query("SELECT")) == ""
