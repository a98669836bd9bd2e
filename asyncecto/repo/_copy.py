"""``repo.copy_to`` and ``repo.copy_from``: PostgreSQL's ``COPY`` between the client and a table.

Both are one statement on the repo's statement path (``RepoCore.run``): telemetry, the test
sandbox, the task's transaction and timeouts apply as to any other call.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from asyncecto import types as t
from asyncecto._names import check_optional_name
from asyncecto.adapters import CopyIn, CopyOut
from asyncecto.errors import ArgumentError, AsyncEctoError
from asyncecto.query import Query
from asyncecto.query._sources import to_query
from asyncecto.schema import SchemaInfo, schema_info

from ._core import RepoCore
from ._insert_all import _autogenerate, _header, resolve_target
from ._plan_sql import prepared_all

__all__ = ("FORMATS", "copy_from", "copy_to")

FORMATS = ("text", "csv", "binary")


def _sink(output: Any, failed: list[BaseException]) -> tuple[Callable[[bytes], Awaitable[None]], list[bytes]]:
    """A coroutine function writing each chunk to ``output``, and the chunks kept when it is ``None``;
    what ``output`` raises is also put in ``failed`` (so it is not mistaken for the driver's error)."""
    chunks: list[bytes] = []
    if output is None:

        async def keep(data: bytes) -> None:
            chunks.append(bytes(data))

        return keep, chunks
    write = getattr(output, "write", None)
    target = write if callable(write) else output
    if not callable(target):
        raise ArgumentError(
            f"copy_to output= must be a binary file, a callable or None, got {output!r}; "
            "fix: e.g. output=open('posts.csv', 'wb'), or leave it out to get the bytes back"
        )

    async def send(data: bytes) -> None:
        try:
            result = target(bytes(data))
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            failed.append(exc)
            raise

    return send, chunks


async def copy_to(
    core: RepoCore,
    source: Any,
    params: Any,
    *,
    format: str,
    header: bool,
    output: Any,
    prefix: str | None,
    timeout: Any,
) -> bytes | int:
    check_optional_name(prefix, "prefix")
    if format not in FORMATS:
        raise ArgumentError(f"copy_to format= must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    if header and format != "csv":
        raise ArgumentError(f"copy_to header=True needs format='csv', got format={format!r}")
    if isinstance(source, str):
        if core.adapter.copy_stdio(source) is not None:
            raise ArgumentError(
                f"copy_to takes the query whose rows to copy, not a COPY statement: {source[:80]!r}; "
                "fix: e.g. repo.copy_to('SELECT * FROM posts', format='csv') or repo.copy_to(Post)"
            )
        sql, args, table = source, list(params), None
    else:
        if params:
            raise ArgumentError("copy_to params apply to SQL text; a query carries its own values")
        q = to_query(source)
        if q.preloads:
            raise ArgumentError(f"copy_to copies rows, it cannot preload: {q!r}")
        sql, _loader, args = prepared_all(core, q, prefix)
        table = _table(q)
    failed: list[BaseException] = []
    sink, chunks = _sink(output, failed)
    statement = core.adapter.copy_out_sql(sql, format, header)
    try:
        count, _ = await core.run(
            "copy_out", statement, [CopyOut(sql, tuple(args), sink, format, header)], timeout, table
        )
    except AsyncEctoError as exc:
        if failed and exc.__cause__ is failed[0]:  # the output's own error (an OSError looks like the driver's)
            raise failed[0] from None
        raise
    return b"".join(chunks) if output is None else int(count)


def _table(q: Query[Any]) -> str | None:
    first = q.sources[0] if q.sources else None
    return getattr(first, "table", None)


async def copy_from(core: RepoCore, target: Any, rows: Any, *, prefix: str | None, timeout: Any) -> int:
    check_optional_name(prefix, "prefix")
    table, schema = resolve_target(target)
    info = schema_info(schema) if schema is not None else None
    eff_prefix = prefix if prefix is not None else ((info.prefix if info is not None else None) or core.config.prefix)
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Iterable | AsyncIterable):
        raise ArgumentError(
            f"copy_from needs an iterable of rows (mappings of field to value), got {rows!r}; "
            "fix: wrap one row in a list"
        )
    if isinstance(rows, AsyncIterable):
        iterator = aiter(rows)
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            return 0
    else:
        sync = iter(rows)
        try:
            first = next(sync)
        except StopIteration:
            return 0
    header = _header(info, [first])
    names: dict[str, list[Any]] = {n: [] for n in header}
    if info is not None:
        _autogenerate(info, names, 0, None)  # adds the generated keys (UUIDs) the rows leave out
    cols = [info.fields[n].source for n in names] if info is not None else list(names)
    dump = _Dumper(info, header, [n for n in names if n not in header])
    records: Iterable[tuple[Any, ...]] | AsyncIterable[tuple[Any, ...]]
    if isinstance(rows, AsyncIterable):
        records = dump.stream(first, iterator)
    elif isinstance(rows, Sequence):
        records = list(dump.rows(first, sync))  # a list is checked and dumped before any SQL, as insert_all
    else:
        records = dump.rows(first, sync)  # read as the load goes: a bad row aborts it, nothing is written
    copy = CopyIn(eff_prefix, table, tuple(cols), records)
    count, _ = await core.run("copy", core.adapter.copy_sql(eff_prefix, table, cols), [copy], timeout, table)
    return int(count)


class _Dumper:
    """Rows checked against the first one's keys and dumped by their fields' types, one at a time."""

    def __init__(self, info: SchemaInfo | None, header: list[str], generated: list[str]) -> None:
        self.info, self.header, self.keys = info, header, set(header)
        fields = info.fields if info is not None else {}
        self.types = [fields[n].type if info is not None else None for n in header]
        self.generators = [fields[n].autogenerate for n in generated]

    def row(self, i: int, row: Any) -> tuple[Any, ...]:
        if not isinstance(row, Mapping):
            raise ArgumentError(f"copy_from rows must be mappings of field to value, got {row!r} at row {i}")
        if row.keys() != self.keys:
            missing = sorted(self.keys - set(row), key=str)
            extra = sorted(set(row) - self.keys, key=str)
            raise ArgumentError(
                f"copy_from row {i} has different keys from row 0 (missing: {missing or 'none'}, "
                f"extra: {extra or 'none'}); COPY cannot send a column's DEFAULT. fix: give each row every "
                "field (None for NULL), or use repo.insert_all, which sends DEFAULT for a field a row leaves out"
            )
        out = []
        for name, typ in zip(self.header, self.types, strict=True):
            v = row[name]
            if typ is not None and v is not None:
                assert self.info is not None
                v = t.dump_value(typ, v, field=name, schema=self.info.name)
            out.append(v)
        out.extend(g() for g in self.generators if g is not None)
        return tuple(out)

    def rows(self, first: Any, rest: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
        yield self.row(0, first)
        for i, row in enumerate(rest, 1):
            yield self.row(i, row)

    async def stream(self, first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[tuple[Any, ...]]:
        yield self.row(0, first)
        i = 1
        async for row in rest:
            yield self.row(i, row)
            i += 1
