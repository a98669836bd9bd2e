"""``loaded == original``, made exact: NaN equals NaN, ``-0.0`` is not ``0.0``, types must match,
and a UTC datetime must come back in UTC."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ("assert_row", "assert_rows", "same")


def same(loaded: Any, original: Any, *, as_given: bool = False) -> bool:
    """Whether ``loaded`` is ``original``'s value and type, all the way down.

    ``as_given``: ``loaded`` is a struct a write returned with the values it was given (``insert``
    without ``returning``), so an aware datetime is the same instant but may keep its offset.
    """
    if isinstance(original, float):
        if not isinstance(loaded, float):
            return False
        if math.isnan(original):
            return math.isnan(loaded)
        return loaded == original and math.copysign(1.0, loaded) == math.copysign(1.0, original)
    if isinstance(original, uuid.UUID):
        return isinstance(loaded, uuid.UUID) and loaded == original  # asyncpg's UUID subclasses uuid.UUID
    if isinstance(original, dt.datetime) and original.tzinfo is not None:
        if not isinstance(loaded, dt.datetime):
            return False
        return (as_given or loaded.utcoffset() == dt.timedelta(0)) and loaded == original
    if isinstance(original, list):
        return (
            type(loaded) is list
            and len(loaded) == len(original)
            and all(same(a, b, as_given=as_given) for a, b in zip(loaded, original, strict=True))
        )
    if isinstance(original, dict):
        # JSON: jsonb keeps numbers as numeric, so an integral float may come back as an int of the same value
        return (
            type(loaded) is dict
            and loaded.keys() == original.keys()
            and all(_same_json(loaded[k], original[k]) for k in original)
        )
    return type(loaded) is type(original) and bool(loaded == original)


def _same_json(loaded: Any, original: Any) -> bool:
    if isinstance(original, float) and isinstance(loaded, int) and not isinstance(loaded, bool):
        return loaded == original
    if isinstance(original, float):
        return isinstance(loaded, float) and loaded == original  # jsonb has no -0.0: 0.0 == -0.0 here
    if isinstance(original, list):
        return (
            type(loaded) is list
            and len(loaded) == len(original)
            and all(_same_json(a, b) for a, b in zip(loaded, original, strict=True))
        )
    if isinstance(original, dict):
        return (
            type(loaded) is dict
            and loaded.keys() == original.keys()
            and all(_same_json(loaded[k], original[k]) for k in original)
        )
    return type(loaded) is type(original) and bool(loaded == original)


def assert_row(loaded: Any, original: Mapping[str, Any], *, where: str, as_given: bool = False) -> None:
    """Every field of ``original`` equals the same field of the struct ``loaded`` (see :func:`same`)."""
    wrong = {
        name: (getattr(loaded, name), value)
        for name, value in original.items()
        if not same(getattr(loaded, name), value, as_given=as_given)
    }
    assert not wrong, f"{where}: " + "; ".join(f"{n}: loaded {a!r}, original {b!r}" for n, (a, b) in wrong.items())


def assert_rows(
    loaded: Iterable[Any], originals: Iterable[Mapping[str, Any]], *, where: str, as_given: bool = False
) -> None:
    """``loaded[i]`` matches ``originals[i]`` for every i, and there are as many of each."""
    got, want = list(loaded), list(originals)
    assert len(got) == len(want), f"{where}: {len(got)} rows loaded, {len(want)} written"
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_row(a, b, where=f"{where}, row {i}", as_given=as_given)
