"""insert_all's per-schema caches (returning's loader, row headers' columns, returning's names):
a repeated call gives the same answers as the first, and a refused call stays refused."""

from __future__ import annotations

import pytest

from asyncecto import Repo, meta
from asyncecto.errors import ArgumentError

from ..upsert_schemas import Counter

pytestmark = pytest.mark.usefixtures("repo")


async def test_repeated_returning_calls_give_fresh_loaded_structs(repo: Repo) -> None:
    firsts = []
    for i in range(3):
        count, returned = await repo.insert_all(
            Counter, [{"name": f"n{i}a", "hits": i}, {"name": f"n{i}b", "hits": i + 10}], returning=["id", "hits"]
        )
        assert count == 2 and returned is not None
        assert [c.hits for c in returned] == [i, i + 10]
        assert all(isinstance(c.id, int) and c.name is None for c in returned)  # only the fields returned
        m = meta(returned[0])
        assert (m.state, m.source, m.prefix, m.inserted) == ("loaded", "counters", None, True)
        firsts.append(returned[0])
    assert len({id(c) for c in firsts}) == 3 and len({c.id for c in firsts}) == 3


async def test_upsert_flag_is_per_row_on_every_call(repo: Repo) -> None:
    await repo.insert_all(Counter, [{"name": "a"}])
    for i in range(2):
        _, returned = await repo.insert_all(
            Counter,
            [{"name": "a"}, {"name": f"new{i}"}],
            on_conflict={"set": {"hits": 7}},
            conflict_target="name",
            returning=["id", "name"],
        )
        assert returned is not None
        assert [(c.name, meta(c).inserted) for c in returned] == [("a", False), (f"new{i}", True)]


async def test_refusals_are_not_cached_away(repo: Repo) -> None:
    for _ in range(2):
        with pytest.raises(ArgumentError, match="unknown field 'nope' in returning="):
            await repo.insert_all(Counter, [{"name": "x"}], returning=["id", "nope"])
        with pytest.raises(ArgumentError, match="unknown field 'nope' in insert_all rows"):
            await repo.insert_all(Counter, [{"name": "x", "nope": 1}])
    # a good header and returning after the refusals, then the same again from the caches
    for i in range(2):
        _, returned = await repo.insert_all(Counter, [{"name": f"ok{i}"}], returning=("id", "name"))
        assert returned is not None and returned[0].name == f"ok{i}"
