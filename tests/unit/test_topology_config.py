"""The topology options together: a pooled, multi-host primary with replicas keeps each server list
where it belongs (the direct URL and each replica name their own servers)."""

from __future__ import annotations

from asyncecto.repo import build_config
from asyncecto.repo._routing import _replica_config

PRIMARY = "postgres://u:pw@p1:6432,p2:6432/db?target_session_attrs=read-write&pooler=transaction"


def test_the_direct_url_names_its_own_server_and_nothing_of_the_pooler() -> None:
    config = build_config(PRIMARY, direct_url="postgres://u:pw@d1:5432/db", replicas=["postgres://u@r1/db"])
    assert config.endpoints == (("p1", 6432), ("p2", 6432)) and config.transaction_pooled
    direct = config.direct_config()
    assert direct is not None
    assert (direct.host, direct.port, direct.endpoints, direct.target_session_attrs) == ("d1", 5432, (), None)
    assert (direct.pooler, direct.direct_url, direct.replicas) == (None, None, ())
    options = config.direct_options()
    assert not {"endpoints", "target_session_attrs", "replicas", "pooler", "direct_url"} & set(options)


def test_a_multi_host_direct_url_keeps_its_list_and_target() -> None:
    config = build_config(PRIMARY, direct_url="postgres://u@d1,d2:5433/db?target_session_attrs=primary")
    direct = config.direct_config()
    assert direct is not None
    assert (direct.endpoints, direct.target_session_attrs) == ((("d1", 5432), ("d2", 5433)), "primary")


def test_a_replica_takes_neither_the_primarys_servers_nor_its_direct_url() -> None:
    config = build_config(PRIMARY, direct_url="postgres://u@d1/db", replicas=["postgres://u@r1/db"])
    replica = _replica_config(config, "postgres://u@r1/db")
    assert (replica.host, replica.endpoints, replica.target_session_attrs, replica.direct_url) == ("r1", (), None, None)
    assert replica.pooler == "transaction"  # the primary's options, unless the replica URL says otherwise
    own = _replica_config(config, "postgres://u@r1/db?pooler=session")
    assert own.pooler == "session" and not own.transaction_pooled
