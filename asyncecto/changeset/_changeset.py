"""The ``Changeset`` value, and the helpers every changeset step shares."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs

from asyncecto.schema import schema_info

__all__ = ("Changeset", "ErrorInfo", "Step", "dual_step", "field_names", "positional_arity")

_T = TypeVar("_T")
_S = TypeVar("_S")
ErrorInfo = tuple[str, tuple[str, Mapping[str, Any]]]


class Step(Protocol):
    """A pipe step: ``cs | validate_required("name")`` calls it with the changeset."""

    def __call__(self, cs: Changeset[_S], /) -> Changeset[_S]: ...


def field_names(fields: str | Iterable[str]) -> list[str]:
    """One field name or several, as a list."""
    return [fields] if isinstance(fields, str) else list(fields)


def dual_step(fn: Callable[..., Changeset[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Apply ``fn`` at once when the first argument is a changeset, else return a step for ``|``."""
    if args and isinstance(args[0], Changeset):
        return fn(*args, **kwargs)
    return lambda cs: fn(cs, *args, **kwargs)


def positional_arity(fn: Callable[..., Any], default: int) -> int:
    """How many positional arguments ``fn`` takes (Ecto picks a callback's form by its arity).

    ``default`` when it cannot be told: no signature, or only ``*args``.
    """
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return default
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    count = sum(1 for p in params if p.kind in kinds)
    if count == 0 and any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return default
    return count


@attrs.frozen(kw_only=True)
class Changeset(Generic[_T]):
    """Changes to apply to ``data``, with the errors found while casting and validating them.

    A changeset is a frozen value: every step returns a new one, and ``cs | step``
    applies a step (a callable taking and returning a changeset).

    :ivar data: the struct the changes apply to
    :ivar changes: field name to new value
    :ivar errors: ``(field, (message, metadata))`` pairs, newest first
    :ivar valid: ``False`` once any error was added
    :ivar action: set by the Repo (``"insert"``, ``"update"`` …) when it acts on the changeset
    """

    data: _T
    changes: Mapping[str, Any] = attrs.field(factory=dict)
    errors: tuple[ErrorInfo, ...] = ()
    valid: bool = True
    action: str | None = None
    params: Mapping[str, Any] | None = None
    required: tuple[str, ...] = ()
    constraints: tuple[Any, ...] = ()
    filters: Mapping[str, Any] = attrs.field(factory=dict)
    prepare: tuple[Callable[[Changeset[_T]], Changeset[_T]], ...] = ()
    repo_opts: Mapping[str, Any] = attrs.field(factory=dict)
    types: Mapping[str, Any] | None = None
    repo: Any = None
    empty_values: tuple[Any, ...] = ("",)
    validations: tuple[tuple[str, Any], ...] = ()

    def __or__(self, step: Callable[[Changeset[_T]], Changeset[_T]]) -> Changeset[_T]:
        return step(self)

    def __repr__(self) -> str:
        redacted: set[str] = set()
        if not isinstance(self.data, dict):
            info = schema_info(self.data)
            redacted = {n for n, f in info.fields.items() if f.redact}
        changes = {k: ("**redacted**" if k in redacted else v) for k, v in self.changes.items()}
        errors = [(f, m) for f, (m, _meta) in self.errors]
        return (
            f"Changeset<action={self.action!r}, changes={changes!r}, errors={errors!r}, "
            f"data={type(self.data).__name__}, valid={self.valid}>"
        )

    def field_types(self) -> Mapping[str, Any]:
        """Field name to type: the schema's fields, or the ``types`` of a schemaless changeset."""
        if self.types is not None:
            return self.types
        info = schema_info(self.data)
        return {n: f.type for n, f in info.fields.items()}
