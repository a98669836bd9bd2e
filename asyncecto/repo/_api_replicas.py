"""The Repo's read-replica controls: ``primary()``, ``replica_stats()``, ``replica_events``
(the routing itself: :mod:`asyncecto.repo._routing`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._core import RepoCore
from ._routing import ReplicaEvents

__all__ = ("Replicas",)


class Replicas:
    """Read replicas (``Repo(url, replicas=[...])``): reads outside a transaction go to a healthy replica."""

    _executor: RepoCore

    @contextmanager
    def primary(self) -> Iterator[None]:
        """Within the block, this context's reads go to the primary (a call's ``replica=True`` still wins).

        .. code-block:: python

            with repo.primary():
                order = await repo.get(Order, order_id)   # fresh, whatever the replicas' lag
        """
        router = self._executor.router
        if router is None:
            yield
            return
        with router.forcing(False):
            yield

    def replica_stats(self) -> list[dict[str, Any]]:
        """One mapping per replica, in the order given: ``replica`` (host:port), ``url`` (password masked),
        ``healthy``, ``down_for`` (seconds out of rotation, or None), ``taken_out`` (times), ``last_error``,
        ``reads`` (statements routed there), ``replay_lsn`` and ``lag_bytes`` (last known, None when unknown),
        ``in_recovery``, and ``pool`` (its pool's counters, as :meth:`pool_stats`). Empty without replicas
        or while the repo is not running."""
        return self._executor.replica_stats()

    @property
    def replica_events(self) -> ReplicaEvents:
        """Handlers of replicas taken out of rotation / put back: ``repo.replica_events.attach(fn)``; ``fn``
        receives a :class:`~asyncecto.repo._routing.ReplicaEvent` (``name == (repo, "replica", "down" | "up")``)."""
        return self._executor.replica_events
