"""Ecto 3.11-3.14 field options against PostgreSQL: load_in_query, writable (insert / never) with
on_writable_violation, UUIDv7 primary keys and timestamps(autogenerate:)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.changeset import cast, change, prepare_changes, put_change
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.query import from_, order_by, select, select_merge
from asyncecto.schema import Timestamps, field, schema

pytestmark = pytest.mark.usefixtures("repo", "parity_tables")

DDL = (
    """CREATE TABLE IF NOT EXISTS so_docs (
        id bigserial PRIMARY KEY, title text UNIQUE, body text, code text,
        secret text DEFAULT 'db-made', locked text, frozen text,
        inserted_at timestamp(0), updated_at timestamp(0))""",
    "ALTER TABLE so_docs ADD COLUMN IF NOT EXISTS sealed text",
    """CREATE TABLE IF NOT EXISTS so_events (
        id uuid PRIMARY KEY, name text, inserted_at timestamptz, updated_at timestamptz)""",
)

OLD = dt.datetime(2020, 1, 1)


class Clock:
    """A timestamps ``autogenerate`` callable: each call one second later than the last."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dt.datetime:
        self.calls += 1
        return dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.calls)


CLOCK = Clock()


@schema("so_docs", timestamps=Timestamps(inserted_at_writable="insert"))
class Doc:
    id: int | None = None
    title: str | None = None
    body: str | None = field(load_in_query=False)
    code: str | None = field(writable="insert")
    secret: str | None = field(writable="never", read_after_writes=True)
    locked: str | None = field(writable="insert", on_writable_violation="raise")
    frozen: str | None = field(writable="never", on_writable_violation="warn")
    sealed: str | None = field(writable="never", on_writable_violation="raise")
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema(
    "so_events",
    primary_key=("id", t.UUID(), {"autogenerate": {"version": 7, "precision": "monotonic"}}),
    timestamps=Timestamps(type="utc_datetime_usec", autogenerate=CLOCK),
)
class Event:
    id: uuid.UUID | None = None
    name: str | None = None
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


async def _create_tables(database_url: str) -> None:
    from asyncecto.repo import build_config

    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        async with conn.transaction():  # one worker at a time: concurrent CREATE TABLE IF NOT EXISTS can collide
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('asyncecto_schema_parity'))")
            for statement in DDL:
                await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def parity_tables(database_url: str) -> None:
    """The tables (made once, committed); each test's rows roll back with its sandbox."""
    asyncio.run(_create_tables(database_url))


async def row(admin: Any, doc_id: int | None) -> dict[str, Any]:
    assert doc_id is not None
    got = await admin.fetchrow("SELECT * FROM so_docs WHERE id = $1", doc_id)
    assert got is not None
    return dict(got)


class Sent:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="sent-schema-parity")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


# -- load_in_query ----------------------------------------------------------------------------


async def test_load_in_query_false_is_not_read_unless_selected(repo: Repo) -> None:
    doc = await repo.insert(Doc(title="a", body="long text"))
    assert doc.body == "long text"  # the insert wrote it and keeps it on the struct
    got = await repo.get_or_raise(Doc, doc.id)
    assert got.title == "a" and got.body is None
    (everything,) = await repo.all(from_(Doc))
    assert everything.body is None
    (picked,) = await repo.all(from_(Doc) | select(["id", "body"]))
    assert picked.body == "long text" and picked.title is None
    (merged,) = await repo.all(from_(Doc) | select_merge(lambda d: {"body": d.body}))
    assert (merged.title, merged.body) == ("a", "long text")


async def test_load_in_query_false_is_still_returned_by_returning_true(repo: Repo) -> None:
    doc = await repo.insert(Doc(title="a", body="b"))
    updated = await repo.update(change(doc, title="b"), returning=True)
    assert updated.body == "b"


# -- writable="insert" ------------------------------------------------------------------------


