"""Numbers at their columns' limits: integers, floats (with the non-finite ones) and decimals."""

from __future__ import annotations

import decimal
import math

from hypothesis import strategies as st

__all__ = (
    "INT2",
    "INT4",
    "INT8",
    "decimals",
    "decimals_fixed",
    "floats",
    "integers",
    "json_floats",
)

#: (min, max) of PostgreSQL's smallint, integer and bigint
INT2 = (-(2**15), 2**15 - 1)
INT4 = (-(2**31), 2**31 - 1)
INT8 = (-(2**63), 2**63 - 1)


def integers(bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    """Integers within ``bounds``, the limits and their neighbours drawn often."""
    lo, hi = bounds
    edges = st.sampled_from(sorted({v for v in (lo, lo + 1, -1, 0, 1, hi - 1, hi) if lo <= v <= hi}))
    return edges | st.integers(lo, hi)


def floats(*, finite: bool = False) -> st.SearchStrategy[float]:
    """Doubles, ``-0.0`` and subnormals included; with ``finite=False`` also inf, -inf and NaN
    (a ``double precision`` column stores them)."""
    edges = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1 + 0.2]
    if not finite:
        edges += [math.inf, -math.inf, math.nan]
    return st.sampled_from(edges) | st.floats(allow_nan=not finite, allow_infinity=not finite)


def json_floats() -> st.SearchStrategy[float]:
    """Finite doubles below 1e15 in magnitude: jsonb stores numbers as ``numeric``, so a float of
    1e16 or more comes back as the integer its digits spell (``1e300`` as ``10**300``); JSON has
    no NaN or infinity."""
    return st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False)


def decimals() -> st.SearchStrategy[decimal.Decimal]:
    """Finite decimals of any precision and exponent an unconstrained ``numeric`` holds."""
    edges = st.sampled_from(["0", "-0", "1.500", "1E+5", "-1.2345678901234567890123456789E-20", "1E-300"]).map(
        decimal.Decimal
    )
    return edges | st.decimals(allow_nan=False, allow_infinity=False)


def decimals_fixed(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    """Decimals a ``numeric(precision, scale)`` holds exactly: at most ``scale`` places and
    ``precision - scale`` integer digits (the largest and smallest included)."""
    top = decimal.Decimal(10) ** (precision - scale) - decimal.Decimal(1).scaleb(-scale)
    edges = st.sampled_from([top, -top, decimal.Decimal(1).scaleb(-scale), decimal.Decimal("0")])
    return edges | st.decimals(min_value=-top, max_value=top, places=scale, allow_nan=False, allow_infinity=False)
