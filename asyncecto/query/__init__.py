"""Composable queries: ``from_(Weather) | where(lambda w: w.prcp > 0) | limit(10)``.

A :class:`Query` is a frozen value; every step returns a new one. Lambdas receive
the query's bindings (positional in order; keyword-only by ``as_`` name); Python
values inside expressions become parameters. The planner turns a query into a
parameterised plan whose SQL is compiled once per shape.
"""

from __future__ import annotations

from ._clauses.combination import except_ as except_
from ._clauses.combination import except_all as except_all
from ._clauses.combination import intersect as intersect
from ._clauses.combination import intersect_all as intersect_all
from ._clauses.combination import union as union
from ._clauses.combination import union_all as union_all
from ._clauses.cte import with_cte as with_cte
from ._clauses.exclude import exclude as exclude
from ._clauses.from_ import from_ as from_
from ._clauses.from_ import put_query_prefix as put_query_prefix
from ._clauses.join import join as join
from ._clauses.limit import limit as limit
from ._clauses.limit import offset as offset
from ._clauses.limit import with_ties as with_ties
from ._clauses.lock import lock as lock
from ._clauses.order_by import asc as asc
from ._clauses.order_by import asc_nulls_first as asc_nulls_first
from ._clauses.order_by import asc_nulls_last as asc_nulls_last
from ._clauses.order_by import desc as desc
from ._clauses.order_by import desc_nulls_first as desc_nulls_first
from ._clauses.order_by import desc_nulls_last as desc_nulls_last
from ._clauses.order_by import distinct as distinct
from ._clauses.order_by import first as first
from ._clauses.order_by import group_by as group_by
from ._clauses.order_by import last as last
from ._clauses.order_by import order_by as order_by
from ._clauses.preload import preload as preload
from ._clauses.select import select as select
from ._clauses.select import select_merge as select_merge
from ._clauses.update import update as update
from ._clauses.where import having as having
from ._clauses.where import or_having as or_having
from ._clauses.where import or_where as or_where
from ._clauses.where import where as where
from ._clauses.windows import windows as windows
from ._expr import Dynamic as Dynamic
from ._expr import E as E
from ._expr import dynamic as dynamic
from ._functions import ago as ago
from ._functions import all_ as all_
from ._functions import any_ as any_
from ._functions import avg as avg
from ._functions import coalesce as coalesce
from ._functions import constant as constant
from ._functions import count as count
from ._functions import cume_dist as cume_dist
from ._functions import date_add as date_add
from ._functions import datetime_add as datetime_add
from ._functions import dense_rank as dense_rank
from ._functions import exists as exists
from ._functions import field as field
from ._functions import filter_ as filter_
from ._functions import first_value as first_value
from ._functions import fragment as fragment
from ._functions import from_now as from_now
from ._functions import groups_between as groups_between
from ._functions import identifier as identifier
from ._functions import is_nil as is_nil
from ._functions import json_extract_path as json_extract_path
from ._functions import lag as lag
from ._functions import last_value as last_value
from ._functions import lead as lead
from ._functions import max_ as max_
from ._functions import min_ as min_
from ._functions import nth_value as nth_value
from ._functions import ntile as ntile
from ._functions import over as over
from ._functions import parent_as as parent_as
from ._functions import percent_rank as percent_rank
from ._functions import range_between as range_between
from ._functions import rank as rank
from ._functions import row_number as row_number
from ._functions import rows_between as rows_between
from ._functions import selected_as as selected_as
from ._functions import splice as splice
from ._functions import subquery as subquery
from ._functions import sum_ as sum_
from ._functions import type_ as type_
from ._on_conflict import placeholder as placeholder
from ._on_conflict import unsafe_fragment as unsafe_fragment
from ._query import Query as Query
from ._sources import values as values

# isort: split
# issue 19 (keyword queries, CTE options, ordering helpers, named bindings)
from ._clauses.cte import recursive_ctes as recursive_ctes
from ._clauses.from_ import has_named_binding as has_named_binding
from ._clauses.from_ import with_named_binding as with_named_binding
from ._clauses.order_by import prepend_order_by as prepend_order_by
from ._clauses.order_by import reverse_order as reverse_order

# isort: split
# issue 19 (struct/map field lists in select, nested for preloaded associations)
from ._take import map_ as map_
from ._take import struct as struct

# isort: split
# issue 21 (a repeated query costs no build and no plan)
from ._prepared import Prepared as Prepared
from ._prepared import prepare as prepare

__all__ = (
    "Dynamic",
    "E",
    "Prepared",
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
    "groups_between",
    "has_named_binding",
    "having",
    "identifier",
    "intersect",
    "intersect_all",
    "is_nil",
    "join",
    "json_extract_path",
    "lag",
    "last",
    "last_value",
    "lead",
    "limit",
    "lock",
    "map_",
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
    "prepare",
    "prepend_order_by",
    "put_query_prefix",
    "range_between",
    "rank",
    "recursive_ctes",
    "reverse_order",
    "row_number",
    "rows_between",
    "select",
    "select_merge",
    "selected_as",
    "splice",
    "struct",
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
    "with_named_binding",
    "with_ties",
)
