"""Single-struct reads and writes against PostgreSQL, with Ecto's semantics."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import asyncpg
import pytest

from asyncecto import Repo, meta, put_meta, replace
from asyncecto.changeset import Changeset, change
from asyncecto.errors import (
    ArgumentError,
    CastError,
    ConstraintError,
    InvalidChangesetError,
    MultipleResultsError,
    NoPrimaryKeyFieldError,
    NoPrimaryKeyValueError,
    NoResultsError,
    StaleEntryError,
)
from asyncecto.query import from_, or_where, order_by, where

from ..schemas import ArchivedNote, Event, Item, Post, PostTag, User, Weather

pytestmark = pytest.mark.usefixtures("repo")


class Sent:
    """Collects the SQL a repo sends (through telemetry)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="sent")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


async def count(admin: asyncpg.Connection, table: str) -> int:
    n: int = await admin.fetchval(f"SELECT count(*) FROM {table}")
    return n


# -- insert -------------------------------------------------------------------------------


async def test_insert_struct_returns_loaded_struct_with_generated_id(repo: Repo, admin: asyncpg.Connection) -> None:
    w = await repo.insert(Weather(city="Kraków", temp_lo=0, temp_hi=23))
    assert isinstance(w.id, int)
    assert (w.city, w.temp_lo, w.temp_hi, w.prcp) == ("Kraków", 0, 23, 0.0)
    m = meta(w)
    assert (m.state, m.source, m.prefix) == ("loaded", "weather", None)
    row = await admin.fetchrow("SELECT city, temp_lo, temp_hi, prcp FROM weather WHERE id = $1", w.id)
    assert tuple(row) == ("Kraków", 0, 23, 0.0)


async def test_insert_changeset_writes_data_and_changes(repo: Repo) -> None:
    w = await repo.insert(change(Weather(city="Oslo"), temp_lo=-5))
    got = await repo.get_or_raise(Weather, w.id)
    assert (got.city, got.temp_lo) == ("Oslo", -5)


async def test_insert_leaves_none_fields_to_database_defaults(repo: Repo, admin: asyncpg.Connection) -> None:
    p = await repo.insert(Post(body="text"))
    assert p.title is None  # the struct reflects the input, as in Ecto
    assert await admin.fetchval("SELECT title FROM posts WHERE id = $1", p.id) == "untitled"
    p2 = await repo.insert(Post(body="text"), returning=["title"])
    assert p2.title == "untitled"


async def test_read_after_writes_field_comes_back(repo: Repo) -> None:
    u = await repo.insert(User(email="a@example.com"))
    assert u.score == 42


async def test_returning_true_reads_every_field(repo: Repo) -> None:
    p = await repo.insert(Post(body="b"), returning=True)
    assert p.title == "untitled" and p.visits == 0 and p.body == "b"


async def test_timestamps_are_set_on_insert(repo: Repo) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    p = await repo.insert(Post(title="t"))
    assert p.inserted_at == p.updated_at
    assert p.inserted_at is not None and p.inserted_at.microsecond == 0 and p.inserted_at.tzinfo is None
    assert p.inserted_at >= before
    u = await repo.insert(User(email="b@example.com"))
    assert u.created_at is not None and u.created_at.tzinfo == dt.UTC
    assert u.created_at == u.updated_at


async def test_user_set_timestamps_win(repo: Repo) -> None:
    old = dt.datetime(2001, 2, 3, 4, 5, 6)
    p = await repo.insert(Post(title="t", inserted_at=old, updated_at=old))
    assert (await repo.get_or_raise(Post, p.id)).inserted_at == old


async def test_field_source_maps_to_column(repo: Repo, admin: asyncpg.Connection) -> None:
    p = await repo.insert(Post(title="t", body="in the content column"))
    assert await admin.fetchval("SELECT content FROM posts WHERE id = $1", p.id) == "in the content column"
    assert (await repo.get_or_raise(Post, p.id)).body == "in the content column"


async def test_virtual_field_is_kept_on_struct_but_not_stored(repo: Repo) -> None:
    p = await repo.insert(Post(title="t", draft_notes="only in memory"))
    assert p.draft_notes == "only in memory"
    assert (await repo.get_or_raise(Post, p.id)).draft_notes is None


