"""Schemas: plain immutable structs mapped to tables.

``@schema("weather")`` turns an annotated class into a frozen, slotted,
keyword-only attrs class with a primary key and a hidden meta. A struct never
talks to the database; only the Repo does.
"""

from __future__ import annotations

from ._assoc_specs import belongs_to as belongs_to
from ._assoc_specs import has_many as has_many
from ._assoc_specs import has_one as has_one
from ._assoc_specs import many_to_many as many_to_many
from ._associations import Association as Association
from ._associations import NotLoaded as NotLoaded
from ._associations import assoc_loaded as assoc_loaded
from ._define import Timestamps as Timestamps
from ._define import embedded_schema as embedded_schema
from ._define import schema as schema
from ._embeds import EmbedMany as EmbedMany
from ._embeds import EmbedOne as EmbedOne
from ._embeds import embedded_dump as embedded_dump
from ._embeds import embedded_load as embedded_load
from ._embeds import embeds_many as embeds_many
from ._embeds import embeds_one as embeds_one
from ._field import FieldInfo as FieldInfo
from ._field import field as field
from ._info import SchemaInfo as SchemaInfo
from ._info import is_schema as is_schema
from ._info import schema_info as schema_info
from ._meta import Meta as Meta
from ._struct import build_assoc as build_assoc
from ._struct import meta as meta
from ._struct import primary_key as primary_key
from ._struct import primary_key_or_raise as primary_key_or_raise
from ._struct import put_meta as put_meta
from ._struct import replace as replace
from ._struct import reset_fields as reset_fields

__all__ = (
    "Association",
    "EmbedMany",
    "EmbedOne",
    "FieldInfo",
    "Meta",
    "NotLoaded",
    "SchemaInfo",
    "Timestamps",
    "assoc_loaded",
    "belongs_to",
    "build_assoc",
    "embedded_dump",
    "embedded_load",
    "embedded_schema",
    "embeds_many",
    "embeds_one",
    "field",
    "has_many",
    "has_one",
    "is_schema",
    "many_to_many",
    "meta",
    "primary_key",
    "primary_key_or_raise",
    "put_meta",
    "replace",
    "reset_fields",
    "schema",
    "schema_info",
)
