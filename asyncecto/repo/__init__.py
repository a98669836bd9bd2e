"""The Repo: a supervised pool of PostgreSQL connections and every operation that uses them."""

from __future__ import annotations

from ._config import RepoConfig as RepoConfig
from ._config import build_config as build_config
from ._core import RepoState as RepoState
from ._notifications import Notification as Notification
from ._notifications import Subscription as Subscription
from ._repo import QueryResult as QueryResult
from ._repo import Repo as Repo
from ._routing import ReplicaEvent as ReplicaEvent
from ._telemetry import FailoverEvent as FailoverEvent
from ._telemetry import QueryEvent as QueryEvent
from ._telemetry import Telemetry as Telemetry

__all__ = (
    "FailoverEvent",
    "Notification",
    "QueryEvent",
    "QueryResult",
    "ReplicaEvent",
    "Repo",
    "RepoConfig",
    "RepoState",
    "Subscription",
    "Telemetry",
    "build_config",
)
