"""Issue 16, migrations, without a database: the DSL's datetime column types, telling a migration
function that forgot its ``return`` from one that issued commands, and finding the column a query
argument goes to."""

from __future__ import annotations

import pytest

from asyncecto.adapters.postgres._ddl import column_type
from asyncecto.adapters.postgres._errors import _argument_column
from asyncecto.adapters.postgres._sql import insert_sql, update_sql
from asyncecto.migration import add, create, execute, table, timestamps
from asyncecto.migration._dsl import ColumnOptions, collect_result


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        ("utc_datetime", "timestamptz(0)"),
        ("utc_datetime_usec", "timestamptz"),
        ("naive_datetime", "timestamp(0)"),
        ("naive_datetime_usec", "timestamp"),
        (("array", "utc_datetime_usec"), "timestamptz[]"),
        ("time", "time(0)"),
        ("time_usec", "time"),
    ],
)
def test_utc_timestamps_migration_types_are_timestamptz(type_: object, expected: str) -> None:
    assert column_type(type_, ColumnOptions()) == expected  # type: ignore[arg-type]


def test_utc_datetime_usec_precision_is_kept_with_the_time_zone() -> None:
    assert column_type("utc_datetime_usec", ColumnOptions(precision=3)) == "timestamptz(3)"


def forgot_return() -> None:
    "CREATE TABLE t (id int)"  # the mistake under test: no return


def forgot_return_list() -> None:
    sql = ["CREATE TABLE t (id int)"]
    del sql


def dsl_up() -> None:
    with create(table("t")):
        add("name", "text")
        timestamps()


def execute_only() -> None:
    execute("CREATE TABLE t (id int)")


def empty_pass() -> None:
    pass


def empty_ellipsis() -> None: ...


def nothing_on_purpose() -> list[str]:
    """Nothing to do."""
    return []


def returns_sql() -> str:
    return "CREATE TABLE t (id int)"


@pytest.mark.parametrize("fn", [forgot_return, forgot_return_list])
def test_plain_sql_up_returning_none_is_seen_as_doing_nothing(fn: object) -> None:
    commands, did_nothing = collect_result(fn)  # type: ignore[arg-type]
    assert commands == [] and did_nothing


@pytest.mark.parametrize("fn", [dsl_up, execute_only, empty_pass, empty_ellipsis, nothing_on_purpose, returns_sql])
def test_dsl_up_returning_none_and_empty_bodies_are_not_doing_nothing(fn: object) -> None:
    _, did_nothing = collect_result(fn)  # type: ignore[arg-type]
    assert not did_nothing


def test_aware_datetime_error_finds_the_column_of_an_argument() -> None:
    insert = insert_sql(None, "t", ("a", 'we"ird', "c"), ("id",))
    assert [_argument_column(insert, n) for n in (1, 2, 3, 4)] == ["a", 'we"ird', "c", None]
    update = update_sql("p", "t", ("x", "y"), ("id",), ())
    assert [_argument_column(update, n) for n in (1, 2, 3)] == ["x", "y", "id"]
    many = 'INSERT INTO "t" ("a", "b") VALUES ($3, $4), ($5, $6) ON CONFLICT DO NOTHING'
    assert [_argument_column(many, n) for n in (3, 4, 5, 6, 1)] == ["a", "b", "a", "b", None]
    assert _argument_column("SELECT $1::timestamp", 1) is None
    assert _argument_column(None, 1) is None
    assert _argument_column('UPDATE "t" SET "a" = $12', 1) is None
