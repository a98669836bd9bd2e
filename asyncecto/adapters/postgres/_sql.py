"""PostgreSQL SQL text for planned queries and single-row writes. Pure: no I/O.

The shapes follow Ecto's PostgreSQL adapter: table aliases from the table's first
letter and position (``w0``), double-quoted identifiers, ``$n`` parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from asyncecto._names import check_name
from asyncecto.errors import QueryError
from asyncecto.query._plan import (
    Col,
    PAliasRef,
    PAnd,
    ParamRef,
    PArith,
    PArray,
    PAssocPath,
    PCast,
    PCompare,
    PConst,
    PExists,
    PExpr,
    PFilter,
    PFragment,
    PFrame,
    PFunc,
    PIdent,
    PIn,
    PInterval,
    PIsNil,
    PJsonPath,
    Planned,
    PLike,
    PNeg,
    PNot,
    POp,
    POr,
    POver,
    PParentCol,
    PPathCol,
    PQuantified,
    PSelectedAs,
    PSourceAlias,
    PSplice,
    PSubquery,
    PWindow,
    ReadShape,
    ReadValue,
)

__all__ = (
    "aggregate_sql",
    "all_sql",
    "cast_type",
    "delete_all_sql",
    "delete_any_sql",
    "delete_sql",
    "exists_sql",
    "insert_sql",
    "quote_name",
    "quote_table",
    "update_all_sql",
    "update_sql",
)

_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_DIRECTIONS = {
    "asc": "",
    "desc": " DESC",
    "asc_nulls_first": " ASC NULLS FIRST",
    "asc_nulls_last": " ASC NULLS LAST",
    "desc_nulls_first": " DESC NULLS FIRST",
    "desc_nulls_last": " DESC NULLS LAST",
}
_JOINS = {
    "inner": "INNER JOIN",
    "left": "LEFT OUTER JOIN",
    "right": "RIGHT OUTER JOIN",
    "full": "FULL OUTER JOIN",
    "inner_lateral": "INNER JOIN LATERAL",
    "left_lateral": "LEFT OUTER JOIN LATERAL",
}
_FUNCS = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "coalesce",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "first_value",
    "last_value",
    "nth_value",
    "lag",
    "lead",
)
_JSON_OPS = ("@>", "?", "?|", "?&")
_COMBINATIONS = {
    "union": "UNION",
    "union_all": "UNION ALL",
    "except": "EXCEPT",
    "except_all": "EXCEPT ALL",
    "intersect": "INTERSECT",
    "intersect_all": "INTERSECT ALL",
}


#: the bytes of a name PostgreSQL keeps (``NAMEDATALEN - 1``); it drops the rest silently
MAX_NAME_BYTES = 63


def quote_name(name: str, kind: str = "identifier") -> str:
    """``name`` as a quoted identifier; embedded quotes are doubled. A name PostgreSQL would not
    keep as written (empty, NUL, a lone surrogate, over 63 bytes) raises
    :class:`~asyncecto.errors.IdentifierError` naming ``kind``: never truncated.

    >>> quote_name('weird"name')
    '"weird""name"'
    """
    if not (isinstance(name, str) and 0 < len(name) <= 15 and name.isascii() and "\x00" not in name):
        check_name(name, kind, limit=MAX_NAME_BYTES)  # the common short ASCII name needs no more
    return '"' + name.replace('"', '""') + '"'


_MODIFIER = re.compile(r"\s*\(\s*\d+\s*(?:,\s*-?\d+\s*)?\)")
_WIDER = {
    "smallint": "bigint",
    "integer": "bigint",
    "int": "bigint",
    "int2": "bigint",
    "int4": "bigint",
    "real": "double precision",
    "float4": "double precision",
    "float": "double precision",
    "char": "text",
    "character": "text",
    "bpchar": "text",
    "character varying": "varchar",
    "bit": "varbit",
    "bit varying": "varbit",
    "decimal": "numeric",
}


def cast_type(db_type: str) -> str:
    """The type a value is cast to for a column of ``db_type``: its base type without a length,
    precision or scale, never narrower than the column, so the column's own check applies.

    >>> cast_type("varchar(255)"), cast_type("numeric(10, 2)[]"), cast_type("integer"), cast_type("char(3)")
    ('varchar', 'numeric[]', 'bigint', 'text')
    >>> cast_type("timestamp(0) without time zone"), cast_type("interval day to second(3)")
    ('timestamp without time zone', 'interval')
    """
    base = db_type.strip()
    dims = ""
    while base.endswith("]"):
        base, _, _ = base.rpartition("[")
        base = base.rstrip()
        dims += "[]"
    base = _MODIFIER.sub("", base)
    key = " ".join(base.lower().split())
    if key.startswith("interval"):
        return "interval" + dims
    return _WIDER.get(key, base) + dims


def per_parent_sql(inner: str, key_param: int, key_type: Any, alias: str) -> str:
    """``inner`` run for each key of an array parameter (LATERAL), as a preload with a per-parent limit."""
    db_type = cast_type(getattr(key_type, "db_type", None) or "bigint")
    return (
        f'SELECT "__rows".* FROM unnest(${key_param}::{db_type}[]) AS {quote_name(alias)}("k") '
        f'CROSS JOIN LATERAL ({inner}) AS "__rows"'
    )


def quote_table(prefix: str | None, table: str) -> str:
    """``"prefix"."table"``, or ``"table"`` without a prefix.

    >>> quote_table("archive", "posts")
    '"archive"."posts"'
    """
    return f"{quote_name(prefix, 'prefix')}.{quote_name(table, 'table')}" if prefix else quote_name(table, "table")


def _alias(table: str, index: int, depth: int = 0) -> str:
    first = table[:1].lower()
    name = f"{first if first.isascii() and first.isalpha() else 't'}{index}"
    return f"s{depth}{name}" if depth else name


def _aliases(p: Planned) -> list[str]:
    return [_alias(s.table, i, p.depth) for i, s in enumerate(p.sources)]


def literal(value: object) -> str:
    """A constant as SQL text (``constant()`` in fragments): numbers, booleans and quoted strings.

    >>> literal("it's"), literal(3), literal(-1), literal(True)
    ("E'it''s'", '3', '(-1)', 'TRUE')
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QueryError(f"cannot write the non-finite number {value!r} as a SQL literal")
        return f"({value!r})" if value < 0 else repr(value)
    if isinstance(value, str) and "\x00" not in value:
        # E'…' with backslashes doubled is the same text whatever standard_conforming_strings says
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    raise QueryError(f"cannot write {value!r} as a SQL literal")


