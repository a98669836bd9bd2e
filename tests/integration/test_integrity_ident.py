"""Issue 16, defect 8 (names PostgreSQL truncates) and defect 9 (Python's exceptions for bad names,
notification payloads and field names), on a real PostgreSQL.

PostgreSQL keeps the first 63 bytes of a name and silently drops the rest: these tests build the
other tenant's schema for real, show PostgreSQL itself reading it under the longer name, and prove
asyncecto refuses that name everywhere before sending any SQL.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asyncecto import Notification, Repo, meta, put_meta, schema
from asyncecto.changeset import cast, unique_constraint
from asyncecto.errors import ArgumentError, IdentifierError, InvalidChangesetError, QueryError
from asyncecto.migration import run
from asyncecto.query import Query, field, from_, put_query_prefix, select, where
from asyncecto.repo import Subscription, build_config
from asyncecto.repo._telemetry import QueryEvent

from ..schemas import Weather

T63 = "t" * 63  # another tenant's schema
LONG = T63 + "_other_tenant"  # 76 bytes: PostgreSQL reads it as T63
P63 = "é" * 31 + "a"  # 63 bytes in 31 + 1 characters: a name at the limit
P64 = "é" * 32  # 64 bytes in 32 characters
WEATHER_DDL = "(id bigserial PRIMARY KEY, city varchar(255), temp_lo integer, temp_hi integer, prcp float)"
WAIT = 30.0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _tenant(repo: Repo, name: str, city: str) -> None:
    """Schema ``name`` with a weather table holding one row (in the sandbox: rolled back at the end)."""
    await repo.query(f"CREATE SCHEMA {_q(name)}")
    await repo.query(f"CREATE TABLE {_q(name)}.weather {WEATHER_DDL}")
    await repo.query(f"INSERT INTO {_q(name)}.weather (city) VALUES ($1)", [city])


class SentSql:
    """Every statement the repo sends, from telemetry (read after a sentinel statement arrives)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.events: list[QueryEvent] = []
        self.name = repo.telemetry.attach(self.events.append, name=f"sent-{uuid.uuid4().hex}")

    async def all(self) -> list[str]:
        sentinel = f"SELECT 'sentinel {uuid.uuid4().hex}'"
        await self.repo.query(sentinel)
        deadline = time.monotonic() + WAIT
        while not any(e.sql == sentinel for e in self.events):
            assert time.monotonic() < deadline, "the sentinel statement never reached telemetry"
            await asyncio.sleep(0.01)
        self.repo.telemetry.detach(self.name)
        return [e.sql for e in self.events if e.sql != sentinel]


# -- defect 8: a prefix over 63 bytes ---------------------------------------------------------------------


async def test_defect_8_prefix_longer_than_63_bytes_is_refused_and_reads_no_other_schema(repo: Repo) -> None:
    await _tenant(repo, T63, "secret of tenant ttt…t")
    # what a library that passes the name through gets: PostgreSQL reads the other tenant's schema
    raw = await repo.query(f"SELECT city FROM {_q(LONG)}.weather")
    assert [r[0] for r in raw.rows] == ["secret of tenant ttt…t"]
    # the schema is real: asked for by its own name, asyncecto reads it
    assert [w.city for w in await repo.all(from_(Weather), prefix=T63)] == ["secret of tenant ttt…t"]

    sent = SentSql(repo)
    refused: list[Callable[[], Any]] = [
        lambda: repo.all(from_(Weather), prefix=LONG),
        lambda: repo.one(from_(Weather), prefix=LONG),
        lambda: repo.get(Weather, 1, prefix=LONG),
        lambda: repo.get_by(Weather, city="secret of tenant ttt…t", prefix=LONG),
        lambda: repo.exists(from_(Weather), prefix=LONG),
        lambda: repo.aggregate(from_(Weather), "count", prefix=LONG),
        lambda: repo.update_all(from_(Weather), set={"city": "overwritten"}, prefix=LONG),
        lambda: repo.delete_all(from_(Weather), prefix=LONG),
        lambda: repo.insert(Weather(city="planted"), prefix=LONG),
        lambda: repo.insert_all(Weather, [{"city": "planted"}], prefix=LONG),
        lambda: repo.all(from_(Weather, prefix=LONG)),
        lambda: repo.all(from_(Weather) | put_query_prefix(LONG)),
        lambda: repo.insert(put_meta(Weather(city="planted"), prefix=LONG)),
    ]
    for call in refused:
        with pytest.raises(IdentifierError) as info:
            await call()
        err = info.value
        assert err.name == LONG and err.size == 76 and err.limit == 63
        assert "prefix" in err.kind
        assert "76 bytes long" in str(err) and "PostgreSQL keeps only 63 bytes of a name" in str(err)
        assert "fix: shorten it to at most 63 bytes" in str(err)

    assert not [sql for sql in await sent.all() if T63 in sql]  # no statement reached the server
    rows = await repo.query(f"SELECT city FROM {_q(T63)}.weather")
    assert [r[0] for r in rows.rows] == ["secret of tenant ttt…t"]  # nothing written, nothing changed


