"""Schemas and tables for insert_all and upsert tests."""

from __future__ import annotations

import datetime as dt
import uuid

from asyncecto import field, schema
from asyncecto import types as t


@schema("counters", timestamps=True)
class Counter:
    id: int | None = None
    name: str | None = None
    hits: int | None = None
    code: str | None = None
    tags: list[str] | None = field(type=t.Array(t.String))
    label: str | None = field(source="label_text")
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("tokens", primary_key=("uuid", t.BinaryId))
class Token:
    uuid: uuid.UUID | None = None
    name: str | None = None


@schema("counters", prefix="archive", timestamps=True)
class ArchivedCounter:
    id: int | None = None
    name: str | None = None
    hits: int | None = None
    code: str | None = None
    tags: list[str] | None = field(type=t.Array(t.String))
    label: str | None = field(source="label_text")
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


UPSERT_TABLES = ("counters", "tokens", "archive.counters")

UPSERT_DDL = (
    "DROP TABLE IF EXISTS counters, tokens, archive.counters CASCADE",
    "CREATE TABLE counters (id bigserial PRIMARY KEY, name text UNIQUE, hits integer DEFAULT 0, code text, "
    "tags text[], label_text text, inserted_at timestamp(0), updated_at timestamp(0))",
    "CREATE UNIQUE INDEX counters_lower_code ON counters (lower(code)) WHERE code IS NOT NULL",
    "CREATE TABLE tokens (uuid uuid PRIMARY KEY, name text)",
    "CREATE TABLE archive.counters (LIKE counters INCLUDING ALL)",
)
