"""Issue 16 (misc), pure parts: validate_length counts graphemes; MultiError maps like its value."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto import Repo, schema
from asyncecto.changeset import Changeset, change, traverse_errors, validate_length, validate_required
from asyncecto.errors import (
    AsyncEctoError,
    InvalidChangesetError,
    InvalidURLError,
    MultiError,
    NoResultsError,
    StaleEntryError,
)
from asyncecto.integrations import error_response


@schema("people")
class Person:
    id: int | None = None
    name: str | None = None


def errors(cs: Changeset[Any]) -> list[tuple[str, tuple[str, dict[str, Any]]]]:
    return [(f, (m, dict(meta))) for f, (m, meta) in cs.errors]


# -- defect 12: graphemes ------------------------------------------------------------------


def test_defect_12_validate_length_counts_graphemes_by_default() -> None:
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


# -- defect 15: a URL's password never shows, even when the URL cannot be parsed ----------------------

_URL_TEMPLATES = (
    "postgres://u:{pw}@h:5432/db",
    "postgres://u:{pw}@h:bad/db",
    "postgres://u:{pw}@h/db?pool_size=x",
    "postgres://u:{pw}@h/db?nope=1",
    "postgres://u:{pw}@[::1/db",
    "postgres://u:{pw}@h",
    "postgres://u:{pw}@h/a/b",
    "postgres://u:{pw}@h:1:2/db",
    "postgres://h/db?password={pw}&pool_size=x",
    "postgres://h/db?password={pw}",
    "postgres://h/db?pool_size=x&password={pw}",
    "postgresx://u:{pw}@h/db",
    "u:{pw}@h/db",
)
_PASSWORDS = st.text(st.sampled_from(list("abcXYZ019@:/?#&=%[]+ ;!$'\"\\")), min_size=1, max_size=12).map(
    lambda s: "Zq" + s + "Qz"
)


@settings(max_examples=1500, deadline=None)
@given(_PASSWORDS, st.sampled_from(_URL_TEMPLATES), st.booleans())
def test_url_parse_errors_never_show_the_password(password: str, template: str, encode: bool) -> None:
    written = quote(password, safe="") if encode else password
    url = template.format(pw=written)
    try:
        repo = Repo(url)
    except AsyncEctoError as exc:
        shown = [str(exc), repr(exc), getattr(exc, "url", "")]
    else:
        shown = [repr(repo), repr(repo.config), repo.config.masked_url()]
    for text in shown:
        for secret in {password, written, password[:-2], written[2:]}:
            assert secret not in text, (url, text)


def test_an_unparsable_url_with_a_raw_special_character_in_its_password_says_to_percent_encode_it() -> None:
    with pytest.raises(InvalidURLError) as info:
        Repo("postgres://app:se?cr=et@db.example:5432/shop")
    assert info.value.part == "password" and "percent-encode the password" in str(info.value)
    assert info.value.url == "postgres://app:***@db.example:5432/shop"
    assert not any(part in str(info.value) for part in ("se?cr", "cr=et", "'se'", "'et'"))
    # a well-formed URL keeps its precise message
    with pytest.raises(InvalidURLError, match="bad port"):
        Repo("postgres://app:secret@db.example:bad/shop")
