"""The Repo's writes: ``insert``, ``update``, ``delete``, ``insert_or_update``, ``insert_all``, ``reload``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, overload

import attrs

from asyncecto._names import check_optional_name
from asyncecto.changeset import Changeset
from asyncecto.errors import (
    ArgumentError,
    NoResultsError,
)
from asyncecto.query import Query
from asyncecto.query._ast import FieldRef, Filter, In, Param
from asyncecto.query._on_conflict import ConflictTarget, OnConflict, UnsafeFragment
from asyncecto.query._sources import to_query
from asyncecto.schema import Meta, meta

from . import _insert_all, _read, _write
from ._api_reads import LogOption
from ._core import DEFAULT, RepoCore
from ._options import CallHooks, Resolved

__all__ = ("Writes",)

_T = TypeVar("_T")
#: the stale options of a call that gives none (a ``Stale`` is immutable: one serves every such call)
_NO_STALE = _write.Stale()


class Writes(CallHooks):
    """Writing structs and changesets: insert, update, delete, upsert, ``insert_all``, reload.

    Every method takes the shared options ``prefix``, ``timeout``, ``log`` (``False`` or a level
    name) and ``telemetry_options`` (a mapping, found in each telemetry event's ``options``) for
    every statement it runs (a transaction it opens included), plus the names in ``query_options``.
    ``default_options`` is called with the method's name (``"insert"``, ``"update"``, ``"delete"``,
    ``"insert_or_update"``, ``"insert_all"``, ``"reload"``).
    """

    _executor: RepoCore

    def _write_options(
        self,
        operation: str,
        prefix: str | None,
        timeout: Any,
        log: LogOption,
        telemetry_options: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> Resolved:
        """The options of a single-struct write (no ``prepare_query``: Ecto calls it for queries only)."""
        return self._resolve(
            operation, operation, None, prefix, timeout, log, telemetry_options, options, extra_ok=True
        )

    def _plain_write(
        self,
        prefix: str | None,
        log: LogOption,
        telemetry_options: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> bool:
        """No option needs resolving (none given, no ``default_options`` hook): the write takes the
        direct path, with what ``_write_options`` would resolve to (no prefix, the given timeout)."""
        return prefix is None and log is None and telemetry_options is None and not options and not self._hooked()

    @overload
    async def insert(
        self,
        value: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T: ...
    @overload
    async def insert(
        self,
        value: _T,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T: ...
    async def insert(
        self,
        value: Any,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Insert a struct or a changeset's data with its changes; returns the loaded struct.

        Fields that are ``None`` are left to the database's defaults. The generated
        primary key and ``read_after_writes`` fields come back via ``RETURNING``.

        An upsert (``on_conflict=``, as in :meth:`insert_all`) returns the given values with
        the stored primary key, and ``meta(result).inserted`` tells a new row (``True``) from
        a conflicting one that was updated or kept (``False``); ``returning=True`` reads the
        row as stored. A conflict query whose ``where`` matched nothing is stale (see :meth:`update`).

        :param returning: ``True`` for every field, or field names to read back
        :raises InvalidChangesetError: the changeset is invalid (nothing is sent)
        :raises CastError: a value does not fit its field's type (nothing is sent)
        :raises ConstraintError: a database constraint fired that the changeset did not declare
        """
        upsert = None
        if on_conflict not in (None, "raise") or conflict_target is not None:
            stale = _write.Stale(allow_stale, stale_error_field, stale_error_message)
            upsert = _write.Upsert(on_conflict, conflict_target, stale)
        core = self._executor
        if self._plain_write(prefix, log, telemetry_options, options):
            return await _write.insert(core, value, None, returning, timeout, upsert)
        r = self._write_options("insert", prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _write.insert(core, value, r.prefix, returning, r.timeout, upsert)

    async def insert_all(
        self,
        target: type[Any] | str | tuple[str, type[Any]],
        entries: Sequence[Mapping[str, Any]] | Query[Any],
        *,
        returning: bool | Sequence[str] | UnsafeFragment | None = None,
        on_conflict: OnConflict = "raise",
        conflict_target: ConflictTarget = None,
        placeholders: Mapping[str, Any] | None = None,
        timestamps: bool = False,
        replace_changed: bool = True,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> tuple[int, list[Any] | None]:
        """Insert many rows at once; ``(count, returned)`` (``returned`` is ``None`` without ``returning``).

        ``target`` is a schema (values are dumped by field type, names mapped to columns), a
        table name (values sent as they are), or ``(table, Schema)``. ``entries`` is a list of
        dicts with the same keys, or a query selecting a dict (``INSERT … SELECT``). No
        changesets, validations or associations; only a UUID primary key is generated, and
        timestamps only with ``timestamps=True``. An empty list sends nothing.

        ``on_conflict``: ``"raise"`` (default), ``"nothing"``, ``"replace_all"``,
        ``("replace", fields)``, ``("replace_all_except", fields)``, an update dict
        (``{"set": {...}, "inc": {...}}``) or an update query; all but ``"nothing"`` need
        ``conflict_target`` (fields, or :func:`asyncecto.unsafe_fragment`). The stored row keeps
        its primary key (and ``inserted_at``). Returned structs say ``meta(s).inserted``.

        >>> await repo.insert_all(Post, [{"title": "a"}, {"title": "b"}], returning=["id"])  # doctest: +SKIP
        (2, [Post(id=1, ...), Post(id=2, ...)])

        :param placeholders: values sent once and used in rows as ``placeholder(key)``
        :param timestamps: fill the schema's ``inserted_at``/``updated_at`` (and set ``updated_at``
            when an upsert updates)
        :param replace_changed: ``False`` keeps the ``conflict_target`` fields in the SET of
            ``"replace_all"``/``("replace_all_except", ...)`` (Ecto's ``:replace_changed``)
        :param returning: also ``unsafe_fragment("id, lower(title) AS t")``: that RETURNING list as
            written (never from user input); rows come back as dicts by column name
        :raises ArgumentError: bad options or rows (nothing is sent)

        Rows from a query go through ``prepare_query("insert_all", query, options)`` (as Ecto).
        """
        core = self._executor
        query = entries if isinstance(entries, Query) else None
        r = self._resolve(
            "insert_all", "insert_all", query, prefix, timeout, log, telemetry_options, options, extra_ok=True
        )
        with core.call_options(r.call):
            return await _insert_all.insert_all(
                core,
                target,
                entries if query is None else r.query,
                returning=returning,
                on_conflict=on_conflict,
                conflict_target=conflict_target,
                placeholders=placeholders,
                timestamps=timestamps,
                prefix=r.prefix,
                timeout=r.timeout,
                replace_changed=replace_changed,
            )

    async def update(
        self,
        changeset: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        force: bool = False,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T:
        """Write a changeset's changes to its struct's row; with no changes nothing is sent.

        :param force: update (and bump ``updated_at``) even with no changes
        :param allow_stale: return the struct unchanged instead of raising when no row matched
        :param stale_error_field: when no row matched, raise ``InvalidChangesetError`` with this
            field's error ``stale_error_message`` (metadata ``stale: True``) instead
        :raises ArgumentError: given a struct instead of a changeset
        :raises StaleEntryError: no row has the struct's primary key (or the lock version moved on)
        """
        stale = _stale(allow_stale, stale_error_field, stale_error_message)
        core = self._executor
        if self._plain_write(prefix, log, telemetry_options, options):
            return await _write.update(core, changeset, None, returning, force, stale, timeout)  # type: ignore[no-any-return]
        r = self._write_options("update", prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _write.update(core, changeset, r.prefix, returning, force, stale, r.timeout)  # type: ignore[no-any-return]

    @overload
    async def delete(
        self,
        value: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T: ...
    @overload
    async def delete(
        self,
        value: _T,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T: ...
    async def delete(
        self,
        value: Any,
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        allow_stale: bool = False,
        stale_error_field: str | None = None,
        stale_error_message: str = "is stale",
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Delete a struct's row; returns the struct with state ``"deleted"``.

        :param stale_error_field: as for :meth:`update`
        :raises StaleEntryError: no row has the struct's primary key
        """
        stale = _stale(allow_stale, stale_error_field, stale_error_message)
        core = self._executor
        if self._plain_write(prefix, log, telemetry_options, options):
            return await _write.delete(core, value, None, returning, stale, timeout)
        r = self._write_options("delete", prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _write.delete(core, value, r.prefix, returning, stale, r.timeout)

    async def insert_or_update(
        self,
        changeset: Changeset[_T],
        *,
        prefix: str | None = None,
        returning: bool | Sequence[str] | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T:
        """Insert when the changeset's struct is ``built``, update when it is ``loaded``.

        ``default_options("insert_or_update")`` applies (not the insert's nor the update's, as Ecto).
        """
        core = self._executor
        r = self._write_options("insert_or_update", prefix, timeout, log, telemetry_options, options)
        with core.call_options(r.call):
            return await _write.insert_or_update(core, changeset, r.prefix, returning, r.timeout)  # type: ignore[no-any-return]

    @overload
    async def reload(
        self,
        structs: list[_T],
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> list[_T | None]: ...
    @overload
    async def reload(
        self,
        structs: _T,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T | None: ...
    async def reload(
        self,
        structs: Any,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Read structs again by primary key, from their own source and prefix (or ``prefix=``).

        A list keeps its order, with ``None`` where a row no longer exists.
        ``default_options("reload")`` applies, and the query goes through
        ``prepare_query("all", ...)`` (as Ecto's reload, which runs an ``all``).
        """
        check_optional_name(prefix, "prefix")
        self._check_options("reload", options)
        many = isinstance(structs, list)
        items: list[Any] = structs if many else [structs]
        if not items:
            return []
        schema = type(items[0])
        if any(type(s) is not schema for s in items):
            raise ArgumentError(
                f"reload expects structs of one schema, got {sorted({type(s).__name__ for s in items})}"
            )
        pk = _read._single_pk(schema, "reload")
        ids = [getattr(s, pk) for s in items]
        if any(i is None for i in ids):
            raise ArgumentError(f"cannot reload a struct whose primary key {pk!r} is None")
        m: Meta = meta(items[0])
        q: Query[Any] = to_query((m.source, schema))
        q = attrs.evolve(
            q,
            source=attrs.evolve(q.source, prefix=prefix if prefix is not None else m.prefix),
            wheres=(Filter("and", In(FieldRef(0, pk), Param(ids))),),
        )
        core = self._executor
        r = self._resolve(
            "reload", "reload", q, prefix, timeout, log, telemetry_options, options, prepare_operation="all"
        )
        q = r.query
        if r.prefix is not None and r.prefix != prefix:  # from default_options or prepare_query
            q = attrs.evolve(q, source=attrs.evolve(q.source, prefix=r.prefix))
        with core.call_options(r.call):
            rows = await _read.all_(core, q, None, r.timeout)
        found = {getattr(s, pk): s for s in rows}
        result = [found.get(i) for i in ids]
        return result if many else result[0]

    async def reload_or_raise(
        self,
        struct: _T,
        *,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> _T:
        """Like :meth:`reload` for one struct, but raises when its row no longer exists."""
        found = await self.reload(
            struct, prefix=prefix, timeout=timeout, log=log, telemetry_options=telemetry_options, **options
        )
        if found is None:
            raise NoResultsError(f"could not reload {struct!r}, maybe it doesn't exist or was deleted")
        return found


def _stale(allow: bool, field: str | None, message: str) -> _write.Stale:
    """The call's stale options; the shared default when it gives none."""
    if not allow and field is None and message == "is stale":
        return _NO_STALE
    return _write.Stale(allow, field, message)
