"""The Repo's transactions: ``transaction`` (also of a Multi, with retries), ``rollback``, ``checkout``, ``stream``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast, overload

from asyncecto.errors import (
    ArgumentError,
    FailoverError,
    QueryError,
    RepoStateError,
    Rollback,
    TransactionConflictError,
)
from asyncecto.multi import Multi
from asyncecto.query._sources import to_query

from ._api_reads import LogOption, Queryable
from ._core import DEFAULT, NO_CALL_OPTIONS, Bound, CallOptions, RepoCore
from ._multi import run_multi
from ._options import CallHooks
from ._plan_sql import prepared_all
from ._transaction import Checkout, Transaction

if TYPE_CHECKING:
    from ._repo import Repo

__all__ = ("Transactions",)

_T = TypeVar("_T")


async def _with_retry(attempt: Callable[[], Awaitable[Any]], retries: int) -> Any:
    """``attempt()``, again (after a short, growing pause) on a serialization failure or deadlock, or
    when the server stopped being the primary (``FailoverError``: the retry reaches the new one)."""
    for n in range(retries):
        try:
            return await attempt()
        except (TransactionConflictError, FailoverError):
            await asyncio.sleep(0.005 * 2**n * (1 + random.random()))
    return await attempt()  # the last try: its conflict propagates


def _checked_transaction(answer: Any) -> tuple[Any, dict[str, Any]]:
    if (
        not isinstance(answer, tuple)
        or len(answer) != 2
        or not (answer[0] is None or isinstance(answer[0], Multi) or callable(answer[0]))
        or not isinstance(answer[1], Mapping)
    ):
        raise ArgumentError(
            f"prepare_transaction(fn, options) must return a (fn_or_multi, options) tuple, got {answer!r}; "
            "fix: return fn, options"
        )
    return answer[0], dict(answer[1])


class _CallTransaction(Transaction):
    """A transaction whose own statements (BEGIN, SAVEPOINT, COMMIT, ROLLBACK, RELEASE) run with the
    call's ``log``/``telemetry_options``; the statements of the block keep their own (as Ecto)."""

    def __init__(
        self,
        core: RepoCore,
        isolation: str | None,
        read_only: bool,
        call: CallOptions,
    ) -> None:
        super().__init__(core, isolation, read_only)
        self._call = call

    async def _exec(self, bound: Bound, sql: str, budget: float | None = None) -> str:
        with self.core.call_options(self._call):
            return await super()._exec(bound, sql, budget)