def _expr(e: PExpr, aliases: Sequence[str]) -> str:
    if isinstance(e, Col):
        return f"{aliases[e.binding]}.{quote_name(e.column, 'column')}"
    if isinstance(e, ParamRef):
        return f"${e.index}"
    if isinstance(e, PCast):
        inner, to = _expr(e.arg, aliases), e.db_type if e.exact else cast_type(e.db_type)
        tight = isinstance(e.arg, ParamRef | Col | PFunc | PCast)
        return f"{inner}::{to}" if tight else f"({inner})::{to}"
    if isinstance(e, PCompare):
        return f"({_expr(e.left, aliases)} {_OPS[e.op]} {_expr(e.right, aliases)})"
    if isinstance(e, PIn):
        return f"({_expr(e.left, aliases)} = ANY({_expr(e.right, aliases)}))"
    if isinstance(e, PIsNil):
        return f"{_expr(e.arg, aliases)} IS NULL"
    if isinstance(e, PAnd):
        return "(" + " AND ".join(_expr(a, aliases) for a in e.args) + ")"
    if isinstance(e, POr):
        return "(" + " OR ".join(_expr(a, aliases) for a in e.args) + ")"
    if isinstance(e, PNot):
        return f"NOT ({_expr(e.arg, aliases)})"
    if isinstance(e, PArith):
        return f"({_expr(e.left, aliases)} {e.op} {_expr(e.right, aliases)})"
    if isinstance(e, PNeg):
        return f"-({_expr(e.arg, aliases)})"
    if isinstance(e, PLike):
        return f"({_expr(e.left, aliases)} {e.op.upper()} {_expr(e.right, aliases)})"
    if isinstance(e, PFragment):
        out = e.parts[0]
        for arg, part in zip(e.args, e.parts[1:], strict=True):
            out += _expr(arg, aliases) + part
        return out
    if isinstance(e, PFunc):
        if e.name not in _FUNCS:
            raise QueryError(f"unknown function {e.name!r}")
        if e.star:
            return f"{e.name}(*)"
        inner = ", ".join(_expr(a, aliases) for a in e.args)
        return f"{e.name}({'DISTINCT ' if e.distinct else ''}{inner})"
    if isinstance(e, PJsonPath):
        return f"({_expr(e.arg, aliases)} #> {_expr(e.path, aliases)})"
    if isinstance(e, PArray):
        return f"ARRAY[{', '.join(_expr(a, aliases) for a in e.items)}]::{e.elem}[]"
    if isinstance(e, POp):
        if e.op not in _JSON_OPS:
            raise QueryError(f"unknown operator {e.op!r}")
        return f"({_expr(e.left, aliases)} {e.op} {_expr(e.right, aliases)})"
    if isinstance(e, PInterval):
        amount = e.amount.arg if isinstance(e.amount, PCast) and isinstance(e.amount.arg, ParamRef) else e.amount
        sql = f"({_expr(e.arg, aliases)} + ({_expr(amount, aliases)}::numeric * interval '1 {e.unit}'))"
        return f"{sql}::date" if e.date else sql
    if isinstance(e, PIdent):
        return quote_name(e.name) if e.prefix is None else f"{quote_name(e.prefix, 'prefix')}.{quote_name(e.name)}"
    if isinstance(e, PConst):
        return literal(e.value)
    if isinstance(e, PSplice):
        return ", ".join(_expr(a, aliases) for a in e.args)
    if isinstance(e, PSubquery):
        return f"({_select_sql(e.planned)})"
    if isinstance(e, PQuantified):
        return f"{e.quantifier} ({_select_sql(e.arg.planned)})"
    if isinstance(e, PExists):
        return f"EXISTS ({_select_sql(e.arg.planned)})"
    if isinstance(e, PAssocPath):
        return _assoc_path(e, aliases)
    if isinstance(e, PPathCol):
        return f"__{e.tag}.{quote_name(e.column, 'column')}"
    if isinstance(e, PFilter):
        return f"{_expr(e.agg, aliases)} FILTER (WHERE {_expr(e.cond, aliases)})"
    if isinstance(e, PParentCol):
        return f"{_alias(e.table, e.binding, e.depth)}.{quote_name(e.column, 'column')}"
    if isinstance(e, PSelectedAs):
        return f"{_expr(e.arg, aliases)} AS {quote_name(e.alias, 'selected_as alias')}"
    if isinstance(e, PSourceAlias):
        return aliases[e.binding]
    if isinstance(e, PAliasRef):
        return quote_name(e.alias, "selected_as alias")
    if isinstance(e, POver):
        window = quote_name(e.window, "window name") if isinstance(e.window, str) else f"({_window(e.window, aliases)})"
        return f"{_expr(e.func, aliases)} OVER {window}"
    raise TypeError(f"cannot compile {e!r}")


