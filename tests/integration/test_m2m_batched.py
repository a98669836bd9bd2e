"""Issue 21: many_to_many writes in a fixed number of statements per relation (one DELETE of the
unlinked join rows, one INSERT of the new related structs, one INSERT of the new join rows),
with Ecto's semantics kept: join schemas (timestamps, join_defaults), on_join_through_conflict,
unique, on_replace, child errors on the right child; all or nothing under rollback and
cancellation. And the many_to_many preload's plan cached per association and prefix."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import anyio
import asyncpg
import pytest

from asyncecto import InvalidChangesetError, Repo, many_to_many, meta, schema
from asyncecto.changeset import (
    Changeset,
    cast,
    cast_assoc,
    change,
    check_constraint,
    put_assoc,
    traverse_errors,
    unique_constraint,
)
from asyncecto.errors import ConstraintError, UniqueViolationError
from asyncecto.query import from_, where
from asyncecto.repo._core import executor_of
from asyncecto.schema import schema_info

from ..assoc_schemas import Post, Tag

pytestmark = pytest.mark.asyncio

APP = "asyncecto-m2m-batched"


class Sent:
    """The statements a block sends (telemetry), BEGIN and COMMIT included."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.sql: list[str] = []
        self.name = repo.telemetry.attach(lambda e: self.sql.append(e.sql), name=f"m2m-{uuid.uuid4().hex}")

    async def since(self, mark: int) -> list[str]:
        await self.repo.telemetry.flush()
        return self.sql[mark:]

    async def mark(self) -> int:
        await self.repo.telemetry.flush()
        return len(self.sql)


@pytest.fixture
async def sent(repo: Repo) -> AsyncIterator[Sent]:
    s = Sent(repo)
    yield s
    repo.telemetry.detach(s.name)


async def rows(admin: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(sql)]


def tag_cs(tag: Tag, params: Mapping[str, Any]) -> Changeset[Tag]:
    return cast(tag, params, ["name"]) | unique_constraint("name", name="bl_tags_name_key")


async def loaded(repo: Repo, post_id: int | None) -> Post:
    return await repo.preload(await repo.get_or_raise(Post, post_id), "tags")


# -- statement counts (real transactions: BEGIN and COMMIT counted) ----------------------------


@pytest.mark.no_sandbox
async def test_create_with_two_new_tags_takes_five_statements(repo: Repo, admin: Any, sent: Sent) -> None:
    mark = await sent.mark()
    post = await repo.insert(Post(title="a", tags=[Tag(name="x"), Tag(name="y")]))
    sql = await sent.since(mark)
    assert len(sql) == 5, sql  # BEGIN, the post, both tags, both join rows, COMMIT (13 before)
    assert sql[0] == "BEGIN" and sql[-1] == "COMMIT"
    assert [t.name for t in post.tags] == ["x", "y"] and all(t.id for t in post.tags)
    links = await rows(admin, "SELECT post_id, tag_id FROM bl_posts_tags ORDER BY tag_id")
    assert links == [(post.id, post.tags[0].id), (post.id, post.tags[1].id)]


@pytest.mark.no_sandbox
@pytest.mark.parametrize("names", [["x", "y"], ["old", "y"], ["old", "older"]])
async def test_a_realworld_create_article_with_tag_names_takes_at_most_six(
    repo: Repo, admin: Any, sent: Sent, names: list[str]
) -> None:
    """The RealWorld API's create: the tags named that exist are read, the others inserted."""
    await repo.insert(Tag(name="old"))
    await repo.insert(Tag(name="older"))
    mark = await sent.mark()
    found = {t.name: t for t in await repo.all(from_(Tag) | where(lambda t: t.name.in_(names)))}
    tags = [found.get(n) or Tag(name=n) for n in names]
    post = await repo.insert(put_assoc(change(Post(title="article")), "tags", tags))
    sql = await sent.since(mark)
    assert len(sql) <= 6, sql  # SELECT tags, BEGIN, the article, the new tags, the join rows, COMMIT
    assert [t.name for t in post.tags] == names
    got = await rows(admin, "SELECT t.name FROM bl_posts_tags j JOIN bl_tags t ON t.id = j.tag_id ORDER BY j.id")
    assert got == [(n,) for n in names]


