"""Issue 19 round 3, without a database: a lock fragment with source arguments, excluding only some
named windows."""

from __future__ import annotations

from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import exclude, fragment, from_, join, lock, select, update, where, windows

from ..assoc_schemas import Comment, Post

REPO = Repo("postgresql://nobody@127.0.0.1:1/none")


def sql(q: Any) -> str:
    return REPO.to_sql(q)[0]


def test_lock_fragment_source_arguments_are_table_aliases() -> None:
    q = (
        from_(Post)
        | join("inner", lambda p: p.comments)
        | lock(lambda p, c: fragment("FOR UPDATE OF ?, ? NOWAIT", p, c))
    )
    assert sql(q).endswith(" FOR UPDATE OF b0, b1 NOWAIT")
    assert "lock(lambda: fragment('FOR UPDATE OF ?, ? NOWAIT', b0, b1))" in repr(q)


def test_lock_fragment_without_arguments_is_still_plain_text() -> None:
    assert sql(from_(Post) | lock(fragment("FOR SHARE NOWAIT"))).endswith(" FOR SHARE NOWAIT")
    assert sql(from_(Post) | lock(lambda p: fragment("FOR KEY SHARE"))).endswith(" FOR KEY SHARE")


def test_lock_fragment_arguments_must_be_sources() -> None:
    with pytest.raises(QueryError, match=r"lock fragment's \? arguments must be sources .* no parameters"):
        from_(Post) | lock(lambda p: fragment("FOR UPDATE OF ?", p.id))
    with pytest.raises(QueryError, match="must be sources"):
        lock(fragment("FOR UPDATE OF ?", 1))
    with pytest.raises(QueryError, match="NUL or a ';'"):
        from_(Post) | lock(lambda p: fragment("FOR UPDATE OF ?; DROP TABLE x", p))
    with pytest.raises(QueryError, match=r"expects fn to return a fragment"):
        from_(Post) | lock(lambda p: "FOR UPDATE")


def test_exclude_some_named_windows() -> None:
    q = from_(Post) | windows(a={"partition_by": lambda p: p.id}, b={"order_by": lambda p: p.id})
    kept = q | exclude(("windows", ["a", "missing"]))
    assert [n for n, _ in kept.windows] == ["b"]
    assert 'WINDOW "b" AS (ORDER BY b0."id")' in sql(kept)
    assert (q | exclude(("windows", ["a", "b"]))).windows == ()
    assert [n for n, _ in (q | exclude(("windows", []))).windows] == ["a", "b"]
    both = q | exclude(("windows", ("b",)), "windows")
    assert both.windows == ()


def test_exclude_windows_tuple_is_checked() -> None:
    with pytest.raises(QueryError, match=r"the tuple form is \('windows', names\)"):
        exclude(("windows", "a"))
    with pytest.raises(QueryError, match=r"the tuple form is \('windows', names\)"):
        exclude(("where", ["a"]))
    with pytest.raises(QueryError, match="window names are strings, got 1"):
        exclude(("windows", [1]))  # type: ignore[list-item]
    with pytest.raises(QueryError, match=r"or \('windows', names\)"):
        exclude("nothing")


def test_fragment_columns_name_a_fragment_source() -> None:
    q = from_(fragment("generate_series(1, ?)", 3, columns=["n"])) | select(lambda f: f.n)
    assert sql(q) == 'SELECT f0."n" FROM generate_series(1, $1::integer) AS f0 ("n")'
    assert "fragment('generate_series(1, ?)', 3, columns=['n'])" in repr(q)


def test_fragment_columns_are_checked() -> None:
    with pytest.raises(QueryError, match="expects a list of column names, got the string 'n'"):
        fragment("generate_series(1, 3)", columns="n")
    with pytest.raises(QueryError, match="distinct column names"):
        fragment("x", columns=["a", "a"])
    with pytest.raises(QueryError, match="distinct column names"):
        fragment("x", columns=[])
    with pytest.raises(QueryError, match=r"names the columns of a fragment used as a source .* drop columns="):
        sql(from_(Post) | where(lambda p: fragment("?", p.visits, columns=["v"]) > 1))


def test_fragment_mapped_onto_a_schema() -> None:
    q = from_((fragment("SELECT * FROM bl_posts WHERE visits > ?", 1), Post)) | where(lambda p: p.visits < 100)
    assert sql(q) == (
        'SELECT f0."id", f0."title", f0."visits", f0."author_id" FROM (SELECT * FROM bl_posts WHERE visits > '
        '$1::integer) AS f0 WHERE (f0."visits" < $2)'
    )
    assert repr(q).startswith("Query<from_((fragment('SELECT * FROM bl_posts WHERE visits > ?', 1), Post))")
    with pytest.raises(QueryError, match="field 'nope' does not exist in schema Post"):
        sql(q | where(lambda p: p.nope == 1))


def test_fragment_source_cannot_be_updated_or_deleted() -> None:
    q = from_((fragment("SELECT * FROM bl_posts"), Post))
    with pytest.raises(QueryError, match="delete_all needs a table to change, not a fragment source"):
        REPO.to_sql("delete_all", q)
    with pytest.raises(QueryError, match="update_all needs a table to change"):
        REPO.to_sql("update_all", q | update(set={"visits": 1}))


def test_fragment_mapped_onto_a_schema_as_a_join() -> None:
    q = (
        from_(Post)
        | join(
            "inner", (fragment("SELECT * FROM bl_comments WHERE approved"), Comment), on=lambda p, c: c.post_id == p.id
        )
        | select(lambda p, c: c)
    )
    assert sql(q).startswith('SELECT f1."id", f1."text", f1."approved", f1."post_id", f1."author_id" FROM "bl_posts"')
    assert "INNER JOIN (SELECT * FROM bl_comments WHERE approved) AS f1 ON" in sql(q)
