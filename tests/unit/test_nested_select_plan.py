"""Field lists in select, without a database: parsing and checking ``select([... {"assoc": [...]}])``,
``struct``/``map_``, what the planner selects, how a query shows, and which fields the preloader reads
at each level (the keys it adds)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncecto import Repo
from asyncecto.errors import QueryError
from asyncecto.query import from_, join, map_, preload, select, select_merge, struct, subquery
from asyncecto.query._ast import SelectFields, Shape, SourceRef, Take
from asyncecto.repo._preload_take import child_fields, joined_select, narrow, root_take, to_maps
from asyncecto.schema import schema_info

from ..assoc_schemas import Comment, Post, User

REPO = Repo("postgres://localhost/x")


def sql(q: Any) -> str:
    return REPO.to_sql(q)[0]


def test_a_dict_entry_is_a_nested_field_list() -> None:
    q = from_(Post) | select(["id", "title", {"comments": ["id", "text", {"author": ["name"]}]}])
    assert q.select == SelectFields(
        0, ("id", "title"), (("comments", Take(("id", "text"), (("author", Take(("name",))),))),)
    )
    assert (
        q.select
        == (
            from_(Post)
            | select(lambda p: struct(p, ["id", "title", {"comments": ["id", "text", {"author": ["name"]}]}]))
        ).select
    )


def test_map_is_the_same_list_as_a_dict() -> None:
    q = from_(Post) | select(lambda p: map_(p, ["id", {"comments": ["text"]}]))
    assert q.select == SelectFields(0, ("id",), (("comments", Take(("text",))),), as_map=True)


def test_repeated_names_and_entries_merge_in_order() -> None:
    q = from_(Post) | select(["id", "title", "id", {"comments": ["text"]}, {"comments": ["id", "text"]}])
    assert q.select == SelectFields(0, ("id", "title"), (("comments", Take(("text", "id"))),))


def test_how_a_query_shows() -> None:
    q = from_(Post) | select(["id", {"comments": ["text", {"author": ["name"]}]}]) | preload({"comments": "author"})
    assert repr(q) == (
        "Query<from_(Post) | select(['id', {'comments': ['text', {'author': ['name']}]}]) "
        "| preload({'comments': 'author'})>"
    )
    m = from_(Post) | select(lambda p: map_(p, ["id"]))
    assert repr(m) == "Query<from_(Post) | select(lambda: map_(b0, ['id']))>"


def test_the_planner_selects_the_listed_fields_of_the_parent() -> None:
    q = from_(Post) | select(["title", {"comments": ["text"]}]) | preload("comments")
    assert sql(q) == 'SELECT b0."title" FROM "bl_posts" AS b0'
    assert (
        sql(from_(Post) | select(lambda p: map_(p, ["id", "title"])))
        == 'SELECT b0."id", b0."title" FROM "bl_posts" AS b0'
    )


def test_map_of_a_schemaless_source_is_a_dict_of_its_columns() -> None:
    q = from_("bl_posts") | select(lambda p: map_(p, ["id", "title"]))
    assert isinstance(q.select, Shape) and q.select.kind == "dict" and q.select.keys == ("id", "title")
    with pytest.raises(QueryError, match=r"struct\(b0, \['id'\]\) needs a schema source; b0 is schemaless: use map_"):
        from_("bl_posts") | select(lambda p: struct(p, ["id"]))


def test_not_preloaded_raises_at_planning_with_the_fix() -> None:
    q = from_(Post) | select(["id", {"comments": ["text"]}])
    with pytest.raises(QueryError, match=r"does not preload; fix: add preload\('comments'\)"):
        sql(q)
    deep = from_(Post) | select(["id", {"comments": ["text", {"post": ["id"]}]}]) | preload("comments")
    with pytest.raises(QueryError, match=r"association 'post' of Comment.*preload\(\{'comments': 'post'\}\)"):
        sql(deep)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            ["id", {"comments": ["nope"]}],
            r"field 'nope' does not exist in schema Comment; fields are: id, text, approved",
        ),
        (["nope"], r"field 'nope' does not exist in schema Post.*fix: drop 'nope'"),
        (["id", {"remarks": ["x"]}], r"schema Post has no association 'remarks' for a nested field list"),
        (["comments"], r"'comments' is an association of Post, not a field: give the fields to load as"),
        (["id", {"comments": []}], r"a field list for Comment must be a non-empty list"),
        (["id", {"comments": "text"}], r"a field list for Comment must be a non-empty list"),
        ([{"comments": ["text"]}], r"a field list for Post names no field of Post itself"),
        (["id", {"commenters": ["name"]}], r"goes through comments -> author; a field list cannot be given for it"),
    ],
)
def test_bad_field_lists_raise_naming_schema_and_fix(fields: list[Any], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        from_(Post) | select(fields)


def test_struct_and_map_take_a_binding_and_nest_only_on_the_from_source() -> None:
    with pytest.raises(QueryError, match=r"takes a binding of the query"):
        struct("p", ["id"])  # type: ignore[arg-type]
    joined = from_(Post) | join("inner", lambda p: p.comments)
    with pytest.raises(QueryError, match=r"nested field lists apply to the from source's preloads"):
        joined | select(lambda p, c: struct(c, ["id", {"author": ["name"]}]))
    q = joined | select(lambda p, c: (p.id, map_(c, ["text"])))
    assert (
        sql(q)
        == 'SELECT b0."id", b1."text" FROM "bl_posts" AS b0 INNER JOIN "bl_comments" AS b1 ON (b1."post_id" = b0."id")'
    )


# -- the preloader's side: the fields read at each level -------------------------------------


def test_the_parent_reads_the_owner_keys_of_its_preloads() -> None:
    q = from_(Post) | select(["title", {"comments": ["text"]}]) | preload("comments", "author", "commenters")
    root = root_take(q, Post, q.preloads, joined=False)
    assert root is not None
    assert root.loaded == ("title", "id", "author_id")  # has_many and through: id; belongs_to: author_id
    assert {n.name: n.take for n in root.nodes} == {"comments": ("text",), "author": None, "commenters": None}
    # join preloads also tell parents apart by their primary key
    joined = root_take(q, Post, q.preloads, joined=True)
    assert joined is not None and joined.loaded[:2] == ("title", "id")


def test_no_field_list_means_no_root_take() -> None:
    q = from_(Post) | preload("comments")
    assert root_take(q, Post, q.preloads, joined=False) is None


def test_a_child_reads_its_related_key_and_its_own_owner_keys() -> None:
    q = from_(Post) | select(["id", {"comments": ["text", {"author": ["name"]}]}]) | preload({"comments": "author"})
    root = root_take(q, Post, q.preloads, joined=False)
    assert root is not None
    [comments] = root.nodes
    a = schema_info(Post).associations["comments"]
    assert child_fields(a, comments) == ("text", "post_id", "author_id")
    [author] = comments.children
    assert child_fields(schema_info(Comment).associations["author"], author) == ("name", "id")
    tags = schema_info(Post).associations["tags"]  # many_to_many: the key comes from the join table
    assert child_fields(tags, attrs_take(comments, ("name",))) == ("name",)


def attrs_take(node: Any, fields: tuple[str, ...]) -> Any:
    import attrs

    return attrs.evolve(node, take=fields, children=())


def test_narrow_keeps_a_merge_and_a_key_pair() -> None:
    fields = ("id", "name")
    assert narrow(None, fields) == SelectFields(0, fields)
    merged = Shape("merge", (SourceRef(0), Shape("dict", (), ())))
    assert narrow(merged, fields) == Shape("merge", (SelectFields(0, fields), Shape("dict", (), ())))
    pair = Shape("tuple", (SourceRef(1), SourceRef(0)))
    assert narrow(pair, fields) == Shape("tuple", (SourceRef(1), SelectFields(0, fields)))


def test_a_joined_binding_reads_its_fields_and_primary_key() -> None:
    q = (
        from_(Post)
        | join("inner", lambda p: p.comments)
        | select(["title", {"comments": ["text"]}])
        | preload(lambda p, c: {"comments": c})
    )
    root = root_take(q, Post, q.preloads, joined=True)
    assert root is not None
    assert joined_select(1, Post, root.nodes) == SelectFields(1, ("text", "id"))
    plain = from_(Post) | join("inner", lambda p: p.comments) | preload(lambda p, c: {"comments": c})
    assert joined_select(1, Post, plain.preloads) == SourceRef(1)


def test_to_maps_shows_only_the_listed_fields_and_merged_values() -> None:
    q = (
        from_(Post)
        | select(lambda p: map_(p, ["title", {"comments": ["text"]}]))
        | select_merge(lambda p: {"visits": p.visits})
        | preload("comments", "author")
    )
    root = root_take(q, Post, q.preloads, joined=False)
    assert root is not None
    ann = User(id=1, name="ann")
    post = Post(id=1, title="t", visits=3, comments=[Comment(id=9, text="x", post_id=1)], author=ann)
    assert root.paired and root.select() == Shape("tuple", (SelectFields(0, ("title", "id", "author_id")), root.extra))
    assert to_maps([post], root, [{"visits": 3, "title": "T"}]) == [
        {"title": "T", "visits": 3, "comments": [{"text": "x"}], "author": ann}
    ]
    assert to_maps([post], root) == [{"title": "t", "comments": [{"text": "x"}], "author": ann}]


# -- property: any nesting of field lists parses to the ordered union at each level ----------

POST_FIELDS = ("id", "title", "visits", "author_id")
COMMENT_FIELDS = ("id", "text", "approved", "post_id", "author_id")


@settings(max_examples=60, derandomize=True, database=None)
@given(
    post=st.lists(st.sampled_from(POST_FIELDS), min_size=1, max_size=6),
    chunks=st.lists(st.lists(st.sampled_from(COMMENT_FIELDS), min_size=1, max_size=4), max_size=3),
)
def test_field_lists_parse_to_the_ordered_union(post: list[str], chunks: list[list[str]]) -> None:
    fields: list[Any] = [*post, *({"comments": c} for c in chunks)]
    q = from_(Post) | select(fields) | preload("comments")
    assert isinstance(q.select, SelectFields)
    assert q.select.fields == tuple(dict.fromkeys(post))
    if chunks:
        assert q.select.assocs == (("comments", Take(tuple(dict.fromkeys(f for c in chunks for f in c)))),)
    else:
        assert q.select.assocs == ()
    # the query shows as it can be written again
    again = eval(repr(q)[len("Query<") : -1], {"from_": from_, "select": select, "preload": preload, "Post": Post})
    assert again.select == q.select


def test_map_in_a_subquery_exposes_its_keys_as_a_dict_select_does() -> None:
    inner = from_(Post) | select(lambda p: map_(p, ["id", "title"]))
    as_dict = from_(Post) | select(lambda p: {"id": p.id, "title": p.title})
    outer = from_(subquery(inner)) | select(lambda s: s.title)
    assert sql(outer) == sql(from_(subquery(as_dict)) | select(lambda s: s.title))
    with pytest.raises(QueryError, match="visits"):
        sql(from_(subquery(inner)) | select(lambda s: s.visits))
