"""Issue 21: ``insert_all``'s SQL is built once per shape (table, columns, types, upsert, returning) and
kept in a small bounded cache; a repeated shape gets the same text object back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from asyncecto.adapters.postgres import _insert_sql
from asyncecto.adapters.postgres._insert_sql import CACHE_SIZE, insert_sql, unnest_body
from asyncecto.query._on_conflict import ConflictPlan, UnsafeReturning

BODY = "SELECT * FROM unnest($1::bigint[], $2::text[])"


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    _insert_sql._insert_cache.clear()
    _insert_sql._unnest_cache.clear()
    yield
    _insert_sql._insert_cache.clear()
    _insert_sql._unnest_cache.clear()


def test_the_same_shape_gets_the_same_text_object() -> None:
    first = insert_sql(None, "comments", ["post_id", "body"], BODY, ["id"])
    again = insert_sql(None, "comments", ("post_id", "body"), BODY, ("id",))  # tuples or lists alike
    assert first is again
    assert (
        first
        == 'INSERT INTO "comments" ("post_id", "body") SELECT * FROM unnest($1::bigint[], $2::text[]) RETURNING "id"'
    )
    body = unnest_body(1, ["bigint", "varchar(255)"])
    assert unnest_body(1, ("bigint", "varchar(255)")) is body
    assert body == "SELECT * FROM unnest($1::bigint[], $2::varchar[])"


@pytest.mark.parametrize(
    "change",
    [
        {"prefix": "archive"},
        {"table": "posts"},
        {"columns": ["body", "post_id"]},
        {"body": "SELECT * FROM unnest($2::bigint[], $3::text[])"},
        {"returning": ["id", "body"]},
        {"returning": [UnsafeReturning("id")]},  # equal to "id" as a str: written raw, not quoted
        {"conflict": ConflictPlan("nothing")},
        {"conflict": ConflictPlan("nothing", ("id",))},
        {"conflict": ConflictPlan("replace", ("id",), None, ("body",)), "inserted_key": ("id",)},
        {"conflict": ConflictPlan("replace", ("id",), None, ("post_id",)), "inserted_key": ("id",)},
    ],
)
def test_another_shape_gets_another_text(change: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "prefix": None,
        "table": "comments",
        "columns": ["post_id", "body"],
        "body": BODY,
        "returning": ["id"],
        "conflict": None,
        "inserted_key": None,
    }
    plain = insert_sql(**base)
    other = insert_sql(**{**base, **change})
    assert other != plain
    assert insert_sql(**{**base, **change}) is other  # and is cached in turn
    assert insert_sql(**base) is plain


def test_unnest_bodies_differ_by_types_and_first_parameter() -> None:
    a = unnest_body(1, ["bigint", "text"])
    assert unnest_body(1, ["integer", "text"]) == a  # integer widens to bigint: the same text
    assert unnest_body(1, ["text", "bigint"]) != a
    assert unnest_body(3, ["bigint", "text"]) == "SELECT * FROM unnest($3::bigint[], $4::text[])"


def test_the_caches_are_bounded() -> None:
    for i in range(CACHE_SIZE + 50):
        insert_sql(None, f"t{i}", ["a"], "VALUES ($1)", ["id"])
        unnest_body(i, ["bigint"])
    assert len(_insert_sql._insert_cache) == CACHE_SIZE
    assert len(_insert_sql._unnest_cache) == CACHE_SIZE
    # the oldest went first; the newest are still there
    last = insert_sql(None, f"t{CACHE_SIZE + 49}", ["a"], "VALUES ($1)", ["id"])
    assert insert_sql(None, f"t{CACHE_SIZE + 49}", ["a"], "VALUES ($1)", ["id"]) is last
    assert (None, "t0", ("a",), "VALUES ($1)", ((False, "id"),), None, None) not in _insert_sql._insert_cache


def test_a_failed_build_caches_nothing() -> None:
    with pytest.raises(Exception, match="column"):
        insert_sql(None, "comments", ["bad\x00name"], BODY, ["id"])
    assert not _insert_sql._insert_cache
