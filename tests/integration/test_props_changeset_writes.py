"""Issue 18, changesets meet the database as properties: what ``repo.insert``/``repo.update`` send for a
changeset follows from the reference model (:mod:`tests.props.changesets`).

An invalid changeset sends no SQL at all (telemetry sees nothing, the row count and the row stay);
a valid one writes exactly its changes: an insert stores the struct with its changes, an update
sets exactly the changed columns (and sends nothing when there are none).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given

from asyncecto import Repo
from asyncecto import changeset as c
from asyncecto.errors import InvalidChangesetError

from ..props.changesets import CAST, DDL, Model, Person, Validation, cast_inputs, data_values, validations
from ..props.settings import props
from ..props.writes import Sent

#: what the table stores for a field the insert leaves out (``None`` and not a change)
DB_DEFAULTS = {"name": None, "nick": "anon", "age": None, "score": 0, "active": None}


@pytest.fixture
async def people(repo: Repo) -> None:
    for statement in DDL:
        await repo.query(statement)


@pytest.fixture
def sent(repo: Repo) -> Iterator[Sent]:
    s = Sent(repo)
    yield s
    repo.telemetry.detach(s.name)


def _changeset(
    data: Any, inputs: tuple[dict[str, Any], dict[str, Any], list[str]], steps: list[Validation]
) -> tuple[c.Changeset[Any], Model]:
    _data, params, permitted = inputs
    cs = c.cast(data, params, permitted)
    model = Model({name: getattr(data, name) for name in CAST})
    model.cast(params, permitted)
    for v in steps:
        cs = cs | v.step()
        model.validate(v)
    assert cs.valid is model.valid and cs.changes == model.changes
    return cs, model


def _row(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in CAST}


def _writes(sql: list[str]) -> list[str]:
    """The statements that write a row (the sandbox's own savepoints left out)."""
    return [s for s in sql if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


@props(100)
@given(inputs=cast_inputs(), steps=validations())
async def test_insert_writes_a_valid_changeset_and_sends_nothing_for_an_invalid_one(
    repo: Repo,
    people: None,
    sent: Sent,
    inputs: tuple[dict[str, Any], dict[str, Any], list[str]],
    steps: list[Validation],
) -> None:
    cs, model = _changeset(Person(), inputs, steps)
    before = await repo.aggregate(Person, "count")
    await sent.take()
    if not model.valid:
        with pytest.raises(InvalidChangesetError) as info:
            await repo.insert(cs)
        assert info.value.changeset.action == "insert"
        assert await sent.take() == []
        assert await repo.aggregate(Person, "count") == before
        return
    inserted = await repo.insert(cs)
    assert len(_writes(await sent.take())) == 1
    expected = {
        name: model.changes[name]
        if name in model.changes
        else model.data[name]
        if model.data[name] is not None
        else DB_DEFAULTS[name]
        for name in CAST
    }
    assert _row(await repo.get(Person, inserted.id)) == expected
    assert await repo.aggregate(Person, "count") == before + 1


@props(100)
@given(data=data_values(), inputs=cast_inputs(), steps=validations())
async def test_update_sets_exactly_the_changes_and_sends_nothing_without_any(
    repo: Repo,
    people: None,
    sent: Sent,
    data: dict[str, Any],
    inputs: tuple[dict[str, Any], dict[str, Any], list[str]],
    steps: list[Validation],
) -> None:
    stored = await repo.insert(c.change(Person(), data))
    loaded = await repo.get(Person, stored.id)
    assert loaded is not None
    cs, model = _changeset(loaded, inputs, steps)
    await sent.take()
    if not model.valid:
        with pytest.raises(InvalidChangesetError):
            await repo.update(cs)
        assert await sent.take() == []
    else:
        updated = await repo.update(cs)
        writes = _writes(await sent.take())
        if not model.changes:
            assert writes == []
        else:
            assert len(writes) == 1
            set_clause = writes[0].split(" SET ", 1)[1].split(" WHERE ", 1)[0]
            assert sorted(re.findall(r'"(\w+)" = ', set_clause)) == sorted(model.changes), writes[0]
        assert _row(updated) == model.applied()
    reread = await repo.get(Person, stored.id)
    assert _row(reread) == (model.applied() if model.valid else model.data)
