"""``Multi``: named operations run in one transaction, as a value built with ``|``.

>>> from asyncecto import Multi
>>> m = Multi.new() | Multi.put("answer", 42) | Multi.run("double", lambda repo, changes: changes["answer"] * 2)
>>> [(name, kind) for name, (kind, *_rest) in m.to_list()]
[('answer', 'put'), ('double', 'run')]

``changes = await repo.transaction(m)`` runs it: a dict of every operation's result.
An invalid changeset or an ``error`` operation fails it before ``BEGIN``; a failure
raises ``MultiError(operation, value, changes_so_far)`` after rolling back.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import attrs

from asyncecto.changeset import Changeset, change
from asyncecto.errors import ArgumentError, AsyncEctoError
from asyncecto.schema import meta

__all__ = ("Call", "Multi", "Operation")

WRITES = ("insert", "update", "delete", "insert_or_update")


@attrs.frozen
class Operation:
    """One step: ``kind`` (``insert``, ``run``, ``put`` …), its ``payload`` (a changeset, a
    query, a value or a function of the changes so far) and the repo options ``opts``.
    """

    kind: str
    payload: Any
    opts: dict[str, Any] = attrs.field(factory=dict)


class _Anonymous:
    """The key of an unnamed step (``merge``, ``inspect``): never clashes, never in the changes."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