def _assoc_path(e: PAssocPath, aliases: Sequence[str]) -> str:
    """``EXISTS (SELECT 1 FROM <tables> WHERE <links> AND <conds>)``: each table aliased ``__<tag>``."""
    froms = ", ".join(f"{_expr(table, aliases)} AS __{tag}" for table, tag in e.tables)
    terms = [f"{_expr(a, aliases)} = {_expr(b, aliases)}" for a, b in e.links]
    terms += [_clause(c, aliases) for c in e.conds]
    return f"EXISTS (SELECT 1 FROM {froms} WHERE {' AND '.join(terms)})"


def _window(w: PWindow, aliases: Sequence[str]) -> str:
    parts = []
    if w.partition_by:
        parts.append("PARTITION BY " + ", ".join(_expr(x, aliases) for x in w.partition_by))
    if w.order_by:
        parts.append("ORDER BY " + ", ".join(f"{_expr(x, aliases)}{_DIRECTIONS[d]}" for d, x in w.order_by))
    if isinstance(w.frame, PFrame):
        parts.append(_frame(w.frame))
    elif w.frame is not None:
        parts.append(_expr(w.frame, aliases))
    return " ".join(parts)


_EXCLUDES = {"current_row": "CURRENT ROW", "group": "GROUP", "ties": "TIES", "no_others": "NO OTHERS"}