@pytest.mark.no_sandbox
async def test_create_with_existing_tags_takes_four(repo: Repo, admin: Any, sent: Sent) -> None:
    x, y = await repo.insert(Tag(name="x")), await repo.insert(Tag(name="y"))
    mark = await sent.mark()
    post = await repo.insert(put_assoc(change(Post(title="a")), "tags", [x, y]))
    sql = await sent.since(mark)
    assert len(sql) == 4, sql
    assert [t.id for t in post.tags] == [x.id, y.id]
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags ORDER BY tag_id") == [(x.id,), (y.id,)]


@pytest.mark.no_sandbox
async def test_update_tags_add_and_remove_takes_four(repo: Repo, admin: Any, sent: Sent) -> None:
    x, y, z = [await repo.insert(Tag(name=n)) for n in "xyz"]
    post = await repo.insert(put_assoc(change(Post(title="a")), "tags", [x, y]))
    post = await loaded(repo, post.id)
    mark = await sent.mark()
    updated = await repo.update(put_assoc(change(post), "tags", [post.tags[1], z]))  # x out, z in
    sql = await sent.since(mark)
    assert len(sql) == 4, sql  # BEGIN, DELETE of x's join row, INSERT of z's, COMMIT
    assert sql[1].startswith("DELETE") and sql[2].startswith("INSERT")
    assert [t.name for t in updated.tags] == ["y", "z"]
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags ORDER BY tag_id") == [(y.id,), (z.id,)]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(3,)]  # on_replace="delete": join rows only


@pytest.mark.no_sandbox
async def test_update_title_and_replace_all_tags_with_new_ones(repo: Repo, admin: Any, sent: Sent) -> None:
    post = await repo.insert(Post(title="a", tags=[Tag(name="x"), Tag(name="y"), Tag(name="w")]))
    post = await loaded(repo, post.id)
    mark = await sent.mark()
    cs = put_assoc(change(post, {"title": "b"}), "tags", [Tag(name="u"), Tag(name="v")])
    updated = await repo.update(cs)
    sql = await sent.since(mark)
    # BEGIN, UPDATE title, one DELETE of three join rows, one INSERT of two tags, one of two join rows, COMMIT
    assert len(sql) == 6, sql
    assert updated.title == "b" and [t.name for t in updated.tags] == ["u", "v"]
    got = await rows(admin, "SELECT t.name FROM bl_posts_tags j JOIN bl_tags t ON t.id = j.tag_id ORDER BY t.name")
    assert got == [("u",), ("v",)]


@pytest.mark.no_sandbox
async def test_removing_every_tag_takes_three(repo: Repo, admin: Any, sent: Sent) -> None:
    post = await loaded(repo, (await repo.insert(Post(title="a", tags=[Tag(name="x"), Tag(name="y")]))).id)
    mark = await sent.mark()
    updated = await repo.update(put_assoc(change(post), "tags", []))
    assert len(await sent.since(mark)) == 3
    assert updated.tags == []
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(0,)]


async def test_a_new_tag_with_associations_of_its_own_is_written_with_them(repo: Repo, admin: Any) -> None:
    other = await repo.insert(Post(title="other"))
    post = await repo.insert(Post(title="p", tags=[Tag(name="x"), Tag(name="y", posts=[other])]))
    assert [t.name for t in post.tags] == ["x", "y"]
    got = await rows(
        admin,
        "SELECT p.title, t.name FROM bl_posts_tags j JOIN bl_posts p ON p.id = j.post_id "
        "JOIN bl_tags t ON t.id = j.tag_id ORDER BY p.title, t.name",
    )
    assert got == [("other", "y"), ("p", "x"), ("p", "y")]


async def test_cast_assoc_update_insert_and_remove_in_one_write(repo: Repo, admin: Any, sent: Sent) -> None:
    post = await loaded(repo, (await repo.insert(Post(title="p", tags=[Tag(name="x"), Tag(name="y")]))).id)
    y = post.tags[1]
    params = {"tags": [{"id": y.id, "name": "y2"}, {"name": "n1"}, {"name": "n2"}]}  # x left out
    cs = cast_assoc(cast(post, params, []), "tags", with_=tag_cs)
    mark = await sent.mark()
    updated = await repo.update(cs)
    sql = await sent.since(mark)
    # BEGIN, DELETE x's join row, INSERT n1 and n2, UPDATE y, INSERT both join rows, COMMIT
    assert len(sql) == 6, sql
    assert [t.name for t in updated.tags] == ["y2", "n1", "n2"]
    got = await rows(admin, "SELECT t.name FROM bl_posts_tags j JOIN bl_tags t ON t.id = j.tag_id ORDER BY t.name")
    assert got == [("n1",), ("n2",), ("y2",)]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(4,)]


