"""``put_assoc`` / ``cast_assoc`` on an association declared inside an embedded schema.

The Repo stores an embedded struct as JSON in its parent's row and writes none of its related
rows: Ecto documents that "any association nested inside of an embedded schema won't be
persisted" and drops such changes silently. Here what can be kept is kept and the rest refused:

* ``put_assoc`` of a ``belongs_to`` with a loaded struct (or ``None``) sets the foreign key
  (``product_id``) as a change of the embed, and the association to that struct;
* a new or changed related struct, a mapping of fields, ``cast_assoc``, and ``has_*`` /
  ``many_to_many`` associations are refused with the fix (insert the row first, or cast the key).
"""

from __future__ import annotations

from typing import Any

from asyncecto.errors import ArgumentError
from asyncecto.schema import meta, schema_info
from asyncecto.schema._associations import Association

from ._changeset import Changeset

__all__ = ("embedded_key", "is_embedded", "refuse_embedded_cast", "refuse_unwritten")


def is_embedded(cs: Changeset[Any]) -> bool:
    """Whether the changeset's data is an embedded schema's struct."""
    return not isinstance(cs.data, dict) and schema_info(cs.data).embedded


def _unwritten(a: Association, fn: str) -> str:
    owner = a.owner.__name__
    head = (
        f"{fn}: association {a.name!r} of the embedded schema {owner} is a {a.kind}; the Repo writes no "
        f"related rows of an embedded struct (it is stored as JSON in its parent's row; Ecto drops such "
        f"changes silently)"
    )
    if a.kind == "belongs_to":
        return (
            f"{head}.\n\nfix: cast the foreign key with the embed's fields, cast(struct, params, "
            f"[{a.owner_key!r}]), or put_assoc a {a.related.__name__} loaded from the repo"
        )
    return (
        f"{head}.\n\nfix: write the {a.related.__name__} rows with the repo, their {a.related_key!r} set to the "
        f"embed's {a.owner_key!r}"
    )


def refuse_embedded_cast(a: Association) -> None:
    """``cast_assoc`` inside an embed: refused (its inserts and updates would never be written)."""
    raise ArgumentError(_unwritten(a, "cast_assoc"))


def refuse_unwritten(a: Association, fn: str) -> None:
    """Only a ``belongs_to`` inside an embed can be put: its key is the embed's own field."""
    if a.kind != "belongs_to":
        raise ArgumentError(_unwritten(a, fn))


def embedded_key(a: Association, child: Changeset[Any] | None, value: Any) -> Any:
    """The foreign key ``put_assoc`` of ``value`` gives the embed, from the change it recorded for
    the association (``child``); a related struct the Repo would have to write is refused."""
    if child is None:
        return None
    related = a.related.__name__
    key = getattr(child.data, a.related_key or "id")
    if child.action != "update" or child.changes or meta(child.data).state != "loaded" or key is None:
        raise ArgumentError(
            f"put_assoc: cannot put a new or changed {related} in association {a.name!r} of the embedded "
            f"schema {a.owner.__name__}: the Repo writes no related rows of an embedded struct (Ecto drops "
            f"them silently), so it would be lost; got {value!r}\n\nfix: insert it first and put the "
            f"loaded struct, {a.name} = await repo.insert({related}(...)), or set the key: "
            f"put_change({a.owner_key!r}, id)"
        )
    return key