def _frame(f: PFrame) -> str:
    """``ROWS BETWEEN 1 PRECEDING AND CURRENT ROW`` (bounds are checked integers, written as literals)."""

    def bound(value: int | None, unbounded: str) -> str:
        if value is None:
            return f"UNBOUNDED {unbounded}"
        if value == 0:
            return "CURRENT ROW"
        return f"{abs(int(value))} {'PRECEDING' if value < 0 else 'FOLLOWING'}"

    if f.kind not in ("rows", "range", "groups"):
        raise QueryError(f"unknown window frame kind {f.kind!r}")
    sql = f"{f.kind.upper()} BETWEEN {bound(f.start, 'PRECEDING')} AND {bound(f.end, 'FOLLOWING')}"
    return sql + (f" EXCLUDE {_EXCLUDES[f.exclude]}" if f.exclude is not None else "")


def _clause(e: PExpr, aliases: Sequence[str]) -> str:
    """An expression standing alone between AND/OR: parenthesised unless it already binds tightly."""
    text = _expr(e, aliases)
    tight = (Col, PCompare, PAnd, POr, PIn, PLike, PIsNil, PNot, PExists, PAssocPath, ParamRef, POp)
    return text if isinstance(e, tight) else f"({text})"


def _filters(filters: Sequence[tuple[str, PExpr]], aliases: Sequence[str]) -> str:
    sql = ""
    for i, (op, e) in enumerate(filters):
        part = _clause(e, aliases)
        sql = part if i == 0 else f"({sql} {'AND' if op == 'and' else 'OR'} {part})"
    return sql


def _target(p: Planned, i: int, aliases: Sequence[str]) -> str:
    s = p.sources[i]
    if s.values is not None:
        names, rows = s.values
        body = ", ".join("(" + ", ".join(_expr(c, aliases) for c in row) + ")" for row in rows)
        return f"(VALUES {body}) AS {aliases[i]} ({', '.join(quote_name(n, 'values() column') for n in names)})"
    if s.subquery is not None:
        return f"({_select_sql(s.subquery, named=True)}) AS {aliases[i]}"
    if s.fragment is not None:
        # written as is; in parentheses when it is a SELECT (Ecto's parens_for_select)
        text = _expr(s.fragment, aliases)
        text = f"({text})" if re.match(r"\s*select\s", text, re.IGNORECASE) else text
        names = s.fragment.columns
        cols = f" ({', '.join(quote_name(n, 'fragment column') for n in names)})" if names else ""
        return f"{text} AS {aliases[i]}{cols}"
    hints = "".join(f" {h}" for h in s.hints)
    return f"{quote_table(s.prefix, s.table)} AS {aliases[i]}{hints}"


def _from_and_joins(p: Planned, aliases: Sequence[str]) -> str:
    sql = f" FROM {_target(p, 0, aliases)}"
    for i, (kind, on) in enumerate(p.joins, 1):
        target = _target(p, i, aliases)
        if kind in ("cross", "cross_lateral"):
            sql += f" CROSS JOIN {'LATERAL ' if kind == 'cross_lateral' else ''}{target}"
        else:
            assert on is not None
            sql += f" {_JOINS[kind]} {target} ON {_expr(on, aliases)}"
    return sql


def _middle(p: Planned, aliases: Sequence[str]) -> str:
    sql = ""
    if p.wheres:
        sql += f" WHERE {_filters(p.wheres, aliases)}"
    if p.group_bys:
        sql += " GROUP BY " + ", ".join(_expr(g, aliases) for g in p.group_bys)
    if p.havings:
        sql += f" HAVING {_filters(p.havings, aliases)}"
    if p.windows:
        sql += " WINDOW " + ", ".join(
            f"{quote_name(n, 'window name')} AS ({_window(w, aliases)})" for n, w in p.windows
        )
    for kind, other in p.combinations:
        sql += f" {_COMBINATIONS[kind]} ({all_sql(other)})"
    return sql