async def test_rows_beyond_the_parameter_limit_go_in_several_statements(repo: Repo, admin: Any, sent: Sent) -> None:
    core = executor_of(repo)
    core.adapter.max_params = 5  # this test's repo only: its adapter instance
    try:
        mark = await sent.mark()
        post = await repo.insert(Post(title="p", tags=[Tag(name=f"t{i}") for i in range(7)]))
        sql = await sent.since(mark)
        assert len([s for s in sql if s.startswith('INSERT INTO "bl_tags"')]) == 2, sql  # 5 + 2 rows
        assert len([s for s in sql if s.startswith('INSERT INTO "bl_posts_tags"')]) == 2, sql  # 4 + 3 rows
        assert [t.name for t in post.tags] == [f"t{i}" for i in range(7)]
        assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(7,)]
        names = [f"u{i}" for i in range(7)]
        names[6] = "t0"  # taken: the error lands on the seventh child, in the second statement
        cs = put_assoc(change(Post(title="q")), "tags", [tag_cs(Tag(), {"name": n}) for n in names])
        with pytest.raises(InvalidChangesetError) as info:
            await repo.insert(cs)
        errors = traverse_errors(info.value.changeset)["tags"]
        assert [bool(e) for e in errors] == [False] * 6 + [True]
    finally:
        del core.adapter.max_params


async def test_writes_keep_the_childrens_order(repo: Repo, admin: Any) -> None:
    """A rename frees a name that a new tag after it takes: the new tags are inserted after it."""
    post = await loaded(repo, (await repo.insert(Post(title="p", tags=[Tag(name="a")]))).id)
    params = {"tags": [{"id": post.tags[0].id, "name": "z"}, {"name": "a"}, {"name": "b"}]}
    updated = await repo.update(cast_assoc(cast(post, params, []), "tags", with_=tag_cs))
    assert [t.name for t in updated.tags] == ["z", "a", "b"]
    assert await rows(admin, "SELECT name FROM bl_tags ORDER BY id") == [("z",), ("a",), ("b",)]


async def test_batched_rows_follow_the_prefix(repo: Repo, admin: Any) -> None:
    post = await repo.insert(Post(title="p", tags=[Tag(name="a"), Tag(name="b")]), prefix="archive")
    assert all(meta(t).prefix == "archive" for t in post.tags)
    assert await rows(admin, "SELECT name FROM archive.bl_tags ORDER BY name") == [("a",), ("b",)]
    assert await rows(admin, "SELECT count(*) FROM archive.bl_posts_tags") == [(2,)]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(0,)]
    again = await repo.preload(await repo.get_or_raise(Post, post.id, prefix="archive"), "tags")
    assert [t.name for t in again.tags] == ["a", "b"]
    trimmed = await repo.update(put_assoc(change(again), "tags", [again.tags[0]]))
    assert [t.name for t in trimmed.tags] == ["a"]
    assert await rows(admin, "SELECT count(*) FROM archive.bl_posts_tags") == [(1,)]


# -- join schemas, join_defaults, on_join_through_conflict, unique, on_replace ----------------

LINK_DDL = [
    "CREATE TABLE m2b_links (id bigserial PRIMARY KEY, post_id bigint NOT NULL REFERENCES bl_posts(id), "
    "tag_id bigint NOT NULL REFERENCES bl_tags(id), origin text DEFAULT 'db', weight int, "
    "inserted_at timestamp NOT NULL, updated_at timestamp NOT NULL, UNIQUE (post_id, tag_id))",
]


@schema("m2b_links", timestamps=True)
class Link:
    id: int | None = None
    post_id: int | None = None
    tag_id: int | None = None
    origin: str | None = None
    weight: int | None = None
    inserted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@schema("bl_posts")
