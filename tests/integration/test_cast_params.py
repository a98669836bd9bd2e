"""``QueryEvent.cast_params`` (Ecto's ``cast_params`` metadata): the parameters before dumping,
beside ``params`` (what was sent), on reads, bulk operations, writes, ``insert_all``, preloads and
streams; the same values as ``params`` where asyncecto dumps nothing (raw SQL, transaction
statements)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import QueryEvent, Repo
from asyncecto.changeset import change
from asyncecto.query import from_, placeholder, where

from ..assoc_schemas import Comment, Post
from ..schemas import Status, Typed


async def _events(repo: Repo, seen: list[QueryEvent]) -> list[QueryEvent]:
    await repo.telemetry.flush()
    got = list(seen)
    seen.clear()
    return got


@pytest.fixture
def seen(repo: Repo) -> list[QueryEvent]:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append, name="cast-params-test")
    return events


async def test_a_query_parameter_is_sent_dumped_and_reported_cast(repo: Repo, seen: list[QueryEvent]) -> None:
    await repo.all(from_(Typed) | where(status=Status.DRAFT, size="small"))
    (event,) = await _events(repo, seen)
    assert event.params == ("draft", 1)  # what the driver got
    assert event.cast_params == (Status.DRAFT, "small")  # what the types cast
    # a string cast by the type: "draft" casts to the enum member
    await repo.all(from_(Typed) | where(lambda x: x.status == "draft"))
    (event,) = await _events(repo, seen)
    assert event.params == ("draft",)
    assert event.cast_params == (Status.DRAFT,)


async def test_get_one_exists_aggregate_and_bulk_operations_carry_cast_params(
    repo: Repo, seen: list[QueryEvent]
) -> None:
    await repo.insert(Typed(size="large", status=Status.PUBLISHED))
    await _events(repo, seen)
    got = await repo.get_by(Typed, size="large")
    assert got is not None
    assert await repo.get(Typed, str(got.id)) is not None  # "42" cast to 42
    assert await repo.exists(from_(Typed) | where(size="large"))
    assert await repo.aggregate(from_(Typed) | where(size="large"), "count") == 1
    assert (await repo.update_all(from_(Typed) | where(size="large"), set={"size": "small"}))[0] == 1
    assert (await repo.delete_all(from_(Typed) | where(size="small")))[0] == 1
    by_get_by, by_get, by_exists, by_aggregate, by_update, by_delete = await _events(repo, seen)
    assert (by_get_by.params, by_get_by.cast_params) == ((2,), ("large",))
    assert (by_get.params, by_get.cast_params) == ((got.id,), (got.id,))
    assert (by_exists.params, by_exists.cast_params) == ((2,), ("large",))
    assert (by_aggregate.params, by_aggregate.cast_params) == ((2,), ("large",))
    assert (by_update.params, by_update.cast_params) == ((1, 2), ("small", "large"))
    assert (by_delete.params, by_delete.cast_params) == ((1,), ("small",))


async def test_insert_update_delete_report_the_changes_before_dumping(repo: Repo, seen: list[QueryEvent]) -> None:
    row = await repo.insert(Typed(size="small", status=Status.DRAFT, m={"k": [1]}))
    (insert,) = await _events(repo, seen)
    pairs = list(zip(insert.cast_params or (), insert.params, strict=True))  # one cast value per parameter
    assert ("small", 1) in pairs
    assert (Status.DRAFT, "draft") in pairs
    row = await repo.update(change(row, size="large"))
    (update,) = await _events(repo, seen)
    assert update.cast_params == ("large", row.id)
    assert update.params == (2, row.id)
    await repo.delete(row)
    (delete,) = await _events(repo, seen)
    assert delete.cast_params == delete.params == (row.id,)


async def test_insert_all_reports_rows_before_dumping_on_each_path(repo: Repo, seen: list[QueryEvent]) -> None:
    # same fields in every row: one statement over unnest arrays
    await repo.insert_all(Typed, [{"size": "small"}, {"size": "large"}], returning=["id"])
    (event,) = await _events(repo, seen)
    assert event.cast_params == (["small", "large"],)
    assert event.params == ([1, 2],)
    # rows with different fields: VALUES with DEFAULT, one parameter per given value
    await repo.insert_all(Typed, [{"size": "small"}, {"size": "large", "status": Status.DRAFT}])
    (event,) = await _events(repo, seen)
    assert event.cast_params == ("small", "large", Status.DRAFT)
    assert event.params == (1, 2, "draft")
    # a placeholder is sent once
    await repo.insert_all(Typed, [{"size": placeholder("s")}, {"size": placeholder("s")}], placeholders={"s": "large"})
    (event,) = await _events(repo, seen)
    assert (event.cast_params, event.params) == (("large",), (2,))


async def test_preloads_and_streams_carry_cast_params(repo: Repo, seen: list[QueryEvent]) -> None:
    post = await repo.insert(Post(title="p"))
    await repo.insert(Comment(text="c", post_id=post.id))
    await _events(repo, seen)
    loaded = await repo.preload(post, "comments")
    assert [c.text for c in loaded.comments] == ["c"]
    (preload,) = await _events(repo, seen)
    assert preload.cast_params == preload.params == ([post.id],)
    await repo.insert(Typed(size="small"))
    await _events(repo, seen)
    async with repo.transaction():
        assert [t.size async for t in repo.stream(from_(Typed) | where(size="small"))] == ["small"]
    events = await _events(repo, seen)
    (batch,) = [e for e in events if e.source == "typed"]
    assert (batch.params, batch.cast_params) == ((1,), ("small",))


async def test_raw_sql_and_transaction_statements_report_their_params_as_cast_params(
    repo: Repo, seen: list[QueryEvent]
) -> None:
    await repo.query("SELECT $1::int + $2::int", [1, 2])
    (event,) = await _events(repo, seen)
    assert event.cast_params == event.params == (1, 2)
    async with repo.transaction():
        pass
    for e in await _events(repo, seen):
        assert e.cast_params == e.params == ()


async def test_the_log_and_events_do_not_need_cast_params_when_nobody_listens(repo: Repo) -> None:
    # no handler and the logger off: no event is built, the call works as before
    assert not repo.telemetry._handlers
    rows: list[Any] = await repo.all(from_(Typed) | where(size="small"), log=False)
    assert rows == []
