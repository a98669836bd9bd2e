"""Planning a select: which columns the SQL selects, and the reader that makes each row the
result (a struct, a value, or tuples/lists/dicts of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncecto.errors import QueryError

from ._ast import Param, SelectFields, Shape, SourceRef
from ._param_types import WholeNumber, literal_db_type
from ._plan import Col, PExpr, ReadShape, ReadStruct, ReadValue
from ._take import as_dict, check_preloaded

if TYPE_CHECKING:
    from ._planner import _Planner

__all__ = ("plan_select",)


def plan_select(p: _Planner, shape: Any, columns: list[PExpr]) -> Any:
    """The reader for a select ``shape``; its columns are appended to ``columns`` in order."""
    if shape is None:
        shape = SourceRef(0)
    if isinstance(shape, SelectFields) and shape.assocs:
        # association field lists are the preloader's (it plans the parents without them)
        check_preloaded(p.sources[shape.binding].schema, shape.assocs, p.q.preloads, p.q)
        shape = SelectFields(shape.binding, shape.fields, as_map=shape.as_map)
    if isinstance(shape, SelectFields) and shape.as_map:  # map_(p, fields): a dict of the fields
        return plan_select(p, as_dict(shape), columns)
    if isinstance(shape, SourceRef | SelectFields):
        binding = shape.binding
        info = p.infos[binding]
        if info is None:
            raise QueryError(f"queries without a schema need a select clause: {p.q!r}")
        names = shape.fields if isinstance(shape, SelectFields) else info.query_fields
        inner = p.sources[binding].query
        if isinstance(shape, SourceRef) and inner is not None and isinstance(inner.select, SelectFields):
            # a subquery that selected some fields of its struct: only those are there to read
            names = tuple(n for n in names if n in inner.select.fields)
        for n in names:
            columns.append(Col(binding, info.fields[n].source))
        own = p.q.joins[binding - 1].kind if binding > 0 else None
        later = p.q.joins[binding:]  # joins after this source (binding i is followed by joins[i:])
        nullable = own in ("left", "full", "left_lateral") or any(j.kind in ("right", "full") for j in later)
        src = p.sources[binding]
        derived = src.query is not None or src.values is not None
        table = info.source if derived and info.source else src.table
        return ReadStruct(src.schema, tuple(names), table, p.prefixes[binding], nullable)  # type: ignore[arg-type]
    if isinstance(shape, Shape):
        target, p.insert_target = p.insert_target, None
        if target is not None and shape.kind == "dict":
            # INSERT … SELECT: a value is typed by the field it fills (or, schemaless, by its column)
            readers = []
            for key, item in zip(shape.keys, shape.items, strict=True):
                if isinstance(item, Param):
                    columns.append(p.expr(item, target.get(key, (None, None)), "inferred"))
                    readers.append(ReadValue(None))
                else:
                    readers.append(plan_select(p, item, columns))
            return ReadShape(shape.kind, tuple(readers), shape.keys)
        items = tuple(plan_select(p, i, columns) for i in shape.items)
        return ReadShape(shape.kind, items, shape.keys)
    if isinstance(shape, SourceRef) and p.infos[shape.binding] is None:
        raise QueryError(f"cannot select the whole schemaless source {p.sources[shape.binding].table!r}: {p.q!r}")
    typ, _name = p.type_of(shape)
    if isinstance(shape, Param) and isinstance(shape.value, int) and literal_db_type(shape.value) == "numeric":
        typ = WholeNumber()  # an int beyond bigint, sent as numeric: read back as an int
    columns.append(p.expr(shape))
    return ReadValue(typ)
