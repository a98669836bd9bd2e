"""The SQL of upserts and bulk inserts, and the option checks that run before it."""

from __future__ import annotations

import pytest

from asyncecto import unsafe_fragment
from asyncecto.adapters.postgres import _insert_sql
from asyncecto.errors import ArgumentError
from asyncecto.query import fragment, from_, update, where
from asyncecto.query._on_conflict import plan_conflict

from ..upsert_schemas import Counter


def sql(on_conflict: object, target: object = None, key: list[str] | None = None) -> tuple[str, list[object]]:
    params: list[object] = []
    plan = plan_conflict(Counter, "counters", on_conflict, target, prefix=None, params=params)
    body = _insert_sql.param_rows(len(params) + 1, 2, 1)
    return _insert_sql.insert_sql(None, "counters", ["name", "hits"], body, ["id"], plan, key), params


def test_raise_is_a_plain_insert() -> None:
    assert sql("raise")[0] == 'INSERT INTO "counters" ("name", "hits") VALUES ($1, $2) RETURNING "id"'


def test_nothing_with_and_without_target() -> None:
    assert sql("nothing")[0].endswith('VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING "id"')
    assert 'ON CONFLICT ("name") DO NOTHING' in sql("nothing", "name")[0]
    frag = sql("nothing", unsafe_fragment("(lower(code)) WHERE code IS NOT NULL"))[0]
    assert "ON CONFLICT (lower(code)) WHERE code IS NOT NULL DO NOTHING" in frag


def test_replace_all_leaves_out_the_key_inserted_at_and_target() -> None:
    text = sql("replace_all", ["name"], key=["id"])[0]
    assert text.endswith(
        'ON CONFLICT ("name") DO UPDATE SET "hits" = EXCLUDED."hits", "code" = EXCLUDED."code", '
        '"tags" = EXCLUDED."tags", "label_text" = EXCLUDED."label_text", '
        '"updated_at" = EXCLUDED."updated_at" RETURNING "id" AS "r0", "id" AS "k0") SELECT "__upsert"."r0", '
        'NOT EXISTS (SELECT 1 FROM "counters" AS "__before" WHERE "__before"."id" = "__upsert"."k0") '
        'FROM "__upsert"'
    )
    assert text.startswith('WITH "__upsert" AS (INSERT INTO "counters" ("name", "hits") VALUES ($1, $2)')
    assert sql("replace_all", ["name"], key=[])[0].endswith('RETURNING "id", (xmax = 0)')  # no key known
    text = sql(("replace_all_except", ["code", "tags"]), "name")[0]
    assert 'SET "hits" = EXCLUDED."hits", "label_text" = EXCLUDED."label_text", "updated_at"' in text
    assert 'DO UPDATE SET "label_text" = EXCLUDED."label_text" RETURNING' in sql(("replace", ["label"]), "name")[0]


def test_update_dict_and_query_parameters_come_first() -> None:
    text, params = sql({"set": {"code": "x"}, "inc": {"hits": 2}}, "name")
    assert text == (
        'INSERT INTO "counters" AS c0 ("name", "hits") VALUES ($3, $4) ON CONFLICT ("name") '
        'DO UPDATE SET "code" = $1, "hits" = c0."hits" + $2 RETURNING "id"'
    )
    assert params == ["x", 2]
    q = (
        from_(Counter)
        | where(lambda c: c.hits < 10)
        | update(set={"hits": lambda c: fragment("? + EXCLUDED.hits", c.hits)})
    )
    text, params = sql(q, "name")
    assert 'DO UPDATE SET "hits" = c0."hits" + EXCLUDED.hits WHERE (c0."hits" < $1)' in text
    assert params == [10]


@pytest.mark.parametrize(
    ("on_conflict", "target", "message"),
    [
        ("raise", "name", "has no effect"),
        ("replace_all", None, "needs to know which unique index"),
        (("replace", []), "name", "at least one field"),
        (("replace", ["nope"]), "name", "unknown field 'nope'"),
        (("replace_all_except", ["nope"]), "name", "unknown field 'nope'"),
        ("nothing", ["nope"], "unknown field 'nope' in conflict_target"),
        ("nothing", [], "empty list"),
        ({"add": {}}, "name", "unknown key 'add'"),
        ({"set": {"nope": 1}}, "name", "nope"),
        ("replace", "name", "unknown on_conflict"),
        (42, "name", "unknown on_conflict"),
        (from_(Counter) | update(set={"hits": 1}) | where(name="a") | from_, "name", None),
    ],
)
def test_bad_options(on_conflict: object, target: object, message: str | None) -> None:
    if message is None:  # a valid query form: planned without error
        assert plan_conflict(Counter, "counters", on_conflict, target, prefix=None, params=[]) is not None
        return
    with pytest.raises(ArgumentError, match=message):
        plan_conflict(Counter, "counters", on_conflict, target, prefix=None, params=[])


def test_unsafe_fragment_needs_text() -> None:
    with pytest.raises(ArgumentError, match="needs SQL text"):
        unsafe_fragment("  ")


def test_unnest_and_copy_text() -> None:
    assert _insert_sql.unnest_body(3, ["bigint", "text"]) == "SELECT * FROM unnest($3::bigint[], $4::text[])"
    assert _insert_sql.copy_sql(None, "t", ["a"]) == 'COPY "t" ("a") FROM STDIN (FORMAT binary)'
