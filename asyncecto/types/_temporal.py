"""Date, time and datetime types, and the parsing of their ISO 8601 and dict input."""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from collections.abc import Mapping

from ._base import _INT_RE, BaseType, _is_int, _reject, _show

__all__ = (
    "Date",
    "NaiveDatetime",
    "NaiveDatetimeUsec",
    "Time",
    "TimeUsec",
    "UtcDatetime",
    "UtcDatetimeUsec",
)

_UTC = dt.UTC

_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)


# -- parsing helpers -----------------------------------------------------------------


def _fraction(digits: str | None) -> int:
    return int((digits or "0")[:6].ljust(6, "0"))


def _map_part(value: Mapping[t.Any, t.Any], key: str, default: int | None = None) -> int:
    if key not in value:
        if default is None:
            raise ValueError(f"missing key {key!r} in {_show(value)}")
        return default
    part = value[key]
    if _is_int(part):
        return int(part)
    if isinstance(part, str) and len(part) < 32 and _INT_RE.fullmatch(part):
        return int(part)
    raise ValueError(f"expected an integer for {key!r}, got {_show(part)}")


def _parse_datetime(value: str) -> dt.datetime:
    match = _DATETIME_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"expected an ISO 8601 datetime, got {_show(value)}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: dt.tzinfo | None = None
    if offset == "Z":
        tz = _UTC
    elif offset:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes > 59:
            raise ValueError(f"invalid UTC offset in {value!r}")
        delta = dt.timedelta(hours=hours, minutes=minutes)
        tz = dt.timezone(-delta if offset[0] == "-" else delta)
    return dt.datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        _fraction(fraction),
        tzinfo=tz,
    )


