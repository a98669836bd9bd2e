"""``prepare(builder)`` (issue 21): a prepared call plans as ``builder(*args)`` would — the same plan,
the same parameters sent and cast, the same errors — for any values; what cannot be prepared is refused
when it is prepared, naming the parameter."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto.errors import QueryError
from asyncecto.query import (
    Query,
    ago,
    constant,
    fragment,
    from_,
    join,
    limit,
    offset,
    order_by,
    prepare,
    select,
    subquery,
    values,
    where,
)
from asyncecto.query._placeholder import BoundQuery
from asyncecto.query._planner import plan
from asyncecto.query._prepared import Prepared

from ..assoc_schemas import Post as BlogPost
from ..schemas import Post, Typed, Weather

Outcome = tuple[Any, ...]


def unprepared(builder: Callable[..., Any], args: tuple[Any, ...], op: str = "all") -> Outcome:
    """What the normal path does with these values: a plan and its parameters, or an error."""
    try:
        q = builder(*args)
        planned, params = plan(q if isinstance(q, Query) else from_(q), op)
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return ("plan", planned, list(params), list(params.cast))  # type: ignore[attr-defined]


def prepared_call(pq: Prepared[Any], args: tuple[Any, ...], op: str = "all") -> tuple[Outcome, bool]:
    """What a prepared call does (as the repo's read path), and whether it took the prepared plan."""
    entry = pq.plan(op, None, lambda q: q)
    try:
        params = entry.bind(args)
    except Exception as exc:
        return ("error", type(exc), str(exc)), True
    if params is None:
        return unprepared(pq.builder, args, op), False
    return ("plan", entry.planned, list(params), list(params.cast)), True


def same(builder: Callable[..., Any], *args: Any) -> bool:
    """Assert the prepared call equals the unprepared one; return whether the prepared plan served it."""
    pq = prepare(builder)
    got, fast = prepared_call(pq, args)
    assert got == unprepared(builder, args), args
    return fast


def filtered(city: Any, t: Any) -> Query[Any]:
    return from_(Weather) | where(lambda w: (w.city == city) & (w.temp_lo > t)) | order_by("temp_lo") | limit(10)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=True),
    st.decimals(allow_nan=False),
    st.text(),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=3),
    st.dates(),
    st.just(float("inf")),
)


@settings(max_examples=300, deadline=None)
@given(city=scalars, t=scalars)
def test_the_filtered_query_plans_as_unprepared_for_any_values(city: Any, t: Any) -> None:
    same(filtered, city, t)


def test_plain_values_take_the_prepared_plan() -> None:
    assert same(filtered, "Oslo", 5)
    assert same(filtered, "Kraków", -(2**31))
    assert not same(filtered, None, 5)  # refused as unprepared: use is_nil
    assert not same(filtered, "Oslo", 2**40)  # an int beyond integer is typed by its own value
    assert not same(filtered, "Oslo", 1.5)  # a fraction beside an integer field


def test_a_cast_error_is_the_unprepared_one() -> None:
    pq = prepare(filtered)
    got, fast = prepared_call(pq, ("Oslo", "warm"))  # the first (str, str) call is checked unprepared
    assert not fast and got == unprepared(filtered, ("Oslo", "warm"))
    assert prepared_call(pq, ("Oslo", "7"))[1]  # checked: the same plan
    got, fast = prepared_call(pq, ("Oslo", "warm"))
    assert fast and got[0] == "error"
    assert got == unprepared(filtered, ("Oslo", "warm"))
    # a bad value and a None: the build's error comes first, as unprepared
    assert prepared_call(pq, ("x\x00", None))[0] == unprepared(filtered, ("x\x00", None))


@settings(max_examples=200, deadline=None)
@given(ids=st.one_of(st.lists(st.integers(), max_size=4), st.tuples(st.integers()), scalars, st.sets(st.integers())))
def test_in_lists(ids: Any) -> None:
    same(lambda ids: from_(Weather) | where(lambda w: w.id.in_(ids)), ids)


