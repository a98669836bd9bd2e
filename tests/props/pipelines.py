"""Random query pipelines for the planner properties (issue 18), and the reference that runs them.

A :class:`Pipeline` is a symbolic query over two small tables (:data:`DATA`): joins (inner, left,
right, full, cross; up to two), ``where``/``or_where`` filters, ``order_by``, ``distinct``
(plain or ``ON``), ``select`` (the default, a struct, field names, an expression, a tuple, a
list, a dict), ``limit`` and ``offset``. :func:`to_query` turns it into the public DSL;
:func:`evaluate` runs it in Python with SQL's rules (three-valued logic, NULL ordering, left
joins filling ``None``). ``limit``, ``offset`` and ``distinct`` ON come only with an order that is
total (the ids of every binding are among the sort keys), so the rows they keep are determined.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key, partial, reduce
from typing import Any, TypeAlias

from hypothesis import strategies as st

from asyncecto import query as q
from asyncecto import schema

__all__ = (
    "DATA",
    "DDL",
    "FIELDS",
    "PropLeft",
    "PropRight",
    "Pipeline",
    "Result",
    "evaluate",
    "normalise",
    "pipelines",
    "to_query",
)


@schema("props_left")
class PropLeft:
    id: int | None = None
    g: int | None = None
    n: int | None = None
    s: str | None = None


@schema("props_right")
class PropRight:
    id: int | None = None
    a_id: int | None = None
    v: int | None = None
    t: str | None = None


DDL = (
    "CREATE TABLE props_left (id bigint PRIMARY KEY, g bigint, n bigint, s text)",
    "CREATE TABLE props_right (id bigint PRIMARY KEY, a_id bigint, v bigint, t text)",
)

INT, TEXT = "int", "text"
SCHEMAS: dict[str, type[Any]] = {"L": PropLeft, "R": PropRight}
#: each table's fields and their kind (the order is the struct's, for comparing whole structs)
FIELDS: dict[str, dict[str, str]] = {
    "L": {"id": INT, "g": INT, "n": INT, "s": TEXT},
    "R": {"id": INT, "a_id": INT, "v": INT, "t": TEXT},
}
#: NULLs, duplicates, ties, rows that match nothing (a_id 9, NULL) and rows nothing matches (L 5 to 8).
#: The strings are lowercase ASCII: their order is the same under the C and the ICU/glibc collations.
DATA: dict[str, list[dict[str, Any]]] = {
    "L": [
        {"id": 1, "g": 0, "n": 5, "s": "x"},
        {"id": 2, "g": 1, "n": -2, "s": "y"},
        {"id": 3, "g": 1, "n": None, "s": ""},
        {"id": 4, "g": 2, "n": 5, "s": None},
        {"id": 5, "g": None, "n": 0, "s": "xy"},
        {"id": 6, "g": 2, "n": 7, "s": "y"},
        {"id": 7, "g": 0, "n": None, "s": "z"},
        {"id": 8, "g": None, "n": -2, "s": "x"},
    ],
    "R": [
        {"id": 1, "a_id": 1, "v": 3, "t": "x"},
        {"id": 2, "a_id": 1, "v": None, "t": "yy"},
        {"id": 3, "a_id": 2, "v": 0, "t": None},
        {"id": 4, "a_id": 3, "v": 5, "t": "x"},
        {"id": 5, "a_id": None, "v": -1, "t": "z"},
        {"id": 6, "a_id": 9, "v": 5, "t": ""},
        {"id": 7, "a_id": 4, "v": 2, "t": "y"},
        {"id": 8, "a_id": 4, "v": 2, "t": "x"},
        {"id": 9, "a_id": 4, "v": None, "t": "xy"},
        {"id": 10, "a_id": None, "v": 7, "t": None},
    ],
}
INTS = st.integers(-3, 9)
TEXTS = st.sampled_from(["", "w", "x", "xy", "y", "yy", "z"])
PATTERNS = st.sampled_from(["x%", "%y", "%", "_", "x_", "", "%x%", "X%", "_Y"])


# -- the symbolic query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    binding: int
    name: str


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Arith:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Coalesce:
    arg: Expr
    default: Any


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsNil:
    arg: Expr


@dataclass(frozen=True)
class In:
    arg: Expr
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Like:
    arg: Expr
    pattern: str
    insensitive: bool


@dataclass(frozen=True)
class Not:
    arg: Expr


@dataclass(frozen=True)
class And:
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    args: tuple[Expr, ...]


Expr: TypeAlias = Col | Lit | Arith | Coalesce | Cmp | IsNil | In | Like | Not | And | Or


@dataclass(frozen=True)
class Join:
    kind: str
    table: str
    on: Expr | None


@dataclass(frozen=True)
class Where:
    op: str  # "and" (where) or "or" (or_where)
    cond: Expr


@dataclass(frozen=True)
class OrderBy:
    terms: tuple[tuple[str, Expr], ...]  # (direction, expression)


@dataclass(frozen=True)
class Distinct:
    on: tuple[Expr, ...] | None  # None: SELECT DISTINCT


@dataclass(frozen=True)
class Select:
    shape: Shape


@dataclass(frozen=True)
class Limit:
    n: int


@dataclass(frozen=True)
class Offset:
    n: int


Step: TypeAlias = Where | OrderBy | Distinct | Select | Limit | Offset
#: ("struct", binding) | ("names", names) | ("expr", expr) | ("tuple" | "list" | "dict", items)
Shape: TypeAlias = tuple[Any, ...]


@dataclass(frozen=True)
class Pipeline:
    tables: tuple[str, ...]  # the table of each binding
    joins: tuple[Join, ...]
    steps: tuple[Step, ...]

    def select(self) -> Shape:
        shapes = [s.shape for s in self.steps if isinstance(s, Select)]
        return shapes[0] if shapes else ("struct", 0)


# -- the DSL ------------------------------------------------------------------------------------------

ARITH: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "-": operator.sub, "*": operator.mul}
CMP: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
DIRECTIONS: dict[str, Callable[[Any], Any]] = {
    "asc": q.asc,
    "desc": q.desc,
    "asc_nulls_first": q.asc_nulls_first,
    "asc_nulls_last": q.asc_nulls_last,
    "desc_nulls_first": q.desc_nulls_first,
    "desc_nulls_last": q.desc_nulls_last,
}


def dsl(e: Expr, bs: Sequence[Any]) -> Any:
    """``e`` as a DSL expression over the bindings ``bs``."""
    match e:
        case Col(b, name):
            return getattr(bs[b], name)
        case Lit(value):
            return value
        case Arith(op, left, right):
            return ARITH[op](dsl(left, bs), dsl(right, bs))
        case Coalesce(arg, default):
            return q.coalesce(dsl(arg, bs), default)
        case Cmp(op, left, right):
            return CMP[op](dsl(left, bs), dsl(right, bs))  # a literal on the left: Python reflects the operator
        case IsNil(arg):
            return q.is_nil(dsl(arg, bs))
        case In(arg, values):
            return dsl(arg, bs).in_(list(values))
        case Like(arg, pattern, insensitive):
            x = dsl(arg, bs)
            return x.ilike(pattern) if insensitive else x.like(pattern)
        case Not(arg):
            return ~dsl(arg, bs)
        case And(args):
            return reduce(operator.and_, (dsl(a, bs) for a in args))
        case Or(args):
            return reduce(operator.or_, (dsl(a, bs) for a in args))
    raise AssertionError(e)


def _shape_dsl(shape: Shape, bs: Sequence[Any]) -> Any:
    kind = shape[0]
    if kind == "struct":
        return bs[shape[1]]
    if kind == "expr":
        return dsl(shape[1], bs)
    items = [_shape_dsl(item, bs) for item in shape[1]]
    if kind == "tuple":
        return tuple(items)
    if kind == "list":
        return items
    assert kind == "dict"
    return {f"c{i}": item for i, item in enumerate(items)}


def _of(build: Callable[[tuple[Any, ...]], Any]) -> Callable[..., Any]:
    """A function of all the query's bindings (``lambda *bs: ...``) that calls ``build(bs)``."""
    return lambda *bs: build(bs)