def _end(p: Planned, aliases: Sequence[str], *, order: bool = True) -> str:
    sql = ""
    orders = list(p.distinct) if isinstance(p.distinct, tuple) else []
    if order:
        orders += list(p.order_bys)
    if orders:
        # after UNION & co. only output columns can be named: a field of the first source by its name
        def term(e: PExpr) -> str:
            if p.combinations and isinstance(e, Col) and e.binding == 0:
                return quote_name(e.column)
            return _expr(e, aliases)

        sql += " ORDER BY " + ", ".join(f"{term(e)}{_DIRECTIONS[d]}" for d, e in orders)
    if p.with_ties:
        if p.offset is not None:
            sql += f" OFFSET {_expr(p.offset, aliases)} ROWS"
        if p.limit is not None:
            sql += f" FETCH FIRST {_expr(p.limit, aliases)} ROWS WITH TIES"
    else:
        if p.limit is not None:
            sql += f" LIMIT {_expr(p.limit, aliases)}"
        if p.offset is not None:
            sql += f" OFFSET {_expr(p.offset, aliases)}"
    if isinstance(p.lock, PFragment):
        sql += " " + _expr(p.lock, aliases)
    elif p.lock:
        sql += f" {p.lock}"
    return sql


def _tail(p: Planned, aliases: Sequence[str], *, order: bool = True) -> str:
    return _middle(p, aliases) + _end(p, aliases, order=order)


def _with(p: Planned) -> str:
    if not p.ctes:
        return ""
    parts = []
    for i, (name, c) in enumerate(p.ctes):
        materialized = p.cte_materialized[i] if p.cte_materialized else None
        mode = "" if materialized is None else "MATERIALIZED " if materialized else "NOT MATERIALIZED "
        if c.op == "fragment":  # with_cte(name, as_=fragment(...)): the fragment is the body
            body = _expr(c.columns[0], ())
        elif c.op == "update_all":  # a data-modifying CTE: its RETURNING is what the outer query reads
            body = update_all_sql(c, named=True)
        elif c.op == "delete_all":
            body = delete_all_sql(c, named=True)
        else:  # a CTE selecting a dict names its columns by the keys (a literal's column has no name of its own)
            body = _select_sql(c, named=True)
        parts.append(f"{quote_name(name, 'CTE name')} AS {mode}({body})")
    return f"WITH {'RECURSIVE ' if p.recursive_ctes else ''}{', '.join(parts)} "


def _distinct(p: Planned, aliases: Sequence[str]) -> str:
    if p.distinct is True:
        return "DISTINCT "
    if isinstance(p.distinct, tuple) and p.distinct:
        return "DISTINCT ON (" + ", ".join(_expr(e, aliases) for _d, e in p.distinct) + ") "
    return ""


def all_sql(p: Planned, *, column_aliases: bool = False) -> str:
    """``SELECT`` for a planned ``all`` query.

    >>> from asyncecto.query._plan import Planned, PCompare, Col, ParamRef, PSource, ReadValue
    >>> all_sql(Planned("all", (PSource("weather", None),), (Col(0, "id"), Col(0, "city")), ReadValue(None),
    ...                 wheres=(("and", PCompare("==", Col(0, "city"), ParamRef(1))),)))
    'SELECT w0."id", w0."city" FROM "weather" AS w0 WHERE (w0."city" = $1)'
    """
    return _select_sql(p, column_aliases=column_aliases)


def _select_sql(p: Planned, *, column_aliases: bool = False, named: bool = False) -> str:
    """A whole ``SELECT`` (its ``WITH`` included), for a top-level query or a nested one."""
    aliases = _aliases(p)
    keys = _dict_keys(p) if named else None
    if keys is not None:
        cols = ", ".join(
            f"{_expr(c, aliases)} AS {quote_name(k, 'subquery column')}" for c, k in zip(p.columns, keys, strict=True)
        )
    elif column_aliases:
        cols = ", ".join(f"{_expr(c, aliases)} AS f{i}" for i, c in enumerate(p.columns))
    else:
        cols = ", ".join(_expr(c, aliases) for c in p.columns)
    if not cols:
        raise QueryError("the query selects nothing")
    return f"{_with(p)}SELECT {_distinct(p, aliases)}{cols}{_from_and_joins(p, aliases)}{_tail(p, aliases)}"


