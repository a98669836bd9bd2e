"""asyncecto: Elixir's Ecto for Python's asyncio.

A :class:`Repo` owns a pooled connection to PostgreSQL; schemas are plain frozen
structs; changesets, queries and Multi are values composed with ``|``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors as errors
from . import types as types
from .errors import (
    AssociationNotLoadedError as AssociationNotLoadedError,
)
from .errors import (
    AsyncEctoError as AsyncEctoError,
)
from .errors import (
    CastError as CastError,
)
from .errors import (
    ConstraintError as ConstraintError,
)
from .errors import (
    InvalidChangesetError as InvalidChangesetError,
)
from .errors import (
    MultiError as MultiError,
)
from .errors import (
    MultipleResultsError as MultipleResultsError,
)
from .errors import (
    NoResultsError as NoResultsError,
)
from .errors import (
    StaleEntryError as StaleEntryError,
)
from .multi import Multi as Multi
from .query._assoc_query import assoc as assoc
from .query._on_conflict import placeholder as placeholder
from .query._on_conflict import unsafe_fragment as unsafe_fragment
from .schema import Meta as Meta
from .schema import NotLoaded as NotLoaded
from .schema import Timestamps as Timestamps
from .schema import assoc_loaded as assoc_loaded
from .schema import belongs_to as belongs_to
from .schema import build_assoc as build_assoc
from .schema import embedded_dump as embedded_dump
from .schema import embedded_load as embedded_load
from .schema import embedded_schema as embedded_schema
from .schema import embeds_many as embeds_many
from .schema import embeds_one as embeds_one
from .schema import field as field
from .schema import has_many as has_many
from .schema import has_one as has_one
from .schema import many_to_many as many_to_many
from .schema import meta as meta
from .schema import primary_key as primary_key
from .schema import primary_key_or_raise as primary_key_or_raise
from .schema import put_meta as put_meta
from .schema import replace as replace
from .schema import reset_fields as reset_fields
from .schema import schema as schema

__all__ = (
    "AssociationNotLoadedError",
    "AsyncEctoError",
    "CastError",
    "ConstraintError",
    "FailoverEvent",
    "InvalidChangesetError",
    "Meta",
    "Multi",
    "MultiError",
    "MultipleResultsError",
    "NoResultsError",
    "NotLoaded",
    "Notification",
    "QueryEvent",
    "QueryResult",
    "ReplicaEvent",
    "Repo",
    "StaleEntryError",
    "Timestamps",
    "assoc",
    "assoc_loaded",
    "belongs_to",
    "build_assoc",
    "embedded_dump",
    "embedded_load",
    "embedded_schema",
    "embeds_many",
    "embeds_one",
    "errors",
    "field",
    "has_many",
    "has_one",
    "many_to_many",
    "meta",
    "placeholder",
    "primary_key",
    "primary_key_or_raise",
    "put_meta",
    "replace",
    "reset_fields",
    "schema",
    "types",
    "unsafe_fragment",
)

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from .repo import FailoverEvent as FailoverEvent
    from .repo import Notification as Notification
    from .repo import QueryEvent as QueryEvent
    from .repo import QueryResult as QueryResult
    from .repo import ReplicaEvent as ReplicaEvent
    from .repo import Repo as Repo

_LAZY = {"FailoverEvent", "Notification", "QueryEvent", "QueryResult", "ReplicaEvent", "Repo"}


def __getattr__(name: str) -> Any:
    # The Repo (and with it asyncpg) loads on first use, so the pure core imports without the driver.
    if name in _LAZY:
        from . import repo

        return getattr(repo, name)
    raise AttributeError(f"module 'asyncecto' has no attribute {name!r}")