def _ordered(terms: Sequence[tuple[str, Expr]], bs: Sequence[Any]) -> list[Any]:
    return [DIRECTIONS[d](dsl(e, bs)) for d, e in terms]


def _each(exprs: Sequence[Expr], bs: Sequence[Any]) -> list[Any]:
    return [dsl(e, bs) for e in exprs]


def to_query(p: Pipeline) -> Any:
    """The pipeline in the public DSL."""
    query = q.from_(SCHEMAS[p.tables[0]])
    for j in p.joins:
        on = j.on
        query = query | q.join(j.kind, SCHEMAS[j.table], on=None if on is None else _of(partial(dsl, on)))
    for step in p.steps:
        match step:
            case Where("and", cond):
                query = query | q.where(_of(partial(dsl, cond)))
            case Where(_, cond):
                query = query | q.or_where(_of(partial(dsl, cond)))
            case OrderBy(terms):
                query = query | q.order_by(_of(partial(_ordered, terms)))
            case Distinct(exprs):
                query = query | q.distinct(True if exprs is None else _of(partial(_each, exprs)))
            case Select(("names", names)):
                query = query | q.select(list(names))
            case Select(shape):
                query = query | q.select(_of(partial(_shape_dsl, shape)))
            case Limit(n):
                query = query | q.limit(n)
            case Offset(n):
                query = query | q.offset(n)
    return query