@attrs.frozen
class Multi:
    """Operations in order, each under a unique name. Build with ``Multi.new() | Multi.insert(...)``."""

    operations: tuple[tuple[Hashable, Operation], ...] = ()

    def __or__(self, step: Callable[[Multi], Multi]) -> Multi:
        return step(self)

    def __len__(self) -> int:
        return len(self.operations)

    @property
    def names(self) -> list[Hashable]:
        """The names of the named operations, in order."""
        return [n for n, _ in self.operations if not isinstance(n, _Anonymous)]

    def to_list(self) -> list[tuple[Hashable, tuple[Any, ...]]]:
        """``[(name, (kind, payload, opts)), …]`` for introspection (Ecto's ``to_list``)."""
        return [(n, (op.kind, op.payload, op.opts)) for n, op in self.operations]

    def _add(self, name: Hashable, op: Operation) -> Multi:
        try:
            hash(name)
        except TypeError:
            raise ArgumentError(f"a Multi operation name must be hashable, got {name!r}") from None
        if any(n == name for n, _ in self.operations):
            raise ArgumentError(f"{name!r} is already a member of the Multi: give each operation its own name")
        return Multi((*self.operations, (name, op)))

    # -- building ---------------------------------------------------------------------
    @staticmethod
    def new() -> Multi:
        """An empty Multi."""
        return Multi()

    @staticmethod
    def append(first: Multi, second: Multi) -> Multi:
        """``first``'s operations, then ``second``'s; a name in both raises."""
        _no_clash(first, second)
        return Multi((*first.operations, *second.operations))

    @staticmethod
    def prepend(first: Multi, second: Multi) -> Multi:
        """``second``'s operations, then ``first``'s; a name in both raises."""
        return Multi.append(second, first)

    @staticmethod
    def merge(*args: Any) -> Any:
        """Add the operations of ``fn(changes)`` (a Multi built at run time, sync or async).

        ``Multi.merge(fn)`` as a step, or ``Multi.merge(multi, fn)``; Ecto's ``merge/4``:
        ``Multi.merge(module, "function", [args])`` calls ``module.function(changes, *args)``.
        """
        args = _mfa(args, 1, "merge")
        if args:
            _callable(args[-1], "merge", "changes")
        return _apply(args, 1, lambda m, fn: m._add(_Anonymous("merge"), Operation("merge", fn)))

    @staticmethod
    def insert(*args: Any, **opts: Any) -> Any:
        """Insert a changeset or struct, or what ``fn(changes)`` returns; stores the struct."""
        return _write_step("insert", args, opts)

    @staticmethod
    def update(*args: Any, **opts: Any) -> Any:
        """Update a changeset (or ``fn(changes)``'s); stores the struct."""
        return _write_step("update", args, opts)

    @staticmethod
    def delete(*args: Any, **opts: Any) -> Any:
        """Delete a struct or changeset (or ``fn(changes)``'s); stores the deleted struct."""
        return _write_step("delete", args, opts)

    @staticmethod
    def insert_or_update(*args: Any, **opts: Any) -> Any:
        """Insert or update a changeset by its data's state (or ``fn(changes)``'s)."""
        return _write_step("insert_or_update", args, opts)

    @staticmethod
    def insert_all(*args: Any, **opts: Any) -> Any:
        """``repo.insert_all(target, entries, **opts)``; ``entries`` may be ``fn(changes)``.
        Stores ``(count, returned)``.

        ``Multi.new() | Multi.insert_all("tags", Tag, lambda ch: [{"post_id": ch["post"].id, "name": "x"}])``
        """
        return _apply(
            args, 3, lambda m, name, target, entries: m._add(name, Operation("insert_all", (target, entries), opts))
        )

    @staticmethod
    def update_all(*args: Any, **opts: Any) -> Any:
        """``repo.update_all(query, **opts)`` (query or ``fn(changes)``); stores ``(count, returned)``."""
        return _query_step("update_all", args, opts)

    @staticmethod
    def delete_all(*args: Any, **opts: Any) -> Any:
        """``repo.delete_all(query)`` (query or ``fn(changes)``); stores ``(count, returned)``."""
        return _query_step("delete_all", args, opts)

    @staticmethod
    def one(*args: Any, **opts: Any) -> Any:
        """``repo.one(query)`` (query or ``fn(changes)``); stores the struct or ``None``."""
        return _query_step("one", args, opts)

    @staticmethod
    def all(*args: Any, **opts: Any) -> Any:
        """``repo.all(query)`` (query or ``fn(changes)``); stores the list."""
        return _query_step("all", args, opts)

    @staticmethod
    def exists(*args: Any, **opts: Any) -> Any:
        """``repo.exists(query)`` (query or ``fn(changes)``); stores the boolean."""
        return _query_step("exists", args, opts)

    @staticmethod
    def run(*args: Any) -> Any:
        """Call ``fn(repo, changes)`` (sync or async) and store its result.

        To fail the Multi with a value, call ``repo.rollback(value)`` in it; an exception it
        raises fails the Multi too (the exception is the value). Either way the Multi raises
        ``MultiError(name, value, changes_so_far)`` after rolling back.

        Ecto's ``run/5``: ``Multi.run(name, module, "function", [args])`` calls
        ``module.function(repo, changes, *args)``.
        """
        args = _mfa(args, 2, "run")
        if args:
            _callable(args[-1], "run", "repo, changes")
        return _apply(args, 2, lambda m, name, fn: m._add(name, Operation("run", fn)))

    @staticmethod
    def put(*args: Any) -> Any:
        """Store ``value`` under ``name``."""
        return _apply(args, 2, lambda m, name, value: m._add(name, Operation("put", value)))

    @staticmethod
    def error(*args: Any) -> Any:
        """Fail the Multi with ``value`` under ``name``, before the transaction starts."""
        return _apply(args, 2, lambda m, name, value: m._add(name, Operation("error", value)))

    @staticmethod
    def inspect(*args: Any, only: Iterable[Hashable] | None = None, printer: Callable[[Any], Any] = print) -> Any:
        """Print the changes so far (``only`` some names) when the Multi reaches this point."""
        keep = (
            None if only is None else [only] if isinstance(only, str) or not isinstance(only, Iterable) else list(only)
        )
        return _apply(args, 0, lambda m: m._add(_Anonymous("inspect"), Operation("inspect", printer, {"only": keep})))


@attrs.frozen
class Call:
    """``target.function(*lead, *args)``: the function of a ``run``/``merge`` given as Ecto's
    ``module, function, args`` (the ``lead`` is ``repo, changes`` or ``changes``)."""

    target: Any
    function: str
    args: tuple[Any, ...]

    def __call__(self, *lead: Any) -> Any:
        return getattr(self.target, self.function)(*lead, *self.args)

    def __repr__(self) -> str:
        name = getattr(self.target, "__name__", None) or repr(self.target)
        return f"{name}.{self.function}(..., *{list(self.args)!r})"


