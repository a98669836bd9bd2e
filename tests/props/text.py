"""Strings PostgreSQL ``text`` and ``varchar(n)`` hold: any code point but NUL and lone surrogates.

NUL and surrogates are refused before any SQL (issue 16, defect 9); those properties are in
``test_integrity_props_invalid.py``.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ("CHARS", "LONG", "VARCHAR_N", "json_text", "strings", "text_of", "varchar")

#: every character a PostgreSQL text column (UTF-8 database) stores
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")

#: the ``n`` of the ``varchar(n)`` columns: above 255, so no path may cast to ``varchar(255)``
VARCHAR_N = 300

#: strings longer than 255 characters (the ``string`` type's default column width)
LONG = st.text(CHARS, min_size=256, max_size=1200) | st.integers(256, 5000).map(lambda n: "é" * n)


def text_of(max_size: int) -> st.SearchStrategy[str]:
    """Strings of at most ``max_size`` characters, biased to the edges: empty, ASCII, unicode, tricky."""
    tricky = st.sampled_from(["", " ", "NULL", "'", '"', "\\", "{}", "{a,b}", "$1", "'; DROP TABLE x; --", "é", "🦀"])
    return tricky | st.text(CHARS, max_size=min(max_size, 40)) | st.text(CHARS, max_size=max_size)


def strings() -> st.SearchStrategy[str]:
    """Any storable string, for a ``text`` column: short ones and ones over 255 characters."""
    return text_of(255) | LONG


def varchar(n: int = VARCHAR_N) -> st.SearchStrategy[str]:
    """Strings a ``varchar(n)`` column holds (PostgreSQL counts characters), the full width included."""
    full = st.text(CHARS, min_size=n, max_size=n)
    return text_of(n) | full


def json_text(max_size: int = 12) -> st.SearchStrategy[str]:
    """Short strings for JSON keys and values (unicode included)."""
    return st.text(CHARS, max_size=max_size)
