"""Prefixes (PostgreSQL schemas) at every level, against a second schema ``archive`` that holds
copies of the tables: the repo's default (``prefix=`` or a ``search_path``), a schema's
``prefix=``, a query's ``from_``/``join`` prefix, a call's ``prefix=`` and a struct's meta prefix;
and prefixes following into preloads, ``assoc`` queries, ``build_assoc`` and nested writes.

Every check reads the tables back with a plain connection (``admin``), or reads data that only one
of the two schemas holds, so it is the row's schema that is checked, not the library's word.

Precedence (Ecto's, with its asymmetry):

* queries: ``from_``/``join`` ``prefix=`` > the schema's ``prefix=`` > the call's ``prefix=`` > the
  query's ``put_query_prefix`` > the repo's;
* struct writes: the call's ``prefix=`` > the struct's meta prefix (a built struct starts with its
  schema's) > the repo's.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from asyncecto import Repo, assoc, belongs_to, build_assoc, has_many, meta, put_meta, schema
from asyncecto.changeset import cast, cast_assoc, change, put_assoc
from asyncecto.query import Query, from_, join, order_by, preload, put_query_prefix, select, subquery, where

from ..assoc_schemas import Comment, Permalink, Post, Tag, User
from ..schemas import Weather
from .blog_data import names, seed_blog, texts, titles

pytestmark = pytest.mark.asyncio


# -- schemas over the same tables, with a prefix of their own ------------------------------------


@schema("weather", prefix="archive")
class ArchivedWeather:
    id: int | None = None
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0


@schema("bl_posts", prefix="archive")
class ArchivedPost:
    id: int | None = None
    title: str | None = None
    visits: int | None = None
    author: User | None = belongs_to(User)
    comments: list[Comment] = has_many(Comment, foreign_key="post_id")


@schema("bl_posts", prefix="public")
class PublicPost:
    id: int | None = None
    title: str | None = None
    visits: int | None = None
    author: User | None = belongs_to(User)
    comments: list[Comment] = has_many(Comment, foreign_key="post_id")


@schema("bl_users")
class Writer:
    """A user whose posts live in a schema of their own (archive or public, whatever the writer's)."""

    id: int | None = None
    name: str | None = None
    archived_posts: list[ArchivedPost] = has_many(ArchivedPost, foreign_key="author_id")
    public_posts: list[PublicPost] = has_many(PublicPost, foreign_key="author_id")
    posts: list[Post] = has_many(Post, foreign_key="author_id")


@schema("bl_comments")
class Remark:
    """A comment whose post is always an archived one."""

    id: int | None = None
    text: str | None = None
    post: ArchivedPost | None = belongs_to(ArchivedPost)


# -- data and helpers ----------------------------------------------------------------------------

WEATHER_SQL = (
    "INSERT INTO weather (id, city, temp_lo) VALUES (1, 'pub one', 1), (2, 'pub two', 2)",
    "INSERT INTO archive.weather (id, city, temp_lo) VALUES (1, 'arc one', 10), (2, 'arc two', 20), "
    "(3, 'arc three', 30)",
    # both tables draw ids from weather's sequence: move it past the ids given above
    "SELECT setval('weather_id_seq', 100)",
)

# archive tags and links to tell them from the public ones (public p1: python and elixir)
ARCHIVE_TAGS_SQL = (
    "INSERT INTO archive.bl_tags (id, name) VALUES (1, 'old python'), (2, 'old sql')",
    "INSERT INTO archive.bl_posts_tags (post_id, tag_id) VALUES (1, 2), (7, 1)",
)


async def rows(admin: asyncpg.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await admin.fetch(sql, *args)]


async def seed_weather(admin: asyncpg.Connection) -> None:
    for statement in WEATHER_SQL:
        await admin.execute(statement)


async def seed_archive_blog(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_blog(repo, archive=True)
    for statement in ARCHIVE_TAGS_SQL:
        await admin.execute(statement)


def cities(structs: Any) -> list[str]:
    return sorted(w.city for w in structs)


def with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


@pytest.fixture
async def archive_repo(repo: Repo, database_url: str) -> AsyncIterator[Repo]:
    """A second repo (on the tables ``repo`` truncated) whose default prefix is ``archive``."""
    async with Repo(database_url, pool_size=2, prefix="archive") as r:
        yield r


@pytest.fixture
async def public_repo(repo: Repo, database_url: str) -> AsyncIterator[Repo]:
    """A repo whose default prefix is ``public``, to set against schema and call prefixes."""
    async with Repo(database_url, pool_size=2, prefix="public") as r:
        yield r


# -- the repo's default --------------------------------------------------------------------------


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_repo_prefix_option_is_the_default_for_reads_and_writes(
    archive_repo: Repo, admin: asyncpg.Connection
) -> None:
    await seed_weather(admin)
    assert cities(await archive_repo.all(Weather)) == ["arc one", "arc three", "arc two"]
    one = await archive_repo.get_or_raise(Weather, 1)
    assert one.city == "arc one" and meta(one).prefix == "archive"
    sql, _ = archive_repo.to_sql(Weather)
    assert 'FROM "archive"."weather"' in sql

    w = await archive_repo.insert(Weather(city="new"))
    assert meta(w).prefix == "archive"
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("new",)]
    assert await rows(admin, "SELECT count(*) FROM weather") == [(2,)]
    await archive_repo.update(change(w, city="newer"))
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("newer",)]
    await archive_repo.delete(one)
    assert await rows(admin, "SELECT id FROM archive.weather ORDER BY id") == [(2,), (3,), (w.id,)]
    assert await rows(admin, "SELECT id FROM weather ORDER BY id") == [(1,), (2,)]  # public untouched


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_repo_prefix_from_the_url(repo: Repo, database_url: str, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    async with Repo(with_option(database_url, "prefix=archive"), pool_size=1) as r:
        assert r.config.prefix == "archive"
        assert cities(await r.all(Weather)) == ["arc one", "arc three", "arc two"]
        w = await r.insert(Weather(city="via url"))
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("via url",)]


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_repo_search_path_puts_unqualified_tables_in_the_second_schema(
    repo: Repo, database_url: str, admin: asyncpg.Connection
) -> None:
    await seed_weather(admin)
    async with Repo(database_url, pool_size=1, server_settings={"search_path": "archive"}) as r:
        sql, _ = r.to_sql(Weather)
        assert 'FROM "weather"' in sql  # no prefix in the SQL: the search path decides
        assert cities(await r.all(Weather)) == ["arc one", "arc three", "arc two"]
        w = await r.insert(Weather(city="by path"))
        assert meta(w).prefix is None
        # raw SQL that changes the path is undone before the connection is reused, back to the setting
        await r.query("SET search_path TO public")
        assert (await r.get_or_raise(Weather, w.id)).city == "by path"
        assert (await r.query("SHOW search_path")).rows == [("archive",)]
        # an explicit prefix still wins over the path
        assert cities(await r.all(Weather, prefix="public")) == ["pub one", "pub two"]
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("by path",)]
    assert await rows(admin, "SELECT count(*) FROM weather") == [(2,)]


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_search_path_repo_preloads_and_nested_writes_in_that_schema(
    repo: Repo, database_url: str, admin: asyncpg.Connection
) -> None:
    await seed_blog(repo, archive=True)
    async with Repo(database_url, pool_size=2, server_settings={"search_path": "archive"}) as r:
        (p7,) = await r.all(from_(Post) | where(id=7) | preload({"comments": "author"}, "author"))
        assert p7.title == "old p7" and p7.author is not None and p7.author.name == "old ann"
        assert [(c.text, typing.cast(User, c.author).name) for c in sorted(p7.comments, key=lambda c: c.id or 0)] == [
            ("old c2", "old bob"),
            ("old c3", "old ann"),
        ]
        post = await r.insert(Post(title="pathed", comments=[Comment(text="pathed c")]))
    assert await rows(admin, "SELECT title FROM archive.bl_posts WHERE id = $1", post.id) == [("pathed",)]
    assert await rows(admin, "SELECT text FROM archive.bl_comments WHERE post_id = $1", post.id) == [("pathed c",)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments WHERE text = 'pathed c'") == [(0,)]


# -- a schema's own prefix -----------------------------------------------------------------------


async def test_schema_prefix_is_used_by_every_operation(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    assert cities(await repo.all(ArchivedWeather)) == ["arc one", "arc three", "arc two"]
    assert (await repo.get_or_raise(ArchivedWeather, 2)).city == "arc two"
    assert (await repo.get_by_or_raise(ArchivedWeather, city="arc three")).id == 3
    assert await repo.aggregate(ArchivedWeather, "sum", "temp_lo") == 60
    assert await repo.exists(from_(ArchivedWeather) | where(city="arc one"))
    assert not await repo.exists(from_(ArchivedWeather) | where(city="pub one"))

    built = ArchivedWeather(city="built")
    assert meta(built).prefix == "archive"  # a built struct starts with its schema's prefix
    w = await repo.insert(built)
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("built",)]
    await repo.update(change(w, city="rebuilt"))
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("rebuilt",)]
    assert (await repo.reload_or_raise(w)).city == "rebuilt"
    await repo.delete(w)
    assert await rows(admin, "SELECT count(*) FROM archive.weather WHERE id = $1", w.id) == [(0,)]

    assert await repo.update_all(from_(ArchivedWeather) | where(id=1), set={"temp_hi": 99}) == (1, None)
    assert await repo.delete_all(from_(ArchivedWeather) | where(id=2)) == (1, None)
    assert await rows(admin, "SELECT id, temp_hi FROM archive.weather ORDER BY id") == [(1, 99), (3, None)]
    assert await rows(admin, "SELECT id, temp_hi FROM weather ORDER BY id") == [(1, None), (2, None)]