async def test_defect_8_repo_prefix_option_longer_than_63_bytes_is_refused(database_url: str) -> None:
    with pytest.raises(IdentifierError, match="repo prefix"):
        Repo(database_url, prefix=LONG)


async def test_defect_8_prefix_of_exactly_63_bytes_works_and_64_is_refused(repo: Repo) -> None:
    await _tenant(repo, P63, "at the limit")
    written = await repo.insert(Weather(city="written at the limit"), prefix=P63)
    assert meta(written).prefix == P63
    cities: Query[Any] = from_(Weather) | select(lambda w: w.city)
    read = await repo.all(cities, prefix=P63)
    assert sorted(read) == ["at the limit", "written at the limit"]
    assert len(await repo.all(from_(Weather, prefix=P63))) == 2
    assert len(await repo.all(from_(Weather) | put_query_prefix(P63))) == 2
    names = await repo.query("SELECT nspname FROM pg_namespace WHERE nspname = $1", [P63])
    assert [r[0] for r in names.rows] == [P63]  # stored whole: 63 bytes

    for call in (
        lambda: repo.all(from_(Weather), prefix=P64),
        lambda: repo.insert(Weather(city="x"), prefix=P64),
    ):
        with pytest.raises(IdentifierError) as info:
            await call()
        assert info.value.size == 64
        assert "64 bytes long in UTF-8 (32 characters)" in str(info.value)


@pytest.mark.parametrize("prefix", ["a\x00b", "a\ud800b"])
async def test_defect_9_prefix_with_nul_or_a_lone_surrogate_is_a_library_error(repo: Repo, prefix: str) -> None:
    for call in (
        lambda: repo.all(from_(Weather, prefix=prefix)),
        lambda: repo.all(from_(Weather), prefix=prefix),
        lambda: repo.insert(Weather(city="x"), prefix=prefix),
    ):
        with pytest.raises(IdentifierError) as info:
            await call()
        assert info.value.name == prefix
        assert not isinstance(info.value, UnicodeError)
    assert await repo.aggregate(from_(Weather), "count") == 0


async def test_defect_8_schemaless_names_over_63_bytes_are_refused(repo: Repo) -> None:
    with pytest.raises(IdentifierError, match="column"):
        await repo.all(from_("weather") | select(lambda w: field(w, "c" * 64)))
    with pytest.raises(IdentifierError, match="table"):
        await repo.insert_all("w" * 64, [{"city": "x"}])
    with pytest.raises(IdentifierError, match="column in insert_all rows"):
        await repo.insert_all("weather", [{"c" * 64: "x"}])
    assert await repo.aggregate(from_(Weather), "count") == 0


# -- defect 8: a changeset's constraint name at the limit matches ------------------------------------------


@schema("ident_codes")
class Code:
    id: int | None = None
    code: str | None = None


U63 = "ident_codes_code_" + "u" * 46  # 63 bytes


async def test_defect_8_constraint_name_of_63_bytes_matches_what_postgres_reports(repo: Repo) -> None:
    await repo.query("CREATE TABLE ident_codes (id bigserial PRIMARY KEY, code text)")
    await repo.query(f"CREATE UNIQUE INDEX {_q(U63)} ON ident_codes (code)")
    await repo.insert(Code(code="A"))
    cs = cast(Code(), {"code": "A"}, ["code"]) | unique_constraint("code", name=U63)
    with pytest.raises(InvalidChangesetError) as info:
        await repo.insert(cs)
    assert info.value.changeset.errors == (
        ("code", ("has already been taken", {"constraint": "unique", "constraint_name": U63})),
    )
    with pytest.raises(IdentifierError, match="unique constraint name"):
        cast(Code(), {"code": "A"}, ["code"]) | unique_constraint("code", name=U63 + "x")