def test_in_list_of_small_ints_is_prepared() -> None:
    assert same(lambda ids: from_(Weather) | where(lambda w: w.id.in_(ids)), [1, 2, 3])
    assert not same(lambda ids: from_(Weather) | where(lambda w: w.id.in_(ids)), [1, 2**40])


@settings(max_examples=200, deadline=None)
@given(n=scalars, o=scalars)
def test_limit_and_offset(n: Any, o: Any) -> None:
    same(lambda n, o: from_(Weather) | order_by("id") | limit(n) | offset(o), n, o)


@settings(max_examples=200, deadline=None)
@given(s=scalars, v=scalars)
def test_fragments_likes_and_arithmetic(s: Any, v: Any) -> None:
    same(lambda s: from_(Weather) | where(lambda w: fragment("lower(?) = ?", w.city, s)), s)
    same(lambda s: from_(Weather) | where(lambda w: w.city.ilike(s)), s)
    same(lambda v: from_(Weather) | where(lambda w: w.temp_lo + v > 10), v)
    same(lambda v: from_(Weather) | where(lambda w: v < w.temp_hi), v)
    same(lambda v: from_(Weather) | select(lambda w: (w.id, v)), v)


@settings(max_examples=150, deadline=None)
@given(c=scalars, n=scalars)
def test_subqueries_joins_selects_and_values(c: Any, n: Any) -> None:
    same(
        lambda c: (
            from_(Weather)
            | where(lambda w: w.id.in_(subquery(from_(Weather) | where(city=c) | select(lambda x: x.id))))
        ),
        c,
    )
    same(
        lambda c, n: (
            from_(BlogPost)
            | join("inner", lambda p: p.comments, as_="c")
            | where(lambda p, c_: (c_.text == c) & (p.visits >= n))
            | select(lambda p, c_: {"title": p.title, "text": c_.text})
        ),
        c,
        n,
    )
    same(
        lambda c, n: (
            from_(values([{"city": c, "n": n}], {"city": str, "n": int})) | select(lambda v: {"city": v.city, "n": v.n})
        ),
        c,
        n,
    )


def test_typed_fields() -> None:
    for args in [
        (dt.date(2020, 1, 2), decimal.Decimal("1.5"), True),
        ("2020-01-02", "1.5", "true"),
        (dt.date(2020, 1, 2), 1.25, 0),
    ]:
        same(lambda d, x, b: from_(Typed) | where(lambda r: (r.d == d) & (r.dec > x) & (r.b == b)), *args)


def test_ago_is_taken_at_each_call() -> None:
    pq = prepare(lambda n: from_(Post) | where(lambda p: (p.inserted_at > ago(1, "day")) & (p.visits > n)))
    first = pq.plan("all", None, lambda q: q).bind((3,))
    second = pq.plan("all", None, lambda q: q).bind((3,))
    assert first is not None and second is not None
    assert first[0] <= second[0] and first[1:] == second[1:] == [3]
    planned, params = plan(pq.build((3,)))
    assert planned == pq.plan("all", None, lambda q: q).planned and len(params) == len(first)


