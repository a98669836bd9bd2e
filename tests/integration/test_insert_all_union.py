"""Issue 19: ``repo.insert_all`` rows that give different fields (Ecto's rule).

The fields of all rows are inserted; a row that leaves one out gets the column's database
``DEFAULT`` and a row that gives ``None`` gets ``NULL``. Every path keeps this: unnest and COPY
cannot send ``DEFAULT``, so such rows go as ``VALUES`` (batches in one transaction).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncecto import Multi, Repo, field, placeholder, schema
from asyncecto import types as t
from asyncecto.errors import ArgumentError, DatabaseError, NotNullViolationError
from asyncecto.repo._insert_all import COPY_MIN_ROWS

from ..props.settings import props
from ..upsert_schemas import ArchivedCounter, Counter, Token

pytestmark = pytest.mark.usefixtures("repo")


@schema("union_items")
class Item:
    id: int | None = None
    name: str | None = None
    hits: int | None = None
    note: str | None = None
    code: str | None = None
    tags: list[str] | None = field(type=t.Array(t.String))


COLUMNS = ("name", "hits", "note", "code", "tags")
DDL = (
    "CREATE TABLE union_items (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'anon', "
    "hits integer DEFAULT 7, note text DEFAULT 'n/a', code text UNIQUE, tags text[] DEFAULT '{d}')",
    "CREATE TABLE union_expected (LIKE union_items INCLUDING ALL)",
)


@pytest.fixture
async def items(repo: Repo) -> type[Item]:
    for statement in DDL:  # in the sandbox: rolled back with the test
        await repo.query(statement)
    return Item


class Sent:
    """The statements a repo sends (through telemetry)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.events: list[tuple[str, tuple[object, ...]]] = []
        repo.telemetry.attach(lambda e: self.events.append((e.sql, e.params)), name="sent-union")

    async def sql(self) -> list[str]:
        await self.repo.telemetry.flush()
        return [s for s, _ in self.events]

    def detach(self) -> None:
        self.repo.telemetry.detach("sent-union")


async def table(admin: asyncpg.Connection, name: str, cols: str = ", ".join(COLUMNS)) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(f"SELECT {cols} FROM {name} ORDER BY id")]


# -- the rule --------------------------------------------------------------------------------


async def test_a_left_out_field_gets_the_default_and_none_gets_null(repo: Repo, items: type[Item], admin: Any) -> None:
    sent = Sent(repo)
    rows: list[dict[str, Any]] = [{"name": "a", "hits": 1}, {"name": "b", "note": None}, {"hits": None}]
    assert await repo.insert_all(items, rows) == (3, None)
    assert await table(admin, "union_items") == [
        ("a", 1, "n/a", None, ["d"]),
        ("b", 7, None, None, ["d"]),
        ("anon", None, "n/a", None, ["d"]),
    ]
    [statement] = await sent.sql()  # one statement: the union of the fields, DEFAULT where left out
    assert statement == (
        'INSERT INTO "union_items" ("name", "hits", "note") VALUES ($1, $2, DEFAULT), ($3, DEFAULT, $4), '
        "(DEFAULT, $5, DEFAULT)"
    )


async def test_schemaless_rows_get_the_defaults_too(repo: Repo, items: type[Item], admin: Any) -> None:
    rows: list[dict[str, Any]] = [{"name": "a"}, {"hits": 2, "tags": ["x"]}, {}]
    assert await repo.insert_all("union_items", rows, returning=["name", "hits", "tags"]) == (
        3,
        [
            {"name": "a", "hits": 7, "tags": ["d"]},
            {"name": "anon", "hits": 2, "tags": ["x"]},
            {"name": "anon", "hits": 7, "tags": ["d"]},
        ],
    )


async def test_rows_that_give_no_field_are_each_a_row_of_defaults(repo: Repo, items: type[Item], admin: Any) -> None:
    assert await repo.insert_all(items, [{}, {}, {}]) == (3, None)
    assert await table(admin, "union_items") == [("anon", 7, "n/a", None, ["d"])] * 3
    _, got = await repo.insert_all("union_items", [{}, {}], returning=["name"])
    assert got == [{"name": "anon"}, {"name": "anon"}]