class LinkedPost:
    id: int | None = None
    title: str | None = None
    tags: list[Tag] = many_to_many(
        Tag,
        join_through=Link,
        join_keys=[("post_id", "id"), ("tag_id", "id")],
        join_defaults={"weight": 7},
        on_replace="delete",
        unique=True,
    )


JOIN_KEYS = [("post_id", "id"), ("tag_id", "id")]


@schema("bl_posts")
class LenientPost:
    id: int | None = None
    title: str | None = None
    tags: list[Tag] = many_to_many(
        Tag, join_through="bl_posts_tags", join_keys=JOIN_KEYS, on_join_through_conflict="nothing"
    )


@schema("bl_posts")
class StrictPost:
    id: int | None = None
    title: str | None = None
    tags: list[Tag] = many_to_many(Tag, join_through="bl_posts_tags", join_keys=JOIN_KEYS)  # on_replace="raise"


@schema("bl_posts")
class MarkingPost:
    id: int | None = None
    title: str | None = None
    tags: list[Tag] = many_to_many(Tag, join_through="bl_posts_tags", join_keys=JOIN_KEYS, on_replace="mark_as_invalid")


@pytest.fixture
async def links(repo: Repo) -> None:
    for statement in LINK_DDL:
        await repo.query(statement)  # in the sandbox: gone with it


@pytest.mark.usefixtures("links")
async def test_join_schema_rows_get_defaults_and_timestamps_in_one_insert(repo: Repo, admin: Any, sent: Sent) -> None:
    a = await repo.insert(Tag(name="a"))
    mark = await sent.mark()
    post = await repo.insert(LinkedPost(title="p", tags=[a, Tag(name="b"), Tag(name="c")]))
    sql = await sent.since(mark)
    inserts = [s for s in sql if s.startswith("INSERT")]
    assert len(inserts) == 3, sql  # the post, the two new tags, the three join rows
    got = await rows(
        admin, "SELECT post_id, tag_id, origin, weight, inserted_at IS NOT NULL FROM m2b_links ORDER BY id"
    )
    assert got == [(post.id, t.id, "db", 7, True) for t in post.tags]
    stamps = await rows(admin, "SELECT count(DISTINCT inserted_at), bool_and(inserted_at = updated_at) FROM m2b_links")
    assert stamps == [(1, True)]
    again = await repo.preload(await repo.get_or_raise(LinkedPost, post.id), "tags")
    trimmed = await repo.update(put_assoc(change(again), "tags", [again.tags[2]]))
    assert [t.name for t in trimmed.tags] == ["c"]
    assert await rows(admin, "SELECT tag_id FROM m2b_links") == [(post.tags[2].id,)]


@pytest.mark.usefixtures("links")
async def test_unique_refuses_a_duplicate_before_any_sql(repo: Repo, sent: Sent) -> None:
    a = await repo.insert(Tag(name="a"))
    cs = put_assoc(change(LinkedPost(title="p")), "tags", [a, a])
    assert not cs.valid and traverse_errors(cs)["tags"] == ["has duplicate entries"]
    mark = await sent.mark()
    with pytest.raises(InvalidChangesetError):
        await repo.insert(cs)
    assert await sent.since(mark) == []


async def test_on_join_through_conflict_nothing_skips_an_existing_join_row(repo: Repo, admin: Any) -> None:
    a, b = await repo.insert(Tag(name="a")), await repo.insert(Tag(name="b"))
    post = await repo.insert(LenientPost(title="p", tags=[a]))
    fresh = await repo.get_or_raise(LenientPost, post.id)
    fresh = await repo.preload(fresh, "tags")
    stale = put_assoc(change(fresh, {}), "tags", [a, b])
    await repo.update(stale)  # a is linked already and kept; b is new
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags ORDER BY tag_id") == [(a.id,), (b.id,)]
    # a struct that believes nothing is linked: the existing row is skipped, not refused
    blind = await repo.get_or_raise(LenientPost, post.id)
    object.__setattr__(blind, "tags", [])
    await repo.update(put_assoc(change(blind), "tags", [a, b]))
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags ORDER BY tag_id") == [(a.id,), (b.id,)]


