"""Associations declared inside embedded schemas, without a database: the declaration and its
foreign key field, JSON dump/load, NotLoaded inside embeds, preload specs naming embeds, and the
changeset rules (cast of the key, put_assoc of a loaded struct, what is refused)."""

from __future__ import annotations

import pickle
import uuid
from typing import TYPE_CHECKING, Any
from typing import cast as cast_any

import pytest

from asyncecto import (
    assoc_loaded,
    belongs_to,
    build_assoc,
    embedded_dump,
    embedded_load,
    embedded_schema,
    embeds_many,
    embeds_one,
    field,
    has_many,
    put_meta,
    schema,
)
from asyncecto import types as t
from asyncecto.changeset import (
    apply_changes,
    cast,
    cast_assoc,
    change,
    get_assoc,
    put_assoc,
    put_change,
    put_embed,
)
from asyncecto.errors import ArgumentError, AssociationNotLoadedError, QueryError, SchemaError
from asyncecto.query import from_, join, preload
from asyncecto.schema import schema_info


@schema("eu_products")
class Product:
    id: int | None = None
    name: str | None = None


@schema("eu_vendors", primary_key=("id", t.BinaryId))
class Vendor:
    name: str | None = None
    if TYPE_CHECKING:  # added by primary_key=; declared here for type checkers only
        id: uuid.UUID | None = None


@schema("eu_notes")
class Note:
    id: int | None = None
    body: str | None = None
    line_item_id: uuid.UUID | None = None


@embedded_schema
class LineItem:
    quantity: int | None = None
    product: Product | None = belongs_to(Product)
    vendor: Vendor | None = belongs_to(Vendor, on_replace="nilify")
    notes: list[Note] = has_many(Note)
    if TYPE_CHECKING:  # added by @embedded_schema and belongs_to; declared here for type checkers only
        id: uuid.UUID | None = None
        product_id: int | None = None
        vendor_id: uuid.UUID | None = None


@schema("eu_orders")
class Order:
    id: int | None = None
    item: LineItem | None = embeds_one(LineItem)
    items: list[LineItem] = embeds_many(LineItem)


def loaded(struct: Any) -> Any:
    return put_meta(struct, state="loaded")


# -- declaration -----------------------------------------------------------------------------------


def test_belongs_to_defines_the_key_typed_as_the_targets_primary_key() -> None:
    info = schema_info(LineItem)
    assert list(info.fields) == ["id", "quantity", "product_id", "vendor_id"]
    assert isinstance(info.fields["product_id"].type, t.Id)
    assert isinstance(info.fields["vendor_id"].type, t.BinaryId)
    assert list(info.associations) == ["product", "vendor", "notes"]
    a = info.associations["product"]
    assert (a.kind, a.owner_key, a.related_key, a.related) == ("belongs_to", "product_id", "id", Product)
    notes = info.associations["notes"]
    assert (notes.owner_key, notes.related_key) == ("id", "line_item_id")


def test_foreign_key_type_type_and_a_declared_key() -> None:
    @embedded_schema(foreign_key_type=t.String())
    class Tagged:
        product: Product | None = belongs_to(Product)
        vendor: Vendor | None = belongs_to(Vendor, type=t.UUID())

    @embedded_schema(primary_key=False)
    class Declared:
        maker_ref: int | None = field(source="mref")
        maker: Product | None = belongs_to(Product, foreign_key="maker_ref", define_field=False)

    info = schema_info(Tagged)
    assert isinstance(info.fields["product_id"].type, t.String)
    assert isinstance(info.fields["vendor_id"].type, t.UUID)
    assert schema_info(Declared).associations["maker"].owner_key == "maker_ref"
    assert embedded_dump(Declared(maker_ref=3), "json") == {"mref": 3}


