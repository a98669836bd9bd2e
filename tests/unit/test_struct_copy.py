"""Copying structs (``copy_struct``, which ``replace``, ``put_meta`` and every write use) and what a
schema works out once (``SchemaInfo``'s tuples, the write path's plan).

The copy is a function generated per schema; on every draw it must give a new struct of the same
class holding the very same object in every slot (fields, associations, the meta), whatever the values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from asyncecto import belongs_to, embedded_schema, embeds_many, field, has_many, meta, put_meta, replace, schema
from asyncecto.repo._write_plan import write_plan
from asyncecto.schema import SchemaInfo, schema_info
from asyncecto.schema._struct import copy_struct

from ..props.settings import props


@embedded_schema
class CopyLine:
    text: str | None = None
    qty: int | None = None


@schema("copy_owners")
class CopyOwner:
    id: int | None = None
    name: str | None = None


@schema("copy_items")
class CopyItem:
    id: int | None = None
    order_id: int | None = None


@schema("copy_orders", timestamps=True)
class CopyOrder:
    id: int | None = None
    title: str | None = None
    total: float | None = 0.0
    tags: list[str] | None = field(default_factory=list)
    note: str | None = field(virtual=True)
    code: str | None = field(source="order_code", writable="insert")
    secret: str | None = field(writable="never")
    lines: list[CopyLine] = embeds_many(CopyLine)
    owner: CopyOwner | None = belongs_to(CopyOwner)
    items: list[Any] = has_many("CopyItem", foreign_key="order_id")
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


values = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
lines = st.lists(st.builds(CopyLine, text=st.one_of(st.none(), st.text(max_size=3)), qty=st.integers()), max_size=2)
orders = st.builds(
    CopyOrder,
    id=st.one_of(st.none(), st.integers()),
    title=st.one_of(st.none(), st.text(max_size=8)),
    total=st.one_of(st.none(), st.floats(allow_nan=False)),
    tags=st.lists(st.text(max_size=3), max_size=3),
    note=values,
    code=st.one_of(st.none(), st.text(max_size=4)),
    lines=lines,
)
metas = st.fixed_dictionaries(
    {},
    optional={
        "state": st.sampled_from(["built", "loaded", "deleted"]),
        "prefix": st.sampled_from([None, "archive", "tenant_1"]),
        "context": st.one_of(st.none(), st.integers(), st.dictionaries(st.text(max_size=2), st.integers())),
    },
)


def _same_slots(copy: Any, original: Any, info: SchemaInfo) -> None:
    assert copy is not original and type(copy) is type(original)
    for name in info.slots:
        assert getattr(copy, name) is getattr(original, name), name


@props(60)
@given(orders, metas, st.one_of(st.none(), st.builds(CopyOwner, id=st.integers(), name=st.text(max_size=3))))
def test_a_copied_struct_holds_the_same_object_in_every_slot_and_keeps_its_meta(
    order: CopyOrder, meta_changes: dict[str, Any], owner: CopyOwner | None
) -> None:
    if meta_changes:
        order = put_meta(order, **meta_changes)
    if owner is not None:
        order = replace(order, owner=owner)
    info = schema_info(CopyOrder)
    copy = copy_struct(order)
    _same_slots(copy, order, info)
    assert copy == order
    assert meta(copy) is meta(order)
    assert copy_struct(order, info) == order  # with the info given: the same copier


@props(40)
@given(orders, st.text(max_size=8), values)
def test_replace_changes_only_the_given_fields(order: CopyOrder, title: str, note: Any) -> None:
    changed = replace(order, title=title, note=note)
    assert (changed.title, changed.note) == (title, note)
    assert meta(changed) is meta(order)
    for name in schema_info(CopyOrder).slots:
        if name not in ("title", "note"):
            assert getattr(changed, name) is getattr(order, name), name


def test_an_embedded_struct_copies_without_a_meta() -> None:
    line = CopyLine(text="a", qty=2)
    copy = copy_struct(line)
    assert copy == line and copy is not line
    assert schema_info(CopyLine).slots == ("id", "text", "qty")


def test_the_schema_tuples_are_worked_out_once_and_match_the_fields() -> None:
    info = schema_info(CopyOrder)
    assert info.persisted is info.persisted and info.slots is info.slots
    assert [f.name for f in info.persisted] == [n for n, f in info.fields.items() if not f.virtual]
    assert "note" not in [f.name for f in info.persisted]
    assert info.non_insertable == ("secret",)
    assert info.non_updatable == ("code", "secret")
    assert info.slots[-1] == "__meta__" and {"owner", "items"} <= set(info.slots)
    assert info.query_fields == tuple(f.name for f in info.persisted)
    assert info.read_after_writes == ()
    assert info == info and "_memo" not in repr(info)


def test_the_write_plan_holds_what_each_write_needs() -> None:
    info = schema_info(CopyOrder)
    plan = write_plan(info)
    assert write_plan(info) is plan
    assert plan.insert_names == (
        "id",
        "title",
        "total",
        "tags",
        "code",
        "lines",
        "owner_id",
        "inserted_at",
        "updated_at",
    )
    order = CopyOrder(title="t", code="c", lines=[CopyLine(text="x")])
    assert plan.insert_values(order) == tuple(getattr(order, n) for n in plan.insert_names)
    assert plan.timestamps == ("inserted_at", "updated_at")
    assert plan.column("code") == "order_code" and plan.column("title") == "title"
    assert plan.virtual == {"note"} and "note" not in plan.persisted and "lines" in plan.persisted
    assert (plan.embeds, plan.associations, plan.autogenerates) == (True, True, False)
    assert not plan.dependents
    owner_plan = write_plan(schema_info(CopyOwner))
    assert owner_plan.insert_values(CopyOwner(id=1, name="n")) == (1, "n")
    assert (owner_plan.embeds, owner_plan.associations, owner_plan.virtual) == (False, False, frozenset())
