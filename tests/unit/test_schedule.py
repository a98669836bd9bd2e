"""The order pytest-xdist workers take the suite's files in (tests/_schedule.py)."""

from __future__ import annotations

from typing import cast

import pytest

from tests._schedule import Timings, longest_first, unit_of


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def _items(*nodeids: str) -> list[pytest.Item]:
    return [cast(pytest.Item, _Item(n)) for n in nodeids]


def test_a_unit_is_a_file_and_the_reliability_folder_is_one() -> None:
    assert unit_of("tests/unit/test_x.py::test_a[1]") == "tests/unit/test_x.py"
    assert unit_of("tests/reliability/test_kill.py::test_k") == "reliability"
    assert unit_of("tests/reliability/test_frozen.py::test_f") == "reliability"


def test_the_longest_unit_comes_first_and_each_keeps_its_own_order() -> None:
    items = _items("a.py::t1", "a.py::t2", "b.py::t1", "c.py::t1", "c.py::t2")
    longest_first(items, {"a.py": 1.0, "b.py": 9.0, "c.py": 3.0})
    assert [i.nodeid for i in items] == ["b.py::t1", "c.py::t1", "c.py::t2", "a.py::t1", "a.py::t2"]


def test_a_unit_with_no_record_is_weighed_by_its_number_of_tests() -> None:
    items = _items("small.py::t", "big.py::t1", "big.py::t2", "big.py::t3")
    longest_first(items, {})
    assert [i.nodeid for i in items] == ["big.py::t1", "big.py::t2", "big.py::t3", "small.py::t"]
    ties = _items("x.py::t", "y.py::t")
    longest_first(ties, {})
    assert [i.nodeid for i in ties] == ["x.py::t", "y.py::t"], "ties keep the collected order"


def test_timings_add_this_runs_seconds_over_the_last_runs() -> None:
    timings = Timings({"a.py": 5.0, "gone.py": 2.0, "bad": "x"})  # type: ignore[dict-item]
    for nodeid, seconds in (("a.py::t1", 0.5), ("a.py::t2", 0.25), ("b.py::t", 1.0)):
        timings.add(cast(pytest.TestReport, type("R", (), {"nodeid": nodeid, "duration": seconds})()))
    assert timings.merged() == {"a.py": 0.75, "gone.py": 2.0, "b.py": 1.0}
