"""The query DSL without a database: builders, repr, planner, and the SQL text ``repo.to_sql`` shows."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.adapters.postgres._sql import aggregate_sql, exists_sql
from asyncecto.errors import CastError, QueryError
from asyncecto.query import (
    E,
    Query,
    asc,
    asc_nulls_first,
    asc_nulls_last,
    avg,
    coalesce,
    count,
    desc,
    desc_nulls_first,
    desc_nulls_last,
    distinct,
    exclude,
    field,
    first,
    fragment,
    from_,
    group_by,
    having,
    is_nil,
    join,
    last,
    limit,
    lock,
    max_,
    min_,
    offset,
    or_having,
    or_where,
    order_by,
    select,
    sum_,
    type_,
    update,
    where,
)
from asyncecto.query._ast import Param, Source
from asyncecto.query._expr import bindings
from asyncecto.query._planner import plan

from ..schemas import Post, PostTag, Typed, User, Weather

REPO = Repo("postgres://localhost/x")

W = 'SELECT w0."id", w0."city", w0."temp_lo", w0."temp_hi", w0."prcp" FROM "weather" AS w0'
P_COLS = 'p0."id", p0."title", p0."content", p0."visits", p0."rating", p0."inserted_at", p0."updated_at"'
U_COLS = 'u1."id", u1."email", u1."password_hash", u1."score", u1."created_at", u1."updated_at"'


def sql(q: Any) -> str:
    return REPO.to_sql(q)[0]


def params(q: Any) -> list[Any]:
    return REPO.to_sql(q)[1]


def where_sql(cond: Callable[..., Any]) -> tuple[str, list[Any]]:
    return REPO.to_sql(from_(Weather) | where(cond))


# --- comparisons and boolean operators --------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "op"),
    [
        (lambda w: w.temp_lo == 5, "="),
        (lambda w: w.temp_lo != 5, "!="),
        (lambda w: w.temp_lo < 5, "<"),
        (lambda w: w.temp_lo <= 5, "<="),
        (lambda w: w.temp_lo > 5, ">"),
        (lambda w: w.temp_lo >= 5, ">="),
    ],
)
def test_comparison_operators(cond: Callable[..., Any], op: str) -> None:
    assert where_sql(cond) == (f'{W} WHERE (w0."temp_lo" {op} $1)', [5])


@pytest.mark.parametrize(
    ("cond", "op"),
    [
        (lambda w: 5 < w.temp_lo, ">"),  # noqa: SIM300
        (lambda w: 5 <= w.temp_lo, ">="),  # noqa: SIM300
        (lambda w: 5 > w.temp_lo, "<"),  # noqa: SIM300
        (lambda w: 5 >= w.temp_lo, "<="),  # noqa: SIM300
        (lambda w: 5 == w.temp_lo, "="),  # noqa: SIM300
        (lambda w: 5 != w.temp_lo, "!="),  # noqa: SIM300
    ],
)
def test_value_on_the_left_is_reflected_onto_the_field(cond: Callable[..., Any], op: str) -> None:
    assert where_sql(cond) == (f'{W} WHERE (w0."temp_lo" {op} $1)', [5])


def test_comparing_two_fields_sends_no_parameter() -> None:
    assert where_sql(lambda w: w.temp_lo < w.temp_hi) == (f'{W} WHERE (w0."temp_lo" < w0."temp_hi")', [])


def test_and_or_not_nesting() -> None:
    cond = lambda w: ((w.temp_lo == 1) & (w.temp_hi != 2)) | ~(w.prcp < 3.0)  # noqa: E731
    assert where_sql(cond) == (
        f'{W} WHERE (((w0."temp_lo" = $1) AND (w0."temp_hi" != $2)) OR NOT ((w0."prcp" < $3)))',
        [1, 2, 3.0],
    )


def test_chained_and_is_flattened_into_one_group() -> None:
    cond = lambda w: (w.temp_lo == 1) & (w.temp_hi == 2) & (w.city == "x")  # noqa: E731
    assert where_sql(cond) == (
        f'{W} WHERE ((w0."temp_lo" = $1) AND (w0."temp_hi" = $2) AND (w0."city" = $3))',
        [1, 2, "x"],
    )


def test_or_inside_and_keeps_its_parentheses() -> None:
    cond = lambda w: (w.city == "a") & ((w.temp_lo == 1) | (w.temp_hi == 2))  # noqa: E731
    assert where_sql(cond) == (
        f'{W} WHERE ((w0."city" = $1) AND ((w0."temp_lo" = $2) OR (w0."temp_hi" = $3)))',
        ["a", 1, 2],
    )


def test_not_of_an_or() -> None:
    cond = lambda w: ~((w.temp_lo == 1) | (w.temp_hi == 2))  # noqa: E731
    assert where_sql(cond) == (f'{W} WHERE NOT (((w0."temp_lo" = $1) OR (w0."temp_hi" = $2)))', [1, 2])


def test_double_negation() -> None:
    assert where_sql(lambda w: ~~(w.temp_lo == 1)) == (f'{W} WHERE NOT (NOT ((w0."temp_lo" = $1)))', [1])


# --- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "op"),
    [
        (lambda w: w.temp_lo + 2 > 0, "+"),
        (lambda w: w.temp_lo - 2 > 0, "-"),
        (lambda w: w.temp_lo * 2 > 0, "*"),
        (lambda w: w.temp_lo / 2 > 0, "/"),
    ],
)
def test_arithmetic_operators(cond: Callable[..., Any], op: str) -> None:
    assert where_sql(cond) == (f'{W} WHERE ((w0."temp_lo" {op} $1) > $2)', [2, 0])


@pytest.mark.parametrize(
    ("cond", "op"),
    [
        (lambda w: 2 + w.temp_lo > 0, "+"),
        (lambda w: 2 - w.temp_lo > 0, "-"),
        (lambda w: 2 * w.temp_lo > 0, "*"),
        (lambda w: 2 / w.temp_lo > 0, "/"),
    ],
)
def test_reflected_arithmetic_keeps_operand_order(cond: Callable[..., Any], op: str) -> None:
    assert where_sql(cond) == (f'{W} WHERE (($1 {op} w0."temp_lo") > $2)', [2, 0])


def test_arithmetic_precedence_and_unary_minus() -> None:
    cond = lambda w: w.temp_lo + 1 - w.temp_hi * 2 / 3 > -w.temp_hi  # noqa: E731
    assert where_sql(cond) == (
        f'{W} WHERE (((w0."temp_lo" + $1) - ((w0."temp_hi" * $2) / $3)) > -(w0."temp_hi"))',
        [1, 2, 3],
    )


def test_unary_minus_of_a_field_compared_with_a_value() -> None:
    assert where_sql(lambda w: -w.temp_lo > 4) == (f'{W} WHERE (-(w0."temp_lo") > $1)', [4])


def test_arithmetic_between_two_fields() -> None:
    q = from_(Weather) | select(lambda w: w.temp_hi - w.temp_lo)
    assert REPO.to_sql(q) == ('SELECT (w0."temp_hi" - w0."temp_lo") FROM "weather" AS w0', [])


def test_arithmetic_params_are_cast_to_the_field_type() -> None:
    assert where_sql(lambda w: w.temp_lo + "2" > "3") == (f'{W} WHERE ((w0."temp_lo" + $1) > $2)', [2, 3])


# --- in_, like, is_nil ------------------------------------------------------------------------


def test_in_with_a_list_is_one_array_parameter() -> None:
    assert where_sql(lambda w: w.city.in_(["a", "b"])) == (f'{W} WHERE (w0."city" = ANY($1))', [["a", "b"]])


@pytest.mark.parametrize("values", [[], [1], [1, 2], list(range(50))])
def test_in_sql_does_not_depend_on_the_list_length(values: list[int]) -> None:
    assert where_sql(lambda w: w.temp_lo.in_(values)) == (f'{W} WHERE (w0."temp_lo" = ANY($1))', [values])


def test_in_accepts_tuples_and_generators_and_casts_elements() -> None:
    assert params(from_(Weather) | where(lambda w: w.temp_lo.in_(("1", 2)))) == [[1, 2]]
    assert params(from_(Weather) | where(lambda w: w.temp_lo.in_(str(i) for i in range(3)))) == [[0, 1, 2]]


def test_in_of_an_array_field_with_a_value() -> None:
    q = from_(Typed) | where(lambda t: E(Param("3")).in_(t.ints)) | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE ($1 = ANY(t0."ints"))', [3])


def test_in_of_an_array_field_with_a_field() -> None:
    q = from_(Typed) | where(lambda t: t.i.in_(t.ints)) | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE (t0."i" = ANY(t0."ints"))', [])


def test_in_of_an_array_field_with_a_typed_value() -> None:
    q = from_(Typed) | where(lambda t: type_("3", int).in_(t.ints)) | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE ($1::bigint = ANY(t0."ints"))', [3])


def test_not_in() -> None:
    assert where_sql(lambda w: ~w.city.in_(["a"])) == (f'{W} WHERE NOT ((w0."city" = ANY($1)))', [["a"]])


@pytest.mark.parametrize(("method", "op"), [("like", "LIKE"), ("ilike", "ILIKE")])
def test_like_and_ilike(method: str, op: str) -> None:
    q = from_(Weather) | where(lambda w: getattr(w.city, method)("Kr%"))
    assert REPO.to_sql(q) == (f'{W} WHERE (w0."city" {op} $1)', ["Kr%"])


def test_like_against_a_field() -> None:
    q = from_(Post) | where(lambda p: p.title.like(p.body)) | select(lambda p: p.id)
    assert sql(q) == 'SELECT p0."id" FROM "posts" AS p0 WHERE (p0."title" LIKE p0."content")'


def test_is_nil_and_not_is_nil() -> None:
    assert where_sql(lambda w: is_nil(w.city)) == (f'{W} WHERE w0."city" IS NULL', [])
    assert where_sql(lambda w: ~is_nil(w.city)) == (f'{W} WHERE NOT (w0."city" IS NULL)', [])


def test_is_nil_combined_with_or() -> None:
    cond = lambda w: (w.prcp > 0.5) | is_nil(w.prcp)  # noqa: E731
    assert where_sql(cond) == (f'{W} WHERE ((w0."prcp" > $1) OR w0."prcp" IS NULL)', [0.5])


def test_is_nil_of_an_expression() -> None:
    assert where_sql(lambda w: is_nil(w.temp_lo + w.temp_hi)) == (
        f'{W} WHERE (w0."temp_lo" + w0."temp_hi") IS NULL',
        [],
    )


# --- fragment, field, type_ -------------------------------------------------------------------


def test_fragment_with_fields_and_values() -> None:
    q = from_(Weather) | where(lambda w: fragment("lower(?) = ?", w.city, "kraków"))
    assert REPO.to_sql(q) == (f'{W} WHERE (lower(w0."city") = $1)', ["kraków"])


def test_fragment_escaped_question_mark_is_literal() -> None:
    q = from_(Typed) | where(lambda t: fragment("? \\? ?", t.m, "key")) | select(lambda t: t.id)
    assert REPO.to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE (t0."m" ? $1)', ["key"])


def test_fragment_without_placeholders() -> None:
    q = from_(Weather) | select(lambda w: fragment("now()"))
    assert REPO.to_sql(q) == ('SELECT now() FROM "weather" AS w0', [])


def test_fragment_in_select_and_order_by() -> None:
    q = (
        from_(Weather)
        | select(lambda w: fragment("upper(?)", w.city))
        | order_by(lambda w: fragment("length(?)", w.city))
    )
    assert sql(q) == 'SELECT upper(w0."city") FROM "weather" AS w0 ORDER BY length(w0."city")'


def test_fragment_parameter_numbering_with_other_params() -> None:
    q = from_(Weather) | where(lambda w: (w.temp_lo > 1) & fragment("? || ? = ?", w.city, "a", "b"))
    assert REPO.to_sql(q) == (f'{W} WHERE ((w0."temp_lo" > $1) AND w0."city" || $2 = $3)', [1, "a", "b"])


@pytest.mark.parametrize(("text", "args"), [("?", ()), ("? ?", (1,)), ("x", (1,)), ("\\? ?", (1, 2))])
def test_fragment_placeholder_count_must_match(text: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(QueryError, match="placeholder"):
        fragment(text, *args)


def test_field_by_name_equals_attribute_access() -> None:
    a = from_(Weather) | where(lambda w: field(w, "city") == "x")
    b = from_(Weather) | where(lambda w: w.city == "x")
    assert a == b
    assert REPO.to_sql(a) == (f'{W} WHERE (w0."city" = $1)', ["x"])


def test_field_by_name_uses_the_source_column() -> None:
    q = from_(Post) | select(lambda p: field(p, "body"))
    assert sql(q) == 'SELECT p0."content" FROM "posts" AS p0'


def test_field_of_a_joined_binding() -> None:
    q = from_(Post) | join("inner", User, on=lambda p, u: field(u, "id") == field(p, "visits")) | select(lambda p: p.id)
    assert sql(q) == 'SELECT p0."id" FROM "posts" AS p0 INNER JOIN "users" AS u1 ON (u1."id" = p0."visits")'


def test_field_with_an_unknown_name_raises() -> None:
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema Weather"):
        from_(Weather) | where(lambda w: field(w, "nope") == 1)


def test_field_needs_a_binding() -> None:
    with pytest.raises(QueryError, match=r"field\(\) expects a binding"):
        field("w", "city")


@pytest.mark.parametrize(
    ("typ", "value", "cast", "sent"),
    [
        (t.Id, "12", "bigint", 12),
        (decimal.Decimal, "1.5", "numeric", decimal.Decimal("1.5")),
        (float, 2, "double precision", 2.0),
        (bool, True, "boolean", True),
        (dt.date, "2024-01-02", "date", dt.date(2024, 1, 2)),
        (list[int], ["1", 2], "bigint[]", [1, 2]),
    ],
)
def test_type_casts_the_parameter(typ: Any, value: Any, cast: str, sent: Any) -> None:
    q = from_(Weather) | select(lambda w: type_(value, typ))
    assert REPO.to_sql(q) == (f'SELECT $1::{cast} FROM "weather" AS w0', [sent])


def test_type_int_casts_to_bigint_like_ecto() -> None:
    q = from_(Weather) | select(lambda w: type_(3_000_000_000, int))
    assert REPO.to_sql(q) == ('SELECT $1::bigint FROM "weather" AS w0', [3_000_000_000])


def test_type_str_casts_without_a_length() -> None:
    q = from_(Weather) | select(lambda w: type_("x", str))
    assert sql(q) == 'SELECT $1::varchar FROM "weather" AS w0'


def test_type_of_a_field_is_cast_in_sql() -> None:
    # as Ecto writes type(p.x, :integer): the expression itself is cast
    q = from_(Weather) | select(lambda w: type_(w.temp_lo, int))
    assert REPO.to_sql(q) == ('SELECT w0."temp_lo"::bigint FROM "weather" AS w0', [])
    q = from_(Weather) | select(lambda w: type_(w.temp_lo / 2, float))
    assert REPO.to_sql(q) == ('SELECT ((w0."temp_lo" / $1))::double precision FROM "weather" AS w0', [2])


def test_type_casts_a_compared_value_when_the_other_side_is_a_fragment() -> None:
    q = from_(Weather) | where(lambda w: fragment("length(?)", w.city) > type_("3", t.Id))
    assert REPO.to_sql(q) == (f'{W} WHERE (length(w0."city") > $1::bigint)', [3])


def test_type_cast_failure_raises_cast_error_at_plan_time() -> None:
    q = from_(Weather) | select(lambda w: type_("abc", t.Id))
    with pytest.raises(CastError):
        plan(q)


# --- aggregates and coalesce ------------------------------------------------------------------


def test_aggregates_and_coalesce() -> None:
    q = from_(Weather) | select(
        lambda w: (
            count(),
            count(w.city),
            count(w.city, distinct=True),
            sum_(w.temp_lo),
            avg(w.temp_lo),
            min_(w.temp_lo),
            max_(w.temp_lo),
            coalesce(w.city, "none"),
        )
    )
    assert REPO.to_sql(q) == (
        'SELECT count(*), count(w0."city"), count(DISTINCT w0."city"), sum(w0."temp_lo"), avg(w0."temp_lo"), '
        'min(w0."temp_lo"), max(w0."temp_lo"), coalesce(w0."city", $1) FROM "weather" AS w0',
        ["none"],
    )


def test_aggregate_of_an_expression() -> None:
    q = from_(Weather) | select(lambda w: sum_(w.temp_hi - w.temp_lo))
    assert sql(q) == 'SELECT sum((w0."temp_hi" - w0."temp_lo")) FROM "weather" AS w0'


def test_nested_coalesce() -> None:
    q = from_(Weather) | select(lambda w: coalesce(w.temp_lo, coalesce(w.temp_hi, 0)))
    assert REPO.to_sql(q) == ('SELECT coalesce(w0."temp_lo", coalesce(w0."temp_hi", $1)) FROM "weather" AS w0', [0])


def test_comparison_with_count_casts_to_integer() -> None:
    q = from_(Weather) | group_by("city") | having(lambda w: count() > "2") | select(lambda w: w.city)
    assert params(q) == [2]


def test_comparison_with_max_casts_to_the_field_type() -> None:
    q = from_(Weather) | group_by("city") | having(lambda w: max_(w.temp_lo) >= "7") | select(lambda w: w.city)
    assert params(q) == [7]


# --- select shapes ----------------------------------------------------------------------------


def test_default_select_is_every_persisted_column_in_declaration_order() -> None:
    assert REPO.to_sql(Weather) == (W, [])
    assert sql(Post) == f'SELECT {P_COLS} FROM "posts" AS p0'


def test_select_the_source_equals_the_default() -> None:
    assert sql(from_(Post) | select(lambda p: p)) == sql(Post)


def test_select_one_field() -> None:
    assert sql(from_(Post) | select(lambda p: p.body)) == 'SELECT p0."content" FROM "posts" AS p0'


def test_select_tuple_list_and_dict_give_the_same_columns() -> None:
    expected = 'SELECT p0."id", p0."title" FROM "posts" AS p0'
    assert sql(from_(Post) | select(lambda p: (p.id, p.title))) == expected
    assert sql(from_(Post) | select(lambda p: [p.id, p.title])) == expected
    assert sql(from_(Post) | select(lambda p: {"id": p.id, "title": p.title})) == expected


def test_select_nested_shapes_flatten_columns_in_order() -> None:
    q = from_(Post) | select(lambda p: {"a": p.body, "n": (p.id, [p.title, p.visits])})
    assert sql(q) == 'SELECT p0."content", p0."id", p0."title", p0."visits" FROM "posts" AS p0'


def test_select_a_struct_inside_a_shape() -> None:
    q = from_(Post) | select(lambda p: (p.id, p))
    assert sql(q) == f'SELECT p0."id", {P_COLS} FROM "posts" AS p0'


def test_select_partial_struct_by_field_names() -> None:
    assert sql(from_(Post) | select(["id", "body"])) == 'SELECT p0."id", p0."content" FROM "posts" AS p0'


def test_select_partial_struct_with_an_unknown_field_raises() -> None:
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema Post"):
        from_(Post) | select(["id", "nope"])


def test_select_a_literal_value_is_a_parameter() -> None:
    q = from_(Post) | select(lambda p: (p.id, "label", 3))
    # typed by their own values: nothing in the query gives PostgreSQL a type for them
    assert REPO.to_sql(q) == ('SELECT p0."id", $1::text, $2::integer FROM "posts" AS p0', ["label", 3])


def test_select_a_joined_source() -> None:
    q = from_(Post) | join("left", User, on=lambda p, u: u.id == p.visits, as_="u") | select(lambda p, u: (p.title, u))
    assert (
        sql(q)
        == f'SELECT p0."title", {U_COLS} FROM "posts" AS p0 LEFT OUTER JOIN "users" AS u1 ON (u1."id" = p0."visits")'
    )


def test_select_param_comes_before_where_param() -> None:
    q = from_(Post) | where(title="t") | select(lambda p: p.visits + 1)
    assert REPO.to_sql(q) == ('SELECT (p0."visits" + $1) FROM "posts" AS p0 WHERE (p0."title" = $2)', [1, "t"])


# --- joins ------------------------------------------------------------------------------------


JOIN_ON = 'ON (u1."id" = p0."visits")'


@pytest.mark.parametrize(
    ("kind", "keyword"),
    [("inner", "INNER JOIN"), ("left", "LEFT OUTER JOIN"), ("right", "RIGHT OUTER JOIN"), ("full", "FULL OUTER JOIN")],
)
def test_join_kinds(kind: str, keyword: str) -> None:
    q = from_(Post) | join(kind, User, on=lambda p, u: u.id == p.visits) | select(lambda p, u: (p.id, u.email))
    assert sql(q) == f'SELECT p0."id", u1."email" FROM "posts" AS p0 {keyword} "users" AS u1 {JOIN_ON}'


def test_cross_join() -> None:
    q = from_(Post) | join("cross", User) | select(lambda p, u: (p.id, u.id))
    assert sql(q) == 'SELECT p0."id", u1."id" FROM "posts" AS p0 CROSS JOIN "users" AS u1'


def test_named_binding_via_keyword_only_lambda_param() -> None:
    q = (
        from_(Post)
        | join("inner", Post, on=lambda p, c: c.id == p.id, as_="c")
        | where(lambda *, c: c.title == "x")
        | select(lambda *, c: c.title)
    )
    assert REPO.to_sql(q) == (
        'SELECT p1."title" FROM "posts" AS p0 INNER JOIN "posts" AS p1 ON (p1."id" = p0."id") WHERE (p1."title" = $1)',
        ["x"],
    )


def test_named_binding_of_the_from_source() -> None:
    q = from_(Weather, as_="w") | join("cross", Post, as_="p") | where(lambda *, w, p: w.temp_lo == p.visits)
    assert sql(q) == f'{W} CROSS JOIN "posts" AS p1 WHERE (w0."temp_lo" = p1."visits")'


def test_positional_and_named_bindings_together() -> None:
    q = (
        from_(Weather)
        | join("cross", Post)
        | join("inner", User, on=lambda w, p, u: u.id == w.id, as_="u")
        | where(lambda w, *, u: u.email == w.city)
    )
    assert (
        sql(q) == f'{W} CROSS JOIN "posts" AS p1 INNER JOIN "users" AS u2 ON (u2."id" = w0."id") '
        'WHERE (u2."email" = w0."city")'
    )


def test_fewer_positional_params_than_bindings_is_fine() -> None:
    q = from_(Weather) | join("cross", Post) | where(lambda w: w.city == "x")
    assert sql(q) == f'{W} CROSS JOIN "posts" AS p1 WHERE (w0."city" = $1)'


def test_var_positional_lambda_gets_every_binding() -> None:
    q = from_(Weather) | join("cross", Post) | where(lambda *bs: bs[1].visits == bs[0].temp_lo)
    assert sql(q) == f'{W} CROSS JOIN "posts" AS p1 WHERE (p1."visits" = w0."temp_lo")'


def test_several_joins_with_aliases_numbered_by_position() -> None:
    q = (
        from_(Weather)
        | join("cross", Post)
        | join("right", User, on=lambda w, p, u: u.id == w.id)
        | join("full", Typed, on=lambda w, p, u, t: t.id == p.id)
    )
    assert sql(q) == (
        f'{W} CROSS JOIN "posts" AS p1 RIGHT OUTER JOIN "users" AS u2 ON (u2."id" = w0."id") '
        'FULL OUTER JOIN "typed" AS t3 ON (t3."id" = p1."id")'
    )


def test_join_of_a_table_schema_pair_and_a_prefix() -> None:
    q = from_(Weather) | join("inner", ("weather_old", Weather), on=lambda a, b: a.id == b.id, prefix="archive")
    assert sql(q) == f'{W} INNER JOIN "archive"."weather_old" AS w1 ON (w0."id" = w1."id")'


def test_join_on_params_are_numbered_before_where_params() -> None:
    q = (
        from_(Post)
        | join("inner", User, on=lambda p, u: (u.id == p.visits) & (u.email == "e"))
        | where(lambda p: p.title == "t")
        | select(lambda p: p.id)
    )
    assert REPO.to_sql(q) == (
        'SELECT p0."id" FROM "posts" AS p0 INNER JOIN "users" AS u1 ON ((u1."id" = p0."visits") AND (u1."email" = $1)) '
        'WHERE (p0."title" = $2)',
        ["e", "t"],
    )


def test_join_on_value_is_cast_to_the_joined_field_type() -> None:
    q = from_(Post) | join("inner", User, on=lambda p, u: u.score == "7") | select(lambda p: p.id)
    assert params(q) == [7]


def test_order_by_a_joined_field() -> None:
    q = (
        from_(Post)
        | join("left", User, on=lambda p, u: u.id == p.visits)
        | order_by(lambda p, u: [desc(u.email), p.id])
    )
    assert sql(q).endswith(' ORDER BY u1."email" DESC, p0."id"')


# --- where / or_where -------------------------------------------------------------------------


def test_where_keyword_fields_are_anded() -> None:
    q = from_(Weather) | where(city="a", temp_lo=1)
    assert REPO.to_sql(q) == (f'{W} WHERE ((w0."city" = $1) AND (w0."temp_lo" = $2))', ["a", 1])


def test_where_keyword_uses_source_column_and_casts() -> None:
    q = from_(Post) | where(body="b", visits="3")
    assert REPO.to_sql(q) == (
        f'SELECT {P_COLS} FROM "posts" AS p0 WHERE ((p0."content" = $1) AND (p0."visits" = $2))',
        ["b", 3],
    )


def test_where_mapping_equals_keywords() -> None:
    assert from_(Weather) | where({"city": "a"}) == from_(Weather) | where(city="a")


def test_where_keyword_equals_lambda() -> None:
    assert from_(Weather) | where(city="a") == from_(Weather) | where(lambda w: w.city == "a")


def test_where_and_or_where_mixing_lambdas_and_keywords() -> None:
    q = (
        from_(Weather)
        | where(city="a")
        | or_where(lambda w: w.temp_lo > 1)
        | where(lambda w: w.prcp < 2.0)
        | or_where(city="b", temp_lo=2)
    )
    assert REPO.to_sql(q) == (
        f'{W} WHERE ((((w0."city" = $1) OR (w0."temp_lo" > $2)) AND (w0."prcp" < $3)) '
        'OR ((w0."city" = $4) AND (w0."temp_lo" = $5)))',
        ["a", 1, 2.0, "b", 2],
    )


def test_or_where_alone_is_a_plain_filter() -> None:
    assert REPO.to_sql(from_(Weather) | or_where(city="a")) == (f'{W} WHERE (w0."city" = $1)', ["a"])


def test_where_with_both_expression_and_keywords_raises() -> None:
    with pytest.raises(QueryError, match="not both"):
        where(lambda w: w.city == "a", temp_lo=1)


def test_where_with_an_expression_instead_of_a_lambda() -> None:
    q = from_(Weather)
    (w,) = bindings(q)
    assert q | where(w.city == "a") == q | where(lambda w: w.city == "a")


# --- group_by / having ------------------------------------------------------------------------


def test_group_by_having_or_having() -> None:
    q = (
        from_(Weather)
        | group_by("city")
        | having(lambda w: count() > 1)
        | or_having(lambda w: max_(w.temp_lo) < 5)
        | select(lambda w: (w.city, count()))
    )
    assert REPO.to_sql(q) == (
        'SELECT w0."city", count(*) FROM "weather" AS w0 GROUP BY w0."city" '
        'HAVING ((count(*) > $1) OR (max(w0."temp_lo") < $2))',
        [1, 5],
    )


def test_group_by_forms_are_equal() -> None:
    expected = 'SELECT w0."city" FROM "weather" AS w0 GROUP BY w0."city", w0."temp_lo"'
    for g in (["city", "temp_lo"], lambda w: [w.city, w.temp_lo], ("city", "temp_lo")):
        assert sql(from_(Weather) | group_by(g) | select(lambda w: w.city)) == expected
    assert sql(from_(Weather) | group_by("city") | group_by("temp_lo") | select(lambda w: w.city)) == expected


def test_having_params_come_after_where_and_group_by() -> None:
    q = (
        from_(Weather)
        | where(lambda w: w.temp_hi > 0)
        | group_by(lambda w: w.temp_lo + 1)
        | having(lambda w: sum_(w.temp_hi) > 10)
        | select(lambda w: count())
    )
    assert REPO.to_sql(q) == (
        'SELECT count(*) FROM "weather" AS w0 WHERE (w0."temp_hi" > $1) GROUP BY (w0."temp_lo" + $2) '
        'HAVING (sum(w0."temp_hi") > $3)',
        [0, 1, 10],
    )


def test_having_keyword_and_two_havings_are_anded() -> None:
    q = from_(Weather) | group_by("city") | having(city="x") | having(lambda w: count() > 1) | select(lambda w: w.city)
    assert sql(q).endswith(' GROUP BY w0."city" HAVING ((w0."city" = $1) AND (count(*) > $2))')


# --- distinct ---------------------------------------------------------------------------------


def test_distinct_true() -> None:
    q = from_(Weather) | distinct(True) | select(lambda w: w.city)
    assert sql(q) == 'SELECT DISTINCT w0."city" FROM "weather" AS w0'


def test_distinct_false_is_no_distinct() -> None:
    assert sql(from_(Weather) | distinct(True) | distinct(False)) == W


def test_distinct_on_is_prepended_to_order_by() -> None:
    q = from_(Weather) | order_by(desc="temp_lo") | distinct("city")
    assert sql(q) == (
        'SELECT DISTINCT ON (w0."city") w0."id", w0."city", w0."temp_lo", w0."temp_hi", w0."prcp" '
        'FROM "weather" AS w0 ORDER BY w0."city", w0."temp_lo" DESC'
    )


def test_distinct_on_with_directions() -> None:
    q = from_(Weather) | distinct(lambda w: [w.city, desc_nulls_last(w.temp_lo)]) | select(lambda w: w.id)
    assert sql(q) == (
        'SELECT DISTINCT ON (w0."city", w0."temp_lo") w0."id" FROM "weather" AS w0 '
        'ORDER BY w0."city", w0."temp_lo" DESC NULLS LAST'
    )


def test_distinct_on_list_of_names() -> None:
    q = from_(Weather) | distinct(["city", "temp_lo"]) | select(lambda w: w.id)
    assert sql(q) == (
        'SELECT DISTINCT ON (w0."city", w0."temp_lo") w0."id" FROM "weather" AS w0 ORDER BY w0."city", w0."temp_lo"'
    )


def test_distinct_on_params_are_numbered_before_select_params() -> None:
    q = from_(Weather) | distinct(lambda w: [w.temp_lo + 1]) | select(lambda w: w.temp_lo + 2)
    assert REPO.to_sql(q) == (
        'SELECT DISTINCT ON ((w0."temp_lo" + $1)) (w0."temp_lo" + $2) FROM "weather" AS w0 '
        'ORDER BY (w0."temp_lo" + $1)',
        [1, 2],
    )


# --- order_by ---------------------------------------------------------------------------------


def test_order_by_every_direction_keyword() -> None:
    q = from_(Weather) | order_by(
        ["city", "temp_lo"],
        desc="temp_hi",
        asc_nulls_first="prcp",
        asc_nulls_last="id",
        desc_nulls_first="city",
        desc_nulls_last="temp_lo",
    )
    assert sql(q) == (
        f'{W} ORDER BY w0."city", w0."temp_lo", w0."temp_hi" DESC, w0."prcp" ASC NULLS FIRST, '
        'w0."id" ASC NULLS LAST, w0."city" DESC NULLS FIRST, w0."temp_lo" DESC NULLS LAST'
    )


def test_order_by_every_direction_function() -> None:
    q = from_(Weather) | order_by(
        lambda w: [
            asc(w.city),
            desc(w.temp_lo),
            asc_nulls_first(w.temp_hi),
            asc_nulls_last(w.prcp),
            desc_nulls_first(w.id),
            desc_nulls_last(w.city),
        ]
    )
    assert sql(q) == (
        f'{W} ORDER BY w0."city", w0."temp_lo" DESC, w0."temp_hi" ASC NULLS FIRST, w0."prcp" ASC NULLS LAST, '
        'w0."id" DESC NULLS FIRST, w0."city" DESC NULLS LAST'
    )


def test_order_by_asc_keyword_equals_plain_name() -> None:
    assert from_(Weather) | order_by(asc="city") == from_(Weather) | order_by("city")


def test_order_by_a_list_under_a_direction_keyword() -> None:
    q = from_(Weather) | order_by(desc=["city", "temp_lo"])
    assert sql(q) == f'{W} ORDER BY w0."city" DESC, w0."temp_lo" DESC'


def test_order_by_an_expression_with_a_param() -> None:
    q = from_(Weather) | where(city="x") | order_by(lambda w: desc(w.temp_hi - w.temp_lo * 2)) | limit(1)
    assert REPO.to_sql(q) == (
        f'{W} WHERE (w0."city" = $1) ORDER BY (w0."temp_hi" - (w0."temp_lo" * $2)) DESC LIMIT $3',
        ["x", 2, 1],
    )


def test_order_by_calls_append() -> None:
    q = from_(Weather) | order_by("city") | order_by(desc="id")
    assert sql(q) == f'{W} ORDER BY w0."city", w0."id" DESC'


def test_order_by_single_direction_lambda_not_in_a_list() -> None:
    assert sql(from_(Weather) | order_by(lambda w: desc(w.id))) == f'{W} ORDER BY w0."id" DESC'


# --- limit / offset / lock --------------------------------------------------------------------


def test_limit_and_offset_are_params_numbered_last() -> None:
    q = from_(Weather) | where(city="x") | order_by("id") | limit(3) | offset(4)
    assert REPO.to_sql(q) == (f'{W} WHERE (w0."city" = $1) ORDER BY w0."id" LIMIT $2 OFFSET $3', ["x", 3, 4])


def test_offset_without_limit() -> None:
    assert REPO.to_sql(from_(Weather) | offset(7)) == (f"{W} OFFSET $1", [7])


def test_last_limit_and_offset_win() -> None:
    assert params(from_(Weather) | limit(3) | offset(1) | limit(9) | offset(2)) == [9, 2]


def test_lock_is_written_last() -> None:
    q = from_(Weather) | where(city="x") | limit(1) | lock("FOR UPDATE SKIP LOCKED")
    assert REPO.to_sql(q) == (f'{W} WHERE (w0."city" = $1) LIMIT $2 FOR UPDATE SKIP LOCKED', ["x", 1])


def test_last_lock_wins() -> None:
    assert sql(from_(Weather) | lock("FOR UPDATE") | lock("FOR SHARE")) == f"{W} FOR SHARE"


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_lock_rejects_non_sql(bad: Any) -> None:
    with pytest.raises(QueryError, match=r"lock\(\) expects SQL"):
        lock(bad)


# --- exclude ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "step"),
    [
        ("where", where(city="x")),
        ("where", or_where(lambda w: w.temp_lo > 1)),
        ("order_by", order_by(desc="id")),
        ("group_by", group_by("city")),
        ("having", having(lambda w: count() > 1)),
        ("select", select(lambda w: w.city)),
        ("distinct", distinct(True)),
        ("distinct", distinct("city")),
        ("limit", limit(3)),
        ("offset", offset(3)),
        ("lock", lock("FOR UPDATE")),
        ("update", update(set={"city": "x"})),
        ("join", join("inner", Post, on=lambda w, p: p.id == w.id, as_="p")),
    ],
)
def test_exclude_removes_exactly_that_clause(clause: str, step: Any) -> None:
    base = from_(Weather, as_="w") | where(lambda w: w.temp_hi > 0)
    with_clause = base | step
    assert with_clause != base
    assert with_clause | exclude(clause) == (base if clause != "where" else from_(Weather, as_="w"))


def test_exclude_join_drops_aliases_but_keeps_the_from_alias() -> None:
    q = from_(Weather, as_="w") | join("cross", Post, as_="p") | exclude("join")
    assert dict(q.aliases) == {"w": 0}
    assert sql(q) == W


def test_exclude_several_clauses_at_once() -> None:
    q = from_(Weather) | order_by("id") | limit(1) | offset(2) | exclude("order_by", "limit", "offset")
    assert REPO.to_sql(q) == (W, [])


def test_exclude_select_allows_a_new_select() -> None:
    q = from_(Weather) | select(lambda w: w.city) | exclude("select") | select(lambda w: w.id)
    assert sql(q) == 'SELECT w0."id" FROM "weather" AS w0'


def test_exclude_unknown_clause_raises() -> None:
    with pytest.raises(QueryError, match="cannot exclude 'from'"):
        exclude("from")


# --- first / last -----------------------------------------------------------------------------


def test_first_orders_by_primary_key() -> None:
    assert REPO.to_sql(from_(Weather) | first()) == (f'{W} ORDER BY w0."id" LIMIT $1', [1])


def test_last_orders_by_primary_key_descending() -> None:
    assert REPO.to_sql(from_(Weather) | last()) == (f'{W} ORDER BY w0."id" DESC LIMIT $1', [1])


def test_first_and_last_with_a_composite_primary_key() -> None:
    base = 'SELECT p0."post_id", p0."tag", p0."weight" FROM "post_tags" AS p0 ORDER BY '
    assert sql(from_(PostTag) | first()) == base + 'p0."post_id", p0."tag" LIMIT $1'
    assert sql(from_(PostTag) | last()) == base + 'p0."post_id" DESC, p0."tag" DESC LIMIT $1'


def test_first_keeps_an_existing_order() -> None:
    assert sql(from_(Weather) | order_by(desc="city") | first()) == f'{W} ORDER BY w0."city" DESC LIMIT $1'


def test_first_with_an_order_argument() -> None:
    assert sql(from_(Weather) | first("city")) == f'{W} ORDER BY w0."city" LIMIT $1'


def test_first_replaces_a_limit() -> None:
    assert params(from_(Weather) | limit(10) | first()) == [1]


def test_last_reverses_every_direction_including_nulls() -> None:
    q = from_(Weather) | order_by(
        lambda w: [
            asc(w.id),
            desc(w.city),
            asc_nulls_first(w.temp_lo),
            asc_nulls_last(w.temp_hi),
            desc_nulls_first(w.prcp),
            desc_nulls_last(w.city),
        ]
    )
    assert sql(q | last()) == (
        f'{W} ORDER BY w0."id" DESC, w0."city", w0."temp_lo" DESC NULLS LAST, w0."temp_hi" DESC NULLS FIRST, '
        'w0."prcp" ASC NULLS LAST, w0."city" ASC NULLS FIRST LIMIT $1'
    )


def test_last_with_an_order_argument() -> None:
    assert sql(from_(Weather) | last("city")) == f'{W} ORDER BY w0."city" DESC LIMIT $1'


def test_last_twice_is_first() -> None:
    q = from_(Weather) | order_by("city")
    assert (q | last() | last()).order_bys == (q | first()).order_bys


def test_first_without_order_or_primary_key_raises() -> None:
    q: Query[Any] = Query(Source("events", None))
    with pytest.raises(QueryError, match=r"first\(\) needs an order_by or a schema with a primary key"):
        first()(q)


# --- update_all / delete_all ------------------------------------------------------------------


def test_update_all_set_and_inc() -> None:
    q = from_(Post) | update(set={"title": "x", "body": "b"}, inc={"visits": 2})
    assert REPO.to_sql("update_all", q) == (
        'UPDATE "posts" AS p0 SET "title" = $1, "content" = $2, "visits" = p0."visits" + $3',
        ["x", "b", 2],
    )


def test_update_all_push_and_pull() -> None:
    q = from_(Typed) | update(push={"ints": "1"}, pull={"texts": "a"})
    assert REPO.to_sql("update_all", q) == (
        'UPDATE "typed" AS t0 SET "ints" = array_append(t0."ints", $1), "texts" = array_remove(t0."texts", $2)',
        [1, "a"],
    )


def test_update_all_set_with_a_lambda() -> None:
    q = from_(Post) | update(set={"visits": lambda p: p.visits * 2 + 1})
    assert REPO.to_sql("update_all", q) == ('UPDATE "posts" AS p0 SET "visits" = ((p0."visits" * $1) + $2)', [2, 1])


def test_update_all_set_to_another_field() -> None:
    q = from_(Post) | update(set={"title": lambda p: p.body})
    assert REPO.to_sql("update_all", q) == ('UPDATE "posts" AS p0 SET "title" = p0."content"', [])


def test_update_all_set_params_come_before_where_params() -> None:
    q = from_(Post) | where(title="old") | update(set={"title": "new"})
    assert REPO.to_sql("update_all", q) == (
        'UPDATE "posts" AS p0 SET "title" = $1 WHERE (p0."title" = $2)',
        ["new", "old"],
    )


def test_update_all_values_are_cast_to_the_field_type() -> None:
    q = from_(Post) | update(set={"rating": "1.25"}, inc={"visits": "3"})
    assert params(q) == []  # not planned for "all"
    assert REPO.to_sql("update_all", q)[1] == [decimal.Decimal("1.25"), 3]


def test_update_steps_merge() -> None:
    q = from_(Post) | update(set={"title": "x"}) | update(inc={"visits": 1})
    assert sql_update(q) == 'UPDATE "posts" AS p0 SET "title" = $1, "visits" = p0."visits" + $2'


def sql_update(q: Any) -> str:
    return REPO.to_sql("update_all", q)[0]


def test_update_all_with_an_inner_join_uses_from() -> None:
    q = (
        from_(Post)
        | join("inner", User, on=lambda p, u: u.id == p.visits)
        | where(lambda p, u: u.email == "a")
        | update(set={"title": "x"})
    )
    assert REPO.to_sql("update_all", q) == (
        'UPDATE "posts" AS p0 SET "title" = $1 FROM "users" AS u1 WHERE (u1."id" = p0."visits") AND (u1."email" = $2)',
        ["x", "a"],
    )


def test_update_all_with_a_join_and_no_where() -> None:
    q = from_(Post) | join("inner", User, on=lambda p, u: u.id == p.visits) | update(set={"title": "x"})
    assert sql_update(q) == 'UPDATE "posts" AS p0 SET "title" = $1 FROM "users" AS u1 WHERE (u1."id" = p0."visits")'


def test_update_all_set_from_a_joined_field() -> None:
    q = (
        from_(Post)
        | join("inner", User, on=lambda p, u: u.id == p.visits)
        | update(set={"title": lambda p, u: u.email})
    )
    assert sql_update(q) == (
        'UPDATE "posts" AS p0 SET "title" = u1."email" FROM "users" AS u1 WHERE (u1."id" = p0."visits")'
    )


@pytest.mark.parametrize("kind", ["left", "right", "full"])
def test_update_all_and_delete_all_refuse_outer_joins(kind: str) -> None:
    q = from_(Post) | join(kind, User, on=lambda p, u: u.id == p.visits)
    with pytest.raises(QueryError, match=f"update_all allows only inner joins, got a {kind} join"):
        REPO.to_sql("update_all", q | update(set={"title": "x"}))
    with pytest.raises(QueryError, match=f"delete_all allows only inner joins, got a {kind} join"):
        REPO.to_sql("delete_all", q)


def test_update_all_with_select_returns() -> None:
    q = from_(Post) | where(title="a") | update(set={"body": "z"}) | select(lambda p: p)
    assert REPO.to_sql("update_all", q) == (
        f'UPDATE "posts" AS p0 SET "content" = $1 WHERE (p0."title" = $2) RETURNING {P_COLS}',
        ["z", "a"],
    )


def test_update_all_without_changes_raises() -> None:
    with pytest.raises(QueryError, match="update_all needs at least one field to update"):
        REPO.to_sql("update_all", from_(Post))


@pytest.mark.parametrize(
    ("step", "names"),
    [
        (order_by("id"), "order_by"),
        (limit(1), "limit"),
        (offset(1), "offset"),
        (group_by("title"), "group_by"),
        (distinct(True), "distinct"),
        (lock("FOR UPDATE"), "lock"),
    ],
)
def test_update_all_and_delete_all_refuse_other_clauses(step: Any, names: str) -> None:
    q = from_(Post) | update(set={"title": "x"}) | step
    with pytest.raises(QueryError, match=f"`update_all` allows only `where` and `join` expressions.*got {names};"):
        REPO.to_sql("update_all", q)
    with pytest.raises(QueryError, match=f"`delete_all` allows only .*got {names}, update;"):
        REPO.to_sql("delete_all", q)


def test_delete_all() -> None:
    assert REPO.to_sql("delete_all", from_(Post) | where(title="a")) == (
        'DELETE FROM "posts" AS p0 WHERE (p0."title" = $1)',
        ["a"],
    )
    assert REPO.to_sql("delete_all", Post) == ('DELETE FROM "posts" AS p0', [])


def test_delete_all_with_an_inner_join_uses_using() -> None:
    q = from_(Post) | join("inner", User, on=lambda p, u: u.id == p.visits) | where(lambda p, u: u.email == "a")
    assert REPO.to_sql("delete_all", q) == (
        'DELETE FROM "posts" AS p0 USING "users" AS u1 WHERE (u1."id" = p0."visits") AND (u1."email" = $1)',
        ["a"],
    )


def test_delete_all_with_select_returns() -> None:
    q = from_(Post) | where(title="a") | select(lambda p: (p.id, p.body))
    assert REPO.to_sql("delete_all", q) == (
        'DELETE FROM "posts" AS p0 WHERE (p0."title" = $1) RETURNING p0."id", p0."content"',
        ["a"],
    )


def test_delete_all_returning_params_are_numbered_after_where_params() -> None:
    q = from_(Weather) | where(city="a") | select(lambda w: w.temp_lo + 2)
    assert REPO.to_sql("delete_all", q) == (
        'DELETE FROM "weather" AS w0 WHERE (w0."city" = $1) RETURNING (w0."temp_lo" + $2)',
        ["a", 2],
    )


def test_to_sql_rejects_unknown_operations() -> None:
    from asyncecto.errors import ArgumentError

    with pytest.raises(ArgumentError, match="to_sql operation must be"):
        REPO.to_sql("insert_all", Post)


# --- exists and aggregate SQL -----------------------------------------------------------------


def test_exists_sql_selects_true_with_limit_1() -> None:
    q = from_(Weather) | join("inner", Post, on=lambda w, p: p.id == w.id) | where(city="x")
    assert exists_sql(plan(q, "exists")[0]) == (
        'SELECT TRUE FROM "weather" AS w0 INNER JOIN "posts" AS p1 ON (p1."id" = w0."id") '
        'WHERE (w0."city" = $1) LIMIT 1'
    )


def test_exists_sql_leaves_out_order_by() -> None:
    assert (
        exists_sql(plan(from_(Weather) | order_by("city"), "exists")[0]) == 'SELECT TRUE FROM "weather" AS w0 LIMIT 1'
    )


def test_aggregate_sql_plain_and_wrapped() -> None:
    q = from_(Weather) | where(city="x") | select(lambda w: w.temp_lo)
    p = plan(q, "aggregate")[0]
    assert aggregate_sql(p, "sum", 0, False) == 'SELECT sum(w0."temp_lo") FROM "weather" AS w0 WHERE (w0."city" = $1)'
    assert aggregate_sql(p, "count", None, False) == 'SELECT count(*) FROM "weather" AS w0 WHERE (w0."city" = $1)'
    assert aggregate_sql(p, "max", 0, True) == (
        'SELECT max(s0.f0) FROM (SELECT w0."temp_lo" AS f0 FROM "weather" AS w0 WHERE (w0."city" = $1)) AS s0'
    )


# --- keyword form -----------------------------------------------------------------------------


def test_keyword_form_equals_pipe_form() -> None:
    kw = from_(
        Weather,
        as_="w",
        join=join("left", Post, on=lambda w, p: p.visits == w.temp_lo, as_="p"),
        where=lambda w: w.temp_lo > 0,
        or_where={"city": "x"},
        group_by="city",
        having=lambda w: count() > 1,
        distinct=True,
        select=lambda w: (w.city, count()),
        order_by="city",
        limit=5,
        offset=1,
        lock="FOR UPDATE",
    )
    pipe = (
        from_(Weather, as_="w")
        | join("left", Post, on=lambda w, p: p.visits == w.temp_lo, as_="p")
        | where(lambda w: w.temp_lo > 0)
        | or_where(city="x")
        | group_by("city")
        | having(lambda w: count() > 1)
        | distinct(True)
        | select(lambda w: (w.city, count()))
        | order_by("city")
        | limit(5)
        | offset(1)
        | lock("FOR UPDATE")
    )
    assert kw == pipe
    assert repr(kw) == repr(pipe)
    assert REPO.to_sql(kw) == REPO.to_sql(pipe)
    assert REPO.to_sql(kw) == (
        'SELECT DISTINCT w0."city", count(*) FROM "weather" AS w0 LEFT OUTER JOIN "posts" AS p1 '
        'ON (p1."visits" = w0."temp_lo") WHERE ((w0."temp_lo" > $1) OR (w0."city" = $2)) GROUP BY w0."city" '
        'HAVING (count(*) > $3) ORDER BY w0."city" LIMIT $4 OFFSET $5 FOR UPDATE',
        [0, "x", 1, 5, 1],
    )


def test_keyword_form_with_a_list_of_joins() -> None:
    kw = from_(Weather, join=[join("cross", Post), join("cross", User)])
    assert kw == from_(Weather) | join("cross", Post) | join("cross", User)


def test_keyword_form_rejects_unknown_keywords() -> None:
    with pytest.raises(QueryError, match="unsupported 'wher' in keyword query expression"):
        from_(Weather, wher=lambda w: w.city == "x")


# --- parameter safety -------------------------------------------------------------------------

NASTY = [
    "'; DROP TABLE x; --",
    "it's",
    'say "hi"',
    "a;b",
    "$1",
    "$2::text",
    "-- comment",
    "/* c */",
    "\\'",
    "?",
    "\\?",
    "%",
    "\x00",
    "é' OR '1'='1",
]
HARMLESS = "harmless"


def _contexts() -> list[tuple[str, str, Callable[[Any], Any]]]:
    return [
        ("where lambda", "all", lambda v: from_(Weather) | where(lambda w: w.city == v)),
        ("where keyword", "all", lambda v: from_(Weather) | where(city=v)),
        ("or_where keywords", "all", lambda v: from_(Weather) | where(city="a") | or_where(city=v, temp_lo=1)),
        ("select literal", "all", lambda v: from_(Weather) | select(lambda w: (w.id, v))),
        ("select dict", "all", lambda v: from_(Weather) | select(lambda w: {"a": v})),
        ("fragment", "all", lambda v: from_(Weather) | where(lambda w: fragment("lower(?) = ?", w.city, v))),
        ("in_", "all", lambda v: from_(Weather) | where(lambda w: w.city.in_([v, v]))),
        ("like", "all", lambda v: from_(Weather) | where(lambda w: w.city.like(v))),
        ("ilike", "all", lambda v: from_(Weather) | where(lambda w: w.city.ilike(v))),
        ("coalesce", "all", lambda v: from_(Weather) | select(lambda w: coalesce(w.city, v))),
        ("type_", "all", lambda v: from_(Weather) | select(lambda w: type_(v, t.String()))),
        ("join on", "all", lambda v: from_(Weather) | join("inner", Post, on=lambda w, p: p.title == v)),
        ("having", "all", lambda v: from_(Weather) | group_by("city") | having(city=v) | select(lambda w: w.city)),
        ("update set", "update_all", lambda v: from_(Post) | update(set={"title": v, "body": v})),
        (
            "update set lambda",
            "update_all",
            lambda v: from_(Post) | update(set={"title": lambda p: coalesce(p.body, v)}),
        ),
        ("update push", "update_all", lambda v: from_(Typed) | update(push={"texts": v})),
        ("update where", "update_all", lambda v: from_(Post) | where(title=v) | update(set={"body": v})),
        ("delete where", "delete_all", lambda v: from_(Post) | where(lambda p: p.body != v)),
    ]


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize(("context", "op", "build"), _contexts(), ids=[c[0] for c in _contexts()])
def test_no_parameter_value_ever_appears_in_sql(context: str, op: str, build: Callable[[Any], Any], value: str) -> None:
    if "\x00" in value:  # PostgreSQL text cannot hold a NUL: refused before any SQL (issue 16, defect 9)
        with pytest.raises(CastError, match="NUL"):
            REPO.to_sql(op, build(value))
        return
    text, sent = REPO.to_sql(op, build(value))
    harmless_text, harmless_sent = REPO.to_sql(op, build(HARMLESS))
    assert text == harmless_text
    assert HARMLESS not in harmless_text
    for piece in ("'", "DROP", "--", "/*", ";", "\\", "%", "\x00", "say"):
        assert piece not in text
    assert len(sent) == len(harmless_sent)
    flat = [x for p in sent for x in (p if isinstance(p, list) else [p])]
    assert value in flat


def test_a_nasty_limit_like_value_cannot_reach_sql() -> None:
    with pytest.raises(QueryError):
        limit("1; DROP TABLE x")  # type: ignore[arg-type]


def test_string_values_for_numeric_fields_fail_to_cast_instead_of_reaching_sql() -> None:
    with pytest.raises(CastError, match=r"Weather.temp_lo"):
        REPO.to_sql(from_(Weather) | where(temp_lo="1; DROP TABLE weather"))


# --- plan cache -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda v: from_(Weather) | where(lambda w: (w.temp_lo > v) | is_nil(w.city)) | limit(v + 1) | offset(v),
        lambda v: from_(Weather) | where(temp_lo=v, city=str(v)),
        lambda v: from_(Weather) | where(lambda w: w.temp_lo.in_(list(range(v)))),
        lambda v: from_(Weather) | select(lambda w: (w.id, type_(v, t.Id), coalesce(w.temp_lo, v))),
        lambda v: from_(Weather) | where(lambda w: fragment("? > ?", w.temp_lo, v)),
        lambda v: from_(Weather) | group_by("city") | having(lambda w: count() > v) | select(lambda w: w.city),
        lambda v: from_(Weather) | first() | where(lambda w: w.city.like(str(v))),
    ],
)
def test_same_shape_other_values_give_equal_plans(build: Callable[[int], Any]) -> None:
    a, a_params = plan(build(1))
    b, b_params = plan(build(5))
    assert a == b
    assert hash(a) == hash(b)
    assert a_params != b_params


def test_same_shape_update_all_plans_are_equal() -> None:
    a = plan(from_(Post) | where(title="a") | update(set={"body": "x"}, inc={"visits": 1}), "update_all")
    b = plan(from_(Post) | where(title="b") | update(set={"body": "y"}, inc={"visits": 9}), "update_all")
    assert a[0] == b[0]
    assert (a[1], b[1]) == (["x", 1, "a"], ["y", 9, "b"])


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (from_(Weather) | where(city="a"), from_(Weather) | where(temp_lo=1)),
        (from_(Weather) | lock("FOR UPDATE"), from_(Weather) | lock("FOR SHARE")),
        (
            from_(Weather) | where(lambda w: fragment("? > 1", w.id)),
            from_(Weather) | where(lambda w: fragment("? > 2", w.id)),
        ),
        (from_(Weather) | order_by("id"), from_(Weather) | order_by(desc="id")),
        (from_(Weather) | where(city="a"), from_(Weather) | or_where(city="a") | where(city="a")),
        (from_(Weather) | select(lambda w: (w.id,)), from_(Weather) | select(lambda w: [w.id])),
        (from_(Weather) | limit(1), from_(Weather) | offset(1)),
    ],
)
def test_other_shapes_give_other_plans(one: Query[Any], other: Query[Any]) -> None:
    assert plan(one)[0] != plan(other)[0]


def test_to_sql_of_the_same_shape_is_a_cache_hit() -> None:
    repo = Repo("postgres://localhost/x")
    repo.to_sql(from_(Weather) | where(city="a") | limit(1))
    before = repo.cache_stats()
    repo.to_sql(from_(Weather) | where(city="b") | limit(7))
    after = repo.cache_stats()
    assert after["hits"] == before["hits"] + 1
    assert after["misses"] == before["misses"]
    assert after["size"] == before["size"]


def test_to_sql_of_another_shape_is_a_cache_miss() -> None:
    repo = Repo("postgres://localhost/x")
    repo.to_sql(from_(Weather) | where(city="a"))
    before = repo.cache_stats()
    repo.to_sql(from_(Weather) | where(temp_lo=1))
    after = repo.cache_stats()
    assert (after["hits"], after["misses"], after["size"]) == (before["hits"], before["misses"] + 1, before["size"] + 1)


def test_plans_hold_no_parameter_values() -> None:
    secret = "s3cr3t-value"
    p, sent = plan(from_(Weather) | where(city=secret) | select(lambda w: coalesce(w.city, secret)))
    assert secret not in repr(p)
    assert sent == [secret, secret]


# --- errors at build time ---------------------------------------------------------------------


def test_comparing_with_none_points_to_is_nil() -> None:
    with pytest.raises(QueryError, match=r"comparing E<b0.temp_lo> with None is forbidden.*use is_nil\(\)"):
        from_(Weather) | where(lambda w: w.temp_lo == None)  # noqa: E711
    with pytest.raises(QueryError, match=r"with None is forbidden.*is_nil"):
        from_(Weather) | where(lambda w: w.temp_lo != None)  # noqa: E711
    with pytest.raises(QueryError, match=r"comparing temp_lo with None is forbidden.*is_nil"):
        from_(Weather) | where(temp_lo=None)
    with pytest.raises(QueryError, match=r"comparing city with None is forbidden.*is_nil"):
        from_(Weather) | or_where(temp_lo=1, city=None)


@pytest.mark.parametrize(
    "step",
    [
        where(lambda w: w.nope == 1),
        where(nope=1),
        order_by("nope"),
        order_by(desc="nope"),
        group_by("nope"),
        distinct("nope"),
        select(lambda w: w.nope),
        select(["id", "nope"]),
        update(set={"nope": 1}),
    ],
)
def test_unknown_field_names_field_schema_and_known_fields(step: Any) -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | step
    assert str(info.value).startswith("field 'nope' does not exist in schema Weather; fields are: id, city, ")
    assert "temp_lo, temp_hi, prcp" in str(info.value)


def test_virtual_field_is_unknown_to_queries() -> None:
    with pytest.raises(QueryError, match="field 'draft_notes' does not exist in schema Post"):
        from_(Post) | where(lambda p: p.draft_notes == "x")


def test_unknown_field_of_a_joined_schema_names_that_schema() -> None:
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema User; fields are: id, email"):
        from_(Post) | join("inner", User, on=lambda p, u: u.nope == p.id)


def test_unknown_named_binding() -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | join("cross", Post, as_="p") | where(lambda *, c: c.title == "x")
    message = str(info.value)
    assert "could not find named binding 'c'" in message
    assert message.endswith("named bindings: p")


def test_unknown_named_binding_without_any_names() -> None:
    with pytest.raises(
        QueryError, match=r"could not find named binding 'c' in query Query<from_\(Weather\)>; named bindings: none"
    ):
        from_(Weather) | select(lambda *, c: c)


def test_duplicate_alias_raises() -> None:
    with pytest.raises(QueryError, match="alias 'p' is already taken"):
        from_(Weather, as_="p") | join("cross", Post, as_="p")


def test_more_positional_params_than_bindings() -> None:
    with pytest.raises(QueryError, match=r"where takes 2 binding\(s\) but the query has 1 source\(s\)"):
        from_(Weather) | where(lambda w, p: w.city == p.title)
    with pytest.raises(QueryError, match=r"join on takes 3 binding\(s\) but the query has 2 source\(s\)"):
        from_(Weather) | join("inner", Post, on=lambda w, p, x: w.id == p.id)


@pytest.mark.parametrize(
    "cond",
    [
        lambda w: (w.temp_lo > 1) and (w.temp_hi < 3),
        lambda w: (w.temp_lo > 1) or (w.temp_hi < 3),
        lambda w: not w.temp_lo,
        lambda w: 1 < w.temp_lo < 3,
        lambda w: w.temp_lo if w.city else w.temp_hi,
    ],
    ids=["and", "or", "not", "chained", "if"],
)
def test_python_boolean_logic_raises_pointing_to_operators(cond: Callable[..., Any]) -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | where(cond)
    message = str(info.value)
    assert "as a Python bool" in message
    assert "use & | ~ instead of and/or/not" in message
    assert "chained comparisons (a < b < c) with &" in message


def test_expressions_are_unhashable() -> None:
    (w,) = bindings(from_(Weather))
    with pytest.raises(TypeError):
        hash(w.city)


def test_second_select_raises() -> None:
    with pytest.raises(QueryError, match=r"only one select expression is allowed in query .*use exclude\('select'\)"):
        from_(Weather) | select(lambda w: w.city) | select(lambda w: w.id)


def test_unknown_order_direction() -> None:
    with pytest.raises(QueryError, match="order_by got unknown direction 'sideways'; use one of asc, desc"):
        order_by(sideways="city")


def test_order_by_of_a_value_raises() -> None:
    with pytest.raises(QueryError, match="order_by expects field names or expressions, got 3"):
        from_(Weather) | order_by(3)


def test_in_given_a_query_points_to_subquery() -> None:
    with pytest.raises(QueryError, match=r"in_ got a query; did you mean to write x.in_\(subquery\(query\)\)"):
        from_(Weather) | where(lambda w: w.id.in_(from_(Post)))


@pytest.mark.parametrize("bad", ["abc", b"ab", 3])
def test_in_given_a_non_list_raises(bad: Any) -> None:
    with pytest.raises(QueryError, match="in_ expects a list of values or an array field"):
        from_(Weather) | where(lambda w: w.city.in_(bad))


def test_unknown_join_kind() -> None:
    with pytest.raises(QueryError, match="unknown join kind 'outer'; use one of inner, left, right, full, cross"):
        join("outer", Post, on=lambda w, p: w.id == p.id)


@pytest.mark.parametrize("kind", ["inner", "left", "right", "full"])
def test_join_without_on_raises(kind: str) -> None:
    with pytest.raises(QueryError, match=f"an? {kind} join needs on="):
        join(kind, Post)


def test_cross_join_with_on_raises() -> None:
    with pytest.raises(QueryError, match="a cross join takes no on= condition"):
        join("cross", Post, on=lambda w, p: w.id == p.id)


def test_join_on_a_function_that_is_not_an_association_raises() -> None:
    with pytest.raises(QueryError, match="a join on an association takes a function returning one"):
        from_(Weather) | join("inner", lambda w: w.city)


def test_update_of_an_unknown_field() -> None:
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema Post; fields are: id, title, body"):
        from_(Post) | update(inc={"nope": 1})


def test_update_of_the_same_field_twice() -> None:
    with pytest.raises(QueryError, match="field 'title' is updated twice"):
        from_(Post) | update(set={"title": "a"}, inc={"title": 1})
    with pytest.raises(QueryError, match="field 'title' is updated twice"):
        from_(Post) | update(set={"title": "a"}) | update(set={"title": "b"})


def test_unknown_update_operation() -> None:
    with pytest.raises(QueryError, match="unknown update operation 'add'; use one of set, inc, push, pull"):
        update(add={"visits": 1})


@pytest.mark.parametrize(
    ("q", "op", "field_name"),
    [
        (from_(Weather) | where(lambda w: w.temp_lo == "abc"), "all", "Weather.temp_lo"),
        (from_(Weather) | where(temp_hi="x"), "all", "Weather.temp_hi"),
        (from_(Weather) | where(lambda w: w.temp_lo.in_([1, "x"])), "all", "Weather.temp_lo"),
        (from_(Post) | where(lambda p: p.rating > "lots"), "all", "Post.rating"),
        (from_(Post) | where(lambda p: p.inserted_at < "yesterday"), "all", "Post.inserted_at"),
        (from_(Post) | join("inner", User, on=lambda p, u: u.score == "x"), "all", "User.score"),
        (from_(Post) | update(inc={"visits": "many"}), "update_all", "Post.visits"),
        (from_(Typed) | update(push={"ints": "one"}), "update_all", "Typed.ints"),
        (from_(Post) | update(set={"rating": "x"}), "update_all", "Post.rating"),
    ],
)
def test_bad_casts_raise_cast_error_naming_the_field_at_plan_time(q: Query[Any], op: str, field_name: str) -> None:
    with pytest.raises(CastError) as info:
        plan(q, op)
    assert f"for field {field_name}" in str(info.value)


def test_bad_casts_do_not_raise_at_build_time() -> None:
    q = from_(Weather) | where(temp_lo="abc")
    assert isinstance(q, Query)


def test_lambda_signature_cache_is_per_function() -> None:
    q = from_(Weather) | join("cross", Post, as_="p")
    f1 = lambda w: w.city == "a"  # noqa: E731
    f2 = lambda w, *, p: p.title == "a"  # noqa: E731
    assert sql(q | where(f1)).endswith('WHERE (w0."city" = $1)')
    assert sql(q | where(f2)).endswith('WHERE (p1."title" = $1)')


def test_functions_wrapped_by_one_decorator_get_their_own_bindings() -> None:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)

        return wrapper

    @deco
    def by_city(w: Any) -> Any:
        return w.city == "a"

    @deco
    def by_title(w: Any, *, p: Any) -> Any:
        return p.title == "a"

    q = from_(Weather) | join("cross", Post, as_="p")
    assert sql(q | where(by_city)).endswith('WHERE (w0."city" = $1)')
    assert sql(q | where(by_title)).endswith('WHERE (p1."title" = $1)')


def test_select_of_a_source_inside_an_expression_raises_at_plan_time() -> None:
    q = from_(Weather) | where(lambda w: is_nil(w))
    with pytest.raises(QueryError, match="a whole source can only be selected"):
        plan(q)


def test_comparing_a_whole_binding_raises_at_build_time() -> None:
    with pytest.raises(QueryError, match="where expects an expression or a function of the bindings, got False"):
        from_(Weather) | where(lambda w: w == 1)


# --- repr -------------------------------------------------------------------------------------


def test_repr_of_a_simple_query() -> None:
    assert (
        repr(from_(Weather) | where(city="Kraków") | limit(5))
        == "Query<from_(Weather) | where(city='Kraków') | limit(5)>"
    )


def test_repr_of_a_lambda_filter() -> None:
    q = from_(Weather) | where(lambda w: (w.prcp > 0.5) | is_nil(w.prcp))
    assert repr(q) == "Query<from_(Weather) | where(lambda: (b0.prcp > 0.5) | (is_nil(b0.prcp)))>"


def test_repr_of_every_clause() -> None:
    q = (
        from_(Weather, as_="w")
        | join("left", Post, on=lambda w, p: p.visits == w.temp_lo, as_="p")
        | where(city="K", temp_lo=1)
        | or_where(lambda w, p: p.title.like("a%"))
        | group_by("city")
        | having(lambda w: count() > 1)
        | distinct(True)
        | select(lambda w, p: (w.city, count(p.id, distinct=True)))
        | order_by(desc="city")
        | limit(3)
        | offset(2)
        | lock("FOR UPDATE")
    )
    assert repr(q) == (
        "Query<from_(Weather, as_='w') | join('left', Post, on=lambda: b1.visits == b0.temp_lo, as_='p') "
        "| where(city='K', temp_lo=1) | or_where(lambda: b1.title.like('a%')) | group_by(lambda: [b0.city]) "
        "| having(lambda: count() > 1) | distinct(True) | select(lambda: (b0.city, count(b1.id, distinct=True))) "
        "| order_by(desc='city') | limit(3) | offset(2) | lock('FOR UPDATE')>"
    )


def test_repr_of_select_shapes_and_orders() -> None:
    q = (
        from_(Weather)
        | select(lambda w: {"c": w.city, "n": [sum_(w.temp_lo), avg(w.prcp), min_(w.id), max_(w.id)]})
        | order_by(lambda w: [desc_nulls_first(w.city)])
    )
    assert repr(q) == (
        "Query<from_(Weather) | select(lambda: {'c': b0.city, 'n': [sum_(b0.temp_lo), avg(b0.prcp), min_(b0.id), "
        "max_(b0.id)]}) | order_by(desc_nulls_first='city')>"
    )


def test_repr_of_partial_select_and_order_list() -> None:
    q = from_(Weather) | select(["city", "temp_lo"]) | order_by(["city", "temp_lo"])
    assert repr(q) == "Query<from_(Weather) | select(['city', 'temp_lo']) | order_by(['city', 'temp_lo'])>"


def test_repr_of_one_element_tuple_select() -> None:
    assert repr(from_(Weather) | select(lambda w: (w.city,))) == "Query<from_(Weather) | select(lambda: (b0.city,))>"


def test_repr_of_expressions() -> None:
    q = from_(Weather) | where(
        lambda w: w.city.in_(["a"]) & w.city.ilike("%a") & ~is_nil(w.city) & (-w.temp_lo + 1 >= coalesce(w.temp_hi, 0))
    )
    assert repr(q) == (
        "Query<from_(Weather) | where(lambda: (b0.city.in_(['a'])) & (b0.city.ilike('%a')) & (~(is_nil(b0.city))) "
        "& (-(b0.temp_lo) + 1 >= coalesce(b0.temp_hi, 0)))>"
    )


def test_repr_of_update_first_and_last() -> None:
    assert repr(from_(Post) | update(set={"title": "x"}, inc={"visits": 1})) == (
        "Query<from_(Post) | update(set={'title': 'x'}, inc={'visits': 1})>"
    )
    assert repr(from_(Post) | first()) == "Query<from_(Post) | order_by('id') | limit(1)>"
    assert repr(from_(Post) | last()) == "Query<from_(Post) | order_by(desc='id') | limit(1)>"


def test_repr_of_joins_cross_and_prefixed() -> None:
    q = from_(("weather_old", Weather), prefix="archive") | join("cross", Post)
    assert repr(q) == "Query<from_(('weather_old', Weather), prefix='archive') | join('cross', Post)>"


def test_repr_of_an_expression() -> None:
    (w,) = bindings(from_(Weather))
    assert repr(w.temp_lo * 2) == "E<b0.temp_lo * 2>"
    assert repr(w) == "b0"


def test_repr_of_a_fragment_without_escapes() -> None:
    q = from_(Weather) | where(lambda w: fragment("lower(?) = ?", w.city, "x"))
    assert repr(q) == "Query<from_(Weather) | where(lambda: fragment('lower(?) = ?', b0.city, 'x'))>"


def test_repr_of_a_fragment_with_an_escaped_question_mark_reads_back() -> None:
    q = from_(Typed) | where(lambda t: fragment("? \\? ?", t.m, "key"))
    assert repr(q) == "Query<from_(Typed) | where(lambda: fragment('? \\\\? ?', b0.m, 'key'))>"


def test_repr_of_type_reads_as_the_dsl() -> None:
    q = from_(Weather) | select(lambda w: type_(w.temp_lo, int))
    assert repr(q) == "Query<from_(Weather) | select(lambda: type_(b0.temp_lo, int))>"


def test_repr_never_contains_sql() -> None:
    q = from_(Post) | where(lambda p: p.title == "x") | order_by(desc="id") | limit(2)
    text = repr(q)
    for word in ("SELECT", "WHERE", "ORDER BY", "$1", '"posts"'):
        assert word not in text


def test_repr_of_keyword_where_round_trips_through_equal_queries() -> None:
    q = from_(Weather) | where(lambda w: (w.city == "K") & (w.temp_lo == 1))
    assert repr(q) == repr(from_(Weather) | where(city="K", temp_lo=1))


# --- immutability -----------------------------------------------------------------------------


def test_steps_never_change_the_query_they_are_given() -> None:
    base = from_(Weather)
    snapshot = attrs.asdict(base, recurse=False)
    base | where(city="x") | order_by("id") | limit(1) | join("cross", Post, as_="p") | update(set={"city": "y"})
    assert attrs.asdict(base, recurse=False) == snapshot
