"""Which child of a batched many_to_many insert broke a constraint, from PostgreSQL's detail."""

from __future__ import annotations

from typing import Any

from asyncecto.changeset import Changeset, cast, unique_constraint
from asyncecto.repo._assoc_rows import _culprit
from asyncecto.schema import schema_info

from ..assoc_schemas import Tag


def tag(name: str, declared: bool = True) -> Changeset[Tag]:
    cs = cast(Tag(), {"name": name}, ["name"])
    return cs | unique_constraint("name", name="bl_tags_name_key") if declared else cs


def culprit(children: list[Changeset[Tag]], detail: str | None) -> int:
    rows: list[dict[str, Any]] = [dict(c.changes) for c in children]
    return _culprit(schema_info(Tag), children, rows, "unique", "bl_tags_name_key", detail)


def test_the_row_named_by_the_unique_detail() -> None:
    children = [tag("a"), tag("b"), tag("c")]
    assert culprit(children, "Key (name)=(b) already exists.") == 1
    assert culprit(children, 'Key ("name")=(c) already exists.') == 2


def test_the_only_child_declaring_the_constraint() -> None:
    assert culprit([tag("a", False), tag("b"), tag("c", False)], None) == 1


def test_an_unreadable_detail_falls_back_to_the_first_declaring_child() -> None:
    assert culprit([tag("a", False), tag("b"), tag("c")], "Failing row contains (1, b).") == 1
    assert culprit([tag("a", False), tag("b", False)], None) == 0


def test_values_with_parentheses_and_commas() -> None:
    children = [tag("x"), tag("f(a, b)")]
    assert culprit(children, "Key (name)=(f(a, b)) already exists.") == 1
