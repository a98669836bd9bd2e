"""Hostile strings, and the harness that runs them through public entry points (issue 16's fuzz proof).

An *entry* is one public call with a hostile string in one position (a value, a name, an option).
For every (entry, string) pair the outcome must be one of:

- success, with the string given back exactly (the entry checks this itself and raises
  :class:`Mismatch` when it is not), or
- an :class:`asyncecto.errors.AsyncEctoError`, after which nothing was written: the row count of
  every table, the newest catalog entries (``pg_class``, ``pg_namespace``, ``pg_constraint``) and
  the pool's checked-out connections are what they were before the call.

Anything else (a Python or driver exception, a success that gave back something else, a call that
had to fail and did not, a write that stayed, a connection left checked out or broken) is reported
as a failing pair; :func:`run_entry` returns them all, so one assertion lists them.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import attrs

from asyncecto import Repo
from asyncecto.errors import AsyncEctoError

from .schemas import TABLES

#: id -> hostile string. Ids name the test failures; keep them short and stable.
HOSTILE: dict[str, str] = {
    "squote": "it's",
    "dquote": 'say "hi"',
    "backtick": "`rm -rf /`",
    "backslash": "back\\slash\\",
    "bs_quote": "\\'",
    "nul": "a\x00b",
    "surrogate_hi": "a\ud800b",
    "surrogate_lo": "\udfff",
    "dollar1": "$1",
    "dollar_quote": "$$; DROP TABLE posts; $$",
    "drop_table": "'; DROP TABLE posts; --",
    "dquote_drop": '"; DROP TABLE posts; --',
    "percent": "%s %(x)s %% %d",
    "braces": "{} {0} {x} {{",
    "ecto_interp": "%{count} %{nope}",
    "question": "? \\? ??",
    "rtl": "\u202eevil\u202c",
    "combining": "e\u0301\u0308",
    "emoji": "\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308",
    "newline": "line1\nline2",
    "crlf": "a\r\nb\r",
    "controls": "\t\x01\x1b[31m\x7f",
    "bom_zwsp": "\ufeff\u200b",
    "name63": "n" * 63,
    "name64": "n" * 64,
    "name65": "n" * 65,
    "bytes64": "\u00e9" * 32,  # 32 characters, 64 bytes in UTF-8
    "empty": "",
    "spaces": " \t ",
    "dunder_dict": "__dict__",
    "dunder_class": "__class__",
    "dotdot": "../..",
    "dot": ".",
    "kw_select": "SELECT",
    "kw_null": "NULL",
    "comment": "/* x */ --",
    "json": '{"a": [1, null]}',
    "long_1k": "L" * 1000,
}

HUGE_ID = "10mb"
#: 10 MB; only through the entries marked ``huge``
HUGE = "H" * (10 * 2**20)


def strings(huge: bool) -> dict[str, str]:
    """The corpus, with the 10 MB string when ``huge``."""
    return {**HOSTILE, HUGE_ID: HUGE} if huge else dict(HOSTILE)


class Mismatch(AssertionError):
    """A call succeeded but gave back something other than what it was given."""


class Accepted(AssertionError):
    """A call succeeded that had to fail (a name that names nothing, an option that is no option)."""


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}…({len(text)} chars)"


def expect(got: Any, want: Any, what: str = "value") -> None:
    """Raise :class:`Mismatch` unless ``got == want``."""
    if got != want or type(got) is not type(want):
        raise Mismatch(f"{what}: got {short(got)}, expected {short(want)}")


def refused(result: Any, what: str) -> None:
    """Called after a call that had to raise: it did not."""
    raise Accepted(f"{what} was accepted (returned {short(result)})")


# -- what "nothing written" means -------------------------------------------------------------------


def _qualified(table: str) -> str:
    return table if "." in table else f"public.{table}"


_COUNTS = ", ".join(f"(SELECT count(*) FROM {_qualified(table)})" for table in TABLES)
#: row counts of every table, and the newest catalog entries (a table, index, sequence or view; a
#: schema; a constraint): anything created gets a new, higher oid
SNAPSHOT_SQL = (
    f"SELECT {_COUNTS}, (SELECT max(oid) FROM pg_class), (SELECT max(oid) FROM pg_namespace), "
    "(SELECT max(oid) FROM pg_constraint)"
)
SNAPSHOT_NAMES = (*TABLES, "pg_class", "pg_namespace", "pg_constraint")


class Peer(Protocol):
    """Raw SQL beside the repo (the ``admin`` fixture: the sandbox's connection, or one of its own)."""

    async def fetchrow(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> Any: ...


async def snapshot(peer: Peer, extra: str | None = None) -> dict[str, Any]:
    """Row counts of every test table and the newest catalog oids, as ``peer`` sees them.
    ``extra``: SQL returning one more row to compare (say, counts in a schema of the test's own)."""
    row = await peer.fetchrow(SNAPSHOT_SQL)
    state = dict(zip(SNAPSHOT_NAMES, row, strict=True))
    if extra is not None:
        state["extra"] = tuple(await peer.fetchrow(extra))
    return state


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in after if before.get(k) != after.get(k))


Setup = Callable[[Repo, str], Awaitable[Any]]
Call = Callable[[Repo, str, Any], Awaitable[None]]


@attrs.frozen
class Entry:
    """One public call taking a hostile string: ``call(repo, s, prepared)`` with ``prepared`` what
    ``setup(repo, s)`` returned (setup runs before the snapshot, so its writes do not count)."""

    name: str
    call: Call
    huge: bool = False
    setup: Setup | None = None


@attrs.frozen
class Pair:
    """A failing (entry, string) pair: what went wrong, in a line."""

    entry: str
    string: str
    problem: str

    def __str__(self) -> str:
        return f"{self.entry} x {self.string}: {self.problem}"


def _origin(exc: BaseException) -> str:
    """Where an escaping exception was raised (the innermost asyncecto frame, else the last one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/asyncecto/" in f.filename]
    pick = ours or frames
    if not pick:
        return ""
    f = pick[-1]
    return f" at {f.filename.rsplit('/asyncecto/', 1)[-1]}:{f.lineno}"


async def run_entry(
    repo: Repo, entry: Entry, corpus: Mapping[str, str], *, peer: Peer, held: int, extra: str | None = None
) -> list[Pair]:
    """Every string of ``corpus`` through ``entry``; the pairs that broke the rules.

    After each pair the rows it left are deleted, so every pair starts from the same tables (and
    the state before a pair is known without asking, unless the entry's setup wrote).
    """
    failures: list[Pair] = []
    baseline = current = await snapshot(peer, extra)
    assert not any(baseline[table] for table in TABLES), f"the fuzz starts from empty tables: {baseline}"
    for sid, s in corpus.items():
        prepared = None
        if entry.setup is not None:
            prepared = await entry.setup(repo, s)
            current = await snapshot(peer, extra)
        problem = None
        error: AsyncEctoError | None = None
        try:
            await entry.call(repo, s, prepared)
        except AsyncEctoError as exc:
            error = exc
        except (Mismatch, Accepted) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            problem = f"leaked {type(exc).__module__}.{type(exc).__qualname__}{_origin(exc)}: {short(str(exc), 120)}"
        try:
            after = await snapshot(peer, extra)
        except Exception as broken:
            failures.append(Pair(entry.name, sid, f"{problem or 'ok'}; then the connection was unusable: {broken!r}"))
            break
        if error is not None and after != current:
            problem = f"{type(error).__name__} but the write stayed: {_diff(current, after)}"
        in_use = repo.pool_stats()["in_use"]
        if in_use != held:
            problem = f"{problem or 'ok'}; {in_use} connection(s) checked out, expected {held}"
        if problem is not None:
            failures.append(Pair(entry.name, sid, problem))
        current = await _restore(peer, baseline, after)
    return failures


async def _restore(peer: Peer, baseline: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """Delete the rows a pair left in the tables (a success's), so the next pair starts alike; the
    state after."""
    state = dict(now)
    for table in reversed(TABLES):  # children before parents
        if now[table] != baseline[table]:
            await peer.execute(f"DELETE FROM {_qualified(table)}")
            state[table] = 0
    return state


def report(failures: list[Pair]) -> str:
    return f"{len(failures)} failing pair(s):\n" + "\n".join(map(str, failures))
