"""PostgreSQL SQL text for planned queries and single-row writes. Pure: no I/O.

The shapes follow Ecto's PostgreSQL adapter: table aliases from the table's first
letter and position (``w0``), double-quoted identifiers, ``$n`` parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from asyncecto.query._planner import Col, PAnd, ParamRef, PCompare, PExpr, PIsNil, Planned

__all__ = ("all_sql", "delete_sql", "insert_sql", "quote_name", "quote_table", "update_sql")

_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def quote_name(name: str) -> str:
    """``name`` as a quoted identifier; embedded quotes are doubled.

    >>> quote_name('weird"name')
    '"weird""name"'
    """
    if not name or "\x00" in name:
        raise ValueError(f"identifier {name!r} is empty or contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_table(prefix: str | None, table: str) -> str:
    """``"prefix"."table"``, or ``"table"`` without a prefix.

    >>> quote_table("archive", "posts")
    '"archive"."posts"'
    """
    return f"{quote_name(prefix)}.{quote_name(table)}" if prefix else quote_name(table)


def _alias(table: str, index: int) -> str:
    first = table[:1].lower()
    return f"{first if first.isascii() and first.isalpha() else 't'}{index}"


def _expr(e: PExpr, aliases: Sequence[str]) -> str:
    if isinstance(e, Col):
        return f"{aliases[e.binding]}.{quote_name(e.column)}"
    if isinstance(e, ParamRef):
        return f"${e.index}"
    if isinstance(e, PIsNil):
        return f"{_expr(e.arg, aliases)} IS NULL"
    if isinstance(e, PAnd):
        return "(" + " AND ".join(_expr(a, aliases) for a in e.args) + ")"
    if isinstance(e, PCompare) and e.op == "in":
        return f"({_expr(e.left, aliases)} = ANY({_expr(e.right, aliases)}))"
    if isinstance(e, PCompare):
        return f"({_expr(e.left, aliases)} {_OPS[e.op]} {_expr(e.right, aliases)})"
    raise TypeError(f"cannot compile {e!r}")


def _where(p: Planned, aliases: Sequence[str]) -> str:
    sql = ""
    for i, (op, e) in enumerate(p.wheres):
        part = _expr(e, aliases)
        sql = part if i == 0 else f"({sql} {'AND' if op == 'and' else 'OR'} {part})"
    return sql


def all_sql(p: Planned) -> str:
    """``SELECT`` for a planned ``all`` query.

    >>> from asyncecto.query._planner import Planned, PCompare, Col, ParamRef
    >>> all_sql(Planned("all", "weather", None, None, ("id", "city"), ("id", "city"),
    ...                 (("and", PCompare("==", Col(0, "city"), ParamRef(1))),)))
    'SELECT w0."id", w0."city" FROM "weather" AS w0 WHERE (w0."city" = $1)'
    """
    aliases = [_alias(p.table, 0)]
    a = aliases[0]
    cols = ", ".join(f"{a}.{quote_name(c)}" for c in p.columns)
    sql = f"SELECT {cols} FROM {quote_table(p.prefix, p.table)} AS {a}"
    if p.wheres:
        sql += f" WHERE {_where(p, aliases)}"
    if p.order_bys:
        sql += " ORDER BY " + ", ".join(f"{_expr(e, aliases)}{' DESC' if d == 'desc' else ''}" for d, e in p.order_bys)
    if p.limit is not None:
        sql += f" LIMIT {_expr(p.limit, aliases)}"
    if p.offset is not None:
        sql += f" OFFSET {_expr(p.offset, aliases)}"
    return sql


def _returning(columns: Sequence[str]) -> str:
    return f" RETURNING {', '.join(quote_name(c) for c in columns)}" if columns else ""


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
    names = ", ".join(quote_name(c) for c in columns)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {target} ({names}) VALUES ({values}){_returning(returning)}"


def _filters(filters: Sequence[str], start: int) -> str:
    return " AND ".join(f"{quote_name(c)} = ${i}" for i, c in enumerate(filters, start))


def update_sql(
    prefix: str | None, table: str, columns: Sequence[str], filters: Sequence[str], returning: Sequence[str]
) -> str:
    """``UPDATE`` of one row found by ``filters`` (primary key and optimistic-lock fields).

    >>> update_sql(None, "weather", ["temp_lo"], ["id"], [])
    'UPDATE "weather" SET "temp_lo" = $1 WHERE "id" = $2'
    """
    sets = ", ".join(f"{quote_name(c)} = ${i}" for i, c in enumerate(columns, 1))
    where = _filters(filters, len(columns) + 1)
    return f"UPDATE {quote_table(prefix, table)} SET {sets} WHERE {where}{_returning(returning)}"


def delete_sql(prefix: str | None, table: str, filters: Sequence[str], returning: Sequence[str]) -> str:
    """``DELETE`` of one row found by ``filters``.

    >>> delete_sql("archive", "weather", ["id"], [])
    'DELETE FROM "archive"."weather" WHERE "id" = $1'
    """
    return f"DELETE FROM {quote_table(prefix, table)} WHERE {_filters(filters, 1)}{_returning(returning)}"
