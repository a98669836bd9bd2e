"""cast_assoc / put_assoc as pure values: matching, actions, on_replace, errors (no database)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from asyncecto import belongs_to, field, has_many, has_one, many_to_many, put_meta, schema
from asyncecto.changeset import (
    Changeset,
    apply_changes,
    cast,
    cast_assoc,
    change,
    put_assoc,
    put_change,
    traverse_errors,
    validate_required,
)
from asyncecto.errors import ArgumentError


@schema("u_posts")
class UPost:
    id: int | None = None
    title: str | None = None
    comments: list[UComment] = has_many("UComment", foreign_key="post_id", on_replace="delete")
    strict: list[UComment] = has_many("UComment", foreign_key="post_id")
    marked: list[UComment] = has_many("UComment", foreign_key="post_id", on_replace="mark_as_invalid")
    link: ULink | None = has_one("ULink", foreign_key="post_id", on_replace="update")
    other: ULink | None = has_one("ULink", foreign_key="post_id", on_replace="delete")
    tags: list[UTag] = many_to_many("UTag", join_through="u_posts_tags", on_replace="delete")
    commenters: list[UComment] = has_many(through=["comments", "post"])


@schema("u_comments")
class UComment:
    id: int | None = None
    text: str | None = None
    post: UPost | None = belongs_to(UPost)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        post_id: int | None = None

    @staticmethod
    def changeset(comment: UComment, params: dict[str, Any]) -> Changeset[UComment]:
        return cast(comment, params, ["text"]) | validate_required("text")


@schema("u_links")
class ULink:
    id: int | None = None
    url: str | None = None
    post_id: int | None = None


@schema("u_tags")
class UTag:
    id: int | None = None
    name: str | None = None


_S = TypeVar("_S")


def loaded(struct: _S) -> _S:
    return put_meta(struct, state="loaded")


def post_with(**assocs: Any) -> UPost:
    return loaded(UPost(id=1, title="p", **assocs))


def test_cast_assoc_on_a_built_struct_inserts_with_the_schema_changeset() -> None:
    cs = cast_assoc(cast(UPost(), {"comments": [{"text": "a"}, {"text": ""}]}, []), "comments")
    children = cs.changes["comments"]
    assert [(c.action, c.changes) for c in children] == [("insert", {"text": "a"}), ("insert", {})]
    assert not cs.valid
    assert traverse_errors(cs) == {"comments": [{}, {"text": ["can't be blank"]}]}


def test_cast_assoc_matches_current_entries_by_primary_key() -> None:
    a, b = loaded(UComment(id=1, text="a", post_id=1)), loaded(UComment(id=2, text="b", post_id=1))
    post = post_with(comments=[a, b])
    cs = cast_assoc(cast(post, {"comments": [{"id": "2", "text": "b2"}, {"text": "c"}]}, []), "comments")
    got = [(c.action, c.data.id, dict(c.changes)) for c in cs.changes["comments"]]
    assert got == [("replace", 1, {}), ("update", 2, {"text": "b2"}), ("insert", None, {"text": "c"})]
    assert [c.text for c in apply_changes(cs).comments] == ["b2", "c"]


def test_cast_assoc_without_changes_records_nothing() -> None:
    a = loaded(UComment(id=1, text="a", post_id=1))
    cs = cast_assoc(cast(post_with(comments=[a]), {"comments": [{"id": 1, "text": "a"}]}, []), "comments")
    assert cs.changes == {} and cs.valid


def test_missing_key_leaves_the_association_alone_unless_required() -> None:
    post = post_with(comments=[])
    assert cast_assoc(cast(post, {}, []), "comments").changes == {}
    cs = cast_assoc(cast(post, {}, []), "comments", required=True)
    assert traverse_errors(cs) == {"comments": ["can't be blank"]}
    emptied = cast_assoc(
        cast(post_with(comments=[loaded(UComment(id=1))]), {"comments": []}, []), "comments", required=True
    )
    assert traverse_errors(emptied) == {"comments": ["can't be blank"]}


def test_cast_assoc_needs_a_list_of_mappings() -> None:
    cs = cast_assoc(cast(UPost(), {"comments": "nope"}, []), "comments")
    assert cs.errors == (("comments", ("is invalid", {"validation": "assoc", "type": "array(map)"})),)


def test_on_replace_raise_explains_and_names_the_fix() -> None:
    post = post_with(strict=[loaded(UComment(id=1, text="a"))])
    with pytest.raises(ArgumentError) as info:
        cast_assoc(cast(post, {"strict": []}, []), "strict")
    message = str(info.value)
    assert "relation 'strict' of UPost" in message and "cast_assoc/put_assoc" in message
    assert 'strict: ... = has_many(UComment, on_replace="delete")' in message


def test_on_replace_mark_as_invalid() -> None:
    post = post_with(marked=[loaded(UComment(id=1, text="a"))])
    cs = put_assoc(change(post), "marked", [])
    assert cs.errors == (("marked", ("is invalid", {"type": "array(map)"})),)


def test_has_one_on_replace_update_applies_params_to_the_current_entry() -> None:
    link = loaded(ULink(id=5, url="/a", post_id=1))
    cs = cast_assoc(cast(post_with(link=link), {"link": {"url": "/b"}}, []), "link")
    child = cs.changes["link"]
    assert (child.action, child.data is link, dict(child.changes)) == ("update", True, {"url": "/b"})


def test_has_one_replacement_is_an_insert_and_nil_is_none() -> None:
    current = loaded(ULink(id=5, url="/a", post_id=1))
    post = post_with(other=current)
    cs = put_assoc(change(post), "other", {"url": "/b"})
    assert cs.changes["other"].action == "insert"
    assert put_assoc(change(post), "other", None).changes == {"other": None}
    assert put_assoc(change(post), "other", current).changes == {}


def test_put_assoc_loaded_structs_are_updates_built_ones_inserts() -> None:
    existing = loaded(UTag(id=3, name="x"))
    cs = put_assoc(change(post_with(tags=[])), "tags", [existing, UTag(name="new"), {"name": "m"}])
    assert [c.action for c in cs.changes["tags"]] == ["update", "insert", "insert"]
    with pytest.raises(ArgumentError, match="cannot put a deleted UTag"):
        put_assoc(change(post_with(tags=[])), "tags", [put_meta(UTag(id=4), state="deleted")])


def test_put_assoc_refuses_other_schemas_and_non_lists() -> None:
    with pytest.raises(ArgumentError, match="expected a UTag, a changeset of one or a mapping"):
        put_assoc(change(post_with(tags=[])), "tags", [UComment()])
    assert put_assoc(change(post_with(tags=[])), "tags", "x").errors[0][0] == "tags"


def test_change_and_put_change_on_an_association_are_put_assoc() -> None:
    post = post_with(comments=[])
    via_change = change(post, comments=[UComment(text="a")])
    via_put = put_change(change(post), "comments", [UComment(text="a")])
    for cs in (via_change, via_put):
        assert [(c.action, c.data.text) for c in cs.changes["comments"]] == [("insert", "a")]


def test_unloaded_association_of_a_loaded_struct_is_refused_with_the_fix() -> None:
    with pytest.raises(ArgumentError, match=r"Please preload .*repo.preload\(struct, 'comments'\)"):
        cast_assoc(cast(loaded(UPost(id=1)), {"comments": []}, []), "comments")


def test_unknown_through_and_field_names_are_refused() -> None:
    with pytest.raises(ArgumentError, match="schema UPost has no association 'nope'; associations: comments"):
        put_assoc(change(UPost()), "nope", [])
    with pytest.raises(ArgumentError, match="'title' is a field, use cast/put_change"):
        cast_assoc(cast(UPost(), {}, []), "title")
    with pytest.raises(ArgumentError, match="goes through \\['comments', 'post'\\] and is read-only"):
        put_assoc(change(UPost()), "commenters", [])


def test_cast_with_an_association_name_points_to_cast_assoc() -> None:
    with pytest.raises(ArgumentError, match="cast those with cast_assoc"):
        cast(UPost(), {"comments": []}, ["comments"])


def test_nested_mappings_reach_nested_associations() -> None:
    cs = put_assoc(change(UPost()), "comments", [{"text": "a", "post": {"title": "nested"}}])
    child = cs.changes["comments"][0]
    assert child.changes["post"].action == "insert" and child.changes["post"].changes == {"title": "nested"}


def test_with_must_return_a_changeset() -> None:
    with pytest.raises(ArgumentError, match="with_ function of assoc 'comments' must return a changeset"):
        cast_assoc(cast(UPost(), {"comments": [{}]}, []), "comments", with_=lambda s, p: s)


def test_build_assoc_follows_the_parent_prefix() -> None:
    from asyncecto import build_assoc, meta

    parent = put_meta(UPost(id=9), state="loaded", prefix="tenant_a")
    child = build_assoc(parent, "comments", {"text": "hi"})
    assert (child.post_id, child.text, meta(child).prefix, meta(child).state) == (9, "hi", "tenant_a", "built")
    assert meta(build_assoc(UPost(id=1), "comments")).prefix is None


@schema("u_codes", primary_key=False)
class UCode:
    code: str | None = field(primary_key=True)
    label: str | None = None


@schema("u_catalogs")
class UCatalog:
    id: int | None = None
    codes: list[UCode] = many_to_many(
        UCode, join_through="u_catalogs_codes", join_keys=[("catalog_id", "id"), ("code", "code")]
    )


def test_the_default_with_casts_a_natural_primary_key_but_not_a_generated_one() -> None:
    cs = cast_assoc(cast(UCatalog(), {"codes": [{"code": "eu", "label": "Europe"}]}, []), "codes")
    assert [c.changes for c in cs.changes["codes"]] == [{"code": "eu", "label": "Europe"}]
    posts = cast_assoc(cast(UPost(), {"comments": [{"id": 9, "text": "t"}]}, []), "comments")
    assert [c.changes for c in posts.changes["comments"]] == [{"text": "t"}]
