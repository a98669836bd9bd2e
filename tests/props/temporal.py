"""Dates, times, naive and UTC datetimes (second and microsecond precision) and durations."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

__all__ = ("OFFSETS", "aware", "dates", "durations", "naive", "times")

UTC = dt.UTC

#: fixed offsets (a zone with DST has wall times that never compare equal across zones, PEP 495)
OFFSETS = [
    UTC,
    dt.timezone(dt.timedelta(hours=2)),
    dt.timezone(-dt.timedelta(hours=5, minutes=30)),
    dt.timezone(dt.timedelta(hours=13, minutes=45)),
    dt.timezone(-dt.timedelta(hours=11)),
]


def _seconds(values: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[dt.datetime]:
    return values.map(lambda v: v.replace(microsecond=0))


def dates() -> st.SearchStrategy[dt.date]:
    """Every date Python has (PostgreSQL's range is wider), with the ends and a leap day drawn often."""
    return st.sampled_from([dt.date.min, dt.date.max, dt.date(2024, 2, 29), dt.date(1970, 1, 1)]) | st.dates()


def times(*, usec: bool) -> st.SearchStrategy[dt.time]:
    """Naive times; whole seconds unless ``usec`` (``time(0)`` holds no fraction)."""
    edges = [dt.time(0), dt.time(23, 59, 59), dt.time(12)]
    if usec:
        edges += [dt.time(23, 59, 59, 999999), dt.time(0, 0, 0, 1)]
    values = st.sampled_from(edges) | st.times()
    return values if usec else values.map(lambda v: v.replace(microsecond=0))


def naive(*, usec: bool) -> st.SearchStrategy[dt.datetime]:
    """Naive datetimes over Python's whole range; whole seconds unless ``usec``."""
    edges = st.sampled_from([dt.datetime.min, dt.datetime(9999, 12, 31, 23, 59, 59), dt.datetime(1969, 12, 31, 23, 59)])
    values = edges | st.datetimes()
    return values if usec else _seconds(values)


def aware(*, usec: bool) -> st.SearchStrategy[dt.datetime]:
    """Aware datetimes in fixed offsets whose instant fits Python's range in UTC; whole seconds unless ``usec``."""
    values = st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.sampled_from(OFFSETS)
    )
    return values if usec else _seconds(values)


def durations() -> st.SearchStrategy[dt.timedelta]:
    """Intervals up to a million days either way, microseconds included."""
    limit = dt.timedelta(days=10**6)
    edges = st.sampled_from([dt.timedelta(0), dt.timedelta(microseconds=1), -dt.timedelta(microseconds=1), limit])
    return edges | st.timedeltas(min_value=-limit, max_value=limit)
