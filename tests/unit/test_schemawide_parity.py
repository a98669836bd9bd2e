"""Schema-wide options (Ecto's module attributes) and struct helpers, without a database:
foreign_key_type=, field_source_mapper=, timestamps_opts=, redact=, embeds_one(defaults_to_struct=),
@embedded_schema(primary_key=False), reset_fields, primary_key(_or_raise), embedded_load/dump."""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from typing import TYPE_CHECKING

import pytest

import asyncecto
from asyncecto import types as t
from asyncecto.changeset import cast
from asyncecto.errors import ArgumentError, NoPrimaryKeyFieldError, NoPrimaryKeyValueError, SchemaError
from asyncecto.schema import (
    NotLoaded,
    Timestamps,
    belongs_to,
    embedded_dump,
    embedded_load,
    embedded_schema,
    embeds_many,
    embeds_one,
    field,
    has_many,
    meta,
    primary_key,
    primary_key_or_raise,
    put_meta,
    reset_fields,
    schema,
    schema_info,
)

# -- foreign_key_type= ------------------------------------------------------------------------


@schema("sw_owners")
class Owner:
    name: str | None = None


def test_foreign_key_type_is_the_default_type_of_belongs_to_keys() -> None:
    @schema("sw_pets", foreign_key_type=t.BinaryId())
    class Pet:
        owner: Owner | None = belongs_to(Owner)
        vet: Owner | None = belongs_to(Owner, type=t.Integer())

    fields = schema_info(Pet).fields
    assert isinstance(fields["owner_id"].type, t.BinaryId)
    assert isinstance(fields["vet_id"].type, t.Integer)  # the association's own type wins


def test_without_foreign_key_type_the_related_key_type_is_used() -> None:
    @schema("sw_pets2")
    class Pet:
        owner: Owner | None = belongs_to(Owner)

    assert isinstance(schema_info(Pet).fields["owner_id"].type, t.Id)


# -- field_source_mapper= ---------------------------------------------------------------------


def test_field_source_mapper_maps_every_field_without_a_source() -> None:
    @schema("sw_mapped", field_source_mapper=str.upper, timestamps=True)
    class Mapped:
        title: str | None = None
        body: str | None = field(source="the_body")
        note: str | None = field(virtual=True)

    fields = schema_info(Mapped).fields
    assert fields["id"].source == "ID"
    assert fields["title"].source == "TITLE"
    assert fields["body"].source == "the_body"  # an explicit source wins
    assert fields["inserted_at"].source == "INSERTED_AT"
    assert fields["note"].source == "note"  # virtual fields have no column


def test_field_source_mapper_must_return_a_column_name() -> None:
    with pytest.raises(SchemaError, match=r"field_source_mapper returned None"):

        @schema("sw_bad_mapper", field_source_mapper=lambda name: None)  # type: ignore[arg-type,return-value]
        class Bad:
            title: str | None = None

    with pytest.raises(SchemaError, match="field_source_mapper must be a function"):
        schema("sw_bad_mapper", field_source_mapper="upper")  # type: ignore[arg-type]


def test_mapped_sources_that_collide_are_refused() -> None:
    with pytest.raises(SchemaError, match="both map to column 'x'"):

        @schema("sw_collide", field_source_mapper=lambda name: "x")
        class Collide:
            a: str | None = None


# -- timestamps_opts= -------------------------------------------------------------------------


def test_timestamps_opts_are_the_defaults_of_timestamps() -> None:
    @schema("sw_ts", timestamps_opts={"type": "utc_datetime_usec", "inserted_at": "created_at"}, timestamps=True)
    class Stamped:
        title: str | None = None

    info = schema_info(Stamped)
    assert info.inserted_at == "created_at" and info.updated_at == "updated_at"
    assert isinstance(info.fields["created_at"].type, t.UtcDatetimeUsec)


def test_timestamps_dict_is_merged_over_timestamps_opts() -> None:
    @schema(
        "sw_ts2",
        timestamps_opts=Timestamps(type="utc_datetime", updated_at="changed_at"),
        timestamps={"inserted_at": "made_at"},
    )
    class Stamped:
        title: str | None = None

    info = schema_info(Stamped)
    assert (info.inserted_at, info.updated_at) == ("made_at", "changed_at")
    assert isinstance(info.fields["made_at"].type, t.UtcDatetime)


def test_timestamps_opts_alone_add_no_timestamps() -> None:
    @schema("sw_ts3", timestamps_opts={"type": "utc_datetime"})
    class Plain:
        title: str | None = None

    assert schema_info(Plain).inserted_at is None and "inserted_at" not in schema_info(Plain).fields


