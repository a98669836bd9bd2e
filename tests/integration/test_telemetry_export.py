"""The query-timings handler of examples/telemetry_export.py on real queries."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from asyncecto import Repo
from asyncecto.errors import DatabaseError

from ..schemas import Weather

EXAMPLE = Path(__file__).parents[2] / "examples" / "telemetry_export.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    name = "telemetry_export_example"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class RecordingHistogram:
    """Keeps every recorded point."""

    name: str
    unit: str
    description: str
    points: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def record(self, amount: float, attributes: Mapping[str, str] | None = None) -> None:
        self.points.append((amount, dict(attributes or {})))


@dataclass
class RecordingMeter:
    histograms: dict[str, RecordingHistogram] = field(default_factory=dict)

    def create_histogram(self, name: str, unit: str = "", description: str = "") -> RecordingHistogram:
        histogram = self.histograms[name] = RecordingHistogram(name, unit, description)
        return histogram


async def test_timings_and_histogram_points(repo: Repo, example: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    meter = RecordingMeter()
    timings = example.QueryTimings(meter)
    await repo.telemetry.flush()  # nothing from the fixture's setup reaches the handler
    repo.telemetry.attach(timings, name="timings")
    w = await repo.insert(Weather(city="Oslo"))
    await repo.insert(Weather(city="Porto"))
    await repo.get(Weather, w.id)
    await repo.all(Weather)
    async with repo.transaction():
        await repo.insert(Weather(city="Riga"))
    with pytest.raises(DatabaseError):
        await repo.query("SELECT * FROM no_such_table")
    await repo.telemetry.flush()

    counts = {key: (t.count, t.errors, t.rows) for key, t in timings.timings.items()}
    # inside the test sandbox's transaction the block is a savepoint
    begin, commit = ("BEGIN", "COMMIT") if (None, "BEGIN") in counts else ("SAVEPOINT", "RELEASE")
    assert counts == {
        ("weather", "INSERT"): (3, 0, 3),
        ("weather", "SELECT"): (2, 0, 3),
        (None, begin): (1, 0, 0),
        (None, commit): (1, 0, 0),
        (None, "SELECT"): (1, 1, 0),
    }
    select = timings.timings[("weather", "SELECT")]
    assert 0 < select.percentile(50) <= select.percentile(95) <= select.percentile(100)

    histogram = meter.histograms[example.METRIC]
    assert (histogram.name, histogram.unit) == ("db.client.operation.duration", "s")
    assert len(histogram.points) == 8
    assert all(amount > 0 for amount, _ in histogram.points)
    assert histogram.points[0][1] == {
        "db.system.name": "postgresql",
        "db.operation.name": "INSERT",
        "db.collection.name": "weather",
    }
    assert histogram.points[4][1] == {"db.system.name": "postgresql", "db.operation.name": begin}
    assert histogram.points[-1][1] == {
        "db.system.name": "postgresql",
        "db.operation.name": "SELECT",
        "error.type": "42P01",
        "db.response.status_code": "42P01",
    }
    assert sum("error.type" in attrs for _, attrs in histogram.points) == 1

    with caplog.at_level(logging.INFO, logger="telemetry_export"):
        timings.log_summary()
    (record,) = [r for r in caplog.records if r.name == "telemetry_export"]
    lines = record.getMessage().splitlines()
    assert lines[0] == "query timings:" and lines[1].split()[:5] == ["source", "operation", "count", "errors", "rows"]
    assert [line.split()[:5] for line in lines[2:]] == [
        *sorted([["-", begin, "1", "0", "0"], ["-", commit, "1", "0", "0"], ["-", "SELECT", "1", "1", "0"]]),
        ["weather", "INSERT", "3", "0", "3"],
        ["weather", "SELECT", "2", "0", "3"],
    ]


async def test_without_a_meter_it_only_aggregates(repo: Repo, example: ModuleType) -> None:
    timings = example.QueryTimings(opentelemetry=False)
    assert timings.histogram is None
    await repo.telemetry.flush()
    repo.telemetry.attach(timings)
    await repo.all(Weather)
    await repo.telemetry.flush()
    assert timings.timings[("weather", "SELECT")].count == 1


async def test_opentelemetry_api_meter_accepts_the_points(repo: Repo, example: ModuleType) -> None:
    pytest.importorskip("opentelemetry.metrics")
    timings = example.QueryTimings()  # OpenTelemetry's global meter (a no-op without an SDK)
    assert timings.histogram is not None
    await repo.telemetry.flush()
    name = repo.telemetry.attach(timings)
    with pytest.raises(DatabaseError):
        await repo.query("SELECT * FROM no_such_table")
    await repo.telemetry.flush()
    assert repo.telemetry.detach(name) is True  # it did not raise (a raising handler is detached)
    assert timings.timings[(None, "SELECT")].errors == 1


def test_nearest_rank_percentiles(example: ModuleType) -> None:
    timing = example.Timing(samples=deque([0.004, 0.001, 0.003, 0.002]))
    assert [timing.percentile(p) for p in (25, 50, 75, 100)] == [0.001, 0.002, 0.003, 0.004]
    assert example.Timing().percentile(50) != example.Timing().percentile(50)  # NaN when empty
