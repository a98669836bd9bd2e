"""Which file a pytest-xdist worker takes next: the longest first (test support).

Under ``--dist loadgroup`` a file is one unit of work (tests/reliability is one), handed out in the
order the workers collected them. A long file handed out last keeps one worker busy while the others
stand idle, so the workers collect the units longest first: by the seconds each took in the last run
(the controller keeps them in pytest's cache, ``asyncecto/unit_seconds``, and hands them to the
workers, so every worker orders alike), and a unit the cache does not know by its number of tests.
The order only changes which worker runs what, never a file's own order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest

__all__ = ("CACHE_KEY", "Timings", "longest_first", "unit_of")

CACHE_KEY = "asyncecto/unit_seconds"
_UNKNOWN_TEST_SECONDS = 0.05  # a unit the cache does not know: this much per test


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or ``reliability`` (one private cluster)."""
    path = nodeid.partition("::")[0]
    return "reliability" if path.startswith("tests/reliability/") else path


def longest_first(items: list[pytest.Item], seconds: Mapping[str, float]) -> None:
    """Order ``items`` (in place) by their unit's expected seconds, longest first; stable within a unit."""
    counts = Counter(unit_of(item.nodeid) for item in items)

    def expected(unit: str) -> float:
        return seconds.get(unit, counts[unit] * _UNKNOWN_TEST_SECONDS)

    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(unit_of(item.nodeid), index)
    items.sort(key=lambda item: (-expected(unit_of(item.nodeid)), first_seen[unit_of(item.nodeid)]))


class Timings:
    """The controller's record of each unit's seconds in this run (setup, call and teardown)."""

    def __init__(self, recorded: Mapping[str, float]) -> None:
        self.recorded = {str(unit): float(s) for unit, s in recorded.items() if isinstance(s, int | float)}
        self._measured: dict[str, float] = {}

    def add(self, report: pytest.TestReport) -> None:
        unit = unit_of(report.nodeid)
        self._measured[unit] = self._measured.get(unit, 0.0) + report.duration

    def merged(self) -> dict[str, float]:
        """What the next run orders by: this run's seconds, and the last run's for units not run now."""
        return {**self.recorded, **{unit: round(s, 2) for unit, s in self._measured.items()}}