def test_errors_name_the_schema_the_association_and_the_fix() -> None:
    with pytest.raises(SchemaError, match=r"schema .*NoKey, association 'product': the foreign key field 'pid'"):

        @embedded_schema
        class NoKey:
            product: Product | None = belongs_to(Product, foreign_key="pid", define_field=False)

    with pytest.raises(SchemaError, match=r"association 'notes'.*owner has no single primary key; give references="):

        @embedded_schema(primary_key=False)
        class Keyless:
            notes: list[Note] = has_many(Note)

    @embedded_schema
    class PointsAtEmbed:
        other: Any = belongs_to(LineItem)

    with pytest.raises(SchemaError, match=r"refers to the embedded schema LineItem; use embeds_one/embeds_many"):
        _ = schema_info(PointsAtEmbed).associations["other"].related


# -- structs, JSON ---------------------------------------------------------------------------------


def test_a_new_embed_holds_not_loaded_and_using_it_raises_naming_the_embed_fix() -> None:
    item = LineItem(product_id=1)
    assert not assoc_loaded(item.product) and not assoc_loaded(item.notes)
    with pytest.raises(AssociationNotLoadedError) as info:
        _ = cast_any(Any, item.product).name
    err = info.value
    assert (err.schema, err.association, err.embedded) == ("LineItem", "product", True)
    assert "embedded schema LineItem" in str(err) and "repo.preload(parent, {'<embed field>': 'product'})" in str(err)
    with pytest.raises(AssociationNotLoadedError):
        len(item.notes)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.embedded
    # associations are not compared, and are shown
    assert LineItem(quantity=1, product=Product(name="x")) == LineItem(quantity=1)
    assert "product=NotLoaded<association 'product' is not loaded>" in repr(item)


def test_json_dump_and_load_keep_the_key_and_leave_associations_out() -> None:
    vid = uuid.uuid4()
    item = LineItem(id=uuid.uuid4(), quantity=2, product_id=7, vendor_id=vid, product=Product(id=7, name="p"))
    dumped = embedded_dump(item, "json")
    assert dumped == {"id": str(item.id), "quantity": 2, "product_id": 7, "vendor_id": str(vid)}
    back = embedded_load(LineItem, dumped, "json")
    assert back.product_id == 7 and back.vendor_id == vid and not assoc_loaded(back.product)
    typ = schema_info(Order).fields["items"].type
    cast_back = typ.cast([{"product_id": "7", "vendor_id": str(vid)}])
    assert cast_back[0].product_id == 7 and cast_back[0].vendor_id == vid
    assert typ.dump([item]) == [{"id": item.id, "quantity": 2, "product_id": 7, "vendor_id": vid}]


# -- preload specs naming embeds ------------------------------------------------------------------


def test_preload_specs_through_embeds_are_normalized() -> None:
    q = from_(Order) | preload({"items": ["product", {"notes": []}]}, {"item": "vendor"})
    assert [(n.name, [c.name for c in n.children]) for n in q.preloads] == [
        ("items", ["product", "notes"]),
        ("item", ["vendor"]),
    ]
    kw = from_(Order, preload=[{"items": "product"}])
    assert [n.name for n in kw.preloads] == ["items"]


def test_preload_spec_errors() -> None:
    with pytest.raises(QueryError, match=r"cannot preload embedded field 'item' of Order without also preloading"):
        from_(Order) | preload("item")
    with pytest.raises(QueryError, match=r"cannot preload embedded field 'items'"):
        from_(Order) | preload({"items": []})
    with pytest.raises(QueryError, match=r"schema LineItem has no association 'maker'"):
        from_(Order) | preload({"items": "maker"})
    with pytest.raises(QueryError, match=r"cannot preload embed 'items' of Order with a query"):
        from_(Order) | preload({"items": (from_(Product), "product")})
    with pytest.raises(QueryError, match=r"cannot preload embed 'items' of Order with a query"):
        from_(Order) | preload({"items": lambda ids: []})
    with pytest.raises(QueryError):
        from_(Order) | join("inner", Product, on=lambda o, p: p.id == o.id) | preload(lambda o, p: {"items": p})


# -- changesets -----------------------------------------------------------------------------------


