"""The functions usable inside query expressions: ``is_nil``, ``fragment``, aggregates, window
functions, intervals, subqueries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from asyncecto._names import check_name
from asyncecto.errors import QueryError

from ._ast import (
    Const,
    Exists,
    FilterAgg,
    Fragment,
    Frame,
    Func,
    Ident,
    IntervalAdd,
    IsNil,
    Now,
    Over,
    ParentRef,
    Quantified,
    SelectedAs,
    Splice,
    Subquery,
    TypeCast,
)
from ._expr import Binding, E, node, order_term
from ._sources import to_query

__all__ = (
    "ago",
    "all_",
    "any_",
    "avg",
    "coalesce",
    "constant",
    "count",
    "cume_dist",
    "date_add",
    "datetime_add",
    "dense_rank",
    "exists",
    "field",
    "filter_",
    "first_value",
    "fragment",
    "fragment_parts",
    "from_now",
    "groups_between",
    "json_extract_path",
    "identifier",
    "is_nil",
    "lag",
    "last_value",
    "lead",
    "max_",
    "min_",
    "nth_value",
    "ntile",
    "over",
    "parent_as",
    "percent_rank",
    "range_between",
    "rank",
    "row_number",
    "rows_between",
    "selected_as",
    "splice",
    "subquery",
    "sum_",
    "type_",
    "window_frame",
)


def is_nil(value: object) -> E:
    """``value IS NULL``."""
    return E(IsNil(node(value)))


def field(binding: Any, name: str) -> E:
    """A field chosen at run time: ``field(p, name)``."""
    if not isinstance(binding, Binding):
        raise QueryError(f"field() expects a binding as first argument, got {binding!r}")
    return binding._field(name)


def fragment(sql: str, *args: object, columns: Iterable[str] | None = None) -> E:
    """Raw SQL with ``?`` placeholders: ``fragment("lower(?)", p.title)``; values become parameters.

    ``\\?`` is a literal question mark. The SQL text itself is never built from values.
    ``columns=`` names the columns of a fragment used as a source (Ecto's ``columns:``):
    ``from_(fragment("generate_series(1, ?)", 3, columns=["n"])) | select(lambda f: f.n)``.
    """
    parts = fragment_parts(sql)
    if len(parts) - 1 != len(args):
        raise QueryError(f"fragment {sql!r} has {len(parts) - 1} placeholder(s) but got {len(args)} argument(s)")
    names: tuple[str, ...] = ()
    if columns is not None:
        if isinstance(columns, str):
            raise QueryError(f"fragment(..., columns=) expects a list of column names, got the string {columns!r}")
        names = tuple(check_name(c, "fragment column") for c in columns)
        if not names or len(set(names)) != len(names):
            raise QueryError(f"fragment(..., columns=) expects distinct column names, got {list(names)!r}")
    return E(Fragment(parts, tuple(node(a) for a in args), names))


def fragment_parts(sql: str) -> tuple[str, ...]:
    """A fragment's text split at its ``?`` placeholders (``\\?`` is a literal question mark)."""
    parts: list[str] = []
    current = ""
    i = 0
    while i < len(sql):
        if sql.startswith("\\?", i):
            current += "?"
            i += 2
            continue
        if sql[i] == "?":
            parts.append(current)
            current = ""
        else:
            current += sql[i]
        i += 1
    parts.append(current)
    return tuple(parts)


def type_(value: object, type: Any) -> E:
    """``value`` with a known type, used to cast its parameter and load its result."""
    return E(TypeCast(node(value), type))


def count(value: object = None, *, distinct: bool = False) -> E:
    """``count(*)`` with no argument, ``count(x)``, or ``count(DISTINCT x)``."""
    if value is None:
        return E(Func("count", (), star=True))
    return E(Func("count", (node(value),), distinct=distinct))


def sum_(value: object) -> E:
    """``sum(x)``; ``None`` over no rows."""
    return E(Func("sum", (node(value),)))


def avg(value: object) -> E:
    """``avg(x)``; ``None`` over no rows."""
    return E(Func("avg", (node(value),)))


def min_(value: object) -> E:
    """``min(x)``."""
    return E(Func("min", (node(value),)))


def max_(value: object) -> E:
    """``max(x)``."""
    return E(Func("max", (node(value),)))


def coalesce(first: object, second: object) -> E:
    """``coalesce(first, second)``: the first that is not NULL."""
    return E(Func("coalesce", (node(first), node(second))))


_UNITS = ("year", "month", "week", "day", "hour", "minute", "second", "millisecond", "microsecond")


def _unit(unit: str) -> str:
    if unit not in _UNITS:
        raise QueryError(f"unknown interval unit {unit!r}; use one of {', '.join(_UNITS)}")
    return unit


def ago(amount: int | float, unit: str) -> E:
    """The application's current time minus ``amount`` ``unit``s, taken when the query is planned."""
    return E(Now(-amount, _unit(unit)))


def from_now(amount: int | float, unit: str) -> E:
    """The application's current time plus ``amount`` ``unit``s, taken when the query is planned."""
    return E(Now(amount, _unit(unit)))


def datetime_add(value: object, amount: object, unit: str) -> E:
    """``value + amount * interval '1 unit'``, computed by the database."""
    return E(IntervalAdd(node(value), node(amount), _unit(unit)))


def date_add(value: object, amount: object, unit: str) -> E:
    """Like :func:`datetime_add`, for dates (the result is a date)."""
    return E(IntervalAdd(node(value), node(amount), _unit(unit), date=True))


def identifier(name: str) -> Ident:
    """A quoted identifier inside a fragment: ``fragment("? IS NOT NULL", identifier(col))``."""
    if not isinstance(name, str) or not name:
        raise QueryError(f"identifier expects a non-empty string, got {name!r}")
    return Ident(check_name(name, "identifier() name"))


def constant(value: int | float | str | bool) -> Const:
    """A literal written into a fragment's SQL (each different value compiles a new statement)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise QueryError(f"constant cannot write the non-finite number {value!r}; pass it as a parameter instead")
    if isinstance(value, bool | int | float):
        return Const(value)
    if isinstance(value, str) and "\x00" not in value:
        return Const(value)
    raise QueryError(f"constant expects a number, a bool or a string, got {value!r}")


def splice(values: Iterable[Any]) -> Splice:
    """Values spliced into a fragment as ``?, ?, ?``: ``fragment("? IN (?)", p.x, splice([1, 2]))``."""
    items = tuple(values)
    if not items:
        raise QueryError("splice expects at least one value")
    return Splice(items)


def subquery(query: Any) -> Subquery:
    """A query used as a value: ``p.id.in_(subquery(q))``, ``exists(subquery(q))``, or a scalar in a select."""
    q = to_query(query)
    if q.preloads:
        raise QueryError(f"cannot preload associations in a subquery; preload in the outer query: {q!r}")
    return Subquery(q)


def exists(sub: Subquery) -> E:
    """``EXISTS (subquery)``."""
    if not isinstance(sub, Subquery):
        raise QueryError(f"exists expects subquery(query), got {sub!r}")
    return E(Exists(sub))


def any_(sub: Subquery) -> E:
    """``x > any_(subquery(q))``: compare with ANY value the subquery returns."""
    if not isinstance(sub, Subquery):
        raise QueryError(f"any_ expects subquery(query), got {sub!r}")
    return E(Quantified("ANY", sub))


def all_(sub: Subquery) -> E:
    """``x > all_(subquery(q))``: compare with ALL values the subquery returns."""
    if not isinstance(sub, Subquery):
        raise QueryError(f"all_ expects subquery(query), got {sub!r}")
    return E(Quantified("ALL", sub))


def filter_(aggregate: object, condition: object) -> E:
    """``aggregate FILTER (WHERE condition)``: ``filter_(count(), p.visits > 10)``."""
    return E(FilterAgg(node(aggregate), node(condition)))


def _window_func(name: str, *args: object) -> E:
    return E(Func(name, tuple(node(a) for a in args)))


def row_number() -> E:
    """Window function ``row_number()``; use with :func:`over`."""
    return _window_func("row_number")


def rank() -> E:
    """Window function ``rank()``."""
    return _window_func("rank")


def dense_rank() -> E:
    """Window function ``dense_rank()``."""
    return _window_func("dense_rank")


def percent_rank() -> E:
    """Window function ``percent_rank()``."""
    return _window_func("percent_rank")


def cume_dist() -> E:
    """Window function ``cume_dist()``."""
    return _window_func("cume_dist")


def ntile(buckets: object) -> E:
    """Window function ``ntile(buckets)``."""
    return _window_func("ntile", buckets)


def first_value(value: object) -> E:
    """Window function ``first_value(value)``."""
    return _window_func("first_value", value)


def last_value(value: object) -> E:
    """Window function ``last_value(value)``."""
    return _window_func("last_value", value)


def nth_value(value: object, n: object) -> E:
    """Window function ``nth_value(value, n)``."""
    return _window_func("nth_value", value, n)


def lag(value: object, offset: object = 1, default: object = None) -> E:
    """Window function ``lag(value, offset, default)``."""
    return _window_func("lag", value, offset, default) if default is not None else _window_func("lag", value, offset)


def lead(value: object, offset: object = 1, default: object = None) -> E:
    """Window function ``lead(value, offset, default)``."""
    return _window_func("lead", value, offset, default) if default is not None else _window_func("lead", value, offset)


def over(
    function: E, window: str | None = None, *, partition_by: Any = None, order_by: Any = None, frame: Any = None
) -> E:
    """A window function or aggregate over a named window (``windows(...)``) or an inline one.

    ``over(row_number(), partition_by=p.city, order_by=desc(p.temp_hi))``;
    ``over(sum_(p.x), order_by=p.id, frame=rows_between(-1, 0))`` or
    ``frame=fragment("ROWS BETWEEN 1 PRECEDING AND CURRENT ROW")`` (Ecto's ``frame:``).
    """
    if window is not None and (partition_by is not None or order_by is not None or frame is not None):
        raise QueryError("over() takes a window name or partition_by/order_by, not both (a named window has its frame)")
    parts = tuple(node(x) for x in _listify(partition_by))
    orders = tuple(order_term(x) for x in _listify(order_by))
    return E(Over(node(function), window, parts, orders, window_frame(frame)))


def window_frame(frame: Any) -> Fragment | Frame | None:
    """A window's ``frame=``: ``rows_between(...)`` & co. or a ``fragment(...)``."""
    if frame is None or isinstance(frame, Frame):
        return frame
    n = frame.node if isinstance(frame, E) else None
    if not isinstance(n, Fragment):
        raise QueryError(
            "a window frame is rows_between(start, end), range_between(...), groups_between(...) or "
            f'fragment("ROWS BETWEEN ..."), got {frame!r}'
        )
    return n


_EXCLUDES = ("current_row", "group", "ties", "no_others")


def _frame(kind: Literal["rows", "range", "groups"], start: Any, end: Any, exclude: str | None) -> Frame:
    what = f"{kind}_between"
    for bound in (start, end):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise QueryError(
                f"{what} bounds are integers (negative: PRECEDING, 0: CURRENT ROW, positive: FOLLOWING) "
                f"or None (UNBOUNDED), got {bound!r}"
            )
    if start is not None and end is not None and start > end:
        raise QueryError(f"{what}({start!r}, {end!r}): the frame's start comes after its end")
    if exclude is not None and exclude not in _EXCLUDES:
        raise QueryError(f"{what} exclude={exclude!r} is unknown; use one of {', '.join(_EXCLUDES)}")
    return Frame(kind, start, end, exclude)


def rows_between(start: int | None, end: int | None, *, exclude: str | None = None) -> Frame:
    """A window frame of rows around the current one: ``rows_between(-1, 0)`` is
    ``ROWS BETWEEN 1 PRECEDING AND CURRENT ROW``; ``None`` is UNBOUNDED; ``exclude`` is
    ``"current_row"``, ``"group"``, ``"ties"`` or ``"no_others"``."""
    return _frame("rows", start, end, exclude)


def range_between(start: int | None, end: int | None, *, exclude: str | None = None) -> Frame:
    """A ``RANGE BETWEEN`` frame (offsets in the order_by value's units): ``range_between(None, 0)``."""
    return _frame("range", start, end, exclude)


def groups_between(start: int | None, end: int | None, *, exclude: str | None = None) -> Frame:
    """A ``GROUPS BETWEEN`` frame (offsets in peer groups): ``groups_between(-1, 1)``."""
    return _frame("groups", start, end, exclude)


def json_extract_path(value: object, path: Iterable[Any]) -> E:
    """Ecto's ``json_extract_path(p.meta, ["a", 0])``, the same as ``p.meta["a"][0]``; an
    element may be a field (``json_extract_path(p.meta, [p.key_name])``)."""
    items = list(path) if not isinstance(path, str | bytes) and isinstance(path, Iterable) else None
    if not items:
        raise QueryError(f"json_extract_path expects a non-empty list of keys and indexes, got {path!r}")
    out = value if isinstance(value, E) else E(node(value))
    for key in items:
        out = out[key]
    return out


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class _Parent:
    """``parent_as("name")``: the enclosing query's named binding, inside a subquery."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, field: str) -> E:
        if field.startswith("__"):
            raise AttributeError(field)
        return E(ParentRef(self._name, field))


def parent_as(name: str) -> Any:
    """The enclosing query's binding named ``name`` (``as_=``), for correlated and lateral subqueries.

    ``from_(Comment) | where(lambda c: c.post_id == parent_as("p").id)``
    """
    if not isinstance(name, str) or not name:
        raise QueryError(f"parent_as expects a binding name, got {name!r}")
    return _Parent(name)


def selected_as(value: object, alias: str | None = None) -> E:
    """Name a selected value (``selected_as(count(), "n")``) or refer to that name
    in ``group_by``/``order_by``/``having`` (``selected_as("n")``)."""
    if alias is None:
        if not isinstance(value, str):
            raise QueryError(f"selected_as(name) expects the alias name, got {value!r}")
        return E(SelectedAs(None, value))
    if not isinstance(alias, str) or not alias:
        raise QueryError(f"selected_as expects a non-empty alias, got {alias!r}")
    return E(SelectedAs(node(value), check_name(alias, "selected_as alias")))