async def test_returning_gives_structs_in_row_order_with_the_defaults(repo: Repo, items: type[Item]) -> None:
    count, got = await repo.insert_all(items, [{"hits": 1}, {"name": "b", "tags": ["t"]}], returning=True)
    assert count == 2 and got is not None
    assert [(s.name, s.hits, s.note, s.tags) for s in got] == [("anon", 1, "n/a", ["d"]), ("b", 7, "n/a", ["t"])]
    assert got[0].id is not None and got[1].id == got[0].id + 1


async def test_rows_may_still_not_name_unknown_fields(repo: Repo, items: type[Item]) -> None:
    with pytest.raises(ArgumentError, match=r"unknown field 'nope'"):
        await repo.insert_all(items, [{"name": "a"}, {"nope": 1}])
    with pytest.raises(ArgumentError, match=r"must be mappings.*at row 2"):
        await repo.insert_all(items, [{"name": "a"}, {}, ["name"]])  # type: ignore[list-item]


async def test_an_integer_out_of_range_names_its_column(repo: Repo, items: type[Item]) -> None:
    with pytest.raises(DatabaseError, match=r"1099511627776.*hits") as info:
        await repo.insert_all(items, [{"name": "a"}, {"hits": 2**40}])
    assert info.value.column_name == "hits"


# -- every path ------------------------------------------------------------------------------


async def test_a_list_long_enough_for_copy_goes_as_values(repo: Repo, items: type[Item], admin: Any) -> None:
    sent = Sent(repo)
    rows: list[dict[str, Any]] = [{"name": f"n{i}"} if i % 2 else {"hits": i} for i in range(COPY_MIN_ROWS * 2)]
    assert await repo.insert_all(items, rows) == (len(rows), None)
    statements = await sent.sql()
    assert len(statements) == 1 and statements[0].startswith('INSERT INTO "union_items" ("hits", "name") VALUES')
    got = await table(admin, "union_items", "name, hits")
    assert got == [(f"n{i}", 7) if i % 2 else ("anon", i) for i in range(len(rows))]


async def test_batches_of_defaults_run_in_one_transaction_and_fail_whole(
    repo: Repo, items: type[Item], admin: Any
) -> None:
    # 3 fields x 12,000 rows is over the parameter limit: two statements in one transaction
    rows: list[dict[str, Any]] = [{"name": f"n{i}", "hits": i, "note": "x"} for i in range(12000)]
    rows.append({"code": "c"})
    sent = Sent(repo)
    assert (await repo.insert_all(items, rows))[0] == 12001
    statements = await sent.sql()
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 2 and statements[0] in ("BEGIN", "SAVEPOINT asyncecto_1")
    assert max(len(p) for s, p in sent.events if s.startswith("INSERT")) <= 32767
    assert await admin.fetchval("SELECT count(*) FROM union_items") == 12001
    await admin.execute("DELETE FROM union_items")
    bad = [*rows[:-1], {"code": "c"}, {"name": None}]  # the last row breaks NOT NULL: nothing stays
    with pytest.raises(NotNullViolationError):
        await repo.insert_all(items, bad)
    assert await admin.fetchval("SELECT count(*) FROM union_items") == 0


async def test_placeholders_with_left_out_fields(repo: Repo, items: type[Item], admin: Any) -> None:
    rows: list[dict[str, Any]] = [{"name": placeholder("n"), "hits": 1}, {"name": placeholder("n")}, {"hits": 3}]
    assert await repo.insert_all(items, rows, placeholders={"n": "shared"}) == (3, None)
    assert await table(admin, "union_items", "name, hits") == [("shared", 1), ("shared", 7), ("anon", 3)]


async def test_prefix_with_left_out_fields(repo: Repo, admin: Any) -> None:
    assert await repo.insert_all(ArchivedCounter, [{"name": "a", "code": "x"}, {"name": "b"}]) == (2, None)
    assert await repo.insert_all(Counter, [{"hits": 1}, {"name": "d"}], prefix="archive") == (2, None)
    assert await table(admin, "archive.counters", "name, hits, code") == [
        ("a", 0, "x"),
        ("b", 0, None),
        (None, 1, None),
        ("d", 0, None),
    ]
    assert await admin.fetchval("SELECT count(*) FROM public.counters") == 0


