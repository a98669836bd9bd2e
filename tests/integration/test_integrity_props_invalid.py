"""Issue 16, values a column cannot hold: every write path fails with a named error and writes nothing.

A property draws a storable row (:data:`tests.props.rows.ROW`) and puts into one field a value its
column cannot hold; every write path must raise a library error (a :class:`CastError` naming the
field, or a :class:`DatabaseError` with the SQLSTATE PostgreSQL gives for it) and leave the table
exactly as it was. Values are those PostgreSQL refuses by the column's own type: strings longer than
``varchar(n)`` (in a column and in an array), integers beyond ``smallint``, decimals beyond
``numeric(12,4)``, JSON with NaN or infinity, empty or ragged rows in a two-dimensional array.

NUL characters, lone surrogates and integers beyond ``bigint`` are refused before any SQL by the
types themselves (issue 16, defect 9): their properties join this file with that work.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from asyncecto import Repo
from asyncecto.changeset import cast, cast_assoc, change, traverse_errors
from asyncecto.errors import AsyncEctoError, CastError, DatabaseError, InvalidChangesetError
from asyncecto.query import from_, where
from asyncecto.repo._insert_all import COPY_MIN_ROWS

from ..props import numbers
from ..props.rows import CASTABLE_ROW
from ..props.schemas import DDL, FIELDS, PARENTS, UNNEST_FIELDS, Emb, WideParted, WidePlain
from ..props.settings import props
from ..props.text import CHARS, VARCHAR_N
from ..props.writes import TARGET, cast_row, keyed, load, values_of

pytestmark = pytest.mark.usefixtures("repo")


class Bad:
    """A value ``field`` cannot hold, and the errors that may refuse it (SQLSTATEs; a CastError names the field)."""

    def __init__(self, field: str, value: Any, sqlstates: frozenset[str], why: str, inner: str | None = None) -> None:
        self.field, self.value, self.sqlstates, self.why = field, value, sqlstates, why
        self.names = {field} if inner is None else {field, inner, f"{field}.{inner}"}  # what a CastError may name

    def __repr__(self) -> str:
        shown = repr(self.value)
        return f"Bad({self.field}={shown[:60]}{'...' if len(shown) > 60 else ''}: {self.why})"


#: 22001 string_data_right_truncation, 22003 numeric_value_out_of_range, 22P02 invalid json text;
#: 22000 is the driver refusing to encode the parameter (asyncpg's DataError), named with the value
TOO_LONG = frozenset({"22001"})
OUT_OF_RANGE = frozenset({"22003", "22000"})
BAD_JSON = frozenset({"22P02", "22000"})
NOT_RECTANGULAR = frozenset({"22000", "2202E"})

_too_long = st.text(CHARS, min_size=VARCHAR_N + 1, max_size=VARCHAR_N + 300)
_smallint_overflow = st.integers(numbers.INT2[1] + 1, numbers.INT4[1]) | st.integers(
    numbers.INT4[0], numbers.INT2[0] - 1
)
_numeric_overflow = st.decimals(min_value=10**8, max_value=10**20, places=2).flatmap(lambda d: st.sampled_from([d, -d]))
_non_finite = st.sampled_from([math.inf, -math.inf, math.nan])

BAD = st.one_of(
    _too_long.map(lambda s: Bad("s_var", s, TOO_LONG, f"longer than varchar({VARCHAR_N})")),
    _too_long.map(lambda s: Bad("tags", ["ok", None, s], TOO_LONG, f"an element longer than varchar({VARCHAR_N})")),
    _smallint_overflow.map(lambda i: Bad("i2", i, OUT_OF_RANGE, "beyond smallint")),
    _numeric_overflow.map(lambda d: Bad("dec_ps", d, OUT_OF_RANGE, "beyond numeric(12,4)")),
    _non_finite.map(lambda f: Bad("m", {"a": [1, {"b": f}]}, BAD_JSON, "JSON has no NaN or infinity")),
    _non_finite.map(lambda f: Bad("one", Emb(f=f), BAD_JSON, "an embed's float NaN or infinity", inner="f")),
    st.sampled_from([[[]], [[], []]]).map(lambda g: Bad("grid", g, frozenset(), "an empty row ([[]] would be [])")),
    st.sampled_from([[[1], [2, 3]], [[1], None]]).map(lambda g: Bad("grid", g, NOT_RECTANGULAR, "ragged rows")),
)


def _error_keys(errors: Any) -> set[str]:
    """Every field named in ``traverse_errors``' nested dicts (children's and embeds' included)."""
    if isinstance(errors, dict):
        return set(errors) | {k for v in errors.values() for k in _error_keys(v)}
    if isinstance(errors, list):
        return {k for v in errors for k in _error_keys(v)}
    return set()


def assert_refused(err: BaseException, bad: Bad, path: str) -> None:
    """A library error naming what was refused."""
    assert isinstance(err, AsyncEctoError), f"{path}: {bad!r} raised {type(err).__name__}: {err}"
    if isinstance(err, InvalidChangesetError):  # cast refused it: the changeset says which field
        errors = traverse_errors(err.changeset)
        assert bad.field in _error_keys(errors), f"{path}: {bad!r}: {errors}"
        return
    if isinstance(err, CastError):
        assert err.field in bad.names, f"{path}: {bad!r}: CastError names {err.field!r}"
        return
    assert isinstance(err, DatabaseError), f"{path}: {bad!r} raised {type(err).__name__}: {err}"
    assert err.sqlstate in bad.sqlstates, f"{path}: {bad!r} failed with SQLSTATE {err.sqlstate}: {err}"