def test_invalid_timestamps_opts_are_refused() -> None:
    with pytest.raises(SchemaError, match="invalid timestamps_opts"):

        @schema("sw_ts4", timestamps_opts={"nope": 1}, timestamps=True)
        class Bad:
            title: str | None = None

    with pytest.raises(SchemaError, match="timestamps_opts must be Timestamps"):

        @schema("sw_ts5", timestamps_opts=3, timestamps=True)  # type: ignore[arg-type]
        class Bad2:
            title: str | None = None


# -- redact= ----------------------------------------------------------------------------------


@schema("sw_secrets", redact=True)
class Secret:
    id: int | None = None
    login: str | None = None
    hint: str | None = field(redact=False)


def test_schema_redact_hides_every_field_but_the_primary_key() -> None:
    fields = schema_info(Secret).fields
    assert not fields["id"].redact and fields["login"].redact and not fields["hint"].redact
    assert repr(Secret(id=1, login="ada", hint="cat")) == "Secret(id=1, login=**redacted**, hint='cat')"


def test_schema_redact_hides_changes_in_changesets() -> None:
    cs = cast(Secret(), {"login": "ada", "hint": "cat"}, ["login", "hint"])
    shown = repr(cs)
    assert "ada" not in shown and "cat" in shown


def test_schema_redact_must_be_a_bool() -> None:
    with pytest.raises(SchemaError, match="redact must be True or False"):
        schema("sw_secrets2", redact="all")  # type: ignore[arg-type]


# -- embeds -----------------------------------------------------------------------------------


@embedded_schema(primary_key=False)
class Point:
    x: int | None = None
    y: int = 0


@embedded_schema
class Tag:
    name: str | None = None
    at: dt.date | None = None
    if TYPE_CHECKING:  # added by @embedded_schema; declared here for type checkers only
        id: uuid.UUID | None = None


@schema("sw_shapes")
class Shape:
    origin: Point | None = embeds_one(Point, defaults_to_struct=True)
    tip: Point | None = embeds_one(Point)
    tags: list[Tag] = embeds_many(Tag)
    hidden: str | None = field(virtual=True)


def test_embeds_one_defaults_to_struct() -> None:
    s = Shape()
    assert s.origin == Point() and s.tip is None
    assert Shape().origin is not s.origin or Point() == s.origin
    with pytest.raises(SchemaError, match="defaults_to_struct must be True or False"):
        embeds_one(Point, defaults_to_struct="yes")  # type: ignore[arg-type]


def test_embedded_schema_primary_key_false_has_no_key() -> None:
    assert schema_info(Point).primary_key == ()
    assert "id" not in schema_info(Point).fields
    assert schema_info(Tag).primary_key == ("id",)


def test_embedded_dump_and_load_round_trip() -> None:
    tag = Tag(id=uuid.UUID(int=5), name="a", at=dt.date(2024, 1, 2))
    dumped = embedded_dump(Shape(origin=Point(x=1), tags=[tag], hidden="h"), "json")
    assert dumped == {
        "id": None,
        "origin": {"x": 1, "y": 0},
        "tip": None,
        "tags": [{"id": str(uuid.UUID(int=5)), "name": "a", "at": "2024-01-02"}],
    }
    loaded = embedded_load(Shape, dumped, "json")
    assert loaded.origin == Point(x=1, y=0) and loaded.tags == [tag] and loaded.hidden is None
    assert embedded_load(Tag, embedded_dump(tag, "json"), "json") == tag


def test_embedded_load_ignores_unknown_keys_and_keeps_defaults() -> None:
    assert embedded_load(Point, {"x": 3, "zzz": 1}, "json") == Point(x=3, y=0)


def test_embedded_load_and_dump_errors() -> None:
    with pytest.raises(ArgumentError, match=r"cannot load 'nope' as type .* for field 'at' in schema Tag"):
        embedded_load(Tag, {"at": "nope"}, "json")
    with pytest.raises(ArgumentError, match="unsupported format 'xml'"):
        embedded_load(Tag, {}, "xml")
    with pytest.raises(ArgumentError, match="unsupported format 'xml'"):
        embedded_dump(Tag(), "xml")
    with pytest.raises(ArgumentError, match="expects a dict"):
        embedded_load(Tag, [1], "json")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="expects a schema class"):
        embedded_load(dict, {}, "json")
    with pytest.raises(ArgumentError, match="cannot dump 'x' as type"):
        embedded_dump(Point(x="x"), "json")  # type: ignore[arg-type]


