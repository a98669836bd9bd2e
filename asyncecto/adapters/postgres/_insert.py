"""SQL for inserts: one row, many rows (``VALUES`` or ``unnest``), ``INSERT … SELECT``, upserts, COPY."""

from __future__ import annotations

from collections.abc import Sequence

from asyncecto.query._insert import ConflictPlan

from ._sql import aliases_of, cast_type, quote_name, quote_table, set_clauses, where_sql

__all__ = ("copy_sql", "insert_sql", "param_rows", "unnest_body", "values_body")

Cell = int | str  # a parameter number, or SQL text such as a subquery


def values_body(rows: Sequence[Sequence[Cell]]) -> str:
    """``VALUES`` of rows whose cells are parameter numbers or SQL text.

    >>> values_body([[1, 2], [3, "(SELECT 1)"]])
    'VALUES ($1, $2), ($3, (SELECT 1))'
    """
    return "VALUES " + ", ".join(
        "(" + ", ".join(f"${c}" if isinstance(c, int) else c for c in row) + ")" for row in rows
    )


def param_rows(start: int, width: int, count: int) -> str:
    """``VALUES`` of ``count`` rows of ``width`` parameters numbered from ``start``.

    >>> param_rows(1, 2, 2)
    'VALUES ($1, $2), ($3, $4)'
    """
    out = []
    n = start
    for _ in range(count):
        out.append("(" + ", ".join(f"${i}" for i in range(n, n + width)) + ")")
        n += width
    return "VALUES " + ", ".join(out)


def unnest_body(start: int, db_types: Sequence[str]) -> str:
    """Every row in one parameter per column: an array each, unnested side by side. Each array is
    cast to its column type's unconstrained base (:func:`cast_type`): a value too long or too large
    for the column fails there, as in a one-row insert, never silently cut to fit the cast.

    >>> unnest_body(1, ["integer", "varchar(255)", "numeric(5,2)"])
    'SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::numeric[])'
    """
    arrays = ", ".join(f"${i}::{cast_type(t)}[]" for i, t in enumerate(db_types, start))
    return f"SELECT * FROM unnest({arrays})"


def _conflict(c: ConflictPlan, aliases: Sequence[str]) -> str:
    if c.fragment is not None:
        target = f" {c.fragment}"
    elif c.target:
        target = " (" + ", ".join(quote_name(col) for col in c.target) + ")"
    else:
        target = ""
    if c.action == "nothing":
        return f" ON CONFLICT{target} DO NOTHING"
    if c.action == "replace":
        sets = ", ".join(f"{quote_name(col)} = EXCLUDED.{quote_name(col)}" for col in c.replace)
        return f" ON CONFLICT{target} DO UPDATE SET {sets}"
    assert c.update is not None
    return f" ON CONFLICT{target} DO UPDATE SET {set_clauses(c.update, aliases)}{where_sql(c.update, aliases)}"


def insert_sql(
    prefix: str | None,
    table: str,
    columns: Sequence[str],
    body: str,
    returning: Sequence[str],
    conflict: ConflictPlan | None = None,
    inserted_flag: bool = False,
) -> str:
    """An ``INSERT`` of ``body`` (``VALUES …`` or a ``SELECT``) with its upsert clause and ``RETURNING``.

    ``inserted_flag`` adds a last returned column that is true for a new row and false for
    one the upsert updated (``xmax = 0``).

    >>> insert_sql(None, "weather", ["city"], "VALUES ($1)", ["id"])
    'INSERT INTO "weather" ("city") VALUES ($1) RETURNING "id"'
    >>> insert_sql(None, "weather", [], "", [])
    'INSERT INTO "weather" DEFAULT VALUES'
    """
    target = quote_table(prefix, table)
    aliases: Sequence[str] = ()
    if conflict is not None and conflict.update is not None:
        aliases = aliases_of(conflict.update)
        target += f" AS {aliases[0]}"
    if columns:
        sql = f"INSERT INTO {target} ({', '.join(quote_name(c) for c in columns)}) {body}"
    else:
        sql = f"INSERT INTO {target} DEFAULT VALUES"
    if conflict is not None:
        sql += _conflict(conflict, aliases)
    ret = [quote_name(c) for c in returning]
    if inserted_flag:
        ret.append("(xmax = 0)")
    return f"{sql} RETURNING {', '.join(ret)}" if ret else sql


def copy_sql(prefix: str | None, table: str, columns: Sequence[str]) -> str:
    """The ``COPY`` a bulk insert runs (as reported to telemetry).

    >>> copy_sql("archive", "posts", ["title"])
    'COPY "archive"."posts" ("title") FROM STDIN (FORMAT binary)'
    """
    return f"COPY {quote_table(prefix, table)} ({', '.join(quote_name(c) for c in columns)}) FROM STDIN (FORMAT binary)"
