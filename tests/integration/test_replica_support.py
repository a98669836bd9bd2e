"""The test support for streaming replicas (``tests/_replica.py``): a real ``pg_basebackup`` standby that
is in recovery, replays what the primary writes, pauses and resumes replay, and can be promoted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._replica import Replication, unavailable_reason

pytestmark = pytest.mark.no_sandbox  # private servers, not the shared one


@pytest.fixture
async def rep() -> AsyncIterator[Replication]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    r = await Replication.start(standbys=1, max_connections=30)
    try:
        yield r
    finally:
        await r.close()


async def test_standbys_stream_pause_stop_start_and_promote(rep: Replication) -> None:
    # one replication for every step (each costs an initdb and a base backup): the promotion comes last
    primary, standby = rep.primary, rep.standbys[0]
    assert await standby.in_recovery() is True
    assert (await primary.fetch("SELECT pg_is_in_recovery()"))[0][0] is False
    await primary.execute("CREATE TABLE support_rows (id int PRIMARY KEY, tag text)")
    await primary.execute("INSERT INTO support_rows VALUES (1, 'one')")
    await standby.wait_replayed(timeout=30)
    assert [tuple(r) for r in await standby.fetch("SELECT id, tag FROM support_rows")] == [(1, "one")]
    assert await standby.lag_bytes() == 0

    await standby.pause_replay()
    assert await standby.replay_paused() is True
    await primary.execute("INSERT INTO support_rows VALUES (2, 'two')")
    with pytest.raises(TimeoutError):
        await standby.wait_replayed(timeout=0.5)
    assert [r[0] for r in await standby.fetch("SELECT id FROM support_rows ORDER BY id")] == [1]
    assert await standby.lag_bytes() > 0
    await standby.resume_replay()
    await standby.wait_replayed(timeout=30)
    assert [r[0] for r in await standby.fetch("SELECT id FROM support_rows ORDER BY id")] == [1, 2]

    # a second standby, stopped while the primary writes, catches up when started again
    extra = await rep.add_standby()
    assert len(rep.standbys) == 2 and extra.port != rep.standbys[0].port
    await rep.primary.execute("CREATE TABLE support_two (id int)")
    await rep.wait_replayed()
    await extra.stop()
    await rep.primary.execute("INSERT INTO support_two VALUES (7)")
    await extra.start()
    await extra.wait_ready()
    await extra.wait_replayed(timeout=30)
    assert [r[0] for r in await extra.fetch("SELECT id FROM support_two")] == [7]
    assert await extra.in_recovery() is True

    await standby.promote()
    assert await standby.in_recovery() is False
    await standby.execute("INSERT INTO support_rows VALUES (3, 'written on the promoted standby')")
    assert [r[0] for r in await standby.fetch("SELECT id FROM support_rows ORDER BY id")] == [1, 2, 3]
