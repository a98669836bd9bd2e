"""``unsafe_validate_unique``: ask the database whether a value is already taken.

"Unsafe" because another writer may take the value between this check and the
write: keep a ``unique_constraint`` as well. This module only builds the check (the
query, or none when nothing needs asking) and applies the answer; the repo given to
:func:`unsafe_validate_unique` runs the query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from functools import reduce
from typing import Any

import attrs

from asyncecto.errors import ArgumentError
from asyncecto.query import field as field_ref
from asyncecto.query import from_, is_nil, where
from asyncecto.schema import meta, schema_info

from ._changeset import Changeset, field_names

__all__ = ("UniqueCheck", "unique_check", "unsafe_validate_unique")


@attrs.frozen
class UniqueCheck:
    """A changeset's uniqueness question: ``query`` matches the rows that would clash (``None``: no
    need to ask); :meth:`answer` gives the changeset once the database has answered."""

    changeset: Changeset[Any]
    query: Any
    prefix: str | None
    error_key: str
    message: str
    fields: list[str]
    repo_opts: Mapping[str, Any] = attrs.field(factory=dict)
    """Options for the repo's ``exists`` call (``prefix``, ``timeout``, ``log``...)."""

    def answer(self, taken: bool) -> Changeset[Any]:
        """The changeset, with the error on ``error_key`` if another row holds the values."""
        cs = self.changeset
        if not taken:
            return cs
        error = (self.error_key, (self.message, {"validation": "unsafe_unique", "fields": self.fields}))
        return attrs.evolve(cs, errors=(error, *cs.errors), valid=False)


def unsafe_validate_unique(
    cs: Changeset[Any],
    fields: str | Iterable[str],
    repo: Any,
    *,
    query: Any = None,
    prefix: str | None = None,
    message: str = "has already been taken",
    error_key: str | None = None,
    nulls_distinct: bool = True,
    repo_opts: Mapping[str, Any] | None = None,
) -> Awaitable[Changeset[Any]]:
    """Await to add ``"has already been taken"`` when another row has the same ``fields``.

    No query is sent when none of the fields changed, one of them is ``None`` (unless
    ``nulls_distinct=False``: then ``None`` matches ``NULL``, as in a ``NULLS NOT DISTINCT``
    index), or one already has an error. A loaded struct does not count itself. ``repo_opts``
    go to the repo's ``exists`` call (``prefix=`` wins over theirs). The check is built (and
    its arguments refused) here, at the call; ``repo`` runs it.

    ``cs = await unsafe_validate_unique(cs, ["email"], repo, repo_opts={"timeout": 5})``
    """
    check = unique_check(
        cs,
        fields,
        query=query,
        prefix=prefix,
        message=message,
        error_key=error_key,
        nulls_distinct=nulls_distinct,
        repo_opts=repo_opts,
    )
    run = getattr(repo, "_unsafe_unique", None)
    if run is None:
        raise ArgumentError(f"unsafe_validate_unique needs a Repo to ask, got {repo!r}")
    return run(check)  # type: ignore[no-any-return]


def unique_check(
    cs: Changeset[Any],
    fields: str | Iterable[str],
    *,
    query: Any = None,
    prefix: str | None = None,
    message: str = "has already been taken",
    error_key: str | None = None,
    nulls_distinct: bool = True,
    repo_opts: Mapping[str, Any] | None = None,
) -> UniqueCheck:
    """The check :func:`unsafe_validate_unique` has the repo run (pure: no database)."""
    names = field_names(fields)
    if not names:
        raise ArgumentError("unsafe_validate_unique needs at least one field")
    if not isinstance(nulls_distinct, bool):
        raise ArgumentError(f"unsafe_validate_unique expects nulls_distinct=True or False, got {nulls_distinct!r}")
    if repo_opts is not None and not (isinstance(repo_opts, Mapping) and all(isinstance(k, str) for k in repo_opts)):
        raise ArgumentError(
            f"unsafe_validate_unique expects repo_opts to be a mapping of option names, got {repo_opts!r}; "
            'e.g. repo_opts={"timeout": 5}'
        )
    opts = dict(repo_opts or {})
    if prefix is not None:
        opts["prefix"] = prefix
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
        or (nulls_distinct and any(v is None for v in values.values()))
        or any(f in names for f, _ in cs.errors)
    )
    if skip:
        return UniqueCheck(cs, None, opts.get("prefix"), key, message, names, opts)
    q = query if query is not None else from_(type(cs.data))
    present = {n: v for n, v in values.items() if v is not None}
    if present:
        q = q | where(**present)
    nulls = [n for n, v in values.items() if v is None]
    if nulls:  # nulls_distinct=False: None matches NULL
        q = q | where(lambda s: reduce(lambda a, b: a & b, [is_nil(field_ref(s, n)) for n in nulls]))
    own = {n: getattr(cs.data, n) for n in info.primary_key}
    if meta(cs.data).state == "loaded" and own and all(v is not None for v in own.values()):
        q = q | where(lambda s: ~reduce(lambda a, b: a & b, [field_ref(s, n) == v for n, v in own.items()]))
    return UniqueCheck(cs, q, opts.get("prefix"), key, message, names, opts)
