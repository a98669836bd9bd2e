"""Issue 19: ``Multi`` against Ecto.Multi (reference section 1.4), on the fake adapter.

Every builder and operation Ecto lists, its introspection, its messages, and ``MultiError``'s
``changes_so_far``.
"""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

from asyncecto import Multi, Repo
from asyncecto.changeset import cast, change, validate_required
from asyncecto.errors import ArgumentError, MultiError
from asyncecto.multi import Call
from asyncecto.query import from_
from tests.fake_adapter import FakeDatabase
from tests.fake_schemas import Post

# -- MultiError.changes_so_far ------------------------------------------------------------------


def test_changes_so_far_is_the_primary_name_and_changes_its_alias() -> None:
    err = MultiError("post", "boom", {"user": 1})
    assert err.changes_so_far == {"user": 1} and err.changes is err.changes_so_far
    assert "changes_so_far" in str(err) and "'user'" in str(err) and "'post'" in str(err)
    assert repr(err) == "MultiError('post', 'boom', changes_so_far={'user': 1})"
    again = pickle.loads(pickle.dumps(err))
    assert (again.operation, again.value, again.changes_so_far) == ("post", "boom", {"user": 1})
    assert "none" in str(MultiError("x", 1, {}))


async def test_changes_so_far_holds_the_steps_before_the_failing_one(fake_repo: Repo) -> None:
    def fail(repo: Repo, changes: dict[Any, Any]) -> None:
        repo.rollback(("bad", changes["b"]))

    m = Multi.new() | Multi.put("a", 1) | Multi.put("b", 2) | Multi.run("c", fail) | Multi.put("d", 4)
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(m)
    assert (info.value.operation, info.value.value, info.value.changes_so_far) == ("c", ("bad", 2), {"a": 1, "b": 2})


# -- pre-flight ----------------------------------------------------------------------------------


async def test_error_and_invalid_changesets_fail_before_the_transaction(fake_repo: Repo, fake_db: FakeDatabase) -> None:
    bad = cast(Post(), {}, ["title"]) | validate_required("title")
    for m, name in [
        (Multi.new() | Multi.put("a", 1) | Multi.error("stop", "why") | Multi.insert("p", bad), "stop"),
        (Multi.new() | Multi.insert("p", bad) | Multi.error("stop", "why"), "p"),
    ]:
        with pytest.raises(MultiError) as info:
            await fake_repo.transaction(m)
        assert info.value.operation == name and info.value.changes_so_far == {}
    assert fake_db.texts() == []  # nothing reached the database, not even BEGIN
    assert await fake_repo.transaction(Multi.new()) == {}
    assert fake_db.texts() == []


async def test_a_merged_multis_error_keeps_the_enclosing_changes_so_far(fake_repo: Repo) -> None:
    # Ecto merges the nested failure's changes with the enclosing ones (here: 'a')
    m = Multi.new() | Multi.put("a", 1) | Multi.merge(lambda ch: Multi.new() | Multi.error("inner", "no"))
    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(m)
    assert (info.value.operation, info.value.value, info.value.changes_so_far) == ("inner", "no", {"a": 1})


async def test_a_failing_multi_run_inside_a_step_is_that_steps_failure(fake_repo: Repo) -> None:
    async def nested(repo: Repo, changes: dict[Any, Any]) -> Any:
        return await repo.transaction(Multi.new() | Multi.error("deep", "x"))

    with pytest.raises(MultiError) as info:
        await fake_repo.transaction(Multi.new() | Multi.put("a", 1) | Multi.run("outer", nested))
    assert info.value.operation == "outer" and info.value.changes_so_far == {"a": 1}
    assert isinstance(info.value.value, MultiError) and info.value.value.operation == "deep"


# -- names and actions ---------------------------------------------------------------------------


def test_names_are_any_hashable_term_and_unique() -> None:
    m = Multi.new() | Multi.put(("post", 1), 1) | Multi.put(2, 2)
    assert m.names == [("post", 1), 2]
    with pytest.raises(ArgumentError, match=r"\('post', 1\) is already a member of the Multi"):
        m | Multi.put(("post", 1), 3)
    with pytest.raises(ArgumentError, match="must be hashable"):
        Multi.new() | Multi.put(["list"], 1)


def test_a_changeset_with_another_action_is_refused() -> None:
    cs = change(Post(title="t"))
    with pytest.raises(
        ArgumentError, match="you provided a changeset with an action already set to 'update' when trying to insert it"
    ):
        Multi.insert("p", attrs.evolve(cs, action="update"))


