"""Per-call options and the Repo's option hooks: ``prepare_query``, ``default_options``, ``query_options``.

Every Repo call that runs a query takes the shared options ``prefix``, ``timeout``, ``log`` and
``telemetry_options``. A Repo subclass adds its own, for its ``prepare_query`` to read, by naming
them in ``query_options``; any other keyword is refused (a typo never passes silently).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from asyncecto.errors import ArgumentError
from asyncecto.query import Query

from ._core import DEFAULT, NO_CALL_OPTIONS, CallOptions, RepoCore

__all__ = ("SHARED_OPTIONS", "CallHooks", "Resolved")

#: the options every query-running call takes
SHARED_OPTIONS = ("prefix", "timeout", "log", "telemetry_options", "telemetry_event", "query_cache")
#: Ecto's query-style keywords: refused with a pointer to the query DSL (an unscoped delete_all
#: with ``where=`` must never delete every row)
_QUERY_STYLE = frozenset(
    {"where", "preload", "order_by", "limit", "offset", "group_by", "having", "distinct", "select", "update", "join"}
)
#: the shared options whose values are checked
_CHECKED = ("log", "telemetry_options", "telemetry_event", "query_cache", "prefix")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Resolved:
    """A call's query and options after ``default_options`` and ``prepare_query``."""

    __slots__ = ("call", "log", "options", "prefix", "query", "telemetry_options", "timeout")

    def __init__(self, query: Any, options: Mapping[str, Any]) -> None:
        self.query = query
        self.options = options
        self.prefix: str | None = options.get("prefix")
        self.timeout: Any = options.get("timeout", DEFAULT)
        self.log: str | bool | None = options.get("log")
        self.telemetry_options: Mapping[str, Any] | None = options.get("telemetry_options")
        #: what the call's statements run with (``RepoCore.call_options``)
        self.call = CallOptions(
            self.log,
            self.telemetry_options,
            "telemetry_event" not in options,  # only None is accepted: the event is off
            options.get("query_cache", True),
        )
        if self.call == NO_CALL_OPTIONS:
            self.call = NO_CALL_OPTIONS


def _check_value(name: str, value: Any, method: str) -> None:
    if name == "log" and not (isinstance(value, bool) or (isinstance(value, str) and value.lower() in _LOG_LEVELS)):
        raise ArgumentError(
            f"log= of Repo.{method} must be False, True or a log level name ({', '.join(_LOG_LEVELS)}), "
            f"got {value!r}; fix: log=False silences this call's query log"
        )
    if name == "telemetry_options" and not isinstance(value, Mapping):
        raise ArgumentError(
            f"telemetry_options= of Repo.{method} must be a mapping (it becomes the telemetry event's "
            f"options), got {value!r}; fix: telemetry_options={{'request_id': rid}}"
        )
    if name == "telemetry_event" and value is not None:
        raise ArgumentError(
            f"telemetry_event= of Repo.{method} can only be None (no telemetry event for this call), "
            f"got {value!r}; asyncecto's events have no names to override: attach a handler with "
            "repo.telemetry.attach(...) and tell calls apart by telemetry_options={...}"
        )
    if name == "query_cache" and not isinstance(value, bool):
        raise ArgumentError(
            f"query_cache= of Repo.{method} must be True or False, got {value!r}; "
            "fix: query_cache=False skips the plan and prepared-statement caches for this call"
        )
    if name == "prefix" and value is not None and not (isinstance(value, str) and value):
        raise ArgumentError(f"prefix= of Repo.{method} must be a non-empty schema name or None, got {value!r}")


def _checked(operation: str, answer: Any) -> tuple[Query[Any], dict[str, Any]]:
    if (
        not isinstance(answer, tuple)
        or len(answer) != 2
        or not isinstance(answer[0], Query)
        or not isinstance(answer[1], Mapping)
    ):
        raise ArgumentError(
            f"prepare_query({operation!r}, ...) must return a (query, options) tuple, got {answer!r}; "
            "fix: return query, options"
        )
    return answer[0], dict(answer[1])