# -- the reference ------------------------------------------------------------------------------------

Row: TypeAlias = tuple[dict[str, Any] | None, ...]


def value(e: Expr, row: Row) -> Any:
    """``e`` on one row, as PostgreSQL computes it: ``None`` is NULL (and unknown)."""
    match e:
        case Col(b, name):
            binding = row[b]
            return None if binding is None else binding[name]
        case Lit(v):
            return v
        case Arith(op, left, right):
            x, y = value(left, row), value(right, row)
            return None if x is None or y is None else ARITH[op](x, y)
        case Coalesce(arg, default):
            x = value(arg, row)
            return default if x is None else x
        case Cmp(op, left, right):
            x, y = value(left, row), value(right, row)
            return None if x is None or y is None else CMP[op](x, y)
        case IsNil(arg):
            return value(arg, row) is None
        case In(arg, values):
            x = value(arg, row)  # ``x = ANY($1)``: false for an empty array, even when x is NULL
            return False if not values else None if x is None else x in values
        case Like(arg, pattern, insensitive):
            x = value(arg, row)
            if x is None:
                return None
            regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
            return re.fullmatch(regex, x, re.IGNORECASE if insensitive else 0) is not None
        case Not(arg):
            x = value(arg, row)
            return None if x is None else not x
        case And(args):
            xs = [value(a, row) for a in args]
            return False if False in xs else None if None in xs else True
        case Or(args):
            xs = [value(a, row) for a in args]
            return True if True in xs else None if None in xs else False
    raise AssertionError(e)


def _join(rows: list[Row], width: int, j: Join) -> list[Row]:
    other = DATA[j.table]
    if j.on is None:  # cross
        return [(*r, x) for r in rows for x in other]
    out: list[Row] = []
    matched: set[int] = set()
    for r in rows:
        hit = False
        for i, x in enumerate(other):
            if value(j.on, (*r, x)) is True:
                out.append((*r, x))
                matched.add(i)
                hit = True
        if not hit and j.kind in ("left", "full"):
            out.append((*r, None))
    if j.kind in ("right", "full"):
        out += [(*(None,) * width, x) for i, x in enumerate(other) if i not in matched]
    return out


