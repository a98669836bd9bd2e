"""The row loader: the C accelerator and the generated Python loader must agree exactly."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import gc
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from asyncecto import field, meta, schema
from asyncecto import types as t
from asyncecto.repo._loader import build_loader, load_struct, speedups_built
from asyncecto.schema import Meta

UTC = dt.UTC


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@schema("things", timestamps={"type": "utc_datetime_usec"})
class Thing:
    id: int | None = None
    name: str | None = None
    color: Color | None = None
    tags: list[str] | None = None
    note: str | None = field(virtual=True, default="virtual default")
    extra: list[int] | None = field(virtual=True, default_factory=list)
    if TYPE_CHECKING:  # added by timestamps=; declared here for type checkers only
        inserted_at: dt.datetime | None = None
        updated_at: dt.datetime | None = None


FIELDS = ("id", "name", "color", "tags", "inserted_at", "updated_at")
META = Meta("loaded", "things", "tenant")
NOW = dt.datetime(2024, 5, 1, 12, 30, 0, 5)
ROWS: list[tuple[Any, ...]] = [
    (1, "a", "red", ["x", "y"], NOW, NOW),
    (2, None, None, None, None, None),
    (3, "c", "blue", [], NOW.replace(tzinfo=UTC), NOW),
]

# Only a machine without a C compiler skips these; CI builds the extension and checks that it did.
needs_speedups = pytest.mark.skipif(not speedups_built(), reason="no C compiler: asyncecto._speedups was not built")


@pytest.fixture(params=[False, pytest.param(True, marks=needs_speedups)], ids=["python", "c"])
def speedups(request: pytest.FixtureRequest) -> Iterator[bool]:
    yield request.param


def test_loaders_agree(speedups: bool) -> None:
    structs = build_loader(Thing, FIELDS, META, speedups=speedups)(ROWS)
    assert structs == [
        Thing(
            id=1,
            name="a",
            color=Color.RED,
            tags=["x", "y"],
            inserted_at=NOW.replace(tzinfo=UTC),
            updated_at=NOW.replace(tzinfo=UTC),
        ),
        Thing(id=2),
        Thing(
            id=3,
            name="c",
            color=Color.BLUE,
            tags=[],
            inserted_at=NOW.replace(tzinfo=UTC),
            updated_at=NOW.replace(tzinfo=UTC),
        ),
    ]
    for s in structs:
        assert meta(s) is META
        assert s.note == "virtual default"
    # a default factory is called once per struct
    assert structs[0].extra == [] and structs[0].extra is not structs[1].extra


def test_partial_fields_take_defaults(speedups: bool) -> None:
    (s,) = build_loader(Thing, ("name", "id"), META, speedups=speedups)([("n", 9)])
    assert (s.id, s.name, s.color, s.tags, s.inserted_at) == (9, "n", None, None, None)


def test_loaded_structs_are_frozen_and_equal_to_built_ones(speedups: bool) -> None:
    (s,) = build_loader(Thing, FIELDS, META, speedups=speedups)(ROWS[1:2])
    with pytest.raises(AttributeError):
        s.name = "x"
    assert s == Thing(id=2) and hash(s.id) == hash(2)


def test_a_failing_type_load_propagates(speedups: bool) -> None:
    bad = [(1, "a", "green", None, None, None)]
    with pytest.raises(ValueError, match="green"):
        build_loader(Thing, FIELDS, META, speedups=speedups)(bad)


def test_records_and_tuples_and_iterables_are_accepted(speedups: bool) -> None:
    loader = build_loader(Thing, ("id",), None, speedups=speedups)
    assert [s.id for s in loader([(1,), [2]])] == [1, 2]
    assert [s.id for s in loader(iter([(3,)]))] == [3]  # type: ignore[arg-type]


@needs_speedups
def test_c_loader_keeps_structs_holding_containers_tracked() -> None:
    structs = build_loader(Thing, FIELDS, META, speedups=True)(ROWS)
    # row 1 holds a list (tags) and the factory-made list (extra): a cycle could pass through it
    assert gc.is_tracked(structs[0])
    plain = build_loader(Thing, ("id", "name"), META, speedups=True)
    # extra's default_factory makes a fresh list: still tracked
    assert gc.is_tracked(plain([(1, "x")])[0])


@needs_speedups
def test_c_loader_untracks_when_every_slot_is_atomic() -> None:
    @schema("atoms")
    class Atoms:
        id: int | None = None
        name: str | None = None
        at: dt.datetime | None = field(type=t.UtcDatetimeUsec)

    (s,) = build_loader(Atoms, ("id", "name", "at"), Meta("loaded", "atoms"), speedups=True)([(1, "x", NOW)])
    assert not gc.is_tracked(s)
    assert s == Atoms(id=1, name="x", at=NOW.replace(tzinfo=UTC))
    gc.collect()  # collecting with untracked structs alive is fine
    assert s.name == "x"


@needs_speedups
def test_c_loader_restores_the_collector_state() -> None:
    loader = build_loader(Thing, FIELDS, META, speedups=True)
    assert gc.isenabled()
    loader(ROWS)
    assert gc.isenabled()
    with pytest.raises(ValueError):
        loader([(1, "a", "green", None, None, None)])
    assert gc.isenabled()
    gc.disable()
    try:
        loader(ROWS)
        assert not gc.isenabled()
    finally:
        gc.enable()


@needs_speedups
def test_c_loader_refuses_rows_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="row 0 has 2 columns, expected 6"):
        build_loader(Thing, FIELDS, META, speedups=True)([(1, "a")])
    assert gc.isenabled()


def test_load_struct_from_a_mapping() -> None:
    s = load_struct(Thing, {"id": 1, "color": "blue", "unknown": 5}, META)
    assert (s.id, s.color, s.note) == (1, Color.BLUE, "virtual default")
    assert meta(s) is META


@needs_speedups
def test_c_loader_keeps_structs_holding_a_dict_tracked() -> None:
    @schema("docs")
    class Doc:
        id: int | None = None
        data: dict[str, object] | None = None

    (s,) = build_loader(Doc, ("id", "data"), Meta("loaded", "docs"), speedups=True)([(1, {"a": 1})])
    assert not gc.is_tracked(s.data)  # CPython itself untracks a dict of atomic values...
    assert gc.is_tracked(s)  # ...but the dict is mutable, so the struct must stay tracked
    assert s.data is not None
    s.data["self"] = s  # a cycle through the struct and its dict
    sentinel = object()
    s.data["sentinel"] = sentinel
    del s
    gc.collect()
    assert not any(isinstance(r, dict) and "sentinel" in r for r in gc.get_referrers(sentinel))


@needs_speedups
def test_c_loader_refuses_a_descriptor_of_another_class() -> None:
    from asyncecto._speedups import load_rows

    @schema("big")
    class Big:
        a: int | None = None
        b: int | None = None

    @schema("small", primary_key=False)
    class Small:
        a: int | None = None

    with pytest.raises(TypeError, match="does not belong to"):
        load_rows(Small, [(1,)], (Big.b,), (None,), (), None, None)


def test_load_failure_names_the_field(speedups: bool) -> None:
    from asyncecto.errors import CastError

    with pytest.raises(CastError) as info:
        build_loader(Thing, FIELDS, META, speedups=speedups)([(1, "a", "green", None, None, None)])
    assert (info.value.field, info.value.schema, info.value.action) == ("color", "Thing", "load")


def test_copier_makes_shallow_copies_that_stay_tracked(speedups: bool) -> None:
    from operator import attrgetter

    from asyncecto.repo._loader import build_copier
    from asyncecto.schema import schema_info

    (s,) = build_loader(Thing, FIELDS, META, speedups=speedups)(ROWS[:1])
    slots = schema_info(Thing).slots
    (c,) = build_copier(Thing, speedups=speedups)([attrgetter(*slots)(s)])
    assert c is not s and type(c) is Thing and c == s
    assert meta(c) is META and c.tags is s.tags and c.extra is s.extra  # shallow: the same values
    assert gc.is_tracked(c)  # its meta is an object the collector handles, so it stays tracked
    with pytest.raises(ValueError):
        build_copier(Thing, speedups=speedups)([attrgetter(*slots[:-1])(s)])  # a slot short


# -- issue 16 defect 14: Python code run by the loader may do anything, and never crashes it --------

#: Run in a child interpreter (``-X dev``: debug allocator and fault handler) so a crash shows as an exit
#: code, not a dead test run. Each scenario prints what the loader returned or raised.
MISBEHAVING = """
import gc, sys
from asyncecto import field, schema
from asyncecto.types import BaseType
from asyncecto.repo._loader import build_loader, speedups_enabled

