"""Pure parts of the migsql parity work: EXPLAIN text, format_table, option checks."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.adapters.postgres import _raw
from asyncecto.errors import ArgumentError
from asyncecto.repo import QueryResult
from asyncecto.testing import sandbox


def test_explain_sends_only_the_flags_given() -> None:
    assert _raw.explain_sql("SELECT 1", {"analyze": True, "timing": False, "format": "json"}) == (
        "EXPLAIN (ANALYZE TRUE, TIMING FALSE, FORMAT JSON) SELECT 1"
    )
    assert _raw.explain_generic_sql("SELECT $1, $2", 2, {"costs": False, "format": "text"}) == [
        "PREPARE asyncecto_explain_generic AS SELECT $1, $2",
        "SET LOCAL plan_cache_mode = force_generic_plan",
        "EXPLAIN (COSTS FALSE, FORMAT TEXT) EXECUTE asyncecto_explain_generic(NULL, NULL)",
        "DEALLOCATE asyncecto_explain_generic",
    ]


def test_format_table_pads_and_handles_empty_results() -> None:
    result = QueryResult(["id", "name"], [(1, None), (10, "ann")], 2, "SELECT 2")
    assert Repo.format_table(result) == (
        "+----+------+\n| id | name |\n+----+------+\n| 1  |      |\n| 10 | ann  |\n+----+------+"
    )
    assert Repo.format_table(QueryResult([], [], 0, "SELECT 0")) == ""
    with pytest.raises(ArgumentError, match="format_table takes a QueryResult"):
        Repo.format_table([(1,)])  # type: ignore[arg-type]


def test_after_connect_and_ownership_timeout_are_checked() -> None:
    with pytest.raises(ArgumentError, match="after_connect"):
        Repo("postgres://localhost/x", after_connect=42)
    assert Repo("postgres://localhost/x", after_connect=print).config.after_connect is print
    with pytest.raises(ArgumentError, match="ownership_timeout must be a positive number of seconds or None"):
        sandbox(Repo("postgres://localhost/x"), ownership_timeout=-1)
