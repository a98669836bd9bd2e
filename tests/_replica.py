"""A private primary with real streaming standbys for replica and failover tests (test support).

Builds on :mod:`tests._cluster`: the primary is a :class:`~tests._cluster.Cluster` started with
``wal_level=replica`` and WAL senders; each standby is a ``pg_basebackup -R -X stream`` copy of it
(same server programs), started on its own free port as a hot standby that streams from the primary.

.. code-block:: python

    rep = await Replication.start(standbys=1)          # primary + 1 streaming standby (in a thread)
    try:
        primary, standby = rep.primary, rep.standbys[0]
        await primary.execute("CREATE TABLE t (id int)")
        await standby.wait_replayed()                  # replay LSN >= primary's current insert LSN
        await standby.pause_replay()                   # pg_wal_replay_pause(): the standby lags from now on
        await standby.resume_replay()
        await standby.stop(); await standby.start()    # like any Cluster
        await standby.promote()                        # pg_ctl promote -w: a read-write primary now
        extra = await rep.add_standby()                # another basebackup of the primary
    finally:
        await rep.close()                              # standbys first, then the primary; folders removed

Every standby and the primary are removed at interpreter exit too (``atexit``), and an orphan left by a
killed run is reaped by the next ``Cluster.start`` (same folder prefix). Blocking twins for synchronous
fixtures: :meth:`Replication.launch`, :meth:`Replication.destroy`, :meth:`Standby.launch_from`.

:func:`unavailable_reason` says (naming what to install) why no replication can be set up here.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from ._cluster import _OWNER, _PREFIX, Cluster, ClusterError, _free_port, _run_as, find_bindir, reap_orphans
from ._cluster import unavailable_reason as _cluster_unavailable

__all__ = ("PRIMARY_SETTINGS", "Replication", "Standby", "unavailable_reason")

#: server settings of a primary that standbys can stream from (also given to each standby)
PRIMARY_SETTINGS: Mapping[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "256MB",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "wal_receiver_status_interval": "1s",
    "wal_retrieve_retry_interval": "200ms",
}


def unavailable_reason() -> str | None:
    """Why no primary + standby can be started here (a sentence naming what to install), or None."""
    reason = _cluster_unavailable()
    if reason is not None:
        return reason
    bindir = find_bindir()
    assert bindir is not None
    if not (bindir / "pg_basebackup").is_file():
        return (
            f"no pg_basebackup next to initdb in {bindir}: install the PostgreSQL client programs (postgresql-client)"
        )
    return None


class Standby(Cluster):
    """A hot standby streaming from :attr:`primary` (a :class:`Cluster`; ``stop``/``start``/``restart``/
    ``close``/``fetch``/``execute`` as for any cluster). Make one with :meth:`launch_from` / :meth:`start_from`.

    :ivar primary: the cluster it was copied from and streams from
    :ivar promoted: whether :meth:`promote` made it a primary
    """

    primary: Cluster
    promoted: bool = False

    @classmethod
    def launch_from(
        cls, primary: Cluster, port: int | None = None, *, settings: Mapping[str, str] | None = None
    ) -> Standby:
        """Blocking: ``pg_basebackup -R -X stream`` of ``primary`` into a new folder, started as a standby on
        ``port`` (a free one by default). ``settings`` add to (override) the primary's."""
        reason = unavailable_reason()
        if reason is not None:
            raise ClusterError(reason)
        reap_orphans()
        folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (folder / _OWNER).write_text(str(os.getpid()))
        user = _run_as()
        if user is not None:
            shutil.chown(folder, user, user)
        standby = cls(
            folder,
            port or _free_port(),
            primary.bindir,
            primary.max_connections,  # a hot standby needs at least the primary's max_connections
            {**primary.settings, **(settings or {})},
        )
        standby.primary = primary
        try:
            standby._program(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(standby.data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            )
            for attempt in range(3):
                try:
                    standby._pg_ctl("start")
                    break
                except ClusterError:
                    if port is not None or attempt == 2:
                        raise
                    standby.port = _free_port()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        standby.running = True
        atexit.register(standby.destroy)
        return standby

    @classmethod
    async def start_from(
        cls, primary: Cluster, port: int | None = None, *, settings: Mapping[str, str] | None = None
    ) -> Standby:
        """:meth:`launch_from` in a thread."""
        return await anyio.to_thread.run_sync(
            functools.partial(cls.launch_from, primary, port, settings=settings), abandon_on_cancel=False
        )

    # -- replication state -------------------------------------------------------------------
    async def in_recovery(self) -> bool:
        """``pg_is_in_recovery()`` (True while a standby; False once promoted)."""
        return bool((await self.fetch("SELECT pg_is_in_recovery()"))[0][0])

    async def replay_lsn(self) -> str | None:
        """``pg_last_wal_replay_lsn()`` as text (None when not in recovery)."""
        value = (await self.fetch("SELECT pg_last_wal_replay_lsn()::text"))[0][0]
        return None if value is None else str(value)

    async def lag_bytes(self) -> int:
        """How many WAL bytes the primary's current LSN is ahead of this standby's replay LSN (0 when caught up)."""
        target = await _current_lsn(self.primary)
        rows = await self.fetch(
            "SELECT greatest(pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn()), 0)", target
        )
        return int(rows[0][0] or 0)

    async def wait_replayed(self, timeout: float = 30.0) -> float:
        """Wait until this standby has replayed everything the primary had written when called
        (``pg_last_wal_replay_lsn() >=`` the primary's ``pg_current_wal_insert_lsn()``); the seconds it took.
        Raises ``TimeoutError`` (with both LSNs) after ``timeout`` — e.g. while replay is paused."""
        began = time.monotonic()
        target = await _current_lsn(self.primary)
        while True:
            rows = await self.fetch(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn, pg_last_wal_replay_lsn()::text", target
            )
            if rows[0][0]:
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"standby :{self.port} replayed only {rows[0][1]} of {target} within {timeout}s")
            await anyio.sleep(0.02)

    async def pause_replay(self) -> None:
        """``pg_wal_replay_pause()``: WAL still arrives but is not applied until :meth:`resume_replay`
        (waits until the pause took effect)."""
        await self.execute("SELECT pg_wal_replay_pause()")
        for _ in range(500):
            state = (await self.fetch("SELECT pg_get_wal_replay_pause_state()"))[0][0]
            if state == "paused":
                return
            await anyio.sleep(0.01)

    async def resume_replay(self) -> None:
        """``pg_wal_replay_resume()``."""
        await self.execute("SELECT pg_wal_replay_resume()")

    async def replay_paused(self) -> bool:
        """``pg_is_wal_replay_paused()``."""
        return bool((await self.fetch("SELECT pg_is_wal_replay_paused()"))[0][0])

    async def promote(self, timeout: float = 60.0) -> float:
        """``pg_ctl promote -w``: this standby becomes a read-write primary (waits until it accepts writes);
        the seconds it took."""
        began = time.monotonic()
        await self._thread(
            functools.partial(self._program, "pg_ctl", "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote")
        )
        while await self.in_recovery():
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"standby :{self.port} still in recovery {timeout}s after pg_ctl promote")
            await anyio.sleep(0.02)
        self.promoted = True
        return time.monotonic() - began

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        role = "promoted" if self.promoted else f"standby of :{self.primary.port}"
        return f"<Standby 127.0.0.1:{self.port} {role} {self.folder} {state}>"


