"""The preloader's fast paths give what the general ones give.

- a many_to_many's ``(owner key, struct)`` rows: the pair loader and the generic tuple reader
  make equal pairs (same fields, same meta, associations not loaded), and it declines any other shape;
- ``preload`` of association names: the nodes are normalised once per schema and names, a bad
  name is refused on every build, and other specs are normalised each time.
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import types as t
from asyncecto.errors import QueryError
from asyncecto.query import from_, preload
from asyncecto.query._plan import ReadShape, ReadStruct, ReadValue
from asyncecto.repo._preload import _pair_loader
from asyncecto.repo._shapes import build_result_loader
from asyncecto.schema import meta
from asyncecto.schema._associations import NotLoaded

from ..assoc_schemas import Post, Tag


def _reader(key_type: Any = None, nullable: bool = False) -> ReadShape:
    return ReadShape("tuple", (ReadValue(key_type), ReadStruct(Tag, ("id", "name"), "bl_tags", "p1", nullable)))


def test_the_pair_loader_makes_the_generic_readers_pairs() -> None:
    rows = [(7, 1, "a"), (7, 2, "b"), (8, 1, "a"), (9, 3, None)]
    fast = _pair_loader(_reader())
    assert fast is not None
    got, want = fast(rows), build_result_loader(_reader())(rows)
    assert (
        [(k, s.id, s.name) for k, s in got]
        == [(k, s.id, s.name) for k, s in want]
        == [
            (7, 1, "a"),
            (7, 2, "b"),
            (8, 1, "a"),
            (9, 3, None),
        ]
    )
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert type(a) is Tag and meta(a) == meta(b) and meta(a).prefix == "p1" and meta(a).state == "loaded"
        assert isinstance(getattr(a, "posts"), NotLoaded)  # noqa: B009  (typed as a list)
    assert got[0][1] is not got[2][1]  # one struct per row, as the generic reader
    assert fast([]) == []


def test_the_pair_loader_declines_other_shapes() -> None:
    assert _pair_loader(_reader(nullable=True)) is None
    assert _pair_loader(ReadStruct(Tag, ("id", "name"), "bl_tags", None, False)) is None
    assert _pair_loader(ReadShape("list", _reader().items)) is None
    assert _pair_loader(_reader(key_type=t.UUID())) is None  # a key whose load is not itself
    assert _pair_loader(_reader(key_type=t.Integer())) is not None


def test_names_are_normalised_once_per_schema_and_names() -> None:
    one, two = from_(Post) | preload("comments", "tags"), from_(Post) | preload("comments", "tags")
    assert one.preloads is two.preloads
    assert [n.name for n in one.preloads] == ["comments", "tags"]
    other = from_(Post) | preload("tags", "comments")
    assert [n.name for n in other.preloads] == ["tags", "comments"]
    nested = from_(Post) | preload({"comments": "post"})
    assert nested.preloads is not (from_(Post) | preload({"comments": "post"})).preloads
    assert [n.name for n in nested.preloads[0].children] == ["post"]
    merged = from_(Post) | preload("comments") | preload("tags", "comments")
    assert [n.name for n in merged.preloads] == ["comments", "tags"]


def test_a_bad_name_is_refused_on_every_build() -> None:
    for _ in range(2):
        with pytest.raises(QueryError, match="no association 'nope'"):
            from_(Post) | preload("nope")
