"""The objects migration commands act on: :func:`table`, :func:`index`, :func:`unique_index`,
:func:`constraint`, the column type :func:`references`, and :func:`fragment`.

They check their arguments and return frozen values; they buffer nothing, so they work outside of
a migration too (the functions that buffer commands are in :mod:`asyncecto.migration._dsl`).

>>> table("posts", prefix="tenant")
Table(name='posts', prefix='tenant', comment=None, primary_key=True, options=None, modifiers=None)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

from asyncecto._names import check_generated_name, check_name, check_optional_name
from asyncecto.errors import ArgumentError

from ._ddl_commands import Constraint, Fragment, Index, IndexColumn, OnDelete, OnUpdate, Reference, Table
from ._settings import current as current_settings

__all__ = (
    "IndexOpts",
    "constraint",
    "fragment",
    "index",
    "references",
    "table",
    "unique_index",
)


def table(
    name: str,
    *,
    primary_key: bool | Mapping[str, Any] = True,
    prefix: str | None = None,
    comment: str | None = None,
    options: str | None = None,
    modifiers: str | None = None,
) -> Table:
    """A table for :func:`create`, :func:`alter`, :func:`drop` and :func:`rename`.

    :param primary_key: ``True`` adds ``id bigserial PRIMARY KEY``; ``False`` none; a dict of
        column options with ``name`` and ``type`` (``{"name": "uuid", "type": "binary_id"}``) another one
    :param options: SQL appended to ``CREATE TABLE`` (``"PARTITION BY RANGE (day)"``, ``"WITH (...)"``)
    :param modifiers: SQL between ``CREATE`` and ``TABLE`` (``"UNLOGGED"``, ``"TEMPORARY"``)
    """
    _name("table", name)
    check_optional_name(prefix, "table prefix")
    if not isinstance(primary_key, bool | Mapping):
        raise ArgumentError(
            f"primary_key must be True, False or a dict of column options (name=, type=, ...), got: {primary_key!r}"
        )
    return Table(
        name=name, prefix=prefix, comment=comment, primary_key=primary_key, options=options, modifiers=modifiers
    )


def _name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ArgumentError(f"expected the {what} name as a non-empty string, got: {value!r}")
    check_name(value, f"{what} name")


def _prefix(value: object) -> None:
    """A prefix is a schema name or ``None``; ``""`` would silently mean "no prefix"."""
    if value is not None:
        _name("prefix (schema)", value)


_ON_DELETE = ("nothing", "delete_all", "nilify_all", "default_all", "restrict")
_ON_UPDATE = ("nothing", "update_all", "nilify_all", "restrict")


def references(
    table: str,
    *,
    column: str | None = None,
    type: str | None = None,
    name: str | None = None,
    prefix: str | None = None,
    on_delete: OnDelete = "nothing",
    on_update: OnUpdate = "nothing",
    validate: bool = True,
    with_: Mapping[str, str] | None = None,
    match: Literal["simple", "partial", "full"] | None = None,
) -> Reference:
    """A foreign key to ``table(column)``, as a column type for :func:`add`/:func:`modify`/:func:`remove`.

    :param column: the referenced column: ``id`` unless the migrator's ``migration_foreign_key``
        (``{"column": ..., "type": ...}``) says otherwise
    :param type: the referenced column's type; ``bigserial``/``serial``/``identity`` become
        ``bigint``/``integer``/``bigint`` here. By default ``migration_foreign_key``'s type, else
        ``migration_primary_key``'s, else ``bigserial``
    :param name: the constraint's name, ``<table>_<column>_fkey`` by default
    :param prefix: the referenced table's prefix (the altered table's by default)
    :param on_delete: ``"nothing"``, ``"delete_all"``, ``"nilify_all"``, ``("nilify", [cols])``,
        ``"default_all"``, ``("default", [cols])`` or ``"restrict"``
    :param on_update: ``"nothing"``, ``"update_all"``, ``"nilify_all"`` or ``"restrict"``
    :param validate: ``False`` adds the key ``NOT VALID`` (existing rows are not checked)
    :param with_: more column pairs of a composite key, ``{"group_id": "group_id"}``
    :param match: ``"simple"``, ``"partial"`` or ``"full"``
    """
    settings = current_settings()
    defaults: dict[str, Any] = {}
    if settings.primary_key is not False and "type" in settings.primary_key:
        defaults["type"] = settings.primary_key["type"]
    defaults.update(settings.foreign_key)
    column = column if column is not None else str(defaults.get("column", "id"))
    type = type if type is not None else str(defaults.get("type", "bigserial"))
    _name("referenced table", table)
    _name("referenced column", column)
    check_optional_name(name, "foreign key constraint name")
    check_optional_name(prefix, "referenced table prefix")
    for own, target in (with_ or {}).items():
        _name("column", own)
        _name("referenced column", target)
    if isinstance(on_delete, tuple | list):
        if (
            len(on_delete) != 2
            or on_delete[0] not in ("nilify", "default")
            or not isinstance(on_delete[1], list | tuple)
            or not all(isinstance(c, str) for c in on_delete[1])
        ):
            raise ArgumentError(f"unknown on_delete value: {on_delete!r}")
        on_delete = (on_delete[0], tuple(on_delete[1]))
    elif on_delete not in _ON_DELETE:
        raise ArgumentError(f"unknown on_delete value: {on_delete!r}")
    if on_update not in _ON_UPDATE:
        raise ArgumentError(f"unknown on_update value: {on_update!r}")
    if match not in (None, "simple", "partial", "full"):
        raise ArgumentError(f"unknown match value: {match!r}")
    return Reference(
        table=table,
        column=column,
        type=type,
        name=name,
        prefix=prefix,
        on_delete=on_delete,
        on_update=on_update,
        validate=validate,
        with_=tuple((with_ or {}).items()),
        match=match,
    )


def _word(part: str) -> str:
    return re.sub(r"\W", "_", part).rstrip("_")


def _column_word(column: object) -> str:
    if isinstance(column, tuple):
        return _column_word(column[1])
    if isinstance(column, Fragment):
        return _word(column.sql)
    return _word(str(column))


_DIRECTIONS = ("asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last")


def _index_column(column: object) -> IndexColumn:
    if isinstance(column, str | Fragment) and (not isinstance(column, str) or column):
        return column
    if (
        isinstance(column, tuple)
        and len(column) == 2
        and column[0] in _DIRECTIONS
        and isinstance(column[1], str | Fragment)
    ):
        return (column[0], column[1])
    raise ArgumentError(
        f"expected an index column as a name, an expression, fragment(sql) or (direction, column) with a "
        f"direction among {', '.join(_DIRECTIONS)}, got: {column!r}"
    )


def index(
    table: str,
    columns: str | Sequence[str | Fragment | tuple[str, str | Fragment]],
    *,
    name: str | None = None,
    unique: bool = False,
    prefix: str | None = None,
    concurrently: bool = False,
    using: str | None = None,
    include: Sequence[str | Fragment] = (),
    where: str | None = None,
    nulls_distinct: bool | None = None,
    only: bool = False,
    options: str | None = None,
    comment: str | None = None,
) -> Index:
    """An index on ``columns`` of ``table``, named ``<table>_<columns>_index`` unless ``name`` is given.

    A column that is a plain name (``"title"``) is quoted; anything else (``"lower(title)"``) or
    ``fragment(sql)`` is sent as written; ``("desc", "title")`` sets the order.

    >>> index("posts", ["author_id", ("desc", "inserted_at")]).name
    'posts_author_id_inserted_at_index'
    """
    _name("table", table)
    _prefix(prefix)
    cols = (columns,) if isinstance(columns, str) else tuple(columns)
    if not cols:
        raise ArgumentError(f"cannot index no columns of table {table!r}")
    read = tuple(_index_column(c) for c in cols)
    if nulls_distinct is not None and not unique:
        raise ArgumentError("the `nulls_distinct` option can only be used with unique indexes")
    check_optional_name(prefix, "index prefix")
    if name is None:
        name = check_generated_name(
            "_".join([_word(table), *(_column_word(c) for c in read), "index"]), "index name", "index(..., name=)"
        )
    else:
        _name("index", name)
    return Index(
        table=table,
        columns=read,
        name=name,
        unique=unique,
        prefix=prefix,
        concurrently=concurrently,
        using=using,
        include=tuple(include),
        where=where,
        nulls_distinct=nulls_distinct,
        only=only,
        options=options,
        comment=comment,
    )


class IndexOpts(TypedDict, total=False):
    """The keyword options of :func:`index` but ``unique`` (for :func:`unique_index`)."""

    name: str | None
    prefix: str | None
    concurrently: bool
    using: str | None
    include: Sequence[str | Fragment]
    where: str | None
    nulls_distinct: bool | None
    only: bool
    options: str | None
    comment: str | None


def unique_index(
    table: str,
    columns: str | Sequence[str | Fragment | tuple[str, str | Fragment]],
    **opts: Unpack[IndexOpts],
) -> Index:
    """:func:`index` with ``unique=True``."""
    return index(table, columns, unique=True, **opts)


def constraint(
    table: str,
    name: str,
    *,
    check: str | None = None,
    exclude: str | None = None,
    prefix: str | None = None,
    validate: bool = True,
    comment: str | None = None,
) -> Constraint:
    """A check (``check="price > 0"``) or exclusion (``exclude="gist (room WITH =, during WITH &&)"``)
    constraint; ``create`` needs exactly one of them, ``drop`` neither."""
    _name("table", table)
    _name("constraint", name)
    check_optional_name(prefix, "constraint prefix")
    return Constraint(
        table=table, name=name, check=check, exclude=exclude, prefix=prefix, validate=validate, comment=comment
    )


def fragment(sql: str) -> Fragment:
    """SQL used as written: a column default (``default=fragment("now()")``) or an index expression."""
    if not isinstance(sql, str):
        raise ArgumentError(f"expected fragment SQL as a string, got: {sql!r}")
    return Fragment(sql)
