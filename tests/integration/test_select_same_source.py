"""The same source selected several times through ``struct``/``map_`` (Ecto: field sets merged into
one fetch): one fetch of the union, and each result holding only its own list's fields."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.query import from_, map_, order_by, select, struct

from ..assoc_schemas import Post
from .blog_data import seed_blog


@pytest.fixture
async def blog(repo: Repo) -> Repo:
    await seed_blog(repo)
    return repo


async def test_one_fetch_of_the_union_and_each_result_keeps_its_own_fields(blog: Repo) -> None:
    events: list[QueryEvent] = []
    blog.telemetry.attach(events.append)
    q = from_(Post) | select(lambda p: (struct(p, ["id"]), struct(p, ["title"]), map_(p, ["visits"]))) | order_by("id")
    rows: list[Any] = await blog.all(q)  # tuples (typed selects are issue 22's)
    await blog.telemetry.flush()
    assert len(events) == 1
    sql = events[0].sql
    assert sql.count('"id"') >= 1 and '"title"' in sql and '"visits"' in sql and '"author_id"' not in sql
    first_ids, first_titles, first_map = rows[0]
    assert first_ids.id == 1 and first_ids.title is None
    assert first_titles.title == "p1" and first_titles.id is None
    assert set(first_map) == {"visits"}
    assert [r[1].title for r in rows] == ["p1", "p2", "p3", "p4"]
