"""Upserts through insert and insert_all: each on_conflict form, conflict targets, the inserted flag."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from asyncecto import Repo, meta, unsafe_fragment
from asyncecto.changeset import change, unique_constraint
from asyncecto.errors import (
    ArgumentError,
    ConstraintError,
    InvalidChangesetError,
    StaleEntryError,
    UniqueViolationError,
)
from asyncecto.query import fragment, from_, update, where

from ..schemas import Weather
from ..upsert_schemas import ArchivedCounter, Counter

pytestmark = pytest.mark.usefixtures("repo")

OLD = dt.datetime(2020, 1, 1)


class Sent:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        repo.telemetry.attach(lambda e: self.sql.append(e.sql), name="sent-upsert")

    async def statements(self) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql


async def seed(repo: Repo) -> int:
    """One stored counter ``a`` (hits 1, code A, old timestamps); its id."""
    _, got = await repo.insert_all(
        Counter,
        [{"name": "a", "hits": 1, "code": "A", "label": "first", "inserted_at": OLD, "updated_at": OLD}],
        returning=["id"],
    )
    assert got is not None
    return got[0].id  # type: ignore[no-any-return]


async def stored(admin: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await admin.fetch("SELECT id, name, hits, code, label_text FROM counters ORDER BY id")
    return [tuple(r) for r in rows]


# -- raise ------------------------------------------------------------------------------------


async def test_raise_is_the_default(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed(repo)
    with pytest.raises(UniqueViolationError, match="counters_name_key"):
        await repo.insert_all(Counter, [{"name": "a"}])
    with pytest.raises(ConstraintError, match="counters_name_key"):
        await repo.insert(Counter(name="a"))
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(
            change(Counter(name="a")) | unique_constraint("name", name="counters_name_key"), on_conflict="raise"
        )
    assert info.value.changeset.errors[0][0] == "name"
    assert len(await stored(admin)) == 1


async def test_conflict_target_with_raise_is_refused(repo: Repo) -> None:
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match=r"conflict_target=.*on_conflict='raise'"):
        await repo.insert_all(Counter, [{"name": "a"}], conflict_target="name")
    with pytest.raises(ArgumentError, match="conflict_target"):
        await repo.insert(Counter(name="a"), conflict_target=["name"])
    assert await sent.statements() == []


# -- nothing ----------------------------------------------------------------------------------


async def test_nothing_without_target_ignores_any_conflict(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed(repo)
    count, got = await repo.insert_all(
        Counter, [{"name": "a", "hits": 9}, {"name": "b", "hits": 2}], on_conflict="nothing", returning=["name"]
    )
    assert count == 1 and got is not None and [c.name for c in got] == ["b"]
    assert [r[1:3] for r in await stored(admin)] == [("a", 1), ("b", 2)]
    assert await repo.insert_all(Counter, [{"name": "a"}, {"name": "b"}], on_conflict="nothing") == (0, None)


async def test_nothing_with_target_ignores_only_that_index(repo: Repo) -> None:
    await seed(repo)
    assert await repo.insert_all(Counter, [{"name": "a"}], on_conflict="nothing", conflict_target="name") == (0, None)
    with pytest.raises(UniqueViolationError, match="counters_name_key"):  # the conflict is on name, not id
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict="nothing", conflict_target=["id"])


async def test_nothing_with_an_unsafe_fragment_target(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed(repo)
    target = unsafe_fragment("(lower(code)) WHERE code IS NOT NULL")
    count, _ = await repo.insert_all(
        Counter,
        [{"name": "b", "code": "a"}, {"name": "c", "code": None}],
        on_conflict="nothing",
        conflict_target=target,
    )
    assert count == 1  # "a" matches "A" through the partial expression index
    assert [r[1] for r in await stored(admin)] == ["a", "c"]


async def test_insert_nothing_ignored_keeps_the_struct_and_says_so(repo: Repo) -> None:
    await seed(repo)
    c = await repo.insert(Counter(name="a", hits=50), on_conflict="nothing")
    assert c.id is None and c.hits == 50  # a database-made key stays unset when the row was ignored
    assert meta(c).inserted is False and meta(c).state == "loaded"
    new = await repo.insert(Counter(name="new"), on_conflict="nothing", conflict_target="name")
    assert isinstance(new.id, int) and meta(new).inserted is True


# -- replace_all / replace / replace_all_except ------------------------------------------------


async def test_replace_all_keeps_the_primary_key_and_inserted_at(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    c = await repo.insert(
        Counter(name="a", hits=7, code="Z", label="second"), on_conflict="replace_all", conflict_target="name"
    )
    assert c.id == first and meta(c).inserted is False
    assert await stored(admin) == [(first, "a", 7, "Z", "second")]
    inserted_at, updated_at = await admin.fetchrow("SELECT inserted_at, updated_at FROM counters")
    assert inserted_at == OLD and updated_at > OLD
    stored_row = await repo.insert(
        Counter(name="a", hits=8), on_conflict="replace_all", conflict_target="name", returning=True
    )
    assert stored_row.inserted_at == OLD and stored_row.hits == 8  # returning=True: the row as stored


async def test_replace_all_in_insert_all_reports_each_row(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    count, got = await repo.insert_all(
        Counter,
        [{"name": "a", "hits": 10}, {"name": "b", "hits": 20}],
        on_conflict="replace_all",
        conflict_target=["name"],
        returning=["id", "name", "hits"],
    )
    assert count == 2 and got is not None
    assert [(c.id == first, c.name, c.hits, meta(c).inserted) for c in got] == [
        (True, "a", 10, False),
        (False, "b", 20, True),
    ]
    # replace_all writes every field: those the rows left out become NULL, as in Ecto
    assert (await stored(admin))[0] == (first, "a", 10, None, None)


async def test_replace_given_fields_only(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    await repo.insert_all(
        Counter,
        [{"name": "a", "hits": 5, "code": "NEW"}],
        on_conflict=("replace", ["hits"]),
        conflict_target="name",
    )
    assert await stored(admin) == [(first, "a", 5, "A", "first")]


async def test_replace_all_except(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    await repo.insert(
        Counter(name="a", hits=3, code="B", label="x"),
        on_conflict=("replace_all_except", ["label", "code"]),
        conflict_target="name",
    )
    assert await stored(admin) == [(first, "a", 3, "A", "first")]


async def test_replace_errors(repo: Repo) -> None:
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match="at least one field"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict=("replace", []), conflict_target="name")
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict=("replace", ["nope"]), conflict_target="name")
    with pytest.raises(ArgumentError, match="unknown field 'nope' in conflict_target"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict="nothing", conflict_target="nope")
    with pytest.raises(ArgumentError, match="needs to know which unique index"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict="replace_all")
    with pytest.raises(ArgumentError, match="needs to know which unique index"):
        await repo.insert(Counter(name="a"), on_conflict=("replace", ["hits"]))
    with pytest.raises(ArgumentError, match="needs a schema"):
        await repo.insert_all("counters", [{"name": "a"}], on_conflict="replace_all", conflict_target="name")
    with pytest.raises(ArgumentError, match="empty list of fields to update"):
        await repo.insert_all(Weather, [{"id": 1}], on_conflict=("replace_all_except", ["city", "temp_lo",
                              "temp_hi", "prcp"]), conflict_target="id")  # fmt: skip
    with pytest.raises(ArgumentError, match="unknown on_conflict"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict="update", conflict_target="name")
    assert await sent.statements() == []


async def test_replace_on_a_schemaless_table_names_columns(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed(repo)
    count, _ = await repo.insert_all(
        "counters", [{"name": "a", "hits": 99}], on_conflict=("replace", ["hits"]), conflict_target="name"
    )
    assert count == 1 and (await stored(admin))[0][2] == 99


# -- update dict and query ---------------------------------------------------------------------


async def test_update_dict_increments_the_stored_row(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    c = await repo.insert(Counter(name="a", hits=100), on_conflict={"inc": {"hits": 1}}, conflict_target="name")
    assert c.id == first and c.hits == 100 and meta(c).inserted is False  # reflects the input ...
    assert (await stored(admin))[0][2] == 2
    c = await repo.insert(
        Counter(name="a", hits=100), on_conflict={"inc": {"hits": 1}}, conflict_target="name", returning=["hits"]
    )
    assert c.hits == 3  # ... unless read back
    c = await repo.insert(Counter(name="b", hits=100), on_conflict={"inc": {"hits": 1}}, conflict_target="name")
    assert meta(c).inserted is True and c.hits == 100


async def test_update_dict_set_and_inc_in_insert_all(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    count, got = await repo.insert_all(
        Counter,
        [{"name": "a", "hits": 5}, {"name": "b", "hits": 6}],
        on_conflict={"set": {"label": "bumped"}, "inc": {"hits": 10}},
        conflict_target="name",
        returning=True,
    )
    assert count == 2 and got is not None
    assert [(c.name, c.hits, c.label, meta(c).inserted) for c in got] == [
        ("a", 11, "bumped", False),
        ("b", 6, None, True),
    ]
    assert got[0].id == first


async def test_update_dict_with_timestamps_sets_updated_at(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed(repo)
    await repo.insert_all(Counter, [{"name": "a"}], on_conflict={"inc": {"hits": 1}}, conflict_target="name")
    assert await admin.fetchval("SELECT updated_at FROM counters") == OLD
    await repo.insert_all(
        Counter, [{"name": "a"}], on_conflict={"inc": {"hits": 1}}, conflict_target="name", timestamps=True
    )
    inserted_at, updated_at = await admin.fetchrow("SELECT inserted_at, updated_at FROM counters")
    assert inserted_at == OLD and updated_at > OLD


async def test_update_dict_errors(repo: Repo) -> None:
    with pytest.raises(ArgumentError, match="unknown key 'add'"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict={"add": {"hits": 1}}, conflict_target="name")
    with pytest.raises(ArgumentError, match="changes no field"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict={"set": {}}, conflict_target="name")


async def test_update_query_with_where_and_excluded(repo: Repo, admin: asyncpg.Connection) -> None:
    first = await seed(repo)
    q = (
        from_(Counter)
        | where(lambda c: c.hits < 10)
        | update(set={"hits": lambda c: fragment("? + EXCLUDED.hits", c.hits)})
    )
    c = await repo.insert(Counter(name="a", hits=4), on_conflict=q, conflict_target="name", returning=["hits"])
    assert (c.id, c.hits, meta(c).inserted) == (first, 5, False)
    count, _ = await repo.insert_all(Counter, [{"name": "a", "hits": 6}], on_conflict=q, conflict_target="name")
    assert count == 1 and (await stored(admin))[0][2] == 11
    # hits is now 11: the where excludes the row, so nothing is written
    assert await repo.insert_all(Counter, [{"name": "a", "hits": 1}], on_conflict=q, conflict_target="name") == (
        0,
        None,
    )
    assert (await stored(admin))[0][2] == 11


async def test_update_query_matching_nothing_is_stale_for_insert(repo: Repo) -> None:
    await seed(repo)
    q = from_(Counter) | where(lambda c: c.hits > 100) | update(set={"hits": 0})
    with pytest.raises(StaleEntryError):
        await repo.insert(Counter(name="a"), on_conflict=q, conflict_target="name")
    given = Counter(name="a")
    assert await repo.insert(given, on_conflict=q, conflict_target="name", allow_stale=True) is given
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(change(Counter(name="a")), on_conflict=q, conflict_target="name", stale_error_field="name")
    assert info.value.changeset.errors[0] == ("name", ("is stale", {"stale": True}))


async def test_update_query_on_another_table_is_refused(repo: Repo) -> None:
    q = from_(Weather) | update(set={"temp_lo": 1})
    with pytest.raises(ArgumentError, match="must be on the table being inserted into"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict=q, conflict_target="name")
    with pytest.raises(ArgumentError, match="no update"):
        await repo.insert_all(Counter, [{"name": "a"}], on_conflict=from_(Counter), conflict_target="name")


# -- prefixes ----------------------------------------------------------------------------------


async def test_upserts_follow_the_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    c = await repo.insert(ArchivedCounter(name="a", hits=1), on_conflict="nothing")
    again = await repo.insert(
        ArchivedCounter(name="a", hits=5), on_conflict={"inc": {"hits": 1}}, conflict_target="name"
    )
    assert again.id == c.id and meta(again).prefix == "archive" and meta(again).inserted is False
    await repo.insert_all(
        Counter, [{"name": "a", "hits": 1}], on_conflict=("replace", ["hits"]), conflict_target="name", prefix="archive"
    )
    assert [tuple(r) for r in await admin.fetch("SELECT name, hits FROM archive.counters")] == [("a", 1)]
    assert await admin.fetchval("SELECT count(*) FROM public.counters") == 0


async def test_upserts_with_associations(repo: Repo, admin: asyncpg.Connection) -> None:
    from ..assoc_schemas import Comment, Post

    post = await repo.insert(Post(title="t", comments=[Comment(text="one")]))
    again = await repo.insert(
        Post(id=post.id, title="t2", comments=[Comment(text="two")]), on_conflict=("replace", ["title"]),
        conflict_target="id",
    )  # fmt: skip
    assert again.id == post.id and meta(again).inserted is False
    assert [tuple(r) for r in await admin.fetch("SELECT text, post_id FROM bl_comments ORDER BY id")] == [
        ("one", post.id),
        ("two", post.id),
    ]
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match="cannot be combined with association changes"):
        await repo.insert(Post(id=post.id, comments=[Comment(text="orphan")]), on_conflict="nothing")
    assert await sent.statements() == []
