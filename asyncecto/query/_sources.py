"""What a query reads from (a schema, a table, a subquery, ``values(...)``), and the checks every
clause builder shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from asyncecto import types as t
from asyncecto._names import check_name
from asyncecto.errors import QueryError
from asyncecto.schema import is_schema, schema_info

from ._ast import FieldRef, Fragment, SelectFields, Shape, Source, SourceRef, Subquery, UnsafeFragment, Values
from ._placeholder import BoundQuery
from ._query import Query

__all__ = ("check_field", "name_binding", "source_of", "Step", "to_query", "values", "with_hints")


_T = TypeVar("_T")


Step = Callable[[Query[_T]], Query[_T]]


def to_query(queryable: Any) -> Query[Any]:
    """A :class:`Query` for any queryable (schema, ``(table, Schema)``, query)."""
    if isinstance(queryable, Query):
        return queryable
    if isinstance(queryable, BoundQuery):  # prepared(*args): the query it stands for
        built: Query[Any] = queryable.query()
        return built
    return Query(source_of(queryable))


def values(rows: Any, types: Any, /) -> Source:
    """A constant table to query or join: ``from_(values([{"id": 1, "n": "a"}], {"id": int, "n": str}))``.

    ``types`` is a schema (the rows then load as its structs) or a mapping of field to type.
    Every value is a parameter; the SQL depends on the number of rows.
    """
    rows = list(rows)
    if not rows:
        raise QueryError("values() needs at least one row")
    schema = types if is_schema(types) else None
    if schema is not None:
        info = schema_info(schema)
        fields = tuple(f.name for f in info.persisted)  # fields a row leaves out are NULL
        typed = tuple(info.fields[n].type for n in fields)
    elif isinstance(types, Mapping):
        fields = tuple(check_name(n, "values() column") for n in types)
        typed = tuple(t.resolve(types[n]) for n in fields)
    else:
        raise QueryError(f"values() expects a schema or a mapping of field to type, got {types!r}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise QueryError(f"values() row {i} is not a mapping: {row!r}")
        extra = set(row) - set(fields)
        missing = set() if schema is not None else set(fields) - set(row)
        if missing or extra:
            raise QueryError(
                f"values() rows must have the fields {list(fields)}; row {i} "
                f"{'lacks ' + str(sorted(missing)) if missing else 'has unknown ' + str(sorted(extra))}"
            )
    data = tuple(tuple(row.get(n) for n in fields) for row in rows)
    return Source("values", schema, None, None, Values(fields, typed, data))


def source_of(queryable: Any) -> Source:
    if isinstance(queryable, Source):
        return queryable
    frag = getattr(queryable, "node", None)  # fragment(...): an E holding a Fragment
    if isinstance(frag, Fragment):
        # schemaless, aliased f<n>; its columns are what the SQL names (``... AS n``)
        return Source("fragment", None, None, fragment=frag)
    if isinstance(queryable, Subquery):
        inner = queryable.query
        sel = inner.select
        if isinstance(sel, SelectFields) and sel.as_map:  # map_(p, fields): a dict of its fields
            keys = sel.fields
            inner = attrs.evolve(inner, select=Shape("dict", tuple(FieldRef(sel.binding, k) for k in keys), keys))
            sel = inner.select
        schema = None
        if sel is None or (isinstance(sel, SourceRef | SelectFields) and sel.binding == 0):
            schema = inner.source.schema
        elif not (isinstance(sel, Shape) and sel.kind == "dict" and all(isinstance(k, str) for k in sel.keys)):
            raise QueryError(
                f"a subquery used as a source must select a struct or a dict of values with string keys, got {inner!r}"
            )
        return Source("subquery", schema, None, inner)
    if isinstance(queryable, str):
        if not queryable:
            raise QueryError("a table name cannot be empty")
        return Source(check_name(queryable, "table"), None, None)  # schemaless: needs a select
    if is_schema(queryable):
        info = schema_info(queryable)
        if info.source is None:
            raise QueryError(f"cannot query embedded schema {info.name}: it has no table")
        return Source(info.source, queryable, None)
    if (
        isinstance(queryable, tuple)
        and len(queryable) == 2
        and isinstance(getattr(queryable[0], "node", None), Fragment)
        and is_schema(queryable[1])
    ):  # (fragment(...), Schema): the fragment's rows read as the schema's fields (Ecto's {fragment, Schema})
        if schema_info(queryable[1]).embedded:
            raise QueryError(f"cannot map a fragment onto embedded schema {queryable[1].__name__}; use a table schema")
        return Source("fragment", queryable[1], None, fragment=queryable[0].node)
    if (
        isinstance(queryable, tuple)
        and len(queryable) == 2
        and isinstance(queryable[0], str)
        and is_schema(queryable[1])
    ):
        if schema_info(queryable[1]).embedded:
            raise QueryError(f"cannot query embedded schema {queryable[1].__name__}: it has no table")
        return Source(check_name(queryable[0], "table"), queryable[1], None)
    raise QueryError(
        f"cannot build a query from {queryable!r}; expected a schema class, a (table, Schema) pair or a Query"
    )


def with_hints(q: Query[_T], binding: int, hints: Any) -> Query[_T]:
    """``hints=[...]`` of ``from_``/``join``: SQL written after the source's alias, such as
    ``"TABLESAMPLE SYSTEM(50)"`` (Ecto's ``hints:``), or ``unsafe_fragment(sql)``. Written
    unchecked: never build a hint from user input. Only a table source takes hints."""
    items = [hints] if isinstance(hints, str | UnsafeFragment) else hints
    if isinstance(items, list | tuple):
        items = [h.sql if isinstance(h, UnsafeFragment) else h for h in items]
    if not isinstance(items, list | tuple) or not all(isinstance(h, str) and h.strip() for h in items):
        raise QueryError(f'hints expects a list of SQL strings such as ["TABLESAMPLE SYSTEM(50)"], got {hints!r}')
    for h in items:
        if "\x00" in h or ";" in h:
            raise QueryError(f"a hint cannot hold a NUL or a ';': {h!r}")
    src = q.sources[binding]
    if src.query is not None or src.values is not None or src.fragment is not None:
        raise QueryError(f"table hints can only be used with a table or schema source, got {hints!r} on {q!r}")
    src = attrs.evolve(src, hints=src.hints + tuple(h.strip() for h in items))
    if binding == 0:
        return attrs.evolve(q, source=src)
    j = q.joins[binding - 1]
    joins = (*q.joins[: binding - 1], attrs.evolve(j, source=src), *q.joins[binding:])
    return attrs.evolve(q, joins=joins)


def name_binding(q: Query[_T], name: str, index: int) -> Query[_T]:
    if name in q.aliases:
        raise QueryError(f"alias {name!r} is already taken in query {q!r}; named bindings must be unique")
    return attrs.evolve(q, aliases={**q.aliases, name: index})


def check_field(q: Query[Any], name: str, binding: int = 0) -> None:
    schema = q.sources[binding].schema
    if schema is None:  # schemaless: the name is the column, written as given
        check_name(name, "column")
        return
    info = schema_info(schema)
    if name not in info.fields or info.fields[name].virtual:
        known = ", ".join(n for n, f in info.fields.items() if not f.virtual)
        raise QueryError(f"field {name!r} does not exist in schema {info.name}; fields are: {known}")