async def test_uuid_primary_key_generated_in_python(repo: Repo) -> None:
    item = await repo.insert(Item(name="lamp"))
    assert isinstance(item.uuid, uuid.UUID)
    assert await repo.get(Item, str(item.uuid)) == item
    own = uuid.uuid4()
    assert (await repo.insert(Item(uuid=own, name="own"))).uuid == own


async def test_wrong_typed_value_raises_cast_error_and_writes_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    with pytest.raises(CastError) as info:
        await repo.insert(Weather(city="x", temp_lo="hot"))  # type: ignore[arg-type]
    err = info.value
    assert (err.field, err.value, err.type) == ("temp_lo", "hot", "integer")
    assert "temp_lo" in str(err) and "'hot'" in str(err) and "integer" in str(err)
    assert await count(admin, "weather") == 0


async def test_invalid_changeset_sends_no_sql(repo: Repo, admin: asyncpg.Connection) -> None:
    sent = Sent(repo)
    cs = Changeset(data=Weather(city="x"), errors=(("city", ("is invalid", {})),), valid=False)
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    assert info.value.action == "insert"
    assert info.value.changeset.action == "insert"
    assert "city: is invalid" in str(info.value)
    assert await sent.statements() == []
    assert await count(admin, "weather") == 0


async def test_changeset_with_other_action_is_refused(repo: Repo) -> None:
    cs = Changeset(data=Weather(), action="update")
    with pytest.raises(ArgumentError, match=r"action 'update' was given to Repo\.insert"):
        await repo.insert(cs)


