"""Helpers the write-path properties share: keys, read-back, changesets from rows, the SQL sent."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asyncecto import QueryEvent, Repo
from asyncecto import types as t
from asyncecto.changeset import Changeset, cast, cast_embed
from asyncecto.query import from_, order_by, where
from asyncecto.schema import schema_info

from .schemas import EMBED_FIELDS, Emb

__all__ = (
    "TARGET",
    "Sent",
    "after_change",
    "by_key",
    "cast_row",
    "keyed",
    "load",
    "only",
    "values_of",
)

#: the unique key every upsert conflicts on (the partition key must be part of it)
TARGET = ["part", "k"]
EMB_FIELDS = tuple(schema_info(Emb).fields)
_KEYS = itertools.count(1)


def keyed(data: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows with a fresh ``k`` each (unique across examples: the sandbox keeps every example's rows)."""
    return [{**row, "k": next(_KEYS)} for row in data]


def only(row: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: row[name] for name in names}


def values_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row without its keys (``part`` and ``k``)."""
    return {name: value for name, value in row.items() if name not in ("part", "k")}


async def load(repo: Repo, wide: type[Any], written: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The stored rows with the keys of ``written``, in its order."""
    keys = [row["k"] for row in written]
    got = await repo.all(from_(wide) | where(lambda w: w.k.in_(keys)) | order_by("k"))
    order = {k: i for i, k in enumerate(keys)}
    return sorted(got, key=lambda s: order[s.k])


def by_key(structs: Iterable[Any], written: Sequence[Mapping[str, Any]]) -> list[Any]:
    """``structs`` in the order of ``written`` (matched on ``k``)."""
    found = {s.k: s for s in structs}
    return [found[row["k"]] for row in written]


def after_change(wide: type[Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The row a changeset from ``old`` to ``new`` leaves: a value its type finds equal to the current
    one is no change (Ecto's rule), so ``-0.0`` over ``0.0``, or ``{"a": 1.0}`` over ``{"a": 1}``, keeps
    the current one."""
    fields = schema_info(wide).fields
    return {
        name: old[name] if name in old and t.equal(fields[name].type, old[name], value) else value
        for name, value in new.items()
    }


def emb_params(e: Emb) -> dict[str, Any]:
    """An embedded struct as outside params (a dict of its fields, id included)."""
    return {name: getattr(e, name) for name in EMB_FIELDS}


def emb_changeset(data: Any, params: Mapping[str, Any]) -> Changeset[Any]:
    return cast(data, params, EMB_FIELDS, empty_values=())


def cast_row(data: Any, row: Mapping[str, Any], *, valid: bool = True) -> Changeset[Any]:
    """The changeset outside input would make: ``cast`` of every field, ``cast_embed`` of the embeds
    (``empty_values=()``: an empty string is a value here, not "missing"); ``valid``: assert it is."""
    params = {name: value for name, value in row.items() if name not in EMBED_FIELDS}
    if "one" in row:
        params["one"] = None if row["one"] is None else emb_params(row["one"])
    if "many" in row:
        params["many"] = [emb_params(e) for e in row["many"]]
    cs = cast(data, params, [name for name in params if name not in EMBED_FIELDS], empty_values=())
    if "one" in row:
        cs = cast_embed(cs, "one", with_=emb_changeset)
    if "many" in row:
        cs = cast_embed(cs, "many", with_=emb_changeset)
    assert cs.valid or not valid, cs.errors
    return cs


class Sent:
    """The SQL the repo sent, from telemetry: which path a write took."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        self.name = repo.telemetry.attach(self._record, name=f"props-{id(self)}")

    def _record(self, event: QueryEvent) -> None:
        self.sql.append(event.sql)

    async def take(self) -> list[str]:
        await self.repo.telemetry.flush()
        sql, self.sql = self.sql, []
        return sql