async def test_a_query_value_and_a_left_out_field(repo: Repo, items: type[Item], admin: Any) -> None:
    from asyncecto.query import from_, select

    await repo.insert_all(items, [{"name": "src", "hits": 40}])
    q = from_(Item) | select(lambda i: i.hits)
    await repo.insert_all(items, [{"name": "q", "hits": q}, {"name": "d"}])
    assert await table(admin, "union_items", "name, hits") == [("src", 40), ("q", 40), ("d", 7)]


# -- upserts ---------------------------------------------------------------------------------


async def test_on_conflict_with_left_out_fields(repo: Repo, admin: Any) -> None:
    await repo.insert_all(Counter, [{"name": "a", "hits": 5, "code": "a"}, {"name": "b", "hits": 6}])
    # nothing: the new row is inserted with its defaults, the conflicting one is left alone
    _, got = await repo.insert_all(Counter, [{"name": "a"}, {"code": "z"}], on_conflict="nothing", returning=["name"])
    assert got is not None and [c.name for c in got] == [None]
    # replace_all: the existing row takes the new row's values, DEFAULT ones included
    await repo.insert_all(
        Counter,
        [{"name": "a", "code": "new"}, {"name": "c", "hits": 1}],
        on_conflict="replace_all",
        conflict_target=["name"],
    )
    # replace some fields
    await repo.insert_all(
        Counter,
        [{"name": "b"}, {"name": "d", "code": "d"}],
        on_conflict=("replace", ["hits"]),
        conflict_target=["name"],
    )
    # set / inc
    await repo.insert_all(
        Counter, [{"name": "c"}, {"name": "e", "hits": 2}], on_conflict={"inc": {"hits": 10}}, conflict_target=["name"]
    )
    await repo.insert_all(
        Counter,
        [{"name": "d", "hits": 3}, {"name": "f"}],
        on_conflict={"set": {"code": "set"}},
        conflict_target=["name"],
    )
    assert await table(admin, "counters", "name, hits, code") == [
        ("a", 0, "new"),  # replace_all: hits was left out, so its DEFAULT replaced 5
        ("b", 0, None),  # ("replace", ["hits"]): the DEFAULT 0 replaced 6; code kept
        (None, 0, "z"),
        ("c", 11, None),  # inc on the stored 1
        ("d", 0, "set"),  # set: hits kept, code set
        ("e", 2, None),
        ("f", 0, None),
    ]


async def test_upsert_returning_flags_new_rows(repo: Repo) -> None:
    from asyncecto import meta

    await repo.insert_all(Counter, [{"name": "a", "hits": 5}])
    _, got = await repo.insert_all(
        Counter,
        [{"name": "a"}, {"name": "b", "hits": 1}],
        on_conflict=("replace", ["code"]),
        conflict_target=["name"],
        returning=["name", "hits"],
    )
    assert got is not None and [(c.name, c.hits, meta(c).inserted) for c in got] == [("a", 5, False), ("b", 1, True)]


# -- generated fields --------------------------------------------------------------------------


async def test_a_uuid_key_is_generated_for_each_row_that_leaves_it_out(repo: Repo, admin: Any) -> None:
    given_key = uuid.uuid4()
    _, got = await repo.insert_all(Token, [{"uuid": given_key, "name": "a"}, {"name": "b"}, {}], returning=True)
    assert got is not None and got[0].uuid == given_key
    assert all(isinstance(s.uuid, uuid.UUID) for s in got) and len({s.uuid for s in got}) == 3
    assert await admin.fetchval("SELECT count(*) FROM tokens") == 3


