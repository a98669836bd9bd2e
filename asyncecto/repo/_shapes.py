"""Result readers: a planned select's reader tree becomes one function per result shape.

A plain struct of the ``from`` source uses the fast struct loader; other shapes
(tuples, dicts, values, joined structs) go through a reader compiled from the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from asyncecto.errors import ArgumentError
from asyncecto.query._plan import ReadShape, ReadStruct, ReadValue
from asyncecto.schema import Meta, schema_info
from asyncecto.schema._struct import copy_struct

from ._loader import Loader, build_loader

__all__ = ("build_result_loader",)

Read = Callable[[tuple[Any, ...]], Any]


def build_result_loader(reader: Any) -> Loader:
    """A loader turning rows into the select's results."""
    if isinstance(reader, ReadStruct) and not reader.nullable:
        return build_loader(
            reader.schema,
            reader.fields,
            Meta("loaded", reader.table, reader.prefix, context=schema_info(reader.schema).context),
        )
    read, _width = _compile(reader, 0)

    def load(rows: Sequence[Any]) -> list[Any]:
        return [read(tuple(r)) for r in rows]

    return load


def _compile(reader: Any, start: int) -> tuple[Read, int]:
    if isinstance(reader, ReadStruct):
        width = len(reader.fields)
        end = start + width
        one = build_loader(
            reader.schema,
            reader.fields,
            Meta("loaded", reader.table, reader.prefix, context=schema_info(reader.schema).context),
        )
        nullable = reader.nullable

        def read_struct(row: tuple[Any, ...]) -> Any:
            values = row[start:end]
            if nullable and all(v is None for v in values):
                return None
            return one([values])[0]

        return read_struct, width
    if isinstance(reader, ReadValue):
        typ = reader.type
        if typ is None or getattr(typ, "load_is_identity", False):
            return (lambda row: row[start]), 1
        load = typ.load

        def read_value(row: tuple[Any, ...]) -> Any:
            v = row[start]
            return None if v is None else load(v)

        return read_value, 1
    assert isinstance(reader, ReadShape)
    parts: list[Read] = []
    pos = start
    for item in reader.items:
        fn, width = _compile(item, pos)
        parts.append(fn)
        pos += width
    if reader.kind == "merge":
        base, extra = parts
        extra_keys = reader.items[1].keys
        left_reader = reader.items[0]
        where = f"the {left_reader.table!r} struct" if isinstance(left_reader, ReadStruct) else "the selected value"

        def read_merge(row: tuple[Any, ...]) -> Any:
            left = base(row)
            if left is None:  # Ecto raises the same ArgumentError for a nil left side
                raise ArgumentError(
                    f"cannot merge because the left side is not a map, got: None (select_merge into {where}, "
                    "an outer-joined source that matched nothing in this row); select it next to the values "
                    "instead, e.g. select(lambda a, b: (b, {...}))"
                )
            values = extra(row)
            if isinstance(left, dict):
                return {**left, **values}
            merged = copy_struct(left)
            for k in extra_keys:
                object.__setattr__(merged, k, values[k])
            return merged

        return read_merge, pos - start
    if reader.kind == "dict":
        keys = reader.keys
        return (lambda row: {k: fn(row) for k, fn in zip(keys, parts, strict=True)}), pos - start
    if reader.kind == "list":
        return (lambda row: [fn(row) for fn in parts]), pos - start
    return (lambda row: tuple(fn(row) for fn in parts)), pos - start
