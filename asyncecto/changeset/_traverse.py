"""Walking a changeset and its embedded / associated child changesets: ``traverse_errors`` and
``traverse_validations`` (Ecto's, with the callback's form picked by its arity)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asyncecto.errors import ArgumentError

from ._changeset import Changeset, positional_arity

__all__ = ("traverse_errors", "traverse_validations")

_INTERPOLATION = re.compile(r"%\{(\w+)\}")


def _interpolate(message: str, keys: Mapping[str, Any]) -> str:
    return _INTERPOLATION.sub(lambda m: str(keys.get(m.group(1), m.group(0))), message)


def _walk(
    cs: Changeset[Any],
    own: Callable[[Changeset[Any]], Iterable[tuple[str, Any]]],
    each: Callable[[Changeset[Any], str, Any], Any],
) -> dict[str, Any]:
    """``{field: [each(cs, field, item) for own items]}``, with the children's maps nested under
    their relation (a list aligned with a "many" relation's kept children; left out when empty)."""
    out: dict[str, Any] = {}
    for name, item in own(cs):
        out.setdefault(name, []).append(each(cs, name, item))
    for name, value in cs.changes.items():
        if isinstance(value, Changeset):
            nested = _walk(value, own, each)
            if nested:
                out[name] = nested
        elif isinstance(value, list) and any(isinstance(v, Changeset) for v in value):
            kept = [v for v in value if isinstance(v, Changeset) and v.action != "replace"]
            children = [_walk(v, own, each) for v in kept]
            if any(children):
                out[name] = children
    return out


def traverse_errors(cs: Changeset[Any], fn: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Errors by field, oldest first: ``{"email": ["can't be blank"]}``; children's errors nest
    under their embed or association.

    ``fn(message, keys)`` turns each error into what is listed; by default ``%{key}``
    placeholders are filled from the keys (``"should be at least %{count} character(s)"``).
    A three-argument ``fn(changeset, field, (message, keys))`` also gets the (child) changeset
    and the field, as Ecto's ``traverse_errors/2`` with a 3-arity function.
    """
    if fn is None:
        each: Callable[[Changeset[Any], str, Any], Any] = lambda _cs, _f, err: _interpolate(*err)  # noqa: E731
    elif positional_arity(fn, 2) >= 3:
        each = fn
    else:
        each = lambda _cs, _f, err: fn(*err)  # noqa: E731
    return _walk(cs, lambda c: reversed(c.errors), each)


def traverse_validations(cs: Changeset[Any], fn: Callable[..., Any]) -> dict[str, Any]:
    """The validations run, by field, oldest first, as :func:`traverse_errors` lists errors.

    ``fn((kind, spec))`` turns each into what is listed (``fn(changeset, field, (kind, spec))``
    with three arguments):

    ``traverse_validations(cs, lambda v: v[0])`` → ``{"name": ["length", "format"]}``.
    """
    if not callable(fn):
        raise ArgumentError(f"traverse_validations expects a function, got {fn!r}")
    if positional_arity(fn, 1) >= 3:
        each: Callable[[Changeset[Any], str, Any], Any] = fn
    else:
        each = lambda _cs, _f, validation: fn(validation)  # noqa: E731
    return _walk(cs, lambda c: c.validations, each)
