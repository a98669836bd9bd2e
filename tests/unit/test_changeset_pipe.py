"""Changeset functions as pipe steps, and Ecto's merge, traverse_validations, get_assoc/get_embed,
3-arity traverse_errors, cast's trim_values, and cast_assoc/cast_embed sort_param/drop_param."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from asyncecto import belongs_to, embedded_schema, embeds_many, embeds_one, has_many, has_one, put_meta, schema
from asyncecto.changeset import (
    Changeset,
    add_error,
    apply_changes,
    assoc_constraint,
    cast,
    cast_assoc,
    cast_embed,
    change,
    check_constraint,
    delete_change,
    exclusion_constraint,
    force_change,
    foreign_key_constraint,
    get_assoc,
    get_embed,
    merge,
    no_assoc_constraint,
    optimistic_lock,
    prepare_changes,
    put_assoc,
    put_change,
    put_embed,
    reorder_assoc,
    traverse_errors,
    traverse_validations,
    unique_constraint,
    update_change,
    validate_acceptance,
    validate_change,
    validate_confirmation,
    validate_exclusion,
    validate_format,
    validate_inclusion,
    validate_length,
    validate_number,
    validate_required,
    validate_subset,
)
from asyncecto.errors import ArgumentError


@embedded_schema
class PData:
    note: str | None = None


@schema("p_tags")
class PTag:
    id: int | None = None
    name: str | None = None
    ticket_id: int | None = None


@schema("p_tickets")
class PTicket:
    id: int | None = None
    name: str | None = None
    fee: int | None = None
    age: int | None = None
    email: str | None = None
    lock_version: int = 1
    labels: list[str] | None = None
    data: PData | None = embeds_one(PData)
    notes: list[PData] = embeds_many(PData, on_replace="delete")
    comments: list[PComment] = has_many("PComment", foreign_key="ticket_id", on_replace="delete")
    strict: list[PComment] = has_many("PComment", foreign_key="ticket_id")
    tags: list[PTag] = has_many(PTag, foreign_key="ticket_id", on_replace="delete")
    owner: PTag | None = has_one(PTag, foreign_key="ticket_id", on_replace="delete")


@schema("p_comments")
class PComment:
    id: int | None = None
    text: str | None = None
    ticket: PTicket | None = belongs_to(PTicket)
    if TYPE_CHECKING:  # added by belongs_to; declared here for type checkers only
        ticket_id: int | None = None

    @staticmethod
    def changeset(comment: PComment, params: dict[str, Any]) -> Changeset[PComment]:
        return cast(comment, params, ["text"]) | validate_required("text")


def loaded(ticket: PTicket) -> PTicket:
    return put_meta(ticket, state="loaded")


# -- one mechanism: changeset first, or a step for | ------------------------------------------


def test_the_issue_example_pipes_every_step() -> None:
    tags = [PTag(name="a")]
    params = {"fee": "3", "data": {"note": "n"}, "comments": [{"text": "hi"}]}
    cs = (
        cast(PTicket(), params, ["fee"])
        | cast_embed("data")
        | cast_assoc("comments")
        | put_assoc("tags", tags)
        | put_change("age", 31)
        | add_error("name", "is bad")
    )
    assert cs.changes["fee"] == 3 and cs.changes["age"] == 31
    assert cs.changes["data"].changes == {"note": "n"}
    assert [c.changes for c in cs.changes["comments"]] == [{"text": "hi"}]
    assert [c.data.name for c in cs.changes["tags"]] == ["a"]
    assert cs.errors == (("name", ("is bad", {})),) and not cs.valid


_BASE = cast(
    loaded(PTicket(id=1, name="x", fee=1, tags=[])),
    {"name": "Ada", "age": "5", "email": "a@b", "labels": ["a"], "data": {"note": "n"}, "terms": "true"},
    ["name", "age", "email", "labels"],
)


def _tail(cs: Changeset[Any]) -> Changeset[Any]:
    return cs


STEPS: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    ("put_change", put_change, ("age", 31), {}),
    ("force_change", force_change, ("fee", 1), {}),
    ("delete_change", delete_change, ("age",), {}),
    ("update_change", update_change, ("name", str.upper), {}),
    ("add_error", add_error, ("name", "is bad %{n}"), {"n": 1}),
    ("put_embed", put_embed, ("data", {"note": "m"}), {}),
    ("cast_embed", cast_embed, ("data",), {}),
    ("put_assoc", put_assoc, ("tags", [{"name": "t"}]), {}),
    ("validate_required", validate_required, (["name", "fee"],), {}),
    ("validate_format", validate_format, ("email", "@"), {}),
    ("validate_inclusion", validate_inclusion, ("age", [1, 2]), {}),
    ("validate_exclusion", validate_exclusion, ("age", [5]), {}),
    ("validate_subset", validate_subset, ("labels", ["b"]), {}),
    ("validate_length", validate_length, ("name",), {"min": 4}),
    ("validate_number", validate_number, ("age",), {"greater_than": 9}),
    ("validate_confirmation", validate_confirmation, ("email",), {"required": True}),
    ("validate_acceptance", validate_acceptance, ("terms",), {}),
    ("validate_change", validate_change, ("age", lambda f, v: [(f, "no")]), {}),
    ("unique_constraint", unique_constraint, ("email",), {}),
    ("foreign_key_constraint", foreign_key_constraint, ("fee",), {}),
    ("check_constraint", check_constraint, ("fee",), {"name": "fee_positive"}),
    ("exclusion_constraint", exclusion_constraint, ("fee",), {}),
    ("no_assoc_constraint", no_assoc_constraint, ("comments",), {}),
    ("optimistic_lock", optimistic_lock, ("lock_version",), {}),
    ("prepare_changes", prepare_changes, (_tail,), {}),
]


@pytest.mark.parametrize(("name", "fn", "args", "kwargs"), STEPS, ids=[s[0] for s in STEPS])
def test_changeset_first_and_pipe_step_agree(
    name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    direct = fn(_BASE, *args, **kwargs)
    step = fn(*args, **kwargs)
    assert not isinstance(step, Changeset) and callable(step), name
    piped = _BASE | step
    assert isinstance(direct, Changeset) and isinstance(piped, Changeset)
    assert (piped.changes, piped.errors, piped.valid) == (direct.changes, direct.errors, direct.valid)
    assert (piped.constraints, piped.validations, piped.filters) == (
        direct.constraints,
        direct.validations,
        direct.filters,
    )
    assert len(piped.prepare) == len(direct.prepare)


def test_assoc_constraint_and_cast_assoc_as_steps() -> None:
    cs = cast(PComment(), {"text": "t"}, ["text"]) | assoc_constraint("ticket")
    assert [c.field for c in cs.constraints] == ["ticket"]
    post = cast(PTicket(), {"comments": [{"text": ""}]}, []) | cast_assoc("comments", required=True)
    assert traverse_errors(post) == {"comments": [{"text": ["can't be blank"]}]}


def test_pipe_steps_keep_the_changeset_type() -> None:
    cs: Changeset[PTicket] = change(PTicket()) | put_change("age", 3) | update_change("age", lambda a: a + 1)
    ticket: PTicket = apply_changes(cs)
    assert ticket.age == 4


# -- merge --------------------------------------------------------------------------------------


def test_merge_favours_the_second_changeset_and_keeps_both_errors() -> None:
    ticket = PTicket()
    cs1 = cast(ticket, {"name": "a", "age": "1"}, ["name", "age"]) | validate_length("name", min=3)
    cs2 = cast(ticket, {"name": "b"}, ["name"]) | add_error("age", "bad") | unique_constraint("name")
    merged = merge(cs1, cs2)
    assert merged.changes == {"name": "b", "age": 1}
    assert merged.params == {"name": "b", "age": "1"}
    assert [f for f, _ in merged.errors] == ["name", "age"]
    assert not merged.valid
    assert [c.field for c in merged.constraints] == ["name"]
    assert [f for f, _ in merged.validations] == ["name"]
    assert merge(cs1, cs1).errors == cs1.errors  # errors are not doubled


def test_merge_keeps_required_and_prepare_and_a_missing_params() -> None:
    ticket = PTicket()
    cs1 = change(ticket, age=1) | validate_required("age") | prepare_changes(_tail)
    cs2 = change(ticket) | prepare_changes(_tail)
    merged = merge(cs1, cs2)
    assert merged.params is None and merged.required == ("age",) and len(merged.prepare) == 2


def test_merge_refuses_different_data_repos_and_actions() -> None:
    with pytest.raises(ArgumentError, match="different :data when merging changesets"):
        merge(change(PTicket(name="a")), change(PTicket(name="b")))
    ticket = PTicket()
    one = Changeset(data=ticket, action="insert")
    with pytest.raises(ArgumentError, match=r"different actions \('insert' and 'update'\) when merging changesets"):
        merge(one, Changeset(data=ticket, action="update"))
    assert merge(one, Changeset(data=ticket)).action == "insert"
    with pytest.raises(ArgumentError, match="different repos"):
        merge(Changeset(data=ticket, repo="r1"), Changeset(data=ticket, repo="r2"))


# -- traverse_errors / traverse_validations ---------------------------------------------------


def test_traverse_errors_with_three_arguments_gets_the_changeset_and_field() -> None:
    cs = cast(PTicket(), {"comments": [{"text": ""}]}, []) | cast_assoc("comments") | add_error("name", "bad")
    seen: list[tuple[type, str, str]] = []

    def each(child: Changeset[Any], field: str, error: tuple[str, dict[str, Any]]) -> str:
        seen.append((type(child.data), field, error[0]))
        return f"{field}: {error[0]}"

    assert traverse_errors(cs, each) == {"name": ["name: bad"], "comments": [{"text": ["text: can't be blank"]}]}
    assert (PComment, "text", "can't be blank") in seen and (PTicket, "name", "bad") in seen
    assert traverse_errors(cs, lambda msg, keys: msg.upper()) == {
        "name": ["BAD"],
        "comments": [{"text": ["CAN'T BE BLANK"]}],
    }


def test_traverse_validations_like_traverse_errors() -> None:
    params = {"name": "x", "data": {"note": "n"}}
    cs = (
        cast(PTicket(), params, ["name"])
        | validate_length("name", min=1)
        | validate_format("name", "x")
        | cast_embed("data", with_=lambda s, p: cast(s, p, ["note"]) | validate_length("note", max=3))
    )
    assert traverse_validations(cs, lambda v: v[0]) == {"name": ["length", "format"], "data": {"note": ["length"]}}
    three = traverse_validations(cs, lambda c, field, v: (type(c.data).__name__, field, v[0]))
    assert three["data"] == {"note": [("PData", "note", "length")]}
    with pytest.raises(ArgumentError, match="expects a function"):
        traverse_validations(cs, "length")  # type: ignore[arg-type]


# -- get_assoc / get_embed --------------------------------------------------------------------


def test_get_assoc_from_changes_and_from_data() -> None:
    current = put_meta(PComment(id=1, text="a", ticket_id=1), state="loaded")
    ticket = loaded(PTicket(id=1, comments=[current], tags=[]))
    cs = cast(ticket, {"comments": [{"text": "b"}]}, []) | cast_assoc("comments")
    as_changesets = get_assoc(cs, "comments")
    assert [(c.action, c.changes) for c in as_changesets] == [("insert", {"text": "b"})]  # replaced left out
    assert [c.text for c in get_assoc(cs, "comments", "struct")] == ["b"]
    untouched = change(ticket)
    assert [c.data for c in get_assoc(untouched, "comments")] == [current]
    assert get_assoc(untouched, "comments", as_="struct") == [current]
    assert get_assoc(change(PTicket()), "owner") is None and get_assoc(change(PTicket()), "tags") == []


def test_get_assoc_refuses_unknown_relations_bad_as_and_unloaded() -> None:
    with pytest.raises(ArgumentError, match="get_assoc: schema PTicket has no association 'name'"):
        get_assoc(change(PTicket()), "name")
    with pytest.raises(ArgumentError, match='as_="changeset" or as_="struct"'):
        get_assoc(change(PTicket()), "comments", "map")
    with pytest.raises(ArgumentError, match="that was not loaded"):
        get_assoc(change(loaded(PTicket(id=1))), "comments")
    with pytest.raises(ArgumentError, match="get_embed expects an embeds_one or embeds_many field, 'name'"):
        get_embed(change(PTicket()), "name")


def test_get_embed_from_changes_and_from_data() -> None:
    ticket = PTicket(data=PData(note="old"))
    assert get_embed(change(ticket), "data").data == PData(note="old")
    assert get_embed(change(ticket), "data", "struct") == PData(note="old")
    cs = change(PTicket()) | put_embed("data", {"note": "new"})
    assert get_embed(cs, "data").changes == {"note": "new"}
    assert get_embed(cs, "data", "struct").note == "new"


# -- cast: empty values and trim_values ---------------------------------------------------------


def test_cast_whitespace_only_strings_are_empty_but_kept_values_are_not_trimmed() -> None:
    cs = cast(PTicket(name="x"), {"name": "   ", "email": "  a@b "}, ["name", "email"])
    assert cs.changes == {"name": None, "email": "  a@b "}


def test_cast_trim_values_changes_the_emptiness_test() -> None:
    kept = cast(PTicket(), {"name": "  "}, ["name"], trim_values=lambda v: v)
    assert kept.changes == {"name": "  "}
    cs = cast(PTicket(), {"name": "n/a  "}, ["name"], empty_values=["n/a"], trim_values=str.rstrip)
    assert cs.changes == {}
    leading_only = cast(PTicket(), {"name": " n/a "}, ["name"], empty_values=["n/a"])
    assert leading_only.changes == {"name": " n/a "}  # Ecto trims leading whitespace only


def test_cast_refuses_functions_as_empty_values_and_non_callable_trim() -> None:
    with pytest.raises(ArgumentError, match="give trim_values=fn"):
        cast(PTicket(), {"name": ""}, ["name"], empty_values=[str.isspace])
    with pytest.raises(ArgumentError, match="trim_values to be a function"):
        cast(PTicket(), {"name": ""}, ["name"], trim_values="strip")  # type: ignore[call-overload]


# -- sort_param / drop_param / with_ taking the position ---------------------------------------


def _texts(cs: Changeset[Any], name: str = "comments") -> list[tuple[str | None, Any]]:
    return [(c.action, c.changes.get("text", c.data.text)) for c in cs.changes[name]]


def test_sort_param_orders_listed_indexes_first_then_the_rest_by_index() -> None:
    params = {
        "comments": {"0": {"text": "a"}, "1": {"text": "b"}, "2": {"text": "c"}, "10": {"text": "k"}},
        "order": ["2", "0"],
    }
    cs = cast(PTicket(), params, []) | cast_assoc("comments", sort_param="order")
    assert _texts(cs) == [("insert", "c"), ("insert", "a"), ("insert", "b"), ("insert", "k")]


def test_sort_param_unknown_index_is_a_new_empty_entry() -> None:
    cs = cast(PTicket(), {"comments": {"0": {"text": "a"}}, "order": ["0", "7"]}, []) | cast_assoc(
        "comments", sort_param="order", with_=lambda s, p: cast(s, p, ["text"])
    )
    assert [(c.action, c.changes) for c in cs.changes["comments"]] == [("insert", {"text": "a"}), ("insert", {})]
    alone = cast(PTicket(), {"order": ["0"]}, []) | cast_assoc("comments", sort_param="order")
    assert traverse_errors(alone) == {"comments": [{"text": ["can't be blank"]}]}  # the new entry, validated


def test_drop_param_drops_entries_and_current_ones_go_by_on_replace() -> None:
    a = put_meta(PComment(id=1, text="a", ticket_id=1), state="loaded")
    b = put_meta(PComment(id=2, text="b", ticket_id=1), state="loaded")
    ticket = loaded(PTicket(id=1, comments=[a, b], strict=[a]))
    params = {"comments": {"0": {"id": "1", "text": "a"}, "1": {"id": "2", "text": "b2"}}, "drop": ["0"]}
    cs = cast(ticket, params, []) | cast_assoc("comments", drop_param="drop")
    assert [(c.action, c.data.id) for c in cs.changes["comments"]] == [("replace", 1), ("update", 2)]
    assert [c.text for c in apply_changes(cs).comments] == ["b2"]
    with pytest.raises(ArgumentError, match="on_replace option of this relation is set to 'raise'"):
        cast(ticket, {"strict": {"0": {"id": "1"}}, "drop": ["0"]}, []) | cast_assoc("strict", drop_param="drop")


def test_sort_and_drop_together_and_on_a_list_of_params() -> None:
    params = {"comments": [{"text": "a"}, {"text": "b"}, {"text": "c"}], "s": [2, 1, 0], "d": [1]}
    cs = cast(PTicket(), params, []) | cast_assoc("comments", sort_param="s", drop_param="d")
    assert _texts(cs) == [("insert", "c"), ("insert", "a")]
    no_lists = cast(PTicket(), {"comments": [{"text": "a"}], "s": "0"}, []) | cast_assoc("comments", sort_param="s")
    assert _texts(no_lists) == [("insert", "a")]  # as Ecto: only a list of indexes sorts


def test_sort_and_drop_params_work_for_embeds_many() -> None:
    params = {"notes": {"0": {"note": "a"}, "1": {"note": "b"}}, "s": ["1", "0"], "d": []}
    cs = cast(PTicket(), params, []) | cast_embed("notes", sort_param="s", drop_param="d")
    assert [c.changes["note"] for c in cs.changes["notes"]] == ["b", "a"]


def test_sort_and_drop_params_are_refused_for_one_relations() -> None:
    with pytest.raises(ArgumentError, match="sort_param is not supported for 'owner'"):
        cast(PTicket(), {"owner": {}}, []) | cast_assoc("owner", sort_param="s")
    with pytest.raises(ArgumentError, match="drop_param is not supported for 'data'"):
        cast(PTicket(), {"data": {}}, []) | cast_embed("data", drop_param="d")


def test_with_taking_three_arguments_gets_the_position() -> None:
    def with_position(comment: PComment, params: dict[str, Any], position: int | None) -> Changeset[PComment]:
        return cast(comment, params, ["text"]) | put_change("id", None) | add_error("text", f"at {position}")

    params = {"comments": {"0": {"text": "a"}, "1": {"text": "b"}}, "s": ["1", "0"]}
    cs = cast(PTicket(), params, []) | cast_assoc("comments", with_=with_position, sort_param="s")
    assert traverse_errors(cs) == {"comments": [{"text": ["at 0"]}, {"text": ["at 1"]}]}
    assert _texts(cs) == [("insert", "b"), ("insert", "a")]
    one = cast(PTicket(), {"data": {"note": "x"}}, []) | cast_embed(
        "data", with_=lambda s, p, i: cast(s, p, ["note"]) | add_error("note", repr(i))
    )
    assert traverse_errors(one) == {"data": {"note": ["None"]}}


# -- reorder_assoc ---------------------------------------------------------------------------------


def test_reorder_assoc_puts_removals_then_updates_then_inserts() -> None:
    a = put_meta(PComment(id=1, text="a", ticket_id=1), state="loaded")
    b = put_meta(PComment(id=2, text="b", ticket_id=1), state="loaded")
    ticket = loaded(PTicket(id=1, comments=[a, b]))
    params = {"comments": [{"text": "new"}, {"id": 2, "text": "b2"}]}
    cs = cast(ticket, params, []) | cast_assoc("comments") | reorder_assoc("comments")
    assert [(c.action, c.data.id) for c in cs.changes["comments"]] == [("replace", 1), ("update", 2), ("insert", None)]
    backwards = reorder_assoc(cs, "comments", lambda children: children[::-1])
    assert [c.action for c in backwards.changes["comments"]] == ["insert", "update", "replace"]
    untouched = change(ticket)
    assert reorder_assoc(untouched, "comments") is untouched


def test_reorder_assoc_refuses_one_associations_and_foreign_children() -> None:
    with pytest.raises(ArgumentError, match="reorder_assoc expects a many association, 'owner' of PTicket is one"):
        change(PTicket()) | reorder_assoc("owner")
    cs = cast(PTicket(), {"comments": [{"text": "x"}]}, []) | cast_assoc("comments")
    with pytest.raises(ArgumentError, match="must return the same child changesets of 'comments'"):
        reorder_assoc(cs, "comments", lambda children: [change(PComment())])
