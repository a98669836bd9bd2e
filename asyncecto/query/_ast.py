"""Query AST nodes: frozen values compared by structure. Parameters hold their values; the planner lifts them out.

The :class:`~asyncecto.query.Query` value that holds them is in ``_query``.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import attrs

__all__ = (
    "And",
    "Arith",
    "AssocPath",
    "Compare",
    "Const",
    "Contains",
    "Exists",
    "Expr",
    "FieldRef",
    "Filter",
    "FilterAgg",
    "Fragment",
    "Frame",
    "Func",
    "HasKey",
    "Ident",
    "In",
    "IntervalAdd",
    "IsNil",
    "Join",
    "JsonPath",
    "Like",
    "Neg",
    "Not",
    "Now",
    "Or",
    "OrderBy",
    "Over",
    "Param",
    "ParentRef",
    "PathColumn",
    "PathTable",
    "Quantified",
    "SelectFields",
    "Take",
    "SelectedAs",
    "Shape",
    "Source",
    "SourceRef",
    "Splice",
    "Subquery",
    "TypeCast",
    "UnsafeFragment",
    "Values",
)

_T = TypeVar("_T")


@attrs.frozen
class Source:
    """What a query reads from: a table, optionally mapped onto a schema, or a subquery (``query``).

    A subquery source exposes what its query selects: its struct's fields, or a dict's keys.
    """

    table: str
    schema: type | None = None
    prefix: str | None = None
    query: Any = None
    values: Any = None  # Values, for a values(...) source
    fragment: Any = None  # Fragment, for a fragment(...) source
    hints: tuple[str, ...] = ()  # SQL written after the source's alias (``TABLESAMPLE SYSTEM(50)``)


@attrs.frozen
class Values:
    """``values(rows, types)``: a constant table; every cell is a parameter of its column's type."""

    fields: tuple[str, ...]
    types: tuple[Any, ...]
    rows: tuple[tuple[Any, ...], ...]


@attrs.frozen
class FieldRef:
    """``binding.name``: a field of the ``binding``-th source (0 is the ``from``, then joins in order)."""

    binding: int
    name: str


@attrs.frozen
class SourceRef:
    """A whole source (``lambda p: p`` in a select): its struct."""

    binding: int


@attrs.frozen
class Take:
    """A nested field list: the fields of a preloaded association's rows, and of theirs
    (``{"comments": ["id", "body", {"author": ["name"]}]}``)."""

    fields: tuple[str, ...]
    assocs: tuple[tuple[str, Take], ...] = ()


@attrs.frozen
class SelectFields:
    """Some fields of a source as a struct (``select(["id", "title"])``, ``struct(p, [...])``) or a
    dict (``map_(p, [...])``); a struct's other fields keep their defaults. ``assocs``: nested field
    lists of preloaded associations (Ecto's ``struct(p, [:id, comments: [:body]])``)."""

    binding: int
    fields: tuple[str, ...]
    assocs: tuple[tuple[str, Take], ...] = ()
    as_map: bool = False


@attrs.frozen
class Param:
    """A value bound as a ``$n`` parameter; never inlined into SQL."""

    value: Any


@attrs.frozen
class Compare:
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in"]
    left: Expr
    right: Expr


@attrs.frozen
class IsNil:
    arg: Expr


@attrs.frozen
class And:
    """Every one of ``args`` (SQL ``AND``)."""

    args: tuple[Expr, ...]


@attrs.frozen
class Or:
    """Any of ``args`` (SQL ``OR``)."""

    args: tuple[Expr, ...]


@attrs.frozen
class Not:
    arg: Expr


@attrs.frozen
class Arith:
    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr


@attrs.frozen
class Neg:
    arg: Expr


@attrs.frozen
class In:
    """``left IN right`` where right is a list parameter (``= ANY($n)``) or an array field."""

    left: Expr
    right: Expr


@attrs.frozen
class Like:
    op: Literal["like", "ilike"]
    left: Expr
    right: Expr


@attrs.frozen
class Fragment:
    """Raw SQL with ``?`` placeholders filled by ``args`` (each an expression or a parameter)."""

    parts: tuple[str, ...]
    args: tuple[Expr, ...]
    columns: tuple[str, ...] = ()  # ``columns=``: the names of a fragment source's columns


@attrs.frozen
class Func:
    """A SQL function or aggregate: ``count``, ``sum``, ``avg``, ``min``, ``max``, ``coalesce``.

    :ivar distinct: ``count(x, distinct=True)``; :ivar star: ``count()`` (``count(*)``)
    """

    name: str
    args: tuple[Expr, ...]
    distinct: bool = False
    star: bool = False


@attrs.frozen
class JsonPath:
    """``x["a"][0]``: a path into a JSON value (PostgreSQL ``#>``); the path is one parameter,
    or an ``ARRAY[...]`` when an element is an expression (``x[p.key]``)."""

    arg: Expr
    path: tuple[Any, ...]  # str | int | Expr


@attrs.frozen
class Contains:
    """``x.contains(v)``: a JSON value containing ``v`` (``@>``), an array containing the
    elements of a list (``@>``) or one value (``v = ANY(x)``); the planner picks by ``x``'s type."""

    left: Expr
    right: Expr


@attrs.frozen
class HasKey:
    """``x.has_key(k)`` (``?``), ``x.has_any_keys(ks)`` (``?|``), ``x.has_all_keys(ks)`` (``?&``) on JSON."""

    op: Literal["?", "?|", "?&"]
    arg: Expr
    keys: Expr


