"""Issue 18, changesets as properties: ``cast``, the validations and the change operations agree with a
reference model (:mod:`tests.props.changesets`) on every input drawn, not only on the examples of
``test_changeset_cast.py``/``test_changeset_validations.py``/``test_changeset_change.py``.

Checked on each draw: the changes are exactly the cast values that differ from the struct's, the
errors name exactly the fields (and the validation) that failed, newest first (as Ecto); ``valid`` iff no error;
``apply_changes``, ``get_field``, ``changed`` and ``traverse_errors`` read the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncecto import changeset as c
from asyncecto.errors import InvalidChangesetError

from ..props.changesets import (
    CAST,
    KINDS,
    TYPED,
    Model,
    Person,
    Validation,
    cast_inputs,
    data_values,
    errors_of,
    validations,
)
from ..props.settings import props


def assert_matches(cs: c.Changeset[Any], model: Model) -> None:
    assert cs.changes == model.changes
    assert errors_of(cs) == model.errors
    assert cs.valid is model.valid
    applied = c.apply_changes(cs)
    assert isinstance(applied, Person)
    assert {name: getattr(applied, name) for name in CAST} == model.applied()
    for name in CAST:
        assert c.get_field(cs, name) == model.current(name)
        assert c.changed(cs, name) is (name in model.changes)
    assert set(c.traverse_errors(cs)) == {e[0] for e in model.errors}


@props(300)
@given(inputs=cast_inputs())
def test_cast_keeps_exactly_the_permitted_values_that_cast_and_differ(
    inputs: tuple[dict[str, Any], dict[str, Any], list[str]],
) -> None:
    data, params, permitted = inputs
    cs = c.cast(Person(**data), params, permitted)
    model = Model(data)
    model.cast(params, permitted)
    assert_matches(cs, model)
    assert cs.params == params
    for _name, (message, meta) in cs.errors:
        assert message == "is invalid" and meta == {"type": meta["type"], "validation": "cast"}


@props(300)
@given(inputs=cast_inputs(), steps=validations())
def test_validations_fail_exactly_where_the_model_says(
    inputs: tuple[dict[str, Any], dict[str, Any], list[str]], steps: list[Validation]
) -> None:
    data, params, permitted = inputs
    cs = c.cast(Person(**data), params, permitted)
    model = Model(data)
    model.cast(params, permitted)
    for v in steps:
        cs = cs | v.step()
        model.validate(v)
    assert_matches(cs, model)
    for name, (message, meta) in cs.errors:
        if meta["validation"] == "required":
            assert message == "can't be blank" and name in cs.required
    if steps and not model.valid:
        with pytest.raises(InvalidChangesetError) as info:
            c.apply_action(cs, "insert")
        assert info.value.changeset.action == "insert"


_UPDATES: dict[str, Callable[[Any], Any]] = {
    "string": str.upper,
    "integer": lambda n: n + 1,
    "boolean": lambda b: not b,
}


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, str, Any]]:
    """put/force/delete/update change and ``change(cs, mapping)``, on typed values."""
    ops = []
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["put", "force", "delete", "update", "change"]))
        name = draw(st.sampled_from(CAST))
        ops.append((op, name, draw(TYPED[KINDS[name]])))
    return ops


@props(300)
@given(data=data_values(), ops=operations())
def test_change_operations_keep_the_changes_the_model_keeps(
    data: dict[str, Any], ops: list[tuple[str, str, Any]]
) -> None:
    cs = c.change(Person(**data))
    model = Model(data)
    for op, name, value in ops:
        match op:
            case "put":
                cs = c.put_change(cs, name, value)
                model.put(name, value)
            case "force":
                cs = c.force_change(cs, name, value)
                model.changes[name] = value
            case "delete":
                cs = c.delete_change(cs, name)
                model.changes.pop(name, None)
            case "change":
                cs = c.change(cs, {name: value})
                model.put(name, value)
            case _:
                fn = _UPDATES[KINDS[name]]
                if name not in model.changes:
                    assert c.update_change(cs, name, fn) is cs  # no change: nothing to update
                    continue
                if model.changes[name] is None:
                    continue  # the update functions take a value
                cs = c.update_change(cs, name, fn)
                model.put(name, fn(model.changes[name]))
        assert_matches(cs, model)
