"""Issue 18, the planner's property: a random pipeline compiles to SQL that PostgreSQL accepts and
returns the rows a reference evaluation in Python returns over the same data.

The pipelines (:mod:`tests.props.pipelines`) join (inner, left, right, full, cross), filter
(``where``/``or_where`` with comparisons, ``IS NULL``, ``IN``, ``LIKE``, ``NOT``/``AND``/``OR``,
arithmetic and ``coalesce``), order (all six directions), take ``distinct`` (plain or ``ON``),
select (struct, field names, expression, tuple, list, dict) and window with ``limit``/``offset``.
Rows are compared in order where the order decides it: rows that tie on the sort keys (all of
them without an ``order_by``) are compared as multisets, position by position run. ``count``
(``repo.aggregate``) and ``repo.exists`` of each query are checked too (``exists`` as Ecto's
``exists?``: it ignores ``limit`` and ``distinct`` but keeps ``offset``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import example, given

from asyncecto import Repo

from ..props.pipelines import (
    DATA,
    DDL,
    Cmp,
    Col,
    Distinct,
    Join,
    Limit,
    Offset,
    OrderBy,
    Pipeline,
    PropLeft,
    PropRight,
    Select,
    Where,
    evaluate,
    normalise,
    pipelines,
    to_query,
)
from ..props.settings import props


@pytest.fixture
async def tables(repo: Repo) -> None:
    """The two tables and their rows, created in the test's sandbox (rolled back with it)."""
    for statement in DDL:
        await repo.query(statement)
    await repo.insert_all(PropLeft, DATA["L"])
    await repo.insert_all(PropRight, DATA["R"])


def _runs(keys: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each run of equal sort keys."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append((start, i))
            start = i
    return runs


async def check(repo: Repo, p: Pipeline) -> None:
    query = to_query(p)
    expected = evaluate(p)
    if any(isinstance(s, Limit | Offset) for s in p.steps) or any(isinstance(s, Distinct) and s.on for s in p.steps):
        assert expected.total, "the strategy gives limit, offset and distinct ON a total order"
    sql, _params = repo.to_sql("all", query)
    loaded = await repo.all(query)
    got = [normalise(p.select(), row, p.tables) for row in loaded]
    assert len(got) == len(expected.rows), (sql, got, expected.rows)
    for start, end in _runs(expected.keys):
        assert Counter(got[start:end]) == Counter(expected.rows[start:end]), (sql, start, got, expected.rows)
    assert await repo.exists(query) is expected.exists, sql
    assert await repo.aggregate(query, "count") == len(expected.rows), sql


@props(200)
@given(p=pipelines())
@example(  # a left join's unmatched rows carry NULLs that a later filter must see as unknown
    p=Pipeline(
        ("L", "R"),
        (Join("left", "R", Cmp("==", Col(0, "id"), Col(1, "a_id"))),),
        (
            Where("and", Cmp("!=", Col(1, "v"), Col(0, "g"))),
            OrderBy((("desc", Col(1, "v")), ("asc", Col(0, "id")), ("asc", Col(1, "id")))),
            Select(("tuple", (("struct", 0), ("struct", 1)))),
            Limit(3),
            Offset(1),
        ),
    )
)
async def test_a_pipeline_returns_what_the_reference_returns(repo: Repo, tables: None, p: Pipeline) -> None:
    await check(repo, p)