def _compare(x: Any, y: Any, direction: str) -> int:
    """SQL's ``ORDER BY`` on one key: NULLs last ascending and first descending unless told."""
    descending = direction.startswith("desc")
    nulls_first = direction.endswith("nulls_first") or (descending and not direction.endswith("nulls_last"))
    if x is None or y is None:
        if x is None and y is None:
            return 0
        return (-1 if x is None else 1) * (1 if nulls_first else -1)
    c = int(x > y) - int(x < y)
    return -c if descending else c


def nullable(p: Pipeline, b: int) -> bool:
    """Whether binding ``b`` may be missing (an outer join's side): its struct loads as ``None``
    when the columns selected of it are all NULL, as Ecto's."""
    own = p.joins[b - 1].kind if b else "from"
    return own in ("left", "full") or any(j.kind in ("right", "full") for j in p.joins[b:])


def _project(shape: Shape, row: Row, p: Pipeline) -> Any:
    kind = shape[0]
    if kind in ("struct", "names"):
        b = shape[1] if kind == "struct" else 0
        names = FIELDS[p.tables[b]] if kind == "struct" else shape[1]
        binding = row[b]
        values = None if binding is None else tuple(binding[f] for f in names)
        if values is not None and nullable(p, b) and all(v is None for v in values):
            return None
        return values
    if kind == "expr":
        return value(shape[1], row)
    return tuple(_project(item, row, p) for item in shape[1])


def normalise(shape: Shape, loaded: Any, tables: Sequence[str]) -> Any:
    """What ``repo.all`` returned for one row, in the form :func:`evaluate` gives it."""
    kind = shape[0]
    if kind in ("struct", "names"):
        if loaded is None:
            return None
        b, names = (shape[1], FIELDS[tables[shape[1]]]) if kind == "struct" else (0, shape[1])
        assert type(loaded) is SCHEMAS[tables[b]], loaded
        return tuple(getattr(loaded, f) for f in names)
    if kind == "expr":
        return loaded
    items = shape[1]
    if kind == "dict":
        assert isinstance(loaded, dict) and list(loaded) == [f"c{i}" for i in range(len(items))], loaded
        loaded = list(loaded.values())
    else:
        assert isinstance(loaded, tuple if kind == "tuple" else list), loaded
    assert len(loaded) == len(items), loaded
    return tuple(normalise(item, x, tables) for item, x in zip(items, loaded, strict=True))


@dataclass(frozen=True)
class Result:
    """The rows a pipeline returns (projected as :func:`normalise` does) and their sort keys
    (rows with equal keys may come in any order); ``total``: no two rows share a key."""

    rows: list[Any]
    keys: list[tuple[Any, ...]]
    total: bool
    #: ``repo.exists``: as Ecto's ``exists?`` it drops select, order, distinct and limit but keeps offset
    exists: bool