@attrs.frozen
class Now:
    """The application's current time shifted by ``amount`` ``unit``s (``ago``/``from_now``), taken at planning."""

    amount: Any
    unit: str


@attrs.frozen
class IntervalAdd:
    """``datetime_add``/``date_add``: ``arg + amount * interval '1 unit'`` in the database."""

    arg: Expr
    amount: Expr
    unit: str
    date: bool = False


@attrs.frozen
class Ident:
    """``identifier(name)`` inside a fragment: a quoted identifier, written into the SQL.

    A ``table`` identifier (an :class:`AssocPath`'s intermediate table) is written under its
    own ``prefix``, else the effective prefix of binding ``binding``, known when planned.
    """

    name: str
    table: bool = False
    prefix: str | None = None
    binding: int = 0


@attrs.frozen
class Const:
    """``constant(value)`` inside a fragment: a literal written into the SQL (each value is a new plan)."""

    value: Any


@attrs.frozen
class Splice:
    """``splice(values)`` inside a fragment: one parameter per value, separated by commas."""

    values: tuple[Any, ...]


@attrs.frozen
class Subquery:
    """A query used as a value: ``x.in_(subquery(q))``, ``exists(subquery(q))``, or a scalar."""

    query: Any


@attrs.frozen
class Exists:
    arg: Subquery


@attrs.frozen
class Quantified:
    """``any_(subquery(q))`` / ``all_(subquery(q))`` on the right of a comparison."""

    quantifier: Literal["ANY", "ALL"]
    arg: Subquery


@attrs.frozen
class FilterAgg:
    """``filter_(agg, cond)``: ``agg FILTER (WHERE cond)``."""

    agg: Expr
    cond: Expr


@attrs.frozen
class Frame:
    """A window frame: ``rows_between(-1, 0)``; a bound is ``None`` (UNBOUNDED), negative
    (PRECEDING), ``0`` (CURRENT ROW) or positive (FOLLOWING)."""

    kind: Literal["rows", "range", "groups"]
    start: int | None
    end: int | None
    exclude: str | None = None


@attrs.frozen
class UnsafeFragment:
    """SQL written into the statement as is (a ``conflict_target`` for partial or expression
    indexes, a table hint)."""

    sql: str


@attrs.frozen
class Over:
    """``over(func, window)``: a window function over a named window or an inline one."""

    func: Expr
    window: str | None = None
    partition_by: tuple[Expr, ...] = ()
    order_by: tuple[Any, ...] = ()
    frame: Expr | Frame | None = None


@attrs.frozen
class ParentRef:
    """``parent_as("p").field`` inside a subquery: a field of the enclosing query's named binding."""

    name: str
    field: str


@attrs.frozen
class SelectedAs:
    """``selected_as(expr, "alias")`` in a select (``expr AS "alias"``), or a reference to the alias (``expr=None``)."""

    expr: Expr | None
    alias: str


@attrs.frozen
class TypeCast:
    """``type_(expr, T)``: the expression's type, for casting its parameters and loading its value."""

    arg: Expr
    type: Any


@attrs.frozen
class PathColumn:
    """A column of the intermediate table tagged ``table`` inside an :class:`AssocPath`."""

    table: str
    column: str


@attrs.frozen
class PathTable:
    """An intermediate table of an :class:`AssocPath`; ``tag`` names it (``j0``: a join table, ``h0``: a hop)."""

    table: Ident
    tag: str


@attrs.frozen
class AssocPath:
    """A join condition along an association path (many_to_many, ``through``): rows of the
    intermediate ``tables`` link the owner binding to the joined one. ``links`` are equalities of
    columns (outer fields or :class:`PathColumn`), ``conds`` the hops' ``where=``/``join_where=``.
    The adapter decides how to write it (PostgreSQL: ``EXISTS`` over the tables)."""

    name: str
    tables: tuple[PathTable, ...]
    links: tuple[tuple[Expr, Expr], ...]
    conds: tuple[Expr, ...]


Expr = (
    FieldRef
    | SourceRef
    | SelectFields
    | Param
    | Compare
    | IsNil
    | And
    | Or
    | Not
    | Arith
    | Neg
    | In
    | Like
    | Fragment
    | Func
    | TypeCast
    | JsonPath
    | Now
    | IntervalAdd
    | Ident
    | Const
    | Splice
    | Subquery
    | Exists
    | Quantified
    | FilterAgg
    | Over
    | ParentRef
    | SelectedAs
    | AssocPath
    | PathColumn
    | Contains
    | HasKey
)


@attrs.frozen
class Shape:
    """A select's result shape: ``kind`` is ``"tuple"``, ``"list"``, ``"dict"`` (``keys`` set) or
    ``"merge"`` (``items[0]`` merged with the dict ``items[1]``: ``select_merge``)."""

    kind: Literal["tuple", "list", "dict", "merge"]
    items: tuple[Any, ...]
    keys: tuple[Any, ...] = ()


@attrs.frozen
class Filter:
    """One ``where``/``having`` (``op="and"``) or ``or_where``/``or_having`` (``op="or"``) clause."""

    op: Literal["and", "or"]
    expr: Expr


@attrs.frozen
class OrderBy:
    """A sort key; direction is ``asc``/``desc`` with optional ``_nulls_first``/``_nulls_last``."""

    direction: str
    expr: Expr


@attrs.frozen
class Join:
    """``kind`` is inner, left, right, full or cross; ``on`` is ``None`` for cross joins."""

    kind: str
    source: Source
    on: Expr | None
    name: str | None = None
