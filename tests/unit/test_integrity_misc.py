"""Issue 16 (misc), pure parts: validate_length counts graphemes; MultiError maps like its value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto import schema
from asyncecto.changeset import Changeset, change, traverse_errors, validate_length, validate_required
from asyncecto.errors import InvalidChangesetError, MultiError, NoResultsError, StaleEntryError
from asyncecto.integrations import error_response


@schema("people")
class Person:
    id: int | None = None
    name: str | None = None


def errors(cs: Changeset[Any]) -> list[tuple[str, tuple[str, dict[str, Any]]]]:
    return [(f, (m, dict(meta))) for f, (m, meta) in cs.errors]


# -- defect 12: graphemes ------------------------------------------------------------------


def test_validate_length_counts_graphemes_by_default() -> None:
    decomposed = "e\u0301"  # e + COMBINING ACUTE ACCENT: one character on screen
    assert (change(Person(), name=decomposed) | validate_length("name", is_=1)).valid
    assert (change(Person(), name="\U0001f1eb\U0001f1f7") | validate_length("name", is_=1)).valid  # a flag
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one ZWJ emoji sequence
    assert (change(Person(), name=family) | validate_length("name", max=1)).valid
    assert (change(Person(), name="a\r\nb") | validate_length("name", is_=3)).valid  # CR LF is one cluster

    cs = change(Person(), name=decomposed + "x") | validate_length("name", min=3)
    assert errors(cs) == [
        (
            "name",
            (
                "should be at least %{count} character(s)",
                {"count": 3, "validation": "length", "kind": "min", "type": "string"},
            ),
        )
    ]
    assert traverse_errors(cs) == {"name": ["should be at least 3 character(s)"]}
    assert list(cs.validations) == [("name", ("length", {"is": None, "min": 3, "max": None, "count": "graphemes"}))]


def test_validate_length_codepoints_and_bytes_remain() -> None:
    decomposed = "e\u0301"
    cs = change(Person(), name=decomposed) | validate_length("name", is_=1, count="codepoints")
    assert traverse_errors(cs) == {"name": ["should be 1 character(s)"]}
    assert (change(Person(), name=decomposed) | validate_length("name", is_=2, count="codepoints")).valid
    cs = change(Person(), name=decomposed) | validate_length("name", max=2, count="bytes")
    assert traverse_errors(cs) == {"name": ["should be at most 2 byte(s)"]}
    assert errors(cs)[0][1][1]["type"] == "binary"
    assert (change(Person(), name=decomposed) | validate_length("name", is_=3, count="bytes")).valid


_BASES = st.sampled_from([*"aZ09é漢字한글ßжπ!?-", " ", "\u0416", "\u05d0"])
_MARKS = st.lists(st.characters(min_codepoint=0x300, max_codepoint=0x36F), max_size=3).map("".join)
_EMOJI = st.sampled_from(
    [
        "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family
        "\U0001f468\u200d\U0001f4bb",  # technologist
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag
        "\U0001f44d\U0001f3fd",  # thumbs up + skin tone
        "\u2764\ufe0f",  # heart + VS16
        "\U0001f600",
    ]
)
_FLAGS = st.tuples(*[st.integers(0x1F1E6, 0x1F1FF)] * 2).map(lambda p: chr(p[0]) + chr(p[1]))
_CLUSTER = st.one_of(st.builds(str.__add__, _BASES, _MARKS), _EMOJI, _FLAGS)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CLUSTER, max_size=20))
def test_validate_length_grapheme_count_equals_clusters_built(clusters: list[str]) -> None:
    text = "".join(clusters)
    n = len(clusters)
    assert (change(Person(), name=text) | validate_length("name", is_=n)).valid
    cs = change(Person(), name=text) | validate_length("name", is_=n + 1)
    assert errors(cs) == [
        (
            "name",
            (
                "should be %{count} character(s)",
                {"count": n + 1, "validation": "length", "kind": "is", "type": "string"},
            ),
        )
    ]


def test_validate_length_never_raises_on_a_lone_surrogate() -> None:
    for count in ("graphemes", "codepoints", "bytes"):
        cs = change(Person(), name="a\ud800") | validate_length("name", max=1, count=count)
        assert not cs.valid


# -- defect 10: the mapping decision, framework-free -----------------------------------------


def test_multi_error_maps_like_its_value() -> None:
    cs = change(Person(), name=None) | validate_required("name")
    assert error_response(MultiError("p", cs, {})) == (422, {"errors": {"name": ["can't be blank"]}})
    nested = MultiError("p", InvalidChangesetError("insert", cs), {})
    assert error_response(nested) == (422, {"errors": {"name": ["can't be blank"]}})
    assert error_response(MultiError("p", NoResultsError("q"), {})) == (404, {"errors": {"detail": "Not Found"}})
    assert error_response(MultiError("p", StaleEntryError("delete", Person()), {})) == (
        409,
        {"errors": {"detail": "Conflict"}},
    )
    for value in ("out of stock", None, {"why": 1}, LookupError("x")):
        assert error_response(MultiError("p", value, {})) is None, value


@pytest.mark.parametrize("count", ["characters", "grapheme"])
def test_validate_length_refuses_an_unknown_count(count: str) -> None:
    with pytest.raises(ValueError, match="codepoints, graphemes or bytes"):
        change(Person(), name="x") | validate_length("name", max=1, count=count)
