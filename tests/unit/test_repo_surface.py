"""The public Repo shows the documented API only; its executor stays private (composition)."""

from __future__ import annotations

from asyncecto import Repo
from asyncecto.repo._core import RepoCore, executor_of

#: README, docs/*.md and DESIGN.md document these; anything else is reached through ``executor_of``
DOCUMENTED = [
    "aggregate",
    "all",
    "cache_stats",
    "checkout",
    "config",
    "copy_from",
    "copy_to",
    "delete",
    "delete_all",
    "exists",
    "explain",
    "get",
    "get_by",
    "get_by_or_raise",
    "get_or_raise",
    "in_transaction",
    "insert",
    "insert_all",
    "insert_or_update",
    "listen",
    "listener_stats",
    "load",
    "name",
    "notify",
    "one",
    "one_or_raise",
    "pool_stats",
    "preload",
    "query",
    "reload",
    "reload_or_raise",
    "rollback",
    "start",
    "state",
    "stop",
    "storage_down",
    "storage_up",
    "stream",
    "supervisor_restarts",
    "telemetry",
    "to_sql",
    "transaction",
    "update",
    "update_all",
]


def test_the_public_repo_shows_the_documented_api_only() -> None:
    repo = Repo("postgres://localhost/surface")
    assert sorted(n for n in dir(repo) if not n.startswith("_")) == DOCUMENTED


def test_the_repo_holds_its_executor() -> None:
    repo = Repo("postgres://localhost/surface", name="surface")
    core = executor_of(repo)
    assert isinstance(core, RepoCore) and not isinstance(repo, RepoCore)
    assert core.repo is repo and core.name == repo.name == "surface" and core.config is repo.config
    assert repr(repo) == repr(core)
