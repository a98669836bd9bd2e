"""Issue 16, defect 4 without a database: how a literal parameter is typed, and the plan cache key."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any, cast

import pytest

from asyncecto import Repo
from asyncecto.query import coalesce, fragment, from_, select, splice, update, where
from asyncecto.query._param_types import literal_db_type
from asyncecto.query._planner import plan

from ..schemas import Post

REPO = Repo("postgres://localhost/never_connected")


def _select(v: Any) -> Any:
    return from_(Post) | select(lambda p: (p.id, v))


@pytest.mark.parametrize(
    ("value", "cast"),
    [
        (1, "$1::integer"),
        (-(2**31), "$1::integer"),
        (2**31, "$1::bigint"),
        (-(2**63), "$1::bigint"),
        (2**63, "$1::numeric"),
        (-(2**63) - 1, "$1::numeric"),
        (True, "$1::boolean"),
        (1.5, "$1::double precision"),
        (decimal.Decimal("1.5"), "$1::numeric"),
        ("s", "$1::text"),
        (dt.date(2024, 1, 1), "$1::date"),
        (dt.datetime(2024, 1, 1), "$1::timestamp"),
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "$1::timestamptz"),
        (dt.time(1, 2), "$1::time"),
        (dt.time(1, 2, tzinfo=dt.UTC), "$1::timetz"),
        (dt.timedelta(days=1), "$1::interval"),
        (uuid.UUID(int=1), "$1::uuid"),
        (b"x", "$1::bytea"),
    ],
)
def test_select_literal_is_cast_to_its_own_type(value: Any, cast: str) -> None:
    sql, params = REPO.to_sql(from_(Post) | where(lambda p: p.id == 1) | select(lambda p: value))
    assert sql == f'SELECT {cast} FROM "posts" AS p0 WHERE (p0."id" = $2)'
    assert params == [value, 1]


def test_select_none_literal_is_left_untyped() -> None:
    assert REPO.to_sql(_select(None))[0] == 'SELECT p0."id", $1 FROM "posts" AS p0'


def test_literal_plan_cache_is_keyed_by_the_literal_type_not_its_value() -> None:
    key = [plan(_select(v))[0] for v in (1, 2, 2**40, 2**70, "a", "b", 1.5, True, None)]
    assert key[0] == key[1]  # same type, other value: one statement
    assert key[4] == key[5]
    assert len({key[0], key[2], key[3], key[4], key[6], key[7], key[8]}) == 7  # another type: another statement


def _items(step: Any) -> Any:
    return from_(cast(Any, "items")) | step | select(lambda i: i.n)


def test_literal_beside_a_typed_expression_is_left_to_postgresql() -> None:
    # a schemaless column: PostgreSQL types the parameter from it (a uuid column takes a str)
    assert REPO.to_sql(_items(where(lambda i: i.uuid == "x")))[0].endswith('WHERE (i0."uuid" = $1)')
    assert REPO.to_sql(_items(where(lambda i: i.n == 1)))[0].endswith('WHERE (i0."n" = $1)')
    # but not an int an integer column would not take, nor a fraction
    assert REPO.to_sql(_items(where(lambda i: i.n == 2**40)))[0].endswith('WHERE (i0."n" = $1::bigint)')
    assert REPO.to_sql(_items(where(lambda i: i.n == 0.5)))[0].endswith('WHERE (i0."n" = $1::double precision)')


def test_literal_in_a_fragment_keeps_strings_untyped() -> None:
    sql, _ = REPO.to_sql(from_(cast(Any, "items")) | select(lambda i: fragment("f(?, ?, ?)", "s", 2, [1])))
    assert sql == 'SELECT f($1, $2::integer, $3) FROM "items" AS i0'
    sql, _ = REPO.to_sql(_items(where(lambda i: fragment("? IN (?)", i.n, splice([1, "a"])))))
    assert sql.endswith('WHERE (i0."n" IN ($1::integer, $2))')


def test_coalesce_literal_takes_the_type_of_its_typed_argument() -> None:
    sql, params = REPO.to_sql(from_(Post) | select(lambda p: coalesce(p.visits, "3")))
    assert (sql, params) == ('SELECT coalesce(p0."visits", $1) FROM "posts" AS p0', [3])
    sql, _ = REPO.to_sql(from_(Post) | select(lambda p: coalesce(None, 3)))
    assert sql == 'SELECT coalesce($1, $2::integer) FROM "posts" AS p0'


def test_literal_set_by_update_all_is_typed_by_its_column() -> None:
    sql, _ = REPO.to_sql("update_all", from_(cast(Any, "items")) | update(set={"n": 1, "s": "x", "f": 0.5}))
    assert sql == 'UPDATE "items" AS i0 SET "n" = $1, "s" = $2, "f" = $3::double precision'


def test_literal_db_type_modes() -> None:
    assert literal_db_type("s", "inferred") is None
    assert literal_db_type(2**40, "inferred") == "bigint"
    assert literal_db_type(1, "fragment") == "integer"
    assert literal_db_type([1], "own") is None
    assert literal_db_type({"a": 1}, "own") is None
    assert literal_db_type(None, "own") is None