def _dict_keys(p: Planned) -> tuple[str, ...] | None:
    """Column names for a subquery source that selects a dict of values (its keys)."""
    reader = p.reader
    if isinstance(reader, ReadShape) and reader.kind == "dict" and all(isinstance(i, ReadValue) for i in reader.items):
        return reader.keys
    return None


def exists_sql(p: Planned) -> str:
    """``SELECT TRUE … [OFFSET n] LIMIT 1`` for ``repo.exists`` (select, order and limit replaced, as in Ecto)."""
    aliases = _aliases(p)
    sql = f"SELECT TRUE{_from_and_joins(p, aliases)}{_middle(p, aliases)}"
    if p.offset is not None:
        sql += f" OFFSET {_expr(p.offset, aliases)}"
    return f"{_with(p)}{sql} LIMIT 1"


def aggregate_sql(p: Planned, func: str, column: int | None, wrap: bool) -> str:
    """``SELECT func(col)`` over the query (``count(*)`` when ``column`` is ``None``).

    With ``wrap`` the query (its own select, limit, offset, distinct) becomes a subquery and
    ``column`` is the index of the aggregated one among its columns.
    """
    if func not in _FUNCS:
        raise QueryError(f"unknown aggregate {func!r}")
    target = "*" if column is None else None
    if not wrap:
        aliases = _aliases(p)
        inner = target or _expr(p.columns[column or 0], aliases)
        return f"{_with(p)}SELECT {func}({inner}){_from_and_joins(p, aliases)}{_tail(p, aliases, order=False)}"
    return f"SELECT {func}({target or f's0.f{column}'}) FROM ({all_sql(p, column_aliases=True)}) AS s0"


def _single_source_joins(p: Planned, what: str) -> None:
    for kind, _on in p.joins:
        if kind != "inner":
            raise QueryError(f"{what} allows only inner joins, got a {kind} join")


def update_all_sql(p: Planned, *, named: bool = False) -> str:
    """``UPDATE … SET … [FROM joins] WHERE … [RETURNING …]`` (inner joins become ``FROM`` plus conditions)."""
    _single_source_joins(p, "update_all")
    aliases = _aliases(p)
    src = p.sources[0]
    sql = f"{_with(p)}UPDATE {quote_table(src.prefix, src.table)} AS {aliases[0]} SET {set_clauses(p, aliases)}"
    sql += _join_sources(p, aliases, "FROM") + _where_with_joins(p, aliases) + _returning_exprs(p, aliases, named)
    return sql


def set_clauses(p: Planned, aliases: Sequence[str]) -> str:
    """The ``SET`` list of an update (``update_all``, or an upsert's ``DO UPDATE``)."""
    a = aliases[0]
    sets = []
    for op, column, value in p.updates:
        col, v = quote_name(column, "column"), _expr(value, aliases)
        if op == "set":
            sets.append(f"{col} = {v}")
        elif op == "inc":
            sets.append(f"{col} = {a}.{col} + {v}")
        elif op == "push":
            sets.append(f"{col} = array_append({a}.{col}, {v})")
        elif op == "pull":
            sets.append(f"{col} = array_remove({a}.{col}, {v})")
    return ", ".join(sets)


def aliases_of(p: Planned) -> list[str]:
    """The table aliases a planned query's SQL uses (``p0`` for ``posts``)."""
    return _aliases(p)


def where_sql(p: Planned, aliases: Sequence[str]) -> str:
    """`` WHERE …`` of a planned query's filters, or ``""``."""
    return f" WHERE {_filters(p.wheres, aliases)}" if p.wheres else ""


def select_sql(p: Planned) -> str:
    """A planned query's ``SELECT``, for embedding (``INSERT … SELECT``, a subquery value)."""
    return _select_sql(p)


def delete_all_sql(p: Planned, *, named: bool = False) -> str:
    """``DELETE FROM … [USING joins] WHERE … [RETURNING …]``."""
    _single_source_joins(p, "delete_all")
    aliases = _aliases(p)
    src = p.sources[0]
    sql = f"{_with(p)}DELETE FROM {quote_table(src.prefix, src.table)} AS {aliases[0]}"
    sql += _join_sources(p, aliases, "USING") + _where_with_joins(p, aliases) + _returning_exprs(p, aliases, named)
    return sql