async def test_insert_only_field_is_written_on_insert_and_kept_on_update(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(cast(Doc(), {"title": "a", "code": "A"}, ["title", "code"]))
    assert (await row(admin, doc.id))["code"] == "A"
    updated = await repo.update(cast(doc, {"title": "b", "code": "B"}, ["title", "code"]))
    stored = await row(admin, doc.id)
    assert (stored["title"], stored["code"]) == ("b", "A")
    assert (updated.title, updated.code) == ("b", "A")  # the dropped change is not applied


async def test_update_of_only_non_writable_changes_sends_nothing(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(Doc(title="a", code="A", updated_at=OLD))
    sent = Sent(repo)
    same = await repo.update(change(doc, code="B", secret="s"))
    assert same == doc
    assert await sent.statements() == []
    assert (await row(admin, doc.id))["updated_at"] == OLD


async def test_changes_added_by_prepare_changes_are_dropped_too(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(Doc(title="a", code="A"))
    cs = change(doc, title="b") | prepare_changes(lambda c: put_change(c, "code", "Z"))
    await repo.update(cs)
    assert (await row(admin, doc.id))["code"] == "A"


async def test_inserted_at_writable_insert_keeps_inserted_at(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(Doc(title="a", inserted_at=OLD))
    await repo.update(change(doc, title="b", inserted_at=dt.datetime(2025, 1, 1)))
    stored = await row(admin, doc.id)
    assert stored["inserted_at"] == OLD and stored["updated_at"] > OLD


# -- writable="never" -------------------------------------------------------------------------


async def test_never_field_is_not_written_by_insert_or_update(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(cast(Doc(), {"title": "a", "secret": "mine"}, ["title", "secret"]))
    assert doc.secret == "db-made"  # read_after_writes reads the column's own default
    assert (await row(admin, doc.id))["secret"] == "db-made"
    plain = await repo.insert(Doc(title="b", secret="on the struct"))
    assert (await row(admin, plain.id))["secret"] == "db-made"
    await repo.update(change(doc, title="c", secret="x"))
    assert (await row(admin, doc.id))["secret"] == "db-made"


async def test_insert_all_refuses_never_fields_and_takes_insert_only_ones(repo: Repo, admin: Any) -> None:
    with pytest.raises(ArgumentError, match="unwritable field 'secret' of Doc"):
        await repo.insert_all(Doc, [{"title": "a", "secret": "x"}])
    count, _ = await repo.insert_all(Doc, [{"title": "a", "code": "A"}])
    assert count == 1
    stored = await admin.fetchrow("SELECT code, secret FROM so_docs")
    assert tuple(stored) == ("A", "db-made")


# -- on_writable_violation --------------------------------------------------------------------


async def test_violation_raise_stops_the_write(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(Doc(title="a", locked="L"))  # writable="insert": allowed on insert
    assert (await row(admin, doc.id))["locked"] == "L"
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match=r"field 'locked' of Doc.*should not be written to during an update"):
        await repo.update(change(doc, title="b", locked="M"))
    assert await sent.statements() == []
    assert (await row(admin, doc.id))["title"] == "a"


async def test_violation_raise_on_insert_is_checked_before_any_sql(repo: Repo) -> None:
    sent = Sent(repo)
    ran: list[bool] = []

    def prepare(c: Any) -> Any:
        ran.append(True)
        return c

    with pytest.raises(ArgumentError, match=r"field 'sealed' of Doc.*during an insert"):
        await repo.insert(change(Doc(title="a"), sealed="S") | prepare_changes(prepare))
    with pytest.raises(ArgumentError, match="field 'sealed' of Doc"):
        await repo.insert(Doc(title="a", sealed="S"))
    assert ran == [] and await sent.statements() == []


async def test_violation_warn_logs_and_drops(repo: Repo, admin: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncecto"):
        doc = await repo.insert(Doc(title="a", frozen="F"))
    assert "field 'frozen' of Doc" in caplog.text and "during an insert" in caplog.text
    assert (await row(admin, doc.id))["frozen"] is None


async def test_violation_nothing_is_silent(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncecto"):
        doc = await repo.insert(Doc(title="a", code="A"))
        await repo.update(change(doc, code="B", title="b"))
    assert "writable" not in caplog.text


# -- upserts ----------------------------------------------------------------------------------


async def test_replace_all_leaves_non_updatable_fields(repo: Repo, admin: Any) -> None:
    first = await repo.insert(Doc(title="a", code="A", body="one"))
    await repo.insert(Doc(title="a", code="B", body="two"), on_conflict="replace_all", conflict_target="title")
    stored = await row(admin, first.id)
    assert (stored["code"], stored["body"], stored["secret"]) == ("A", "two", "db-made")


async def test_replace_of_a_non_updatable_field_is_refused(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="cannot replace non-updatable field 'code' in on_conflict option"):
        await repo.insert(Doc(title="a"), on_conflict=("replace", ["code"]), conflict_target="title")


# -- UUIDv7 keys and timestamps(autogenerate:) ------------------------------------------------


async def test_uuid7_primary_keys_sort_in_insert_order(repo: Repo, admin: Any) -> None:
    made = [await repo.insert(Event(name=f"e{i}")) for i in range(30)]
    assert all(isinstance(e.id, uuid.UUID) and e.id.version == 7 for e in made)
    by_key = await repo.all(from_(Event) | order_by("id"))
    assert [e.name for e in by_key] == [f"e{i}" for i in range(30)]
    in_db = await admin.fetch("SELECT name FROM so_events ORDER BY id")
    assert [r["name"] for r in in_db] == [f"e{i}" for i in range(30)]
    first = made[0].id
    assert first is not None
    assert abs(t.uuid_to_datetime(first) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


async def test_timestamps_autogenerate_gives_both_fields_one_value(repo: Repo, admin: Any) -> None:
    before = CLOCK.calls
    event = await repo.insert(Event(name="a"))
    assert CLOCK.calls == before + 1
    assert (
        event.inserted_at
        == event.updated_at
        == dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=CLOCK.calls)
    )
    updated = await repo.update(change(event, name="b"))
    assert CLOCK.calls == before + 2
    stored = await admin.fetchrow("SELECT inserted_at, updated_at FROM so_events WHERE id = $1", event.id)
    assert stored["inserted_at"] == event.inserted_at
    assert updated.updated_at is not None and event.updated_at is not None
    assert stored["updated_at"] == updated.updated_at > event.updated_at


async def test_update_all_refuses_non_updatable_fields(repo: Repo, admin: Any) -> None:
    doc = await repo.insert(Doc(title="a", code="A"))
    for name in ("code", "secret"):
        with pytest.raises(QueryError, match=f"cannot update non-updatable field '{name}'"):
            await repo.update_all(from_(Doc), set={name: "x"})
    count, _ = await repo.update_all(from_(Doc), set={"title": "b"})
    assert count == 1 and (await row(admin, doc.id))["code"] == "A"
