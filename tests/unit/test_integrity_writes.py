"""Issue 16, write paths, pure parts: the casts the SQL uses, the inserted flag's SQL, COPY detection."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.adapters.postgres import _insert_sql, _sql
from asyncecto.query import from_, select, type_

from ..schemas import Weather


@pytest.mark.parametrize(
    ("declared", "cast"),
    [
        ("varchar(255)", "varchar"),
        ("character varying(20)", "varchar"),
        ("char(3)", "text"),  # a bare `char` is char(1): never cast to it
        ("character(10)", "text"),
        ("numeric(10,2)", "numeric"),
        ("decimal(5, 1)", "numeric"),
        ("integer", "bigint"),
        ("smallint", "bigint"),
        ("real", "double precision"),
        ("bit(8)", "varbit"),
        ("timestamp(0)", "timestamp"),
        ("timestamptz(3)", "timestamptz"),
        ("timestamp(0) without time zone", "timestamp without time zone"),
        ("time(0)", "time"),
        ("interval day to second(3)", "interval"),
        ("varchar(255)[]", "varchar[]"),
        ("numeric(4,1)[][]", "numeric[][]"),
        ("text", "text"),
        ("jsonb", "jsonb"),
        ("uuid", "uuid"),
        ('"public"."mood"', '"public"."mood"'),
    ],
)
def test_casts_are_never_narrower_than_the_column(declared: str, cast: str) -> None:
    assert _sql.cast_type(declared) == cast


def test_insert_all_unnest_casts_to_unconstrained_types() -> None:
    sql = _insert_sql.unnest_body(2, ["varchar(255)", "numeric(5,2)", "integer", "char(2)"])
    assert sql == "SELECT * FROM unnest($2::varchar[], $3::numeric[], $4::bigint[], $5::text[])"


def test_query_casts_are_never_narrower_than_the_value() -> None:
    repo = Repo("postgres://localhost/unused")
    sql, _ = repo.to_sql(from_(Weather) | select(lambda w: (type_("x", t.String), type_("a", t.Enum({"a": 1})))))
    assert sql == 'SELECT $1::varchar, $2::bigint FROM "weather" AS w0'
    assert "unnest($1::varchar[])" in _sql.per_parent_sql("SELECT 1", 1, t.String(), "k")


def test_upsert_inserted_flag_reads_no_system_column() -> None:
    sql = _insert_sql.insert_sql(
        "archive", "visits", ["region", "name"], "VALUES ($1, $2)", ["name"], None, ["id", "region"]
    )
    assert "xmax" not in sql
    assert sql == (
        'WITH "__upsert" AS (INSERT INTO "archive"."visits" ("region", "name") VALUES ($1, $2) '
        'RETURNING "name" AS "r0", "id" AS "k0", "region" AS "k1") SELECT "__upsert"."r0", '
        'NOT EXISTS (SELECT 1 FROM "archive"."visits" AS "__before" WHERE "__before"."id" = "__upsert"."k0" '
        'AND "__before"."region" = "__upsert"."k1") FROM "__upsert"'
    )
    plain = _insert_sql.insert_sql(None, "visits", ["name"], "VALUES ($1)", ["id"], None, None)
    assert plain == 'INSERT INTO "visits" ("name") VALUES ($1) RETURNING "id"'


@pytest.mark.parametrize(
    ("sql", "direction"),
    [
        ("COPY t TO STDOUT", "out"),
        ("copy (select 1) to stdout with (format csv)", "out"),
        ("\n  -- export\n/* all */ COPY t (a, b) TO STDOUT", "out"),
        ("COPY t FROM STDIN", "in"),
        ("COPY t FROM '/srv/t.csv'", None),
        ("SELECT 'COPY t TO STDOUT'", None),
        ("WITH x AS (SELECT 1) SELECT * FROM x", None),
    ],
)
def test_query_refuses_copy_to_stdout_detection(sql: str, direction: str | None) -> None:
    assert _insert_sql.copy_stdio(sql) == direction


@pytest.mark.parametrize(
    ("sql", "inlined"),
    [
        ("SELECT $1, $2", "SELECT 'a', 2"),
        ("SELECT '$1', $2", "SELECT '$1', 2"),
        ("SELECT 'it''s $1', $1", "SELECT 'it''s $1', 'a'"),
        (r"SELECT E'\' $1', $1", r"SELECT E'\' $1', 'a'"),
        ('SELECT "$1"."x""$1", $1', 'SELECT "$1"."x""$1", \'a\''),
        ("SELECT $1 -- $1\n, $2 /* $1 */", "SELECT 'a' -- $1\n, 2 /* $1 */"),
        ("SELECT $$ $1 $$, $tag$ $1 $tag$, $1", "SELECT $$ $1 $$, $tag$ $1 $tag$, 'a'"),
        ("SELECT a$1, $1", "SELECT a$1, 'a'"),
    ],
)
def test_copy_to_inlines_parameters_only_outside_strings(sql: str, inlined: str) -> None:
    assert _insert_sql.inline_params(sql, ["'a'", "2"]) == inlined
