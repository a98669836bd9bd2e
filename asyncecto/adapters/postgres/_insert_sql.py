"""SQL for inserts: one row, many rows (``VALUES`` or ``unnest``), ``INSERT … SELECT``, upserts, COPY."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from asyncecto.query._on_conflict import ConflictPlan, UnsafeReturning

from ._sql import aliases_of, cast_type, quote_name, quote_table, set_clauses, where_sql

__all__ = (
    "copy_out_sql",
    "copy_sql",
    "copy_stdio",
    "inline_params",
    "insert_sql",
    "param_rows",
    "unnest_body",
    "values_body",
)

Cell = int | str | None  # a parameter number, SQL text such as a subquery, or None: the column's DEFAULT

#: how many statement shapes each SQL cache keeps (an application has a few dozen ``insert_all`` shapes)
CACHE_SIZE = 256

#: ``insert_all``'s ``unnest`` bodies and whole ``INSERT`` texts by shape (see :func:`_remember`)
_unnest_cache: dict[tuple[int, tuple[str, ...]], str] = {}
_insert_cache: dict[tuple[object, ...], str] = {}


def _remember(cache: dict[Any, str], key: object, sql: str) -> str:
    """Keep ``sql`` under ``key``; past :data:`CACHE_SIZE` entries the oldest goes (insertion order).
    The text is a pure function of the key: a repeated shape costs one dict lookup, not a rebuild."""
    if len(cache) >= CACHE_SIZE:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):  # another thread's loop changed it meanwhile
            cache.clear()
    cache[key] = sql
    return sql


def _cell(c: Cell) -> str:
    return "DEFAULT" if c is None else f"${c}" if isinstance(c, int) else c


def values_body(rows: Sequence[Sequence[Cell]]) -> str:
    """``VALUES`` of rows whose cells are parameter numbers, SQL text or ``None`` (the column's
    ``DEFAULT``: a row that leaves a field out). A row of no cells is one ``DEFAULT``.

    >>> values_body([[1, 2], [3, "(SELECT 1)"], [None, 4]])
    'VALUES ($1, $2), ($3, (SELECT 1)), (DEFAULT, $4)'
    >>> values_body([[], []])
    'VALUES (DEFAULT), (DEFAULT)'
    """
    return "VALUES " + ", ".join("(" + (", ".join(map(_cell, row)) or "DEFAULT") + ")" for row in rows)


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
    key = (start, tuple(db_types))
    sql = _unnest_cache.get(key)
    if sql is not None:
        return sql
    arrays = ", ".join(f"${i}::{cast_type(t)}[]" for i, t in enumerate(db_types, start))
    return _remember(_unnest_cache, key, f"SELECT * FROM unnest({arrays})")


def _conflict(c: ConflictPlan, aliases: Sequence[str]) -> str:
    if c.fragment is not None:
        target = f" {c.fragment}"
    elif c.target:
        target = " (" + ", ".join(quote_name(col, "column") for col in c.target) + ")"
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
    inserted_key: Sequence[str] | None = None,
) -> str:
    """An ``INSERT`` of ``body`` (``VALUES …`` or a ``SELECT``) with its upsert clause and ``RETURNING``.

    ``inserted_key`` (columns identifying a row) adds a last returned column, true for a new row
    and false for one the upsert updated: see :func:`_with_inserted_flag`.

    >>> insert_sql(None, "weather", ["city"], "VALUES ($1)", ["id"])
    'INSERT INTO "weather" ("city") VALUES ($1) RETURNING "id"'
    >>> insert_sql(None, "weather", [], "", [])
    'INSERT INTO "weather" DEFAULT VALUES'
    >>> insert_sql(None, "weather", [], "VALUES (DEFAULT), (DEFAULT)", [])
    'INSERT INTO "weather" VALUES (DEFAULT), (DEFAULT)'

    The text is cached by shape, except for an upsert that updates by a query (its ``SET`` and
    ``WHERE`` are expressions, not names): the same arguments give the same ``str`` object.
    """
    key: tuple[object, ...] | None = None
    if conflict is None or conflict.update is None:
        key = (
            prefix,
            table,
            tuple(columns),
            body,
            # an UnsafeReturning equals the same name as a str: its kind is part of the key
            tuple((isinstance(c, UnsafeReturning), c) for c in returning),
            None if conflict is None else (conflict.action, conflict.target, conflict.fragment, conflict.replace),
            None if inserted_key is None else tuple(inserted_key),
        )
        sql = _insert_cache.get(key)
        if sql is not None:
            return sql
        return _remember(
            _insert_cache, key, _build_insert(prefix, table, columns, body, returning, conflict, inserted_key)
        )
    return _build_insert(prefix, table, columns, body, returning, conflict, inserted_key)


def _build_insert(
    prefix: str | None,
    table: str,
    columns: Sequence[str],
    body: str,
    returning: Sequence[str],
    conflict: ConflictPlan | None,
    inserted_key: Sequence[str] | None,
) -> str:
    target = quote_table(prefix, table)
    aliases: Sequence[str] = ()
    if conflict is not None and conflict.update is not None:
        aliases = aliases_of(conflict.update)
        target += f" AS {aliases[0]}"
    if columns:
        sql = f"INSERT INTO {target} ({', '.join(quote_name(c, 'column') for c in columns)}) {body}"
    elif body.startswith("VALUES (DEFAULT)"):  # rows that give no field: every column's default
        sql = f"INSERT INTO {target} {body}"
    else:
        sql = f"INSERT INTO {target} DEFAULT VALUES"
    if conflict is not None:
        sql += _conflict(conflict, aliases)
    if inserted_key is not None:
        return _with_inserted_flag(sql, prefix, table, returning, inserted_key)
    ret = [c if isinstance(c, UnsafeReturning) else quote_name(c, "column") for c in returning]
    return f"{sql} RETURNING {', '.join(ret)}" if ret else sql


def _with_inserted_flag(
    insert: str, prefix: str | None, table: str, returning: Sequence[str], key: Sequence[str]
) -> str:
    """``insert`` returning ``returning`` and a last column: whether the row is new.

    A row is new when no row with its key was visible before the statement: every part of a
    statement reads the snapshot it started with, so the outer ``SELECT`` still sees the row
    an ``ON CONFLICT … DO UPDATE`` changed. No system column is read, so this works on
    partitioned tables (which refuse ``RETURNING xmax``). Without a key (no primary key and no
    conflict columns) the flag falls back to ``xmax = 0``, which ordinary tables allow.
    A row that a concurrent transaction inserted after the statement's snapshot and the upsert
    then updated is reported as new.

    >>> sql = _with_inserted_flag('INSERT INTO "t" ("a") VALUES ($1)', None, "t", ["a"], ["id"])
    >>> print(sql.replace(") SELECT", ")\\n SELECT").replace(") FROM", ")\\n FROM"))
    WITH "__upsert" AS (INSERT INTO "t" ("a") VALUES ($1) RETURNING "a" AS "r0", "id" AS "k0")
     SELECT "__upsert"."r0", NOT EXISTS (SELECT 1 FROM "t" AS "__before" WHERE "__before"."id" = "__upsert"."k0")
     FROM "__upsert"
    """
    if not key:
        ret = [*(quote_name(c, "column") for c in returning), "(xmax = 0)"]
        return f"{insert} RETURNING {', '.join(ret)}"
    inner = [f"{quote_name(c)} AS {quote_name(f'r{i}')}" for i, c in enumerate(returning)]
    inner += [f"{quote_name(c)} AS {quote_name(f'k{i}')}" for i, c in enumerate(key)]
    outer = [f'"__upsert".{quote_name(f"r{i}")}' for i in range(len(returning))]
    match = " AND ".join(f'"__before".{quote_name(c)} = "__upsert".{quote_name(f"k{i}")}' for i, c in enumerate(key))
    before = f'NOT EXISTS (SELECT 1 FROM {quote_table(prefix, table)} AS "__before" WHERE {match})'
    return (
        f'WITH "__upsert" AS ({insert} RETURNING {", ".join(inner)}) '
        f'SELECT {", ".join([*outer, before])} FROM "__upsert"'
    )


def copy_sql(prefix: str | None, table: str, columns: Sequence[str]) -> str:
    """The ``COPY`` a bulk insert runs (as reported to telemetry).

    >>> copy_sql("archive", "posts", ["title"])
    'COPY "archive"."posts" ("title") FROM STDIN (FORMAT binary)'
    """
    names = ", ".join(quote_name(c, "column") for c in columns)
    return f"COPY {quote_table(prefix, table)} ({names}) FROM STDIN (FORMAT binary)"


def copy_out_sql(query: str, format: str, header: bool) -> str:
    """The ``COPY`` that sends ``query``'s rows to the client.

    >>> copy_out_sql('SELECT p0."id" FROM "posts" AS p0', "csv", True)
    'COPY (SELECT p0."id" FROM "posts" AS p0) TO STDOUT (FORMAT csv, HEADER)'
    """
    return f"COPY ({query}) TO STDOUT (FORMAT {format}{', HEADER' if header else ''})"


_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_COPY = re.compile(r"COPY\b", re.I)
_STDIO = re.compile(r"\b(?:(FROM)\s+STDIN|(TO)\s+STDOUT)\b", re.I)


def copy_stdio(sql: str) -> Literal["in", "out"] | None:
    """``"in"``/``"out"`` for a ``COPY … FROM STDIN``/``TO STDOUT``, else ``None``.

    >>> copy_stdio("  copy t TO stdout"), copy_stdio("/* x */ COPY t FROM STDIN (FORMAT csv)")
    ('out', 'in')
    >>> copy_stdio("COPY t TO '/tmp/t.csv'"), copy_stdio("SELECT 'COPY t TO STDOUT'")
    (None, None)
    """
    start = _LEADING.match(sql)
    rest = sql[start.end() if start else 0 :]
    if not _COPY.match(rest):
        return None
    m = _STDIO.search(rest)
    if m is None:
        return None
    return "in" if m.group(1) else "out"


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")
_PARAM = re.compile(r"\$(\d+)")


def inline_params(sql: str, literals: Sequence[str]) -> str:
    """``sql`` with each ``$n`` outside strings, quoted names and comments replaced by
    ``literals[n - 1]`` (SQL text the server quoted): ``COPY`` takes no parameters.

    >>> inline_params("SELECT $1, '$1' -- $1", ["'a'"])
    "SELECT 'a', '$1' -- $1"
    >>> inline_params("SELECT $q$ $1 $q$, $10", [str(i) for i in range(1, 11)])
    'SELECT $q$ $1 $q$, 10'
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        end = i + 1
        if c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            while end < n:
                if escapes and sql[end] == "\\":
                    end += 2
                elif sql[end] == "'":
                    if end + 1 < n and sql[end + 1] == "'":
                        end += 2
                    else:
                        end += 1
                        break
                else:
                    end += 1
        elif c == '"':
            close = sql.find('"', end)
            end = n if close < 0 else close + 1
        elif sql.startswith("--", i):
            close = sql.find("\n", i)
            end = n if close < 0 else close + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            end = n if close < 0 else close + 2
        elif c == "$" and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):  # not in a name (a$1)
            param = _PARAM.match(sql, i)
            tag = _DOLLAR_TAG.match(sql, i)
            if param is not None:
                out.append(literals[int(param.group(1)) - 1])
                i = param.end()
                continue
            if tag is not None:
                close = sql.find(tag.group(0), tag.end())
                end = n if close < 0 else close + len(tag.group(0))
        out.append(sql[i:end])
        i = end
    return "".join(out)
