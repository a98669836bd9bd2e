"""UUIDs, JSON maps, arrays (nested, with NULLs), enums, the custom type and embedded structs."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from . import numbers, temporal
from .schemas import Color, Emb, Status
from .text import VARCHAR_N, json_text, text_of

__all__ = ("colors", "embeds", "flat_arrays", "grids", "json_maps", "sizes", "statuses", "tag_arrays", "uuids")


def uuids() -> st.SearchStrategy[Any]:
    """Any UUID, the nil and the all-ones one drawn often."""
    import uuid

    return st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]) | st.uuids()


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | numbers.json_floats()
        | json_text()
        | st.text(max_size=0)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text(), inner, max_size=4),
        max_leaves=16,
    )


def json_maps() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects: nested objects and lists, unicode keys, big integers, floats, NULLs."""
    return st.dictionaries(json_text(), _json_values(), max_size=5)


def flat_arrays() -> st.SearchStrategy[list[int | None]]:
    """``integer[]`` values: empty, NULLs among the elements, the int4 limits."""
    return st.lists(st.none() | numbers.integers(numbers.INT4), max_size=8)


def grids() -> st.SearchStrategy[list[list[int | None]]]:
    """Two-dimensional ``integer[]`` values: PostgreSQL's arrays are rectangular, so every row has
    the same length (at least one; ``[[]]`` is an empty array to PostgreSQL); NULL elements anywhere."""
    cell = st.none() | numbers.integers(numbers.INT4)

    def rectangle(shape: tuple[int, int]) -> st.SearchStrategy[list[list[int | None]]]:
        rows, cols = shape
        return st.lists(st.lists(cell, min_size=cols, max_size=cols), min_size=rows, max_size=rows)

    return st.just([]) | st.tuples(st.integers(1, 4), st.integers(1, 4)).flatmap(rectangle)


def tag_arrays() -> st.SearchStrategy[list[str | None]]:
    """``varchar(n)[]`` values: strings up to the column's width and NULLs."""
    return st.lists(st.none() | text_of(VARCHAR_N), max_size=5)


def statuses() -> st.SearchStrategy[Status]:
    return st.sampled_from(Status)


def sizes() -> st.SearchStrategy[str]:
    """Values of ``Enum({"small": 1, "large": 2})`` (stored as integers)."""
    return st.sampled_from(["small", "large"])


def colors() -> st.SearchStrategy[Color]:
    """The custom type's values."""
    byte = st.integers(0, 255)
    return st.builds(Color, byte, byte, byte)


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


def embeds() -> st.SearchStrategy[Emb]:
    """Embedded structs with a given id (loaded == original, ids included) and every field's edges."""
    return st.builds(
        Emb,
        id=st.uuids(),
        s=_maybe(text_of(300)),
        i=_maybe(numbers.integers(numbers.INT8)),
        f=_maybe(numbers.floats(finite=True)),
        dec=_maybe(numbers.decimals()),
        b=_maybe(st.booleans()),
        d=_maybe(temporal.dates()),
        tm=_maybe(temporal.times(usec=False)),
        tmu=_maybe(temporal.times(usec=True)),
        nd=_maybe(temporal.naive(usec=False)),
        ndu=_maybe(temporal.naive(usec=True)),
        ud=_maybe(temporal.aware(usec=False)),
        udu=_maybe(temporal.aware(usec=True)),
        u=_maybe(uuids()),
        dur=_maybe(temporal.durations()),
        m=_maybe(json_maps()),
        ints=_maybe(flat_arrays()),
        status=_maybe(statuses()),
        size=_maybe(sizes()),
        color=_maybe(colors()),
    )
