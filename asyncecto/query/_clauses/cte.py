"""``with_cte`` and ``recursive_ctes``: common table expressions."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from asyncecto._names import check_name
from asyncecto.errors import QueryError

from .._ast import Fragment
from .._query import Query
from .._sources import Step, to_query

_T = TypeVar("_T")

__all__ = ("CTE_OPERATIONS", "fragment_cte", "recursive_ctes", "with_cte")


#: what a CTE's query does (Ecto's ``operation:``): read, or change rows and return them
CTE_OPERATIONS = ("all", "update_all", "delete_all")


def with_cte(
    name: str,
    /,
    *,
    as_: Any,
    recursive: bool | None = None,
    materialized: bool | None = None,
    operation: str = "all",
) -> Step[Any]:
    """A common table expression: ``with_cte("tree", as_=query)``; read it with ``from_(("tree", Schema))``
    or ``join(..., ("tree", Schema), ...)``. ``recursive=True`` makes every CTE of the query recursive
    (as :func:`recursive_ctes` does).

    ``materialized=True``/``False`` writes ``AS MATERIALIZED``/``AS NOT MATERIALIZED`` (PostgreSQL 12+).
    ``operation="update_all"`` or ``"delete_all"`` makes a data-modifying CTE from a query with
    ``update(...)`` (or one to delete with); its ``select`` becomes the ``RETURNING`` list, which the
    outer query reads::

        changed = from_(Post) | where(lambda p: p.visits == 0) | update(set={"visits": 1}) | select(lambda p: p)
        from_(("changed", Post)) | with_cte("changed", as_=changed, operation="update_all")

    ``as_`` may be a ``fragment(...)``, written as the CTE's body (Ecto's ``as: fragment(...)``)::

        from_(("nums", Num)) | with_cte("nums", as_=fragment("SELECT generate_series(1, ?) AS id", 3))

    There is no ``operation="insert_all"``: Ecto's ``with_cte`` has none either (its operations are
    ``:all``, ``:update_all`` and ``:delete_all``); write ``fragment("INSERT ... RETURNING ...")`` if needed.
    """
    check_name(name, "CTE name")
    if materialized is not None and not isinstance(materialized, bool):
        raise QueryError(f"with_cte materialized= expects True, False or None, got {materialized!r}")
    if operation not in CTE_OPERATIONS:
        raise QueryError(
            f"with_cte operation= got {operation!r}; use one of {', '.join(map(repr, CTE_OPERATIONS))}"
            + (
                " (Ecto's with_cte has no insert_all operation either; an INSERT ... RETURNING body can be "
                'written as as_=fragment("INSERT INTO ... RETURNING ...")'
                if operation == "insert_all"
                else ""
            )
        )
    if recursive is not None and not isinstance(recursive, bool):
        raise QueryError(f"with_cte recursive= expects True or False, got {recursive!r}")
    cte = to_query(as_)
    if fragment_cte(cte) is not None and operation != "all":
        raise QueryError(
            f"with_cte {name!r}: a fragment body is written as is; operation={operation!r} needs a query "
            f"(write the UPDATE/DELETE ... RETURNING in the fragment and leave operation out): {cte!r}"
        )
    if operation == "update_all" and not cte.updates:
        raise QueryError(f"with_cte {name!r} with operation='update_all' needs a query with update(...): {cte!r}")
    if operation != "update_all" and cte.updates:
        raise QueryError(
            f"with_cte {name!r}: the query has update(...) but operation={operation!r}; "
            f"pass operation='update_all': {cte!r}"
        )

    def step(q: Query[_T]) -> Query[_T]:
        if any(n == name for n, _ in q.ctes):
            raise QueryError(f"CTE {name!r} is defined twice in {q!r}")
        modes = tuple(m for m in q.cte_modes if m[0] != name)
        if materialized is not None or operation != "all":
            modes = (*modes, (name, materialized, operation))
        changes: dict[str, Any] = {"ctes": (*q.ctes, (name, cte)), "cte_modes": modes}
        if recursive is not None:
            changes["recursive_ctes"] = recursive
        return attrs.evolve(q, **changes)

    return step


def recursive_ctes(value: bool = True, /) -> Step[Any]:
    """Make every CTE of the query recursive (``WITH RECURSIVE``), or not: Ecto's ``recursive_ctes``.

    ``from_(("tree", Node)) | recursive_ctes(True) | with_cte("tree", as_=base | union_all(step))``
    """
    if not isinstance(value, bool):
        raise QueryError(f"recursive_ctes expects True or False, got {value!r}")
    return lambda q: attrs.evolve(q, recursive_ctes=value)


def fragment_cte(q: Query[Any]) -> Fragment | None:
    """The fragment a CTE's body is, for ``with_cte(name, as_=fragment(...))``; ``None`` for a query."""
    frag = q.source.fragment
    return frag if frag is not None and q == Query(q.source, prefix=q.prefix) else None
