"""repo.insert_all against PostgreSQL: rows, returning, placeholders, queries, batching, COPY, prefixes."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any, cast

import asyncpg
import pytest

from asyncecto import Repo, meta, placeholder
from asyncecto.errors import ArgumentError, CastError, UniqueViolationError
from asyncecto.query import from_, select, where

from ..schemas import Post, Weather
from ..upsert_schemas import ArchivedCounter, Counter, Token

pytestmark = pytest.mark.usefixtures("repo")


class Sent:
    """The statements and parameters a repo sends (through telemetry)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.events: list[tuple[str, tuple[object, ...]]] = []
        repo.telemetry.attach(lambda e: self.events.append((e.sql, e.params)), name="sent-insert-all")

    async def sql(self) -> list[str]:
        await self.repo.telemetry.flush()
        return [s for s, _ in self.events]


async def rows_of(admin: asyncpg.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(sql)]


# -- rows -----------------------------------------------------------------------------------


async def test_rows_are_inserted_and_counted(repo: Repo, admin: asyncpg.Connection) -> None:
    count, returned = await repo.insert_all(Counter, [{"name": "a", "hits": 1}, {"name": "b", "hits": 2}])
    assert (count, returned) == (2, None)
    assert await rows_of(admin, "SELECT name, hits FROM counters ORDER BY name") == [("a", 1), ("b", 2)]


async def test_returning_true_gives_loaded_structs_in_row_order(repo: Repo) -> None:
    count, returned = await repo.insert_all(Counter, [{"name": "a"}, {"name": "b"}], returning=True)
    assert count == 2 and returned is not None
    assert [(c.name, c.hits) for c in returned] == [("a", 0), ("b", 0)]  # hits: the column default
    assert all(isinstance(c.id, int) for c in returned)
    m = meta(returned[0])
    assert (m.state, m.source, m.prefix, m.inserted) == ("loaded", "counters", None, True)


async def test_returning_fields_sets_only_those(repo: Repo) -> None:
    _, returned = await repo.insert_all(Counter, [{"name": "a", "hits": 5}], returning=["id", "hits"])
    assert returned is not None
    [c] = returned
    assert isinstance(c.id, int) and c.hits == 5 and c.name is None


async def test_values_are_dumped_by_field_type_and_mapped_to_source(repo: Repo, admin: asyncpg.Connection) -> None:
    at = dt.datetime(2024, 5, 1, 12, 30, 15)
    await repo.insert_all(
        Post,
        [{"title": "t", "body": "text", "rating": decimal.Decimal("4.5"), "inserted_at": at, "updated_at": at}],
    )
    row = await admin.fetchrow("SELECT title, content, rating, inserted_at FROM posts")
    assert tuple(row) == ("t", "text", decimal.Decimal("4.5"), at)
    await repo.insert_all(Counter, [{"name": "x", "label": "shown", "tags": ["a", "b"]}])
    assert await rows_of(admin, "SELECT label_text, tags FROM counters") == [("shown", ["a", "b"])]


async def test_schemaless_table_takes_values_as_they_are(repo: Repo, admin: asyncpg.Connection) -> None:
    count, returned = await repo.insert_all(
        "counters", [{"name": "a", "label_text": "raw"}, {"name": "b", "label_text": None}], returning=["id", "name"]
    )
    assert count == 2 and returned is not None
    assert [r["name"] for r in returned] == ["a", "b"] and isinstance(returned[0]["id"], int)
    assert await rows_of(admin, "SELECT name, label_text FROM counters ORDER BY name") == [("a", "raw"), ("b", None)]


async def test_table_and_schema_pair_loads_structs_from_that_table(repo: Repo, admin: asyncpg.Connection) -> None:
    _, returned = await repo.insert_all(("counters", Counter), [{"name": "pair"}], returning=True, prefix="archive")
    assert returned is not None and returned[0].name == "pair"
    assert (meta(returned[0]).source, meta(returned[0]).prefix) == ("counters", "archive")
    assert await rows_of(admin, "SELECT name FROM archive.counters") == [("pair",)]
    assert await rows_of(admin, "SELECT name FROM counters") == []


async def test_empty_list_sends_nothing(repo: Repo) -> None:
    sent = Sent(repo)
    assert await repo.insert_all(Counter, []) == (0, None)
    assert await repo.insert_all(Counter, [], returning=True) == (0, [])
    assert await sent.sql() == []


