"""Generating UUIDs: random version 4, and time-ordered version 7 (RFC 9562), as ``Ecto.UUID.generate/1``."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import typing as t
import uuid

from asyncecto.errors import ArgumentError

__all__ = ("Precision", "generate_uuid", "uuid_to_datetime", "uuid_to_unix")

#: a version 7 UUID's clock: the millisecond (the rest random), or ``"monotonic"``: sub-millisecond
#: fractions in the 12 bits after the version, strictly increasing within the process
Precision = t.Literal["millisecond", "monotonic"]

_NS_PER_MS = 1_000_000
_SUB_MS_VALUES = 1 << 12
#: the smallest step that moves the 12-bit fraction: 1 ms / 4096, rounded up
_NS_STEP = -(-_NS_PER_MS // _SUB_MS_VALUES)
_UNITS = {"second": 1_000, "millisecond": 1, "microsecond": 1_000_000, "nanosecond": 1_000_000_000}

_lock = threading.Lock()
_last_ns = 0


def generate_uuid(*, version: int = 4, precision: Precision = "millisecond") -> uuid.UUID:
    """A new UUID: random (``version=4``, the default) or time-ordered (``version=7``).

    A version 7 UUID starts with the Unix time in milliseconds, so keys made later sort later
    (in Python and in PostgreSQL). ``precision="monotonic"`` adds the sub-millisecond fraction,
    so every UUID made by this process is greater than the one before.

    >>> generate_uuid(version=7).version
    7
    >>> a, b = generate_uuid(version=7, precision="monotonic"), generate_uuid(version=7, precision="monotonic")
    >>> a < b
    True
    """
    if version == 4:
        if precision != "millisecond":
            raise ArgumentError(f"precision= is for version 7 UUIDs only, got precision={precision!r} with version=4")
        return uuid.uuid4()
    if version != 7:
        raise ArgumentError(f"unsupported UUID version: {version!r}; fix: use version=4 (random) or version=7")
    if precision == "millisecond":
        ms = time.time_ns() // _NS_PER_MS
        rand = int.from_bytes(os.urandom(10))
        rand_a, rand_b = rand >> 68, rand & ((1 << 62) - 1)
    elif precision == "monotonic":
        ns = _next_ascending_ns()
        ms = ns // _NS_PER_MS
        rand_a = (ns % _NS_PER_MS) * _SUB_MS_VALUES // _NS_PER_MS
        rand_b = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    else:
        raise ArgumentError(
            f"unsupported UUID precision: {precision!r}; fix: use precision='millisecond' or 'monotonic'"
        )
    value = (ms & ((1 << 48) - 1)) << 80 | 7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def _next_ascending_ns() -> int:
    """The clock in nanoseconds, at least one 12-bit fraction step past the previous call's."""
    global _last_ns
    with _lock:
        _last_ns = max(time.time_ns(), _last_ns + _NS_STEP)
        return _last_ns


def _v7_ms(value: uuid.UUID | str, what: str) -> int:
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    if u.version != 7:
        raise ArgumentError(f"{what} needs a version 7 UUID, got version {u.version} ({u})")
    return u.int >> 80


def uuid_to_unix(value: uuid.UUID | str, unit: str = "second") -> int:
    """The Unix time a version 7 UUID was made at, in ``unit`` (second, millisecond, microsecond, nanosecond)."""
    if unit not in _UNITS:
        raise ArgumentError(f"unknown unit {unit!r}; use one of {', '.join(_UNITS)}")
    ms = _v7_ms(value, "uuid_to_unix")
    return ms // 1_000 if unit == "second" else ms * _UNITS[unit]


def uuid_to_datetime(value: uuid.UUID | str) -> dt.datetime:
    """When a version 7 UUID was made, as an aware UTC datetime (millisecond precision)."""
    ms = _v7_ms(value, "uuid_to_datetime")
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
