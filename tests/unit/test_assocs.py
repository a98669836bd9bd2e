"""Associations without a database: declarations and their errors, reflection, NotLoaded,
build_assoc, preload spec normalisation, and the queries assoc() and association joins build."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import pytest

from asyncecto import NotLoaded, assoc, assoc_loaded, build_assoc
from asyncecto.adapters.postgres._sql import all_sql
from asyncecto.errors import ArgumentError, AssociationNotLoadedError, QueryError, SchemaError
from asyncecto.query import from_, join, limit, order_by, preload, where
from asyncecto.query._clauses.preload import Preload, merge_preloads, normalize_preloads
from asyncecto.query._expr import Binding
from asyncecto.query._planner import plan
from asyncecto.schema import belongs_to, has_many, has_one, many_to_many, schema, schema_info

from ..assoc_schemas import Comment, Permalink, Post, PostTagLink, Profile, Tag, User


def sql(q: Any) -> str:
    planned, _ = plan(q, "all")
    return all_sql(planned)


# -- declarations and reflection ----------------------------------------------------------------


def test_belongs_to_adds_its_foreign_key_field_after_the_declared_ones() -> None:
    assert list(schema_info(Comment).fields) == ["id", "text", "approved", "post_id", "author_id"]
    assert list(schema_info(Comment).associations) == ["post", "author"]
    a = schema_info(Comment).associations["author"]
    assert (a.kind, a.cardinality, a.owner_key, a.related_key, a.related) == (
        "belongs_to",
        "one",
        "author_id",
        "id",
        User,
    )


def test_has_many_and_has_one_keys_default_to_the_owner_name() -> None:
    comments = schema_info(Post).associations["comments"]
    assert (comments.kind, comments.cardinality, comments.owner_key, comments.related_key) == (
        "has_many",
        "many",
        "id",
        "post_id",
    )
    assert comments.related is Comment and comments.on_delete == "delete_all" and comments.on_replace == "delete"
    profile = schema_info(User).associations["profile"]
    assert (profile.kind, profile.cardinality, profile.related_key) == ("has_one", "one", "user_id")
    posts = schema_info(User).associations["posts"]
    assert posts.related_key == "author_id"  # foreign_key=
    assert repr(posts) == "Association<User.posts: has_many>"


def test_many_to_many_join_keys_and_table() -> None:
    tags = schema_info(Post).associations["tags"]
    assert tags.join_keys == (("post_id", "id"), ("tag_id", "id"))
    assert tags.join_table == "bl_posts_tags" and tags.related_key == "id"
    posts = schema_info(Tag).associations["posts"]
    assert posts.join_through is PostTagLink and posts.join_table == "bl_posts_tags"
    assert posts.join_keys == (("tag_id", "id"), ("post_id", "id"))
    with pytest.raises(ArgumentError, match="association 'comments' is a has_many, not a many_to_many"):
        _ = schema_info(Post).associations["comments"].join_keys


def test_where_and_preload_order_are_normalised() -> None:
    info = schema_info(Post)
    assert info.associations["approved_comments"].where == (("approved", True),)
    assert info.associations["ordered_comments"].preload_order == (("desc", "id"),)

    @schema("u_orders")
    class Ordered:
        items: list[Any] = has_many(Comment, foreign_key="post_id", preload_order=["text", ("asc_nulls_last", "id")])

    assert schema_info(Ordered).associations["items"].preload_order == (("asc", "text"), ("asc_nulls_last", "id"))


def test_through_chains_expand_nested_throughs() -> None:
    commenters = schema_info(Post).associations["commenters"]
    assert [h.name for h in commenters.chain()] == ["comments", "author"]
    assert commenters.related is User and commenters.cardinality == "many"
    assert commenters.owner_key is None and commenters.related_key is None

    @schema("bl_users")
    class Deep:
        posts: list[Post] = has_many(Post, foreign_key="author_id")
        post_commenters: list[User] = has_many(through=["posts", "commenters"])

    chain = schema_info(Deep).associations["post_commenters"].chain()
    assert [(h.owner.__name__, h.name) for h in chain] == [
        ("Deep", "posts"),
        ("Post", "comments"),
        ("Comment", "author"),
    ]


def test_related_schema_by_name_by_function_and_dotted_path() -> None:
    @schema("u_a")
    class ByFunction:
        post: Post | None = belongs_to(lambda: Post)
        tags: list[Tag] = many_to_many("tests.assoc_schemas.Tag", join_through="bl_posts_tags")

    info = schema_info(ByFunction)
    assert info.associations["post"].related is Post and info.associations["tags"].related is Tag


def test_belongs_to_foreign_key_type_and_options() -> None:
    @schema("u_b")
    class Options:
        writer_id: int | None = None
        writer: User | None = belongs_to(User, foreign_key="writer_id", define_field=False)
        post: Post | None = belongs_to(Post, type="string")

    info = schema_info(Options)
    assert info.associations["writer"].owner_key == "writer_id"
    assert info.fields["post_id"].type.name == "string"


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: has_many(through=["posts"]), r"has_many\(through=\['posts'\]\) needs at least two associations"),
        (lambda: has_many(through="posts"), "expects a list of association names"),
        (lambda: has_one(Post, through=["a", "b"]), r"through=...\) is read-only and takes no schema or other options"),
        (lambda: has_many(), r"has_many\(\) needs the related schema"),
        (lambda: many_to_many(Tag, join_through=3), "join_through must be a table name or a schema class, got 3"),
        (lambda: many_to_many(Tag, join_through="t", join_keys=[("a", "id")]), "join_keys must be two"),
    ],
)
def test_bad_declarations_are_refused_when_declared(declare: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        declare()


def _declare(**assoc: Any) -> type:
    namespace: dict[str, Any] = {"__annotations__": {name: "Any" for name in assoc}, **assoc}
    return schema("u_bad")(type("Bad", (), namespace))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (has_many(Comment, on_replace="update"), "invalid on_replace 'update' for has_many; use one of raise"),
        (has_many(Comment, on_delete="cascade"), "invalid on_delete 'cascade' for has_many"),  # type: ignore[arg-type]  # refused on purpose
        (has_many(Comment, where={"approved": ("gt", 1)}), r"where condition 'approved': \('gt', 1\) is not a value"),
        (has_many(Comment, where=["approved"]), "where= must be a dict of field to value"),  # type: ignore[arg-type]  # refused on purpose
        (has_many(Comment, preload_order=[("up", "id")]), r"preload_order items are field names or \('desc', field\)"),
        (belongs_to(Post, define_field=False), "the foreign key field 'things_id' is not defined; declare it"),
    ],
)
def test_bad_options_are_refused_by_schema_naming_the_association(spec: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as info:
        _declare(things=spec)
    assert "schema Bad" in str(info.value)


def test_an_association_needs_an_annotation() -> None:
    with pytest.raises(SchemaError, match="association 'comments' has no annotation"):
        schema("u_c")(type("NoAnnotation", (), {"comments": has_many(Comment)}))


def test_an_unknown_schema_name_fails_on_first_use_naming_it() -> None:
    @schema("u_d")
    class Dangling:
        ghosts: list[Any] = has_many("Ghost")

    with pytest.raises(SchemaError, match="names the schema 'Ghost', which is not defined"):
        _ = schema_info(Dangling).associations["ghosts"].related


def test_a_through_naming_an_unknown_hop_fails_on_use() -> None:
    @schema("u_e")
    class BadThrough:
        posts: list[Post] = has_many(Post, foreign_key="author_id")
        far: list[Any] = has_many(through=["posts", "likes"])

    with pytest.raises(SchemaError, match="goes through 'likes', which is not an association of Post"):
        schema_info(BadThrough).associations["far"].chain()


def test_embedded_schemas_may_declare_associations() -> None:
    """As Ecto: belongs_to inside an embedded schema (issue 19; tests/*/test_embed_assocs.py cover it)."""
    from asyncecto.schema import embedded_schema

    @embedded_schema
    class Inline:
        post: Post | None = belongs_to(Post)

    assert list(schema_info(Inline).associations) == ["post"] and "post_id" in schema_info(Inline).fields


# -- NotLoaded ------------------------------------------------------------------------------------


def test_new_structs_hold_not_loaded() -> None:
    p = Post(title="x")
    assert isinstance(cast(object, p.comments), NotLoaded) and not assoc_loaded(p.comments)
    assert repr(p.author) == "NotLoaded<association 'author' is not loaded>"
    assert cast(NotLoaded, p.comments).cardinality == "many" and cast(NotLoaded, p.author).cardinality == "one"
    assert "comments=NotLoaded<association 'comments' is not loaded>" in repr(p)
    assert assoc_loaded([]) and assoc_loaded(None) and assoc_loaded(Post())


def test_not_loaded_used_as_data_raises_saying_how_to_preload() -> None:
    p = Post(title="x")
    uses: list[Callable[[], object]] = [
        lambda: len(p.comments),
        lambda: iter(p.comments),
        lambda: p.comments[0],
        lambda: 1 in cast(Any, p.comments),
        lambda: bool(p.comments),
        lambda: cast(Any, p.author).name,
    ]
    for use in uses:
        with pytest.raises(AssociationNotLoadedError) as info:
            use()
        assert str(info.value) == (
            f"association {info.value.association!r} of Post is not loaded; preload it first: "
            f"await repo.preload(struct, {info.value.association!r}) or "
            f"from_(Post) | preload({info.value.association!r})"
        )


def test_not_loaded_is_immutable_comparable_and_hashable() -> None:
    a, b = cast(NotLoaded, Post().comments), cast(NotLoaded, Post().comments)
    assert a == b and hash(a) == hash(b) and a != Post().tags
    with pytest.raises(AttributeError, match="immutable"):
        a.field = "x"
    with pytest.raises(AttributeError):
        cast(Any, a).__fspath__  # noqa: B018  (dunder lookups stay AttributeError: copy, pickle, hasattr work)
    assert Post(title="x") == Post(title="x")  # associations are not compared


def test_an_association_can_be_given_to_the_constructor() -> None:
    c = Comment(text="hi")
    p = Post(title="x", comments=[c])
    assert p.comments == [c] and assoc_loaded(p.comments)


# -- build_assoc ------------------------------------------------------------------------------------


def test_build_assoc_sets_the_foreign_key_of_has_many_and_has_one() -> None:
    c = build_assoc(Post(id=7), "comments", {"text": "hi"})
    assert isinstance(c, Comment) and c.post_id == 7 and c.text == "hi"
    link = build_assoc(Post(id=7), "permalink")
    assert isinstance(link, Permalink) and link.post_id == 7
    profile = build_assoc(User(id=3), "profile", {"bio": "b"})
    assert isinstance(profile, Profile) and profile.user_id == 3


def test_build_assoc_attributes_cannot_override_the_foreign_key() -> None:
    c = build_assoc(Post(id=7), "comments", {"post_id": 99})
    assert c.post_id == 7


def test_build_assoc_applies_defaults_then_attributes() -> None:
    @schema("bl_posts")
    class WithDefaults:
        comments: list[Comment] = has_many(Comment, foreign_key="post_id", defaults={"approved": True, "text": "d"})
        if TYPE_CHECKING:  # added by @schema; declared here for type checkers only
            id: int | None = None

    c = build_assoc(WithDefaults(id=1), "comments", {"text": "mine"})
    assert (c.approved, c.text, c.post_id) == (True, "mine", 1)


def test_build_assoc_of_belongs_to_and_many_to_many_sets_no_keys() -> None:
    u = build_assoc(Comment(id=1, author_id=5), "author", {"name": "x"})
    assert isinstance(u, User) and u.id is None and u.name == "x"
    t = build_assoc(Post(id=1), "tags", {"name": "t"})
    assert isinstance(t, Tag) and t.id is None


def test_build_assoc_errors() -> None:
    with pytest.raises(ArgumentError, match=r"goes through \['comments', 'author'\] and is read-only"):
        build_assoc(Post(id=1), "commenters")
    with pytest.raises(ArgumentError, match="schema Post has no association 'nope'; associations: author, comments"):
        build_assoc(Post(id=1), "nope")
    with pytest.raises(ArgumentError, match="expected a struct, got the class Post"):
        build_assoc(Post, "comments")
    with pytest.raises(ArgumentError, match="build_assoc attributes must be a dict of fields"):
        build_assoc(Post(id=1), "comments", [("text", "x")])  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="unknown"):
        build_assoc(Post(id=1), "comments", {"nope": 1})


# -- preload specs -----------------------------------------------------------------------------------


def test_every_preload_shape_normalises_to_a_tree() -> None:
    q = from_(Comment) | where(approved=True)
    assert normalize_preloads("comments", Post) == (Preload("comments"),)
    assert normalize_preloads(["comments", "author"], Post) == (Preload("comments"), Preload("author"))
    assert normalize_preloads({"comments": "author"}, Post) == (Preload("comments", children=(Preload("author"),)),)
    assert normalize_preloads({"comments": q}, Post) == (Preload("comments", q),)
    assert normalize_preloads({"comments": (q, ["author", {"post": "tags"}])}, Post) == (
        Preload("comments", q, children=(Preload("author"), Preload("post", children=(Preload("tags"),)))),
    )
    assert normalize_preloads([], Post) == ()


def test_preloads_of_one_name_merge() -> None:
    q = from_(Comment)
    got = normalize_preloads(["comments", {"comments": "author"}, {"comments": (q, "post")}], Post)
    assert got == (Preload("comments", q, children=(Preload("author"), Preload("post"))),)
    with pytest.raises(QueryError, match="'comments' is preloaded twice with a custom query; give one"):
        merge_preloads([Preload("comments", from_(Comment)), Preload("comments", from_(Comment))])


def test_preload_step_checks_names_when_the_query_is_built() -> None:
    with pytest.raises(
        QueryError,
        match="schema Post has no association 'nope' to preload; associations: author, comments, ordered_comments",
    ):
        from_(Post) | preload("nope")
    with pytest.raises(QueryError, match="schema User has no association 'nope' to preload"):
        from_(Post) | preload({"author": {"posts": "author"}}, {"author": "nope"})
    with pytest.raises(QueryError, match="the query has no schema"):
        from_("bl_posts") | preload("comments")
    with pytest.raises(QueryError, match="preload keys are association names, got 1"):
        normalize_preloads({1: "x"}, Post)
    with pytest.raises(QueryError, match="preload expects association names, lists or dicts of them"):
        normalize_preloads(3, Post)
    with pytest.raises(QueryError, match="schema Tag has no association 'none' to preload; associations: posts"):
        normalize_preloads({"tags": "none"}, Post)


def test_join_preload_bindings_are_only_for_queries_and_must_match() -> None:
    q = from_(Post) | join("left", lambda p: p.comments, as_="c") | join("left", lambda p: p.author, as_="a")
    got = (q | preload(lambda p, *, c, a: {"comments": (c, "author"), "author": a})).preloads
    assert got == (Preload("comments", None, 1, (Preload("author"),)), Preload("author", None, 2))
    with pytest.raises(
        QueryError, match=r"cannot preload 'comments' \(a Comment\) from join binding 2, which reads User"
    ):
        q | preload(lambda *, a: {"comments": a})
    with pytest.raises(QueryError, match="from binding 0, the query's own source"):
        q | preload(lambda p: {"comments": p})
    with pytest.raises(QueryError, match="from a join binding is only possible inside a query"):
        normalize_preloads({"comments": Binding(1, Comment)}, Post)  # what repo.preload would be given


def test_preload_repr_reads_as_the_dsl() -> None:
    q = from_(Post) | preload("comments", {"comments": "author"}, "tags")
    assert repr(q) == "Query<from_(Post) | preload({'comments': 'author'}, 'tags')>"
    j = from_(Post) | join("left", lambda p: p.comments, as_="c") | preload(lambda *, c: {"comments": c})
    assert repr(j).endswith("| preload(lambda: {'comments': b1})>")
    custom = from_(Post) | preload({"comments": from_(Comment) | limit(2)})
    assert repr(custom) == "Query<from_(Post) | preload({'comments': Query<from_(Comment) | limit(2)>})>"


# -- assoc() and joins: the queries built ------------------------------------------------------------


def test_assoc_query_repr_and_sql_for_each_kind() -> None:
    p = Post(id=1, author_id=4)
    assert repr(assoc(p, "comments")) == "Query<from_(Comment) | where(lambda: b0.post_id.in_([1]))>"
    assert repr(assoc(p, "author")) == "Query<from_(User) | where(lambda: b0.id.in_([4]))>"
    assert (
        repr(assoc([p, Post(id=2), p], "permalink"))
        == "Query<from_(Permalink) | where(lambda: b0.post_id.in_([1, 2]))>"
    )
    assert sql(assoc(p, "comments")) == (
        'SELECT b0."id", b0."text", b0."approved", b0."post_id", b0."author_id" '
        'FROM "bl_comments" AS b0 WHERE (b0."post_id" = ANY($1))'
    )
    assert sql(assoc(p, "tags")) == (
        'SELECT b0."id", b0."name" FROM "bl_tags" AS b0 INNER JOIN "bl_posts_tags" AS b1 '
        'ON (b1."tag_id" = b0."id") WHERE (b1."post_id" = ANY($1))'
    )
    assert 'WHERE ((b0."post_id" = ANY($1)) AND (b0."approved" = $2))' in sql(assoc(p, "approved_comments"))


def test_assoc_through_nests_one_subquery_per_hop() -> None:
    q = assoc(User(id=1), "post_comments")
    assert sql(q) == (
        'SELECT b0."id", b0."text", b0."approved", b0."post_id", b0."author_id" FROM "bl_comments" AS b0 '
        'WHERE (b0."post_id" = ANY((SELECT s1b0."id" FROM "bl_posts" AS s1b0 WHERE (s1b0."author_id" = ANY($1)))))'
    )
    assert plan(q, "all")[1] == [[1]]


def test_assoc_with_a_nil_owner_key_matches_nothing() -> None:
    q = assoc(Comment(id=1, author_id=None), "author")
    assert plan(q, "all")[1] == [[]]


def test_assoc_prefix_goes_on_every_table() -> None:
    from asyncecto import put_meta

    u = put_meta(User(id=1), prefix="archive")
    text = sql(assoc(u, "post_comments"))
    assert 'FROM "archive"."bl_comments"' in text and 'FROM "archive"."bl_posts"' in text
    tags = sql(assoc(Post(id=1), "tags", prefix="arch"))
    assert '"arch"."bl_tags"' in tags and '"arch"."bl_posts_tags"' in tags


def test_association_join_sql_for_each_kind() -> None:
    has_many_sql = sql(from_(Post) | join("inner", lambda p: p.comments))
    assert 'INNER JOIN "bl_comments" AS b1 ON (b1."post_id" = b0."id")' in has_many_sql
    belongs = sql(from_(Comment) | join("left", lambda c: c.author))
    assert 'LEFT OUTER JOIN "bl_users" AS b1 ON (b1."id" = b0."author_id")' in belongs
    with_where = sql(from_(Post) | join("inner", lambda p: p.approved_comments))
    assert 'ON ((b1."post_id" = b0."id") AND (b1."approved" = $1))' in with_where
    m2m = sql(from_(Post) | join("inner", lambda p: p.tags))
    assert (
        'INNER JOIN "bl_tags" AS b1 ON EXISTS (SELECT 1 FROM "bl_posts_tags" AS __j0 '
        'WHERE __j0."post_id" = b0."id" AND __j0."tag_id" = b1."id")'
    ) in m2m
    through = sql(from_(Post) | join("inner", lambda p: p.commenters))
    assert (
        'ON EXISTS (SELECT 1 FROM "bl_comments" AS __h0 WHERE __h0."post_id" = b0."id" AND __h0."author_id" = b1."id")'
    ) in through


def test_association_join_repr_and_composition() -> None:
    q = from_(Post) | join("inner", lambda p: p.comments, as_="c") | where(lambda *, c: c.text == "x")
    assert repr(q) == (
        "Query<from_(Post) | join('inner', Comment, on=lambda: b1.post_id == b0.id, as_='c') "
        "| where(lambda: b1.text == 'x')>"
    )
    q2 = q | join("left", lambda p, c: c.author, as_="ca") | order_by(lambda *, ca: ca.name)
    assert 'LEFT OUTER JOIN "bl_users" AS b2 ON (b2."id" = b1."author_id")' in sql(q2)
