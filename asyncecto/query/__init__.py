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
from ._build import except_ as except_
from ._build import except_all as except_all
from ._build import exclude as exclude
from ._build import first as first
from ._build import from_ as from_
from ._build import group_by as group_by
from ._build import having as having
from ._build import intersect as intersect
from ._build import intersect_all as intersect_all
from ._build import join as join
from ._build import last as last
from ._build import limit as limit
from ._build import lock as lock
from ._build import offset as offset
from ._build import or_having as or_having
from ._build import or_where as or_where
from ._build import order_by as order_by
from ._build import preload as preload
from ._build import put_query_prefix as put_query_prefix
from ._build import select as select
from ._build import select_merge as select_merge
from ._build import union as union
from ._build import union_all as union_all
from ._build import update as update
from ._build import values as values
from ._build import where as where
from ._build import windows as windows
from ._build import with_cte as with_cte
from ._build import with_ties as with_ties
from ._expr import Dynamic as Dynamic
from ._expr import E as E
from ._expr import ago as ago
from ._expr import all_ as all_
from ._expr import any_ as any_
from ._expr import avg as avg
from ._expr import coalesce as coalesce
from ._expr import constant as constant
from ._expr import count as count
from ._expr import cume_dist as cume_dist
from ._expr import date_add as date_add
from ._expr import datetime_add as datetime_add
from ._expr import dense_rank as dense_rank
from ._expr import dynamic as dynamic
from ._expr import exists as exists
from ._expr import field as field
from ._expr import filter_ as filter_
from ._expr import first_value as first_value
from ._expr import fragment as fragment
from ._expr import from_now as from_now
from ._expr import identifier as identifier
from ._expr import is_nil as is_nil
from ._expr import lag as lag
from ._expr import last_value as last_value
from ._expr import lead as lead
from ._expr import max_ as max_
from ._expr import min_ as min_
from ._expr import nth_value as nth_value
from ._expr import ntile as ntile
from ._expr import over as over
from ._expr import parent_as as parent_as
from ._expr import percent_rank as percent_rank
from ._expr import rank as rank
from ._expr import row_number as row_number
from ._expr import selected_as as selected_as
from ._expr import splice as splice
from ._expr import subquery as subquery
from ._expr import sum_ as sum_
from ._expr import type_ as type_
from ._insert import placeholder as placeholder
from ._insert import unsafe_fragment as unsafe_fragment

__all__ = (
    "Dynamic",
    "E",
    "Query",
    "ago",
    "all_",
    "any_",
    "asc",
    "asc_nulls_first",
    "asc_nulls_last",
    "avg",
    "coalesce",
    "constant",
    "count",
    "cume_dist",
    "date_add",
    "datetime_add",
    "dense_rank",
    "desc",
    "desc_nulls_first",
    "desc_nulls_last",
    "distinct",
    "dynamic",
    "except_",
    "except_all",
    "exclude",
    "exists",
    "field",
    "filter_",
    "first",
    "first_value",
    "fragment",
    "from_",
    "from_now",
    "group_by",
    "having",
    "identifier",
    "intersect",
    "intersect_all",
    "is_nil",
    "join",
    "lag",
    "last",
    "last_value",
    "lead",
    "limit",
    "lock",
    "max_",
    "min_",
    "nth_value",
    "ntile",
    "offset",
    "or_having",
    "or_where",
    "order_by",
    "over",
    "parent_as",
    "percent_rank",
    "placeholder",
    "preload",
    "put_query_prefix",
    "rank",
    "row_number",
    "select",
    "select_merge",
    "selected_as",
    "splice",
    "subquery",
    "sum_",
    "type_",
    "union",
    "union_all",
    "unsafe_fragment",
    "update",
    "values",
    "where",
    "windows",
    "with_cte",
    "with_ties",
)
