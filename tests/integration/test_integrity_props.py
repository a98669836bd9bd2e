"""Issue 16, the property-based proof: every value of every built-in type survives every write path.

Each property draws rows of the wide schema (:mod:`tests.props.schemas`: one field per built-in
type, a custom type, ``text`` and ``varchar(n)`` columns, arrays, JSON, embeds), writes them
through one path and reads them back with ``repo.get``/``repo.all``: what was loaded (and what
the write returned) equals what was written, value and type (:func:`tests.props.compare.same`).
Every property runs on a plain table and on one partitioned by LIST.

Values a column cannot hold are in ``test_integrity_props_invalid.py``, the defects these
properties found in ``test_integrity_props_found.py``. Examples are drawn deterministically;
``ASYNCECTO_PROPS_SCALE=20`` runs twenty times as many (see :mod:`tests.props.settings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncecto import Repo, meta
from asyncecto.changeset import Changeset, cast, cast_assoc, change
from asyncecto.query import from_, preload, where
from asyncecto.repo._insert_all import COPY_MIN_ROWS

from ..props import numbers
from ..props.compare import assert_row, assert_rows
from ..props.rows import CASTABLE_ROW, ROW, rows
from ..props.schemas import DDL, FIELDS, PARENTS, UNNEST_FIELDS, WideParted, WidePlain
from ..props.settings import props
from ..props.writes import TARGET, Sent, after_change, by_key, cast_row, keyed, load, only, values_of

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture(params=["plain", "partitioned"])
async def wide(request: pytest.FixtureRequest, repo: Repo) -> type[Any]:
    """The wide schema on a plain or a partitioned table; the tables are created in the sandbox."""
    for statement in DDL:
        await repo.query(statement)
    return WidePlain if request.param == "plain" else WideParted


@pytest.fixture
def sent(repo: Repo) -> Iterator[Sent]:
    s = Sent(repo)
    yield s
    repo.telemetry.detach(s.name)


# -- insert ---------------------------------------------------------------------------------------------


@props(20)
@given(data=rows())
async def test_insert_struct_round_trips(repo: Repo, wide: type[Any], data: list[dict[str, Any]]) -> None:
    for row in keyed(data):
        inserted = await repo.insert(wide(**row))
        assert_row(inserted, row, where="insert returned", as_given=True)
        assert meta(inserted).state == "loaded"
        assert_row(await repo.get(wide, inserted.id), row, where="get after insert")


@props(15)
@given(data=rows(max_size=2), castable=rows(CASTABLE_ROW, max_size=2))
async def test_insert_changeset_round_trips(
    repo: Repo, wide: type[Any], data: list[dict[str, Any]], castable: list[dict[str, Any]]
) -> None:
    for row in keyed(data):
        inserted = await repo.insert(change(wide(), row))
        assert_row(inserted, row, where="insert(change) returned", as_given=True)
        assert_row(await repo.get(wide, inserted.id), row, where="get after insert(change)")
    for row in keyed(castable):  # cast refuses inf and NaN from outside input
        inserted = await repo.insert(cast_row(wide(), row))
        assert_row(inserted, row, where="insert(cast + cast_embed) returned", as_given=True)
        assert_row(await repo.get(wide, inserted.id), row, where="get after insert(cast + cast_embed)")


# -- update ---------------------------------------------------------------------------------------------


@props(15)
@given(pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=2))
async def test_update_changeset_round_trips(
    repo: Repo, wide: type[Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    olds = keyed(old for old, _ in pairs)
    for old, (_, new) in zip(olds, pairs, strict=True):
        inserted = await repo.insert(wide(**old))
        wanted = after_change(wide, old, {**new, "k": old["k"]})  # the partition may change too: the row moves
        updated = await repo.update(change(inserted, values_of(new), part=new["part"]))
        assert_row(updated, wanted, where="update returned", as_given=True)
        assert updated.id == inserted.id
        assert_row(await repo.get(wide, inserted.id), wanted, where="get after update")


@props(15)
@given(pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=2))
async def test_update_all_set_round_trips(
    repo: Repo, wide: type[Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    olds = keyed(old for old, _ in pairs)
    await repo.insert_all(wide, olds)
    wanted = [{**new, "k": old["k"]} for old, (_, new) in zip(olds, pairs, strict=True)]
    for row in wanted:
        count, _ = await repo.update_all(from_(wide) | where(k=row["k"]), set=values_of(row) | {"part": row["part"]})
        assert count == 1
    assert_rows(await load(repo, wide, wanted), wanted, where="update_all set=")


# -- insert_all -----------------------------------------------------------------------------------------


@props(15)
@given(data=rows())
async def test_insert_all_unnest_round_trips(
    repo: Repo, wide: type[Any], sent: Sent, data: list[dict[str, Any]]
) -> None:
    written = [only(row, ("part", "k", *UNNEST_FIELDS)) for row in keyed(data)]
    assert await repo.insert_all(wide, written) == (len(written), None)
    assert [s for s in await sent.take() if "unnest(" in s], "insert_all did not take the unnest path"
    assert_rows(await load(repo, wide, written), written, where="insert_all (unnest)")


@props(15)
@given(data=rows())
async def test_insert_all_values_round_trips(
    repo: Repo, wide: type[Any], sent: Sent, data: list[dict[str, Any]]
) -> None:
    written = keyed(data)  # array columns: INSERT ... VALUES
    assert await repo.insert_all(wide, written) == (len(written), None)
    assert not [s for s in await sent.take() if "unnest(" in s or s.startswith("COPY")]
    assert_rows(await load(repo, wide, written), written, where="insert_all (values)")


@props(8)
@given(data=rows())
async def test_insert_all_copy_round_trips(repo: Repo, wide: type[Any], sent: Sent, data: list[dict[str, Any]]) -> None:
    written = keyed(data[i % len(data)] for i in range(COPY_MIN_ROWS))
    assert await repo.insert_all(wide, written) == (COPY_MIN_ROWS, None)
    assert [s for s in await sent.take() if s.startswith("COPY")], "insert_all did not take the COPY path"
    assert_rows(await load(repo, wide, written), written, where="insert_all (COPY)")


@props(15)
@given(data=rows(), scalar=st.booleans())
async def test_insert_all_returning_round_trips(
    repo: Repo, wide: type[Any], data: list[dict[str, Any]], scalar: bool
) -> None:
    written = keyed(data)
    if scalar:  # the unnest path; else VALUES
        written = [only(row, ("part", "k", *UNNEST_FIELDS)) for row in written]
    count, returned = await repo.insert_all(wide, written, returning=True)
    assert count == len(written) and returned is not None
    assert all(meta(s).state == "loaded" and meta(s).inserted for s in returned)
    assert_rows(by_key(returned, written), written, where="insert_all returning=True")
    assert_rows(await load(repo, wide, written), written, where="get after insert_all returning=True")


@props(15)
@given(pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=3))
async def test_insert_all_on_conflict_nothing_keeps_the_stored_row(
    repo: Repo, wide: type[Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    olds = keyed(old for old, _ in pairs)
    assert await repo.insert_all(wide, olds, on_conflict="nothing", conflict_target=TARGET) == (len(olds), None)
    clashing = [{**new, "part": old["part"], "k": old["k"]} for old, (_, new) in zip(olds, pairs, strict=True)]
    count, returned = await repo.insert_all(
        wide, clashing, on_conflict="nothing", conflict_target=TARGET, returning=True
    )
    assert (count, returned) == (0, [])
    assert_rows(await load(repo, wide, olds), olds, where="insert_all on_conflict='nothing'")


# -- upserts --------------------------------------------------------------------------------------------


def _clash(olds: Sequence[Mapping[str, Any]], news: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The new rows on the old rows' keys."""
    return [{**new, "part": old["part"], "k": old["k"]} for old, new in zip(olds, news, strict=True)]