def _mfa(args: tuple[Any, ...], arity: int, what: str) -> tuple[Any, ...]:
    """``args`` with a trailing ``module, "function", [args]`` turned into one :class:`Call`."""
    lead = 1 if args and isinstance(args[0], Multi) else 0
    if len(args) - lead != arity + 2:
        return args
    target, function, extra = args[-3:]
    if not isinstance(function, str) or isinstance(extra, str | bytes) or not isinstance(extra, list | tuple):
        example = "mod, 'fun', [1]" if arity == 1 else "'name', mod, 'fun', [1]"
        raise ArgumentError(
            f"Multi.{what}(..., module, function, args) expects a function name and a list of arguments, "
            f"got {function!r} and {extra!r}; e.g. Multi.{what}({example})"
        )
    if not callable(getattr(target, function, None)):
        raise ArgumentError(f"Multi.{what}: {target!r} has no function {function!r}")
    return (*args[:-3], Call(target, function, tuple(extra)))


def _apply(args: tuple[Any, ...], arity: int, build: Callable[..., Multi]) -> Any:
    if args and isinstance(args[0], Multi):
        if len(args) != arity + 1:
            raise ArgumentError(f"expected {arity} argument(s) after the Multi, got {len(args) - 1}")
        return build(*args)
    if len(args) != arity:
        raise ArgumentError(f"expected {arity} argument(s) (or a Multi and {arity}), got {len(args)}")
    return lambda m: build(m, *args)


def _query_step(kind: str, args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
    return _apply(args, 2, lambda m, name, q: m._add(name, Operation(kind, q, opts)))


def is_function(payload: Any) -> bool:
    """Whether an operation's payload is a function of the changes (a class is a queryable)."""
    return callable(payload) and not isinstance(payload, type | Changeset)


def _write_step(kind: str, args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
    """Check the changeset when the step is built, not when it is applied."""
    op = _write(kind, args[-2], args[-1], opts) if len(args) >= 2 else None
    return _apply(args, 2, lambda m, name, _v: m._add(name, op))


def _callable(fn: Any, what: str, params: str) -> Any:
    """``fn``, which must take ``params`` (Ecto checks the arity too)."""
    if not callable(fn):
        raise ArgumentError(f"Multi.{what} expects a function of ({params}), got {fn!r}")
    if isinstance(fn, Call):
        return fn
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): trust it
        return fn
    try:
        signature.bind(*params.split(", "))
    except TypeError:
        raise ArgumentError(
            f"Multi.{what} expects a function of ({params}), got {fn!r} taking {signature}; "
            f"fix: e.g. lambda {params}: ..."
        ) from None
    return fn


def _write(kind: str, name: Hashable, value: Any, opts: dict[str, Any]) -> Operation:
    if isinstance(value, type):
        raise ArgumentError(f"Multi.{kind}({name!r}, ...) expects a changeset or struct, got the class {value!r}")
    if is_function(value):
        return Operation(kind, value, opts)
    if not isinstance(value, Changeset):
        if kind in ("update", "insert_or_update"):
            raise ArgumentError(
                f"Multi.{kind}({name!r}, ...) expects a changeset (or a function of the changes), got {value!r}; "
                f"e.g. change(struct, field=value)"
            )
        value = change(value)
    expected = upsert_action(value) if kind == "insert_or_update" else kind
    if value.action is not None and value.action != expected:
        raise ArgumentError(
            f"you provided a changeset with an action already set to {value.action!r} "
            f"when trying to {kind} it (operation {name!r})"
        )
    return Operation(kind, value, opts)


def upsert_action(cs: Changeset[Any]) -> str:
    """What ``insert_or_update`` will do with the changeset: its data's state decides."""
    try:
        return "insert" if meta(cs.data).state == "built" else "update"
    except AsyncEctoError:  # not a schema struct: the Repo refuses it when the Multi runs
        return "update"


def _no_clash(first: Multi, second: Multi) -> None:
    both = [n for n in first.names if n in set(second.names)]
    if both:
        raise ArgumentError(
            f"cannot merge Multi; the following operations were found in both: {', '.join(map(repr, both))}"
        )
