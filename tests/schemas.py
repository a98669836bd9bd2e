"""Schemas and tables shared by the integration tests."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import TYPE_CHECKING

from asyncecto import Timestamps, embedded_schema, embeds_many, embeds_one, field, schema
from asyncecto import types as t


@schema("weather")
class Weather:
    id: int | None = None
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


@schema("posts", timestamps=True)
class Post:
    id: int | None = None
    title: str | None = None
    body: str | None = field(source="content")
    visits: int | None = 0
    rating: decimal.Decimal | None = None
    draft_notes: str | None = field(virtual=True)
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("users", timestamps=Timestamps(type=t.UtcDatetimeUsec, inserted_at="created_at"))
class User:
    id: int | None = None
    email: str | None = None
    password_hash: str | None = field(redact=True)
    score: int | None = field(read_after_writes=True)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("items", primary_key=("uuid", t.BinaryId))
class Item:
    uuid: uuid.UUID | None = None
    name: str | None = None


@schema("post_tags", primary_key=False)
class PostTag:
    post_id: int | None = field(primary_key=True)
    tag: str | None = field(primary_key=True)
    weight: int | None = None


@schema("events", primary_key=False)
class Event:
    kind: str | None = None


@schema("notes", prefix="archive")
class ArchivedNote:
    id: int | None = None
    text: str | None = None


class Status(enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 5


@embedded_schema
class Address:
    street: str | None = None
    if TYPE_CHECKING:  # added by @embedded_schema; declared here for type checkers only
        id: uuid.UUID | None = None


@schema("typed")
class Typed:
    id: int | None = None
    i: int | None = None
    big: int | None = field(type=t.Id)
    f: float | None = None
    b: bool | None = None
    s: str | None = None
    bin: bytes | None = None
    dec: decimal.Decimal | None = None
    m: dict[str, object] | None = None
    ints: list[int] | None = None
    texts: list[str] | None = None
    d: dt.date | None = None
    tm: dt.time | None = field(type=t.Time)
    tmu: dt.time | None = None
    nd: dt.datetime | None = field(type=t.NaiveDatetime)
    ndu: dt.datetime | None = None
    ud: dt.datetime | None = field(type=t.UtcDatetime)
    udu: dt.datetime | None = field(type=t.UtcDatetimeUsec)
    udz: dt.datetime | None = field(type=t.UtcDatetimeUsec)
    u: uuid.UUID | None = None
    dur: dt.timedelta | None = None
    status: Status | None = None
    level: Level | None = None
    mood: str | None = field(type=t.Enum(["happy", "sad"]))
    size: str | None = field(type=t.Enum({"small": 1, "large": 2}))
    any_json: object = field(type=t.Map())


@schema("accounts")
class Account:
    id: int | None = None
    owner_id: int | None = None
    balance: int | None = 0
    lock_version: int | None = 1


@schema("bookings")
class Booking:
    id: int | None = None
    room: int | None = None


@embedded_schema
class Geo:
    lat: float | None = None
    lng: float | None = None
    if TYPE_CHECKING:  # added by @embedded_schema; declared here for type checkers only
        id: uuid.UUID | None = None


@embedded_schema(timestamps=True)
class Location:
    label: str | None = None
    since: dt.date | None = None
    price: decimal.Decimal | None = None
    stay: dt.timedelta | None = None
    opens: dt.time | None = None
    size: str | None = field(type=t.Enum({"small": 1, "large": 2}))
    level: Level | None = None
    geo: Geo | None = embeds_one(Geo)
    if TYPE_CHECKING:  # added by @embedded_schema; declared here for type checkers only
        id: uuid.UUID | None = None
        inserted_at: dt.datetime | None = None
        updated_at: dt.datetime | None = None


@embedded_schema(primary_key=False)
class Link:
    url: str | None = None
    rank: int | None = None


@schema("profiles")
class Profile:
    id: int | None = None
    name: str | None = None
    home: Location | None = embeds_one(Location, on_replace="update")
    places: list[Location] = embeds_many(Location, on_replace="delete")
    links: list[Link] = embeds_many(Link, source="link_list")


TABLES: tuple[str, ...] = (
    "weather",
    "posts",
    "users",
    "items",
    "post_tags",
    "events",
    "archive.notes",
    "archive.weather",
    "typed",
    "accounts",
    "bookings",
    "profiles",
)

DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS archive",
    "DROP TABLE IF EXISTS weather, posts, users, items, post_tags, events, typed, archive.notes, "
    "archive.weather, accounts, bookings, profiles CASCADE",
    "CREATE TABLE weather (id bigserial PRIMARY KEY, city varchar(255), temp_lo integer, "
    "temp_hi integer, prcp double precision)",
    "CREATE TABLE posts (id bigserial PRIMARY KEY, title varchar(255) NOT NULL DEFAULT 'untitled', "
    "content text, visits integer, rating numeric, inserted_at timestamp(0) NOT NULL, "
    "updated_at timestamp(0) NOT NULL)",
    "CREATE TABLE users (id bigserial PRIMARY KEY, email varchar(255) UNIQUE, password_hash text, "
    "score integer NOT NULL DEFAULT 42, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
    "CREATE TABLE accounts (id bigserial PRIMARY KEY, owner_id bigint REFERENCES users(id), "
    "balance integer CONSTRAINT accounts_balance_check CHECK (balance >= 0), lock_version integer)",
    "CREATE TABLE bookings (id bigserial PRIMARY KEY, room integer, "
    "CONSTRAINT bookings_room_exclusion EXCLUDE USING btree (room WITH =))",
    "CREATE TABLE profiles (id bigserial PRIMARY KEY, name text, home jsonb, places jsonb, link_list jsonb)",
    "CREATE TABLE items (uuid uuid PRIMARY KEY, name text)",
    "CREATE TABLE post_tags (post_id bigint, tag text, weight integer, PRIMARY KEY (post_id, tag))",
    "CREATE TABLE events (kind text)",
    "CREATE TABLE archive.notes (id bigserial PRIMARY KEY, text text)",
    "CREATE TABLE archive.weather (LIKE weather INCLUDING ALL)",
    "CREATE TABLE typed (id bigserial PRIMARY KEY, i integer, big bigint, f double precision, b boolean, "
    "s varchar(255), bin bytea, dec numeric, m jsonb, ints integer[], texts text[], d date, tm time(0), "
    "tmu time, nd timestamp(0), ndu timestamp, ud timestamptz(0), udu timestamptz, udz timestamptz, u uuid, "
    "dur interval, status varchar(255), level integer, mood varchar(255), size integer, any_json jsonb)",
)

from .assoc_schemas import ASSOC_DDL, ASSOC_TABLES  # noqa: E402

TABLES = (*TABLES, *ASSOC_TABLES)
DDL = (*DDL, *ASSOC_DDL)

from .upsert_schemas import UPSERT_DDL, UPSERT_TABLES  # noqa: E402

TABLES = (*TABLES, *UPSERT_TABLES)
DDL = (*DDL, *UPSERT_DDL)