#: the fields a row leaves out to go by ``unnest``
NOT_UNNEST = frozenset(FIELDS) - frozenset(UNNEST_FIELDS)

Path = Callable[[Repo, type[Any], dict[str, Any], dict[str, Any]], Awaitable[Any]]


async def _update(repo: Repo, wide: type[Any], base: dict[str, Any], bad: dict[str, Any]) -> None:
    stored = await repo.get_by(wide, k=base["k"])
    await repo.update(change(stored, values_of(bad)))


async def _cast_assoc_insert(repo: Repo, wide: type[Any], base: dict[str, Any], bad: dict[str, Any]) -> None:
    parent = PARENTS[wide]
    cs = cast(parent(), {"name": "p", "children": [bad]}, ["name"])
    await repo.insert(cast_assoc(cs, "children", with_=lambda data, params: cast_row(data, params, valid=False)))


#: every write path: ``run(repo, wide, base, bad)``; ``base`` is stored already, ``bad`` has a fresh
#: key (the conflict and update paths aim it at ``base``'s row instead)
PATHS: dict[str, Path] = {
    "insert": lambda r, w, base, bad: r.insert(w(**bad)),
    "insert(cast)": lambda r, w, base, bad: r.insert(cast_row(w(), bad, valid=False)),
    "update": _update,
    "insert_all": lambda r, w, base, bad: r.insert_all(w, [bad]),
    "insert_all unnest": lambda r, w, base, bad: r.insert_all(
        w, [{k: v for k, v in bad.items() if k not in NOT_UNNEST}]
    ),
    "insert_all COPY": lambda r, w, base, bad: r.insert_all(w, [*keyed([base] * (COPY_MIN_ROWS - 1)), bad]),
    "insert_all returning": lambda r, w, base, bad: r.insert_all(w, [bad], returning=True),
    "insert_all nothing": lambda r, w, base, bad: r.insert_all(w, [bad], on_conflict="nothing", conflict_target=TARGET),
    "upsert replace_all": lambda r, w, base, bad: r.insert_all(
        w, [{**bad, "k": base["k"], "part": base["part"]}], on_conflict="replace_all", conflict_target=TARGET
    ),
    "upsert set": lambda r, w, base, bad: r.insert(
        w(**{**base, "k": base["k"]}), on_conflict={"set": values_of(bad)}, conflict_target=TARGET
    ),
    "update_all set": lambda r, w, base, bad: r.update_all(from_(w) | where(k=base["k"]), set=values_of(bad)),
    "copy_from": lambda r, w, base, bad: r.copy_from(w, [bad]),
    "cast_assoc": _cast_assoc_insert,
}


@pytest.fixture(params=["plain", "partitioned"])
async def wide(request: pytest.FixtureRequest, repo: Repo) -> type[Any]:
    for statement in DDL:
        await repo.query(statement)
    return WidePlain if request.param == "plain" else WideParted


def _drop_unfit(row: dict[str, Any], bad: Bad) -> dict[str, Any]:
    """The row with ``bad`` in its field (and only storable values elsewhere)."""
    return {**row, bad.field: bad.value}


@pytest.mark.parametrize("path", PATHS)
@props(6)
@given(row=CASTABLE_ROW, bad=BAD)
async def test_a_value_the_column_cannot_hold_is_refused_and_nothing_is_written(
    repo: Repo, wide: type[Any], path: str, row: dict[str, Any], bad: Bad
) -> None:
    if path == "insert_all unnest":
        assume(bad.field not in NOT_UNNEST)  # those fields go by VALUES: the path sends none of them
    [base] = keyed([row])
    await repo.insert_all(wide, [base])
    count = await repo.aggregate(wide, "count")
    [stored] = await load(repo, wide, [base])
    [attempt] = keyed([_drop_unfit(row, bad)])
    with pytest.raises(AsyncEctoError) as info:
        await PATHS[path](repo, wide, base, attempt)
    assert_refused(info.value, bad, path)
    assert await repo.aggregate(wide, "count") == count, f"{path}: {bad!r} wrote a row"
    assert await load(repo, wide, [base]) == [stored], f"{path}: {bad!r} changed the stored row"
    assert await repo.get_by(wide, k=attempt["k"]) is None


@pytest.mark.parametrize("value", [decimal.Decimal("1.00005"), decimal.Decimal("-0.00001")])
async def test_numeric_scale_rounding_is_postgresql_own(repo: Repo, wide: type[Any], value: decimal.Decimal) -> None:
    """Left as PostgreSQL (and Ecto) have it: ``numeric(12,4)`` rounds extra places on assignment."""
    [row] = keyed([{"part": "a", "dec_ps": value}])
    inserted = await repo.insert(wide(**row))
    got = await repo.get(wide, inserted.id)
    assert got is not None and got.dec_ps == value.quantize(decimal.Decimal("0.0001"), decimal.ROUND_HALF_UP)