# -- defect 9: hostile field names on the real repo ------------------------------------------------------


@pytest.mark.parametrize("name", ["__dict__", "__class__", "_index", "", "x\x00", 'a"b', "$1"])
async def test_defect_9_hostile_field_names_are_query_errors(repo: Repo, name: str) -> None:
    await repo.insert(Weather(city="Oslo"))
    by_name: dict[str, Any] = {name: 1}
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: repo.get_by(Weather, **by_name),
        lambda: repo.all(from_(Weather) | where(lambda w: field(w, name) == 1)),
        lambda: repo.all(from_(Weather) | select(lambda w: field(w, name))),
        lambda: repo.update_all(from_(Weather), set={name: 1}),
    ]
    for call in calls:
        with pytest.raises(QueryError) as info:
            await call()
        assert f"field {name!r} does not exist in schema Weather" in str(info.value)
        assert "fields are: id, city, temp_lo, temp_hi, prcp" in str(info.value)
    assert [w.city for w in await repo.all(from_(Weather))] == ["Oslo"]


async def test_defect_9_schemaless_field_with_nul_is_an_identifier_error(repo: Repo) -> None:
    with pytest.raises(IdentifierError, match="NUL"):
        await repo.all(from_("weather") | select(lambda w: field(w, "x\x00")))
    with pytest.raises(IdentifierError, match="lone surrogate"):
        await repo.get_by(("weather", Weather), city="x", prefix="p\udcff")


# -- defect 8 and 9: LISTEN/NOTIFY channels and payloads -------------------------------------------------------


async def _next(feed: Subscription) -> Notification:
    async with asyncio.timeout(WAIT):
        return await anext(feed)


@pytest.mark.no_sandbox
async def test_defect_8_a_channel_of_exactly_63_bytes_is_listened_to_under_its_own_name(repo: Repo) -> None:
    channel = "é" * 30 + uuid.uuid4().hex[:3]  # 63 bytes
    assert len(channel.encode()) == 63
    async with repo.listen(channel) as feed:
        await repo.notify(channel, "at the limit")
        n = await _next(feed)
    assert (n.channel, n.payload) == (channel, "at the limit")


@pytest.mark.no_sandbox
@pytest.mark.parametrize("channel", ["é" * 32, "c" * 64, LONG, "a\x00b", "c\ud800"])
async def test_defect_8_channel_names_postgres_would_change_are_refused(repo: Repo, channel: str) -> None:
    with pytest.raises(IdentifierError) as info:
        repo.listen(channel)
    assert info.value.kind == "channel"
    with pytest.raises(IdentifierError):
        await repo.notify(channel, "x")
    assert repo.listener_stats()["subscribers"] == 0


@pytest.mark.no_sandbox
async def test_defect_9_notify_payloads_postgres_refuses_are_argument_errors_and_nothing_is_sent(repo: Repo) -> None:
    channel = f"payloads_{uuid.uuid4().hex[:8]}"
    async with repo.listen(channel) as feed:
        for payload, reason in (
            ("\ud800", r"lone surrogate '\\ud800' at position 0"),
            ("ok\udcffok", "lone surrogate"),
            ("a\x00b", "NUL character"),
            ("x" * 8000, "8000 bytes long"),
            ("é" * 4000, "8000 bytes long"),
        ):
            with pytest.raises(ArgumentError, match=reason) as info:
                await repo.notify(channel, payload)
            assert not isinstance(info.value, UnicodeError)
        await repo.notify(channel, "sentinel")
        assert (await _next(feed)).payload == "sentinel"  # nothing was sent before it


# -- defect 8: names in migrations ---------------------------------------------------------------------------


