"""Schema-wide options and struct helpers against PostgreSQL: field_source_mapper= columns,
timestamps_opts=, foreign_key_type=, embeds_one(defaults_to_struct=), embedded_dump/embedded_load
of what a jsonb column holds, primary_key / reset_fields on loaded structs."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto import types as t
from asyncecto.schema import (
    belongs_to,
    embedded_dump,
    embedded_load,
    embedded_schema,
    embeds_one,
    meta,
    primary_key,
    primary_key_or_raise,
    put_meta,
    reset_fields,
    schema,
)

pytestmark = pytest.mark.usefixtures("repo")


@embedded_schema(primary_key=False)
class Spot:
    label: str | None = None
    day: dt.date | None = None
    size: int = 1


@schema(
    "sw_things",
    field_source_mapper=lambda name: f"c_{name}",
    timestamps_opts={"type": "utc_datetime_usec"},
    timestamps=True,
)
class Thing:
    id: int | None = None
    title: str | None = None
    spot: Spot | None = embeds_one(Spot, defaults_to_struct=True)
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("sw_owners_u", primary_key=("id", t.BinaryId(), {"autogenerate": True}))
class OwnerU:
    id: uuid.UUID | None = None
    name: str | None = None


@schema("sw_pets_u", foreign_key_type=t.BinaryId())
class PetU:
    id: int | None = None
    owner: OwnerU | None = belongs_to("OwnerU")
    owner_id: uuid.UUID | None = None


async def _tables(admin: Any) -> None:
    await admin.execute(
        "CREATE TABLE sw_things (c_id bigserial PRIMARY KEY, c_title text, c_spot jsonb, "
        "c_inserted_at timestamptz NOT NULL, c_updated_at timestamptz NOT NULL)"
    )
    await admin.execute("CREATE TABLE sw_owners_u (id uuid PRIMARY KEY, name text)")
    await admin.execute("CREATE TABLE sw_pets_u (id bigserial PRIMARY KEY, owner_id uuid REFERENCES sw_owners_u)")


async def test_field_source_mapper_and_timestamps_opts_write_the_mapped_columns(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    thing = await repo.insert(Thing(title="a"))
    assert thing.id is not None
    assert thing.inserted_at is not None and thing.inserted_at.tzinfo is not None  # utc_datetime_usec
    row = await admin.fetchrow("SELECT c_title, c_spot::text AS spot FROM sw_things WHERE c_id = $1", thing.id)
    assert row["c_title"] == "a"
    assert json.loads(row["spot"]) == {"label": None, "day": None, "size": 1}  # defaults_to_struct
    loaded = await repo.get(Thing, thing.id)
    assert loaded == thing and loaded is not None and loaded.spot == Spot()


async def test_a_null_embed_stays_none_with_defaults_to_struct(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    thing = await repo.insert(Thing(title="n", spot=None))
    loaded = await repo.get(Thing, thing.id)
    assert loaded is not None and loaded.spot is None


async def test_embedded_dump_is_what_the_jsonb_column_holds(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    spot = Spot(label="home", day=dt.date(2024, 2, 3), size=4)
    thing = await repo.insert(Thing(title="d", spot=spot))
    stored = json.loads(await admin.fetchval("SELECT c_spot::text FROM sw_things WHERE c_id = $1", thing.id))
    assert embedded_dump(spot, "json") == stored
    assert embedded_load(Spot, stored, "json") == spot
    whole = embedded_dump(thing, "json")
    assert whole["c_spot"] == stored and whole["c_title"] == "d"
    assert embedded_load(Thing, whole, "json") == thing


async def test_foreign_key_type_keys_hold_uuids(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    owner = await repo.insert(OwnerU(name="ada"))
    assert isinstance(owner.id, uuid.UUID)
    pet = await repo.insert(PetU(owner_id=owner.id))
    assert await admin.fetchval("SELECT owner_id FROM sw_pets_u WHERE id = $1", pet.id) == owner.id
    loaded = await repo.preload(pet, "owner")
    assert loaded.owner == owner


async def test_primary_key_and_reset_fields_on_loaded_structs(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    thing = await repo.insert(Thing(title="k", spot=Spot(label="x")))
    assert primary_key(thing) == {"id": thing.id} == primary_key_or_raise(thing)
    reset = reset_fields(thing, ["title", "spot"])
    assert reset.title is None and reset.spot == Spot() and meta(reset).state == "loaded"
    await repo.update_all(Thing, set={"title": None})  # the reset struct still names the same row
    assert await repo.get(Thing, primary_key_or_raise(reset)["id"]) is not None


@schema("sw_things", context="tenant-a", field_source_mapper=lambda name: f"c_{name}")
class ThingInContext:
    id: int | None = None
    title: str | None = None


async def test_schema_context_is_kept_on_loaded_and_written_structs(repo: Repo, admin: Any) -> None:
    await _tables(admin)
    await admin.execute(
        "ALTER TABLE sw_things ALTER c_inserted_at SET DEFAULT now(), ALTER c_updated_at SET DEFAULT now()"
    )
    inserted = await repo.insert(ThingInContext(title="c"))
    assert meta(inserted).state == "loaded" and meta(inserted).context == "tenant-a"
    got = await repo.get(ThingInContext, inserted.id)
    assert got is not None and meta(got).context == "tenant-a"
    [one] = await repo.all(ThingInContext)
    assert meta(one).context == "tenant-a"
    assert meta(repo.load(ThingInContext, {"c_id": 1, "c_title": "x"})).context == "tenant-a"
    # a context put on the struct is kept by writes, as Ecto keeps the struct's meta
    custom = await repo.insert(put_meta(ThingInContext(title="d"), context="mine"))
    assert meta(custom).context == "mine"
    deleted = await repo.delete(custom)
    assert meta(deleted).state == "deleted" and meta(deleted).context == "mine"
