"""Plan → SQL, cached per plan (with the loader of its rows), and the plain fetch of a query.

The read path (``_read``), preloads (``_preload``), streams and copies build on it.
"""

from __future__ import annotations

from typing import Any

from asyncecto._names import check_name
from asyncecto.query._plan import Planned
from asyncecto.query._planner import plan
from asyncecto.query._query import Query

from ._core import RepoCore
from ._loader import Loader
from ._shapes import build_result_loader

__all__ = ("compiled", "fetch_all", "prepared_all", "query_prefix")


def query_prefix(core: RepoCore, prefix: str | None, q: Query[Any] | None = None) -> str | None:
    """The prefix a query is planned with: the call's, else the query's (``put_query_prefix``), else the repo's."""
    if prefix is not None:
        return check_name(prefix, "prefix")
    if q is not None and q.prefix is not None:
        return q.prefix
    return core.config.prefix


def compiled(core: RepoCore, planned: Planned) -> tuple[str, Loader | None]:
    """The SQL of a planned query and the loader of its rows, built once per plan."""

    def build() -> tuple[str, Loader | None]:
        loader = build_result_loader(planned.reader) if planned.reader is not None else None
        return core.adapter.compile(planned), loader

    return core.cached(planned, build)


def prepared_all(core: RepoCore, q: Query[Any], prefix: str | None) -> tuple[str, Loader | None, list[Any]]:
    """SQL, loader and parameters for ``q`` as an ``all`` (used by streams)."""
    planned, params = plan(q, "all", prefix=query_prefix(core, prefix, q))
    sql, loader = compiled(core, planned)
    return sql, loader, params


async def fetch_all(core: RepoCore, q: Query[Any], prefix: str | None, timeout: Any) -> list[Any]:
    """The results of ``q`` (whose preloads, if any, are not loaded)."""
    planned, params = plan(q, "all", prefix=query_prefix(core, prefix, q))
    sql, loader = compiled(core, planned)
    _, results = await core.run("fetch", sql, params, timeout, planned.table, loader)
    assert results is not None
    return results