@pytest.fixture
async def space(database_url: str) -> AsyncIterator[str]:
    """A PostgreSQL schema of the test's own, the migrating repo's search_path; dropped at the end."""
    name = f"idm_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(**build_config(database_url).dsn_kwargs())
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
        await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
        await conn.execute(f"DROP SCHEMA IF EXISTS {_q(T63)} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def mrepo(database_url: str, space: str) -> AsyncIterator[Repo]:
    r = Repo(database_url, pool_size=3, server_settings={"search_path": space})
    async with r:
        yield r


def _migration(folder: Path, body: str, version: int = 20240101120000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}_names.py").write_text(textwrap.dedent(body))
    return folder


async def _tables(repo: Repo, space: str) -> list[str]:
    rows = await repo.query("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [space])
    return [r[0] for r in rows.rows]


async def _versions(repo: Repo) -> list[int]:
    rows = await repo.query("SELECT version FROM schema_migrations")
    return [r[0] for r in rows.rows]


LONG_NAMES = {
    "derived index name": """
        with create(table("widgets_with_a_long_table_name")):
            add("a_rather_long_column_name_for_an_index", "string")
        create(index("widgets_with_a_long_table_name", ["a_rather_long_column_name_for_an_index"]))
    """,
    "explicit index name": """
        with create(table("widgets")):
            add("code", "string")
        create(unique_index("widgets", ["code"], name="widgets_code_" + "i" * 51))
    """,
    "derived foreign key name": """
        with create(table("widgets_with_a_long_table_name")):
            add("a_reference_to_the_owner_of_the_widget_id", references("owners"))
    """,
    "constraint name": """
        with create(table("widgets")):
            add("price", "integer")
        create(constraint("widgets", "widgets_price_must_be_positive_" + "c" * 33, check="price > 0"))
    """,
    "plain index column (adapter's guard)": """
        with create(table("widgets")):
            add("code", "string")
        create(index("widgets", ["c" * 64], name="widgets_c_index"))
    """,
    "column name": """
        with create(table("widgets")):
            add("code", "string")
        with alter(table("widgets")):
            add("c" * 64, "string")
    """,
}


@pytest.mark.no_sandbox
@pytest.mark.parametrize("what", LONG_NAMES)
async def test_defect_8_migration_with_a_name_over_63_bytes_is_refused_before_any_ddl(
    mrepo: Repo, space: str, tmp_path: Path, what: str
) -> None:
    body = "from asyncecto.migration import *\n\ndef change():\n" + textwrap.indent(
        textwrap.dedent(LONG_NAMES[what]).strip(), "    "
    )
    folder = _migration(tmp_path / "migrations", body)
    with pytest.raises(IdentifierError) as info:
        await run(mrepo, folder, all=True)
    err = info.value
    assert err.size is not None and err.size > 63
    assert "PostgreSQL keeps only 63 bytes of a name" in str(err)
    if what.startswith("derived"):
        assert "name=) explicitly" in str(err)
    assert await _tables(mrepo, space) == ["schema_migrations"]  # no table, index or key was created
    assert await _versions(mrepo) == []


@pytest.mark.no_sandbox
async def test_defect_8_migration_names_of_exactly_63_bytes_are_kept_whole(
    mrepo: Repo, space: str, tmp_path: Path
) -> None:
    index_name = "widgets_code_" + "é" * 25  # 63 bytes
    check_name = "widgets_price_" + "c" * 49  # 63 bytes
    fkey = "widgets_owner_" + "f" * 49  # 63 bytes
    body = f"""
        from asyncecto.migration import *

        def change():
            with create(table("owners")):
                add("name", "string")
            with create(table("widgets")):
                add("code", "string")
                add("price", "integer")
                add("owner_id", references("owners", name={fkey!r}))
            create(unique_index("widgets", ["code"], name={index_name!r}))
            create(constraint("widgets", {check_name!r}, check="price > 0"))
    """
    await run(mrepo, _migration(tmp_path / "migrations", body), all=True)
    indexes = await mrepo.query("SELECT indexname FROM pg_indexes WHERE schemaname = $1", [space])
    assert index_name in [r[0] for r in indexes.rows]
    constraints = await mrepo.query(
        "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1",
        [space],
    )
    assert {check_name, fkey} <= {r[0] for r in constraints.rows}
    assert all(len(name.encode()) == 63 for name in (index_name, check_name, fkey))


@pytest.mark.no_sandbox
async def test_defect_8_migrator_prefix_over_63_bytes_is_refused_before_any_sql(
    mrepo: Repo, space: str, tmp_path: Path
) -> None:
    await mrepo.query(f"CREATE SCHEMA {_q(T63)}")  # where PostgreSQL would put everything
    body = """
        from asyncecto.migration import *

        def change():
            with create(table("widgets")):
                add("code", "string")
    """
    folder = _migration(tmp_path / "migrations", body)
    with pytest.raises(IdentifierError, match="migration prefix"):
        await run(mrepo, folder, all=True, prefix=LONG)
    assert await _tables(mrepo, T63) == []  # neither schema_migrations nor widgets
    assert await _tables(mrepo, space) == []