def test_append_prepend_and_their_clash_message() -> None:
    a = Multi.new() | Multi.put("a", 1)
    b = Multi.new() | Multi.put("b", 2)
    assert Multi.append(a, b).names == ["a", "b"] and Multi.prepend(a, b).names == ["b", "a"]
    with pytest.raises(ArgumentError, match="cannot merge Multi; the following operations were found in both: 'a'"):
        Multi.append(a, a)


# -- every operation, and to_list -----------------------------------------------------------------


def test_every_ecto_operation_builds_and_to_list_shows_it() -> None:
    q = from_(Post)
    post = Post(title="t")
    m = (
        Multi.new()
        | Multi.insert("insert", post, returning=True)
        | Multi.update("update", change(post, title="u"))
        | Multi.insert_or_update("upsert", change(post))
        | Multi.delete("delete", post)
        | Multi.insert_all("insert_all", Post, [{"title": "a"}, {}])
        | Multi.update_all("update_all", q, set={"title": "x"})
        | Multi.delete_all("delete_all", q)
        | Multi.one("one", q)
        | Multi.all("all", q)
        | Multi.exists("exists", q)
        | Multi.run("run", lambda repo, changes: 1)
        | Multi.put("put", 42)
        | Multi.error("error", "why")
        | Multi.inspect(only=["put"])
        | Multi.merge(lambda changes: Multi.new())
    )
    kinds = [kind for _name, (kind, *_rest) in m.to_list()]
    assert kinds == [
        "insert",
        "update",
        "insert_or_update",
        "delete",
        "insert_all",
        "update_all",
        "delete_all",
        "one",
        "all",
        "exists",
        "run",
        "put",
        "error",
        "inspect",
        "merge",
    ]
    first = m.to_list()[0]
    assert first[0] == "insert" and first[1][2] == {"returning": True}
    assert m.names[-1] == "error" and len(m) == 15  # inspect and merge are unnamed


# -- run/5 and merge/4: module, function, args ---------------------------------------------------


class Steps:
    """A "module" of step functions, as Ecto's ``run(multi, name, mod, fun, args)``."""

    @staticmethod
    def double(repo: Repo, changes: dict[Any, Any], key: str, times: int) -> Any:
        return changes[key] * times

    @staticmethod
    def more(changes: dict[Any, Any], name: str) -> Multi:
        more: Multi = Multi.new() | Multi.put(name, changes["a"] + 1)
        return more


async def test_run_and_merge_take_a_module_function_and_args(fake_repo: Repo) -> None:
    m = Multi.new() | Multi.put("a", 20) | Multi.run("b", Steps, "double", ["a", 2]) | Multi.merge(Steps, "more", ["c"])
    assert await fake_repo.transaction(m) == {"a": 20, "b": 40, "c": 21}
    direct = Multi.run(Multi.new(), "x", Steps, "double", ("a", 3))
    [(name, (kind, payload, _opts))] = direct.to_list()
    assert (name, kind, payload) == ("x", "run", Call(Steps, "double", ("a", 3)))
    assert "Steps.double" in repr(payload)
    assert Multi.merge(Multi.new(), Steps, "more", ["z"]).to_list()[0][1][0] == "merge"


def test_module_function_args_are_checked_when_built() -> None:
    with pytest.raises(ArgumentError, match="has no function 'nope'"):
        Multi.run("x", Steps, "nope", [])
    with pytest.raises(ArgumentError, match="expects a function name and a list of arguments"):
        Multi.run("x", Steps, "double", "a")
    with pytest.raises(ArgumentError, match="has no function 'nope'"):
        Multi.merge(Steps, "nope", [])


def test_run_and_merge_functions_must_take_their_arguments() -> None:
    with pytest.raises(ArgumentError, match=r"Multi.run expects a function of \(repo, changes\)"):
        Multi.run("x", lambda changes: 1)
    with pytest.raises(ArgumentError, match=r"Multi.merge expects a function of \(changes\)"):
        Multi.merge(lambda repo, changes: Multi.new())
    with pytest.raises(ArgumentError, match=r"Multi.run expects a function of \(repo, changes\), got 3"):
        Multi.run("x", 3)
    Multi.run("ok", lambda *args: None)  # any signature that takes them
    Multi.run("ok", print)


async def test_inspect_prints_the_changes_so_far(fake_repo: Repo) -> None:
    seen: list[Any] = []
    m = (
        Multi.new()
        | Multi.put("a", 1)
        | Multi.inspect(printer=seen.append)
        | Multi.put("b", 2)
        | Multi.inspect(only="b", printer=seen.append)
    )
    assert await fake_repo.transaction(m) == {"a": 1, "b": 2}
    assert seen == [{"a": 1}, {"b": 2}]