scenario = sys.argv[1]
rows = [[i, f"n{i}"] for i in range(50)]
calls = [0]

class Hostile(BaseType[object]):
    name = "hostile"
    db_type = "text"
    load_is_identity = False

    def load(self, value):
        calls[0] += 1
        if scenario == "clear":
            rows.clear()
        elif scenario == "shrink" and calls[0] == 10:
            del rows[20:]
        elif scenario == "grow" and calls[0] == 1:
            rows.extend([[100, "late"], [101, "later"]])
        elif scenario == "replace":  # same size: every row from here on is a new one
            for k in range(len(rows)):
                rows[k] = (k * 10, f"r{k}")
        elif scenario == "row_shrinks" and calls[0] == 1:
            rows[1].pop()
        elif scenario == "raises" and calls[0] == 5:
            raise LookupError("load failed on purpose")
        elif scenario == "raises_value" and calls[0] == 5:
            raise ValueError("bad value on purpose")
        elif scenario == "garbage":
            return rows if calls[0] % 2 else object
        elif scenario == "gc":
            gc.enable()
            gc.collect()
            [repr(o) for o in gc.get_objects() if type(o) is list and len(o) == 50]
        return value

def factory():
    if scenario == "factory_clears":
        rows.clear()
    return []

@schema("hostile")
class H:
    id: int | None = None
    name: object = field(type=Hostile())
    extra: list[int] | None = field(virtual=True, default_factory=factory)