@props(15)
@given(pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=2), fresh=rows(max_size=2), scalar=st.booleans())
async def test_insert_all_upsert_replace_all_round_trips(
    repo: Repo,
    wide: type[Any],
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    fresh: list[dict[str, Any]],
    scalar: bool,
) -> None:
    olds = keyed(old for old, _ in pairs)
    _, stored = await repo.insert_all(wide, olds, returning=["id", "k"])
    assert stored is not None
    news = _clash(olds, (new for _, new in pairs)) + keyed(fresh)
    if scalar:
        news = [only(row, ("part", "k", *UNNEST_FIELDS)) for row in news]
    count, returned = await repo.insert_all(
        wide, news, on_conflict="replace_all", conflict_target=TARGET, returning=True
    )
    assert count == len(news) and returned is not None
    returned = by_key(returned, news)
    assert_rows(returned, news, where="upsert replace_all returned")
    assert [meta(s).inserted for s in returned] == [False] * len(olds) + [True] * len(fresh)
    assert [s.id for s in returned[: len(olds)]] == [s.id for s in by_key(stored, olds)]  # the row keeps its key
    assert_rows(await load(repo, wide, news), news, where="get after upsert replace_all")


@props(15)
@given(
    pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=2),
    replace=st.lists(st.sampled_from(FIELDS), min_size=1, unique=True),
)
async def test_insert_all_upsert_replace_fields_round_trips(
    repo: Repo, wide: type[Any], pairs: list[tuple[dict[str, Any], dict[str, Any]]], replace: list[str]
) -> None:
    olds = keyed(old for old, _ in pairs)
    await repo.insert_all(wide, olds)
    news = _clash(olds, (new for _, new in pairs))
    count, returned = await repo.insert_all(
        wide, news, on_conflict=("replace", replace), conflict_target=TARGET, returning=True
    )
    wanted = [{**old, **only(new, replace)} for old, new in zip(olds, news, strict=True)]
    assert count == len(news) and returned is not None
    assert not any(meta(s).inserted for s in returned)
    assert_rows(by_key(returned, wanted), wanted, where=f"upsert ('replace', {replace}) returned")
    assert_rows(await load(repo, wide, wanted), wanted, where=f"get after upsert ('replace', {replace})")