def test_a_call_binds_by_position_or_name_and_checks_arity() -> None:
    pq = prepare(filtered)
    bound = pq("Oslo", t=5)
    assert isinstance(bound, BoundQuery) and bound.args == ("Oslo", 5)
    assert repr(bound.query()) == repr(filtered("Oslo", 5))
    with pytest.raises(TypeError):
        pq("Oslo")


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        (lambda c: from_(Weather) | where(city=c) if c else from_(Weather), "parameter 'c' was used as a Python value"),
        (lambda p: from_(Weather) | where(lambda w: w.city.like(f"{p}%")), "parameter 'p' was used as a Python value"),
        (lambda ids: from_(Weather) | limit(len(ids)), "parameter 'ids' was used as a Python value (len())"),
        (lambda c: from_(Weather) | where(city=c.lower()), "parameter 'c' was used as a Python value (.lower)"),
        (
            lambda v: from_(Weather) | where(lambda w: w.temp_lo > constant(v)),
            "constant expects .* got <prepared parameter 'v'>; a prepared query's parameter can only",
        ),
        (lambda v: from_(Weather) | where(lambda w: w.temp_lo.in_([v, 2])), "parameter 'v' is used in a list"),
        (lambda v: from_(Typed) | where(lambda r: r.ints.contains(v)), "parameter 'v' is used in contains"),
        (lambda v: from_(Typed) | where(lambda r: r.m.has_key(v)), "parameter 'v' is used in has_key"),
        (lambda *vs: from_(Weather), "must be a plain positional parameter"),
        (lambda v=1: from_(Weather), "must be a plain positional parameter"),
    ],
)
def test_what_cannot_be_prepared_is_refused_naming_the_parameter(builder: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare(builder)


def test_a_plan_per_operation_and_prefix() -> None:
    pq = prepare(filtered)
    a = pq.plan("all", None, lambda q: q)
    assert pq.plan("all", None, lambda q: q) is a
    b = pq.plan("all", "archive", lambda q: q)
    assert b is not a and b.planned.sources[0].prefix == "archive"
    assert b.planned == plan(filtered("x", 1), prefix="archive")[0]


def test_a_builder_that_branches_on_types_or_bools_takes_the_unprepared_path() -> None:
    """``isinstance`` and ``is`` cannot be refused on a placeholder: the first call of each signature
    of values is compared with the unprepared path, and a different plan keeps that signature unprepared."""

    def by_type(v: Any) -> Query[Any]:
        return from_(Weather) | (where(city=v) if isinstance(v, str) else where(temp_lo=v))

    def by_flag(flag: Any, v: Any) -> Query[Any]:
        return from_(Weather) | (where(city=v) if flag is True else where(lambda w: w.city != v))

    def swapped(a: Any, b: Any) -> Query[Any]:  # same shape, the values in other places
        return from_(Weather) | where(lambda w: (w.city == (a if isinstance(a, str) else b)) & (w.temp_hi > 0))

    cases: list[tuple[Callable[..., Query[Any]], list[tuple[Any, ...]]]] = [
        (by_type, [("Oslo",), (3,), ("Lima",), (4,)]),
        (by_flag, [(True, "Oslo"), (False, "Oslo"), (True, "Lima"), (False, "Lima")]),
        (swapped, [("Oslo", "Lima"), (1, "Lima"), (2, "Oslo")]),
    ]
    for builder, calls in cases:
        pq = prepare(builder)
        for args in calls:
            got, _fast = prepared_call(pq, args)
            assert got == unprepared(builder, args), (builder, args)


def test_comparing_a_parameter_in_python_is_refused() -> None:
    for builder in [
        lambda c: from_(Weather) | (where(city=c) if c == "" else where(temp_lo=1)),
        lambda c: from_(Weather) | where(temp_lo=1 if c > 3 else 2),
        lambda c: from_(Weather) | where(city=c if c in ("a", "b") else "c"),
        lambda c: from_(Weather) | where(city=c if c in {"a", "b"} else "c"),
        lambda c: from_(Weather) | where(city={"a": "x"}.get(c, c)),
    ]:
        with pytest.raises(QueryError, match=r"parameter 'c' was used as a Python value \((compared|hashed)"):
            prepare(builder)


def test_plans_per_prefix_are_bounded() -> None:
    from asyncecto.query import _prepared

    pq = prepare(filtered)
    for i in range(_prepared._MAX_PLANS + 10):
        pq.plan("all", f"tenant_{i}", lambda q: q)
    assert len(pq._plans) == _prepared._MAX_PLANS
    assert ("all", f"tenant_{_prepared._MAX_PLANS + 9}", None) in pq._plans


def test_the_template_itself_cannot_be_planned() -> None:
    pq = prepare(filtered)
    with pytest.raises(QueryError, match=r"is a prepared query's template, with <prepared parameter 'city'>"):
        plan(pq.query)
