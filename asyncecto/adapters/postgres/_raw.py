"""Raw SQL the Repo runs for the user: ``EXPLAIN`` and the row count of a command tag."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ("explain_generic_sql", "explain_sql", "rows_of_status")

_FLAGS = ("analyze", "verbose", "costs", "settings", "buffers", "timing", "summary")
_PREPARED = "asyncecto_explain_generic"


def _options(options: Mapping[str, object]) -> str:
    parts = [f"{name.upper()} {'TRUE' if options[name] else 'FALSE'}" for name in _FLAGS if name in options]
    parts.append(f"FORMAT {str(options.get('format', 'text')).upper()}")
    return ", ".join(parts)


def explain_sql(sql: str, options: Mapping[str, object]) -> str:
    """``EXPLAIN (<options>) sql``; only the flags present in ``options`` are sent."""
    return f"EXPLAIN ({_options(options)}) {sql}"


def explain_generic_sql(sql: str, nparams: int, options: Mapping[str, object]) -> list[str]:
    """The statements of Ecto's ``plan: :fallback_generic``: prepare ``sql``, force a generic
    plan for the transaction, explain executing it with NULL parameters, deallocate."""
    nulls = ", ".join("NULL" for _ in range(nparams))
    execute = f"EXECUTE {_PREPARED}({nulls})" if nparams else f"EXECUTE {_PREPARED}"
    return [
        f"PREPARE {_PREPARED} AS {sql}",
        "SET LOCAL plan_cache_mode = force_generic_plan",
        f"EXPLAIN ({_options(options)}) {execute}",
        f"DEALLOCATE {_PREPARED}",
    ]


def rows_of_status(status: str, returned: int) -> int:
    """Rows a raw statement returned (a query) or affected (a write), from its command tag."""
    tail = status.rsplit(" ", 1)[-1]
    verb = status.split(" ", 1)[0]
    return returned if verb in ("SELECT", "FETCH", "SHOW") or not tail.isdigit() else int(tail)