def _sums(bounds: tuple[int, int]) -> st.SearchStrategy[tuple[int, int]]:
    """``(stored, delta)`` whose sum stays within ``bounds`` (the limits reachable)."""
    lo, hi = bounds  # the delta is a parameter of the column's type: it fits that type too
    return numbers.integers(bounds).flatmap(
        lambda v: st.tuples(st.just(v), numbers.integers((max(lo, lo - v), min(hi, hi - v))))
    )


INC_FIELDS = {"i2": numbers.INT2, "i4": numbers.INT4, "i8": numbers.INT8}


@props(15)
@given(
    old=ROW,
    new=ROW,
    incs=st.fixed_dictionaries({name: _sums(bounds) for name, bounds in INC_FIELDS.items()}),
    via_insert=st.booleans(),
)
async def test_upsert_set_and_inc_round_trips(
    repo: Repo,
    wide: type[Any],
    old: dict[str, Any],
    new: dict[str, Any],
    incs: dict[str, tuple[int, int]],
    via_insert: bool,
) -> None:
    [old] = keyed([{**old, **{name: stored for name, (stored, _) in incs.items()}}])
    inserted = await repo.insert(wide(**old))
    sets = {name: value for name, value in values_of(new).items() if name not in INC_FIELDS}
    on_conflict = {"set": sets, "inc": {name: delta for name, (_, delta) in incs.items()}}
    wanted = {**old, **sets, **{name: stored + delta for name, (stored, delta) in incs.items()}}
    proposed = wide(**{**new, "part": old["part"], "k": old["k"]})
    if via_insert:
        got = await repo.insert(proposed, on_conflict=on_conflict, conflict_target=TARGET, returning=True)
        assert meta(got).inserted is False
        assert got.id == inserted.id
        assert_row(got, wanted, where="insert upsert set/inc returned")
    else:
        count, returned = await repo.insert_all(
            wide,
            [{**new, "part": old["part"], "k": old["k"]}],
            on_conflict=on_conflict,
            conflict_target=TARGET,
            returning=True,
        )
        assert count == 1 and returned is not None and meta(returned[0]).inserted is False
        assert_row(returned[0], wanted, where="insert_all upsert set/inc returned")
    assert_row(await repo.get(wide, inserted.id), wanted, where="get after upsert set/inc")