# -- struct helpers ---------------------------------------------------------------------------


@schema("sw_posts")
class Post:
    id: int | None = None
    title: str | None = None
    views: int = 0
    labels: list[str] = field(default_factory=list, type=t.Array(t.String()))
    comments: list[Comment] = has_many("Comment")


@schema("sw_comments")
class Comment:
    body: str | None = None
    post: Post | None = belongs_to(Post)


@schema("sw_pairs", primary_key=False)
class Pair:
    a: int | None = field(primary_key=True)
    b: int | None = field(primary_key=True)


@schema("sw_keyless", primary_key=False)
class Keyless:
    a: int | None = None


def test_reset_fields_restores_defaults_and_keeps_meta() -> None:
    p = put_meta(Post(id=1, title="x", views=9, labels=["a"], comments=[]), state="loaded")
    r = reset_fields(p, ["title", "views", "labels", "comments"])
    assert (r.id, r.title, r.views, r.labels) == (1, None, 0, [])
    comments: object = r.comments
    assert isinstance(comments, NotLoaded)
    assert meta(r).state == "loaded"
    assert p.title == "x"  # the original is unchanged
    assert reset_fields(p, []) is p


def test_reset_fields_errors() -> None:
    with pytest.raises(ArgumentError, match="cannot reset unknown field 'nope' on Post"):
        reset_fields(Post(), ["nope"])
    with pytest.raises(ArgumentError, match="expects a list of field names"):
        reset_fields(Post(), "title")
    with pytest.raises(ArgumentError, match="expected a struct, got the class Post"):
        reset_fields(Post, ["title"])


def test_primary_key() -> None:
    assert primary_key(Post(id=3)) == {"id": 3}
    assert primary_key(Post()) == {"id": None}
    assert primary_key(Pair(a=1, b=2)) == {"a": 1, "b": 2}
    assert primary_key(Keyless(a=1)) == {}


def test_primary_key_or_raise() -> None:
    assert primary_key_or_raise(Pair(a=1, b=2)) == {"a": 1, "b": 2}
    with pytest.raises(NoPrimaryKeyValueError, match="missing primary key value 'b'") as info:
        primary_key_or_raise(Pair(a=1))
    assert info.value.field == "b"
    with pytest.raises(NoPrimaryKeyFieldError, match="schema Keyless has no primary key"):
        primary_key_or_raise(Keyless(a=1))


def test_helpers_are_exported_from_the_package() -> None:
    schema_pkg = importlib.import_module("asyncecto.schema")  # the attribute asyncecto.schema is the decorator
    for name in ("reset_fields", "primary_key", "primary_key_or_raise", "embedded_load", "embedded_dump"):
        assert getattr(asyncecto, name) is getattr(schema_pkg, name)
        assert name in asyncecto.__all__ and name in schema_pkg.__all__


# -- context= ---------------------------------------------------------------------------------


@schema("sw_ctx", context={"tenant": "acme"})
class InContext:
    title: str | None = None


def test_schema_context_is_put_in_the_meta() -> None:
    m = meta(InContext())
    assert m.context == {"tenant": "acme"} and schema_info(InContext).context == {"tenant": "acme"}
    assert repr(m) == "Meta<built, 'sw_ctx', context={'tenant': 'acme'}>"
    assert meta(Post()).context is None and schema_info(Point).context is None
    changed = put_meta(InContext(), context="other")
    assert meta(changed).context == "other" and meta(changed).source == "sw_ctx"
    assert meta(put_meta(changed, state="loaded")).context == "other"


def test_embedded_schema_takes_the_schema_wide_options() -> None:
    @embedded_schema(
        field_source_mapper=lambda name: name.replace("_", "-"),
        timestamps_opts={"inserted_at": "made_at", "updated_at": False},
        timestamps=True,
        redact=True,
    )
    class Card:
        card_no: str | None = None
        brand: str | None = field(redact=False)

    info = schema_info(Card)
    assert info.fields["card_no"].source == "card-no" and info.inserted_at == "made_at" and info.updated_at is None
    assert info.fields["card_no"].redact and not info.fields["brand"].redact and not info.fields["id"].redact
    card = Card(card_no="4111", brand="visa")
    assert "4111" not in repr(card)
    dumped = embedded_dump(card, "json")
    assert dumped["card-no"] == "4111" and embedded_load(Card, dumped, "json") == card
    with pytest.raises(SchemaError, match="embedded schema: redact must be True or False"):
        embedded_schema(redact=1)  # type: ignore[arg-type]