def evaluate(p: Pipeline) -> Result:
    """The pipeline run in Python over :data:`DATA`."""
    rows: list[Row] = [(x,) for x in DATA[p.tables[0]]]
    for width, j in enumerate(p.joins, start=1):
        rows = _join(rows, width, j)
    wheres = [s for s in p.steps if isinstance(s, Where)]
    if wheres:

        def keep(r: Row) -> bool:
            # filters fold left: ((w1 op2 w2) op3 w3), as the SQL writes them
            acc = value(wheres[0].cond, r)
            for w in wheres[1:]:
                acc = value((And if w.op == "and" else Or)((Lit(acc), Lit(value(w.cond, r)))), r)
            return acc is True

        rows = [r for r in rows if keep(r)]
    distinct = next((s for s in p.steps if isinstance(s, Distinct)), None)
    terms = [("asc", e) for e in (distinct.on if distinct and distinct.on else ())]
    terms += [t for s in p.steps if isinstance(s, OrderBy) for t in s.terms]

    def key(r: Row) -> tuple[Any, ...]:
        return tuple(value(e, r) for _d, e in terms)

    def cmp(xs: tuple[Any, ...], ys: tuple[Any, ...]) -> int:
        for (direction, _e), a, b in zip(terms, xs[0], ys[0], strict=True):
            c = _compare(a, b, direction)
            if c:
                return c
        return 0

    shape = p.select()
    keyed = sorted(((key(r), _project(shape, r, p), r) for r in rows), key=cmp_to_key(cmp))
    if distinct is not None:
        seen: set[Any] = set()
        kept = []
        for k, projected, r in keyed:
            mark = projected if distinct.on is None else tuple(value(e, r) for e in distinct.on)
            if mark not in seen:
                seen.add(mark)
                kept.append((k, projected, r))
        keyed = kept
    total = len({k for k, _p, _r in keyed}) == len(keyed)
    start = next((s.n for s in p.steps if isinstance(s, Offset)), 0)
    exists = len(rows) > start
    n = next((s.n for s in p.steps if isinstance(s, Limit)), None)
    keyed = keyed[start : None if n is None else start + n]
    return Result([projected for _k, projected, _r in keyed], [k for k, _p, _r in keyed], total, exists)


# -- the strategies -----------------------------------------------------------------------------------


def _cols(tables: Sequence[str], kind: str) -> list[Col]:
    return [Col(b, name) for b, table in enumerate(tables) for name, k in FIELDS[table].items() if k == kind]


def int_exprs(tables: Sequence[str]) -> st.SearchStrategy[Expr]:
    """Integer expressions with at least one column in them."""
    col = st.sampled_from(_cols(tables, INT))
    arith = st.builds(
        Arith,
        st.sampled_from(list(ARITH)),
        col | st.builds(Coalesce, col, INTS),
        col | INTS.map(Lit),
    )
    flipped = st.builds(Arith, st.sampled_from(list(ARITH)), INTS.map(Lit), col)
    return st.one_of(col, col, arith, flipped, st.builds(Coalesce, col, INTS))


def text_exprs(tables: Sequence[str]) -> st.SearchStrategy[Expr]:
    col = st.sampled_from(_cols(tables, TEXT))
    return st.one_of(col, col, st.builds(Coalesce, col, TEXTS))


def exprs(tables: Sequence[str]) -> st.SearchStrategy[Expr]:
    return st.one_of(int_exprs(tables), text_exprs(tables))


