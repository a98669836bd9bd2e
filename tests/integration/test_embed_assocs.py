"""Associations declared inside embedded schemas, against PostgreSQL (Ecto's "preload belongs_to
in embedded_schema", preload.exs): the foreign key lives in the embed's JSON, and a preload
through the embed loads the related rows of every embed of every parent in one query."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any
from typing import cast as cast_any

import anyio
import pytest

from asyncecto import (
    QueryEvent,
    Repo,
    assoc,
    assoc_loaded,
    belongs_to,
    embedded_schema,
    embeds_many,
    embeds_one,
    has_many,
    schema,
)
from asyncecto import types as t
from asyncecto.changeset import cast, cast_assoc, cast_embed, change, put_assoc, put_embed
from asyncecto.errors import ArgumentError, AssociationNotLoadedError, QueryError
from asyncecto.query import from_, order_by, preload

pytestmark = pytest.mark.usefixtures("repo")

DDL = (
    "CREATE TABLE ea_products (id bigserial PRIMARY KEY, name text)",
    "CREATE TABLE ea_vendors (id uuid PRIMARY KEY, name text)",
    "CREATE TABLE ea_notes (id bigserial PRIMARY KEY, body text, line_item_id uuid)",
    "CREATE TABLE ea_orders (id bigserial PRIMARY KEY, label text, item jsonb, items jsonb)",
)


@schema("ea_products")
class Product:
    id: int | None = None
    name: str | None = None


@schema("ea_vendors", primary_key=("id", t.BinaryId))
class Vendor:
    name: str | None = None
    if TYPE_CHECKING:  # added by primary_key=; declared here for type checkers only
        id: uuid.UUID | None = None


@schema("ea_notes")
class Note:
    id: int | None = None
    body: str | None = None
    line_item_id: uuid.UUID | None = None


@embedded_schema
class Color:
    name: str | None = None
    vendor: Vendor | None = belongs_to(Vendor)
    if TYPE_CHECKING:  # added by @embedded_schema and belongs_to; declared here for type checkers only
        id: uuid.UUID | None = None
        vendor_id: uuid.UUID | None = None


@embedded_schema
class LineItem:
    quantity: int | None = None
    product: Product | None = belongs_to(Product, on_replace="nilify")
    vendor: Vendor | None = belongs_to(Vendor)
    color: Color | None = embeds_one(Color)
    notes: list[Note] = has_many(Note)
    if TYPE_CHECKING:  # added by @embedded_schema and belongs_to; declared here for type checkers only
        id: uuid.UUID | None = None
        product_id: int | None = None
        vendor_id: uuid.UUID | None = None


@schema("ea_orders")
class Order:
    id: int | None = None
    label: str | None = None
    item: LineItem | None = embeds_one(LineItem, on_replace="update")
    items: list[LineItem] = embeds_many(LineItem, on_replace="delete")


@pytest.fixture
async def shop(repo: Repo) -> Repo:
    for statement in DDL:
        await repo.query(statement)
    return repo


def record(repo: Repo) -> list[QueryEvent]:
    events: list[QueryEvent] = []
    repo.telemetry.attach(events.append)
    return events


async def selects(repo: Repo, events: list[QueryEvent]) -> list[str]:
    """The SELECTs recorded so far (telemetry delivered first)."""
    await repo.telemetry.flush()
    return [e.sql for e in events if e.sql.lstrip().upper().startswith("SELECT")]


async def products(repo: Repo, *names: str) -> list[Product]:
    return [await repo.insert(Product(name=n)) for n in names]


# -- the foreign key in the JSON -------------------------------------------------------------------


async def test_the_foreign_key_is_stored_in_the_embed_json_and_read_back(shop: Repo) -> None:
    (pen,) = await products(shop, "pen")
    vendor = await shop.insert(Vendor(name="acme"))
    order = await shop.insert(Order(label="o", items=[LineItem(quantity=2, product_id=pen.id, vendor_id=vendor.id)]))
    raw = json.loads((await shop.query("SELECT items::text FROM ea_orders WHERE id = $1", [order.id])).rows[0][0])
    assert raw[0]["product_id"] == pen.id and raw[0]["quantity"] == 2
    assert raw[0]["vendor_id"] == str(vendor.id)  # the target's primary key type: a UUID, as a JSON string
    assert "product" not in raw[0] and "vendor" not in raw[0] and "notes" not in raw[0]
    got = await shop.get(Order, order.id)
    assert got is not None
    (item,) = got.items
    assert item.product_id == pen.id and item.vendor_id == vendor.id and isinstance(item.vendor_id, uuid.UUID)
    assert not assoc_loaded(item.product)
    with pytest.raises(AssociationNotLoadedError, match=r"'product' of the embedded schema LineItem is not loaded"):
        _ = cast_any(Any, item.product).name


# -- preloading through embeds ---------------------------------------------------------------------


async def test_repo_preload_through_embeds_many_and_one_one_query_per_association(shop: Repo) -> None:
    pen, ink, cap = await products(shop, "pen", "ink", "cap")
    o1 = await shop.insert(
        Order(label="a", item=LineItem(product_id=cap.id), items=[LineItem(product_id=pen.id), LineItem()])
    )
    o2 = await shop.insert(Order(label="b", items=[LineItem(product_id=ink.id), LineItem(product_id=pen.id)]))
    o3 = await shop.insert(Order(label="c", item=None, items=[]))
    orders = await shop.all(from_(Order) | order_by("id"))
    events = record(shop)
    a, b, c = await shop.preload(orders, [{"items": "product"}, {"item": "product"}])
    assert len(await selects(shop, events)) == 2  # one for items' products (all orders), one for item's
    assert [i.product.name if i.product else None for i in a.items] == ["pen", None]
    assert [cast_any(Product, i.product).name for i in b.items] == ["ink", "pen"]
    assert a.item is not None and a.item.product is not None and a.item.product.name == "cap"
    assert c.items == [] and c.item is None
    assert [o.id for o in (a, b, c)] == [o1.id, o2.id, o3.id]
    # the caller's structs are left as they were
    assert not assoc_loaded(orders[0].items[0].product) and orders[0].items[0] is not a.items[0]
    # the same product row, one struct per loaded row
    assert a.items[0].product == b.items[1].product


async def test_a_single_struct_none_and_lists_with_none(shop: Repo) -> None:
    (pen,) = await products(shop, "pen")
    order = await shop.insert(Order(label="a", items=[LineItem(product_id=pen.id)]))
    one = await shop.preload(order, {"items": "product"})
    assert one.items[0].product is not None and one.items[0].product.name == "pen"
    nothing: Order | None = None
    assert await shop.preload(nothing, {"items": "product"}) is None
    both: list[Any] = await shop.preload([None, order], {"items": "product"})
    assert both[0] is None and both[1].items[0].product == one.items[0].product
    empty = await shop.preload(await shop.insert(Order(label="e")), {"item": "product"})
    assert empty.item is None


async def test_query_preload_pipe_and_keyword_forms(shop: Repo) -> None:
    pen, ink = await products(shop, "pen", "ink")
    await shop.insert(Order(label="a", item=LineItem(product_id=ink.id), items=[LineItem(product_id=pen.id)]))
    await shop.insert(Order(label="b", items=[LineItem(product_id=ink.id)]))
    events = record(shop)
    piped = await shop.all(from_(Order) | order_by("id") | preload({"items": "product"}, {"item": "product"}))
    assert len(await selects(shop, events)) == 3  # the orders, then one query per association under an embed
    keyword = await shop.all(from_(Order, order_by="id", preload=[{"items": "product", "item": "product"}]))
    for got in (piped, keyword):
        assert [[cast_any(Product, i.product).name for i in o.items] for o in got] == [["pen"], ["ink"]]
        assert got[0].item is not None and got[0].item.product is not None and got[0].item.product.name == "ink"
        assert got[1].item is None


async def test_nested_embed_with_an_association_and_uuid_keys(shop: Repo) -> None:
    (pen,) = await products(shop, "pen")
    red = await shop.insert(Vendor(name="red inc"))
    blue = await shop.insert(Vendor(name="blue ltd"))
    await shop.insert(
        Order(
            label="a",
            items=[
                LineItem(product_id=pen.id, vendor_id=blue.id, color=Color(name="red", vendor_id=red.id)),
                LineItem(color=Color(name="none")),
                LineItem(),
            ],
        )
    )
    events = record(shop)
    (order,) = await shop.all(from_(Order) | preload({"items": ["product", "vendor", {"color": "vendor"}]}))
    assert len(await selects(shop, events)) == 4  # orders, products, vendors of items, vendors of the colors
    first, second, third = order.items
    assert first.product is not None and first.product.name == "pen"
    assert first.vendor is not None and first.vendor.name == "blue ltd"
    assert first.color is not None and first.color.vendor is not None and first.color.vendor.name == "red inc"
    assert second.color is not None and second.color.vendor is None and second.vendor is None
    assert third.color is None and third.product is None


async def test_has_many_inside_an_embed_is_preloaded_by_the_embed_id(shop: Repo) -> None:
    order = await shop.insert(Order(label="a", items=[LineItem(quantity=1), LineItem(quantity=2)]))
    one, two = order.items
    assert one.id is not None and two.id is not None
    await shop.insert(Note(body="n1", line_item_id=one.id))
    await shop.insert(Note(body="n2", line_item_id=one.id))
    await shop.insert(Note(body="elsewhere", line_item_id=uuid.uuid4()))
    loaded = await shop.preload(order, {"items": "notes"})
    assert sorted(str(n.body) for n in loaded.items[0].notes) == ["n1", "n2"]
    assert loaded.items[1].notes == []


async def test_preload_under_a_parent_association(shop: Repo) -> None:
    """An embed reached through nested preloads: the embeds of every preloaded row, one query."""
    (pen,) = await products(shop, "pen")
    order = await shop.insert(Order(label="a", items=[LineItem(product_id=pen.id)]))
    note = await shop.insert(Note(body="n", line_item_id=order.items[0].id))
    events = record(shop)
    (again,) = await shop.preload([order], {"items": ["product", "notes"]})
    assert len(await selects(shop, events)) == 2
    assert again.items[0].product is not None and again.items[0].notes == [note]


async def test_already_loaded_is_kept_unless_forced(shop: Repo) -> None:
    (pen,) = await products(shop, "pen")
    order = await shop.preload(await shop.insert(Order(items=[LineItem(product_id=pen.id)])), {"items": "product"})
    await shop.update_all(from_(Product), set={"name": "renamed"})
    events = record(shop)
    kept = await shop.preload(order, {"items": "product"})
    assert await selects(shop, events) == []
    assert kept.items[0].product is not None and kept.items[0].product.name == "pen"
    forced = await shop.preload(order, {"items": "product"}, force=True)
    assert forced.items[0].product is not None and forced.items[0].product.name == "renamed"


async def test_preload_directly_on_embedded_structs(shop: Repo) -> None:
    """As Ecto, ``repo.preload`` takes embedded structs themselves (read with the repo's prefix)."""
    pen, ink = await products(shop, "pen", "ink")
    items = [LineItem(product_id=pen.id), LineItem(product_id=ink.id), LineItem()]
    loaded = await shop.preload(items, "product")
    assert [i.product.name if i.product else None for i in loaded] == ["pen", "ink", None]


async def test_related_rows_are_read_from_the_parents_prefix(shop: Repo) -> None:
    """A departure from Ecto (which reads them from the default prefix, an embed having no meta):
    an embed lives in its parent's row, so its related rows are read where the parent was."""
    await shop.query("CREATE TABLE archive.ea_products (LIKE ea_products INCLUDING ALL)")
    await shop.query("CREATE TABLE archive.ea_orders (LIKE ea_orders INCLUDING ALL)")
    (public,) = await products(shop, "public pen")
    archived = await shop.insert(Product(id=public.id, name="archived pen"), prefix="archive")  # the same key
    await shop.insert(Order(items=[LineItem(product_id=archived.id)]), prefix="archive")
    (order,) = await shop.all(from_(Order), prefix="archive")
    got = await shop.preload(order, {"items": "product"})
    assert cast_any(Product, got.items[0].product).name == "archived pen"
    forced = await shop.preload(order, {"items": "product"}, prefix="public")
    assert cast_any(Product, forced.items[0].product).name == "public pen"


async def test_assoc_query_from_embedded_structs(shop: Repo) -> None:
    """``assoc(item, "product")`` (Ecto's ``Ecto.assoc/2`` on an embed): a query for the related rows."""
    pen, ink = await products(shop, "pen", "ink")
    items = [LineItem(product_id=pen.id), LineItem(product_id=ink.id), LineItem()]
    found = await shop.all(assoc(items, "product") | order_by("id"))
    assert [p.name for p in found] == ["pen", "ink"]
    assert await shop.all(assoc(items[2], "product")) == []


async def test_preload_errors_name_the_embed_and_the_fix(shop: Repo) -> None:
    order = await shop.insert(Order(items=[LineItem()]))
    with pytest.raises(QueryError, match=r"cannot preload embedded field 'items' of Order without also preloading"):
        await shop.preload(order, "items")
    with pytest.raises(QueryError, match=r"cannot preload embedded field 'items'"):
        from_(Order) | preload("items")
    with pytest.raises(QueryError, match=r"cannot preload embed 'items' of Order with a query"):
        await shop.preload(order, {"items": from_(Product)})
    with pytest.raises(QueryError, match=r"schema LineItem has no association 'maker'.*product, vendor, notes"):
        await shop.preload(order, {"items": "maker"})


async def test_cancelled_preload_through_an_embed_returns_the_connection(shop: Repo) -> None:
    """A preload under an embed cancelled while it waits, both ways (asyncio and anyio)."""
    (pen,) = await products(shop, "pen")
    order = await shop.insert(Order(items=[LineItem(product_id=pen.id)]))
    started = asyncio.Event()

    async def slow(ids: list[int]) -> list[Any]:
        started.set()
        await asyncio.sleep(30)
        return []

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await shop.preload(order, {"items": {"product": slow}})
    assert started.is_set()
    task = asyncio.ensure_future(shop.preload(order, {"items": {"product": slow}}))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with anyio.move_on_after(0.2) as scope:
        await shop.preload(order, {"items": {"product": slow}})
    assert scope.cancelled_caught
    with anyio.CancelScope() as scope2:
        scope2.cancel()
        await shop.preload(order, {"items": {"product": slow}})
    assert scope2.cancelled_caught
    # the connection still works after every cancellation
    again = await shop.preload(order, {"items": "product"})
    assert again.items[0].product is not None and again.items[0].product.name == "pen"


# -- changesets ------------------------------------------------------------------------------------


async def test_cast_the_foreign_key_inside_cast_embed_and_write(shop: Repo) -> None:
    pen, ink = await products(shop, "pen", "ink")
    cs = cast(Order(), {"label": "o", "items": [{"quantity": 1, "product_id": str(pen.id)}]}, ["label"])
    cs = cs | cast_embed("items", with_=lambda item, params: cast(item, params, ["quantity", "product_id"]))
    order = await shop.insert(cs)
    assert order.items[0].product_id == pen.id
    upd = cast(order, {"items": [{"id": str(order.items[0].id), "product_id": ink.id}]}, [])
    upd = upd | cast_embed("items", with_=lambda item, params: cast(item, params, ["product_id"]))
    updated = await shop.update(upd)
    loaded = await shop.preload(await shop.get(Order, updated.id), {"items": "product"})
    assert loaded is not None and loaded.items[0].product is not None and loaded.items[0].product.name == "ink"


async def test_put_assoc_of_a_loaded_struct_sets_the_foreign_key(shop: Repo) -> None:
    pen, ink = await products(shop, "pen", "ink")
    item_cs = change(LineItem(quantity=1)) | put_assoc("product", pen)
    assert item_cs.changes["product_id"] == pen.id
    order = await shop.insert(change(Order(label="o")) | put_embed("items", [item_cs]))
    assert order.items[0].product_id == pen.id and order.items[0].product == pen
    stored = await shop.get(Order, order.id)
    assert stored is not None and stored.items[0].product_id == pen.id
    # replacing a preloaded product (on_replace="nilify") sets the other key
    loaded = await shop.preload(stored, {"items": "product"})
    swap = change(loaded.items[0]) | put_assoc("product", ink)
    order2 = await shop.update(change(loaded) | put_embed("items", [swap]))
    assert order2.items[0].product_id == ink.id
    cleared = change(order2.items[0]) | put_assoc("product", None)
    assert cleared.changes["product_id"] is None
    fresh = await shop.get(Order, order.id)
    assert fresh is not None and fresh.items[0].product_id == ink.id


async def test_changes_the_repo_would_not_write_are_refused(shop: Repo) -> None:
    (pen,) = await products(shop, "pen")
    with pytest.raises(ArgumentError, match=r"cannot put a new or changed Product in association 'product' of the "):
        change(LineItem()) | put_assoc("product", Product(name="new"))
    with pytest.raises(ArgumentError, match=r"cannot put a new or changed Product"):
        change(LineItem()) | put_assoc("product", {"name": "new"})
    with pytest.raises(ArgumentError, match=r"cannot put a new or changed Product"):
        change(LineItem()) | put_assoc("product", change(pen, name="renamed"))
    with pytest.raises(ArgumentError, match=r"cast_assoc: association 'product' of the embedded schema LineItem"):
        cast(LineItem(), {"product": {"name": "x"}}, []) | cast_assoc("product")
    with pytest.raises(ArgumentError, match=r"put_assoc: association 'notes' of the embedded schema LineItem"):
        change(LineItem()) | put_assoc("notes", [Note(body="x")])
    stored = await shop.get(Order, (await shop.insert(Order(items=[LineItem(product_id=pen.id)]))).id)
    assert stored is not None
    with pytest.raises(ArgumentError, match=r"association 'product' of LineItem that was not loaded"):
        change(stored.items[0]) | put_assoc("product", pen)


@pytest.mark.no_sandbox
async def test_siblings_under_an_embed_load_in_parallel_outside_a_transaction(repo: Repo, admin: Any) -> None:
    """Outside a transaction two associations under the same embed are two parallel child tasks
    (``on_preloader_spawn`` runs in each), as for a table schema's own associations."""
    drop = "DROP TABLE IF EXISTS ea_orders, ea_products, ea_vendors, ea_notes"
    await admin.execute(drop)
    try:
        for statement in DDL:
            await admin.execute(statement)
        pen = await repo.insert(Product(name="pen"))
        vendor = await repo.insert(Vendor(name="acme"))
        order = await repo.insert(Order(items=[LineItem(product_id=pen.id, vendor_id=vendor.id), LineItem()]))
        spawned: list[int] = []
        got = await repo.preload(order, {"items": ["product", "vendor"]}, on_preloader_spawn=lambda: spawned.append(1))
        assert len(spawned) == 2
        first, second = got.items
        assert cast_any(Product, first.product).name == "pen" and cast_any(Vendor, first.vendor).name == "acme"
        assert second.product is None and second.vendor is None
        assert repo.pool_stats()["in_use"] == 0
    finally:
        await admin.execute(drop)