class Transactions(CallHooks):
    """Transactions, savepoints, checkouts and streams inside them."""

    _executor: RepoCore

    @overload
    def transaction(
        self,
        fn: None = None,
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Transaction: ...
    @overload
    def transaction(
        self,
        fn: Multi,
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Awaitable[dict[Any, Any]]: ...
    @overload
    def transaction(
        self,
        fn: Callable[..., Awaitable[_T]],
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Awaitable[_T]: ...
    def transaction(
        self,
        fn: Callable[..., Awaitable[Any]] | Multi | None = None,
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """A transaction: ``async with repo.transaction():``, ``await repo.transaction(fn)`` or
        ``await repo.transaction(multi)`` (the Multi's changes dict, or ``MultiError``).

        Every repo call in the block, from this task, uses its connection. An exception rolls
        back and propagates; ``repo.rollback(value)`` rolls back and ends the block quietly
        (``await repo.transaction(fn)`` then returns ``value``). A transaction inside another
        is a savepoint: its failure rolls back only its own work.

        :param fn: an async function taking the repo (or nothing); its result is returned
        :param isolation: ``read_committed``, ``repeatable_read`` or ``serializable``
        :param read_only: ``BEGIN … READ ONLY``
        :param retry: re-run ``fn`` (or the Multi) up to this many more times when the transaction
            fails with a serialization failure or a deadlock (``TransactionConflictError``), or because
            its server stopped being the primary (``FailoverError``: the retry reaches the new one)
        :param log: ``False`` or a level name for the transaction's own statements (BEGIN, COMMIT,
            ROLLBACK, savepoints); the calls in the block keep their own options, as in Ecto
        :param telemetry_options: a mapping, the ``options`` of those statements' telemetry events

        ``default_options("transaction")`` applies (its ``log``/``telemetry_options``).

        .. code-block:: python

            async with repo.transaction(log=False):
                await repo.insert(post)  # logged; BEGIN and COMMIT are not
        """
        if type(self).prepare_transaction is not Transactions.prepare_transaction:
            given: dict[str, Any] = {"isolation": isolation, "read_only": read_only, "retry": retry, **options}
            if log is not None:
                given["log"] = log
            if telemetry_options is not None:
                given["telemetry_options"] = telemetry_options
            fn, given = _checked_transaction(self.prepare_transaction(fn, given))
            isolation = given.pop("isolation", None)
            read_only = given.pop("read_only", False)
            retry = given.pop("retry", 0)
            log = given.pop("log", None)
            telemetry_options = given.pop("telemetry_options", None)
            options = given
        return self._transaction(
            fn,
            isolation=isolation,
            read_only=read_only,
            retry=retry,
            log=log,
            telemetry_options=telemetry_options,
            **options,
        )

    def _transaction(
        self,
        fn: Callable[..., Awaitable[Any]] | Multi | None,
        /,
        *,
        isolation: str | None = None,
        read_only: bool = False,
        retry: int = 0,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """:meth:`transaction` after :meth:`prepare_transaction` (a retry's next attempt starts here)."""
        r = self._resolve(
            "transaction", "transaction", None, None, DEFAULT, log, telemetry_options, options, extra_ok=True
        )
        if retry < 0:
            raise ArgumentError(f"retry= is how many more times to run the transaction, got {retry!r}; use 0 or more")
        if retry:
            if fn is None:
                raise ArgumentError(
                    "retry= needs a function (or Multi) to run again: await repo.transaction(fn, retry=3)"
                )
            if self.in_transaction():
                raise ArgumentError(
                    "retry= works on the outermost transaction only: inside another one, the conflict has "
                    "already aborted the outer transaction; put retry= on the outermost repo.transaction(...)"
                )
            return _with_retry(
                lambda: self._transaction(
                    fn,
                    isolation=isolation,
                    read_only=read_only,
                    log=log,
                    telemetry_options=telemetry_options,
                    **options,
                ),
                retry,
            )
        core = self._executor
        if r.call is NO_CALL_OPTIONS:
            tx = Transaction(core, isolation, read_only)
        else:
            tx = _CallTransaction(core, isolation, read_only, r.call)
        if isinstance(fn, Multi):
            return run_multi(cast("Repo", self), fn, isolation, read_only, tx)
        return tx if fn is None else tx.run(fn)

    def prepare_transaction(
        self, fn: Callable[..., Awaitable[Any]] | Multi | None, options: dict[str, Any]
    ) -> tuple[Callable[..., Awaitable[Any]] | Multi | None, Mapping[str, Any]]:
        """Called before every :meth:`transaction` (Ecto's ``prepare_transaction/2``); returns
        ``(fn_or_multi, options)`` to run.

        ``fn`` is the call's function or Multi (``None`` in ``async with repo.transaction():``);
        ``options`` holds ``isolation``, ``read_only``, ``retry``, the given ``log`` /
        ``telemetry_options`` and the call's own options (names in :attr:`query_options`).
        It runs once per call (not again on a retry). The default returns both unchanged.

        .. code-block:: python

            class MyRepo(Repo):
                query_options = frozenset({"audit"})

                def prepare_transaction(self, fn, options):
                    if options.pop("audit", False):
                        audit_log.append("transaction")
                    return fn, {**options, "isolation": "serializable"}
        """
        return fn, options

    def rollback(self, value: Any = None) -> NoReturn:
        """Roll back the innermost transaction of this task; ``transaction(fn)`` returns ``value``.

        It raises :class:`~asyncecto.errors.Rollback`, a ``BaseException`` (as ``CancelledError`` is):
        ``except Exception`` between here and the block lets it pass.

        :raises RepoStateError: outside of a transaction, or in a task other than the transaction's
        """
        bound = self._executor.bound()
        if bound is None or bound.depth == 0:
            raise RepoStateError("call rollback", "outside of a transaction", "call it inside repo.transaction()")
        self._executor._check_owner(bound)  # a child task's Rollback would end the child, not the block
        raise Rollback(value, self)

    def in_transaction(self) -> bool:
        """Whether this task is inside a transaction of this repo."""
        bound = self._executor.bound()
        return bound is not None and bound.depth > 0

    def checkout(self) -> Checkout:
        """``async with repo.checkout():`` pins one connection to this task (no transaction)."""
        return Checkout(self._executor)

    def checked_out(self) -> bool:
        """Whether this task holds a connection of this repo: inside :meth:`checkout` or a transaction.

        .. code-block:: python

            assert not repo.checked_out()
            async with repo.checkout():
                assert repo.checked_out()
        """
        return self._executor.holds_connection()

    async def disconnect_all(self, interval: float = 0.0) -> None:
        """Close every pooled connection, each at a random moment within ``interval`` seconds.

        An idle connection is closed when its moment comes; one in use then is closed when it is
        checked in (its holder's work is not interrupted). New connections open as needed, so
        the repo keeps working; use it after a failover or a change of server settings
        (Ecto's ``disconnect_all``; ``interval`` spreads reconnections out).

        .. code-block:: python

            await repo.disconnect_all(interval=5.0)

        :raises ArgumentError: ``interval`` is not a number of seconds >= 0
        :raises RepoStateError: the repo is not running
        """
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval >= 0:
            raise ArgumentError(
                f"disconnect_all interval must be a number of seconds >= 0, got {interval!r}; "
                "fix: repo.disconnect_all(interval=5.0)"
            )
        await self._executor.disconnect_pool(float(interval))

    async def stream(
        self,
        queryable: Queryable[_T],
        *,
        max_rows: int = 500,
        prefix: str | None = None,
        timeout: Any = DEFAULT,
        log: LogOption = None,
        telemetry_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncGenerator[_T, None]:
        """Rows of a query through a server-side cursor, ``max_rows`` at a time, inside a transaction.

        ``timeout`` bounds each batch's fetch (the repo's server-side limit applies otherwise).
        Each fetch emits a telemetry event. ``prepare_query("stream", ...)`` runs first.

        .. code-block:: python

            async with repo.transaction():
                async for post in repo.stream(from_(Post)):
                    ...

        :raises RepoStateError: outside of a transaction, or iterated after it ended
        """
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ArgumentError(f"max_rows must be a positive integer, got {max_rows!r}")
        core = self._executor
        bound = core.require_transaction("stream")
        r = self._resolve("stream", "stream", to_query(queryable), prefix, timeout, log, telemetry_options, options)
        q = r.query
        if q.preloads:
            raise QueryError(f"preloads are not supported on streams; preload each batch instead: {q!r}")
        with core.call_options(r.call):
            sql, loader, params = prepared_all(core, q, r.prefix)
        call = None if r.call is NO_CALL_OPTIONS else r.call
        source = q.source.table if isinstance(q.source.table, str) else None
        async with aclosing(core.stream_batches(bound, sql, params, max_rows, r.timeout, source, call)) as batches:
            async for rows in batches:
                for item in loader(rows) if loader is not None else rows:
                    yield item