def test_cast_the_foreign_key_and_refuse_the_association_in_cast() -> None:
    cs = cast(LineItem(), {"product_id": "5", "quantity": "2"}, ["product_id", "quantity"])
    assert cs.changes == {"product_id": 5, "quantity": 2}
    with pytest.raises(ArgumentError, match=r"unknown field 'product' given to cast.*association"):
        cast(LineItem(), {"product": {"name": "x"}}, ["product"])


def test_put_assoc_of_a_loaded_struct_sets_the_key_and_the_association() -> None:
    pen = loaded(Product(id=5, name="pen"))
    cs = change(LineItem()) | put_assoc("product", pen)
    assert cs.changes["product_id"] == 5 and cs.valid
    item = apply_changes(cs)
    assert item.product_id == 5 and item.product is pen
    assert get_assoc(cs, "product", "struct") is pen
    # change(..., product=...) and put_change on the association follow the same rules
    assert change(LineItem(), product=pen).changes["product_id"] == 5
    assert (change(LineItem()) | put_change("product", pen)).changes["product_id"] == 5
    # None on an embed without a key: nothing to change
    assert change(LineItem()) | put_assoc("product", None) == change(LineItem())


def test_put_assoc_follows_on_replace() -> None:
    pen, ink = loaded(Product(id=5, name="pen")), loaded(Product(id=6, name="ink"))
    with_pen = LineItem(product_id=5, product=pen, vendor_id=None)
    with pytest.raises(ArgumentError, match=r"on_replace option of this relation is set to 'raise'"):
        change(with_pen) | put_assoc("product", ink)
    same = change(with_pen) | put_assoc("product", pen)
    assert same.changes == {}
    acme = loaded(Vendor(id=uuid.uuid4(), name="acme"))
    other = loaded(Vendor(id=uuid.uuid4(), name="other"))
    with_vendor = LineItem(vendor_id=acme.id, vendor=acme)
    swapped = change(with_vendor) | put_assoc("vendor", other)  # on_replace="nilify"
    assert swapped.changes["vendor_id"] == other.id
    cleared = change(with_vendor) | put_assoc("vendor", None)
    assert cleared.changes["vendor_id"] is None and apply_changes(cleared).vendor is None


def test_what_the_repo_would_not_write_is_refused() -> None:
    with pytest.raises(ArgumentError, match=r"(?s)cannot put a new or changed Product.*fix: insert it first"):
        change(LineItem()) | put_assoc("product", Product(name="new"))
    with pytest.raises(ArgumentError, match=r"cannot put a new or changed Product"):
        change(LineItem()) | put_assoc("product", {"name": "new"})
    with pytest.raises(ArgumentError, match=r"cannot put a new or changed Product"):
        change(LineItem()) | put_assoc("product", change(loaded(Product(id=1)), name="renamed"))
    with pytest.raises(ArgumentError, match=r"cast_assoc: association 'product' of the embedded schema LineItem"):
        cast(LineItem(), {"product": {"name": "x"}}, []) | cast_assoc("product")
    with pytest.raises(ArgumentError, match=r"put_assoc: association 'notes' of the embedded schema LineItem is a "):
        change(LineItem()) | put_assoc("notes", [])
    with pytest.raises(ArgumentError, match=r"(?s)fix: write the Note rows with the repo, their 'line_item_id'"):
        cast(LineItem(), {"notes": []}, []) | cast_assoc("notes")
    with pytest.raises(ArgumentError, match=r"(?s)'product' of LineItem that was not loaded.*through its par"):
        change(LineItem(product_id=3)) | put_assoc("product", loaded(Product(id=4)))


def test_put_embed_with_a_mapping_naming_the_association_and_build_assoc() -> None:
    pen = loaded(Product(id=3, name="pen"))
    cs = change(Order()) | put_embed("items", [{"quantity": 1, "product": pen}])
    assert cs.changes["items"][0].changes["product_id"] == 3
    (item,) = apply_changes(cs).items
    assert item.product_id == 3 and item.product is pen
    embed = LineItem(id=uuid.uuid4())
    note = build_assoc(embed, "notes", {"body": "x"})
    assert note.line_item_id == embed.id and note.body == "x"
    assert build_assoc(embed, "product") == Product()
