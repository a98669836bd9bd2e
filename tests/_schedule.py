"""Which file a pytest-xdist worker takes next (test support).

Under ``--dist loadgroup`` a file is one unit of work (tests/reliability is one), handed out in the
order the workers collected them. Two things decide how soon the last worker finishes on 2 cores:

- a long unit handed out last keeps one worker busy while the others stand idle, so long units go
  first;
- a unit that mostly waits (on a timeout, a restarted server) leaves its core to the others, but
  four such units side by side leave the cores idle, so the units that wait and those that compute
  alternate.

A unit's cost is its seconds and its worker's CPU seconds in the last run: the controller keeps
them in pytest's cache (``asyncecto/unit_seconds``) and hands them to the workers, so that every
worker orders alike. A fresh checkout starts from ``SEED``; a unit with no record is costed by its
number of tests. The order only changes which worker runs what, never a file's own order.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator, Mapping, Sequence

import pytest

__all__ = ("CACHE_KEY", "SEED", "Timings", "order", "unit_of")

CACHE_KEY = "asyncecto/unit_seconds"
_UNKNOWN_TEST_SECONDS = 0.065  # a unit with no record: this much per test (the suite's mean)
_WAITS_BELOW = 0.4  # a unit whose worker computes less than this share of its seconds mostly waits
#: a fresh checkout's record, (seconds, CPU seconds) on the 2-core machine: the longest units,
#: which decide how evenly the workers finish; a run's own measurements replace it
SEED: Mapping[str, tuple[float, float]] = {
    "reliability": (31.0, 1.0),
    "tests/integration/test_cancel_points.py": (29.0, 3.0),
    "tests/integration/test_integrity_props.py": (27.0, 21.0),
    "tests/integration/test_failover.py": (23.0, 1.0),
    "tests/integration/test_pool_faults.py": (19.0, 1.0),
    "tests/integration/test_replicas.py": (15.0, 1.2),
    "tests/integration/test_pooler.py": (12.0, 0.7),
    "tests/integration/test_fuzz_entry_points.py": (17.0, 5.0),
    "tests/integration/test_props_planner.py": (13.0, 7.0),
    "tests/integration/test_cli.py": (11.0, 5.0),
    "tests/integration/test_listen.py": (9.0, 0.0),
    "tests/integration/test_docs_deployment.py": (7.0, 0.2),
    "tests/integration/test_types_roundtrip.py": (9.0, 2.0),
    "tests/integration/test_integrity_txn.py": (8.0, 1.0),
    "tests/integration/test_integrity_values.py": (7.0, 1.0),
    "tests/integration/test_integrity_props_invalid.py": (6.0, 4.0),
    "tests/integration/test_query_dsl.py": (5.0, 1.0),
    "tests/integration/test_integrity_query.py": (5.0, 2.0),
    "tests/integration/test_integrity_misc.py": (5.0, 0.0),
    "tests/integration/test_sandbox.py": (4.0, 0.0),
}
_CPU = pytest.StashKey[float]()


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or ``reliability`` (one private cluster)."""
    path = nodeid.partition("::")[0]
    return "reliability" if path.startswith("tests/reliability/") else path


def order(items: list[pytest.Item], costs: Mapping[str, Sequence[float]]) -> None:
    """Order ``items`` (in place) unit by unit: units that compute and units that wait alternate,
    each kind longest first; a unit's tests keep their order."""
    counts = Counter(unit_of(item.nodeid) for item in items)
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(unit_of(item.nodeid), index)

    def cost(unit: str) -> tuple[float, float]:
        recorded = costs.get(unit)
        if recorded is not None and len(recorded) == 2:
            return float(recorded[0]), float(recorded[1])
        guess = counts[unit] * _UNKNOWN_TEST_SECONDS
        return guess, guess

    unit_costs = {unit: cost(unit) for unit in first_seen}

    def longest_first(units: list[str]) -> list[str]:
        return sorted(units, key=lambda unit: (-unit_costs[unit][0], first_seen[unit]))

    waits = {unit for unit, (wall, cpu) in unit_costs.items() if cpu < _WAITS_BELOW * wall}
    waiting = longest_first([u for u in first_seen if u in waits])
    computing = longest_first([u for u in first_seen if u not in waits])
    place: dict[str, int] = {}
    for index in range(max(len(waiting), len(computing))):
        for kind in (computing, waiting):
            if index < len(kind):
                place[kind[index]] = len(place)
    items.sort(key=lambda item: place[unit_of(item.nodeid)])


def measure_cpu(item: pytest.Item) -> Generator[None, object, object]:
    """Body of a ``wrapper=True`` hook around a test's setup, call or teardown: its CPU seconds."""
    start = time.process_time()
    try:
        return (yield)
    finally:
        item.stash[_CPU] = time.process_time() - start


def mark_cpu(item: pytest.Item, report: pytest.TestReport) -> None:
    """Carry the phase's CPU seconds on its report (pytest-xdist sends them to the controller)."""
    report.asyncecto_cpu = item.stash.get(_CPU, 0.0)  # type: ignore[attr-defined]


class Timings:
    """The controller's record of each unit's seconds and CPU seconds."""

    def __init__(self, recorded: Mapping[str, object]) -> None:
        valid = {
            str(unit): [float(cost[0]), float(cost[1])]
            for unit, cost in recorded.items()
            if isinstance(cost, list | tuple) and len(cost) == 2 and all(isinstance(c, int | float) for c in cost)
        }
        self.recorded = valid or {unit: list(cost) for unit, cost in SEED.items()}
        self._measured: dict[str, list[float]] = {}

    def add(self, report: pytest.TestReport) -> None:
        """Add a test phase's seconds (and its CPU seconds, when its worker sent them)."""
        cost = self._measured.setdefault(unit_of(report.nodeid), [0.0, 0.0])
        cost[0] += report.duration
        cost[1] += float(getattr(report, "asyncecto_cpu", 0.0))

    def merged(self) -> dict[str, list[float]]:
        """What the next run orders by: this run's costs, and the last run's for units not run now."""
        measured = {unit: [round(wall, 2), round(cpu, 2)] for unit, (wall, cpu) in self._measured.items()}
        return {**self.recorded, **measured}
