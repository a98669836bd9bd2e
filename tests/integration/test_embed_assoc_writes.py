"""What an embed's association holds and its JSON cannot keep is refused on write, never dropped:
a related struct never inserted, or a ``belongs_to`` struct other than the one its key names (Ecto
drops both silently; see docs/ecto-parity.md, "associations inside embeds")."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.changeset import change
from asyncecto.errors import ArgumentError
from asyncecto.query import from_

from .test_embed_assocs import DDL, LineItem, Note, Order, Product

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture
async def shop(repo: Repo) -> Repo:
    for statement in DDL:
        await repo.query(statement)
    return repo


async def test_a_new_related_struct_inside_an_embed_is_refused_before_any_sql(shop: Repo) -> None:
    with pytest.raises(ArgumentError) as info:
        await shop.insert(Order(items=[LineItem(product=Product(name="pen"))]))
    text = str(info.value)
    assert "'product'" in text and "LineItem" in text and "never inserted" in text and "fix:" in text
    assert await shop.aggregate(from_(Order), "count") == 0
    assert await shop.aggregate(from_(Product), "count") == 0


async def test_a_new_child_in_an_embeds_has_many_is_refused(shop: Repo) -> None:
    with pytest.raises(ArgumentError, match=r"'notes'.*never inserted"):
        await shop.insert(Order(item=LineItem(notes=[Note(body="x")])))
    assert await shop.aggregate(from_(Order), "count") == 0


async def test_a_loaded_struct_whose_key_disagrees_is_refused(shop: Repo) -> None:
    pen = await shop.insert(Product(name="pen"))
    with pytest.raises(ArgumentError, match="product_id=None"):
        await shop.insert(Order(items=[LineItem(product=pen)]))
    order = await shop.insert(Order(items=[LineItem(product=pen, product_id=pen.id)]))
    assert order.items[0].product_id == pen.id
    with pytest.raises(ArgumentError, match="product_id=999"):
        await shop.update(change(order, items=[LineItem(product=pen, product_id=999)]))
    again = await shop.get(Order, order.id)
    assert again is not None and again.items[0].product_id == pen.id
