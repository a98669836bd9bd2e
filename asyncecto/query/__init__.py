"""Composable queries: ``from_(Weather) | where(lambda w: w.prcp > 0) | limit(10)``.

A :class:`Query` is a frozen value; every step returns a new one. Lambdas receive
the query's bindings (positional in order; keyword-only by ``as_`` name); Python
values inside expressions become parameters. The planner turns a query into a
parameterised plan whose SQL is compiled once per shape.
"""

from __future__ import annotations

from ._ast import Query as Query
from ._build import asc as asc
from ._build import asc_nulls_first as asc_nulls_first
from ._build import asc_nulls_last as asc_nulls_last
from ._build import desc as desc
from ._build import desc_nulls_first as desc_nulls_first
from ._build import desc_nulls_last as desc_nulls_last
from ._build import distinct as distinct
from ._build import exclude as exclude
from ._build import first as first
from ._build import from_ as from_
from ._build import group_by as group_by
from ._build import having as having
from ._build import join as join
from ._build import last as last
from ._build import limit as limit
from ._build import lock as lock
from ._build import offset as offset
from ._build import or_having as or_having
from ._build import or_where as or_where
from ._build import order_by as order_by
from ._build import select as select
from ._build import update as update
from ._build import where as where
from ._expr import E as E
from ._expr import avg as avg
from ._expr import coalesce as coalesce
from ._expr import count as count
from ._expr import field as field
from ._expr import fragment as fragment
from ._expr import is_nil as is_nil
from ._expr import max_ as max_
from ._expr import min_ as min_
from ._expr import sum_ as sum_
from ._expr import type_ as type_

__all__ = (
    "E",
    "Query",
    "asc",
    "asc_nulls_first",
    "asc_nulls_last",
    "avg",
    "coalesce",
    "count",
    "desc",
    "desc_nulls_first",
    "desc_nulls_last",
    "distinct",
    "exclude",
    "field",
    "first",
    "fragment",
    "from_",
    "group_by",
    "having",
    "is_nil",
    "join",
    "last",
    "limit",
    "lock",
    "max_",
    "min_",
    "offset",
    "or_having",
    "or_where",
    "order_by",
    "select",
    "sum_",
    "type_",
    "update",
    "where",
)