async def test_the_default_join_conflict_raises_and_rolls_back(repo: Repo, admin: Any) -> None:
    a, b = await repo.insert(Tag(name="a")), await repo.insert(Tag(name="b"))
    post = await repo.insert(StrictPost(title="p", tags=[a]))
    blind = await repo.get_or_raise(StrictPost, post.id)
    object.__setattr__(blind, "tags", [])
    with pytest.raises(UniqueViolationError, match="bl_posts_tags_post_id_tag_id_key"):
        await repo.update(put_assoc(change(blind, {"title": "q"}), "tags", [b, a]))
    assert await rows(admin, "SELECT title FROM bl_posts") == [("p",)]
    assert await rows(admin, "SELECT tag_id FROM bl_posts_tags") == [(a.id,)]


async def test_on_replace_raise_and_mark_as_invalid_send_nothing(repo: Repo, sent: Sent) -> None:
    a = await repo.insert(Tag(name="a"))
    post = await repo.insert(StrictPost(title="p", tags=[a]))
    strict = await repo.preload(await repo.get_or_raise(StrictPost, post.id), "tags")
    with pytest.raises(Exception, match="on_replace"):
        put_assoc(change(strict), "tags", [])
    marking = await repo.preload(await repo.get_or_raise(MarkingPost, post.id), "tags")
    cs = put_assoc(change(marking), "tags", [])
    assert not cs.valid and "tags" in traverse_errors(cs)
    mark = await sent.mark()
    with pytest.raises(InvalidChangesetError):
        await repo.update(cs)
    assert await sent.since(mark) == []


# -- child errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("taken_index", [0, 1, 2])
async def test_a_taken_name_is_reported_on_the_child_that_broke_it(repo: Repo, admin: Any, taken_index: int) -> None:
    await repo.insert(Tag(name="taken"))
    names = ["n0", "n1", "n2"]
    names[taken_index] = "taken"
    cs = put_assoc(change(Post(title="p")), "tags", [tag_cs(Tag(), {"name": n}) for n in names])
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    errors = traverse_errors(info.value.changeset)["tags"]
    assert [bool(e) for e in errors] == [i == taken_index for i in range(3)]
    assert errors[taken_index] == {"name": ["has already been taken"]}
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]
    assert await rows(admin, "SELECT name FROM bl_tags") == [("taken",)]


async def test_a_check_constraint_is_reported_on_the_child_that_broke_it(repo: Repo, admin: Any) -> None:
    await repo.query("ALTER TABLE bl_tags ADD CONSTRAINT m2b_short_name CHECK (length(name) < 5)")  # sandboxed

    def checked(params: Mapping[str, Any]) -> Changeset[Tag]:
        return cast(Tag(), params, ["name"]) | check_constraint("name", name="m2b_short_name")

    cs = put_assoc(change(Post(title="p")), "tags", [checked({"name": "ok"}), checked({"name": "far too long"})])
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    assert [bool(e) for e in traverse_errors(info.value.changeset)["tags"]] == [False, True]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(0,)]


async def test_an_undeclared_constraint_raises_constraint_error(repo: Repo, admin: Any) -> None:
    await repo.insert(Tag(name="taken"))
    with pytest.raises(ConstraintError, match="bl_tags_name_key"):
        await repo.insert(Post(title="p", tags=[Tag(name="new"), Tag(name="taken")]))
    assert await rows(admin, "SELECT count(*) FROM bl_posts") == [(0,)]


async def test_an_invalid_child_sends_no_sql(repo: Repo, sent: Sent) -> None:
    bad = cast(Tag(), {"name": 5}, ["name"])
    cs = put_assoc(change(Post(title="p")), "tags", [Tag(name="ok"), bad])
    assert not cs.valid
    mark = await sent.mark()
    with pytest.raises(InvalidChangesetError):
        await repo.insert(cs)
    assert await sent.since(mark) == []


async def test_an_outer_rollback_leaves_nothing(repo: Repo, admin: Any) -> None:
    x = await repo.insert(Tag(name="x"))
    with pytest.raises(RuntimeError, match="undo"):
        async with repo.transaction():
            await repo.insert(Post(title="p", tags=[x, Tag(name="y"), Tag(name="z")]))
            assert (await repo.query("SELECT count(*) FROM bl_posts_tags")).rows == [(3,)]
            raise RuntimeError("undo")
    assert await rows(admin, "SELECT count(*) FROM bl_posts_tags") == [(0,)]
    assert await rows(admin, "SELECT name FROM bl_tags") == [("x",)]


