"""embeds_one / embeds_many stored as jsonb: writes, reads, ids and timestamps."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo
from asyncecto.changeset import (
    Changeset,
    add_error,
    cast,
    cast_embed,
    change,
    prepare_changes,
    traverse_errors,
    validate_required,
)
from asyncecto.errors import InvalidChangesetError
from asyncecto.query import from_, select, where

from ..schemas import Geo, Level, Link, Location, Profile

pytestmark = pytest.mark.usefixtures("repo")


async def raw(admin: asyncpg.Connection, column: str) -> Any:
    return json.loads(await admin.fetchval(f"SELECT {column}::text FROM profiles"))


async def test_insert_generates_embed_ids_and_timestamps_and_reads_back(repo: Repo, admin: asyncpg.Connection) -> None:
    home = Location(label="home", since=dt.date(2020, 5, 1), price=decimal.Decimal("12.50"), geo=Geo(lat=1.5, lng=2))
    p = await repo.insert(Profile(name="ada", home=home, places=[Location(label="a"), Location(label="b")]))
    assert p.home is not None and isinstance(p.home.id, uuid.UUID)
    assert p.home.inserted_at is not None and p.home.inserted_at == p.home.updated_at
    assert [loc.label for loc in p.places] == ["a", "b"]
    assert all(isinstance(loc.id, uuid.UUID) for loc in p.places)
    assert p.places[0].id != p.places[1].id
    assert p.links == []

    stored = await raw(admin, "home")
    assert isinstance(stored, dict)
    assert stored["label"] == "home" and stored["id"] == str(p.home.id)
    assert p.home.geo is not None and isinstance(p.home.geo.id, uuid.UUID)  # nested embeds get ids too
    assert stored["geo"] == {"id": str(p.home.geo.id), "lat": 1.5, "lng": 2.0}
    assert stored["since"] == "2020-05-01"

    loaded = await repo.get(Profile, p.id)
    assert loaded == p
    assert loaded is not None and loaded.home is not None
    assert loaded.home.price == decimal.Decimal("12.50") and loaded.home.since == dt.date(2020, 5, 1)
    assert loaded.home.geo == Geo(id=p.home.geo.id, lat=1.5, lng=2.0)


async def test_embeds_through_queries_and_select(repo: Repo) -> None:
    await repo.insert(Profile(name="ada", links=[Link(url="https://a", rank=1), Link(url="https://b", rank=2)]))
    await repo.insert(Profile(name="bob"))
    links: list[Any] = await repo.all(from_(Profile) | where(name="ada") | select(lambda p: p.links))
    assert links == [[Link(url="https://a", rank=1), Link(url="https://b", rank=2)]]
    nobody: Any = await repo.one(from_(Profile) | where(name="bob") | select(lambda p: (p.home, p.places)))
    assert nobody == (None, [])
    urls: list[Any] = await repo.all(
        from_(Profile) | where(lambda p: p.links[0]["url"] == "https://a") | select(lambda p: p.name)
    )
    assert urls == ["ada"]


async def test_update_replaces_the_embed_and_keeps_given_ids(repo: Repo, admin: asyncpg.Connection) -> None:
    p = await repo.insert(Profile(name="ada", places=[Location(label="a")]))
    kept = p.places[0]
    updated = await repo.update(change(p, places=[kept, Location(label="new")], home=Location(label="h")))
    assert updated.places[0] == kept
    assert updated.places[1].id is not None and updated.home is not None and updated.home.id is not None
    assert [x["label"] for x in await raw(admin, "places")] == ["a", "new"]
    cleared = await repo.update(change(updated, home=None, places=[]))
    assert (cleared.home, cleared.places) == (None, [])
    assert await admin.fetchval("SELECT home IS NULL AND places = '[]'::jsonb FROM profiles")


async def test_loading_ignores_unknown_keys_and_defaults_missing_ones(repo: Repo, admin: asyncpg.Connection) -> None:
    await admin.execute(
        "INSERT INTO profiles (name, home, places, link_list) VALUES "
        """('x', '{"label": "h", "extra": 1}', '[]', '[{"url": "u"}]')"""
    )
    p = await repo.get_by(Profile, name="x")
    assert p is not None and p.home is not None
    assert (p.home.label, p.home.geo, p.home.id) == ("h", None, None)
    assert p.links == [Link(url="u", rank=None)]


async def test_writing_cast_embed_changesets(repo: Repo, admin: asyncpg.Connection) -> None:
    params = {"name": "ada", "home": {"label": "h", "geo": {"lat": "1.5"}}, "places": [{"label": "a"}]}
    cs = cast(Profile(), params, ["name"]) | (lambda c: cast_embed(c, "home")) | (lambda c: cast_embed(c, "places"))
    p = await repo.insert(cs)
    assert p.home is not None and p.home.label == "h" and p.home.id is not None
    assert p.home.geo is None  # Location's default changeset casts its own fields only
    assert [x.label for x in p.places] == ["a"]
    assert await repo.get(Profile, p.id) == p

    first = p.places[0]
    again = cast(p, {"places": [{"id": str(first.id), "label": "a2"}, {"label": "b"}], "home": {"label": "h2"}}, [])
    again = cast_embed(cast_embed(again, "places"), "home")
    updated = await repo.update(again)
    assert [(x.id == first.id, x.label) for x in updated.places] == [(True, "a2"), (False, "b")]
    assert updated.home is not None and (updated.home.id, updated.home.label) == (p.home.id, "h2")  # on_replace=update
    assert await repo.get(Profile, p.id) == updated
    assert [x["label"] for x in await raw(admin, "places")] == ["a2", "b"]


async def test_an_invalid_embed_sends_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    def strict(loc: Location, params: Mapping[str, object]) -> Changeset[Location]:
        return cast(loc, params, ["label"]) | validate_required("label")

    cs = cast_embed(cast(Profile(), {"name": "x", "places": [{"label": ""}]}, ["name"]), "places", with_=strict)
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    assert traverse_errors(info.value.changeset) == {"places": [{"label": ["can't be blank"]}]}
    assert await admin.fetchval("SELECT count(*) FROM profiles") == 0


async def test_updated_embeds_get_a_new_updated_at_untouched_ones_keep_theirs(repo: Repo) -> None:
    old = dt.datetime(2020, 1, 1)
    p = await repo.insert(
        Profile(
            name="ada",
            places=[
                Location(label="a", inserted_at=old, updated_at=old),
                Location(label="b", inserted_at=old, updated_at=old),
            ],
        )
    )
    a, b = p.places
    cs = cast_embed(
        cast(p, {"places": [{"id": str(a.id), "label": "a2"}, {"id": str(b.id), "label": "b"}]}, []), "places"
    )
    updated = await repo.update(cs)
    assert updated.places[0].updated_at is not None and updated.places[0].updated_at > old
    assert updated.places[0].inserted_at == old
    assert updated.places[1].updated_at == old


async def test_every_scalar_kind_inside_an_embed_reads_back(repo: Repo) -> None:
    home = Location(
        label="h",
        since=dt.date(2020, 5, 1),
        price=decimal.Decimal("0.10"),
        stay=dt.timedelta(hours=1, seconds=3, microseconds=5),
        opens=dt.time(8, 30),
        size="large",
        level=Level.HIGH,
    )
    p = await repo.insert(Profile(name="ada", home=home))
    loaded = await repo.get(Profile, p.id)
    assert loaded == p
    assert loaded is not None and loaded.home is not None
    assert (loaded.home.stay, loaded.home.opens, loaded.home.size, loaded.home.level) == (
        dt.timedelta(hours=1, seconds=3, microseconds=5),
        dt.time(8, 30),
        "large",
        Level.HIGH,
    )


async def test_change_with_a_mapping_for_an_embed_is_written(repo: Repo) -> None:
    p = await repo.insert(change(Profile(name="a"), home={"label": "x", "geo": {"lat": 1.0}}))
    assert p.home is not None and p.home.geo is not None and p.home.geo.lat == 1.0
    assert await repo.get(Profile, p.id) == p


async def test_a_prepare_function_that_adds_an_error_writes_nothing(repo: Repo, admin: asyncpg.Connection) -> None:
    cs = prepare_changes(change(Profile(name="d")), lambda c: add_error(c, "name", "bad"))
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    assert info.value.changeset.errors == (("name", ("bad", {})),)
    assert await admin.fetchval("SELECT count(*) FROM profiles") == 0
    assert not repo.in_transaction()