def _join_sources(p: Planned, aliases: Sequence[str], keyword: str) -> str:
    if not p.joins:
        return ""
    targets = [_target(p, i, aliases) for i in range(1, len(p.sources))]
    return f" {keyword} {', '.join(targets)}"


def _where_with_joins(p: Planned, aliases: Sequence[str]) -> str:
    conditions = [_clause(on, aliases) for _k, on in p.joins if on is not None]
    if p.wheres:
        where = _filters(p.wheres, aliases)
        conditions.append(f"({where})" if conditions and len(p.wheres) > 1 else where)
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _returning_exprs(p: Planned, aliases: Sequence[str], named: bool = False) -> str:
    """`` RETURNING …``; ``named`` (a data-modifying CTE) names a dict select's columns by its keys."""
    if not p.columns:
        return ""
    keys = _dict_keys(p) if named else None
    if keys is not None:
        cols = zip(p.columns, keys, strict=True)
        return " RETURNING " + ", ".join(f"{_expr(c, aliases)} AS {quote_name(k, 'CTE column')}" for c, k in cols)
    return f" RETURNING {', '.join(_expr(c, aliases) for c in p.columns)}"


def _returning(columns: Sequence[str]) -> str:
    return f" RETURNING {', '.join(quote_name(c, 'column') for c in columns)}" if columns else ""


def insert_sql(prefix: str | None, table: str, columns: Sequence[str], returning: Sequence[str]) -> str:
    """``INSERT`` of one row.

    >>> insert_sql(None, "weather", ["city", "temp_lo"], ["id"])
    'INSERT INTO "weather" ("city", "temp_lo") VALUES ($1, $2) RETURNING "id"'
    >>> insert_sql(None, "weather", [], [])
    'INSERT INTO "weather" DEFAULT VALUES'
    """
    target = quote_table(prefix, table)
    if not columns:
        return f"INSERT INTO {target} DEFAULT VALUES{_returning(returning)}"
    names = ", ".join(quote_name(c, "column") for c in columns)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {target} ({names}) VALUES ({values}){_returning(returning)}"


def _pk_filters(filters: Sequence[str], start: int) -> str:
    return " AND ".join(f"{quote_name(c, 'column')} = ${i}" for i, c in enumerate(filters, start))


def update_sql(
    prefix: str | None, table: str, columns: Sequence[str], filters: Sequence[str], returning: Sequence[str]
) -> str:
    """``UPDATE`` of one row found by ``filters`` (primary key and optimistic-lock fields).

    >>> update_sql(None, "weather", ["temp_lo"], ["id"], [])
    'UPDATE "weather" SET "temp_lo" = $1 WHERE "id" = $2'
    """
    sets = ", ".join(f"{quote_name(c, 'column')} = ${i}" for i, c in enumerate(columns, 1))
    where = _pk_filters(filters, len(columns) + 1)
    return f"UPDATE {quote_table(prefix, table)} SET {sets} WHERE {where}{_returning(returning)}"


def delete_sql(prefix: str | None, table: str, filters: Sequence[str], returning: Sequence[str]) -> str:
    """``DELETE`` of one row found by ``filters``.

    >>> delete_sql("archive", "weather", ["id"], [])
    'DELETE FROM "archive"."weather" WHERE "id" = $1'
    """
    return f"DELETE FROM {quote_table(prefix, table)} WHERE {_pk_filters(filters, 1)}{_returning(returning)}"


def delete_any_sql(prefix: str | None, table: str, column: str, any_column: str) -> str:
    """``DELETE`` of the rows whose ``column`` is ``$1`` and ``any_column`` is in the array ``$2``.

    >>> delete_any_sql(None, "posts_tags", "post_id", "tag_id")
    'DELETE FROM "posts_tags" WHERE "post_id" = $1 AND "tag_id" = ANY($2)'
    """
    where = f"{quote_name(column, 'column')} = $1 AND {quote_name(any_column, 'column')} = ANY($2)"
    return f"DELETE FROM {quote_table(prefix, table)} WHERE {where}"
