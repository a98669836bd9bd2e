"""Constraint declarations and matching, without a database: names, kinds, default messages."""

from __future__ import annotations

import re

import pytest

from asyncecto import schema
from asyncecto.changeset import (
    Changeset,
    assoc_constraint,
    change,
    check_constraint,
    exclusion_constraint,
    foreign_key_constraint,
    no_assoc_constraint,
    unique_constraint,
)
from asyncecto.changeset._constraint_errors import match_constraint


@schema("posts")
class Post:
    id: int | None = None
    title: str | None = None
    slug: str | None = None
    author_id: int | None = None


def declared() -> Changeset[Post]:
    return (
        change(Post())
        | unique_constraint(["title", "slug"])
        | foreign_key_constraint("author_id")
        | assoc_constraint("author")
        | check_constraint("title", name="title_not_empty")
        | exclusion_constraint("slug")
        | no_assoc_constraint("comments", name="comments_post_id_fkey")
    )


@pytest.mark.parametrize(
    ("kind", "name", "field", "message", "constraint"),
    [
        ("unique", "posts_title_slug_index", "title", "has already been taken", "unique"),
        ("foreign_key", "posts_author_id_fkey", "author_id", "does not exist", "foreign"),
        ("check", "title_not_empty", "title", "is invalid", "check"),
        ("exclusion", "posts_slug_exclusion", "slug", "violates an exclusion constraint", "exclusion"),
        ("foreign_key", "comments_post_id_fkey", "comments", "are still associated with this entry", "no_assoc"),
    ],
)
def test_default_names_and_messages(kind: str, name: str, field: str, message: str, constraint: str) -> None:
    matched = match_constraint(declared(), kind, name)
    assert matched is not None and matched.valid is False
    assert matched.errors[0] == (field, (message, {"constraint": constraint, "constraint_name": name}))


def test_the_first_declared_match_wins_and_other_kinds_or_names_do_not_match() -> None:
    cs = declared()
    assert match_constraint(cs, "unique", "posts_title_index") is None
    assert match_constraint(cs, "check", "posts_title_slug_index") is None
    fk = match_constraint(cs, "foreign_key", "posts_author_id_fkey")
    assert fk is not None and fk.errors[0][0] == "author_id"  # foreign_key_constraint came first


def test_suffix_prefix_and_regex_matching() -> None:
    cs = (
        change(Post())
        | unique_constraint("title", name="_title_key", match="suffix")
        | unique_constraint("slug", name="tenant_", match="prefix")
        | check_constraint("title", name=re.compile(r"posts_.*_check"))
    )
    assert match_constraint(cs, "unique", "posts_title_key") is not None
    assert match_constraint(cs, "unique", "tenant_posts_slug") is not None
    assert match_constraint(cs, "check", "posts_any_check") is not None
    assert match_constraint(cs, "check", "posts_any_check_x") is not None  # a search, as Regex.match? in Ecto
    assert match_constraint(cs, "check", "users_any_check") is None
