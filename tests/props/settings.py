"""Hypothesis settings for the props suite: deterministic, sized for CI.

``ASYNCECTO_PROPS_SCALE`` (default 1) multiplies every property's number of examples, for a
deeper local run (lift the per-test timeout too):
``ASYNCECTO_PROPS_SCALE=20 pytest --timeout=0 tests/integration/test_integrity_props*.py``.
``derandomize`` makes every run draw the same examples (no flaky CI, no example database).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ("props",)

SCALE = max(1, int(os.environ.get("ASYNCECTO_PROPS_SCALE", "1")))
#: ``ASYNCECTO_PROPS_SHRINK=0`` reports the first failing example as drawn (shrinking a wide row
#: through the database takes minutes)
PHASES = (
    tuple(Phase)
    if os.environ.get("ASYNCECTO_PROPS_SHRINK", "1") != "0"
    else tuple(p for p in Phase if p is not Phase.shrink)
)


def props(max_examples: int) -> settings:
    """Settings for a property run against PostgreSQL with ``max_examples`` (times the scale) examples."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=True,
        phases=PHASES,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
