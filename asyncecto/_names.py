"""Names that end up in SQL as identifiers, checked where they enter asyncecto.

A prefix, table, column, index, constraint or channel name is written into SQL as a quoted
identifier. PostgreSQL keeps only the first 63 bytes of a name (``NAMEDATALEN - 1``) and drops
the rest without an error, so ``prefix="t" * 63 + "_other_tenant"`` would read schema
``"ttt…t"``: another tenant's rows. A name the database would change, or cannot hold (NUL, a
lone surrogate, the empty string), is refused with :class:`~asyncecto.errors.IdentifierError`
where it enters (a schema definition, a query step, a repo option, a migration command), so no
SQL is sent. Nothing is ever truncated.

:data:`MAX_NAME_BYTES` is the portable limit asyncecto holds every name to: PostgreSQL's (the
strictest database it targets). An adapter enforces its own limit again where it quotes a name.

>>> check_name("posts", "table")
'posts'
>>> try:
...     check_name("é" * 32, "prefix")
... except IdentifierError as e:
...     print(e.size, e.fix)
64 shorten it to at most 63 bytes
"""

from __future__ import annotations

from typing import Final

from asyncecto.errors import IdentifierError

__all__ = ("MAX_NAME_BYTES", "check_generated_name", "check_name", "check_optional_name", "name_problem")

#: the most UTF-8 bytes a name may have: PostgreSQL's ``NAMEDATALEN - 1``
MAX_NAME_BYTES: Final = 63


def name_problem(name: str, limit: int = MAX_NAME_BYTES) -> tuple[str, str, int | None] | None:
    """``None`` when the string ``name`` can be written as an identifier unchanged, else
    ``(reason, fix, size in bytes or None)``."""
    if not name:
        return "it is empty", "give a non-empty name", 0
    if "\x00" in name:
        return (
            "it contains a NUL character, which no database name can hold",
            "remove the NUL character ('\\x00')",
            None,
        )
    if name.isascii():
        size = len(name)
    else:
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError as exc:
            bad = name[exc.start]
            return (
                f"it contains the lone surrogate {bad!r} at position {exc.start}, which is not text (no UTF-8 for it)",
                "remove it; it usually comes from bytes decoded with errors='surrogateescape'",
                None,
            )
    if size > limit:
        chars = "" if size == len(name) else f" ({len(name)} characters)"
        return (
            f"it is {size} bytes long in UTF-8{chars}; PostgreSQL keeps only {limit} bytes of a name "
            "and silently drops the rest",
            f"shorten it to at most {limit} bytes",
            size,
        )
    return None


def check_name(name: object, kind: str, *, limit: int = MAX_NAME_BYTES, fix: str | None = None) -> str:
    """``name`` if it can be written into SQL as the identifier ``kind`` unchanged, else an
    :class:`~asyncecto.errors.IdentifierError` naming it, its size and the fix (``fix`` replaces
    the generic one)."""
    if not isinstance(name, str):
        raise IdentifierError(
            kind, name, f"expected a str, got {type(name).__name__}", f"pass the {kind} as a string", limit=limit
        )
    problem = name_problem(name, limit)
    if problem is not None:
        reason, generic_fix, size = problem
        raise IdentifierError(kind, name, reason, fix or generic_fix, size=size, limit=limit)
    return name


def check_optional_name(name: object, kind: str) -> str | None:
    """:func:`check_name`, letting ``None`` (no name: the default) pass."""
    return None if name is None else check_name(name, kind)


def check_generated_name(name: str, kind: str, option: str) -> str:
    """A name asyncecto derived (``posts_title_index``): over the limit it is refused with the
    fix of passing ``option`` (``"name="``) explicitly, never truncated as PostgreSQL would."""
    problem = name_problem(name)
    if problem is not None and problem[2] is not None:
        reason, _fix, size = problem
        raise IdentifierError(
            kind,
            name,
            f"derived from the table and column names, {reason}",
            f"pass {option} explicitly with a name of at most {MAX_NAME_BYTES} bytes",
            size=size,
        )
    return check_name(name, kind)
