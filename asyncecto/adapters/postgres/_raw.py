"""Raw SQL the Repo runs for the user: ``EXPLAIN`` and the row count of a command tag."""

from __future__ import annotations

__all__ = ("explain_sql", "rows_of_status")


def explain_sql(sql: str, analyze: bool, verbose: bool, costs: bool, buffers: bool, format: str) -> str:
    options = f"ANALYZE {analyze}, VERBOSE {verbose}, COSTS {costs}, BUFFERS {buffers}, FORMAT {format}"
    return f"EXPLAIN ({options.upper()}) {sql}"


def rows_of_status(status: str, returned: int) -> int:
    """Rows a raw statement returned (a query) or affected (a write), from its command tag."""
    tail = status.rsplit(" ", 1)[-1]
    verb = status.split(" ", 1)[0]
    return returned if verb in ("SELECT", "FETCH", "SHOW") or not tail.isdigit() else int(tail)
