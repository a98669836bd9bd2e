"""Ecto parity of query expressions and sources without a database (issue 19): window frames,
subqueries in order_by/group_by/distinct, fragment and query join targets, hints, lock
fragments, keyword ``on=``, JSON containment/key existence, field references in JSON paths and
array containment."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    count,
    desc,
    distinct,
    dynamic,
    fragment,
    from_,
    group_by,
    groups_between,
    join,
    json_extract_path,
    limit,
    lock,
    or_where,
    order_by,
    over,
    put_query_prefix,
    range_between,
    rows_between,
    select,
    subquery,
    sum_,
    unsafe_fragment,
    values,
    where,
    windows,
)
from asyncecto.query._planner import plan

from ..schemas import Post, Typed, Weather

REPO = Repo("postgres://localhost/x")


def to_sql(q: Any) -> tuple[str, list[Any]]:
    return REPO.to_sql(q)


def sql(q: Any) -> str:
    return REPO.to_sql(q)[0]


# --- window frames ------------------------------------------------------------------------------


def test_inline_frame_as_fragment() -> None:
    q = from_(Post) | select(
        lambda p: over(sum_(p.visits), order_by=p.id, frame=fragment("ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"))
    )
    assert sql(q) == (
        'SELECT sum(p0."visits") OVER (ORDER BY p0."id" ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM "posts" AS p0'
    )


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (rows_between(-1, 0), "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"),
        (rows_between(None, None), "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"),
        (rows_between(0, 2), "ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING"),
        (range_between(None, 0), "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"),
        (
            groups_between(-1, 1, exclude="current_row"),
            "GROUPS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW",
        ),
    ],
)
def test_keyword_frames(frame: Any, text: str) -> None:
    q = from_(Post) | select(lambda p: over(sum_(p.visits), partition_by=p.title, order_by=p.id, frame=frame))
    over_sql = f'OVER (PARTITION BY p0."title" ORDER BY p0."id" {text})'
    assert sql(q) == f'SELECT sum(p0."visits") {over_sql} FROM "posts" AS p0'


def test_named_window_frame() -> None:
    q = (
        from_(Post)
        | windows(w={"order_by": lambda p: p.id, "frame": fragment("ROWS 3 PRECEDING")})
        | select(lambda p: over(sum_(p.visits), "w"))
    )
    assert sql(q) == (
        'SELECT sum(p0."visits") OVER "w" FROM "posts" AS p0 WINDOW "w" AS (ORDER BY p0."id" ROWS 3 PRECEDING)'
    )


def test_named_window_frame_keyword_form() -> None:
    q = (
        from_(Post)
        | windows(w={"partition_by": lambda p: p.title, "frame": rows_between(-2, 0)})
        | select(lambda p: over(count(), "w"))
    )
    assert sql(q).endswith('WINDOW "w" AS (PARTITION BY p0."title" ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)')


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: rows_between(1, -1), "start comes after its end"),
        (
            lambda: rows_between(1.5, 2),  # type: ignore[arg-type]
            "bounds are integers",
        ),
        (lambda: rows_between(True, 2), "bounds are integers"),
        (lambda: rows_between(0, 1, exclude="others"), "exclude='others' is unknown"),
        (lambda: over(count(), frame="ROWS 1 PRECEDING"), "a window frame is rows_between"),
        (lambda: over(count(), "w", frame=rows_between(-1, 0)), "not both"),
    ],
)
def test_bad_frames(make: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        make()


def test_unknown_window_option_names_frame() -> None:
    with pytest.raises(QueryError, match="use partition_by, order_by and frame"):
        from_(Post) | windows(w={"frames": 1})


# --- subqueries in order_by, group_by, distinct ------------------------------------------------

COUNT_W = from_(Weather) | where(lambda w: w.temp_lo > 3) | select(lambda w: count())
SUB = '(SELECT count(*) FROM "weather" AS s1w0 WHERE (s1w0."temp_lo" > $1))'


def test_subquery_in_order_by() -> None:
    q = from_(Post) | order_by(lambda p: [desc(subquery(COUNT_W)), p.id]) | select(lambda p: p.id)
    assert to_sql(q) == (f'SELECT p0."id" FROM "posts" AS p0 ORDER BY {SUB} DESC, p0."id"', [3])


def test_subquery_returned_alone_in_order_by() -> None:
    q = from_(Post) | order_by(lambda p: subquery(COUNT_W)) | select(lambda p: p.id)
    assert to_sql(q) == (f'SELECT p0."id" FROM "posts" AS p0 ORDER BY {SUB}', [3])


def test_subquery_in_group_by() -> None:
    q = from_(Post) | group_by(lambda p: subquery(COUNT_W)) | select(lambda p: count())
    assert to_sql(q) == (f'SELECT count(*) FROM "posts" AS p0 GROUP BY {SUB}', [3])


def test_subquery_in_distinct_is_also_first_in_order_by() -> None:
    q = from_(Post) | distinct(lambda p: subquery(COUNT_W)) | select(lambda p: p.id)
    text, params = to_sql(q)
    assert text == f'SELECT DISTINCT ON ({SUB}) p0."id" FROM "posts" AS p0 ORDER BY {SUB}'
    assert params == [3]


def test_subquery_in_order_by_needs_one_column() -> None:
    with pytest.raises(QueryError, match="needs a select of one column"):
        to_sql(from_(Post) | order_by(lambda p: subquery(from_(Weather))))


# --- fragment sources, query join targets, hints -------------------------------------------------


def test_fragment_select_source_is_parenthesised() -> None:
    q = from_(fragment("SELECT generate_series(1, ?) AS n", 3)) | select(lambda f: f.n)
    assert to_sql(q) == ('SELECT f0."n" FROM (SELECT generate_series(1, $1::integer) AS n) AS f0', [3])


def test_fragment_function_source_is_written_as_is() -> None:
    q = from_(fragment("generate_series(1, ?)", 3)) | select(lambda f: f.n)
    assert to_sql(q) == ('SELECT f0."n" FROM generate_series(1, $1::integer) AS f0', [3])


def test_fragment_join_parameters_in_text_order() -> None:
    q = (
        from_(Post)
        | join("inner", fragment("SELECT generate_series(1, ?) AS n", 5), on=lambda p, f: p.visits == f.n)
        | where(lambda p: p.title == "x")
        | select(lambda p, f: (p.id, f.n))
    )
    assert to_sql(q) == (
        'SELECT p0."id", f1."n" FROM "posts" AS p0 INNER JOIN (SELECT generate_series(1, $1::integer) AS n) '
        'AS f1 ON (p0."visits" = f1."n") WHERE (p0."title" = $2)',
        [5, "x"],
    )


def test_lateral_fragment_join() -> None:
    q = from_(Post) | join("cross_lateral", fragment("generate_series(1, ?)", 2)) | select(lambda p, f: (p.id, f.n))
    assert sql(q).endswith("CROSS JOIN LATERAL generate_series(1, $1::integer) AS f1")


def test_query_join_target_moves_its_wheres_into_on() -> None:
    rainy = from_(Weather) | where(lambda w: w.prcp > 1.0) | or_where(city="Oslo")
    q = from_(Post) | join("left", rainy, on=lambda p, w: p.visits == w.temp_lo) | select(lambda p, w: w.id)
    assert to_sql(q) == (
        'SELECT w1."id" FROM "posts" AS p0 LEFT OUTER JOIN "weather" AS w1 ON ((p0."visits" = w1."temp_lo") '
        'AND ((w1."prcp" > $1) OR (w1."city" = $2)))',
        [1.0, "Oslo"],
    )


def test_query_join_target_without_wheres_is_its_source() -> None:
    q = from_(Post) | join("inner", from_(Weather, prefix="archive"), on=True) | select(lambda p, w: w.id)
    assert sql(q) == 'SELECT w1."id" FROM "posts" AS p0 INNER JOIN "archive"."weather" AS w1 ON TRUE'


def test_query_join_target_keeps_its_query_prefix() -> None:
    target = from_(Weather) | put_query_prefix("archive")
    q = from_(Post) | join("inner", target, on=True) | select(lambda p, w: w.id)
    assert sql(q) == 'SELECT w1."id" FROM "posts" AS p0 INNER JOIN "archive"."weather" AS w1 ON TRUE'


def test_query_join_target_with_wheres_cross_join_is_a_subquery() -> None:
    q = from_(Post) | join("cross", from_(Weather) | where(lambda w: w.id > 2)) | select(lambda p, w: w.id)
    assert 'CROSS JOIN (SELECT s1w0."id"' in sql(q)


def test_query_join_target_with_other_clauses_is_refused() -> None:
    with pytest.raises(QueryError, match="queries in joins can only have where conditions; use subquery"):
        from_(Post) | join("inner", from_(Weather) | limit(1), on=True)


def test_hints_after_the_alias() -> None:
    q = (
        from_(Post, hints=["TABLESAMPLE SYSTEM(50)"])
        | join("inner", Weather, on=True, hints="TABLESAMPLE BERNOULLI(10) REPEATABLE (7)")
        | select(lambda p: p.id)
    )
    assert sql(q) == (
        'SELECT p0."id" FROM "posts" AS p0 TABLESAMPLE SYSTEM(50) INNER JOIN "weather" AS w1 '
        "TABLESAMPLE BERNOULLI(10) REPEATABLE (7) ON TRUE"
    )
    assert repr(q).startswith("Query<from_(Post, hints=['TABLESAMPLE SYSTEM(50)'])")


def test_hints_take_unsafe_fragment() -> None:
    q = from_(Post, hints=[unsafe_fragment("TABLESAMPLE SYSTEM(1)")]) | select(lambda p: p.id)
    assert sql(q) == 'SELECT p0."id" FROM "posts" AS p0 TABLESAMPLE SYSTEM(1)'


@pytest.mark.parametrize("hints", [[1], [""], "", ["a; DROP TABLE x"], {"h": 1}])
def test_bad_hints(hints: Any) -> None:
    with pytest.raises(QueryError, match="hint"):
        from_(Post, hints=hints)


def test_hints_on_a_subquery_are_refused() -> None:
    with pytest.raises(QueryError, match="table hints can only be used with a table or schema source"):
        from_(subquery(from_(Post)), hints=["TABLESAMPLE SYSTEM(1)"])
    with pytest.raises(QueryError, match="table hints"):
        from_(Post) | join("inner", values([{"a": 1}], {"a": int}), on=True, hints=["X"])


# --- lock fragments -------------------------------------------------------------------------------


def test_lock_fragment_is_written_as_is() -> None:
    q = from_(Post) | lock(fragment("FOR SHARE NOWAIT")) | select(lambda p: p.id)
    assert sql(q) == 'SELECT p0."id" FROM "posts" AS p0 FOR SHARE NOWAIT'


def test_lock_fragment_last_wins_over_string() -> None:
    q = from_(Post) | lock("FOR UPDATE") | lock(fragment("FOR NO KEY UPDATE SKIP LOCKED")) | select(lambda p: p.id)
    assert sql(q).endswith(" FOR NO KEY UPDATE SKIP LOCKED")


def test_lock_fragment_takes_no_arguments() -> None:
    with pytest.raises(QueryError, match="arguments must be sources"):  # only sources, since issue 19 round 3
        lock(fragment("FOR UPDATE OF ?", 1))


def test_lock_string_still_checked() -> None:
    with pytest.raises(QueryError, match="lock\\(\\) expects SQL for a row lock"):
        lock("FOR EVERYTHING")


# --- join on= ---------------------------------------------------------------------------------------


def test_keyword_on_with_functions_and_values() -> None:
    q = (
        from_(Post)
        | join("left", Weather, on={"temp_lo": lambda p: p.visits, "city": "Oslo"})
        | select(lambda p, w: w.id)
    )
    assert to_sql(q) == (
        'SELECT w1."id" FROM "posts" AS p0 LEFT OUTER JOIN "weather" AS w1 '
        'ON ((w1."temp_lo" = p0."visits") AND (w1."city" = $1))',
        ["Oslo"],
    )


def test_on_as_lambda_dynamic_and_true() -> None:
    by_lambda = from_(Post) | join("inner", Weather, on=lambda p, w: p.visits == w.temp_lo)
    by_dynamic = from_(Post) | join("inner", Weather, on=dynamic(lambda p, w: p.visits == w.temp_lo))
    assert sql(by_lambda) == sql(by_dynamic)
    assert sql(from_(Post) | join("inner", Weather, on=True) | select(lambda p: p.id)).endswith("ON TRUE")


def test_keyword_on_errors() -> None:
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema Weather"):
        from_(Post) | join("inner", Weather, on={"nope": 1})
    with pytest.raises(QueryError, match="with None is forbidden"):
        from_(Post) | join("inner", Weather, on={"city": None})
    with pytest.raises(QueryError, match="empty dict"):
        from_(Post) | join("inner", Weather, on={})


# --- JSON ---------------------------------------------------------------------------------------------


def test_json_containment_sends_jsonb() -> None:
    q = from_(Typed) | where(lambda t: t.m.contains({"k": 1})) | select(lambda t: t.id)
    assert to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE (t0."m" @> $1::jsonb)', [{"k": 1}])


def test_json_containment_of_a_path_params_in_text_order() -> None:
    q = from_(Typed) | where(lambda t: t.m["a"]["b"].contains([10])) | select(lambda t: t.id)
    assert to_sql(q) == (
        'SELECT t0."id" FROM "typed" AS t0 WHERE ((t0."m" #> $1) @> $2::jsonb)',
        [["a", "b"], [10]],
    )


@pytest.mark.parametrize("value", ['{"k": 1}', 1, True])
def test_json_containment_refuses_non_documents(value: Any) -> None:
    q = from_(Typed) | where(lambda t: t.m.contains(value))
    with pytest.raises(QueryError, match="expects a dict or a list \\(sent as jsonb\\)"):
        to_sql(q)


def test_contains_none_is_forbidden() -> None:
    with pytest.raises(QueryError, match="forbidden"):
        from_(Typed) | where(lambda t: t.m.contains(None))


def test_key_existence_operators() -> None:
    q = (
        from_(Typed)
        | where(lambda t: t.m.has_key("k") | t.m.has_any_keys(["a", "b"]) | t.m["a"].has_all_keys(["b"]))
        | select(lambda t: t.id)
    )
    assert to_sql(q) == (
        'SELECT t0."id" FROM "typed" AS t0 WHERE ((t0."m" ? $1::text) OR (t0."m" ?| $2::text[]) '
        'OR ((t0."m" #> $3) ?& $4::text[]))',
        ["k", ["a", "b"], ["a"], ["b"]],
    )


def test_key_existence_with_a_field() -> None:
    q = from_(Typed) | where(lambda t: t.m.has_key(t.s)) | select(lambda t: t.id)
    assert sql(q) == 'SELECT t0."id" FROM "typed" AS t0 WHERE (t0."m" ? t0."s")'


@pytest.mark.parametrize("keys", ["ab", [1], None])
def test_key_lists_must_be_strings(keys: Any) -> None:
    with pytest.raises(QueryError, match="expects a list of key strings"):
        from_(Typed) | where(lambda t: t.m.has_any_keys(keys))


def test_has_key_needs_a_string() -> None:
    with pytest.raises(QueryError, match="has_key expects a key string"):
        to_sql(from_(Typed) | where(lambda t: t.m.has_key(1)))


def test_field_in_a_json_path() -> None:
    q = from_(Typed) | select(lambda t: t.m["a"][t.s][t.i])
    assert to_sql(q) == ('SELECT (t0."m" #> ARRAY[$1, t0."s"::text, t0."i"::text]::text[]) FROM "typed" AS t0', ["a"])
    assert repr(q) == "Query<from_(Typed) | select(lambda: b0.m['a'][b0.s][b0.i])>"


def test_json_extract_path_is_the_subscript_form() -> None:
    a = from_(Typed) | select(lambda t: json_extract_path(t.m, ["a", 0]))
    b = from_(Typed) | select(lambda t: t.m["a"][0])
    assert to_sql(a) == to_sql(b) == ('SELECT (t0."m" #> $1) FROM "typed" AS t0', [["a", "0"]])
    c = from_(Typed) | select(lambda t: json_extract_path(t.m, [t.s]))
    assert sql(c) == 'SELECT (t0."m" #> ARRAY[t0."s"::text]::text[]) FROM "typed" AS t0'


@pytest.mark.parametrize("path", [[], "ab", [1.5]])
def test_json_extract_path_errors(path: Any) -> None:
    with pytest.raises(QueryError):
        from_(Typed) | select(lambda t: json_extract_path(t.m, path))


def test_json_path_plan_keeps_param_form_for_constants() -> None:
    a, _ = plan(from_(Typed) | select(lambda t: t.m["x"]))
    b, _ = plan(from_(Typed) | select(lambda t: t.m["y"]))
    assert a == b


# --- arrays -------------------------------------------------------------------------------------------


def test_array_contains_a_value() -> None:
    q = from_(Typed) | where(lambda t: t.texts.contains("x")) | select(lambda t: t.id)
    assert to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE ($1 = ANY(t0."texts"))', ["x"])


def test_array_contains_a_value_cast_to_the_element_type() -> None:
    q = from_(Typed) | where(lambda t: t.ints.contains("2")) | select(lambda t: t.id)
    assert to_sql(q)[1] == [2]


def test_array_contains_every_element_of_a_list() -> None:
    q = from_(Typed) | where(lambda t: t.ints.contains([1, 2])) | select(lambda t: t.id)
    assert to_sql(q) == ('SELECT t0."id" FROM "typed" AS t0 WHERE (t0."ints" @> $1)', [[1, 2]])


def test_array_contains_a_field() -> None:
    q = from_(Typed) | where(lambda t: t.texts.contains(t.s)) | select(lambda t: t.id)
    assert sql(q) == 'SELECT t0."id" FROM "typed" AS t0 WHERE (t0."s" = ANY(t0."texts"))'


def test_python_in_explains_contains() -> None:
    with pytest.raises(QueryError, match=r"write b0.texts.contains\('x'\)"):
        from_(Typed) | where(lambda t: "x" in t.texts)


def test_contains_on_a_scalar_field_is_refused() -> None:
    with pytest.raises(QueryError, match="contains needs an array or a JSON"):
        to_sql(from_(Typed) | where(lambda t: t.s.contains("x")))


def test_repr_of_contains_and_keys() -> None:
    q = from_(Typed) | where(lambda t: t.m.contains({"k": 1}) & t.m.has_key("k"))
    assert repr(q) == "Query<from_(Typed) | where(lambda: (b0.m.contains({'k': 1})) & (b0.m.has_key('k')))>"