async def test_undeclared_unique_violation_raises_constraint_error(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert(User(email="dup@example.com"))
    with pytest.raises(ConstraintError) as info:
        await repo.insert(User(email="dup@example.com"))
    assert info.value.type == "unique"
    assert info.value.constraint == "users_email_key"
    assert "unique_constraint" in str(info.value)
    assert info.value.__cause__ is not None
    assert await count(admin, "users") == 1


# -- reads --------------------------------------------------------------------------------


async def test_get_casts_the_id_and_returns_none_when_missing(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Lima"))
    assert await repo.get(Weather, w.id) == w
    assert await repo.get(Weather, str(w.id)) == w
    assert await repo.get(Weather, 999_999) is None
    with pytest.raises(NoResultsError):
        await repo.get_or_raise(Weather, 999_999)


async def test_get_with_none_raises(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="given value is None"):
        await repo.get(Weather, None)


async def test_get_with_uncastable_id_raises_cast_error(repo: Repo) -> None:
    with pytest.raises(CastError, match="id"):
        await repo.get(Weather, "abc")


async def test_get_needs_a_single_primary_key(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="exactly one primary key"):
        await repo.get(PostTag, 1)
    with pytest.raises(ArgumentError, match="exactly one primary key"):
        await repo.get(Event, 1)


async def test_get_from_a_query(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Rome"))
    assert await repo.get(from_(Weather) | where(city="Rome"), w.id) == w
    assert await repo.get(from_(Weather) | where(city="Paris"), w.id) is None


async def test_get_by_keywords_and_mapping(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Quito", temp_lo=10))
    assert await repo.get_by(Weather, city="Quito") == w
    assert await repo.get_by(Weather, {"city": "Quito", "temp_lo": 10}) == w
    assert await repo.get_by(Weather, city="Nowhere") is None
    with pytest.raises(NoResultsError):
        await repo.get_by_or_raise(Weather, city="Nowhere")
    assert await repo.get_by_or_raise(Weather, city="Quito") == w


async def test_get_by_with_several_matches_raises(repo: Repo) -> None:
    await repo.insert(Weather(city="Twin"))
    await repo.insert(Weather(city="Twin"))
    with pytest.raises(MultipleResultsError) as info:
        await repo.get_by(Weather, city="Twin")
    assert info.value.count == 2


async def test_one_and_one_or_raise(repo: Repo) -> None:
    assert await repo.one(Weather) is None
    with pytest.raises(NoResultsError, match="expected at least one result"):
        await repo.one_or_raise(Weather)
    w = await repo.insert(Weather(city="Solo"))
    assert await repo.one(Weather) == w
    await repo.insert(Weather(city="Second"))
    with pytest.raises(MultipleResultsError, match="expected at most one result but got 2"):
        await repo.one(Weather)


async def test_all_returns_structs_in_query_order(repo: Repo) -> None:
    for city in ("b", "c", "a"):
        await repo.insert(Weather(city=city))
    assert [w.city for w in await repo.all(from_(Weather) | order_by("city"))] == ["a", "b", "c"]
    assert {w.city for w in await repo.all(Weather)} == {"a", "b", "c"}
    assert all(meta(w).state == "loaded" for w in await repo.all(Weather))


async def test_loaded_struct_fills_unselected_virtual_fields_with_defaults(repo: Repo) -> None:
    p = await repo.insert(Post(title="t", rating=decimal.Decimal("4.5")))
    loaded = await repo.get_or_raise(Post, p.id)
    assert loaded.rating == decimal.Decimal("4.5") and loaded.draft_notes is None


# -- update -------------------------------------------------------------------------------


async def test_update_writes_only_changes_and_bumps_updated_at(repo: Repo, admin: asyncpg.Connection) -> None:
    old = dt.datetime(2001, 2, 3, 4, 5, 6)
    p = await repo.insert(Post(title="t", visits=1, inserted_at=old, updated_at=old))
    await admin.execute("UPDATE posts SET content = 'changed elsewhere' WHERE id = $1", p.id)
    p2 = await repo.update(change(p, visits=2))
    assert p2.visits == 2 and p2.inserted_at == old
    assert p2.updated_at is not None and p2.updated_at > old
    row = await admin.fetchrow("SELECT visits, content FROM posts WHERE id = $1", p.id)
    assert tuple(row) == (2, "changed elsewhere")  # untouched columns were not written


async def test_update_without_changes_sends_no_sql(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Bern"))
    sent = Sent(repo)
    assert await repo.update(change(w, city="Bern")) is w
    assert await repo.update(change(w)) is w
    assert await sent.statements() == []


async def test_update_given_a_struct_raises_with_hint(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Bern"))
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match=r"giving a struct to Repo.update is not supported(.|\n)*change\("):
        await repo.update(replace(w, city="Basel"))  # type: ignore[arg-type]
    assert await sent.statements() == []


async def test_update_of_deleted_row_raises_stale(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Gone"))
    await repo.delete(w)
    with pytest.raises(StaleEntryError, match="attempted to update a stale struct"):
        await repo.update(change(w, city="Back"))
    assert await repo.update(change(w, city="Back"), allow_stale=True) == w


async def test_update_requires_a_primary_key(repo: Repo) -> None:
    with pytest.raises(NoPrimaryKeyValueError):
        await repo.update(change(Weather(city="x"), city="y"))
    e = await repo.insert(Event(kind="k"))
    with pytest.raises(NoPrimaryKeyFieldError):
        await repo.update(change(e, kind="j"))


async def test_update_with_force_bumps_updated_at_only(repo: Repo, admin: asyncpg.Connection) -> None:
    old = dt.datetime(2001, 2, 3, 4, 5, 6)
    p = await repo.insert(Post(title="t", inserted_at=old, updated_at=old))
    p2 = await repo.update(change(p), force=True)
    assert p2.updated_at is not None and p2.updated_at > old
    assert await admin.fetchval("SELECT updated_at FROM posts WHERE id = $1", p.id) == p2.updated_at


async def test_update_read_after_writes(repo: Repo, admin: asyncpg.Connection) -> None:
    u = await repo.insert(User(email="r@example.com"))
    await admin.execute("UPDATE users SET score = 7 WHERE id = $1", u.id)
    u2 = await repo.update(change(u, email="s@example.com"))
    assert u2.score == 7


async def test_composite_primary_key_update_and_delete(repo: Repo, admin: asyncpg.Connection) -> None:
    a = await repo.insert(PostTag(post_id=1, tag="x", weight=1))
    b = await repo.insert(PostTag(post_id=1, tag="y", weight=1))
    await repo.update(change(a, weight=5))
    rows = await admin.fetch("SELECT tag, weight FROM post_tags ORDER BY tag")
    assert [tuple(r) for r in rows] == [("x", 5), ("y", 1)]
    await repo.delete(b)
    assert await count(admin, "post_tags") == 1


# -- delete -------------------------------------------------------------------------------


async def test_delete_marks_struct_deleted(repo: Repo, admin: asyncpg.Connection) -> None:
    w = await repo.insert(Weather(city="Bye"))
    d = await repo.delete(w)
    assert meta(d).state == "deleted"
    assert await count(admin, "weather") == 0
    with pytest.raises(StaleEntryError, match="attempted to delete a stale struct"):
        await repo.delete(w)
    assert await repo.delete(w, allow_stale=True) == w


async def test_delete_without_primary_key_raises(repo: Repo) -> None:
    e = await repo.insert(Event(kind="k"))
    with pytest.raises(NoPrimaryKeyFieldError):
        await repo.delete(e)


# -- insert_or_update, reload ---------------------------------------------------------------


async def test_insert_or_update_dispatches_on_state(repo: Repo) -> None:
    w = await repo.insert_or_update(change(Weather(), city="New"))
    assert meta(w).state == "loaded"
    w2 = await repo.insert_or_update(change(w, city="Newer"))
    assert w2.id == w.id and w2.city == "Newer"
    d = await repo.delete(w2)
    with pytest.raises(ArgumentError, match=r"invalid state for Repo\.insert_or_update: deleted"):
        await repo.insert_or_update(change(d, city="x"))
    with pytest.raises(ArgumentError, match="giving a struct"):
        await repo.insert_or_update(w)  # type: ignore[arg-type]


async def test_reload_one_and_many_keeps_order(repo: Repo, admin: asyncpg.Connection) -> None:
    a = await repo.insert(Weather(city="a"))
    b = await repo.insert(Weather(city="b"))
    await admin.execute("UPDATE weather SET temp_lo = 99 WHERE id = $1", a.id)
    assert (await repo.reload_or_raise(a)).temp_lo == 99
    await repo.delete(b)
    reloaded = await repo.reload([b, a])
    assert reloaded[0] is None and reloaded[1] is not None and reloaded[1].temp_lo == 99
    with pytest.raises(NoResultsError, match="could not reload"):
        await repo.reload_or_raise(b)
    assert await repo.reload([]) == []


async def test_reload_refuses_mixed_schemas_and_missing_keys(repo: Repo) -> None:
    w = await repo.insert(Weather(city="a"))
    p = await repo.insert(Post(title="p"))
    with pytest.raises(ArgumentError, match="one schema"):
        await repo.reload([w, p])
    with pytest.raises(ArgumentError, match="primary key"):
        await repo.reload(Weather(city="unsaved"))


# -- prefixes -----------------------------------------------------------------------------


async def test_schema_prefix_is_used_for_every_operation(repo: Repo, admin: asyncpg.Connection) -> None:
    n = await repo.insert(ArchivedNote(text="old"))
    assert meta(n).prefix == "archive"
    assert await admin.fetchval("SELECT text FROM archive.notes WHERE id = $1", n.id) == "old"
    assert await repo.get(ArchivedNote, n.id) == n
    n2 = await repo.update(change(n, text="older"))
    assert [x.text for x in await repo.all(ArchivedNote)] == ["older"]
    await repo.delete(n2)
    assert await count(admin, "archive.notes") == 0


async def test_struct_meta_prefix_and_per_call_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    w = await repo.insert(put_meta(Weather(city="archived"), prefix="archive"))
    assert meta(w).prefix == "archive"
    assert (await count(admin, "weather"), await count(admin, "archive.weather")) == (0, 1)
    assert await repo.get(Weather, w.id) is None
    assert await repo.get(Weather, w.id, prefix="archive") == w
    # later writes follow the struct's prefix
    await repo.update(change(w, city="still archived"))
    assert await admin.fetchval("SELECT city FROM archive.weather WHERE id = $1", w.id) == "still archived"
    # an explicit prefix= beats the struct's
    w2 = await repo.insert(put_meta(Weather(city="public"), prefix="archive"), prefix="public")
    assert meta(w2).prefix == "public"
    assert await count(admin, "weather") == 1


async def test_schema_prefix_beats_the_per_call_prefix_for_queries(repo: Repo) -> None:
    n = await repo.insert(ArchivedNote(text="x"))
    assert await repo.get(ArchivedNote, n.id, prefix="public") == n


# -- raw SQL and load ---------------------------------------------------------------------


async def test_raw_query_with_parameters(repo: Repo) -> None:
    r = await repo.query("SELECT $1::int + 1 AS n, $2::text AS s", [41, "it's; $1 --"])
    assert r.columns == ["n", "s"] and r.rows == [(42, "it's; $1 --")] and r.num_rows == 1
    ins = await repo.query("INSERT INTO weather (city) VALUES ($1), ($2)", ["a", "b"])
    assert ins.num_rows == 2 and ins.command == "INSERT 0 2"


async def test_load_turns_raw_rows_into_structs(repo: Repo) -> None:
    w = await repo.insert(Weather(city="Raw", temp_lo=1))
    r = await repo.query("SELECT * FROM weather WHERE id = $1", [w.id])
    loaded = repo.load(Weather, (r.columns, r.rows[0]))
    assert loaded == w and meta(loaded).state == "loaded"
    assert repo.load(Weather, {"id": 5, "city": "x", "unknown_column": 1}) == Weather(id=5, city="x", prcp=0.0)
    p = repo.load(Post, {"id": 1, "content": "from column name"})
    assert p.body == "from column name"


# -- review regressions -----------------------------------------------------------------------


async def test_database_errors_on_writes_keep_the_driver_cause(repo: Repo) -> None:
    from asyncecto.errors import DatabaseError

    with pytest.raises(DatabaseError) as info:
        await repo.insert(Weather(city="x", temp_lo=2**40))
    assert info.value.__cause__ is not None and info.value.__cause__ is not info.value
    assert type(info.value.__cause__).__module__.startswith("asyncpg")


async def test_or_where_ands_its_own_fields(repo: Repo) -> None:
    await repo.insert(Weather(city="Kraków", temp_lo=5))
    await repo.insert(Weather(city="Oslo", temp_lo=0))
    await repo.insert(Weather(city="Oslo", temp_lo=7))
    await repo.insert(Weather(city="Rome", temp_lo=0))
    q = from_(Weather) | where(city="Kraków") | or_where(city="Oslo", temp_lo=0) | order_by("city")
    assert [(w.city, w.temp_lo) for w in await repo.all(q)] == [("Kraków", 5), ("Oslo", 0)]


async def test_virtual_changes_are_kept_on_the_returned_struct(repo: Repo) -> None:
    p = await repo.insert(change(Post(title="t"), draft_notes="on insert"))
    assert p.draft_notes == "on insert"
    p2 = await repo.update(change(p, title="u", draft_notes="on update"))
    assert (p2.title, p2.draft_notes) == ("u", "on update")
    p3 = await repo.update(change(p2, draft_notes="only virtual"))
    assert p3.draft_notes == "only virtual"


async def test_a_value_the_type_cannot_load_names_the_field(repo: Repo, admin: asyncpg.Connection) -> None:
    from ..schemas import Typed

    await admin.execute("INSERT INTO typed (status) VALUES ('archived')")
    with pytest.raises(CastError) as info:
        await repo.all(Typed)
    assert (info.value.field, info.value.action, info.value.value) == ("status", "load", "archived")
    assert "Typed.status" in str(info.value)


async def test_a_schema_class_where_a_struct_belongs_is_refused(repo: Repo) -> None:
    for call in (lambda: repo.insert(Weather), lambda: repo.delete(Weather)):
        with pytest.raises(ArgumentError, match="got the class Weather; pass a struct such as Weather"):
            await call()  # type: ignore[no-untyped-call]
    with pytest.raises(ArgumentError, match="got the class Weather"):
        meta(Weather)
    with pytest.raises(ArgumentError, match="got the class Weather"):
        change(Weather, city="x")
    with pytest.raises(ArgumentError, match="got the class Weather"):
        replace(Weather, city="x")
