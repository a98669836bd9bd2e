"""Pipe steps that build a :class:`Query`, and ``from_`` with its keyword form."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

import attrs

from asyncecto._names import check_name, check_optional_name
from asyncecto.errors import QueryError
from asyncecto.schema import is_schema, schema_info

from . import _expr
from ._ast import (
    And,
    Compare,
    Expr,
    FieldRef,
    Filter,
    Join,
    OrderBy,
    Over,
    Param,
    Query,
    SelectFields,
    Shape,
    Source,
    SourceRef,
    Subquery,
    Values,
)

__all__ = (
    "asc",
    "asc_nulls_first",
    "asc_nulls_last",
    "desc",
    "desc_nulls_first",
    "desc_nulls_last",
    "distinct",
    "except_",
    "except_all",
    "exclude",
    "first",
    "from_",
    "group_by",
    "having",
    "intersect",
    "intersect_all",
    "join",
    "last",
    "limit",
    "lock",
    "offset",
    "or_having",
    "or_where",
    "order_by",
    "preload",
    "select",
    "select_merge",
    "union",
    "union_all",
    "update",
    "values",
    "where",
    "windows",
    "with_cte",
    "with_ties",
)

_T = TypeVar("_T")
Step = Callable[[Query[_T]], Query[_T]]

DIRECTIONS = ("asc", "desc", "asc_nulls_first", "asc_nulls_last", "desc_nulls_first", "desc_nulls_last")
_KEYWORDS = (
    "as_",
    "prefix",
    "where",
    "or_where",
    "select",
    "order_by",
    "group_by",
    "having",
    "distinct",
    "limit",
    "offset",
    "lock",
    "join",
)


@overload
def from_(
    queryable: type[_T] | tuple[str, type[_T]] | Query[_T],
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[_T]: ...
@overload
def from_(
    queryable: str | Source | Subquery,
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[Any]: ...
def from_(
    queryable: type[_T] | tuple[str, type[_T]] | Query[_T] | str | Source | Subquery,
    *,
    as_: str | None = None,
    prefix: str | None = None,
    **clauses: Any,
) -> Query[Any]:
    """Start a query from a schema, a ``(table, Schema)`` pair, an existing query, a table name
    (schemaless: it needs a select), ``values(...)`` or a ``subquery(...)``.

    The keyword form gives the same query as the pipe form::

        from_(Weather, where=lambda w: w.prcp > 0, order_by="city", limit=5)
        from_(Weather) | where(lambda w: w.prcp > 0) | order_by("city") | limit(5)

    Keywords: ``where``, ``or_where``, ``select``, ``order_by``, ``group_by``, ``having``,
    ``distinct``, ``limit``, ``offset``, ``lock``, ``join`` (a ``join(...)`` step or a list of them).
    """
    q = to_query(queryable)
    if prefix is not None:
        q = attrs.evolve(q, source=attrs.evolve(q.source, prefix=check_name(prefix, "prefix")))
    if as_ is not None:
        q = _name(q, as_, 0)
    for key, value in clauses.items():
        if key not in _KEYWORDS:
            raise QueryError(f"unsupported {key!r} in keyword query expression; known keywords: {', '.join(_KEYWORDS)}")
        if key == "join":
            for step in value if isinstance(value, list | tuple) else [value]:
                q = step(q)
            continue
        q = _STEPS[key](value)(q)
    return q


def to_query(queryable: Any) -> Query[Any]:
    """A :class:`Query` for any queryable (schema, ``(table, Schema)``, query)."""
    if isinstance(queryable, Query):
        return queryable
    return Query(_source(queryable))


def values(rows: Any, types: Any, /) -> Source:
    """A constant table to query or join: ``from_(values([{"id": 1, "n": "a"}], {"id": int, "n": str}))``.

    ``types`` is a schema (the rows then load as its structs) or a mapping of field to type.
    Every value is a parameter; the SQL depends on the number of rows.
    """
    from asyncecto import types as t

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


def _source(queryable: Any) -> Source:
    if isinstance(queryable, Source) and queryable.values is not None:
        return queryable
    if isinstance(queryable, Subquery):
        inner = queryable.query
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
        and isinstance(queryable[0], str)
        and is_schema(queryable[1])
    ):
        if schema_info(queryable[1]).embedded:
            raise QueryError(f"cannot query embedded schema {queryable[1].__name__}: it has no table")
        return Source(check_name(queryable[0], "table"), queryable[1], None)
    raise QueryError(
        f"cannot build a query from {queryable!r}; expected a schema class, a (table, Schema) pair or a Query"
    )


def _name(q: Query[_T], name: str, index: int) -> Query[_T]:
    if name in q.aliases:
        raise QueryError(f"alias {name!r} is already taken in query {q!r}; named bindings must be unique")
    return attrs.evolve(q, aliases={**q.aliases, name: index})


def _check_field(q: Query[Any], name: str, binding: int = 0) -> None:
    schema = q.sources[binding].schema
    if schema is None:  # schemaless: the name is the column, written as given
        check_name(name, "column")
        return
    info = schema_info(schema)
    if name not in info.fields or info.fields[name].virtual:
        known = ", ".join(n for n, f in info.fields.items() if not f.virtual)
        raise QueryError(f"field {name!r} does not exist in schema {info.name}; fields are: {known}")


def _keyword_expr(q: Query[Any], given: Mapping[str, Any]) -> Expr:
    parts: list[Expr] = []
    for name, value in given.items():
        _check_field(q, name)
        if value is None:
            raise QueryError(
                f"comparing {name} with None is forbidden as it is unsafe; "
                "use is_nil() to check whether a field is NULL"
            )
        parts.append(Compare("==", FieldRef(0, name), _expr.node(value)))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _filter_step(attr: str, op: str, expr: Any, kw: Mapping[str, Any], what: str) -> Step[Any]:
    if isinstance(expr, Mapping):
        kw, expr = {**expr, **kw}, None
    if expr is not None and kw:
        raise QueryError(f"{what}() takes an expression or field=value filters, not both")
    if expr is None and not kw:
        raise QueryError(f"{what}() needs an expression or at least one field=value filter")

    def step(q: Query[_T]) -> Query[_T]:
        node = _keyword_expr(q, kw) if expr is None else _expr.to_expr(q, expr, what)
        return attrs.evolve(q, **{attr: (*getattr(q, attr), Filter(op, node))})  # type: ignore[arg-type]

    return step


def where(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Keep rows matching an expression, or whose fields all equal the given values (ANDed with earlier filters).

    ``where(lambda p: p.visits > 10)``, ``where(city="Kraków")``, ``where({"city": "Kraków"})``.
    Values are cast to each field's type and sent as parameters.
    """
    return _filter_step("wheres", "and", expr, fields, "where")


