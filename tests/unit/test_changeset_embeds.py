"""cast_embed / put_embed: child changesets, matching by primary key, on_replace, nested errors."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from asyncecto import embedded_schema, embeds_many, embeds_one, schema
from asyncecto.changeset import (
    Changeset,
    apply_changes,
    cast,
    cast_embed,
    change,
    force_change,
    put_change,
    put_embed,
    traverse_errors,
    validate_required,
)
from asyncecto.errors import ArgumentError, SchemaError


@embedded_schema
class Street:
    name: str | None = None


@embedded_schema
class Address:
    city: str | None = None
    street: Street | None = embeds_one(Street)
    if TYPE_CHECKING:  # added by @embedded_schema; declared here for type checkers only
        id: uuid.UUID | None = None

    @staticmethod
    def changeset(address: Any, params: Any) -> Changeset[Any]:
        return cast(address, params, ["city"]) | validate_required("city") | cast_embed("street")


@embedded_schema(primary_key=False)
class Tag:
    label: str | None = None


@schema("people")
class Person:
    name: str | None = None
    address: Address | None = embeds_one(Address)
    home: Address | None = embeds_one(Address, on_replace="update")
    work: Address | None = embeds_one(Address, on_replace="delete")
    old: Address | None = embeds_one(Address, on_replace="mark_as_invalid")
    addresses: list[Address] = embeds_many(Address)
    spare: list[Address] = embeds_many(Address, on_replace="delete")
    tags: list[Tag] = embeds_many(Tag, on_replace="delete")


def casted(person: Person, params: dict[str, Any]) -> Changeset[Person]:
    return cast(person, params, ["name"])


A1 = uuid.UUID(int=1)
A2 = uuid.UUID(int=2)


# -- cast_embed: embeds_one ---------------------------------------------------------------


def test_cast_embed_one_inserts_with_the_schema_changeset_and_nests() -> None:
    cs = cast_embed(casted(Person(), {"address": {"city": "Oslo", "street": {"name": "Main"}}}), "address")
    child = cs.changes["address"]
    assert (child.action, child.changes["city"]) == ("insert", "Oslo")
    assert child.changes["street"].changes == {"name": "Main"}
    assert cs.valid
    person = apply_changes(cs)
    assert person.address == Address(city="Oslo", street=Street(name="Main"))


def test_invalid_child_makes_the_parent_invalid_and_errors_nest() -> None:
    cs = cast_embed(casted(Person(), {"address": {"city": ""}, "addresses": [{"city": "A"}, {}]}), "address")
    cs = cast_embed(cs, "addresses")
    assert cs.valid is False
    assert cs.errors == ()
    assert traverse_errors(cs) == {
        "address": {"city": ["can't be blank"]},
        "addresses": [{}, {"city": ["can't be blank"]}],
    }


def test_cast_embed_requires_a_cast_an_embed_field_and_refuses_cast_of_embeds() -> None:
    with pytest.raises(ArgumentError, match="call cast"):
        cast_embed(Changeset(data=Person()), "address")
    with pytest.raises(ArgumentError, match="embeds_one or embeds_many field, 'name' is a string"):
        cast_embed(casted(Person(), {}), "name")
    with pytest.raises(ArgumentError, match="unknown field 'nope'"):
        cast_embed(casted(Person(), {}), "nope")
    with pytest.raises(ArgumentError, match="use cast_embed"):
        cast(Person(), {"address": {}}, ["address"])


def test_missing_param_with_required_and_invalid_param() -> None:
    assert cast_embed(casted(Person(), {}), "address").changes == {}
    required = cast_embed(casted(Person(), {}), "address", required=True)
    assert required.errors == (("address", ("can't be blank", {"validation": "required"})),)
    bad = cast_embed(casted(Person(), {"address": "Oslo"}), "address")
    assert bad.errors == (("address", ("is invalid", {"validation": "embed", "type": "map"})),)
    many = cast_embed(casted(Person(), {"addresses": {"city": "x"}}), "addresses", invalid_message="bad list")
    assert many.errors == (("addresses", ("bad list", {"validation": "embed", "type": "array(map)"})),)


def test_cast_embed_one_matches_the_current_by_primary_key_and_replaces_per_on_replace() -> None:
    current = Address(id=A1, city="Old")
    person = Person(address=current, home=current, work=current, old=current)

    same = cast_embed(casted(person, {"address": {"id": str(A1), "city": "New"}}), "address")
    assert same.changes["address"].action == "update"
    assert apply_changes(same).address == Address(id=A1, city="New")

    with pytest.raises(ArgumentError, match="on_replace option of this relation is set to 'raise'"):
        cast_embed(casted(person, {"address": {"city": "Other"}}), "address")
    with pytest.raises(ArgumentError, match="on_replace"):
        cast_embed(casted(person, {"address": None}), "address")

    updated = cast_embed(casted(person, {"home": {"city": "Kept id"}}), "home")
    assert apply_changes(updated).home == Address(id=A1, city="Kept id")

    replaced = cast_embed(casted(person, {"work": {"city": "New job"}}), "work")
    assert replaced.changes["work"].action == "insert"
    assert apply_changes(replaced).work == Address(city="New job")
    assert apply_changes(cast_embed(casted(person, {"work": None}), "work")).work is None

    invalid = cast_embed(casted(person, {"old": {"city": "x"}}), "old")
    assert invalid.errors == (("old", ("is invalid", {"validation": "embed", "type": "map"})),)


def test_no_change_when_params_repeat_the_current_values() -> None:
    person = Person(address=Address(id=A1, city="Oslo"))
    cs = cast_embed(casted(person, {"address": {"id": str(A1), "city": "Oslo"}}), "address")
    assert "address" not in cs.changes
    assert cast_embed(casted(Person(), {"address": None}), "address").changes == {}


# -- cast_embed: embeds_many --------------------------------------------------------------


def test_cast_embed_many_updates_matches_inserts_others_and_handles_leftovers() -> None:
    person = Person(
        addresses=[Address(id=A1, city="One"), Address(id=A2, city="Two")],
        spare=[Address(id=A1, city="One"), Address(id=A2, city="Two")],
    )
    params = [{"id": str(A2), "city": "Two!"}, {"id": str(A1), "city": "One"}]
    cs = cast_embed(casted(person, {"addresses": params}), "addresses")
    assert [c.action for c in cs.changes["addresses"]] == ["update", "update"]
    assert apply_changes(cs).addresses == [Address(id=A2, city="Two!"), Address(id=A1, city="One")]

    with pytest.raises(ArgumentError, match="'addresses' of Person"):
        cast_embed(casted(person, {"addresses": [{"city": "new"}]}), "addresses")

    spare = cast_embed(casted(person, {"spare": {"1": {"city": "second"}, "0": {"id": str(A1)}}}), "spare")
    actions = [(c.action, c.data.id) for c in spare.changes["spare"]]
    assert actions == [("replace", A2), ("update", A1), ("insert", None)]
    assert apply_changes(spare).spare == [Address(id=A1, city="One"), Address(city="second")]
    assert traverse_errors(spare) == {}


def test_embeds_without_primary_key_are_replaced_as_a_whole() -> None:
    person = Person(tags=[Tag(label="a")])
    cs = cast_embed(casted(person, {"tags": [{"label": "a"}, {"label": "b"}]}), "tags")
    assert [c.action for c in cs.changes["tags"]] == ["replace", "insert", "insert"]
    assert apply_changes(cs).tags == [Tag(label="a"), Tag(label="b")]
    assert apply_changes(cast_embed(casted(person, {"tags": []}), "tags")).tags == []


def test_custom_with_function() -> None:
    def shout(tag: Any, params: Any) -> Changeset[Any]:
        return cast(tag, {"label": str(params.get("label", "")).upper()}, ["label"])

    cs = cast_embed(casted(Person(), {"tags": [{"label": "x"}]}), "tags", with_=shout)
    assert apply_changes(cs).tags == [Tag(label="X")]
    with pytest.raises(ArgumentError, match="must return a changeset"):
        cast_embed(casted(Person(), {"tags": [{"label": "x"}]}), "tags", with_=lambda s, p: s)


# -- put_embed ------------------------------------------------------------------------------


def test_put_embed_with_structs_mappings_changesets_and_none() -> None:
    cs = put_embed(Changeset(data=Person()), "address", Address(city="Oslo"))
    assert cs.changes["address"].action == "insert"
    assert apply_changes(cs).address == Address(city="Oslo")

    cs = put_embed(Changeset(data=Person()), "address", {"city": "Bergen", "nope": 1})
    assert apply_changes(cs).address == Address(city="Bergen")

    child = cast(Address(), {"city": ""}, ["city"]) | validate_required("city")
    invalid = put_embed(Changeset(data=Person()), "address", child)
    assert invalid.valid is False and traverse_errors(invalid) == {"address": {"city": ["can't be blank"]}}

    current = Address(id=A1, city="Old")
    with pytest.raises(ArgumentError, match="on_replace"):
        put_embed(Changeset(data=Person(address=current)), "address", None)
    assert apply_changes(put_embed(Changeset(data=Person(work=current)), "work", None)).work is None
    same = put_embed(Changeset(data=Person(address=current)), "address", {"id": A1, "city": "New"})
    assert apply_changes(same).address == Address(id=A1, city="New")
    unchanged = put_embed(Changeset(data=Person(address=current)), "address", current)
    assert unchanged.changes == {}


def test_put_embed_update_takes_a_mapping_or_the_current_entry_changed() -> None:
    current = Address(id=A1, city="Old")
    cs = put_embed(Changeset(data=Person(home=current)), "home", {"city": "New"})
    assert apply_changes(cs).home == Address(id=A1, city="New")
    back_to_default = put_embed(Changeset(data=Person(home=current)), "home", {"city": None})
    assert back_to_default.changes["home"].changes == {"city": None}
    same_entry = put_embed(Changeset(data=Person(home=current)), "home", cast(current, {"city": "Newer"}, ["city"]))
    assert apply_changes(same_entry).home == Address(id=A1, city="Newer")
    with pytest.raises(ArgumentError, match="give a mapping of fields"):
        put_embed(Changeset(data=Person(home=current)), "home", Address(city="New"))
    with pytest.raises(ArgumentError, match="give a mapping of fields"):
        put_embed(Changeset(data=Person(home=current)), "home", cast(Address(), {"city": "x"}, ["city"]))


def test_put_embed_many() -> None:
    person = Person(spare=[Address(id=A1, city="One"), Address(id=A2, city="Two")])
    cs = put_embed(Changeset(data=person), "spare", [{"id": A1, "city": "Uno"}, Address(city="Three")])
    assert apply_changes(cs).spare == [Address(id=A1, city="Uno"), Address(city="Three")]
    assert put_embed(Changeset(data=person), "spare", None).errors == (
        ("spare", ("is invalid", {"type": "array(map)"})),
    )
    back_to_default = put_embed(Changeset(data=person), "spare", [{"id": A1, "city": None}, {"id": A2}])
    assert [c.changes for c in back_to_default.changes["spare"]] == [{"city": None}, {}]
    with pytest.raises(ArgumentError, match="expected a Address"):
        put_embed(Changeset(data=person), "spare", [42])


def test_embed_declarations_are_checked() -> None:
    with pytest.raises(SchemaError, match="invalid on_replace 'update' for embeds_many"):
        embeds_many(Address, on_replace="update")
    with pytest.raises(SchemaError, match="expects an @embedded_schema class"):
        embeds_one(Person)


# -- regressions from review ----------------------------------------------------------------


def test_an_invalid_child_without_changes_is_kept_and_invalidates_the_parent() -> None:
    def strict(address: Any, params: Any) -> Changeset[Any]:
        return cast(address, params, ["city"]) | validate_required("city")

    person = Person(spare=[Address(id=A1, city=None)])
    cs = cast_embed(casted(person, {"spare": [{"id": str(A1)}]}), "spare", with_=strict)
    assert cs.valid is False
    assert traverse_errors(cs) == {"spare": [{"city": ["can't be blank"]}]}


def test_change_and_put_change_on_an_embed_follow_put_embed() -> None:
    cs = change(Person(), address={"city": "Oslo", "street": {"name": "Main"}})
    assert apply_changes(cs).address == Address(city="Oslo", street=Street(name="Main"))
    child = cast(Address(), {"city": ""}, ["city"]) | validate_required("city")
    assert put_change(Changeset(data=Person()), "address", child).valid is False
    with pytest.raises(ArgumentError, match="use put_embed"):
        force_change(Changeset(data=Person()), "address", Address())


def test_required_counts_an_emptied_list_as_missing() -> None:
    person = Person(spare=[Address(id=A1, city="One")])
    cs = cast_embed(casted(person, {"spare": []}), "spare", required=True)
    assert ("spare", ("can't be blank", {"validation": "required"})) in cs.errors


def test_with_function_may_ignore_entries() -> None:
    def skip_blank(address: Any, params: Any) -> Changeset[Any]:
        cs = cast(address, params, ["city"])
        return attrs.evolve(cs, action="ignore") if not params.get("city") else cs

    person = Person(spare=[Address(id=A1, city="One")])
    params = {"spare": [{"id": str(A1), "city": ""}, {"city": ""}, {"city": "Two"}]}
    cs = cast_embed(casted(person, params), "spare", with_=skip_blank)
    assert apply_changes(cs).spare == [Address(id=A1, city="One"), Address(city="Two")]
