"""The read-replica options (``replicas``, ``replica_pool_size``, ``read_your_writes``): checked when the
repo is configured, each replica's settings derived from the primary's (pure: no server)."""

from __future__ import annotations

import pytest

from asyncecto import Repo
from asyncecto.errors import ArgumentError, InvalidURLError
from asyncecto.repo import build_config
from asyncecto.repo._routing import _replica_config


def test_options_are_checked_with_a_fix() -> None:
    with pytest.raises(ArgumentError, match=r"(?s)replicas must be a list of replica URLs.*fix: pass replicas=\["):
        build_config("postgres://h/db", replicas="postgres://r/db")
    with pytest.raises(ArgumentError, match="replica_pool_size must be an integer >= 1"):
        build_config("postgres://h/db", replica_pool_size=0)
    with pytest.raises(ArgumentError, match="read_your_writes must be a number of seconds >= 0"):
        build_config("postgres://h/db", read_your_writes=-1)
    with pytest.raises(InvalidURLError):
        build_config("postgres://h/db", replicas=["postgres://r:notaport/db"])


def test_defaults_and_switches() -> None:
    config = build_config("postgres://h/db")
    assert config.replicas == () and config.replica_pool_size is None and config.read_your_writes == 5.0
    assert build_config("postgres://h/db", read_your_writes=False).read_your_writes == 0.0
    assert build_config("postgres://h/db", read_your_writes=True).read_your_writes == 5.0
    assert build_config("postgres://h/db", read_your_writes=0.25).read_your_writes == 0.25


def test_replica_passwords_are_masked() -> None:
    config = build_config("postgres://u:pw@h/db", replicas=["postgres://u:secret@r1/db"])
    assert "secret" not in repr(config) and "r1" in repr(config)


def test_a_replica_takes_the_primarys_options_unless_its_url_sets_them() -> None:
    primary = build_config(
        "postgres://app:pw@primary:5433/shop",
        pool_size=8,
        min_size=4,
        timeout=3.0,
        server_settings={"application_name": "shop"},
        replicas=["postgres://replica1/shop?timeout=9"],
        replica_pool_size=2,
    )
    replica = _replica_config(primary, primary.replicas[0])
    assert (replica.host, replica.port, replica.database) == ("replica1", 5432, "shop")
    assert (replica.user, replica.password) == ("app", "pw")  # from the primary: the URL gives none
    assert replica.timeout == 9.0  # the URL wins
    assert (replica.pool_size, replica.min_size) == (2, 2)
    assert dict(replica.server_settings) == {"application_name": "shop"}
    assert replica.replicas == ()


def test_no_replicas_no_router() -> None:
    repo = Repo("postgres://h/db")
    assert repo.replica_stats() == []
    with repo.primary():  # harmless without replicas
        pass