def or_where(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Like :func:`where`, but ORed with the filters before it; its own fields are ANDed.

    ``where(city="Kraków") | or_where(city="Oslo", temp_lo=0)`` keeps Kraków, and Oslo at 0.
    """
    return _filter_step("wheres", "or", expr, fields, "or_where")


def having(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Filter groups (after ``group_by``); ANDed with earlier ``having`` filters."""
    return _filter_step("havings", "and", expr, fields, "having")


def or_having(expr: Any = None, /, **fields: Any) -> Step[Any]:
    """Like :func:`having`, but ORed with the filters before it."""
    return _filter_step("havings", "or", expr, fields, "or_having")


class _Directed:
    __slots__ = ("direction", "value")

    def __init__(self, direction: str, value: Any) -> None:
        self.direction = direction
        self.value = value


def _direction(name: str) -> Callable[[Any], _Directed]:
    def make(value: Any) -> _Directed:
        return _Directed(name, value)

    make.__name__ = name
    make.__doc__ = f"Order by ``value`` {name.replace('_', ' ').upper()}: ``order_by(lambda p: {name}(p.x))``."
    return make


asc = _direction("asc")
desc = _direction("desc")
asc_nulls_first = _direction("asc_nulls_first")
asc_nulls_last = _direction("asc_nulls_last")
desc_nulls_first = _direction("desc_nulls_first")
desc_nulls_last = _direction("desc_nulls_last")


def _order_terms(q: Query[Any], value: Any, direction: str, what: str) -> list[OrderBy]:
    if isinstance(value, _expr.Dynamic):
        value = _expr.E(_expr.to_expr(q, value, what))
    elif callable(value) and not isinstance(value, _expr.E | _Directed):
        value = _expr.apply(q, value, what)
    items = value if isinstance(value, list | tuple) else [value]
    terms: list[OrderBy] = []
    for item in items:
        d = direction
        if isinstance(item, _Directed):
            d, item = item.direction, item.value
        if isinstance(item, _expr.Dynamic):
            item = _expr.E(_expr.to_expr(q, item, what))
        if isinstance(item, str):
            _check_field(q, item)
            terms.append(OrderBy(d, FieldRef(0, item)))
        elif isinstance(item, _expr.E):
            terms.append(OrderBy(d, item.node))
        else:
            raise QueryError(f"{what} expects field names or expressions, got {item!r}")
    return terms


def order_by(fields: Any = None, /, **directions: Any) -> Step[Any]:
    """Order by fields or expressions; repeated calls append.

    ``order_by("name")``, ``order_by(["a", "b"])``, ``order_by(desc="inserted_at")``,
    ``order_by(lambda p: [desc(p.inserted_at), p.id])``. Directions: asc, desc and their
    ``_nulls_first``/``_nulls_last`` forms; keyword directions apply in the order written.
    """
    for d in directions:
        if d not in DIRECTIONS:
            raise QueryError(f"order_by got unknown direction {d!r}; use one of {', '.join(DIRECTIONS)}")
    if (fields is None or (isinstance(fields, list | tuple) and not fields)) and not directions:
        raise QueryError("order_by() needs at least one field")

    def step(q: Query[_T]) -> Query[_T]:
        terms = _order_terms(q, fields, "asc", "order_by") if fields is not None else []
        for d, value in directions.items():
            terms += _order_terms(q, value, d, "order_by")
        return attrs.evolve(q, order_bys=q.order_bys + tuple(terms))

    return step


def group_by(fields: Any, /) -> Step[Any]:
    """Group rows: ``group_by("city")``, ``group_by(["a", "b"])``, ``group_by(lambda p: p.city)``."""

    def step(q: Query[_T]) -> Query[_T]:
        terms = _order_terms(q, fields, "asc", "group_by")
        return attrs.evolve(q, group_bys=q.group_bys + tuple(t.expr for t in terms))

    return step


def distinct(value: Any = True, /) -> Step[Any]:
    """``distinct(True)`` for ``SELECT DISTINCT``; fields or expressions for ``DISTINCT ON (...)``.

    As in Ecto, ``DISTINCT ON`` expressions are also put first in ``ORDER BY``.
    """

    def step(q: Query[_T]) -> Query[_T]:
        if isinstance(value, bool):
            return attrs.evolve(q, distinct=value)
        return attrs.evolve(q, distinct=tuple(_order_terms(q, value, "asc", "distinct")))

    return step


def select(value: Any, /) -> Step[Any]:
    """What each row becomes: ``select(lambda p: p)``, ``select(lambda p: (p.id, p.title))``,
    ``select(lambda p: {"id": p.id})``, or field names ``select(["id", "title"])`` for a partial struct.

    A query has one select; a second raises (use ``exclude("select")`` first).
    """

    def step(q: Query[_T]) -> Query[_T]:
        if q.select is not None:
            raise QueryError(
                f"only one select expression is allowed in query {q!r}; use exclude('select') before selecting again"
            )
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            shape: Any = _expr.select_fields(q, value)
        else:
            shape = _expr.to_select(q, value)
        return attrs.evolve(q, select=shape)

    return step


def _count(name: str, n: Any) -> Param:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise QueryError(f"{name}() expects a non-negative integer, got {n!r}")
    return Param(n)


def limit(n: int, /, *, with_ties: bool = False) -> Step[Any]:
    """Return at most ``n`` rows (the last ``limit`` wins; it drops an earlier ``with_ties``).

    ``with_ties=True`` also returns the rows tied with the last one (``FETCH FIRST n ROWS WITH TIES``;
    needs an ``order_by``).
    """
    p = _count("limit", n)
    return lambda q: attrs.evolve(q, limit=p, with_ties=with_ties)


def with_ties(value: bool = True, /) -> Step[Any]:
    """Turn ``with_ties`` on (or off) for the query's ``limit``."""

    def step(q: Query[_T]) -> Query[_T]:
        if q.limit is None:
            raise QueryError(f"with_ties needs a limit: {q!r}")
        return attrs.evolve(q, with_ties=value)

    return step


def select_merge(value: Any, /) -> Step[Any]:
    """Merge a dict of expressions into the select: into the struct (its fields, e.g. virtual ones) or a dict.

    ``select_merge(lambda p: {"comment_count": count(c.id)})``; with no select it merges into the ``from`` struct.
    """

    def step(q: Query[_T]) -> Query[_T]:
        extra = _expr.to_select(q, value)
        if not (isinstance(extra, Shape) and extra.kind == "dict"):
            raise QueryError(f"select_merge expects a dict of expressions, got {value!r}")
        base = q.select if q.select is not None else SourceRef(0)
        target = base.items[0] if isinstance(base, Shape) and base.kind == "merge" else base
        if isinstance(target, SourceRef | SelectFields):
            schema = q.sources[target.binding].schema
            if schema is not None:
                info = schema_info(schema)
                for key in extra.keys:
                    if key not in info.fields:
                        raise QueryError(
                            f"select_merge cannot set {key!r}: {info.name} has no such field; known fields: "
                            f"{', '.join(info.fields)} (declare a virtual field to hold computed values)"
                        )
        elif not (isinstance(target, Shape) and target.kind == "dict"):
            raise QueryError(f"select_merge can merge into a struct or a dict select, not {q.select!r}")
        if isinstance(base, Shape) and base.kind == "merge":
            merged = Shape("dict", base.items[1].items + extra.items, base.items[1].keys + extra.keys)
            return attrs.evolve(q, select=Shape("merge", (base.items[0], merged)))
        return attrs.evolve(q, select=Shape("merge", (base, extra)))

    return step


def windows(**definitions: Mapping[str, Any]) -> Step[Any]:
    """Name windows for :func:`over`: ``windows(w={"partition_by": lambda p: p.city, "order_by": ...})``."""

    for name in definitions:
        check_name(name, "window name")

    def step(q: Query[_T]) -> Query[_T]:
        defs = list(q.windows)
        for name, spec in definitions.items():
            if any(n == name for n, _ in defs):
                raise QueryError(f"window {name!r} is defined twice in {q!r}")
            unknown = set(spec) - {"partition_by", "order_by"}
            if unknown:
                raise QueryError(f"unknown window options {sorted(unknown)}; use partition_by and order_by")
            parts = spec.get("partition_by")
            orders = spec.get("order_by")
            if callable(parts):
                parts = _expr.apply(q, parts, "windows")
            if callable(orders):
                orders = _expr.apply(q, orders, "windows")
            over = _expr.over(_expr.count(), partition_by=parts, order_by=orders).node
            assert isinstance(over, Over)
            defs.append((name, over))
        return attrs.evolve(q, windows=tuple(defs))

    return step


def _combine(kind: str) -> Callable[[Any], Step[Any]]:
    def combinator(other: Any, /) -> Step[Any]:
        def step(q: Query[_T]) -> Query[_T]:
            return attrs.evolve(q, combinations=(*q.combinations, (kind, to_query(other))))

        return step

    combinator.__name__ = kind
    combinator.__doc__ = (
        f"``{kind.upper().replace('_', ' ')}`` with another query (same select shape); the outer order_by, "
        "limit and offset apply to the combined rows (an order_by field of the first source is written as "
        "its output column name)."
    )
    return combinator


union = _combine("union")
union_all = _combine("union_all")
except_ = _combine("except")
except_all = _combine("except_all")
intersect = _combine("intersect")
intersect_all = _combine("intersect_all")


def with_cte(name: str, /, *, as_: Any, recursive: bool | None = None) -> Step[Any]:
    """A common table expression: ``with_cte("tree", as_=query)``; read it with ``from_(("tree", Schema))``
    or ``join(..., ("tree", Schema), ...)``. ``recursive=True`` makes every CTE of the query recursive.
    """
    check_name(name, "CTE name")

    def step(q: Query[_T]) -> Query[_T]:
        if any(n == name for n, _ in q.ctes):
            raise QueryError(f"CTE {name!r} is defined twice in {q!r}")
        changes: dict[str, Any] = {"ctes": (*q.ctes, (name, to_query(as_)))}
        if recursive is not None:
            changes["recursive_ctes"] = recursive
        return attrs.evolve(q, **changes)

    return step


def offset(n: int, /) -> Step[Any]:
    """Skip the first ``n`` rows (the last ``offset`` wins)."""
    p = _count("offset", n)
    return lambda q: attrs.evolve(q, offset=p)


_LOCK = re.compile(
    r"FOR (UPDATE|NO KEY UPDATE|SHARE|KEY SHARE)"
    r'( OF ("[^"]+"|\w+)(, ?("[^"]+"|\w+))*)?'
    r"( NOWAIT| SKIP LOCKED)?",
    re.IGNORECASE,
)


def lock(clause: str, /) -> Step[Any]:
    """A row lock (the last ``lock`` wins): ``FOR UPDATE``, ``FOR NO KEY UPDATE``, ``FOR SHARE`` or
    ``FOR KEY SHARE``, optionally ``OF`` aliases and ``NOWAIT`` or ``SKIP LOCKED``.
    """
    if not isinstance(clause, str) or not _LOCK.fullmatch(clause.strip()):
        raise QueryError(
            f"lock() expects SQL for a row lock such as 'FOR UPDATE' or 'FOR SHARE SKIP LOCKED', got {clause!r}"
        )
    return lambda q: attrs.evolve(q, lock=clause.strip())


_JOIN_KINDS = ("inner", "left", "right", "full", "cross", "inner_lateral", "left_lateral", "cross_lateral")


def join(
    kind: str,
    target: Any,
    /,
    *,
    on: Any = None,
    as_: str | None = None,
    prefix: str | None = None,
) -> Step[Any]:
    """Join another source: ``join("left", Comment, on=lambda p, c: c.post_id == p.id, as_="c")``.

    ``kind`` is inner, left, right, full or cross. ``on`` is a function of every binding
    so far plus the new one (or ``field=other_field`` pairs are not supported: use a lambda).
    Rows of a left-joined source that matched nothing load as ``None``.
    """
    if kind not in _JOIN_KINDS:
        raise QueryError(f"unknown join kind {kind!r}; use one of {', '.join(_JOIN_KINDS)}")
    check_optional_name(prefix, "join prefix")
    is_assoc = callable(target) and not isinstance(target, type | Subquery | Source)
    if kind.startswith("cross") and on is not None:
        raise QueryError(f"a {kind} join takes no on= condition")
    if not kind.startswith("cross") and on is None and not is_assoc:
        article = "an" if kind == "inner" else "a"
        raise QueryError(f"{article} {kind} join needs on=, e.g. on=lambda p, c: c.post_id == p.id")

    def step(q: Query[_T]) -> Query[_T]:
        cond_fn = on
        if kind.endswith("_lateral") and not isinstance(target, Subquery):
            raise QueryError(f"an {kind} join needs subquery(query) as its target (use parent_as inside it)")
        if is_assoc:
            ref = _expr.apply(q, target, "join")
            if not isinstance(ref, _expr.AssocRef):
                raise QueryError(
                    "a join on an association takes a function returning one, "
                    f"such as lambda p: p.comments; got {ref!r}"
                )
            if kind.startswith("cross"):
                raise QueryError(f"a {kind} join cannot join an association; use inner or left")
            from ._assoc import assoc_join_on

            src = Source(ref.assoc.related.__schema__.source, ref.assoc.related)
            cond_fn = assoc_join_on(q, ref, len(q.sources))
        else:
            src = _source(target)
        if prefix is not None:
            src = attrs.evolve(src, prefix=prefix)
        index = len(q.sources)
        joined = attrs.evolve(q, joins=(*q.joins, Join(kind, src, None, as_)))
        if as_ is not None:
            joined = _name(joined, as_, index)
        cond = _expr.to_expr(joined, cond_fn, "join on") if cond_fn is not None else None
        if is_assoc and on is not None and cond is not None:  # extra conditions on an association join
            cond = _expr.node(_expr.E(cond) & _expr.E(_expr.to_expr(joined, on, "join on")))
        last = attrs.evolve(joined.joins[-1], on=cond)
        return attrs.evolve(joined, joins=(*joined.joins[:-1], last))

    return step


_EXCLUDABLE = {
    "where": ("wheres", ()),
    "order_by": ("order_bys", ()),
    "group_by": ("group_bys", ()),
    "having": ("havings", ()),
    "select": ("select", None),
    "distinct": ("distinct", False),
    "limit": ("limit", None),
    "offset": ("offset", None),
    "lock": ("lock", None),
    "update": ("updates", ()),
    "combinations": ("combinations", ()),
    "windows": ("windows", ()),
    "with_ctes": ("ctes", ()),
    "preload": ("preloads", ()),
}


def used_clauses(q: Query[Any], names: Sequence[str]) -> list[str]:
    """Which of the clauses ``names`` (``exclude()``'s names, and ``"join"``) ``q`` has, in that order.

    >>> from asyncecto import schema
    >>> @schema("notes")
    ... class Note:
    ...     text: str | None = None
    >>> used_clauses(from_(Note) | limit(1), ["join", "limit", "order_by"])
    ['limit']
    """
    used = []
    for name in names:
        if name == "join":
            present = bool(q.joins)
        else:
            attr, empty = _EXCLUDABLE[name]
            value = getattr(q, attr)
            # identity for None/False: a select may be an expression whose == builds SQL
            present = value is not empty if empty is None or empty is False else bool(value)
        if present:
            used.append(name)
    return used


def preload(*assocs: Any) -> Step[Any]:
    """Associations to load with the results.

    ``preload("comments")``, ``preload("comments", "author")``, nested
    ``preload({"comments": "author"})``, a custom query ``preload({"comments": query})`` or
    ``{"comments": (query, "author")}``, and join preloads that reuse a joined binding:
    ``preload(lambda p, c: {"comments": c})``. A custom query with ``limit``/``offset``
    applies them per parent. Names are checked against the schema when the query is built.
    """

    def step(q: Query[_T]) -> Query[_T]:
        from ._preloads import merge_preloads, normalize_preloads

        schema = q.source.schema
        nodes: list[Any] = []
        for spec in assocs:
            if callable(spec) and not isinstance(spec, type | Query):
                nodes.extend(normalize_preloads(_expr.apply(q, spec, "preload"), schema, bindings=True))
            else:
                nodes.extend(normalize_preloads(spec, schema))
        return attrs.evolve(q, preloads=merge_preloads([*q.preloads, *nodes]))

    return step


def put_query_prefix(prefix: str | None) -> Step[Any]:
    """The PostgreSQL schema for every table of the query that has none of its own (Ecto's
    ``put_query_prefix``): below ``from_``/``join`` ``prefix=`` and a schema's ``prefix``, and
    replaced by a call's ``prefix=``. ``None`` removes it.

    >>> from asyncecto import schema
    >>> @schema("notes")
    ... class Note:
    ...     text: str | None = None
    >>> from_(Note) | put_query_prefix("archive")
    Query<from_(Note) | put_query_prefix('archive')>
    """
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise QueryError(f"put_query_prefix expects a schema name or None, got {prefix!r}")
    check_optional_name(prefix, "query prefix")

    def step(q: Query[_T]) -> Query[_T]:
        return attrs.evolve(q, prefix=prefix)

    return step


def exclude(*clauses: str) -> Step[Any]:
    """Remove clauses: ``exclude("order_by", "limit")``; ``"join"`` removes every join and its alias."""
    for c in clauses:
        if c not in _EXCLUDABLE and c != "join":
            raise QueryError(f"cannot exclude {c!r}; use one of {', '.join([*_EXCLUDABLE, 'join'])}")

    def step(q: Query[_T]) -> Query[_T]:
        changes: dict[str, Any] = {}
        for c in clauses:
            if c == "join":
                changes["joins"] = ()
                changes["aliases"] = {k: v for k, v in q.aliases.items() if v == 0}
            else:
                attr, empty = _EXCLUDABLE[c]
                changes[attr] = empty
        return attrs.evolve(q, **changes)

    return step


def _pk_order(q: Query[Any], what: str) -> list[str]:
    schema = q.source.schema
    if schema is None or not schema_info(schema).primary_key:
        raise QueryError(f"{what}() needs an order_by or a schema with a primary key: {q!r}")
    return list(schema_info(schema).primary_key)


_REVERSE = {
    "asc": "desc",
    "desc": "asc",
    "asc_nulls_first": "desc_nulls_last",
    "asc_nulls_last": "desc_nulls_first",
    "desc_nulls_first": "asc_nulls_last",
    "desc_nulls_last": "asc_nulls_first",
}


def first(order: Any = None, /) -> Step[Any]:
    """Limit to one row, ordered by ``order``, else the query's order, else the primary key."""

    def step(q: Query[_T]) -> Query[_T]:
        if order is not None:
            q = order_by(order)(q)
        elif not q.order_bys:
            q = order_by(_pk_order(q, "first"))(q)
        return attrs.evolve(q, limit=Param(1), with_ties=False)

    return step


def last(order: Any = None, /) -> Step[Any]:
    """Limit to one row, ordered the reverse way of ``order``, the query's order, or the primary key."""

    def step(q: Query[_T]) -> Query[_T]:
        if order is not None:
            q = order_by(order)(q)  # appended to the existing order, then everything reversed (Ecto)
        elif not q.order_bys:
            q = order_by(_pk_order(q, "last"))(q)
        reversed_ = tuple(OrderBy(_REVERSE[o.direction], o.expr) for o in q.order_bys)
        return attrs.evolve(q, order_bys=reversed_, limit=Param(1), with_ties=False)

    return step


_UPDATE_OPS = ("set", "inc", "push", "pull")


def update(**ops: Mapping[str, Any]) -> Step[Any]:
    """The changes for ``repo.update_all``: ``update(set={"title": "x"}, inc={"visits": 1})``.

    Values may be plain values (sent as parameters) or functions of the bindings
    (``set={"visits": lambda p: p.visits * 2}``). Also ``push``/``pull`` for array fields.
    """
    for op in ops:
        if op not in _UPDATE_OPS:
            raise QueryError(f"unknown update operation {op!r}; use one of {', '.join(_UPDATE_OPS)}")

    def step(q: Query[_T]) -> Query[_T]:
        items: list[tuple[str, str, Expr]] = list(q.updates)
        for op, values in ops.items():
            for name, value in values.items():
                _check_field(q, name)
                if any(n == name for _o, n, _v in items):
                    raise QueryError(f"field {name!r} is updated twice in {q!r}")
                if callable(value) and not isinstance(value, _expr.E):
                    node = _expr.to_expr(q, value, "update")
                else:
                    node = _expr.node(value)
                items.append((op, name, node))
        return attrs.evolve(q, updates=tuple(items))

    return step


_STEPS: dict[str, Callable[[Any], Step[Any]]] = {
    "where": where,
    "or_where": or_where,
    "select": select,
    "order_by": order_by,
    "group_by": group_by,
    "having": having,
    "distinct": distinct,
    "limit": limit,
    "offset": offset,
    "lock": lock,
}