try:
    out = build_loader(H, ("id", "name"), None)(rows)
    shown = [(s.id, "<rows>" if s.name is rows else s.name) for s in out]
    print("returned", len(out), shown[:3], shown[-1:])
except Exception as exc:
    print("raised", type(exc).__name__, exc)
print("c" if speedups_enabled() else "python", file=sys.stderr)
"""

SCENARIOS = {
    "clear": "raised RuntimeError the rows changed size during loading (50 rows, then 0)",
    "shrink": "raised RuntimeError the rows changed size during loading (50 rows, then 20)",
    "grow": "raised RuntimeError the rows changed size during loading (50 rows, then 52)",
    "factory_clears": "raised RuntimeError the rows changed size during loading (50 rows, then 0)",
    "replace": "returned 50 [(0, 'n0'), (10, 'r1'), (20, 'r2')] [(490, 'r49')]",
    "row_shrinks": "raised ValueError",
    "raises": "raised LookupError load failed on purpose",
    "raises_value": "raised ValueError bad value on purpose",  # a stateful load: the search for the field finds none
    "garbage": "returned 50 [(0, '<rows>'), (1, <class 'object'>), (2, '<rows>')] [(49, <class 'object'>)]",
    "gc": "returned 50 [(0, 'n0'), (1, 'n1'), (2, 'n2')] [(49, 'n49')]",
}


#: One child interpreter per loader (``-X dev``) imports asyncecto once, then runs each scenario in a
#: fork of its own: a crash still shows as that scenario's exit code, without an interpreter start each.
FORKING = """
import os, sys, traceback
import asyncecto, asyncecto.types, asyncecto.repo._loader

code, folder = sys.argv[1], sys.argv[2]
for scenario in sys.argv[3:]:
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for fd, suffix in ((1, "out"), (2, "err")):
            os.dup2(os.open(os.path.join(folder, f"{scenario}.{suffix}"), os.O_WRONLY | os.O_CREAT), fd)
        status = 0
        try:
            sys.argv = ["-c", scenario]
            exec(compile(code, "<misbehaving>", "exec"), {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(status)
    _, waited = os.waitpid(pid, 0)
    with open(os.path.join(folder, f"{scenario}.code"), "w") as file:
        file.write(str(os.waitstatus_to_exitcode(waited)))
"""


@functools.cache
def _misbehaving_runs(speedups: bool) -> dict[str, tuple[int, str, str]]:
    """Every scenario's exit code, stdout and stderr under one loader."""
    env = {**os.environ, "ASYNCECTO_NO_SPEEDUPS": "0" if speedups else "1"}
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-c", FORKING, MISBEHAVING, folder, *SCENARIOS],
            cwd=Path(__file__).resolve().parents[2],  # this checkout's asyncecto, and its built extension
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"the forking interpreter failed:\n{done.stderr[-3000:]}"
        return {
            scenario: (
                int((Path(folder) / f"{scenario}.code").read_text()),
                (Path(folder) / f"{scenario}.out").read_text(),
                (Path(folder) / f"{scenario}.err").read_text(),
            )
            for scenario in SCENARIOS
        }


def run_misbehaving(scenario: str, speedups: bool) -> str:
    returncode, stdout, stderr = _misbehaving_runs(speedups)[scenario]
    assert returncode == 0, f"the interpreter died (exit {returncode}):\n{stderr[-3000:]}"
    assert stderr.strip().splitlines()[-1] == ("c" if speedups else "python"), stderr
    return stdout.strip()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_defect_14_c_loader_never_crashes_on_a_misbehaving_loader(speedups: bool, scenario: str) -> None:
    outcome = run_misbehaving(scenario, speedups)
    assert outcome.startswith(SCENARIOS[scenario]), outcome
    if speedups:  # the C loader and the pure-Python loader agree (word for word but for unpacking's own message)
        python = run_misbehaving(scenario, False)
        assert outcome == python if scenario != "row_shrinks" else python.startswith(SCENARIOS[scenario])