# -- a query's prefix ----------------------------------------------------------------------------


async def test_from_prefix_reads_and_bulk_writes_the_other_schema(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    q = from_(Weather, prefix="archive")
    assert cities(await repo.all(q)) == ["arc one", "arc three", "arc two"]
    assert all(meta(w).prefix == "archive" for w in await repo.all(q))
    assert await repo.aggregate(q, "count") == 3
    assert await repo.update_all(q | where(lambda w: w.temp_lo > 10), inc={"temp_lo": 1}) == (2, None)
    assert await repo.delete_all(from_(Weather, prefix="archive") | where(id=1)) == (1, None)
    assert await rows(admin, "SELECT id, temp_lo FROM archive.weather ORDER BY id") == [(2, 21), (3, 31)]
    assert await rows(admin, "SELECT id, temp_lo FROM weather ORDER BY id") == [(1, 1), (2, 2)]


async def test_join_prefix_and_subquery_prefixes(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    pairs = from_(Weather) | join("inner", Weather, on=lambda a, b: a.id == b.id, prefix="archive")
    q: Query[Any] = pairs | order_by("id") | select(lambda a, b: (a.city, b.city))
    assert await repo.all(q) == [("pub one", "arc one"), ("pub two", "arc two")]
    # a joined struct remembers the schema it came from
    both: list[Any] = await repo.all(pairs | order_by("id") | select(lambda a, b: (a, b)))
    assert [(meta(a).prefix, meta(b).prefix) for a, b in both] == [(None, "archive"), (None, "archive")]

    # a subquery with its own from_ prefix
    warm = subquery(from_(Weather, prefix="archive") | where(lambda a: a.temp_lo >= 20) | select(lambda a: a.id))
    assert cities(await repo.all(from_(Weather) | where(lambda w: w.id.in_(warm)))) == ["pub two"]
    # a subquery without one takes the call's prefix, as the outer query's tables do
    plain = subquery(from_(Weather) | where(lambda a: a.temp_lo >= 20) | select(lambda a: a.id))
    outer = from_(Weather, prefix="public") | where(lambda w: w.id.in_(plain))
    assert cities(await repo.all(outer, prefix="archive")) == ["pub two"]
    assert await repo.all(outer) == []  # public has no temp_lo >= 20


# -- a call's prefix, on every operation ---------------------------------------------------------


async def test_call_prefix_on_every_read(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    assert cities(await repo.all(Weather, prefix="archive")) == ["arc one", "arc three", "arc two"]
    assert cities(await repo.all(Weather)) == ["pub one", "pub two"]
    # get is cached per schema and prefix: the same id reads each schema's row
    assert (await repo.get_or_raise(Weather, 1)).city == "pub one"
    assert (await repo.get_or_raise(Weather, 1, prefix="archive")).city == "arc one"
    assert (await repo.get_or_raise(Weather, 1)).city == "pub one"
    assert await repo.get(Weather, 3) is None
    assert (await repo.get_or_raise(from_(Weather) | where(lambda w: w.temp_lo > 0), 3, prefix="archive")).id == 3
    assert (await repo.get_by_or_raise(Weather, city="arc two", prefix="archive")).id == 2
    assert await repo.get_by(Weather, city="arc two") is None
    one = await repo.one_or_raise(from_(Weather) | where(temp_lo=30), prefix="archive")
    assert one.city == "arc three" and meta(one).prefix == "archive"
    assert await repo.one(from_(Weather) | where(temp_lo=30)) is None
    assert await repo.exists(from_(Weather) | where(temp_lo=30), prefix="archive")
    assert not await repo.exists(from_(Weather) | where(temp_lo=30))
    assert await repo.aggregate(Weather, "sum", "temp_lo", prefix="archive") == 60
    assert await repo.aggregate(Weather, "sum", "temp_lo") == 3
    later = from_(Weather) | order_by("id") | where(lambda w: w.id > 1)
    assert await repo.aggregate(later, "count", prefix="archive") == 2
    async with repo.transaction():
        streamed = [w async for w in repo.stream(from_(Weather) | order_by("id"), prefix="archive", max_rows=2)]
    assert [w.city for w in streamed] == ["arc one", "arc two", "arc three"]
    assert {meta(w).prefix for w in streamed} == {"archive"}
    sql, _ = repo.to_sql(Weather, prefix="archive")
    assert 'FROM "archive"."weather"' in sql
    assert "archive.weather" in await repo.explain(Weather, verbose=True, prefix="archive")


async def test_call_prefix_on_bulk_writes(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    n, returned = await repo.update_all(
        from_(Weather) | where(lambda w: w.id <= 2) | select(lambda w: w.city), set={"temp_hi": 7}, prefix="archive"
    )
    assert (n, sorted(returned or [])) == (2, ["arc one", "arc two"])
    assert await repo.delete_all(from_(Weather) | where(id=3), prefix="archive") == (1, None)
    assert await repo.delete_all(from_(Weather) | where(id=3)) == (0, None)
    assert await rows(admin, "SELECT id, temp_hi FROM archive.weather ORDER BY id") == [(1, 7), (2, 7)]
    assert await rows(admin, "SELECT id, temp_hi FROM weather ORDER BY id") == [(1, None), (2, None)]


async def test_call_prefix_on_struct_writes(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    w = await repo.insert(Weather(city="put away"), prefix="archive")
    assert meta(w).prefix == "archive"
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", w.id) == [("put away",)]
    assert await rows(admin, "SELECT count(*) FROM weather") == [(2,)]

    # a public struct updated and deleted under prefix="archive" writes the archive row with its id
    pub = await repo.get_or_raise(Weather, 1)
    assert meta(pub).prefix is None
    archived = await repo.update(change(pub, city="renamed"), prefix="archive")
    assert meta(archived).prefix == "archive"
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = 1") == [("renamed",)]
    assert await rows(admin, "SELECT city FROM weather WHERE id = 1") == [("pub one",)]
    gone = await repo.delete(await repo.get_or_raise(Weather, 2), prefix="archive")
    assert (meta(gone).state, meta(gone).prefix) == ("deleted", "archive")
    assert await rows(admin, "SELECT id FROM archive.weather ORDER BY id") == [(1,), (3,), (w.id,)]
    assert await rows(admin, "SELECT id FROM weather ORDER BY id") == [(1,), (2,)]

    # insert_or_update follows the same rule
    fresh = await repo.insert_or_update(change(Weather(city="upserted")), prefix="archive")
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", fresh.id) == [("upserted",)]


async def test_call_prefix_on_preload(repo: Repo) -> None:
    await seed_blog(repo, archive=True)
    p1 = await repo.get_or_raise(Post, 1)  # public p1, by ann
    loaded = await repo.preload(p1, {"comments": "author"}, prefix="archive")
    # every level reads the archive: archive comment 1 of post 1, by archive user 1
    assert [(c.text, typing.cast(User, c.author).name) for c in loaded.comments] == [("old c1", "old ann")]
    assert meta(loaded.comments[0]).prefix == "archive" and meta(loaded.comments[0].author).prefix == "archive"
    assert meta(loaded).prefix is None  # the parent itself is not moved
    # a query's preloads take the call's prefix too
    (u,) = await repo.all(from_(User) | where(id=2) | preload({"posts": "comments"}), prefix="archive")
    assert [(p.title, texts(p.comments)) for p in u.posts] == [("old p1", ["old c1"])]


async def test_reload_reads_from_the_struct_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    pub1, pub2 = await repo.all(from_(Weather) | order_by("id"))
    arc1, arc2 = await repo.all(from_(Weather, prefix="archive") | where(lambda w: w.id <= 2) | order_by("id"))
    await admin.execute("UPDATE archive.weather SET city = city || '!'")
    assert [typing.cast(Weather, w).city for w in await repo.reload([arc2, arc1])] == ["arc two!", "arc one!"]
    assert [typing.cast(Weather, w).city for w in await repo.reload([pub2, pub1])] == ["pub two", "pub one"]
    reloaded = await repo.reload_or_raise(arc1)
    assert meta(reloaded).prefix == "archive"


async def test_reload_with_a_call_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    pub = await repo.get_or_raise(Weather, 1)
    found = await repo.reload(pub, prefix="archive")
    assert found is not None and found.city == "arc one" and meta(found).prefix == "archive"
    again = await repo.reload_or_raise(pub, prefix="archive")
    assert again.city == "arc one"


# -- a struct's meta prefix ----------------------------------------------------------------------


async def test_put_meta_prefix_then_update_delete_reload(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    pub = await repo.get_or_raise(Weather, 1)
    moved = put_meta(pub, prefix="archive")
    assert meta(moved).prefix == "archive" and meta(pub).prefix is None
    assert (await repo.reload_or_raise(moved)).city == "arc one"
    updated = await repo.update(change(moved, temp_hi=5))
    assert meta(updated).prefix == "archive"
    assert await rows(admin, "SELECT id, temp_hi FROM archive.weather WHERE id = 1") == [(1, 5)]
    assert await rows(admin, "SELECT temp_hi FROM weather WHERE id = 1") == [(None,)]
    await repo.delete(put_meta(await repo.get_or_raise(Weather, 2), prefix="archive"))
    assert await rows(admin, "SELECT id FROM archive.weather ORDER BY id") == [(1,), (3,)]
    assert await rows(admin, "SELECT id FROM weather ORDER BY id") == [(1,), (2,)]
    # and back: an archive struct put into public writes the public row
    arc1 = await repo.get_or_raise(Weather, 1, prefix="archive")
    await repo.update(change(put_meta(arc1, prefix="public"), city="public again"))
    assert await rows(admin, "SELECT city FROM weather WHERE id = 1") == [("public again",)]
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = 1") == [("arc one",)]


async def test_loaded_structs_remember_their_prefix_for_later_writes(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    by_call = await repo.get_or_raise(Weather, 1, prefix="archive")
    (by_from,) = await repo.all(from_(Weather, prefix="archive") | where(id=2))
    by_schema = await repo.get_or_raise(ArchivedWeather, 3, prefix="public")  # the schema's prefix wins
    assert [meta(s).prefix for s in (by_call, by_from, by_schema)] == ["archive", "archive", "archive"]
    await repo.update(change(by_call, temp_hi=1))
    await repo.update(change(by_from, temp_hi=2))
    await repo.update(change(by_schema, temp_hi=3))
    assert await rows(admin, "SELECT id, temp_hi FROM archive.weather ORDER BY id") == [(1, 1), (2, 2), (3, 3)]
    assert await rows(admin, "SELECT temp_hi FROM weather") == [(None,), (None,)]
    await repo.delete(by_from)
    assert await rows(admin, "SELECT id FROM archive.weather ORDER BY id") == [(1,), (3,)]
    inserted = await repo.insert(Weather(city="x"), prefix="archive")
    await repo.update(change(inserted, city="y"))  # the inserted struct remembers too
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", inserted.id) == [("y",)]


# -- precedence ----------------------------------------------------------------------------------


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_query_precedence_from_beats_schema_beats_call_beats_repo(
    repo: Repo, public_repo: Repo, archive_repo: Repo, admin: asyncpg.Connection
) -> None:
    await seed_weather(admin)
    arc = ["arc one", "arc three", "arc two"]
    pub = ["pub one", "pub two"]
    # from_ prefix beats the schema's and the call's
    assert cities(await repo.all(from_(ArchivedWeather, prefix="public"), prefix="archive")) == pub
    assert cities(await archive_repo.all(from_(Weather, prefix="public"))) == pub
    # a join's prefix beats its schema's
    q = from_(Weather) | join("inner", ArchivedWeather, on=lambda a, b: a.id == b.id, prefix="public")
    by_id: Query[Any] = q | order_by("id") | select(lambda a, b: b.city)
    assert await repo.all(by_id) == pub
    # the schema's beats the call's and the repo's
    assert cities(await repo.all(ArchivedWeather, prefix="public")) == arc
    assert cities(await public_repo.all(ArchivedWeather)) == arc
    assert (await repo.get_or_raise(ArchivedWeather, 1, prefix="public")).city == "arc one"
    assert await repo.aggregate(ArchivedWeather, "count", prefix="public") == 3
    # the call's beats the repo's
    assert cities(await archive_repo.all(Weather, prefix="public")) == pub
    assert cities(await public_repo.all(Weather, prefix="archive")) == arc
    assert (await archive_repo.get_or_raise(Weather, 1, prefix="public")).city == "pub one"
    # and the bulk writes follow the same order
    assert await public_repo.update_all(ArchivedWeather, set={"temp_hi": 1}, prefix="public") == (3, None)
    assert await archive_repo.delete_all(from_(Weather) | where(id=1), prefix="public") == (1, None)
    assert await rows(admin, "SELECT id, temp_hi FROM archive.weather ORDER BY id") == [(1, 1), (2, 1), (3, 1)]
    assert await rows(admin, "SELECT id, temp_hi FROM weather ORDER BY id") == [(2, None)]


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_struct_write_precedence_call_beats_meta_beats_repo(
    repo: Repo, public_repo: Repo, archive_repo: Repo, admin: asyncpg.Connection
) -> None:
    async def where_is(w: Any) -> str:
        pub = await admin.fetchval("SELECT count(*) FROM weather WHERE id = $1", w.id)
        arc = await admin.fetchval("SELECT count(*) FROM archive.weather WHERE id = $1", w.id)
        assert (pub, arc) in ((1, 0), (0, 1)), (pub, arc)
        return "public" if pub else "archive"

    # the call's prefix beats the schema's (the asymmetry: for queries the schema's wins)
    assert await where_is(await repo.insert(ArchivedWeather(city="a"), prefix="public")) == "public"
    # the call's prefix beats the struct's meta prefix
    meta_public = put_meta(Weather(city="b"), prefix="public")
    assert await where_is(await repo.insert(meta_public, prefix="archive")) == "archive"
    # the struct's meta prefix beats the schema's
    assert await where_is(await repo.insert(put_meta(ArchivedWeather(city="c"), prefix="public"))) == "public"
    # a built struct's schema prefix beats the repo's
    assert await where_is(await public_repo.insert(ArchivedWeather(city="d"))) == "archive"
    # the struct's meta prefix beats the repo's
    assert await where_is(await archive_repo.insert(put_meta(Weather(city="e"), prefix="public"))) == "public"
    # with nothing else, the repo's
    assert await where_is(await archive_repo.insert(Weather(city="f"))) == "archive"

    # the same order for update and delete of a loaded struct
    loaded = await repo.get_or_raise(ArchivedWeather, (await repo.insert(ArchivedWeather(city="g"))).id)
    await admin.execute("INSERT INTO weather (id, city) VALUES ($1, 'g twin')", loaded.id)
    await archive_repo.update(change(loaded, city="g2"), prefix="public")
    assert await rows(admin, "SELECT city FROM weather WHERE id = $1", loaded.id) == [("g2",)]
    assert await rows(admin, "SELECT city FROM archive.weather WHERE id = $1", loaded.id) == [("g",)]
    await public_repo.delete(loaded)  # meta prefix archive beats the repo's public
    assert await where_is(loaded) == "public"


# -- preloads ------------------------------------------------------------------------------------


async def test_nested_preloads_follow_the_struct_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_ann = await repo.get_or_raise(User, 1, prefix="archive")
    loaded = await repo.preload(old_ann, {"posts": [{"comments": "author"}, "tags", "author"]})
    (p7,) = loaded.posts
    assert p7.title == "old p7" and p7.author is not None and p7.author.name == "old ann"
    assert [
        (c.text, typing.cast(User, c.author).name) for c in sorted(p7.comments, key=lambda c: typing.cast(int, c.id))
    ] == [
        ("old c2", "old bob"),
        ("old c3", "old ann"),
    ]
    assert [t.name for t in p7.tags] == ["old python"]  # the archive join table and tags
    every = [p7, p7.author, *p7.comments, *(c.author for c in p7.comments), *p7.tags]
    assert {meta(s).prefix for s in every} == {"archive"}
    # the public twin of each struct preloads public rows
    ann = await repo.preload(await repo.get_or_raise(User, 1), {"posts": "tags"})
    assert titles(ann.posts) == ["p1", "p4"]
    assert names(t for p in ann.posts for t in p.tags) == ["elixir", "python"]


async def test_many_to_many_preload_from_archive_reads_the_archive_join_table(
    repo: Repo, admin: asyncpg.Connection
) -> None:
    await seed_archive_blog(repo, admin)
    (p1,) = await repo.all(from_(Post) | where(id=1) | preload("tags"), prefix="archive")
    assert [t.name for t in p1.tags] == ["old sql"]
    (t1,) = await repo.all(from_(Tag, prefix="archive") | where(id=1) | preload("posts"))
    assert titles(t1.posts) == ["old p7"]  # through the PostTagLink join schema, in the archive


async def test_preload_of_a_schema_with_its_own_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    ann = await repo.get_or_raise(Writer, 1)  # public
    loaded = await repo.preload(ann, ["archived_posts", "posts"])
    assert titles(loaded.archived_posts) == ["old p7"] and titles(loaded.posts) == ["p1", "p4"]
    assert meta(loaded.archived_posts[0]).prefix == "archive"
    old_ann = await repo.get_or_raise(Writer, 1, prefix="archive")
    loaded = await repo.preload(old_ann, ["public_posts", "posts"], prefix="archive")
    assert titles(loaded.public_posts) == ["p1", "p4"] and titles(loaded.posts) == ["old p7"]
    (remark,) = await repo.all(from_(Remark) | where(id=1) | preload("post"))  # public c1 on post 1
    assert remark.text == "c1" and remark.post is not None and remark.post.title == "old p1"


async def test_nested_preloads_below_a_schema_prefix_follow_that_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    """Ecto preloads each level from the prefix of the structs at that level (the ``prefix=``
    option, else the first struct's meta prefix): children of structs that came from another
    schema, because their schema says so, are read from that schema too."""
    await seed_archive_blog(repo, admin)
    ann = await repo.get_or_raise(Writer, 1)  # public ann; her archived posts are archive p7
    loaded = await repo.preload(ann, {"archived_posts": ["comments", "author"]})
    (p7,) = loaded.archived_posts
    assert texts(p7.comments) == ["old c2", "old c3"]
    assert p7.author is not None and p7.author.name == "old ann"
    assert {meta(c).prefix for c in p7.comments} == {"archive"}
    old_ann = await repo.get_or_raise(Writer, 1, prefix="archive")  # her public posts are p1 and p4
    loaded = await repo.preload(old_ann, {"public_posts": "comments"})
    assert sorted(texts(p.comments) for p in loaded.public_posts) == [["c1", "c2", "c3"], ["c7"]]
    # from a query's preloads too
    (ann,) = await repo.all(from_(Writer) | where(id=1) | preload({"archived_posts": "comments"}))
    assert texts(ann.archived_posts[0].comments) == ["old c2", "old c3"]


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_preload_takes_the_repo_prefix_and_loaded_meta(
    repo: Repo, archive_repo: Repo, admin: asyncpg.Connection
) -> None:
    await seed_archive_blog(repo, admin)
    (u,) = await archive_repo.all(from_(User) | where(id=2) | preload({"posts": ["comments", "tags"]}))
    assert u.name == "old bob"
    assert [(p.title, texts(p.comments), [t.name for t in p.tags]) for p in u.posts] == [
        ("old p1", ["old c1"], ["old sql"])
    ]
    # a struct built without a prefix preloads from the repo's
    built = User(id=1)
    assert titles((await archive_repo.preload(built, "posts")).posts) == ["old p7"]
    # a struct loaded from public keeps preloading public on the archive repo
    pub = await archive_repo.get_or_raise(User, 1, prefix="public")
    assert meta(pub).prefix == "public"
    assert titles((await archive_repo.preload(pub, "posts")).posts) == ["p1", "p4"]


# -- put_query_prefix ----------------------------------------------------------------------------


async def test_query_prefix_sits_between_the_schema_and_the_call(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    q = from_(Weather) | put_query_prefix("archive")
    assert cities(await repo.all(q)) == ["arc one", "arc three", "arc two"]
    assert {meta(w).prefix for w in await repo.all(q)} == {"archive"}
    assert cities(await repo.all(q, prefix="public")) == ["pub one", "pub two"]  # the call's wins
    assert cities(await repo.all(q | put_query_prefix(None))) == ["pub one", "pub two"]
    # a source's own prefix and a schema's prefix beat it
    assert cities(await repo.all(from_(Weather, prefix="public") | put_query_prefix("archive"))) == [
        "pub one",
        "pub two",
    ]
    public_view = from_(ArchivedWeather) | put_query_prefix("public")
    assert len(await repo.all(public_view)) == 3
    assert await repo.aggregate(q, "count") == 3 and await repo.exists(q | where(city="arc two"))
    # bulk operations follow it too
    assert await repo.update_all(q | where(id=1), set={"temp_lo": 99}) == (1, None)
    assert await rows(admin, "SELECT temp_lo FROM archive.weather WHERE id = 1") == [(99,)]
    assert await rows(admin, "SELECT temp_lo FROM weather WHERE id = 1") == [(1,)]
    async with repo.transaction():
        assert len([w async for w in repo.stream(q)]) == 3


async def test_a_subquery_keeps_its_own_query_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    archived_ids = (
        from_(Weather) | put_query_prefix("archive") | where(lambda w: w.temp_lo >= 20) | select(lambda w: w.id)
    )
    q = from_(Weather) | where(lambda w: w.id.in_(subquery(archived_ids)))
    assert cities(await repo.all(q)) == ["pub two"]  # ids 2 and 3 from archive; public has only 2
    inherited = from_(Weather) | where(lambda w: w.temp_lo >= 20) | select(lambda w: w.id)
    outer = from_(Weather) | put_query_prefix("archive") | where(lambda w: w.id.in_(subquery(inherited)))
    assert cities(await repo.all(outer)) == ["arc three", "arc two"]


async def test_insert_all_from_a_query_with_a_query_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_weather(admin)
    source = from_(Weather) | put_query_prefix("archive") | select(lambda w: {"city": w.city, "temp_lo": w.temp_lo})
    count, _ = await repo.insert_all(Weather, source)
    assert count == 3
    assert await rows(admin, "SELECT count(*) FROM weather") == [(5,)]


# -- assoc() queries -----------------------------------------------------------------------------


async def test_assoc_queries_follow_the_struct_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_p1 = await repo.get_or_raise(Post, 1, prefix="archive")
    assert texts(await repo.all(assoc(old_p1, "comments"))) == ["old c1"]
    assert [t.name for t in await repo.all(assoc(old_p1, "tags"))] == ["old sql"]
    assert (await repo.one_or_raise(assoc(old_p1, "author"))).name == "old bob"
    assert names(await repo.all(assoc(old_p1, ["comments", "author"]))) == ["old ann"]
    found = await repo.all(assoc(old_p1, "comments"))
    assert {meta(c).prefix for c in found} == {"archive"}
    # the option overrides the struct's
    p1 = await repo.get_or_raise(Post, 1)
    assert texts(await repo.all(assoc(p1, "comments"))) == ["c1", "c2", "c3"]
    assert texts(await repo.all(assoc(p1, "comments", prefix="archive"))) == ["old c1"]
    assert [t.name for t in await repo.all(assoc(p1, "tags", prefix="archive"))] == ["old sql"]
    # a public struct's assoc query takes the call's prefix, and so does an archived one's
    assert texts(await repo.all(assoc(p1, "comments"), prefix="archive")) == ["old c1"]
    assert texts(await repo.all(assoc(old_p1, "comments"), prefix="public")) == ["c1", "c2", "c3"]
    assert sorted(t.name for t in await repo.all(assoc(old_p1, "tags"), prefix="public")) == ["elixir", "python"]
    # bulk operations on an assoc query write the struct's schema
    assert await repo.update_all(assoc(old_p1, "comments"), set={"approved": True}) == (1, None)
    assert await rows(admin, "SELECT id FROM archive.bl_comments WHERE approved") == [(1,)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments WHERE approved") == [(3,)]  # as seeded


async def test_assoc_of_a_schema_with_its_own_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    ann = await repo.get_or_raise(Writer, 1)
    assert titles(await repo.all(assoc(ann, "archived_posts"))) == ["old p7"]
    old_ann = await repo.get_or_raise(Writer, 1, prefix="archive")
    assert titles(await repo.all(assoc(old_ann, "public_posts"))) == ["p1", "p4"]
    assert titles(await repo.all(assoc(old_ann, "posts"))) == ["old p7"]


@pytest.mark.no_sandbox  # a repo of its own commits beside the sandboxed one
async def test_assoc_from_a_repo_prefix(repo: Repo, archive_repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_p7 = await archive_repo.get_or_raise(Post, 7)
    assert texts(await archive_repo.all(assoc(old_p7, "comments"))) == ["old c2", "old c3"]
    assert texts(await repo.all(assoc(old_p7, "comments"))) == ["old c2", "old c3"]  # the struct remembers


# -- build_assoc ---------------------------------------------------------------------------------


async def test_build_assoc_builds_in_the_parent_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_p7 = await repo.get_or_raise(Post, 7, prefix="archive")
    child = build_assoc(old_p7, "comments", {"text": "reply"})
    assert meta(child).prefix == "archive" and child.post_id == 7
    saved = await repo.insert(child)
    assert await rows(admin, "SELECT text, post_id FROM archive.bl_comments WHERE id = $1", saved.id) == [("reply", 7)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments WHERE text = 'reply'") == [(0,)]
    # has_one and belongs_to as well
    link = await repo.insert(build_assoc(old_p7, "permalink", {"url": "/old"}))
    assert await rows(admin, "SELECT url, post_id FROM archive.bl_permalinks WHERE id = $1", link.id) == [("/old", 7)]
    author = build_assoc(await repo.get_or_raise(Comment, 1, prefix="archive"), "author", {"name": "new old"})
    assert meta(author).prefix == "archive"
    # a public parent builds in public; a related schema with its own prefix keeps it
    p1 = await repo.get_or_raise(Post, 1)
    assert meta(build_assoc(p1, "comments")).prefix is None
    old_ann = await repo.get_or_raise(Writer, 1, prefix="archive")
    public = build_assoc(old_ann, "public_posts", {"title": "in public"})
    assert meta(public).prefix == "public"
    saved_post = await repo.insert(public)
    assert await rows(admin, "SELECT author_id FROM bl_posts WHERE id = $1", saved_post.id) == [(1,)]
    assert await rows(admin, "SELECT count(*) FROM archive.bl_posts WHERE id = $1", saved_post.id) == [(0,)]


# -- nested association writes -------------------------------------------------------------------


async def test_nested_insert_writes_every_association_in_the_call_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(
        Post(
            title="deep",
            author=User(name="writer"),
            comments=[Comment(text="one", author=User(name="commenter")), Comment(text="two")],
            permalink=Permalink(url="/deep"),
            tags=[Tag(name="t1"), Tag(name="t2")],
        ),
        prefix="archive",
    )
    assert await rows(admin, "SELECT title, author_id FROM archive.bl_posts") == [("deep", post.author_id)]
    assert await rows(admin, "SELECT name FROM archive.bl_users ORDER BY name") == [("commenter",), ("writer",)]
    assert await rows(admin, "SELECT text FROM archive.bl_comments ORDER BY text") == [("one",), ("two",)]
    assert await rows(admin, "SELECT url, post_id FROM archive.bl_permalinks") == [("/deep", post.id)]
    assert await rows(admin, "SELECT name FROM archive.bl_tags ORDER BY name") == [("t1",), ("t2",)]
    links = await rows(admin, "SELECT post_id FROM archive.bl_posts_tags")
    assert links == [(post.id,), (post.id,)]
    for table in ("bl_posts", "bl_users", "bl_comments", "bl_permalinks", "bl_tags", "bl_posts_tags"):
        assert await rows(admin, f"SELECT count(*) FROM public.{table}") == [(0,)], table
    structs = [post, post.author, post.permalink, *post.comments, post.comments[0].author, *post.tags]
    assert {meta(s).prefix for s in structs} == {"archive"}


async def test_nested_insert_follows_the_parent_meta_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    post = await repo.insert(put_meta(Post(title="meta", comments=[Comment(text="kid")]), prefix="archive"))
    assert await rows(admin, "SELECT text, post_id FROM archive.bl_comments") == [("kid", post.id)]
    # a child whose struct has a prefix of its own keeps it
    pub = await repo.insert(Post(title="pub", comments=[put_meta(Comment(text="away"), prefix="archive")]))
    assert await rows(admin, "SELECT post_id FROM archive.bl_comments WHERE text = 'away'") == [(pub.id,)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]


async def test_a_call_prefix_beats_a_childs_own_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    child = put_meta(Comment(text="forced"), prefix="public")
    post = await repo.insert(Post(title="p", comments=[child]), prefix="archive")
    assert await rows(admin, "SELECT post_id FROM archive.bl_comments WHERE text = 'forced'") == [(post.id,)]
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(0,)]
    assert {meta(c).prefix for c in post.comments} == {"archive"}
    # the handed-down prefix is kept as a plain prefix: a later write without prefix= is not forced
    assert all(type(meta(c).prefix) is str for c in post.comments)


async def test_cast_assoc_on_an_archived_parent_writes_the_archive(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_p7 = await repo.preload(await repo.get_or_raise(Post, 7, prefix="archive"), ["comments", "permalink"])
    params = {
        "title": "old p7 edited",
        "comments": [{"id": 2, "text": "old c2 edited"}, {"text": "brand new"}],  # c3 left out: deleted
        "permalink": {"url": "/old-p7"},
    }
    cs = cast_assoc(cast_assoc(cast(old_p7, params, ["title"]), "comments"), "permalink")
    updated = await repo.update(cs)
    assert await rows(admin, "SELECT text, post_id FROM archive.bl_comments ORDER BY id") == [
        ("old c1", 1),
        ("old c2 edited", 7),
        ("brand new", 7),
    ]
    assert await rows(admin, "SELECT url, post_id FROM archive.bl_permalinks") == [("/old-p7", 7)]
    assert await rows(admin, "SELECT title FROM archive.bl_posts WHERE id = 7") == [("old p7 edited",)]
    # public is as seeded
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(7,)]
    assert await rows(admin, "SELECT count(*) FROM bl_permalinks") == [(2,)]
    assert {meta(c).prefix for c in updated.comments} == {"archive"}


async def test_put_assoc_many_to_many_on_an_archived_parent(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    old_p1 = await repo.preload(await repo.get_or_raise(Post, 1, prefix="archive"), "tags")
    old_python = await repo.get_or_raise(Tag, 1, prefix="archive")
    # "old sql" is replaced (its join row goes), "old python" linked, a new tag created
    await repo.update(put_assoc(change(old_p1), "tags", [old_python, Tag(name="archived new")]))
    assert await rows(admin, "SELECT name FROM archive.bl_tags ORDER BY id") == [
        ("old python",),
        ("old sql",),
        ("archived new",),
    ]
    new_id = (await rows(admin, "SELECT id FROM archive.bl_tags WHERE name = 'archived new'"))[0][0]
    assert await rows(admin, "SELECT post_id, tag_id FROM archive.bl_posts_tags ORDER BY post_id, tag_id") == sorted(
        [(1, 1), (1, new_id), (7, 1)]
    )
    assert await rows(admin, "SELECT post_id, tag_id FROM bl_posts_tags ORDER BY post_id, tag_id") == [
        (1, 1),
        (1, 2),
        (2, 1),
    ]
    assert await rows(admin, "SELECT count(*) FROM bl_tags") == [(3,)]


async def test_update_with_a_call_prefix_writes_children_there(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    await admin.execute("INSERT INTO archive.bl_posts (id, title) VALUES (3, 'old p3')")
    # public p3 (no permalink), written as its archive twin with the same id
    p3 = await repo.preload(await repo.get_or_raise(Post, 3), "permalink")
    assert p3.permalink is None
    await repo.update(put_assoc(change(p3, title="moved"), "permalink", Permalink(url="/moved")), prefix="archive")
    assert await rows(admin, "SELECT title FROM archive.bl_posts WHERE id = 3") == [("moved",)]
    assert await rows(admin, "SELECT url, post_id FROM archive.bl_permalinks") == [("/moved", 3)]
    assert await rows(admin, "SELECT title FROM bl_posts WHERE id = 3") == [("p3",)]
    assert await rows(admin, "SELECT url FROM bl_permalinks ORDER BY id") == [("/p1",), ("/p2",)]


async def test_delete_cascades_on_delete_in_the_struct_prefix(repo: Repo, admin: asyncpg.Connection) -> None:
    await seed_archive_blog(repo, admin)
    # Post.comments, permalink and tags are on_delete="delete_all"
    await repo.delete(await repo.get_or_raise(Post, 7, prefix="archive"))
    assert await rows(admin, "SELECT id FROM archive.bl_posts") == [(1,)]
    assert await rows(admin, "SELECT id FROM archive.bl_comments") == [(1,)]
    assert await rows(admin, "SELECT post_id FROM archive.bl_posts_tags") == [(1,)]
    # User.posts is on_delete="nilify_all", User.comments "delete_all"
    await repo.delete(await repo.get_or_raise(User, 2, prefix="archive"))
    assert await rows(admin, "SELECT id, author_id FROM archive.bl_posts") == [(1, None)]
    assert await rows(admin, "SELECT id FROM archive.bl_comments") == [(1,)]  # old c1 is by user 1
    # public is as seeded
    assert await rows(admin, "SELECT count(*) FROM bl_comments") == [(7,)]
    assert await rows(admin, "SELECT count(*) FROM bl_posts WHERE author_id IS NOT NULL") == [(3,)]
