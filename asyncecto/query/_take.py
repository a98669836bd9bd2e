"""Field lists in a select: Ecto's ``struct(p, fields)`` and ``map(p, fields)``.

A field list names fields of a source and, as a dict entry (Ecto's keyword list), the fields of
a preloaded association's rows, nested as deep as the preloads go::

    select(["id", "title", {"comments": ["id", "body", {"author": ["name"]}]}])   # structs
    select(lambda p: struct(p, ["id", {"comments": ["body"]}]))                   # the same
    select(lambda p: map_(p, ["id", {"comments": ["body"]}]))                     # dicts

Every association given a field list must be preloaded (as Ecto requires); the preloader reads
only the listed fields, plus the keys it needs to stitch children to parents (see
``asyncecto.repo._preload_take``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asyncecto._names import check_name
from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from ._ast import FieldRef, SelectFields, Shape, Take
from ._expr import Binding, E
from ._query import Query

__all__ = ("as_dict", "check_preloaded", "map_", "parse_fields", "select_fields", "struct")


def select_fields(q: Query[Any], fields: Sequence[Any]) -> SelectFields | Shape:
    """``select(["id", "title"])``: a partial struct of the ``from`` source (dict entries: the
    fields of preloaded associations, ``{"comments": ["body"]}``); of a schemaless source, a dict
    of those columns (as Ecto's ``select: [:id, :title]``)."""
    schema = q.source.schema
    if schema is None:
        names = _flat_names(fields, "select of field names")
        return Shape("dict", tuple(FieldRef(0, check_name(n, "column")) for n in names), names)
    plain, assocs = parse_fields(schema, fields)
    return SelectFields(0, plain, assocs)


def struct(source: Binding, fields: Sequence[Any], /) -> E:
    """Ecto's ``struct(p, fields)`` in a select: the source ``p`` as a struct with only ``fields``
    loaded (the others keep their defaults). A dict entry gives the fields of a preloaded
    association: ``select(lambda p: struct(p, ["id", {"comments": ["id", "body"]}]))``.
    ``select(["id", ...])`` is the same for the ``from`` source."""
    index, schema = _binding(source, "struct")
    if schema is None:
        raise QueryError(
            f"struct(b{index}, {list(fields)!r}) needs a schema source; b{index} is schemaless: use map_ instead"
        )
    plain, assocs = parse_fields(schema, fields)
    _no_nesting_on_joins(index, assocs, "struct")
    return E(SelectFields(index, plain, assocs))


def map_(source: Binding, fields: Sequence[Any], /) -> Any:
    """Ecto's ``map(p, fields)`` in a select: the source ``p`` as a dict of ``fields``; a dict
    entry gives a preloaded association's fields, loaded as dicts too:
    ``select(lambda p: map_(p, ["id", {"comments": ["body"]}]))`` gives
    ``{"id": 1, "comments": [{"body": "…"}]}``."""
    index, schema = _binding(source, "map_")
    if schema is None:
        return {n: E(FieldRef(index, check_name(n, "column"))) for n in _flat_names(fields, "map_")}
    plain, assocs = parse_fields(schema, fields)
    _no_nesting_on_joins(index, assocs, "map_")
    return E(SelectFields(index, plain, assocs, as_map=True))


def _binding(source: Any, what: str) -> tuple[int, type | None]:
    if not isinstance(source, Binding):
        raise QueryError(
            f"{what}(source, fields) takes a binding of the query, as in select(lambda p: {what}(p, ['id'])); "
            f"got {source!r}"
        )
    return source._index, source._schema


def _no_nesting_on_joins(index: int, assocs: tuple[tuple[str, Take], ...], what: str) -> None:
    if index and assocs:
        raise QueryError(
            f"{what}(b{index}, ...) gives association fields ({', '.join(n for n, _ in assocs)}) for a joined "
            "source; nested field lists apply to the from source's preloads: give them there"
        )


def _flat_names(fields: Any, what: str) -> tuple[str, ...]:
    if isinstance(fields, str) or not isinstance(fields, Sequence) or not fields:
        raise QueryError(f"{what} expects a non-empty list of field names, got {fields!r}")
    for n in fields:
        if not isinstance(n, str):
            raise QueryError(f"{what} of a schemaless source takes column names only, got {n!r}")
    return tuple(dict.fromkeys(fields))


def parse_fields(schema: type, fields: Any) -> tuple[tuple[str, ...], tuple[tuple[str, Take], ...]]:
    """The plain fields and the nested association field lists of ``fields`` on ``schema``,
    checked: every name a loadable field, every dict key a (non-through) association."""
    info = schema_info(schema)
    if isinstance(fields, str | Mapping) or not isinstance(fields, Sequence) or not fields:
        raise QueryError(
            f"a field list for {info.name} must be a non-empty list of field names and dicts of association "
            f'field lists, such as ["id", {{"comments": ["id", "body"]}}]; got {fields!r}'
        )
    plain: dict[str, None] = {}
    assocs: dict[str, Take] = {}
    for item in fields:
        if isinstance(item, str):
            f = info.fields.get(item)
            if f is None or f.virtual:
                if item in info.associations:
                    raise QueryError(
                        f"{item!r} is an association of {info.name}, not a field: give the fields to load as "
                        f'{{"{item}": ["id", ...]}} and preload {item!r}'
                    )
                known = ", ".join(n for n, x in info.fields.items() if not x.virtual)
                raise QueryError(
                    f"field {item!r} does not exist in schema {info.name}; fields are: {known} "
                    f"(fix: drop {item!r} from the field list)"
                )
            plain[item] = None
        elif isinstance(item, Mapping):
            for name, sub in item.items():
                a = info.associations.get(name) if isinstance(name, str) else None
                if a is None:
                    raise QueryError(
                        f"schema {info.name} has no association {name!r} for a nested field list; associations: "
                        f"{', '.join(info.associations) or 'none declared'}"
                    )
                if a.through is not None:
                    raise QueryError(
                        f"association {name!r} of {info.name} goes through {' -> '.join(a.through)}; a field list "
                        "cannot be given for it: nest the field lists along its hops instead, as in "
                        f'{{"{a.through[0]}": ["id", {{"{a.through[1]}": [...]}}]}}'
                    )
                sub_plain, sub_assocs = parse_fields(a.related, sub)
                prev = assocs.get(name)
                if prev is not None:
                    sub_plain = tuple(dict.fromkeys((*prev.fields, *sub_plain)))
                    sub_assocs = _merge(prev.assocs, sub_assocs)
                assocs[name] = Take(sub_plain, sub_assocs)
        else:
            raise QueryError(
                f"a field list for {info.name} holds field names and dicts of association field lists, got {item!r}"
            )
    if not plain and assocs:
        raise QueryError(f"a field list for {info.name} names no field of {info.name} itself, got {fields!r}")
    return tuple(plain), tuple(assocs.items())


def _merge(a: tuple[tuple[str, Take], ...], b: tuple[tuple[str, Take], ...]) -> tuple[tuple[str, Take], ...]:
    out = dict(a)
    for name, t in b:
        prev = out.get(name)
        out[name] = (
            t if prev is None else Take(tuple(dict.fromkeys((*prev.fields, *t.fields))), _merge(prev.assocs, t.assocs))
        )
    return tuple(out.items())


def as_dict(sel: SelectFields) -> Shape:
    """A ``map_`` field list as the dict select it reads as (its association lists left to the
    preloader): ``{"id": p.id, "title": p.title}``."""
    return Shape("dict", tuple(FieldRef(sel.binding, k) for k in sel.fields), sel.fields)


def check_preloaded(
    schema: type | None,
    assocs: tuple[tuple[str, Take], ...],
    preloads: Sequence[Any],
    q: Any,
    path: tuple[str, ...] = (),
) -> None:
    """A :class:`QueryError` unless every association given a field list is preloaded, at every
    level (Ecto: association field lists only apply to preloaded associations)."""
    by_name = {n.name: n for n in preloads}
    for name, take in assocs:
        node = by_name.get(name)
        if node is None:
            owner = schema.__name__ if schema is not None else "the source"
            spec = repr(name)
            for step in reversed(path):
                spec = f"{{{step!r}: {spec}}}"
            raise QueryError(
                f"the select gives fields of association {name!r} of {owner}, which the query does not preload; "
                f"fix: add preload({spec}), or drop {name!r} from the field list: {q!r}"
            )
        related = schema_info(schema).associations[name].related if schema is not None else None
        check_preloaded(related, take.assocs, node.children, q, (*path, name))
