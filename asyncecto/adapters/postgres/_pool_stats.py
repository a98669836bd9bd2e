"""The pool's counters (``repo.pool_stats()``)."""

from __future__ import annotations

__all__ = ("PoolStats",)


class PoolStats:
    """Counters a test or a dashboard can read (``repo.pool_stats()``).

    :ivar checkouts: connections handed out
    :ivar opened: connections opened
    :ivar resets: releases that reset session state (raw SQL, a transaction left open)
    :ivar rollbacks: releases that found a transaction still open (the pool rolled it back)
    :ivar terminated: connections asyncecto closed at once (a failed or late cleanup, a half-open link, stop)
    :ivar timeouts: checkouts that gave up after the pool timeout
    :ivar cleanup_timeouts: cleanups (rollback, reset, a cancellation to drain) that outlasted
        ``cleanup_timeout``; each terminated its connection
    :ivar lost: connections the server or the network closed (``pg_terminate_backend``, a restart,
        a broken link), dropped from the pool as soon as asyncpg noticed
    :ivar connect_failures: new connections the server refused for want of room (53300 too many
        clients) or while starting up or recovering (57P03), or that found no primary in the host list
        (a failover under way, for a repo asking for the primary); callers waited instead
    :ivar disconnected: connections closed by ``repo.disconnect_all()``
    :ivar failovers: moves to a new primary (a repo with ``target_session_attrs=read-write``/``primary``)
    :ivar drained: connections of a server that stopped being the primary, closed (idle) or marked to
        be closed at their checkin (in use)
    """

    __slots__ = (
        "checkouts",
        "cleanup_timeouts",
        "connect_failures",
        "disconnected",
        "drained",
        "failovers",
        "lost",
        "opened",
        "resets",
        "rollbacks",
        "terminated",
        "timeouts",
    )

    def __init__(self) -> None:
        self.checkouts = 0
        self.opened = 0
        self.resets = 0
        self.rollbacks = 0
        self.terminated = 0
        self.timeouts = 0
        self.cleanup_timeouts = 0
        self.lost = 0
        self.connect_failures = 0
        self.disconnected = 0
        self.failovers = 0
        self.drained = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
