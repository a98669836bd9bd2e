"""Composable queries: ``from_(Weather) | where(city="Kraków") | limit(10)``.

A :class:`Query` is a frozen value; every step returns a new one. The planner
turns it into a parameterised plan whose SQL is compiled once per shape.
"""

from __future__ import annotations

from ._ast import Query as Query
from ._build import from_ as from_
from ._build import limit as limit
from ._build import offset as offset
from ._build import or_where as or_where
from ._build import order_by as order_by
from ._build import where as where

__all__ = ("Query", "from_", "limit", "offset", "or_where", "order_by", "where")