def conditions(tables: Sequence[str], depth: int = 2) -> st.SearchStrategy[Expr]:
    """Boolean expressions: comparisons (a literal on either side), IS NULL, IN, LIKE, NOT, AND, OR."""
    ops = st.sampled_from(list(CMP))
    ints, texts = int_exprs(tables), text_exprs(tables)
    atoms = st.one_of(
        st.builds(Cmp, ops, ints, ints | INTS.map(Lit)),
        st.builds(Cmp, ops, INTS.map(Lit), ints),
        st.builds(Cmp, ops, texts, texts | TEXTS.map(Lit)),
        st.builds(IsNil, ints | texts),
        st.builds(In, ints, st.lists(INTS, max_size=3).map(tuple)),
        st.builds(In, texts, st.lists(TEXTS, max_size=3).map(tuple)),
        st.builds(Like, texts, PATTERNS, st.booleans()),
    )
    if depth == 0:
        return atoms
    sub = conditions(tables, depth - 1)
    return st.one_of(
        atoms,
        atoms,
        sub.map(Not),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(sub, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    )


@st.composite
def _on(draw: st.DrawFn, tables: Sequence[str], kind: str) -> Expr:
    """A join condition: mostly a key equality (``r.a_id == l.id``), sometimes with more, sometimes
    anything; a full join's only the key (PostgreSQL takes only merge- or hash-joinable conditions there)."""
    new = len(tables) - 1
    earlier = st.sampled_from(_cols(tables[:new], INT))
    mine = st.sampled_from([c for c in _cols(tables, INT) if c.binding == new])
    key = Cmp("==", draw(earlier), draw(mine))
    match 0 if kind == "full" else draw(st.integers(0, 3)):
        case 0 | 1:
            return key
        case 2:
            return And((key, draw(conditions(tables, 1))))
        case _:
            return draw(conditions(tables, 1))


@st.composite
def _shape(draw: st.DrawFn, tables: Sequence[str]) -> Shape:
    structs = st.integers(0, len(tables) - 1).map(lambda b: ("struct", b))
    expr = exprs(tables).map(lambda e: ("expr", e))
    kind = draw(st.sampled_from(["struct", "names", "expr", "tuple", "list", "dict"]))
    if kind == "struct":
        return draw(structs)
    if kind == "expr":
        return draw(expr)
    if kind == "names":
        left_fields = list(FIELDS[tables[0]])
        names = draw(st.lists(st.sampled_from(left_fields), min_size=1, max_size=3, unique=True))
        return ("names", tuple(sorted(names, key=left_fields.index)))
    return (kind, tuple(draw(st.lists(expr | structs, min_size=1, max_size=3))))


def _split(terms: Sequence[tuple[str, Expr]], at: int) -> list[Step]:
    parts = [terms[:at], terms[at:]] if 0 < at < len(terms) else [terms]
    return [OrderBy(tuple(t)) for t in parts if t]


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    """A random pipeline; its steps (after the joins) in a random order."""
    tables = ["L"]
    joins = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["inner", "inner", "left", "left", "right", "full", "cross"]))
        tables.append(draw(st.sampled_from(["R", "R", "L"])))
        joins.append(Join(kind, tables[-1], None if kind == "cross" else draw(_on(tables, kind))))
    steps: list[Step] = [
        Where(op, cond)
        for op, cond in draw(st.lists(st.tuples(st.sampled_from(["and", "or"]), conditions(tables)), max_size=2))
    ]
    directions = st.sampled_from(list(DIRECTIONS))
    mode = draw(st.sampled_from([None, None, None, "all", "on"]))
    windowed = draw(st.booleans())
    ids = [("asc", Col(b, "id")) for b in range(len(tables))]
    if mode == "all":
        # SELECT DISTINCT: ORDER BY only what is selected; ordered by all of it, the order is total
        cols = draw(st.lists(st.sampled_from(_cols(tables, INT) + _cols(tables, TEXT)), min_size=1, max_size=3))
        shape: Shape = ("expr", cols[0]) if len(cols) == 1 else ("tuple", tuple(("expr", c) for c in cols))
        terms: list[tuple[str, Expr]] = [
            (draw(directions), c) for c in draw(st.lists(st.sampled_from(cols), max_size=2))
        ]
        if windowed:
            terms += [(draw(directions), c) for c in cols]
        steps.append(Distinct(None))
    else:
        shape = draw(_shape(tables))
        terms = draw(st.lists(st.tuples(directions, exprs(tables)), max_size=3))
        if mode == "on":
            steps.append(Distinct(tuple(draw(st.lists(exprs(tables), min_size=1, max_size=2)))))
        if windowed or mode == "on":
            terms += [(draw(directions), e) for _d, e in ids]
    steps += _split(terms, draw(st.integers(0, 3)))
    if shape != ("struct", 0) or draw(st.booleans()):
        steps.append(Select(shape))
    if windowed:
        window = draw(st.sampled_from(["limit", "offset", "both"]))
        steps += [Limit(draw(st.integers(0, 6)))] if window != "offset" else []
        steps += [Offset(draw(st.integers(0, 6)))] if window != "limit" else []
    return Pipeline(tuple(tables), tuple(joins), tuple(draw(st.permutations(steps))))
