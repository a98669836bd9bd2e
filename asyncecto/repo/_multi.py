"""Running a :class:`~asyncecto.multi.Multi` inside one transaction."""

from __future__ import annotations

import inspect
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import attrs

from asyncecto.changeset import Changeset
from asyncecto.errors import (
    ArgumentError,
    ConnectionLostError,
    DatabaseUnavailableError,
    InvalidChangesetError,
    MultiError,
    TransactionConflictError,
)
from asyncecto.multi import WRITES, Multi, Operation, is_function, upsert_action

from ._core import executor_of
from ._transaction import Transaction, own_rollback

if TYPE_CHECKING:
    from ._repo import Repo

__all__ = ("run_multi",)


def _preflight(multi: Multi) -> tuple[Hashable, Any] | None:
    """``(name, value)`` of the first ``error`` operation or invalid changeset given as data:
    the Multi fails with it before running anything."""
    for name, op in multi.operations:
        if op.kind == "error":
            return name, op.payload
        if op.kind in WRITES and isinstance(op.payload, Changeset) and not op.payload.valid:
            action = upsert_action(op.payload) if op.kind == "insert_or_update" else op.kind
            return name, attrs.evolve(op.payload, action=action)
    return None


async def _resolve(payload: Any, changes: dict[Hashable, Any]) -> Any:
    if is_function(payload):
        payload = payload(dict(changes))
        if inspect.isawaitable(payload):
            payload = await payload
    return payload


class _Failed(Exception):
    def __init__(self, name: Hashable, value: Any) -> None:
        self.name, self.value = name, value


async def _step(repo: Repo, name: Hashable, op: Operation, changes: dict[Hashable, Any]) -> Any:
    kind, opts = op.kind, op.opts
    if kind == "put":
        return op.payload
    if kind == "run":
        result = op.payload(repo, dict(changes))
        return await result if inspect.isawaitable(result) else result
    if kind == "error":  # reached only through a merged Multi
        raise _Failed(name, op.payload)
    if kind == "insert_all":
        table, entries = op.payload
        return await repo.insert_all(table, await _resolve(entries, changes), **opts)
    target = await _resolve(op.payload, changes)
    if kind in WRITES:
        try:
            return await getattr(repo, kind)(target, **opts)
        except InvalidChangesetError as exc:
            raise _Failed(name, exc.changeset) from None
    return await getattr(repo, kind)(target, **opts)  # one, all, exists, update_all, delete_all


async def _merge(repo: Repo, op: Operation, changes: dict[Hashable, Any], reserved: set[Hashable]) -> None:
    sub = await _resolve(op.payload, changes)
    if not isinstance(sub, Multi):
        raise ArgumentError(f"Multi.merge expects its function to return a Multi, got {sub!r}")
    clash = [n for n in sub.names if n in changes or n in reserved]
    if clash:
        raise ArgumentError(
            f"cannot merge Multi; the following operations were found in both: {', '.join(map(repr, clash))}"
        )
    failed = _preflight(sub)
    if failed is not None:  # as Ecto: the changes so far are the enclosing Multi's
        raise _Failed(*failed)
    await _run_ops(repo, sub, changes, reserved)


async def _run_ops(repo: Repo, multi: Multi, changes: dict[Hashable, Any], reserved: set[Hashable]) -> None:
    """Run each operation, recording its result; ``reserved`` holds the names of every enclosing Multi."""
    reserved = reserved | set(multi.names)
    for name, op in multi.operations:
        try:
            if op.kind == "inspect":
                only = op.opts.get("only")
                op.payload({k: v for k, v in changes.items() if only is None or k in only})
            elif op.kind == "merge":
                await _merge(repo, op, changes, reserved)
            else:
                changes[name] = await _step(repo, name, op, changes)
        except (_Failed, ArgumentError, ConnectionLostError, DatabaseUnavailableError, TransactionConflictError):
            raise  # misuse raises; a lost link is not the operation's failure; conflicts stay retryable
        except Exception as exc:  # the operation failed: a constraint, a stale entry, a raised error, a Multi it ran
            raise _Failed(name, exc) from exc
        except BaseException as exc:  # Rollback (alone, or in a task group's group); cancellation goes on
            _raise_rollback(exc, repo, name)
            raise


def _raise_rollback(exc: BaseException, repo: Repo, name: Hashable) -> None:
    """``repo.rollback(value)`` in an operation fails the Multi with ``value``; another repo's passes."""
    signal, rest = own_rollback(exc, repo)
    if signal is not None and rest is None:
        raise _Failed(name, signal.value) from None


async def run_multi(
    repo: Repo, multi: Multi, isolation: str | None, read_only: bool, tx: Transaction | None = None
) -> dict[Hashable, Any]:
    """The changes of a Multi run in one transaction (``tx``, else a new one), or ``MultiError`` after rolling back."""
    first = _preflight(multi)
    if first is not None:
        raise MultiError(*first, {})
    if not multi.operations:
        return {}
    changes: dict[Hashable, Any] = {}
    try:
        async with tx or Transaction(executor_of(repo), isolation, read_only):
            await _run_ops(repo, multi, changes, set())
    except _Failed as failed:
        raise MultiError(failed.name, failed.value, dict(changes)) from failed.__cause__
    return changes