# -- cancellation mid-write ---------------------------------------------------------------------

FLAVOURS = ["task.cancel", "asyncio.timeout", "anyio.move_on_after", "anyio.CancelScope.cancel"]


async def _cancel_when(flavour: str, body: Callable[[], Coroutine[Any, Any, None]], reached: Any) -> None:
    """Run ``body``; cancel it the ``flavour`` way once ``reached()`` returns."""
    loop = asyncio.get_running_loop()

    async def trigger(action: Callable[[], object]) -> None:
        await reached()
        action()

    if flavour == "task.cancel":
        task = asyncio.create_task(body())
        trig = asyncio.create_task(trigger(task.cancel))
        with pytest.raises(asyncio.CancelledError):
            await task
    elif flavour == "asyncio.timeout":
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(None) as cm:
                trig = asyncio.create_task(trigger(lambda: cm.reschedule(loop.time())))
                await body()
    elif flavour == "anyio.move_on_after":
        with anyio.move_on_after(None) as scope:
            trig = asyncio.create_task(trigger(lambda: setattr(scope, "deadline", anyio.current_time())))
            await body()
        assert scope.cancelled_caught
    else:
        with anyio.CancelScope() as scope:
            trig = asyncio.create_task(trigger(scope.cancel))
            await body()
        assert scope.cancelled_caught
    await trig


@pytest.mark.no_sandbox
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_a_cancellation_mid_write_leaves_nothing(repo: Repo, database_url: str, flavour: str) -> None:
    """The join-row INSERT waits on a lock another session holds; the write is cancelled there,
    after its post and tags rows went in: they roll back, and the connection comes back."""
    from asyncecto.repo import build_config

    holder = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    watcher = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        pid = await holder.fetchval("SELECT pg_backend_pid()")
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE bl_posts_tags IN EXCLUSIVE MODE")

        async def blocked() -> None:
            for _ in range(500):
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = 'bl_posts_tags' AND NOT l.granted AND l.pid <> $1",
                    pid,
                )
                if waiting:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("the join-row insert never waited on the lock")

        async def write() -> None:
            await repo.insert(Post(title="p", tags=[Tag(name="x"), Tag(name="y")]))

        await _cancel_when(flavour, write, blocked)
        await tx.rollback()
        for _ in range(200):  # the repo's cleanup (ROLLBACK, checkin) finishes in the background
            if repo.pool_stats()["in_use"] == 0:
                break
            await asyncio.sleep(0.01)
        assert repo.pool_stats()["in_use"] == 0
        assert await watcher.fetchval("SELECT count(*) FROM bl_posts") == 0
        assert await watcher.fetchval("SELECT count(*) FROM bl_tags") == 0
        assert await watcher.fetchval("SELECT count(*) FROM bl_posts_tags") == 0
    finally:
        await holder.close()
        await watcher.close()


# -- preloads ------------------------------------------------------------------------------------


async def test_many_to_many_preload_is_planned_once_per_association_and_prefix(repo: Repo) -> None:
    p1 = await repo.insert(Post(title="1", tags=[Tag(name="a"), Tag(name="b")]))
    p2 = await repo.insert(Post(title="2", tags=[p1.tags[1]]))
    core = executor_of(repo)
    bare = [await repo.get_or_raise(Post, p.id) for p in (p1, p2)]
    first = await repo.preload(bare, "tags")
    assert [[t.name for t in p.tags] for p in first] == [["a", "b"], ["b"]]
    key = ("preload", schema_info(Post).associations["tags"], core.config.prefix)
    entry = core.cache_get(key)
    assert entry is not None and entry[0] is not None  # planned and kept
    second = await repo.preload(bare[1], "tags")
    assert [t.name for t in second.tags] == ["b"]
    archived = await repo.preload(bare, "tags", prefix="archive")  # another prefix: its own plan
    assert all(p.tags == [] for p in archived)
    custom = await repo.preload(bare[0], {"tags": from_(Tag) | where(lambda t: t.name == "a")})
    assert [t.name for t in custom.tags] == ["a"]
