"""Statement text PostgreSQL can receive: checked before asyncpg sends it.

asyncpg closes the connection when it cannot encode a statement (a lone surrogate such as
``"\\ud800"`` in raw SQL, a fragment, a constant or a name), and the server refuses a NUL with a
protocol error; both are caught here first, as an :class:`~asyncecto.errors.ArgumentError`.
"""

from __future__ import annotations

from asyncecto.errors import ArgumentError

__all__ = ("check_statement",)


def check_statement(sql: str, what: str = "SQL") -> None:
    """Raise :class:`ArgumentError` unless ``sql`` can be sent as a statement's text (valid UTF-8, no NUL)."""
    if sql.isascii():
        at = sql.find("\x00")
        if at < 0:
            return
        raise _refused(sql, what, at, "a NUL character")
    at = sql.find("\x00")
    if at >= 0:
        raise _refused(sql, what, at, "a NUL character")
    try:
        sql.encode()
    except UnicodeEncodeError as exc:
        raise _refused(sql, what, exc.start, f"the lone surrogate {sql[exc.start]!r}") from None


def _refused(sql: str, what: str, at: int, found: str) -> ArgumentError:
    start = max(0, at - 30)
    excerpt = ("…" if start else "") + sql[start : at + 30] + ("…" if at + 30 < len(sql) else "")
    return ArgumentError(
        f"cannot send {what} {excerpt!r}: it holds {found} at position {at}, which PostgreSQL cannot receive "
        "(nothing was sent)\n\nfix: remove it from the string it came from (raw SQL, a fragment, a constant, "
        "a name or a comment); text from outside should be decoded strictly (or with errors='replace') "
        "and passed as a parameter"
    )
