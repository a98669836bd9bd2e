"""The keyword form of ``from_`` (every pipe clause as a keyword), ``recursive_ctes``, ``with_cte``'s
``materialized``/``operation``, ``prepend_order_by``, ``reverse_order``, named-binding helpers,
``distinct`` directions and ``exclude`` of one join kind: the SQL they generate, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import (
    Query,
    asc_nulls_first,
    count,
    desc,
    desc_nulls_last,
    distinct,
    except_,
    exclude,
    from_,
    group_by,
    has_named_binding,
    having,
    intersect,
    join,
    limit,
    lock,
    offset,
    or_having,
    or_where,
    order_by,
    over,
    preload,
    prepend_order_by,
    recursive_ctes,
    reverse_order,
    row_number,
    select,
    select_merge,
    union,
    update,
    where,
    windows,
    with_cte,
    with_named_binding,
    with_ties,
)

from ..assoc_schemas import Comment as BComment
from ..assoc_schemas import Post as BPost
from ..schemas import Post, Weather

REPO = Repo("postgres://localhost/x")

P_COLS = 'p0."id", p0."title", p0."content", p0."visits", p0."rating", p0."inserted_at", p0."updated_at"'
W_COLS = 'w0."id", w0."city", w0."temp_lo", w0."temp_hi", w0."prcp"'


def sql(q: Any) -> tuple[str, list[Any]]:
    return REPO.to_sql(q)


def same(keyword: Query[Any], piped: Query[Any]) -> None:
    """The keyword form builds the very query the pipe form does (same value, same SQL)."""
    assert keyword == piped
    assert repr(keyword) == repr(piped)
    assert sql(keyword) == sql(piped)


# --- from_ keywords ------------------------------------------------------------------------------


def test_filters_ordering_and_limits_as_keywords() -> None:
    same(
        from_(
            Weather,
            where=lambda w: w.temp_lo > 0,
            or_where={"city": "Oslo"},
            order_by={"desc": "temp_hi"},
            prepend_order_by="city",
            limit=5,
            with_ties=True,
            offset=2,
        ),
        from_(Weather)
        | where(lambda w: w.temp_lo > 0)
        | or_where(city="Oslo")
        | order_by(desc="temp_hi")
        | prepend_order_by("city")
        | limit(5)
        | with_ties()
        | offset(2),
    )


def test_grouping_select_and_select_merge_as_keywords() -> None:
    same(
        from_(
            Weather,
            group_by="city",
            having=lambda w: count() > 1,
            or_having=lambda w: count() == 0,
            select=lambda w: {"city": w.city},
            select_merge=lambda w: {"n": count()},
        ),
        from_(Weather)
        | group_by("city")
        | having(lambda w: count() > 1)
        | or_having(lambda w: count() == 0)
        | select(lambda w: {"city": w.city})
        | select_merge(lambda w: {"n": count()}),
    )


def test_distinct_lock_update_windows_as_keywords() -> None:
    same(
        from_(Weather, distinct={"desc": "city"}, lock="FOR UPDATE"),
        from_(Weather) | distinct({"desc": "city"}) | lock("FOR UPDATE"),
    )
    same(
        from_(Weather, where={"city": "x"}, update={"set": {"temp_lo": 1}, "inc": {"temp_hi": 2}}),
        from_(Weather) | where(city="x") | update(set={"temp_lo": 1}, inc={"temp_hi": 2}),
    )
    same(
        from_(
            Weather,
            windows={"w": {"partition_by": lambda w: w.city}},
            select=lambda w: over(row_number(), "w"),
        ),
        from_(Weather) | windows(w={"partition_by": lambda w: w.city}) | select(lambda w: over(row_number(), "w")),
    )


def test_combinations_as_keywords_take_a_query_or_a_list() -> None:
    a = from_(Weather) | select(lambda w: w.city)
    same(
        from_(Weather, select=lambda w: w.city, union=a, intersect=[a, a], except_=a),
        from_(Weather) | select(lambda w: w.city) | union(a) | intersect(a) | intersect(a) | except_(a),
    )
    text, _ = sql(from_(Weather, select=lambda w: w.city, union_all=a))
    assert text == 'SELECT w0."city" FROM "weather" AS w0 UNION ALL (SELECT w0."city" FROM "weather" AS w0)'


def test_ctes_and_recursive_ctes_as_keywords() -> None:
    base = from_(Weather) | where(lambda w: w.id == 1)
    same(
        from_(("t", Weather), with_cte={"t": base}, recursive_ctes=True),
        from_(("t", Weather)) | with_cte("t", as_=base) | recursive_ctes(True),
    )
    same(
        from_(("t", Weather), with_cte={"t": {"as_": base, "materialized": False}}),
        from_(("t", Weather)) | with_cte("t", as_=base, materialized=False),
    )


def test_joins_as_keywords() -> None:
    on = lambda p, c: c.post_id == p.id  # noqa: E731
    same(
        from_(BPost, left_join=(BComment, {"on": on, "as_": "c"}), where=lambda p, c: c.approved == True),  # noqa: E712
        from_(BPost) | join("left", BComment, on=on, as_="c") | where(lambda p, c: c.approved == True),  # noqa: E712
    )
    same(from_(BPost, join=(BComment, on)), from_(BPost) | join("inner", BComment, on=on))
    same(from_(BPost, join=join("inner", BComment, on=on)), from_(BPost) | join("inner", BComment, on=on))
    same(from_(BPost, inner_join=lambda p: p.comments), from_(BPost) | join("inner", lambda p: p.comments))
    same(
        from_(BPost, left_join=[(BComment, on), (BComment, on)], cross_join=Weather),
        from_(BPost) | join("left", BComment, on=on) | join("left", BComment, on=on) | join("cross", Weather),
    )
    on2 = lambda p, c, d: d.post_id == p.id  # noqa: E731
    text, _ = sql(from_(BPost, right_join=(BComment, on), full_join=(BComment, on2), select=lambda p: p.id))
    assert text == (
        'SELECT b0."id" FROM "bl_posts" AS b0 RIGHT OUTER JOIN "bl_comments" AS b1 ON (b1."post_id" = b0."id") '
        'FULL OUTER JOIN "bl_comments" AS b2 ON (b2."post_id" = b0."id")'
    )


def test_preload_and_exclude_as_keywords() -> None:
    same(from_(BPost, preload=["comments", {"tags": []}]), from_(BPost) | preload(["comments", {"tags": []}]))
    base = from_(Weather) | order_by("id") | limit(1)
    same(from_(base, exclude=["order_by", "limit"]), base | exclude("order_by", "limit"))
    same(from_(base, exclude="limit"), base | exclude("limit"))


def test_keywords_apply_in_the_order_written() -> None:
    q = from_(Weather, order_by="city", prepend_order_by="id")
    assert sql(q)[0].endswith('ORDER BY w0."id", w0."city"')
    q = from_(Weather, prepend_order_by="id", order_by="city")
    assert sql(q)[0].endswith('ORDER BY w0."id", w0."city"')
    q = from_(Weather, order_by="city", select=lambda w: w.city, limit=1, offset=0)
    assert sql(q) == ('SELECT w0."city" FROM "weather" AS w0 ORDER BY w0."city" LIMIT $1 OFFSET $2', [1, 0])


def test_an_unknown_keyword_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(QueryError) as e:
        from_(Weather, wher=lambda w: w.id == 1)
    message = str(e.value)
    assert message.startswith("unsupported 'wher' in keyword query expression; known keywords: as_, prefix, join")
    for name in ("where", "preload", "left_join", "select_merge", "union_all", "with_cte", "recursive_ctes"):
        assert name in message


def test_keyword_values_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(QueryError, match=r"update= expects a dict of update\(\) keywords, got 1"):
        from_(Weather, update=1)
    with pytest.raises(QueryError, match=r"with_cte= expects a dict of CTE name to query"):
        from_(Weather, with_cte=from_(Weather))
    with pytest.raises(QueryError, match=r"left_join= got unknown join options \['where'\]"):
        from_(BPost, left_join=(BComment, {"where": 1}))
    with pytest.raises(QueryError, match="a left join needs on="):
        from_(BPost, left_join=BComment)


# --- recursive_ctes and with_cte options ----------------------------------------------------------


BASE = from_(Weather) | where(lambda w: w.id == 1)


def test_recursive_ctes_writes_with_recursive() -> None:
    q = from_(("t", Weather)) | recursive_ctes(True) | with_cte("t", as_=BASE)
    assert sql(q)[0] == (
        f'WITH RECURSIVE "t" AS (SELECT {W_COLS} FROM "weather" AS w0 WHERE (w0."id" = $1)) '
        f'SELECT {W_COLS.replace("w0", "t0")} FROM "t" AS t0'
    )
    assert not sql(q | recursive_ctes(False))[0].startswith("WITH RECURSIVE")
    assert repr(q) == ("Query<from_(('t', Weather)) | with_cte('t', as_=from_(Weather) | where(id=1), recursive=True)>")
    with pytest.raises(QueryError, match="recursive_ctes expects True or False, got 'yes'"):
        recursive_ctes("yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("materialized", "words"), [(True, "MATERIALIZED "), (False, "NOT MATERIALIZED "), (None, "")])
def test_materialized(materialized: bool | None, words: str) -> None:
    q = from_(("t", Weather)) | with_cte("t", as_=BASE, materialized=materialized)
    assert sql(q)[0].startswith(f'WITH "t" AS {words}(SELECT ')


def test_materialized_is_per_cte_and_part_of_the_cached_statement() -> None:
    q = (
        from_(("b", Weather))
        | with_cte("a", as_=BASE, materialized=True)
        | with_cte("b", as_=from_(("a", Weather)), materialized=False)
    )
    text = sql(q)[0]
    assert '"a" AS MATERIALIZED (' in text and '"b" AS NOT MATERIALIZED (' in text
    plain = from_(("t", Weather)) | with_cte("t", as_=BASE)
    assert sql(plain)[0].startswith('WITH "t" AS (SELECT')
    assert sql(from_(("t", Weather)) | with_cte("t", as_=BASE, materialized=True))[0].startswith(
        'WITH "t" AS MATERIALIZED ('
    )
    with pytest.raises(QueryError, match="materialized= expects True, False or None, got 'yes'"):
        with_cte("t", as_=BASE, materialized="yes")  # type: ignore[arg-type]


def test_update_all_cte() -> None:
    changed = from_(Post) | where(visits=0) | update(set={"visits": 1}) | select(lambda p: p)
    q = from_(("changed", Post)) | with_cte("changed", as_=changed, operation="update_all")
    assert sql(q) == (
        f'WITH "changed" AS (UPDATE "posts" AS p0 SET "visits" = $1 WHERE (p0."visits" = $2) RETURNING {P_COLS}) '
        f'SELECT {P_COLS.replace("p0", "c0")} FROM "changed" AS c0',
        [1, 0],
    )
    assert "operation='update_all'" in repr(q)


def test_delete_all_cte_returns_its_select_and_the_outer_query_filters() -> None:
    gone = from_(Post) | where(lambda p: p.visits > 10) | select(lambda p: {"id": p.id})
    q = (
        from_(("gone", Post))
        | with_cte("gone", as_=gone, operation="delete_all", materialized=True)
        | where(lambda g: g.id > 3)
        | select(lambda g: g.id)
    )
    assert sql(q) == (
        'WITH "gone" AS MATERIALIZED (DELETE FROM "posts" AS p0 WHERE (p0."visits" > $1) RETURNING p0."id" AS "id") '
        'SELECT g0."id" FROM "gone" AS g0 WHERE (g0."id" > $2)',
        [10, 3],
    )


def test_cte_operation_errors() -> None:
    with pytest.raises(QueryError, match="operation= got 'insert_all'; use one of 'all', 'update_all', 'delete_all'"):
        with_cte("t", as_=BASE, operation="insert_all")
    with pytest.raises(QueryError, match=r"with operation='update_all' needs a query with update\(...\)"):
        with_cte("t", as_=BASE, operation="update_all")
    with pytest.raises(QueryError, match=r"has update\(...\) but operation='all'; pass operation='update_all'"):
        with_cte("t", as_=BASE | update(set={"city": "x"}))


# --- prepend_order_by, reverse_order --------------------------------------------------------------


def test_prepend_order_by_puts_terms_first() -> None:
    q = from_(Weather) | order_by("id") | prepend_order_by(lambda w: [desc(w.temp_lo)], asc_nulls_first="city")
    assert sql(q)[0].endswith('ORDER BY w0."temp_lo" DESC, w0."city" ASC NULLS FIRST, w0."id"')
    assert sql(from_(Weather) | prepend_order_by("city"))[0].endswith('ORDER BY w0."city"')
    with pytest.raises(QueryError, match=r"order_by\(\) needs at least one field"):
        prepend_order_by()


def test_prepend_order_by_stays_after_distinct_on() -> None:
    q = from_(Weather) | distinct("city") | order_by("id") | prepend_order_by(desc="temp_hi")
    assert sql(q)[0] == (
        f'SELECT DISTINCT ON (w0."city") {W_COLS} FROM "weather" AS w0 ORDER BY w0."city", w0."temp_hi" DESC, w0."id"'
    )


def test_reverse_order_flips_every_direction() -> None:
    q = (
        from_(Weather)
        | order_by(lambda w: [w.city, desc(w.temp_lo), asc_nulls_first(w.temp_hi), desc_nulls_last(w.prcp)])
        | reverse_order()
    )
    assert sql(q)[0].endswith(
        'ORDER BY w0."city" DESC, w0."temp_lo", w0."temp_hi" DESC NULLS LAST, w0."prcp" ASC NULLS FIRST'
    )
    assert sql(q | reverse_order())[0].endswith(
        'ORDER BY w0."city", w0."temp_lo" DESC, w0."temp_hi" ASC NULLS FIRST, w0."prcp" DESC NULLS LAST'
    )


def test_reverse_order_without_order_by_uses_the_primary_key_descending() -> None:
    assert sql(from_(Weather) | reverse_order())[0].endswith('ORDER BY w0."id" DESC')
    with pytest.raises(QueryError, match=r"reverse_order\(\) needs an order_by or a schema with a primary key"):
        from_("weather") | select(lambda w: w.x) | reverse_order()


# --- named bindings -------------------------------------------------------------------------------


def test_has_named_binding() -> None:
    q = from_(BPost, as_="p") | join("left", BComment, on=lambda p, c: c.post_id == p.id, as_="c")
    assert has_named_binding(q, "p") and has_named_binding(q, "c")
    assert not has_named_binding(q, "x")
    assert not has_named_binding(BPost, "p")
    assert not has_named_binding(q | exclude("join"), "c")


def test_with_named_binding_adds_the_binding_once() -> None:
    calls: list[str] = []

    def add(q: Query[Any], name: str) -> Query[Any]:
        calls.append(name)
        return q | join("left", BComment, on=lambda p, c: c.post_id == p.id, as_=name)

    q = from_(BPost) | with_named_binding("c", add) | with_named_binding("c", add)
    assert calls == ["c"]
    assert len(q.joins) == 1
    one_arg = from_(BPost) | with_named_binding("c", lambda q: q | join("inner", lambda p: p.comments, as_="c"))
    assert has_named_binding(one_arg, "c")


def test_with_named_binding_refuses_a_function_that_does_not_add_it() -> None:
    with pytest.raises(QueryError, match="with_named_binding expected the function to return a query with a binding"):
        from_(BPost) | with_named_binding("c", lambda q: q)
    with pytest.raises(QueryError, match="with_named_binding expects a function of the query, got 1"):
        with_named_binding("c", 1)  # type: ignore[arg-type]


# --- distinct directions, exclude of a join kind ---------------------------------------------------


def test_distinct_with_directions_prepends_them_to_order_by() -> None:
    q = from_(Weather) | distinct({"desc": "city", "asc": "temp_lo"}) | order_by("id")
    assert sql(q)[0] == (
        f'SELECT DISTINCT ON (w0."city", w0."temp_lo") {W_COLS} FROM "weather" AS w0 '
        'ORDER BY w0."city" DESC, w0."temp_lo", w0."id"'
    )
    with pytest.raises(QueryError, match="distinct got unknown direction 'down'"):
        distinct({"down": "city"})


def test_exclude_one_join_kind_drops_those_joins_and_their_names() -> None:
    on = lambda p, c: c.post_id == p.id  # noqa: E731
    q = from_(BPost) | join("inner", BComment, on=on, as_="i") | join("left", BComment, on=on, as_="l")
    kept = q | exclude("left_join")
    assert [j.kind for j in kept.joins] == ["inner"]
    assert dict(kept.aliases) == {"i": 1}
    assert sql(kept | select(lambda p: p.id))[0] == (
        'SELECT b0."id" FROM "bl_posts" AS b0 INNER JOIN "bl_comments" AS b1 ON (b1."post_id" = b0."id")'
    )
    assert (q | exclude("inner_join", "left_join")).joins == ()
    assert (q | exclude("right_join")) == q
    with pytest.raises(QueryError, match=r"cannot exclude inner_join .*the left join after it \(binding 2\)"):
        q | exclude("inner_join")
    with pytest.raises(QueryError, match=r"cannot exclude 'from'; use one of .*left_join"):
        exclude("from")


def test_select_merge_cannot_set_an_association() -> None:
    with pytest.raises(QueryError, match="select_merge cannot set 'comments': Post has no such field"):
        from_(BPost) | select_merge(lambda p: {"comments": p.id})


def test_exclude_with_ctes_drops_their_options() -> None:
    q = from_(("t", Weather)) | with_cte("t", as_=BASE, materialized=True)
    again = q | exclude("with_ctes") | with_cte("t", as_=BASE)
    assert again == from_(("t", Weather)) | with_cte("t", as_=BASE)
    assert sql(again)[0].startswith('WITH "t" AS (SELECT')


def test_a_data_modifying_cte_names_a_dict_selects_columns_by_its_keys() -> None:
    changed = from_(Post) | update(inc={"visits": 1}) | select(lambda p: {"id": p.id, "visits": p.visits * 2})
    q = from_(("c", Post)) | with_cte("c", as_=changed, operation="update_all") | select(lambda c: c.visits)
    assert sql(q)[0] == (
        'WITH "c" AS (UPDATE "posts" AS p0 SET "visits" = p0."visits" + $1 '
        'RETURNING p0."id" AS "id", (p0."visits" * $2) AS "visits") SELECT c0."visits" FROM "c" AS c0'
    )