async def test_timestamps_fill_each_row_that_leaves_them_out(repo: Repo, admin: Any) -> None:
    old = dt.datetime(2020, 1, 2, 3, 4, 5)
    await repo.insert_all(Counter, [{"name": "a", "inserted_at": old}, {"name": "b", "hits": 1}], timestamps=True)
    got = await table(admin, "counters", "name, hits, inserted_at, updated_at")
    assert got[0][:3] == ("a", 0, old) and got[0][3] is not None and got[0][3] > old
    assert got[1][:2] == ("b", 1) and got[1][2] == got[1][3] == got[0][3]
    await repo.insert_all(Counter, [{"name": "c"}, {"name": "d", "hits": 2}])  # not asked: left NULL
    assert (await table(admin, "counters", "inserted_at"))[2:] == [(None,), (None,)]


async def test_multi_insert_all_with_left_out_fields(repo: Repo, items: type[Item], admin: Any) -> None:
    changes = await repo.transaction(
        Multi.new() | Multi.insert_all("rows", items, [{"name": "a"}, {"hits": 2}], returning=["name", "hits"])
    )
    count, got = changes["rows"]
    assert count == 2 and [(s.name, s.hits) for s in got] == [("a", 7), ("anon", 2)]


# -- the property: every path equals one insert per row ------------------------------------------

VALUES: dict[str, Any] = {
    "name": st.one_of(st.none(), st.text(alphabet="abc", max_size=3)),
    "hits": st.one_of(st.none(), st.integers(-1000, 1000)),
    "note": st.one_of(st.none(), st.text(alphabet="xyz\u00e9", max_size=3)),
    "tags": st.one_of(st.none(), st.lists(st.text(alphabet="pq", max_size=2), max_size=2)),
}
PATHS = ("unnest", "values", "copy", "schemaless", "placeholders")


def _row(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: VALUES[k] for k in fields})


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    path = draw(st.sampled_from(PATHS))
    fields = ("name", "hits", "note") if path == "unnest" else ("name", "hits", "note", "tags")
    rows = draw(st.lists(_row(fields), min_size=1, max_size=8))
    # NOT NULL name: a None there would fail both ways; keep the property about DEFAULT vs NULL
    rows = [{k: ("" if k == "name" and v is None else v) for k, v in r.items()} for r in rows]
    return path, rows


async def _expected(admin: Any, rows: list[dict[str, Any]]) -> None:
    """One plain INSERT per row, naming only the row's fields (the others take their DEFAULT)."""
    for row in rows:
        if row:
            cols = list(row)
            marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
            await admin.execute(f"INSERT INTO union_expected ({', '.join(cols)}) VALUES ({marks})", *row.values())
        else:
            await admin.execute("INSERT INTO union_expected DEFAULT VALUES")


@props(30)
@given(case=cases())
async def test_rows_with_any_fields_equal_one_insert_per_row(
    repo: Repo, items: type[Item], admin: Any, case: tuple[str, list[dict[str, Any]]]
) -> None:
    path, rows = case
    await admin.execute("DELETE FROM union_items")
    await admin.execute("DELETE FROM union_expected")
    await _expected(admin, rows if path != "copy" else rows * math.ceil(COPY_MIN_ROWS / len(rows)))
    if path == "copy":
        sent = rows * math.ceil(COPY_MIN_ROWS / len(rows))
        assert await repo.insert_all(items, sent) == (len(sent), None)
    elif path == "schemaless":
        count, got = await repo.insert_all("union_items", rows, returning=list(COLUMNS))
        assert count == len(rows) and got is not None
        assert [tuple(g[c] for c in COLUMNS) for g in got] == await table(admin, "union_expected")
    elif path == "placeholders":
        marked = [{k: (placeholder("h") if k == "hits" and v == 5 else v) for k, v in r.items()} for r in rows]
        uses = any(isinstance(v, type(placeholder("h"))) for r in marked for v in r.values())
        count, got = await repo.insert_all(items, marked, placeholders={"h": 5} if uses else None, returning=True)
        assert count == len(rows) and got is not None
    else:
        count, got = await repo.insert_all(items, rows, returning=True)
        assert count == len(rows) and got is not None
        assert [tuple(getattr(s, c) for c in COLUMNS) for s in got] == await table(admin, "union_expected")
    assert await table(admin, "union_items") == await table(admin, "union_expected")