@props(15)
@given(pairs=st.lists(st.tuples(ROW, ROW), min_size=1, max_size=2), fresh=ROW)
async def test_insert_struct_upsert_replace_all_round_trips(
    repo: Repo,
    wide: type[Any],
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    fresh: dict[str, Any],
) -> None:
    olds = keyed(old for old, _ in pairs)
    for old, new in zip(olds, _clash(olds, (new for _, new in pairs)), strict=True):
        inserted = await repo.insert(wide(**old))
        got = await repo.insert(wide(**new), on_conflict="replace_all", conflict_target=TARGET)
        assert meta(got).inserted is False and got.id == inserted.id
        assert_row(got, new, where="insert upsert replace_all returned", as_given=True)
        assert_row(await repo.get(wide, inserted.id), new, where="get after insert upsert replace_all")
    [fresh] = keyed([fresh])
    got = await repo.insert(wide(**fresh), on_conflict="replace_all", conflict_target=TARGET, returning=True)
    assert meta(got).inserted is True
    assert_row(got, fresh, where="insert upsert (no conflict) returned")
    assert_row(await repo.get(wide, got.id), fresh, where="get after insert upsert (no conflict)")


# -- COPY -----------------------------------------------------------------------------------------------


@props(15)
@given(data=rows(max_size=4), lazily=st.booleans())
async def test_copy_from_round_trips(repo: Repo, wide: type[Any], data: list[dict[str, Any]], lazily: bool) -> None:
    written = keyed(data)
    source: Iterable[dict[str, Any]] = (row for row in written) if lazily else written
    assert await repo.copy_from(wide, source) == len(written)
    assert_rows(await load(repo, wide, written), written, where="copy_from")


# -- associations ---------------------------------------------------------------------------------------


@props(12)
@given(children=rows(CASTABLE_ROW), updates=rows(CASTABLE_ROW))
async def test_cast_assoc_children_round_trip(
    repo: Repo, wide: type[Any], children: list[dict[str, Any]], updates: list[dict[str, Any]]
) -> None:
    parent_schema = PARENTS[wide]
    written = keyed(children)

    def child(data: Any, params: Mapping[str, Any]) -> Changeset[Any]:
        return cast_row(data, {name: value for name, value in params.items() if name != "id"})

    cs = cast(parent_schema(), {"name": "p", "children": written}, ["name"])
    parent = await repo.insert(cast_assoc(cs, "children", with_=child))
    assert_rows(by_key(parent.children, written), written, where="cast_assoc insert returned", as_given=True)
    loaded = await repo.one_or_raise(from_(parent_schema) | where(id=parent.id) | preload("children"))
    assert_rows(by_key(loaded.children, written), written, where="preload after cast_assoc insert")

    # the children again: the first ones updated in place (by id), the rest deleted, new ones added
    kept = by_key(loaded.children, written)[: len(updates)]
    changed = [{**new, "id": c.id, "k": c.k} for c, new in zip(kept, updates, strict=False)]
    added = keyed(updates[len(kept) :])
    cs = cast(loaded, {"children": changed + added}, [])
    updated = await repo.update(cast_assoc(cs, "children", with_=child))
    before = {row["k"]: row for row in written}
    wanted = [
        after_change(wide, before.get(row["k"], {}), {k: v for k, v in row.items() if k != "id"})
        for row in changed + added
    ]
    assert_rows(by_key(updated.children, wanted), wanted, where="cast_assoc update returned", as_given=True)
    reloaded = await repo.one_or_raise(from_(parent_schema) | where(id=parent.id) | preload("children"))
    assert len(reloaded.children) == len(wanted)
    assert_rows(by_key(reloaded.children, wanted), wanted, where="preload after cast_assoc update")
    assert [c.id for c in by_key(reloaded.children, changed)] == [row["id"] for row in changed]
