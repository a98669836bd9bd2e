"""Constraints declared on a changeset: ``unique_constraint`` and the others.

A declared constraint is checked only when the database reports its violation: the
Repo then turns the violation into an error on the changeset (``constraint``,
``constraint_name`` in the metadata) instead of raising ``ConstraintError``: see
``_constraint_errors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, overload

import attrs

from asyncecto._names import check_generated_name, check_name
from asyncecto.errors import ArgumentError
from asyncecto.schema import meta, schema_info

from ._changeset import Changeset, Step, dual_step, field_names

_T = TypeVar("_T")

__all__ = (
    "Constraint",
    "assoc_constraint",
    "check_constraint",
    "exclusion_constraint",
    "foreign_key_constraint",
    "no_assoc_constraint",
    "unique_constraint",
)

Match = Literal["exact", "suffix", "prefix"]


@attrs.frozen
class Constraint:
    """A constraint the changeset expects the database may report.

    :ivar type: ``unique``, ``foreign_key``, ``check`` or ``exclusion`` (the database's kind)
    :ivar constraint: its name, or a compiled regex (``match="exact"`` only)
    :ivar error_type: the ``constraint`` value in the error's metadata (``foreign`` for foreign keys)
    """

    type: str
    constraint: str | re.Pattern[str]
    match: Match
    field: str
    error_message: str
    error_type: str

    def matches(self, kind: str, name: str) -> bool:
        if kind != self.type:
            return False
        if isinstance(self.constraint, re.Pattern):
            return self.constraint.search(name) is not None
        if self.match == "exact":
            return name == self.constraint
        if self.match == "suffix":
            return name.endswith(self.constraint)
        return name.startswith(self.constraint)


def _table_and_columns(cs: Changeset[Any], fields: list[str]) -> tuple[str, list[str]]:
    if isinstance(cs.data, dict):
        raise ArgumentError("constraints need a schema changeset: the table name comes from the schema")
    info = schema_info(cs.data)
    if info.source is None:
        raise ArgumentError(f"cannot add a constraint to embedded schema {info.name}: it has no table")
    columns = [info.field(f).source for f in fields]
    return meta(cs.data).source, columns


def _default_name(name: str, function: str) -> str:
    """A constraint name derived from the table and columns, refused (with the fix of passing
    ``name=``) when PostgreSQL could not have kept it: its index or key has another name."""
    return check_generated_name(name, "constraint name", f"{function}(..., name=)")


def _add(
    cs: Changeset[Any],
    kind: str,
    field: str,
    name: str | re.Pattern[str],
    match: str,
    message: str,
    error_type: str,
) -> Changeset[Any]:
    if match not in ("exact", "suffix", "prefix"):
        raise ArgumentError(f"invalid match {match!r}; use exact, suffix or prefix")
    if isinstance(name, re.Pattern) and match != "exact":
        raise ArgumentError("a regex constraint name works with match='exact' only")
    if not isinstance(name, re.Pattern):  # PostgreSQL reports at most 63 bytes: a longer name never matches
        check_name(name, f"{kind} constraint name")
    c = Constraint(kind, name, match, field, message, error_type)  # type: ignore[arg-type]
    return attrs.evolve(cs, constraints=(*cs.constraints, c))


@overload
def unique_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def unique_constraint(*args: Any, **kwargs: Any) -> Step: ...
def unique_constraint(*args: Any, **kwargs: Any) -> Any:
    """Declare a unique constraint on ``field`` (or fields): ``"has already been taken"``.

    ``unique_constraint(cs, "email", name=None, match="exact", message=..., error_key=None)``;
    the default name is ``{table}_{col1}_{col2}_index`` (Ecto's index name).
    """
    return dual_step(_unique, args, kwargs)


def _unique(
    cs: Changeset[Any],
    fields: str | Iterable[str],
    *,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str = "has already been taken",
    error_key: str | None = None,
) -> Changeset[Any]:
    names = field_names(fields)
    table, columns = _table_and_columns(cs, names)
    name = name or _default_name(f"{table}_{'_'.join(columns)}_index", "unique_constraint")
    return _add(cs, "unique", error_key or names[0], name, match, message, "unique")


@overload
def foreign_key_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def foreign_key_constraint(*args: Any, **kwargs: Any) -> Step: ...
def foreign_key_constraint(*args: Any, **kwargs: Any) -> Any:
    """Declare a foreign key on ``field``: ``"does not exist"`` (default name ``{table}_{col}_fkey``)."""
    return dual_step(_foreign_key, args, kwargs)


def _foreign_key(
    cs: Changeset[Any],
    field: str,
    *,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str = "does not exist",
) -> Changeset[Any]:
    table, (column,) = _table_and_columns(cs, [field])
    name = name or _default_name(f"{table}_{column}_fkey", "foreign_key_constraint")
    return _add(cs, "foreign_key", field, name, match, message, "foreign")


@overload
def check_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def check_constraint(*args: Any, **kwargs: Any) -> Step: ...
def check_constraint(*args: Any, **kwargs: Any) -> Any:
    """Declare a check constraint for ``field``; ``name=`` is required: ``"is invalid"``."""
    return dual_step(_check, args, kwargs)


def _check(
    cs: Changeset[Any],
    field: str,
    *,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str = "is invalid",
) -> Changeset[Any]:
    if name is None:
        raise ArgumentError("check_constraint needs name=: you must supply the name of the constraint")
    _table_and_columns(cs, [field])
    return _add(cs, "check", field, name, match, message, "check")


@overload
def assoc_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def assoc_constraint(*args: Any, **kwargs: Any) -> Step: ...
def assoc_constraint(*args: Any, **kwargs: Any) -> Any:
    """The row ``assoc`` points to must exist: ``"does not exist"`` (``constraint: assoc``).

    The foreign key is the ``{assoc}_id`` field (what ``belongs_to`` defines) unless
    ``foreign_key=`` names it; the default constraint name is ``{table}_{column}_fkey``.
    """
    return dual_step(_assoc, args, kwargs)


def _assoc(
    cs: Changeset[Any],
    assoc: str,
    *,
    foreign_key: str | None = None,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str = "does not exist",
) -> Changeset[Any]:
    declared = None if isinstance(cs.data, dict) else schema_info(cs.data).associations.get(assoc)
    if declared is not None and declared.kind == "belongs_to" and foreign_key is None:
        foreign_key = declared.owner_key
    fk = foreign_key or f"{assoc}_id"
    if not isinstance(cs.data, dict) and fk not in schema_info(cs.data).fields:
        raise ArgumentError(
            f"assoc_constraint({assoc!r}) needs the foreign key field {fk!r} on {type(cs.data).__name__}; "
            "pass foreign_key= to name it"
        )
    table, (column,) = _table_and_columns(cs, [fk])
    name = name or _default_name(f"{table}_{column}_fkey", "assoc_constraint")
    return _add(cs, "foreign_key", assoc, name, match, message, "assoc")


@overload
def no_assoc_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def no_assoc_constraint(*args: Any, **kwargs: Any) -> Step: ...
def no_assoc_constraint(*args: Any, **kwargs: Any) -> Any:
    """Deleting the row must not leave ``assoc`` rows pointing to it:
    ``"are still associated with this entry"`` (``constraint: no_assoc``).

    For a declared ``has_one``/``has_many`` the default name is the associated table's foreign
    key constraint (``{child_table}_{foreign_key}_fkey``) and a ``has_one`` says
    ``"is still associated with this entry"``; otherwise pass ``name=``.
    """
    return dual_step(_no_assoc, args, kwargs)


def _no_assoc(
    cs: Changeset[Any],
    assoc: str,
    *,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str | None = None,
) -> Changeset[Any]:
    declared = None if isinstance(cs.data, dict) else schema_info(cs.data).associations.get(assoc)
    if declared is not None and declared.kind in ("has_one", "has_many") and declared.through is None:
        if name is None:
            table = schema_info(declared.related).source
            column = schema_info(declared.related).fields[declared.related_key or ""].source
            name = _default_name(f"{table}_{column}_fkey", "no_assoc_constraint")
        if message is None and declared.kind == "has_one":
            message = "is still associated with this entry"
    message = message if message is not None else "are still associated with this entry"
    if name is None:
        raise ArgumentError(
            f"no_assoc_constraint({assoc!r}) needs name=: the foreign key constraint on the associated table, "
            'e.g. name="comments_post_id_fkey"'
        )
    _table_and_columns(cs, [])
    return _add(cs, "foreign_key", assoc, name, match, message, "no_assoc")


@overload
def exclusion_constraint(cs: Changeset[_T], /, *args: Any, **kwargs: Any) -> Changeset[_T]: ...
@overload
def exclusion_constraint(*args: Any, **kwargs: Any) -> Step: ...
def exclusion_constraint(*args: Any, **kwargs: Any) -> Any:
    """Declare an exclusion constraint on ``field``: ``"violates an exclusion constraint"``
    (default name ``{table}_{col}_exclusion``).
    """
    return dual_step(_exclusion, args, kwargs)


def _exclusion(
    cs: Changeset[Any],
    field: str,
    *,
    name: str | re.Pattern[str] | None = None,
    match: str = "exact",
    message: str = "violates an exclusion constraint",
) -> Changeset[Any]:
    table, (column,) = _table_and_columns(cs, [field])
    name = name or _default_name(f"{table}_{column}_exclusion", "exclusion_constraint")
    return _add(cs, "exclusion", field, name, match, message, "exclusion")
