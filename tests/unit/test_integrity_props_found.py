"""Issue 16: the pure parts of the defects the property-based suite found (the database side is in
``tests/integration/test_integrity_props_found.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto import embedded_schema
from asyncecto import types as t
from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.errors import CastError
from asyncecto.repo import build_config
from asyncecto.schema._embeds import EmbedMany, EmbedOne, _json_dump, _json_load


@embedded_schema
class Item:
    label: str | None = None


class Pair(t.BaseType[tuple[int, int]]):
    """A user type whose driver value is a tuple (as for a composite or geometric column)."""

    name = "pair"
    db_type = "point"


ADAPTER = PostgresAdapter(build_config("postgres://u@localhost/db").connection_settings())


@pytest.mark.parametrize(
    ("typ", "column", "unnest"),
    [
        (t.Map(), [{"a": [1, 2]}, None], True),
        (EmbedOne(Item), [{"label": "x"}], True),
        (EmbedMany(Item), [[], None], False),
        (EmbedMany(Item), [[{"label": "x"}]], False),
        (Pair(), [(1, 2)], False),
        (Pair(), [None], True),
        (t.String(), ["[]"], True),
    ],
    ids=str,
)
def test_props_found_unnest_is_not_used_for_list_values(typ: Any, column: list[Any], unnest: bool) -> None:
    # asyncpg reads a list inside an array parameter as a dimension: such a column goes by VALUES
    body = ADAPTER.unnest_body(1, [t.Integer(), typ], [[1] * len(column), column])
    assert (body is not None) is unnest
    assert ADAPTER.unnest_body(1, [typ]) is not None  # without the values, the types alone decide


@settings(max_examples=300, deadline=None)
@given(st.timedeltas())
def test_props_found_embedded_duration_json_round_trip_is_exact(value: dt.timedelta) -> None:
    dumped = _json_dump(t.Duration(), value)
    assert isinstance(dumped, float | str)
    assert _json_load(t.Duration(), dumped) == value


@pytest.mark.parametrize("value", [[[]], [[], []], ([],), [[1], []]], ids=str)
def test_props_found_array_dump_refuses_an_empty_inner_list(value: Any) -> None:
    grid = t.Array(t.Array(t.Integer()))
    with pytest.raises(ValueError, match="empty inner list"):
        grid.dump(value)
    with pytest.raises(CastError) as info:
        t.dump_value(grid, value, field="grid")
    assert info.value.field == "grid"
    assert grid.dump([]) == [] and grid.dump([[1, None]]) == [[1, None]]
    assert grid.cast([[]]) == [[]]  # cast stays lenient; the write refuses it