async def test_uuid_primary_key_is_generated(repo: Repo, admin: asyncpg.Connection) -> None:
    _, returned = await repo.insert_all(Token, [{"name": "a"}, {"name": "b"}], returning=True)
    assert returned is not None
    ids = [t.uuid for t in returned]
    assert all(isinstance(i, uuid.UUID) for i in ids) and ids[0] != ids[1]
    assert {r[0] for r in await rows_of(admin, "SELECT uuid FROM tokens")} == set(ids)


async def test_no_timestamps_unless_asked(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert_all(Counter, [{"name": "plain"}])
    assert await rows_of(admin, "SELECT inserted_at, updated_at FROM counters") == [(None, None)]
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    _, returned = await repo.insert_all(Counter, [{"name": "stamped"}], returning=True, timestamps=True)
    assert returned is not None
    c = returned[0]
    assert c.inserted_at is not None and c.inserted_at == c.updated_at and c.inserted_at >= before
    row = await admin.fetchrow("SELECT inserted_at, updated_at FROM counters WHERE name = 'stamped'")
    assert tuple(row) == (c.inserted_at, c.updated_at)


async def test_timestamps_given_in_rows_win(repo: Repo, admin: asyncpg.Connection) -> None:
    at = dt.datetime(2020, 1, 1)
    await repo.insert_all(Counter, [{"name": "old", "inserted_at": at}], timestamps=True)
    row = await admin.fetchrow("SELECT inserted_at, updated_at FROM counters")
    assert row[0] == at and row[1] is not None and row[1] > at


async def test_update_all_timestamps_opt_in(repo: Repo, admin: asyncpg.Connection) -> None:
    at = dt.datetime(2020, 1, 1)
    await repo.insert_all(Counter, [{"name": "a", "updated_at": at}, {"name": "b", "updated_at": at}])
    await repo.update_all(from_(Counter) | where(name="a"), set={"hits": 1})
    assert await admin.fetchval("SELECT updated_at FROM counters WHERE name = 'a'") == at
    count, _ = await repo.update_all(from_(Counter), set={"hits": 2}, timestamps=True)
    assert count == 2
    stamps = await rows_of(admin, "SELECT updated_at FROM counters")
    assert all(s[0] > at for s in stamps)
    with pytest.raises(ArgumentError, match="updated_at"):
        await repo.update_all(from_(Weather), set={"temp_lo": 1}, timestamps=True)


# -- placeholders and subqueries --------------------------------------------------------------


async def test_placeholders_are_sent_once(repo: Repo, admin: asyncpg.Connection) -> None:
    at = dt.datetime(2021, 6, 1, 8, 0, 0)
    sent = Sent(repo)
    rows = [{"name": f"n{i}", "inserted_at": placeholder("at"), "updated_at": placeholder("at")} for i in range(50)]
    count, _ = await repo.insert_all(Counter, rows, placeholders={"at": at})
    assert count == 50
    await sent.sql()
    [(_, params)] = sent.events
    assert params.count(at) == 1 and len(params) == 51  # one per name, one for the placeholder
    assert await admin.fetchval("SELECT count(*) FROM counters WHERE inserted_at = $1 AND updated_at = $1", at) == 50


async def test_placeholder_errors_name_the_key(repo: Repo) -> None:
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match="'missing'"):
        await repo.insert_all(Counter, [{"name": placeholder("missing")}], placeholders={"other": "x"})
    with pytest.raises(ArgumentError, match="no row uses placeholder"):
        await repo.insert_all(Counter, [{"name": "a"}], placeholders={"unused": 1})
    with pytest.raises(ArgumentError, match="different types"):
        await repo.insert_all(Counter, [{"name": placeholder("v"), "hits": placeholder("v")}], placeholders={"v": "1"})
    assert await sent.sql() == []


