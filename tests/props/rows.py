"""Whole rows of the wide schema: every field drawn (``None`` included) from its family's strategy."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from . import numbers, structured, temporal, text
from .schemas import FIELDS

__all__ = ("CASTABLE_ROW", "PART", "ROW", "field_values", "rows")

#: the partition a row goes to (``props_parted`` is partitioned by LIST on it)
PART = st.sampled_from(["a", "b"])


def field_values(*, finite: bool = False) -> dict[str, st.SearchStrategy[Any]]:
    """Each generated field's strategy of non-``None`` values; ``finite`` leaves out inf and NaN
    (``cast`` refuses them: outside input has no business sending them)."""
    return {
        "s_text": text.strings(),
        "s_var": text.varchar(),
        "i2": numbers.integers(numbers.INT2),
        "i4": numbers.integers(numbers.INT4),
        "i8": numbers.integers(numbers.INT8),
        "f": numbers.floats(finite=finite),
        "dec": numbers.decimals(),
        "dec_ps": numbers.decimals_fixed(12, 4),
        "b": st.booleans(),
        "bin": st.binary(max_size=300),
        "d": temporal.dates(),
        "tm": temporal.times(usec=False),
        "tmu": temporal.times(usec=True),
        "nd": temporal.naive(usec=False),
        "ndu": temporal.naive(usec=True),
        "ud": temporal.aware(usec=False),
        "udu": temporal.aware(usec=True),
        "u": structured.uuids(),
        "dur": temporal.durations(),
        "m": structured.json_maps(),
        "status": structured.statuses(),
        "size": structured.sizes(),
        "color": structured.colors(),
        "ints": structured.flat_arrays(),
        "grid": structured.grids(),
        "tags": structured.tag_arrays(),
        "one": structured.embeds(),
        "many": st.lists(structured.embeds(), max_size=3, unique_by=lambda e: e.id),
    }


def _row(values: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    assert set(values) == set(FIELDS), set(values) ^ set(FIELDS)
    # embeds_many holds a list (never None): its "nothing" is []
    # a value twice as often as None: more of each example reaches the database
    fields = {name: (s if name == "many" else st.one_of(st.none(), s, s)) for name, s in values.items()}
    return st.fixed_dictionaries({"part": PART, **fields})


#: a row of every field, each possibly None
ROW = _row(field_values())
#: a row ``cast`` takes unchanged (finite floats)
CASTABLE_ROW = _row(field_values(finite=True))


def rows(row: st.SearchStrategy[dict[str, Any]] = ROW, max_size: int = 3) -> st.SearchStrategy[list[dict[str, Any]]]:
    """One to ``max_size`` rows."""
    return st.lists(row, min_size=1, max_size=max_size)
