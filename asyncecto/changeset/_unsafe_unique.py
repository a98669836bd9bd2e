"""``unsafe_validate_unique``: ask the database whether a value is already taken.

"Unsafe" because another writer may take the value between this check and the
write: keep a ``unique_constraint`` as well. The check is awaited; the module
stays free of ``async def`` by awaiting through ``__await__``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from functools import reduce
from typing import Any

import attrs

from asyncecto.errors import ArgumentError
from asyncecto.query import field as field_ref
from asyncecto.query import from_, where
from asyncecto.schema import meta, schema_info

from ._changeset import Changeset, field_names

__all__ = ("unsafe_validate_unique",)


class _Check:
    """Awaitable result of :func:`unsafe_validate_unique`."""

    def __init__(self, cs: Changeset[Any], pending: Any, error_key: str, message: str, fields: list[str]) -> None:
        self._cs, self._pending, self._key, self._message, self._fields = cs, pending, error_key, message, fields

    def __await__(self) -> Generator[Any, None, Changeset[Any]]:
        if self._pending is None:
            return self._cs
        taken = yield from self._pending.__await__()
        if not taken:
            return self._cs
        error = (self._key, (self._message, {"validation": "unsafe_unique", "fields": self._fields}))
        return attrs.evolve(self._cs, errors=(error, *self._cs.errors), valid=False)


def unsafe_validate_unique(
    cs: Changeset[Any],
    fields: str | Iterable[str],
    repo: Any,
    *,
    query: Any = None,
    prefix: str | None = None,
    message: str = "has already been taken",
    error_key: str | None = None,
) -> _Check:
    """Await to add ``"has already been taken"`` when another row has the same ``fields``.

    No query is sent when none of the fields changed, one of them is ``None``, or one
    already has an error. A loaded struct does not count itself.

    ``cs = await unsafe_validate_unique(cs, ["email"], repo)``
    """
    names = field_names(fields)
    if not names:
        raise ArgumentError("unsafe_validate_unique needs at least one field")
    if isinstance(cs.data, dict):
        raise ArgumentError("unsafe_validate_unique needs a schema changeset: the query comes from the schema")
    info = schema_info(cs.data)
    if info.source is None:
        raise ArgumentError(f"cannot run unsafe_validate_unique on embedded schema {info.name}: it has no table")
    for name in names:
        if name not in info.fields:
            raise ArgumentError(f"unknown field {name!r} in {info.name}; known fields: {', '.join(info.fields)}")
    cs = attrs.evolve(cs, validations=(*cs.validations, (names[0], ("unsafe_unique", {"fields": names}))))
    key = error_key or names[0]
    values = {n: cs.changes[n] if n in cs.changes else getattr(cs.data, n) for n in names}
    skip = (
        all(n not in cs.changes for n in names)
        or any(v is None for v in values.values())
        or any(f in names for f, _ in cs.errors)
    )
    if skip:
        return _Check(cs, None, key, message, names)
    q = (query if query is not None else from_(type(cs.data))) | where(**values)
    own = {n: getattr(cs.data, n) for n in info.primary_key}
    if meta(cs.data).state == "loaded" and own and all(v is not None for v in own.values()):
        q = q | where(lambda s: ~reduce(lambda a, b: a & b, [field_ref(s, n) == v for n, v in own.items()]))
    return _Check(cs, repo.exists(q, prefix=prefix), key, message, names)