async def _current_lsn(primary: Cluster) -> str:
    # the insert LSN, not pg_current_wal_lsn() (the write position): the primary runs with
    # synchronous_commit=off, so a commit record may still sit in WAL buffers when the call returns
    return str((await primary.fetch("SELECT pg_current_wal_insert_lsn()::text"))[0][0])


class Replication:
    """A primary :class:`Cluster` and its :class:`Standby` list.

    :ivar primary: the primary (``wal_level=replica``, WAL senders, replication trusted on 127.0.0.1)
    :ivar standbys: the standbys, in the order they were added
    """

    def __init__(self, primary: Cluster, standbys: list[Standby] | None = None):
        self.primary = primary
        self.standbys: list[Standby] = standbys or []

    @classmethod
    def launch(
        cls, standbys: int = 1, *, max_connections: int = 100, settings: Mapping[str, str] | None = None
    ) -> Replication:
        """Blocking :meth:`start`."""
        reason = unavailable_reason()
        if reason is not None:
            raise ClusterError(reason)
        primary = Cluster.launch(max_connections=max_connections, settings={**PRIMARY_SETTINGS, **(settings or {})})
        rep = cls(primary)
        try:
            for _ in range(standbys):
                rep.add_standby_blocking()
        except BaseException:
            rep.destroy()
            raise
        return rep

    @classmethod
    async def start(
        cls, standbys: int = 1, *, max_connections: int = 100, settings: Mapping[str, str] | None = None
    ) -> Replication:
        """A new primary and ``standbys`` streaming standbys, all started; ``settings`` apply to every server."""
        return await anyio.to_thread.run_sync(
            functools.partial(cls.launch, standbys, max_connections=max_connections, settings=settings),
            abandon_on_cancel=False,
        )

    def add_standby_blocking(self, port: int | None = None, *, settings: Mapping[str, str] | None = None) -> Standby:
        """Blocking :meth:`add_standby`."""
        standby = Standby.launch_from(self.primary, port, settings=settings)
        self.standbys.append(standby)
        return standby

    async def add_standby(self, port: int | None = None, *, settings: Mapping[str, str] | None = None) -> Standby:
        """One more standby of the primary (a new basebackup)."""
        standby = await Standby.start_from(self.primary, port, settings=settings)
        self.standbys.append(standby)
        return standby

    async def wait_replayed(self, timeout: float = 30.0) -> None:
        """Every running, unpromoted standby has replayed what the primary has written so far."""
        for standby in self.standbys:
            if standby.running and not standby.promoted:
                await standby.wait_replayed(timeout)

    def destroy(self) -> None:
        """Blocking :meth:`close`: standbys first, then the primary (each ``-m immediate``, folder removed)."""
        try:
            for standby in self.standbys:
                standby.destroy()
        finally:
            self.primary.destroy()

    async def close(self) -> None:
        """Stop and remove every standby and the primary."""
        await anyio.to_thread.run_sync(self.destroy, abandon_on_cancel=False)

    def __repr__(self) -> str:
        return f"<Replication primary={self.primary!r} standbys={self.standbys!r}>"


def describe(rep: Replication) -> dict[str, Any]:
    """Ports and folders (for failure messages)."""
    return {
        "primary": rep.primary.port,
        "standbys": [s.port for s in rep.standbys],
        "folders": [str(rep.primary.folder), *(str(s.folder) for s in rep.standbys)],
    }
