"""Query timings from asyncecto's telemetry: counts and percentiles, and an OpenTelemetry histogram.

Run it with ``python examples/telemetry_export.py`` (same database rules as the quickstart).
``QueryTimings`` is a telemetry handler (see docs/telemetry.md): attach it to a repo and it
aggregates every query by source (table) and operation (the statement's first keyword), and
logs a summary on request. Given a meter — OpenTelemetry's when ``opentelemetry-api`` is
installed, or any object with ``create_histogram`` — it also records the semantic
convention's ``db.client.operation.duration`` histogram (seconds).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import re
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from asyncecto import QueryEvent, Repo, migration, schema
from asyncecto.embedded import database_url
from asyncecto.errors import DatabaseError
from asyncecto.query import from_, where

__all__ = ("METRIC", "Histogram", "Meter", "QueryTimings", "Timing", "opentelemetry_meter", "operation_name")

#: the OpenTelemetry semantic convention's metric for a database call's duration
METRIC: Final = "db.client.operation.duration"

log = logging.getLogger("telemetry_export")

_KEYWORD = re.compile(r"[A-Za-z]+")


class Histogram(Protocol):
    """What ``QueryTimings`` needs of a histogram (OpenTelemetry's ``Histogram`` has it)."""

    def record(self, amount: float, attributes: Mapping[str, str] | None = None) -> None: ...


class Meter(Protocol):
    """What ``QueryTimings`` needs of a meter (OpenTelemetry's ``Meter`` has it)."""

    def create_histogram(self, name: str, unit: str = "", description: str = "") -> Histogram: ...


def opentelemetry_meter(name: str = "asyncecto") -> Meter | None:
    """OpenTelemetry's meter when the ``opentelemetry-api`` package is importable, else ``None``."""
    try:
        metrics = importlib.import_module("opentelemetry.metrics")
    except ImportError:
        return None
    meter: Meter = metrics.get_meter(name)
    return meter


def operation_name(sql: str) -> str:
    """The statement's first keyword, upper-cased.

    >>> operation_name('SELECT w0."id" FROM "weather" AS w0')
    'SELECT'
    >>> operation_name("ROLLBACK TO SAVEPOINT asyncecto_2")
    'ROLLBACK'
    """
    match = _KEYWORD.search(sql)
    return match.group(0).upper() if match else "UNKNOWN"


def _error_type(error: BaseException) -> str:
    # the database's SQLSTATE when it sent one, else the exception's class
    if isinstance(error, DatabaseError) and error.sqlstate:
        return error.sqlstate
    return f"{type(error).__module__}.{type(error).__qualname__}"


@dataclass(slots=True)
class Timing:
    """One (source, operation) pair's aggregate; times are seconds of ``query_time``."""

    count: int = 0
    errors: int = 0
    rows: int = 0
    samples: deque[float] = field(default_factory=deque)

    def percentile(self, p: float) -> float:
        """The nearest-rank ``p``-th percentile (0 < p <= 100) of the kept samples."""
        ordered = sorted(self.samples)
        if not ordered:
            return math.nan
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]


class QueryTimings:
    """A telemetry handler: per (source, operation) counts and query-time percentiles.

    ``meter`` receives a ``db.client.operation.duration`` histogram; without one, OpenTelemetry's
    global meter is used when importable (``opentelemetry=False`` turns that off).

    >>> timings = QueryTimings(opentelemetry=False)
    >>> timings.summary()
    'no queries recorded'
    """

    def __init__(self, meter: Meter | None = None, *, opentelemetry: bool = True, max_samples: int = 10_000) -> None:
        if meter is None and opentelemetry:
            meter = opentelemetry_meter()
        self.histogram: Histogram | None = None
        if meter is not None:
            self.histogram = meter.create_histogram(
                METRIC, unit="s", description="Duration of database client operations."
            )
        self.max_samples = max_samples
        #: keyed by (source or ``None``, operation)
        self.timings: dict[tuple[str | None, str], Timing] = {}

    def __call__(self, event: QueryEvent) -> None:
        """Count one event (called by the repo's telemetry worker)."""
        op = operation_name(event.sql)
        timing = self.timings.get((event.source, op))
        if timing is None:
            timing = self.timings[(event.source, op)] = Timing(samples=deque(maxlen=self.max_samples))
        timing.count += 1
        timing.samples.append(event.query_time)
        if event.error is not None:
            timing.errors += 1
        if event.num_rows is not None:
            timing.rows += event.num_rows
        if self.histogram is not None:
            self.histogram.record(event.query_time, attributes=self.attributes(event, op))

    @staticmethod
    def attributes(event: QueryEvent, op: str | None = None) -> dict[str, str]:
        """The histogram point's attributes, named as in OpenTelemetry's database conventions."""
        attributes = {"db.system.name": "postgresql", "db.operation.name": op or operation_name(event.sql)}
        if event.source is not None:
            attributes["db.collection.name"] = event.source
        if event.error is not None:
            attributes["error.type"] = _error_type(event.error)
            if isinstance(event.error, DatabaseError) and event.error.sqlstate:
                attributes["db.response.status_code"] = event.error.sqlstate
        return attributes

    def summary(self) -> str:
        """A table of every (source, operation): count, errors, rows, p50/p95/p99/max in ms."""
        if not self.timings:
            return "no queries recorded"
        lines = [
            f"{'source':<20} {'operation':<10} {'count':>6} {'errors':>6} {'rows':>6} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        ]
        for (source, op), t in sorted(self.timings.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            pcts = " ".join(f"{t.percentile(p) * 1000:>8.2f}" for p in (50, 95, 99, 100))
            lines.append(f"{source or '-':<20} {op:<10} {t.count:>6} {t.errors:>6} {t.rows:>6} {pcts}")
        return "\n".join(lines)

    def log_summary(self, level: int = logging.INFO) -> None:
        """Write :meth:`summary` to the ``telemetry_export`` logger."""
        log.log(level, "query timings:\n%s", self.summary())


# -- the script -----------------------------------------------------------------------------------


@schema("weather")
class Weather:
    id: int | None = None
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    repo = Repo(database_url("asyncecto_quickstart"), pool_size=2, log=False)
    await repo.storage_up()
    timings = QueryTimings()
    print(f"database: {repo.config.masked_url()}; opentelemetry: {timings.histogram is not None}")
    async with repo:
        repo.telemetry.attach(timings, name="query-timings")
        # the migrator's bookkeeping shows up with source "schema_migrations"
        await migration.run(repo, Path(__file__).parent / "migrations", all=True)
        await repo.query("TRUNCATE weather RESTART IDENTITY")
        await repo.insert_all(Weather, [{"city": c, "temp_lo": i} for i, c in enumerate(["Kraków", "Lisbon", "Oslo"])])
        async with repo.transaction():  # BEGIN and COMMIT are events too
            w = await repo.insert(Weather(city="Porto", temp_lo=9))
            await repo.get(Weather, w.id)
        for _ in range(20):
            await repo.all(from_(Weather) | where(city="Oslo"))
        try:
            await repo.query("SELECT * FROM no_such_table")
        except DatabaseError as exc:
            print(f"failed as expected: SQLSTATE {exc.sqlstate}")
        await repo.telemetry.flush()  # every event so far has reached the handler
        timings.log_summary()
        print(f"events dropped: {repo.telemetry.dropped}")


if __name__ == "__main__":
    asyncio.run(main())
