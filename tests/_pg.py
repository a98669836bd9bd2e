"""The PostgreSQL adapter behind a Repo, for tests that look at its pool."""

from __future__ import annotations

from asyncecto import Repo
from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.adapters.postgres._pool import Pool
from asyncecto.repo._core import executor_of


def pg_pool(repo: Repo) -> Pool:
    """The pool of a Repo on the PostgreSQL adapter."""
    adapter = executor_of(repo).adapter
    assert isinstance(adapter, PostgresAdapter)
    return adapter.pool