def _to_datetime(value: object) -> dt.datetime:
    """Any datetime input to a datetime, naive or aware as given."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return _parse_datetime(value)
    if isinstance(value, Mapping):
        return dt.datetime(
            _map_part(value, "year"),
            _map_part(value, "month"),
            _map_part(value, "day"),
            _map_part(value, "hour"),
            _map_part(value, "minute"),
            _map_part(value, "second", 0),
            _map_part(value, "microsecond", 0),
        )
    raise _reject("a datetime, an ISO 8601 string or a dict", value)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        return value.replace(tzinfo=None)
    return value.astimezone(_UTC).replace(tzinfo=None)


def _aware_utc(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        return value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


# -- types ---------------------------------------------------------------------------


class Date(BaseType[dt.date]):
    """A ``date``; casts dates, ``"YYYY-MM-DD"`` and dicts with year, month and day.

    >>> Date().cast({"year": "2024", "month": 2, "day": 29})
    datetime.date(2024, 2, 29)
    """

    __slots__ = ()
    name = "date"
    db_type = "date"

    def cast(self, value: t.Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            match = _DATE_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"expected an ISO 8601 date, got {_show(value)}")
            return dt.date(*(int(part) for part in match.groups()))
        if isinstance(value, Mapping):
            return dt.date(_map_part(value, "year"), _map_part(value, "month"), _map_part(value, "day"))
        raise _reject("a date", value)

    def dump(self, value: t.Any) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise _reject("a date", value)

    def load(self, value: t.Any) -> dt.date:
        return t.cast(dt.date, value)


class _TimeBase(BaseType[dt.time]):
    __slots__ = ()
    _usec: t.ClassVar[bool]

    def cast(self, value: t.Any) -> dt.time:
        if isinstance(value, dt.datetime):
            result = value.time()
        elif isinstance(value, dt.time):
            if value.tzinfo is not None:
                raise ValueError(f"expected a time without time zone, got {_show(value)}")
            result = value
        elif isinstance(value, str):
            match = _TIME_RE.fullmatch(value)
            if match is None:
                raise ValueError(f"expected an ISO 8601 time, got {_show(value)}")
            hour, minute, second, fraction = match.groups()
            result = dt.time(int(hour), int(minute), int(second or 0), _fraction(fraction))
        elif isinstance(value, Mapping):
            result = dt.time(
                _map_part(value, "hour"),
                _map_part(value, "minute"),
                _map_part(value, "second", 0),
                _map_part(value, "microsecond", 0),
            )
        else:
            raise _reject("a time", value)
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.time:
        if not isinstance(value, dt.time):
            raise _reject("a time", value)
        if value.tzinfo is not None:
            raise ValueError(f"expected a time without time zone, got {_show(value)}")
        if not self._usec and value.microsecond:
            raise ValueError("Time expects microseconds to be empty, use TimeUsec")
        return value

    def load(self, value: t.Any) -> dt.time:
        return t.cast(dt.time, value)


class Time(_TimeBase):
    """A ``time(0)``; like :class:`TimeUsec` but drops microseconds on cast.

    >>> Time().cast("10:20:30.5")
    datetime.time(10, 20, 30)
    """

    __slots__ = ()
    name = "time"
    db_type = "time(0)"
    _usec = False


class TimeUsec(_TimeBase):
    """A ``time``; casts naive times, ``"HH:MM[:SS[.ffffff]]"`` and dicts with hour and minute.

    >>> TimeUsec().cast({"hour": 9, "minute": 5, "microsecond": 7})
    datetime.time(9, 5, 0, 7)
    """

    __slots__ = ()
    name = "time_usec"
    db_type = "time"
    _usec = True


class _NaiveBase(BaseType[dt.datetime]):
    __slots__ = ()
    _usec: t.ClassVar[bool]
    load_is_identity = False

    def cast(self, value: t.Any) -> dt.datetime:
        result = _naive_utc(_to_datetime(value))
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        if value.utcoffset() is not None:
            raise ValueError(f"{self.name} expects a naive datetime, got {_show(value)}")
        if not self._usec and value.microsecond:
            raise ValueError(f"{self.name} expects microseconds to be empty, use NaiveDatetimeUsec")
        return value

    def load(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        return _naive_utc(value)


class NaiveDatetime(_NaiveBase):
    """A ``timestamp(0)`` holding a naive datetime; drops microseconds on cast.

    Aware input is converted to UTC, then its time zone is dropped.

    >>> NaiveDatetime().cast("2024-05-01T12:30:00.25+02:00")
    datetime.datetime(2024, 5, 1, 10, 30)
    """

    __slots__ = ()
    name = "naive_datetime"
    db_type = "timestamp(0)"
    _usec = False


class NaiveDatetimeUsec(_NaiveBase):
    """A ``timestamp`` holding a naive datetime with microseconds.

    >>> NaiveDatetimeUsec().cast("2024-05-01 12:30:00.25")
    datetime.datetime(2024, 5, 1, 12, 30, 0, 250000)
    """

    __slots__ = ()
    name = "naive_datetime_usec"
    db_type = "timestamp"
    _usec = True


class _UtcBase(BaseType[dt.datetime]):
    __slots__ = ()
    _usec: t.ClassVar[bool]
    load_is_identity = False

    def cast(self, value: t.Any) -> dt.datetime:
        result = _aware_utc(_to_datetime(value))
        return result if self._usec else result.replace(microsecond=0)

    def dump(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        if value.utcoffset() is None:
            raise ValueError(
                f"{self.name} expects a timezone-aware datetime; use NaiveDatetime for naive values, got {_show(value)}"
            )
        if not self._usec and value.microsecond:
            raise ValueError(f"{self.name} expects microseconds to be empty, use UtcDatetimeUsec")
        return value.astimezone(_UTC)

    def load(self, value: t.Any) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            raise _reject("a datetime", value)
        return _aware_utc(value)


class UtcDatetime(_UtcBase):
    """A ``timestamptz(0)`` holding an aware UTC datetime; drops microseconds on cast.

    Naive input is taken as UTC. ``dump`` returns an aware datetime in UTC, so the
    column must be ``timestamptz`` (for ``timestamp`` columns use :class:`NaiveDatetime`).

    >>> UtcDatetime().cast("2024-05-01T12:30:00+02:00")
    datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.timezone.utc)
    """

    __slots__ = ()
    name = "utc_datetime"
    db_type = "timestamptz(0)"
    _usec = False


class UtcDatetimeUsec(_UtcBase):
    """A ``timestamptz`` holding an aware UTC datetime with microseconds.

    >>> UtcDatetimeUsec().load(dt.datetime(2024, 1, 1, 0, 0, 0, 5))
    datetime.datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=datetime.timezone.utc)
    """

    __slots__ = ()
    name = "utc_datetime_usec"
    db_type = "timestamptz"
    _usec = True