class CallHooks:
    """The option hooks a Repo subclass overrides (Ecto's Repo callbacks).

    .. code-block:: python

        class MyRepo(Repo):
            query_options = frozenset({"with_deleted"})

            def prepare_query(self, operation, query, options):
                if options.get("with_deleted") or query.source.schema is not Post:
                    return query, options
                return query | where(lambda p: is_nil(p.deleted_at)), options

            def default_options(self, operation):
                return {"timeout": 30.0} if operation == "all" else {}

        await repo.all(Post)                     # live posts only
        await repo.all(Post, with_deleted=True)  # every post
    """

    _executor: RepoCore

    #: extra per-call option names this repo accepts and hands to :meth:`prepare_query`
    #: (in its ``options``); any other unknown keyword is refused
    query_options: frozenset[str] = frozenset()

    def prepare_query(self, operation: str, query: Query[Any], options: dict[str, Any]) -> tuple[Query[Any], Any]:
        """Called before every query-based operation; returns ``(query, options)`` to run.

        ``operation`` is Ecto's: ``"all"`` (also for ``one``, ``get*``, ``all_by``, ``exists``,
        ``aggregate``, ``to_sql``, ``explain``, ``reload``, and each preload query, whose options
        carry ``ecto_query="preload"``), ``"stream"``, ``"update_all"``, ``"delete_all"`` or
        ``"insert_all"`` (its rows' query).
        ``options`` holds the call's options (after :meth:`default_options`), the ones named in
        :attr:`query_options` included. Not called for single-struct writes, raw SQL, nor joins.
        The default returns both unchanged.
        """
        return query, options

    def default_options(self, operation: str) -> Mapping[str, Any]:
        """Options for ``operation`` that the call's own options override (default: none).

        ``operation`` is ``"all"``, ``"stream"``, ``"update_all"``, ``"delete_all"``, ``"preload"``,
        ``"query"`` (raw SQL), ``"insert"``, ``"update"``, ``"delete"``, ``"insert_or_update"``,
        ``"insert_all"``, ``"reload"``, ``"transaction"``, ``"copy_to"``, ``"copy_from"`` or ``"notify"``.
        Keys are the shared options or names in :attr:`query_options`.
        """
        return {}

    def _check_options(self, method: str, given: Mapping[str, Any], extra_ok: bool = True) -> None:
        allowed = type(self).query_options if extra_ok else frozenset()
        for name in given:
            if name in SHARED_OPTIONS or name in allowed:
                continue
            if name in _QUERY_STYLE:
                raise ArgumentError(
                    f"unsupported option {name!r} for Repo.{method}; instead, build a query with "
                    f"asyncecto.query: repo.{method}(from_(Post) | {name}(...))"
                )
            declared = (
                f"; to hand your own option to prepare_query, name it in your Repo subclass: "
                f"query_options = frozenset({{{name!r}}})"
                if extra_ok
                else ""
            )
            raise ArgumentError(
                f"unknown option {name!r} for Repo.{method}; the options are {', '.join(SHARED_OPTIONS)}{declared}"
            )

    def _resolve(
        self,
        operation: str,
        method: str,
        query: Query[Any] | None,
        prefix: str | None,
        timeout: Any,
        log: str | bool | None,
        telemetry_options: Mapping[str, Any] | None,
        extra: Mapping[str, Any],
        prepare: bool = True,
        *,
        extra_ok: bool | None = None,
        prepare_operation: str | None = None,
    ) -> Resolved:
        """The call's options: ``default_options(operation)`` under the given ones, then ``prepare_query``.

        ``query`` is ``None`` for calls that run no query (raw SQL, preload): then
        ``prepare_query`` is not called and no extra options are accepted (``extra_ok=True``
        accepts them all the same: single-struct writes). ``prepare_operation`` names the
        ``prepare_query`` operation when it differs from ``operation`` (reload: ``"all"``).
        """
        cls = type(self)
        given: dict[str, Any] = dict(extra)
        if prefix is not None:
            given["prefix"] = prefix
        if timeout is not DEFAULT:
            given["timeout"] = timeout
        if log is not None:
            given["log"] = log
        if telemetry_options is not None:
            given["telemetry_options"] = telemetry_options
        accepts_extra = (query is not None and prepare) if extra_ok is None else extra_ok
        self._check_options(method, extra, accepts_extra)
        if cls.default_options is not CallHooks.default_options:
            defaults = self.default_options(operation)
            if not isinstance(defaults, Mapping):
                raise ArgumentError(
                    f"default_options({operation!r}) must return a mapping of options, got {defaults!r}"
                )
            self._check_options(f"{method} (from default_options)", defaults, True)
            given = {**{k: v for k, v in defaults.items() if accepts_extra or k in SHARED_OPTIONS}, **given}
        for name in _CHECKED:
            if name in given:
                _check_value(name, given[name], method)
        if query is not None and prepare and cls.prepare_query is not CallHooks.prepare_query:
            op = operation if prepare_operation is None else prepare_operation
            query, given = _checked(op, self.prepare_query(op, query, given))
            for name in _CHECKED:
                if name in given:
                    _check_value(name, given[name], method)
        return Resolved(query, given)

    def _preload_prepare(self, options: Mapping[str, Any]) -> Callable[[Query[Any]], Query[Any]] | None:
        """The call's ``prepare_query`` for its preload queries: operation ``"all"``, the call's
        options plus ``ecto_query="preload"`` (as Ecto); ``None`` when the hook is not overridden."""
        if type(self).prepare_query is CallHooks.prepare_query:
            return None
        given = {**options, "ecto_query": "preload"}

        def prepare(query: Query[Any]) -> Query[Any]:
            return _checked("all", self.prepare_query("all", query, dict(given)))[0]

        return prepare

    def _hooked(self) -> bool:
        """Whether this repo's class overrides a hook (the fast paths are skipped then)."""
        cls = type(self)
        return cls.prepare_query is not CallHooks.prepare_query or cls.default_options is not CallHooks.default_options
