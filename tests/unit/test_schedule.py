"""The order pytest-xdist workers take the suite's files in (tests/_schedule.py), and the first run's
compiling of the suite (tests/_warmup.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NoReturn, cast

import pytest

from tests._schedule import SEED, Timings, order, unit_of
from tests._warmup import prime_bytecode


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def _items(*nodeids: str) -> list[pytest.Item]:
    return [cast(pytest.Item, _Item(n)) for n in nodeids]


def test_a_unit_is_a_file_and_the_reliability_folder_is_one() -> None:
    assert unit_of("tests/unit/test_x.py::test_a[1]") == "tests/unit/test_x.py"
    assert unit_of("tests/reliability/test_kill.py::test_k") == "reliability"
    assert unit_of("tests/reliability/test_frozen.py::test_f") == "reliability"


def _order(nodeids: tuple[str, ...], costs: dict[str, tuple[float, float]]) -> list[str]:
    items = _items(*nodeids)
    order(items, costs)
    return [i.nodeid for i in items]


def test_the_longest_unit_comes_first_and_each_keeps_its_own_order() -> None:
    costs = {"a.py": (1.0, 1.0), "b.py": (9.0, 9.0), "c.py": (3.0, 3.0)}
    got = _order(("a.py::t1", "a.py::t2", "b.py::t1", "c.py::t1", "c.py::t2"), costs)
    assert got == ["b.py::t1", "c.py::t1", "c.py::t2", "a.py::t1", "a.py::t2"]


def test_units_that_compute_and_units_that_wait_alternate() -> None:
    costs = {"w1.py": (30.0, 2.0), "w2.py": (20.0, 1.0), "c1.py": (25.0, 20.0), "c2.py": (5.0, 4.0)}
    got = _order(("c2.py::t", "w2.py::t", "c1.py::t", "w1.py::t"), costs)
    assert got == ["c1.py::t", "w1.py::t", "c2.py::t", "w2.py::t"]


def test_a_unit_with_no_record_is_weighed_by_its_number_of_tests() -> None:
    got = _order(("small.py::t", "big.py::t1", "big.py::t2", "big.py::t3"), {})
    assert got == ["big.py::t1", "big.py::t2", "big.py::t3", "small.py::t"]
    assert _order(("x.py::t", "y.py::t"), {}) == ["x.py::t", "y.py::t"], "ties keep the collected order"


def test_timings_add_this_runs_costs_over_the_last_runs() -> None:
    timings = Timings({"a.py": [5.0, 1.0], "gone.py": [2.0, 2.0], "bad": "x", "old": 3.0})
    for nodeid, seconds, cpu in (("a.py::t1", 0.5, 0.5), ("a.py::t2", 0.25, 0.0), ("b.py::t", 1.0, 0.25)):
        report = type("R", (), {"nodeid": nodeid, "duration": seconds, "asyncecto_cpu": cpu})()
        timings.add(cast(pytest.TestReport, report))
    assert timings.merged() == {"a.py": [0.75, 0.5], "gone.py": [2.0, 2.0], "b.py": [1.0, 0.25]}


def test_a_fresh_checkout_orders_by_the_seed() -> None:
    assert Timings({}).recorded == {unit: list(cost) for unit, cost in SEED.items()}
    assert Timings({"old": 3.0}).recorded == Timings({}).recorded


def test_the_first_run_compiles_the_suite_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text("def test_a() -> None:\n    assert 1\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    prime_bytecode(tmp_path)
    markers = list((tmp_path / ".pytest_cache").glob("asyncecto-compiled-*"))
    assert len(markers) == 1

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("compiled again")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    prime_bytecode(tmp_path)  # the marker says it was done
