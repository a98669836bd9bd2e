"""Tests for asyncecto.query: building queries, their repr, and the planner."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from asyncecto.adapters.postgres._sql import all_sql
from asyncecto.errors import CastError, QueryError
from asyncecto.query import Query, from_, limit, offset, or_where, order_by, select, where
from asyncecto.query._ast import And, Compare, FieldRef, Filter, OrderBy, Param, Source
from asyncecto.query._plan import Col, ParamRef, PCompare, PIn, Planned, PSource, ReadStruct
from asyncecto.query._planner import plan
from asyncecto.schema import embedded_schema, field, schema


@schema("weather")
class Weather:
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = None
    note: str | None = field(virtual=True)


@schema("users", prefix="accounts")
class User:
    email: str | None = field(source="email_address")
    age: int | None = None


@embedded_schema
class Address:
    street: str | None = None


def planned(q: Query[Any], **kw: Any) -> Planned:
    return plan(q, **kw)[0]


def params(q: Query[Any], **kw: Any) -> list[Any]:
    return plan(q, **kw)[1]


# --- from_ -------------------------------------------------------------------------------------


def test_from_a_schema() -> None:
    q = from_(Weather)
    assert isinstance(q, Query)
    assert q.source == Source("weather", Weather, None)
    assert q.wheres == ()
    assert q.order_bys == ()
    assert q.limit is None
    assert q.offset is None


def test_from_a_table_and_schema_pair() -> None:
    q = from_(("weather_2024", Weather))
    assert q.source == Source("weather_2024", Weather, None)


def test_from_an_existing_query_adds_to_it() -> None:
    base = from_(Weather) | where(city="x")
    assert from_(base) is base
    q = from_(base, limit=3)
    assert q.wheres == base.wheres
    assert q.limit == Param(3)


def test_from_with_prefix() -> None:
    assert from_(Weather, prefix="archive").source == Source("weather", Weather, "archive")


@pytest.mark.parametrize("bad", [Weather(note=None), ("weather",), ("weather", object), 3, None, Address()])
def test_from_a_non_queryable_raises(bad: object) -> None:
    with pytest.raises(QueryError) as info:
        from_(bad)  # type: ignore[call-overload]
    assert "cannot build a query" in str(info.value)


def test_from_a_table_name_is_schemaless_and_needs_a_select() -> None:
    q = from_("weather")
    assert q.source == Source("weather", None, None)
    with pytest.raises(QueryError, match="need a select clause"):
        plan(q)
    text = all_sql(plan(q | select(lambda w: (w.city, w.anything)))[0])
    assert text == 'SELECT w0."city", w0."anything" FROM "weather" AS w0'


def test_from_an_embedded_schema_raises() -> None:
    with pytest.raises(QueryError) as info:
        from_(Address)
    assert "embedded schema Address" in str(info.value)


def test_keyword_form_equals_pipe_form() -> None:
    assert from_(Weather, where={"city": "x"}, limit=5) == from_(Weather) | where(city="x") | limit(5)
    kw = from_(Weather, where={"city": "x", "temp_lo": 1}, order_by="city", limit=5, offset=10)
    piped = from_(Weather) | where(city="x", temp_lo=1) | order_by("city") | limit(5) | offset(10)
    assert kw == piped
    assert hash(kw) == hash(piped)
    assert from_(Weather, limit=0) == from_(Weather) | limit(0)


def test_query_is_immutable_and_steps_return_new_queries() -> None:
    q = from_(Weather)
    q2 = q | where(city="x")
    assert q.wheres == ()
    assert len(q2.wheres) == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        q.limit = Param(1)  # type: ignore[misc]


# --- where / or_where --------------------------------------------------------------------------


def test_where_builds_and_filters() -> None:
    q = from_(Weather) | where(city="x") | where({"temp_lo": 1}, temp_hi=2)
    assert q.wheres == (
        Filter("and", Compare("==", FieldRef(0, "city"), Param("x"))),
        Filter(
            "and",
            And((Compare("==", FieldRef(0, "temp_lo"), Param(1)), Compare("==", FieldRef(0, "temp_hi"), Param(2)))),
        ),
    )


def test_or_where_ands_its_own_fields() -> None:
    # Ecto: an interpolated keyword list in or_where is ANDed internally
    q = from_(Weather) | where(city="Kraków") | or_where(city="Oslo", temp_lo=0)
    assert q.wheres[1] == Filter(
        "or", And((Compare("==", FieldRef(0, "city"), Param("Oslo")), Compare("==", FieldRef(0, "temp_lo"), Param(0))))
    )
    sql = all_sql(plan(q)[0])
    assert sql.endswith('WHERE ((w0."city" = $1) OR ((w0."city" = $2) AND (w0."temp_lo" = $3)))')


def test_or_where_builds_or_filters() -> None:
    q = from_(Weather) | where(city="x") | or_where(city="y")
    assert [f.op for f in q.wheres] == ["and", "or"]
    assert q.wheres[1].expr == Compare("==", FieldRef(0, "city"), Param("y"))


@pytest.mark.parametrize("step", [where, or_where])
def test_where_with_none_raises_pointing_to_is_nil(step: Any) -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | step(city=None)
    message = str(info.value)
    assert "city" in message
    assert "None" in message
    assert "is_nil" in message


def test_where_with_nothing_raises() -> None:
    with pytest.raises(QueryError):
        where()
    with pytest.raises(QueryError):
        or_where({})


@pytest.mark.parametrize("step", [where(town="x"), or_where(town="x"), order_by("town"), order_by(desc="town")])
def test_unknown_field_raises_naming_field_schema_and_known_fields(step: Any) -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | step
    message = str(info.value)
    assert "'town'" in message
    assert "Weather" in message
    assert "id, city, temp_lo, temp_hi, prcp" in message


def test_unknown_field_in_keyword_form_raises() -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather, where={"town": "x"})
    assert "'town'" in str(info.value)


def test_virtual_field_cannot_be_queried() -> None:
    with pytest.raises(QueryError) as info:
        from_(Weather) | where(note="x")
    message = str(info.value)
    assert "'note'" in message
    # the listed fields are the persisted ones
    assert "note" not in message.split("fields are:")[1]
    with pytest.raises(QueryError):
        from_(Weather) | order_by("note")


def test_where_checks_against_the_source_fields_not_the_column_names() -> None:
    assert len((from_(User) | where(email="a@b.c")).wheres) == 1
    with pytest.raises(QueryError):
        from_(User) | where(email_address="a@b.c")


# --- limit / offset ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", [limit, offset])
@pytest.mark.parametrize("bad", [-1, True, False, 1.5, "5", None])
def test_limit_and_offset_reject_non_counts(step: Any, bad: object) -> None:
    with pytest.raises(QueryError) as info:
        step(bad)
    assert "non-negative integer" in str(info.value)
    assert repr(bad) in str(info.value)


def test_limit_and_offset_keep_the_last_value() -> None:
    q = from_(Weather) | limit(5) | offset(1) | limit(0) | offset(20)
    assert q.limit == Param(0)
    assert q.offset == Param(20)


def test_limit_via_keyword_rejects_bad_values() -> None:
    with pytest.raises(QueryError):
        from_(Weather, limit=-3)


# --- order_by ----------------------------------------------------------------------------------


def asc(name: str) -> OrderBy:
    return OrderBy("asc", FieldRef(0, name))


def desc(name: str) -> OrderBy:
    return OrderBy("desc", FieldRef(0, name))


def test_order_by_forms() -> None:
    assert (from_(Weather) | order_by("city")).order_bys == (asc("city"),)
    assert (from_(Weather) | order_by(["city", "temp_lo"])).order_bys == (asc("city"), asc("temp_lo"))
    assert (from_(Weather) | order_by(("city",))).order_bys == (asc("city"),)
    assert (from_(Weather) | order_by(asc="city")).order_bys == (asc("city"),)
    assert (from_(Weather) | order_by(desc="temp_lo")).order_bys == (desc("temp_lo"),)
    assert (from_(Weather) | order_by(desc=["temp_lo", "city"])).order_bys == (desc("temp_lo"), desc("city"))
    assert (from_(Weather) | order_by("city", desc="temp_lo")).order_bys == (asc("city"), desc("temp_lo"))


def test_order_by_appends() -> None:
    q = from_(Weather) | order_by("city") | order_by(desc="temp_lo")
    assert [(o.direction, o.expr) for o in q.order_bys] == [
        ("asc", FieldRef(0, "city")),
        ("desc", FieldRef(0, "temp_lo")),
    ]


def test_order_by_without_fields_raises() -> None:
    with pytest.raises(QueryError):
        order_by()
    with pytest.raises(QueryError):
        order_by([])


# --- repr --------------------------------------------------------------------------------------


def test_repr_reads_as_the_dsl() -> None:
    assert repr(from_(Weather)) == "Query<from_(Weather)>"
    assert repr(from_(Weather) | where(city="Kraków") | limit(5)) == (
        "Query<from_(Weather) | where(city='Kraków') | limit(5)>"
    )
    q = (
        from_(("weather_2024", Weather), prefix="archive")
        | where(city="x", temp_lo=1)
        | or_where(temp_hi=30)
        | order_by(desc="temp_lo")
        | limit(10)
        | offset(20)
    )
    assert repr(q) == (
        "Query<from_(('weather_2024', Weather), prefix='archive') | where(city='x', temp_lo=1) "
        "| or_where(temp_hi=30) | order_by(desc='temp_lo') | limit(10) | offset(20)>"
    )


def test_repr_evaluates_back_to_an_equal_query() -> None:
    q = (
        from_(("weather_2024", Weather), prefix="archive")
        | where(city="Kraków", temp_lo=1)
        | or_where(temp_hi=30)
        | order_by(desc="temp_lo")
        | limit(10)
        | offset(20)
    )
    text = repr(q)[len("Query<") : -1]
    names = {
        "from_": from_,
        "where": where,
        "or_where": or_where,
        "order_by": order_by,
        "limit": limit,
        "offset": offset,
        "Weather": Weather,
    }
    assert eval(text, names) == q


def test_repr_never_renders_sql() -> None:
    text = repr(from_(Weather) | where(city="x"))
    assert "SELECT" not in text
    assert "$1" not in text


def test_repr_of_keyword_form_equals_pipe_form() -> None:
    assert repr(from_(Weather, where={"city": "x"}, limit=5)) == repr(from_(Weather) | where(city="x") | limit(5))


def test_repr_of_several_order_by_fields_is_valid_python() -> None:
    q = from_(Weather) | order_by(["city", "temp_lo"])
    text = repr(q)
    assert text.startswith("Query<") and text.endswith(">")
    compile(text[len("Query<") : -1], "<repr>", "eval")


# --- plan --------------------------------------------------------------------------------------


def test_plan_of_a_plain_query() -> None:
    p, ps = plan(from_(User))
    assert p == Planned(
        "all",
        (PSource("users", "accounts"),),
        (Col(0, "id"), Col(0, "email_address"), Col(0, "age")),
        ReadStruct(User, ("id", "email", "age"), "users", "accounts", False),
    )
    assert ps == []


def test_plan_lifts_values_into_params() -> None:
    q = from_(User) | where(email="a@b.c") | order_by(desc="age") | limit(5) | offset(10)
    p, ps = plan(q)
    assert p.wheres == (("and", PCompare("==", Col(0, "email_address"), ParamRef(1))),)
    assert p.order_bys == (("desc", Col(0, "age")),)
    assert p.limit == ParamRef(2)
    assert p.offset == ParamRef(3)
    assert ps == ["a@b.c", 5, 10]


def test_plan_has_no_parameter_values() -> None:
    secret = "s3cr3t-value-in-where"
    p, ps = plan(from_(Weather) | where(city=secret) | limit(987654))
    assert secret not in repr(p)
    assert "987654" not in repr(p)
    assert ps == [secret, 987654]


def test_same_shape_different_values_give_equal_plans() -> None:
    a, pa = plan(from_(Weather) | where(city="x", temp_lo=1) | order_by("city") | limit(5) | offset(0))
    b, pb = plan(from_(Weather) | where(city="y", temp_lo="2") | order_by("city") | limit(50) | offset(7))
    assert a == b
    assert hash(a) == hash(b)
    assert pa == ["x", 1, 5, 0]
    assert pb == ["y", 2, 50, 7]
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    "other",
    [
        from_(Weather) | where(temp_hi=1) | limit(5),
        from_(Weather) | or_where(city="x") | limit(5),
        from_(Weather) | where(city="x"),
        from_(Weather) | where(city="x") | offset(5),
        from_(Weather) | where(city="x") | where(temp_lo=1) | limit(5),
        from_(Weather) | where(city="x") | order_by("city") | limit(5),
        from_(("weather_2024", Weather)) | where(city="x") | limit(5),
        from_(Weather, prefix="archive") | where(city="x") | limit(5),
        from_(Weather),
    ],
)
def test_different_shapes_give_different_plans(other: Query[Any]) -> None:
    base = planned(from_(Weather) | where(city="x") | limit(5))
    assert planned(other) != base
    assert len({planned(other), base}) == 2


def test_order_direction_is_part_of_the_shape() -> None:
    assert planned(from_(Weather) | order_by("city")) != planned(from_(Weather) | order_by(desc="city"))


def test_plan_op_is_part_of_the_shape() -> None:
    q = from_(Weather)
    assert planned(q) != plan(q, "delete_all")[0]
    assert plan(q, "delete_all")[0].op == "delete_all"


def test_params_are_cast_to_the_field_type() -> None:
    assert params(from_(Weather) | where(temp_lo="5")) == [5]
    assert params(from_(Weather) | where(prcp=1)) == [1.0]
    assert isinstance(params(from_(Weather) | where(prcp=1))[0], float)
    assert params(from_(Weather) | where(id="42")) == [42]


@pytest.mark.parametrize(("name", "value"), [("temp_lo", "five"), ("temp_lo", 1.5), ("city", 3), ("id", "x")])
def test_bad_param_value_raises_cast_error_naming_the_field(name: str, value: object) -> None:
    q = from_(Weather) | where({name: value})
    with pytest.raises(CastError) as info:
        plan(q)
    assert info.value.field == name
    assert info.value.schema == "Weather"
    assert info.value.value == value
    assert f"Weather.{name}" in str(info.value)


def test_in_params_are_cast_as_a_list() -> None:
    q = attrs.evolve(from_(Weather), wheres=(Filter("and", Compare("in", FieldRef(0, "temp_lo"), Param([1, "2"]))),))
    p, ps = plan(q)
    assert p.wheres == (("and", PIn(Col(0, "temp_lo"), ParamRef(1))),)
    assert ps == [[1, 2]]
    other = attrs.evolve(
        from_(Weather), wheres=(Filter("and", Compare("in", FieldRef(0, "temp_lo"), Param((7, 8, 9)))),)
    )
    assert plan(other)[0] == p


def test_in_with_a_non_list_raises() -> None:
    q = attrs.evolve(from_(Weather), wheres=(Filter("and", Compare("in", FieldRef(0, "temp_lo"), Param(3))),))
    with pytest.raises(QueryError) as info:
        plan(q)
    assert "temp_lo" in str(info.value)


def test_plan_rejects_unknown_fields_and_bindings_built_by_hand() -> None:
    unknown = attrs.evolve(from_(Weather), wheres=(Filter("and", Compare("==", FieldRef(0, "nope"), Param(1))),))
    with pytest.raises(QueryError) as info:
        plan(unknown)
    assert "'nope'" in str(info.value)
    assert "Weather" in str(info.value)
    binding = attrs.evolve(from_(Weather), wheres=(Filter("and", Compare("==", FieldRef(1, "city"), Param(1))),))
    with pytest.raises(QueryError) as info:
        plan(binding)
    assert "binding 1" in str(info.value)


def test_plan_of_a_query_without_schema_raises() -> None:
    with pytest.raises(QueryError):
        plan(Query(Source("weather")))


def test_plan_columns_skip_virtual_fields() -> None:
    p = planned(from_(Weather))
    assert p.reader.fields == ("id", "city", "temp_lo", "temp_hi", "prcp")
    assert p.columns == tuple(Col(0, c) for c in p.reader.fields)


def test_plan_of_a_table_and_schema_pair_uses_the_table() -> None:
    p = planned(from_(("users_old", User)))
    assert p.table == "users_old"
    assert p.reader.schema is User
    assert p.columns == (Col(0, "id"), Col(0, "email_address"), Col(0, "age"))


# --- prefix precedence -------------------------------------------------------------------------


def test_prefix_precedence() -> None:
    # from_(prefix=) beats the schema's prefix, which beats plan(prefix=)
    assert planned(from_(User, prefix="q"), prefix="call").prefix == "q"
    assert planned(from_(User), prefix="call").prefix == "accounts"
    assert planned(from_(Weather, prefix="q"), prefix="call").prefix == "q"
    assert planned(from_(Weather), prefix="call").prefix == "call"
    assert planned(from_(Weather)).prefix is None
    assert planned(from_(User)).prefix == "accounts"
