"""Every Python use of a prepared query's parameter while its builder runs is refused at ``prepare``
time, naming the parameter and the use (the builder runs once, with placeholders)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest

from asyncecto.errors import QueryError
from asyncecto.query import from_, prepare, where
from asyncecto.query._placeholder import Placeholder

from ..schemas import Weather

USES: list[tuple[str, Callable[[Any], Any]]] = [
    ("as a bool", bool),
    ("compared: != ", lambda p: operator.ne(p, 3)),
    ("compared: < ", lambda p: operator.lt(p, 3)),
    ("compared: <= ", lambda p: operator.le(p, 3)),
    ("compared: > ", lambda p: operator.gt(p, 3)),
    ("compared: >= ", lambda p: operator.ge(p, 3)),
    ("compared: == ", lambda p: operator.eq(p, 3)),
    ("hashed", hash),
    ("str()", str),
    ("formatted into a string", lambda p: f"{p}%"),
    ("len()", len),
    ("iterated", list),
    ("as an int", lambda p: [1, 2][p]),
    ("int()", int),
    ("float()", float),
    ("[0]", lambda p: p[0]),
    (".lower", lambda p: p.lower()),
]


@pytest.mark.parametrize(("use", "fn"), USES, ids=[u for u, _ in USES])
def test_each_python_use_of_a_parameter_is_refused_naming_it(use: str, fn: Callable[[Any], Any]) -> None:
    with pytest.raises(QueryError) as info:
        fn(Placeholder(0, "city"))
    text = str(info.value)
    assert "parameter 'city'" in text and use.split(" ")[0] in text and "prepare()" in text


def test_prepare_refuses_a_builder_that_branches_on_a_parameter() -> None:
    def builder(city: Any) -> Any:
        q = from_(Weather)
        if city:  # Python on the value: refused
            q = q | where(city=city)
        return q

    with pytest.raises(QueryError, match="parameter 'city' was used as a Python value"):
        prepare(builder)


def test_placeholders_still_pass_into_the_query_and_dunder_lookups_stay_attribute_errors() -> None:
    q = prepare(lambda city: from_(Weather) | where(lambda w: w.city == city))
    assert q is not None
    p = Placeholder(1, "t")
    assert repr(p) == "<prepared parameter 't'>"
    with pytest.raises(AttributeError):
        p.__array__  # noqa: B018 - a dunder lookup (numpy, copy …) is an AttributeError, not a refusal