async def test_a_query_as_a_value_becomes_a_subquery(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert_all(Counter, [{"name": "source", "hits": 7}])
    hits = from_(Counter) | where(name="source") | select(lambda c: c.hits)
    count, returned = await repo.insert_all(
        Counter, [{"name": "copy1", "hits": hits}, {"name": "copy2", "hits": 3}], returning=["name", "hits"]
    )
    assert count == 2 and returned is not None
    assert [(c.name, c.hits) for c in returned] == [("copy1", 7), ("copy2", 3)]


async def test_insert_from_a_query(repo: Repo, admin: asyncpg.Connection) -> None:
    await repo.insert_all(Counter, [{"name": "a", "hits": 1, "code": "A"}, {"name": "b", "hits": 2, "code": "B"}])
    q = from_(Counter) | where(lambda c: c.hits > 1) | select(lambda c: {"name": c.code, "hits": c.hits})
    count, returned = await repo.insert_all(Counter, q, returning=["name", "hits"])
    assert count == 1 and returned is not None and [(c.name, c.hits) for c in returned] == [("B", 2)]
    assert await admin.fetchval("SELECT count(*) FROM counters") == 3
    with pytest.raises(ArgumentError, match="select a dict"):
        await repo.insert_all(Counter, from_(Counter) | select(lambda c: c.name))
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        await repo.insert_all(Counter, from_(Counter) | select(lambda c: {"nope": c.name}))


# -- large lists -------------------------------------------------------------------------------


async def test_long_list_without_returning_uses_copy(repo: Repo, admin: asyncpg.Connection) -> None:
    sent = Sent(repo)
    count, returned = await repo.insert_all(Counter, [{"name": f"n{i}", "hits": i} for i in range(5000)])
    assert (count, returned) == (5000, None)
    statements = await sent.sql()
    assert len(statements) == 1 and statements[0].startswith('COPY "counters" ("name", "hits") FROM STDIN')
    assert await admin.fetchval("SELECT sum(hits) FROM counters") == sum(range(5000))


async def test_short_list_is_one_unnest_statement(repo: Repo) -> None:
    sent = Sent(repo)
    assert await repo.insert_all(Counter, [{"name": f"n{i}"} for i in range(10)]) == (10, None)
    [statement] = await sent.sql()
    assert statement.startswith('INSERT INTO "counters" ("name") SELECT * FROM unnest($1::')


async def test_copy_inside_a_rolled_back_transaction_leaves_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    async with repo.transaction():
        await repo.insert_all(Counter, [{"name": f"n{i}"} for i in range(1000)])
        assert await repo.aggregate(Counter, "count") == 1000
        repo.rollback()
    assert await admin.fetchval("SELECT count(*) FROM counters") == 0


async def test_long_list_with_returning_is_one_unnest_statement(repo: Repo) -> None:
    sent = Sent(repo)
    count, returned = await repo.insert_all(
        Counter, [{"name": f"n{i}", "hits": i} for i in range(20000)], returning=["id", "hits"]
    )
    assert count == 20000 and returned is not None and [c.hits for c in returned[:3]] == [0, 1, 2]
    statements = await sent.sql()
    assert len(statements) == 1 and "unnest(" in statements[0]


async def test_batches_stay_under_the_parameter_limit_in_one_transaction(repo: Repo, admin: asyncpg.Connection) -> None:
    # an array column cannot travel through unnest, so VALUES rows are batched: 3 x 20,000 > 32,767
    sent = Sent(repo)
    rows = [{"name": f"n{i}", "hits": i, "tags": [str(i)]} for i in range(20000)]
    count, returned = await repo.insert_all(Counter, rows, returning=["id"])
    assert count == 20000 and returned is not None and len({c.id for c in returned}) == 20000
    statements = await sent.sql()
    inserts = [s for s in statements if s.startswith("INSERT")]
    # one transaction (in the test sandbox, a savepoint)
    assert len(inserts) == 2 and statements[0] in ("BEGIN", "SAVEPOINT asyncecto_1")
    assert statements[-1] in ("COMMIT", "RELEASE SAVEPOINT asyncecto_1")
    assert max(len(p) for s, p in sent.events if s.startswith("INSERT")) <= 32767
    assert await admin.fetchval("SELECT count(*) FROM counters") == 20000


async def test_a_failing_batch_leaves_no_row_from_earlier_batches(repo: Repo, admin: asyncpg.Connection) -> None:
    rows = [{"name": f"n{i}", "tags": []} for i in range(15000)] + [{"name": "n0", "tags": []}]
    with pytest.raises(UniqueViolationError):
        await repo.insert_all(Counter, rows)
    assert await admin.fetchval("SELECT count(*) FROM counters") == 0


# -- prefixes ----------------------------------------------------------------------------------


@pytest.mark.no_sandbox  # its own repos commit for real: the tables are truncated after it
async def test_prefix_levels(database_url: str, admin: asyncpg.Connection) -> None:
    repo = Repo(database_url, prefix="archive")
    async with repo:
        _, got = await repo.insert_all(Counter, [{"name": "repo-level"}], returning=True)
        assert got is not None and meta(got[0]).prefix == "archive"
        await repo.insert_all(Counter, [{"name": "op-level"}], prefix="public")
    plain = Repo(database_url)
    async with plain:
        _, got = await plain.insert_all(ArchivedCounter, [{"name": "schema-level"}], returning=True)
        assert got is not None and meta(got[0]).prefix == "archive"
        await plain.insert_all(ArchivedCounter, [{"name": "op-beats-schema"}], prefix="public")
    assert await rows_of(admin, "SELECT name FROM archive.counters ORDER BY name") == [
        ("repo-level",),
        ("schema-level",),
    ]
    assert await rows_of(admin, "SELECT name FROM public.counters ORDER BY name") == [
        ("op-beats-schema",),
        ("op-level",),
    ]


# -- bad input: refused before any SQL ---------------------------------------------------------


async def test_bad_rows_are_refused_before_any_sql(repo: Repo) -> None:
    sent = Sent(repo)
    with pytest.raises(ArgumentError, match=r"unknown field 'nope'"):  # rows may differ (test_insert_all_union)
        await repo.insert_all(Counter, [{"name": "a"}, {"name": "b", "nope": "x"}])
    with pytest.raises(ArgumentError, match=r"must be mappings.* at row 1"):
        await repo.insert_all(Counter, cast(Any, [{"name": "a"}, ("name", "b")]))
    with pytest.raises(ArgumentError, match="must be mappings"):
        await repo.insert_all(Counter, cast(Any, [Counter(name="a")]))
    with pytest.raises(ArgumentError, match=r"unknown field 'nme'.*known fields"):
        await repo.insert_all(Counter, [{"nme": "a"}])
    with pytest.raises(ArgumentError, match="'draft_notes' is virtual"):
        await repo.insert_all(Post, [{"title": "a", "draft_notes": "x"}])
    with pytest.raises(CastError, match="hits"):
        await repo.insert_all(Counter, [{"name": "a", "hits": "many"}])
    with pytest.raises(ArgumentError, match="returning=True needs a schema"):
        await repo.insert_all("counters", [{"name": "a"}], returning=True)
    with pytest.raises(ArgumentError, match="list of rows"):
        await repo.insert_all(Counter, cast(Any, {"name": "a"}))
    with pytest.raises(ArgumentError, match="timestamps=True needs a schema with timestamps"):
        await repo.insert_all(Weather, [{"city": "x"}], timestamps=True)
    with pytest.raises(ArgumentError, match="needs a schema, a table name"):
        await repo.insert_all(cast(Any, 42), [{"a": 1}])
    assert await sent.sql() == []


# -- every type through every path -----------------------------------------------------------


async def test_every_type_round_trips_through_each_path(repo: Repo) -> None:
    from ..schemas import Typed
    from .test_types_roundtrip import FULL

    scalars = {k: v for k, v in FULL.items() if k not in ("ints", "texts")}
    sent = Sent(repo)
    # unnest: scalar columns only, read back
    _, got = await repo.insert_all(Typed, [scalars, scalars], returning=True)
    assert got is not None and len(got) == 2
    assert all({k: getattr(s, k) for k in scalars} == scalars for s in got)
    # VALUES: array columns cannot be unnested
    _, got = await repo.insert_all(Typed, [FULL], returning=True)
    assert got is not None and {k: getattr(got[0], k) for k in FULL} == FULL
    # COPY: nothing returned, a long list
    count, _ = await repo.insert_all(Typed, [FULL] * 250)
    assert count == 250
    statements = await sent.sql()
    assert "unnest(" in statements[0] and "VALUES" in statements[1] and statements[2].startswith("COPY")
    copied = await repo.all(from_(Typed) | where(lambda x: x.id > 3))
    assert len(copied) == 250 and all({k: getattr(s, k) for k in FULL} == FULL for s in copied)
