"""What the planner produces and the adapter compiles: a parameter-free, hashable plan.

A :class:`Planned` query names its sources, its expressions (``P*`` nodes, parameters as
:class:`ParamRef` positions) and how a row becomes the result (the ``Read*`` readers).
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = (
    "Col",
    "Params",
    "PAliasRef",
    "PAnd",
    "ParamRef",
    "PArray",
    "PArith",
    "PAssocPath",
    "PCast",
    "PCompare",
    "PConst",
    "PExists",
    "PExpr",
    "PFilter",
    "PFrame",
    "PFragment",
    "PFunc",
    "PIdent",
    "PIn",
    "PInterval",
    "PIsNil",
    "PJsonPath",
    "Planned",
    "PLike",
    "PNeg",
    "PNot",
    "POp",
    "POr",
    "POver",
    "PParentCol",
    "PPathCol",
    "PQuantified",
    "PSelectedAs",
    "PSource",
    "PSourceAlias",
    "PSplice",
    "PSubquery",
    "PWindow",
    "ReadShape",
    "ReadStruct",
    "ReadValue",
)


class Params(list[Any]):
    """The parameters of a statement as sent (dumped, driver-ready), carrying ``cast``: the same
    parameters before dumping (Ecto's ``cast_params``), kept as references to the cast values.

    >>> p = Params(["42"], [42])
    >>> list(p), p.cast
    (['42'], [42])
    """

    __slots__ = ("cast",)

    def __init__(self, dumped: Any = (), cast: list[Any] | None = None) -> None:
        super().__init__(dumped)
        #: the values before dumping, one per parameter
        self.cast: list[Any] = list(self) if cast is None else cast


@attrs.frozen
class ParamRef:
    """The ``$index`` parameter (1-based)."""

    index: int


@attrs.frozen
class Col:
    """A column of the ``binding``-th source."""

    binding: int
    column: str


@attrs.frozen
class PCompare:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PIsNil:
    arg: PExpr


@attrs.frozen
class PAnd:
    args: tuple[PExpr, ...]


@attrs.frozen
class POr:
    args: tuple[PExpr, ...]


@attrs.frozen
class PNot:
    arg: PExpr


@attrs.frozen
class PArith:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PNeg:
    arg: PExpr


@attrs.frozen
class PIn:
    left: PExpr
    right: PExpr


@attrs.frozen
class PLike:
    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PFragment:
    parts: tuple[str, ...]
    args: tuple[PExpr, ...]
    columns: tuple[str, ...] = ()


@attrs.frozen
class PFunc:
    name: str
    args: tuple[PExpr, ...]
    distinct: bool = False
    star: bool = False


@attrs.frozen
class PCast:
    """A parameter with an explicit SQL type (``$1::bigint``); the adapter casts to the type's
    unconstrained base (``varchar(255)`` → ``varchar``), never narrower than the value. ``exact``: the
    type is already a literal's own (``integer`` for ``1``, as PostgreSQL types it) and is written as is."""

    arg: PExpr
    db_type: str
    exact: bool = False


@attrs.frozen
class PJsonPath:
    arg: PExpr
    path: ParamRef | PArray


@attrs.frozen
class PArray:
    """``ARRAY[a, b]::elem[]``: an array built from expressions."""

    items: tuple[PExpr, ...]
    elem: str


@attrs.frozen
class POp:
    """``(left op right)`` for an operator the planner chose (``@>``, ``?``, ``?|``, ``?&``)."""

    op: str
    left: PExpr
    right: PExpr


@attrs.frozen
class PInterval:
    arg: PExpr
    amount: PExpr
    unit: str
    date: bool


@attrs.frozen
class PIdent:
    name: str
    prefix: str | None = None


@attrs.frozen
class PConst:
    """A literal; ``kind`` keeps ``1``, ``1.0`` and ``True`` apart (they compare equal in Python)."""

    value: Any
    kind: str


@attrs.frozen
class PSplice:
    args: tuple[PExpr, ...]


@attrs.frozen
class PSubquery:
    planned: Planned


@attrs.frozen
class PExists:
    arg: PSubquery


@attrs.frozen
class PQuantified:
    quantifier: str
    arg: PSubquery


@attrs.frozen
class PFilter:
    agg: PExpr
    cond: PExpr


@attrs.frozen
class PParentCol:
    """A column of an enclosing query's source (``parent_as``): aliased at that query's depth."""

    depth: int
    binding: int
    table: str
    column: str


@attrs.frozen
class PSelectedAs:
    arg: PExpr
    alias: str


@attrs.frozen
class PAliasRef:
    alias: str


@attrs.frozen
class PSourceAlias:
    """A whole source in a lock fragment (``FOR UPDATE OF ?``): its table alias."""

    binding: int


@attrs.frozen
class PFrame:
    """A window frame: ``kind`` rows/range/groups; bounds ``None`` (UNBOUNDED), <0 PRECEDING,
    0 CURRENT ROW, >0 FOLLOWING."""

    kind: str
    start: int | None
    end: int | None
    exclude: str | None = None


@attrs.frozen
class PWindow:
    partition_by: tuple[PExpr, ...]
    order_by: tuple[tuple[str, PExpr], ...]
    frame: PExpr | PFrame | None = None


@attrs.frozen
class PPathCol:
    """A column of an association path's intermediate table (``tag``: see :class:`PAssocPath`)."""

    tag: str
    column: str


@attrs.frozen
class PAssocPath:
    """An association path: ``tables`` (each with its tag) whose rows link two bindings by the
    ``links`` equalities, under ``conds``."""

    tables: tuple[tuple[PIdent, str], ...]
    links: tuple[tuple[PExpr, PExpr], ...]
    conds: tuple[PExpr, ...]


@attrs.frozen
class POver:
    func: PExpr
    window: str | PWindow


PExpr = (
    Col
    | ParamRef
    | PCompare
    | PIsNil
    | PAnd
    | POr
    | PNot
    | PArith
    | PNeg
    | PIn
    | PLike
    | PFragment
    | PFunc
    | PCast
    | PJsonPath
    | PInterval
    | PIdent
    | PConst
    | PSplice
    | PSubquery
    | PExists
    | PQuantified
    | PFilter
    | POver
    | PParentCol
    | PSelectedAs
    | PAliasRef
    | PSourceAlias
    | PAssocPath
    | PPathCol
    | PArray
    | POp
)


@attrs.frozen
class ReadStruct:
    """Columns ``start:start+len(fields)`` make a struct; ``nullable`` (outer joins): all NULL → ``None``."""

    schema: type
    fields: tuple[str, ...]
    table: str
    prefix: str | None
    nullable: bool


@attrs.frozen
class ReadValue:
    """One column, loaded by ``type`` when known."""

    type: Any


@attrs.frozen
class ReadShape:
    """``kind`` tuple, list, dict, or merge (``items`` = struct-or-dict reader, dict reader)."""

    kind: str
    items: tuple[Any, ...]
    keys: tuple[Any, ...] = ()


@attrs.frozen
class PSource:
    table: str
    prefix: str | None
    subquery: Planned | None = None
    values: tuple[tuple[str, ...], tuple[tuple[PExpr, ...], ...]] | None = None
    fragment: PFragment | None = None
    hints: tuple[str, ...] = ()


@attrs.frozen(cache_hash=True)
class Planned:
    """A planned query: everything the adapter needs to write SQL, and no parameter values.

    Its hash is computed once (``cache_hash``): the plan cache looks a plan up more than once
    per query, and hashing walks the whole tree.

    ``columns`` are the selected expressions in order; ``reader`` says how a row of them
    becomes the result (a struct, a value, or tuples/lists/dicts of those).
    """

    op: str
    sources: tuple[PSource, ...]
    columns: tuple[PExpr, ...]
    reader: Any
    joins: tuple[tuple[str, PExpr | None], ...] = ()
    wheres: tuple[tuple[str, PExpr], ...] = ()
    group_bys: tuple[PExpr, ...] = ()
    havings: tuple[tuple[str, PExpr], ...] = ()
    order_bys: tuple[tuple[str, PExpr], ...] = ()
    distinct: tuple[tuple[str, PExpr], ...] | bool = False
    limit: ParamRef | None = None
    offset: ParamRef | None = None
    lock: str | PFragment | None = None
    updates: tuple[tuple[str, str, PExpr], ...] = ()
    with_ties: bool = False
    combinations: tuple[tuple[str, Planned], ...] = ()
    windows: tuple[tuple[str, PWindow], ...] = ()
    ctes: tuple[tuple[str, Planned], ...] = ()
    recursive_ctes: bool = False
    depth: int = 0
    #: per CTE, in ``ctes`` order: ``True``/``False`` for ``AS [NOT] MATERIALIZED``, ``None`` for neither
    cte_materialized: tuple[bool | None, ...] = ()

    # kept for the adapter's single-source fast paths and for loaders
    @property
    def table(self) -> str:
        return self.sources[0].table

    @property
    def prefix(self) -> str | None:
        return self.sources[0].prefix
