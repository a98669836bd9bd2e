"""The DSL's SQL on a real PostgreSQL: every command applied, checked in the catalog, then reversed
and checked back to the catalog it started from. Tables are ``mig_*``; the second schema is ``mig_tenant``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from asyncecto import Repo
from asyncecto.adapters.postgres._ddl import ddl_sql
from asyncecto.errors import (
    CheckViolationError,
    DatabaseError,
    ExclusionViolationError,
    ForeignKeyViolationError,
    NotNullViolationError,
    UniqueViolationError,
)
from asyncecto.migration import (
    add,
    add_if_not_exists,
    alter,
    collect,
    constraint,
    create,
    create_if_not_exists,
    drop,
    drop_if_exists,
    execute,
    execute_file,
    flush,
    fragment,
    index,
    modify,
    references,
    remove,
    remove_if_exists,
    rename,
    reverse,
    table,
    timestamps,
    unique_index,
)
from asyncecto.migration._dsl import Command, Execute, Flush

pytestmark = pytest.mark.no_sandbox  # real commits and connections

TENANT = "mig_tenant"


async def _clean(r: Repo) -> None:
    await r.query(f"DROP SCHEMA IF EXISTS {TENANT} CASCADE")
    rows = await r.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'mig\\_%' ESCAPE '\\'"
    )
    for (name,) in rows.rows:
        await r.query(f'DROP TABLE IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[Repo]:
    r = Repo(database_url, pool_size=2)
    async with r:
        await _clean(r)
        await r.query(f"CREATE SCHEMA {TENANT}")
        yield r
        await _clean(r)


async def apply(r: Repo, commands: list[Command], prefix: str | None = None) -> None:
    """Run commands as the migrator will: SQL in order, functions at their turn, flush as a no-op."""
    for command in commands:
        if isinstance(command, Execute) and callable(command.up):
            await command.up(r)
            continue
        if isinstance(command, Flush):
            continue
        for statement in ddl_sql(command, prefix):
            await r.query(statement)


async def up_and_down(r: Repo, change: Callable[[], None], prefix: str | None = None) -> dict[str, Any]:
    """Apply ``change`` and return the catalog then; the caller checks it, then calls :func:`down`."""
    await apply(r, collect(change), prefix)
    return await catalog(r)


async def down(r: Repo, change: Callable[[], None], before: dict[str, Any], prefix: str | None = None) -> None:
    """Apply the reversal of ``change`` and check the catalog is ``before`` again (a column that was
    removed and added back comes last, so columns are compared by name)."""
    await apply(r, reverse(collect(change)), prefix)
    assert by_name(await catalog(r)) == by_name(before)


def by_name(cat: dict[str, Any]) -> dict[str, Any]:
    return {**cat, "columns": sorted(cat["columns"], key=lambda row: row[:3])}


async def catalog(r: Repo) -> dict[str, Any]:
    """Every mig_ table's columns, constraints, indexes and comments, in public and mig_tenant."""
    schemas = ["public", TENANT]
    columns = await r.query(
        "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, numeric_precision, "
        "numeric_scale, datetime_precision, column_default, is_nullable, collation_name, is_generated, "
        "generation_expression, is_identity, udt_name "
        "FROM information_schema.columns WHERE table_schema = ANY($1) AND table_name LIKE 'mig%' "
        "ORDER BY 1, 2, ordinal_position",
        [schemas],
    )
    constraints = await r.query(
        "SELECT n.nspname, t.relname, c.conname, c.contype::text, pg_get_constraintdef(c.oid), c.convalidated, "
        "obj_description(c.oid, 'pg_constraint') "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = ANY($1) AND t.relname LIKE 'mig%' ORDER BY 1, 2, 3",
        [schemas],
    )
    indexes = await r.query(
        "SELECT schemaname, tablename, indexname, indexdef, "
        "obj_description(format('%I.%I', schemaname, indexname)::regclass, 'pg_class') "
        "FROM pg_indexes WHERE schemaname = ANY($1) AND tablename LIKE 'mig%' ORDER BY 1, 2, 3",
        [schemas],
    )
    tables = await r.query(
        "SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence::text, obj_description(c.oid, 'pg_class') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY($1) AND c.relname LIKE 'mig%' AND c.relkind IN ('r', 'p') ORDER BY 1, 2",
        [schemas],
    )
    column_comments = await r.query(
        "SELECT n.nspname, c.relname, a.attname, col_description(c.oid, a.attnum) "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY($1) AND c.relname LIKE 'mig%' AND a.attnum > 0 AND NOT a.attisdropped "
        "AND col_description(c.oid, a.attnum) IS NOT NULL ORDER BY 1, 2, 3",
        [schemas],
    )
    return {
        "tables": tables.rows,
        "columns": columns.rows,
        "constraints": constraints.rows,
        "indexes": indexes.rows,
        "column_comments": column_comments.rows,
    }


def cols(cat: dict[str, Any], tbl: str, schema: str = "public") -> dict[str, dict[str, Any]]:
    keys = (
        "type",
        "length",
        "precision",
        "scale",
        "dt_precision",
        "default",
        "nullable",
        "collation",
        "generated",
        "expression",
        "identity",
        "udt",
    )
    return {row[2]: dict(zip(keys, row[3:], strict=True)) for row in cat["columns"] if row[:2] == (schema, tbl)}


def cons(cat: dict[str, Any], tbl: str, schema: str = "public") -> dict[str, tuple[str, str, bool, str | None]]:
    return {row[2]: (row[3], row[4], row[5], row[6]) for row in cat["constraints"] if row[:2] == (schema, tbl)}


def idx(cat: dict[str, Any], tbl: str, schema: str = "public") -> dict[str, tuple[str, str | None]]:
    return {row[2]: (row[3], row[4]) for row in cat["indexes"] if row[:2] == (schema, tbl)}


# -- tables and columns ---------------------------------------------------------------------------------


async def test_create_table_columns_types_defaults_nullability_comments(repo: Repo) -> None:
    before = await catalog(repo)

    def change() -> None:
        with create(table("mig_posts", comment="the posts")):
            add("title", "string", null=False, default="untitled", comment="it's the title")
            add("slug", "string", size=40, collation="C")
            add("body", "text")
            add("views", "integer", default=0, null=False)
            add("price", "decimal", precision=10, scale=2)
            add("meta", "map", default={"a": 1})
            add("tags", ["string"], default=["x", "y"])
            add("uid", "binary_id")
            add("published", "boolean", default=False)
            add("at", "utc_datetime", default=fragment("now()"))
            add("at_usec", "utc_datetime_usec")
            add("span", "duration")
            add("double_views", "integer", generated="ALWAYS AS (views * 2) STORED")
            timestamps()

    cat = await up_and_down(repo, change)
    c = cols(cat, "mig_posts")
    assert list(c) == [
        "id",
        "title",
        "slug",
        "body",
        "views",
        "price",
        "meta",
        "tags",
        "uid",
        "published",
        "at",
        "at_usec",
        "span",
        "double_views",
        "inserted_at",
        "updated_at",
    ]
    assert c["id"]["type"] == "bigint" and c["id"]["default"] == "nextval('mig_posts_id_seq'::regclass)"
    assert c["title"]["type"] == "character varying" and c["title"]["length"] == 255
    assert c["title"]["default"] == "'untitled'::character varying" and c["title"]["nullable"] == "NO"
    assert c["slug"]["length"] == 40 and c["slug"]["collation"] == "C"
    assert c["body"]["type"] == "text" and c["body"]["nullable"] == "YES"
    assert c["views"]["default"] == "0" and c["views"]["nullable"] == "NO"
    assert (c["price"]["type"], c["price"]["precision"], c["price"]["scale"]) == ("numeric", 10, 2)
    assert c["meta"]["type"] == "jsonb" and c["meta"]["default"] == "'{\"a\": 1}'::jsonb"
    assert c["tags"]["type"] == "ARRAY" and c["tags"]["udt"] == "_varchar"
    assert c["tags"]["default"] == "ARRAY['x'::character varying, 'y'::character varying]"
    assert c["uid"]["type"] == "uuid"
    assert c["published"]["default"] == "false"
    assert c["at"]["type"] == "timestamp with time zone" and c["at"]["dt_precision"] == 0
    assert c["at"]["default"] == "now()"
    assert c["at_usec"]["type"] == "timestamp with time zone" and c["at_usec"]["dt_precision"] == 6
    assert c["span"]["type"] == "interval"
    assert c["double_views"]["generated"] == "ALWAYS" and c["double_views"]["expression"] == "(views * 2)"
    assert c["inserted_at"]["nullable"] == "NO" and c["inserted_at"]["dt_precision"] == 0
    assert cons(cat, "mig_posts") == {"mig_posts_pkey": ("p", "PRIMARY KEY (id)", True, None)}
    assert [t[4] for t in cat["tables"] if t[1] == "mig_posts"] == ["the posts"]
    assert [row[2:] for row in cat["column_comments"]] == [("title", "it's the title")]

    # a row takes the defaults, and the NOT NULL column refuses NULL
    await repo.query("INSERT INTO mig_posts (inserted_at, updated_at) VALUES (now(), now())")
    row = (await repo.query("SELECT title, views, meta, tags, double_views FROM mig_posts")).rows[0]
    assert row == ("untitled", 0, {"a": 1}, ["x", "y"], 0)
    with pytest.raises(NotNullViolationError):
        await repo.query("INSERT INTO mig_posts (title, inserted_at, updated_at) VALUES (NULL, now(), now())")

    await down(repo, change, before)


async def test_primary_key_forms_identity_modifiers_and_options(repo: Repo) -> None:
    before = await catalog(repo)

    def change() -> None:
        create(
            table(
                "mig_uuid", primary_key={"name": "uuid", "type": "binary_id", "default": fragment("gen_random_uuid()")}
            )
        )
        with create(table("mig_ident", primary_key=False)):
            add("id", "identity", primary_key=True, start_value=100, increment=5)
            add("name", "text")
        with create(table("mig_pair", primary_key=False, modifiers="UNLOGGED")):
            add("a", "integer", primary_key=True)
            add("b", "integer", primary_key=True)
        with create(table("mig_parted", primary_key=False, options="PARTITION BY RANGE (day)")):
            add("day", "date")

    cat = await up_and_down(repo, change)
    assert cols(cat, "mig_uuid")["uuid"]["type"] == "uuid"
    assert cols(cat, "mig_uuid")["uuid"]["default"] == "gen_random_uuid()"
    assert cons(cat, "mig_uuid")["mig_uuid_pkey"][1] == "PRIMARY KEY (uuid)"
    assert cols(cat, "mig_ident")["id"]["identity"] == "YES"
    await repo.query("INSERT INTO mig_ident (name) VALUES ('a'), ('b')")
    assert (await repo.query("SELECT id FROM mig_ident ORDER BY id")).rows == [(100,), (105,)]
    assert cons(cat, "mig_pair")["mig_pair_pkey"][1] == "PRIMARY KEY (a, b)"
    kinds = {t[1]: (t[2], t[3]) for t in cat["tables"]}
    assert kinds["mig_pair"] == ("r", "u")  # unlogged
    assert kinds["mig_parted"] == ("p", "p")  # partitioned
    await down(repo, change, before)


async def test_create_if_not_exists_twice_and_drop_if_exists_of_nothing(repo: Repo) -> None:
    before = await catalog(repo)

    def change() -> None:
        with create_if_not_exists(table("mig_once")):
            add("x", "integer")
        create_if_not_exists(index("mig_once", ["x"]))

    await apply(repo, collect(change))
    cat = await catalog(repo)
    await apply(repo, collect(change))  # no error the second time
    assert await catalog(repo) == cat
    assert "mig_once_x_index" in idx(cat, "mig_once")
    await down(repo, change, before)
    await apply(repo, reverse(collect(change)))  # drop_if_exists of what is gone: no error
    assert await catalog(repo) == before


# -- references -----------------------------------------------------------------------------------------


async def test_references_on_delete_on_update_composite_validate_match(repo: Repo) -> None:
    def setup() -> None:
        with create(table("mig_users")):
            add("group_id", "integer", null=False)
        create(unique_index("mig_users", ["id", "group_id"]))

    await apply(repo, collect(setup))
    before = await catalog(repo)

    def change() -> None:
        with create(table("mig_posts")):
            add("author_id", references("mig_users", on_delete="delete_all", on_update="update_all"))
            add("editor_id", references("mig_users", on_delete="nilify_all", on_update="restrict", match="full"))
            add("reviewer_id", references("mig_users", on_delete="restrict", name="mig_reviewer_fk"))
            add("group_id", "integer", default=0)
            add("owner_id", references("mig_users", with_={"group_id": "group_id"}, on_delete=("nilify", ["owner_id"])))
        with alter(table("mig_posts")):  # NOT VALID only shows on a table that exists (CREATE TABLE validates)
            add("checker_id", references("mig_users", validate=False))

    cat = await up_and_down(repo, change)
    fks = cons(cat, "mig_posts")
    assert fks["mig_posts_author_id_fkey"][:3] == (
        "f",
        "FOREIGN KEY (author_id) REFERENCES mig_users(id) ON UPDATE CASCADE ON DELETE CASCADE",
        True,
    )
    assert fks["mig_posts_editor_id_fkey"][1] == (
        "FOREIGN KEY (editor_id) REFERENCES mig_users(id) MATCH FULL ON UPDATE RESTRICT ON DELETE SET NULL"
    )
    assert fks["mig_reviewer_fk"][1] == "FOREIGN KEY (reviewer_id) REFERENCES mig_users(id) ON DELETE RESTRICT"
    assert fks["mig_posts_checker_id_fkey"][1:3] == (
        "FOREIGN KEY (checker_id) REFERENCES mig_users(id) NOT VALID",
        False,
    )
    assert fks["mig_posts_owner_id_fkey"][1] == (
        "FOREIGN KEY (owner_id, group_id) REFERENCES mig_users(id, group_id) ON DELETE SET NULL (owner_id)"
    )
    assert cols(cat, "mig_posts")["author_id"]["type"] == "bigint"

    # the actions do what they say
    await repo.query("INSERT INTO mig_users (id, group_id) VALUES (1, 7), (2, 7)")
    await repo.query("INSERT INTO mig_posts (author_id, editor_id, owner_id, group_id) VALUES (1, 2, 2, 7)")
    with pytest.raises(ForeignKeyViolationError):
        await repo.query("INSERT INTO mig_posts (author_id) VALUES (99)")
    await repo.query("DELETE FROM mig_users WHERE id = 2")
    assert (await repo.query("SELECT editor_id, owner_id, group_id FROM mig_posts")).rows == [(None, None, 7)]
    await repo.query("UPDATE mig_users SET id = 10 WHERE id = 1")
    assert (await repo.query("SELECT author_id FROM mig_posts")).rows == [(10,)]
    await repo.query("DELETE FROM mig_users WHERE id = 10")
    assert (await repo.query("SELECT count(*) FROM mig_posts")).rows == [(0,)]

    await down(repo, change, before)


async def test_alter_add_modify_remove_and_back(repo: Repo) -> None:
    def setup() -> None:
        with create(table("mig_users")):
            add("name", "text")
        with create(table("mig_posts")):
            add("title", "string", null=True)
            add("views", "integer", default=0)
            add("user_id", references("mig_users"))

    await apply(repo, collect(setup))
    before = await catalog(repo)

    def change() -> None:
        with alter(table("mig_posts", comment="altered")):
            add("summary", "text", default="", comment="short")
            add("editor_id", references("mig_users", on_delete="nilify_all"))
            modify("title", "text", null=False, from_=("string", {"null": True}))
            modify("user_id", references("mig_users", on_delete="delete_all"), from_=references("mig_users"))
            remove("views", "integer", default=0)

    cat = await up_and_down(repo, change)
    c = cols(cat, "mig_posts")
    assert "views" not in c
    assert c["summary"]["default"] == "''::text"
    assert (c["title"]["type"], c["title"]["nullable"]) == ("text", "NO")
    fks = cons(cat, "mig_posts")
    assert fks["mig_posts_user_id_fkey"][1] == "FOREIGN KEY (user_id) REFERENCES mig_users(id) ON DELETE CASCADE"
    assert fks["mig_posts_editor_id_fkey"][1] == "FOREIGN KEY (editor_id) REFERENCES mig_users(id) ON DELETE SET NULL"
    assert [t[4] for t in cat["tables"] if t[1] == "mig_posts"] == ["altered"]
    assert [row[2:] for row in cat["column_comments"]] == [("summary", "short")]

    # down: the column is back with its type and default, the title nullable varchar(255) again, the
    # foreign key without ON DELETE; the table comment stays (Ecto does not reverse comments)
    await apply(repo, reverse(collect(change)))
    after = await catalog(repo)
    assert by_name({**after, "tables": []}) == by_name({**before, "tables": []})
    assert [t[4] for t in after["tables"] if t[1] == "mig_posts"] == ["altered"]


async def test_add_if_not_exists_and_remove_if_exists(repo: Repo) -> None:
    await apply(repo, collect(lambda: create(table("mig_t"))))

    def up() -> None:
        with alter(table("mig_t")):
            add_if_not_exists("x", "integer")
            add_if_not_exists("ref_id", references("mig_t"))

    await apply(repo, collect(up))
    cat = await catalog(repo)
    assert set(cols(cat, "mig_t")) == {"id", "x", "ref_id"}
    assert "mig_t_ref_id_fkey" in cons(cat, "mig_t")

    def again() -> None:
        with alter(table("mig_t")):
            add_if_not_exists("x", "integer")

    await apply(repo, collect(again))  # the column exists: no error, nothing changes
    assert await catalog(repo) == cat
    # as in Ecto, the foreign key of add_if_not_exists has no IF NOT EXISTS (PostgreSQL has none)
    with pytest.raises(DatabaseError, match="already exists"):
        await apply(repo, collect(up))

    def down_fn() -> None:
        with alter(table("mig_t")):
            remove_if_exists("x")
            remove_if_exists("ref_id", references("mig_t"))
            remove_if_exists("never_there")

    await apply(repo, collect(down_fn))
    await apply(repo, collect(down_fn))  # nothing left to remove: no error
    cat = await catalog(repo)
    assert set(cols(cat, "mig_t")) == {"id"}
    assert set(cons(cat, "mig_t")) == {"mig_t_pkey"}


# -- indexes ------------------------------------------------------------------------------------------


async def test_indexes_unique_where_using_include_nulls_comment_expression(repo: Repo) -> None:
    def setup() -> None:
        with create(table("mig_posts")):
            add("title", "text")
            add("slug", "text")
            add("code", "text")
            add("tags", ["text"])
            add("views", "integer")
            add("published", "boolean")

    await apply(repo, collect(setup))
    before = await catalog(repo)

    def change() -> None:
        create(index("mig_posts", ["title"]))
        create(unique_index("mig_posts", ["slug"], where="published", comment="published slugs"))
        create(index("mig_posts", ["tags"], using="gin"))
        create(index("mig_posts", ["views"], include=["title"], name="mig_posts_covering"))
        create(unique_index("mig_posts", ["code"], nulls_distinct=False))
        create(index("mig_posts", ["lower(title)", ("desc", "views")]))
        create(index("mig_posts", ["slug"], options="fillfactor = 70", name="mig_posts_ff"))

    cat = await up_and_down(repo, change)
    got = idx(cat, "mig_posts")
    assert got["mig_posts_title_index"][0].endswith("USING btree (title)")
    assert got["mig_posts_slug_index"] == (
        "CREATE UNIQUE INDEX mig_posts_slug_index ON public.mig_posts USING btree (slug) WHERE published",
        "published slugs",
    )
    assert got["mig_posts_tags_index"][0].endswith("USING gin (tags)")
    assert got["mig_posts_covering"][0].endswith("USING btree (views) INCLUDE (title)")
    assert got["mig_posts_code_index"][0].endswith("USING btree (code) NULLS NOT DISTINCT")
    assert got["mig_posts_lower_title_views_index"][0].endswith("USING btree (lower(title), views DESC)")
    assert got["mig_posts_ff"][0].endswith("USING btree (slug) WITH (fillfactor='70')")

    await repo.query("INSERT INTO mig_posts (slug, published, code) VALUES ('a', true, NULL), ('a', false, 'x')")
    with pytest.raises(UniqueViolationError):  # the partial unique index refuses a second published 'a'
        await repo.query("INSERT INTO mig_posts (slug, published, code) VALUES ('a', true, 'y')")
    with pytest.raises(UniqueViolationError):  # NULLS NOT DISTINCT: a second NULL code is a duplicate
        await repo.query("INSERT INTO mig_posts (slug, published, code) VALUES ('b', true, NULL)")
    await repo.query("DELETE FROM mig_posts")

    await down(repo, change, before)


async def test_index_concurrently_and_drop_and_rename(repo: Repo) -> None:
    await apply(repo, collect(lambda: add_table_with("mig_posts", "title")))
    before = await catalog(repo)

    def change() -> None:
        create(index("mig_posts", ["title"], concurrently=True))
        rename(index("mig_posts", ["title"]), to="mig_posts_headline_index")

    cat = await up_and_down(repo, change)
    assert set(idx(cat, "mig_posts")) == {"mig_posts_pkey", "mig_posts_headline_index"}
    await down(repo, change, before)

    def drop_it() -> None:
        create(index("mig_posts", ["title"]))
        drop(index("mig_posts", ["title"]))
        drop_if_exists(index("mig_posts", ["title"], concurrently=True))

    await apply(repo, collect(drop_it))
    assert await catalog(repo) == before


def add_table_with(name: str, column: str) -> None:
    with create(table(name)):
        add(column, "text")


# -- constraints ----------------------------------------------------------------------------------------


async def test_check_and_exclusion_constraints(repo: Repo) -> None:
    def setup() -> None:
        with create(table("mig_products")):
            add("price", "integer")
        with create(table("mig_bookings")):
            add("room", "integer")
            add("during", "tsrange")

    await apply(repo, collect(setup))
    before = await catalog(repo)

    def change() -> None:
        create(constraint("mig_products", "price_positive", check="price > 0", comment="must be positive"))
        create(constraint("mig_products", "price_cheap", check="price < 1000", validate=False))
        create(constraint("mig_bookings", "no_overlap", exclude="gist (during WITH &&)"))

    cat = await up_and_down(repo, change)
    assert cons(cat, "mig_products")["price_positive"] == ("c", "CHECK ((price > 0))", True, "must be positive")
    assert cons(cat, "mig_products")["price_cheap"] == ("c", "CHECK ((price < 1000)) NOT VALID", False, None)
    assert cons(cat, "mig_bookings")["no_overlap"][:2] == ("x", "EXCLUDE USING gist (during WITH &&)")
    with pytest.raises(CheckViolationError):
        await repo.query("INSERT INTO mig_products (price) VALUES (-1)")
    await repo.query("INSERT INTO mig_bookings (room, during) VALUES (1, '[2024-01-01, 2024-01-03)')")
    with pytest.raises(ExclusionViolationError):
        await repo.query("INSERT INTO mig_bookings (room, during) VALUES (2, '[2024-01-02, 2024-01-04)')")
    await repo.query("DELETE FROM mig_bookings")
    await down(repo, change, before)

    def drop_them() -> None:
        create(constraint("mig_products", "price_positive", check="price > 0"))
        drop(constraint("mig_products", "price_positive"))
        drop_if_exists(constraint("mig_products", "price_positive"))

    await apply(repo, collect(drop_them))
    assert await catalog(repo) == before


# -- renames and drops ---------------------------------------------------------------------------------------


async def test_rename_table_and_column(repo: Repo) -> None:
    await apply(repo, collect(lambda: add_table_with("mig_posts", "title")))
    before = await catalog(repo)

    def change() -> None:
        rename(table("mig_posts"), to=table("mig_articles"))
        rename(table("mig_articles"), "title", to="headline")

    cat = await up_and_down(repo, change)
    assert [t[1] for t in cat["tables"]] == ["mig_articles"]
    assert list(cols(cat, "mig_articles")) == ["id", "headline"]
    await down(repo, change, before)


async def test_drop_table_cascade_and_up_down_functions(repo: Repo) -> None:
    before = await catalog(repo)

    def up() -> None:
        create(table("mig_users"))
        with create(table("mig_posts")):
            add("user_id", references("mig_users"))

    def down_fn() -> None:
        drop(table("mig_users"), mode="cascade")
        drop_if_exists(table("mig_posts"))
        drop_if_exists(table("mig_never"))

    await apply(repo, collect(up))
    cat = await catalog(repo)
    assert "mig_posts_user_id_fkey" in cons(cat, "mig_posts")
    await apply(repo, collect(down_fn)[:1])
    cat = await catalog(repo)
    assert [t[1] for t in cat["tables"]] == ["mig_posts"]
    assert set(cons(cat, "mig_posts")) == {"mig_posts_pkey"}  # the cascade dropped the foreign key
    await apply(repo, collect(down_fn)[1:])
    assert await catalog(repo) == before


# -- prefixes -----------------------------------------------------------------------------------------


async def test_migrator_prefix_and_own_prefixes(repo: Repo) -> None:
    before = await catalog(repo)

    def change() -> None:
        create(table("mig_users"))
        with create(table("mig_posts", comment="tenant posts")):
            add("user_id", references("mig_users", on_delete="delete_all"), comment="author")
            add("title", "text")
        create(index("mig_posts", ["title"], comment="by title"))
        create(constraint("mig_posts", "title_present", check="title <> ''"))
        with alter(table("mig_posts")):
            add("body", "text")
        rename(table("mig_posts"), "body", to="text")
        rename(index("mig_posts", ["title"]), to="mig_posts_by_title")
        create(table("mig_public", prefix="public"))
        with create(table("mig_links")):
            add("public_id", references("mig_public", prefix="public"))

    cat = await up_and_down(repo, change, prefix=TENANT)
    assert [(t[0], t[1]) for t in cat["tables"]] == [
        ("mig_tenant", "mig_links"),
        ("mig_tenant", "mig_posts"),
        ("mig_tenant", "mig_users"),
        ("public", "mig_public"),
    ]
    assert list(cols(cat, "mig_posts", TENANT)) == ["id", "user_id", "title", "text"]
    fks = cons(cat, "mig_posts", TENANT)
    assert fks["mig_posts_user_id_fkey"][1] == (
        "FOREIGN KEY (user_id) REFERENCES mig_tenant.mig_users(id) ON DELETE CASCADE"
    )
    assert fks["title_present"][1] == "CHECK ((title <> ''::text))"
    assert cons(cat, "mig_links", TENANT)["mig_links_public_id_fkey"][1] == (
        "FOREIGN KEY (public_id) REFERENCES mig_public(id)"
    )
    assert idx(cat, "mig_posts", TENANT)["mig_posts_by_title"][1] == "by title"
    assert [t[4] for t in cat["tables"] if t[1] == "mig_posts"] == ["tenant posts"]
    assert [row for row in cat["column_comments"]] == [("mig_tenant", "mig_posts", "user_id", "author")]
    await down(repo, change, before, prefix=TENANT)


# -- execute and flush ----------------------------------------------------------------------------------


async def test_execute_sql_and_functions_with_flush(repo: Repo) -> None:
    before = await catalog(repo)
    seen: list[Any] = []

    async def fill(r: Any) -> None:
        await r.query("INSERT INTO mig_notes (body) VALUES ('from a function')")
        seen.append((await r.query("SELECT count(*) FROM mig_notes")).rows[0][0])

    async def nothing(r: Any) -> None:
        seen.append("down")

    def change() -> None:
        execute("CREATE TABLE mig_notes (id serial PRIMARY KEY, body text)", "DROP TABLE mig_notes")
        flush()
        execute(["INSERT INTO mig_notes (body) VALUES ('a')", "INSERT INTO mig_notes (body) VALUES ('b')"], "")
        execute(fill, nothing)

    commands = collect(change)
    await apply(repo, commands)
    assert seen == [3]
    cat = await catalog(repo)
    assert [t[1] for t in cat["tables"]] == ["mig_notes"]

    # the reversal has no flush() (it raises in change() rolled back); without it the rest reverses
    no_flush = [c for c in commands if not isinstance(c, Flush)]
    await apply(repo, reverse(no_flush))
    assert seen == [3, "down"]
    assert await catalog(repo) == before


async def test_plain_sql_up_and_down(repo: Repo) -> None:
    before = await catalog(repo)

    def up() -> list[str]:
        return ["CREATE TABLE mig_plain (id int)", "CREATE INDEX mig_plain_id ON mig_plain (id)"]

    def down_fn() -> str:
        return "DROP TABLE mig_plain"

    await apply(repo, collect(up))
    assert set(idx(await catalog(repo), "mig_plain")) == {"mig_plain_id"}
    await apply(repo, collect(down_fn))
    assert await catalog(repo) == before


async def test_modify_type_of_a_column_with_rows(repo: Repo) -> None:
    def setup() -> None:
        with create(table("mig_nums")):
            add("n", "integer", null=False)
            add("label", "string", size=10)

    await apply(repo, collect(setup))
    await repo.query("INSERT INTO mig_nums (n, label) VALUES (1, 'one')")
    before = await catalog(repo)

    def change() -> None:
        with alter(table("mig_nums")):
            modify("n", "bigint", from_="integer")
            modify("label", "string", size=40, collation="C", from_=("string", {"size": 10}))

    cat = await up_and_down(repo, change)
    c = cols(cat, "mig_nums")
    assert c["n"]["type"] == "bigint" and c["n"]["nullable"] == "NO"
    assert c["label"]["length"] == 40 and c["label"]["collation"] == "C"
    assert (await repo.query("SELECT n, label FROM mig_nums")).rows == [(1, "one")]
    await apply(repo, reverse(collect(change)))
    after = cols(await catalog(repo), "mig_nums")
    assert after["n"] == cols(before, "mig_nums")["n"]
    assert after["label"]["length"] == 10


async def test_set_default_actions_only_index_on_partitioned_table_and_execute_file(repo: Repo, tmp_path: Path) -> None:
    (tmp_path / "up.sql").write_text("CREATE TABLE mig_from_file (id int);")
    (tmp_path / "down.sql").write_text("DROP TABLE mig_from_file;")
    await apply(repo, collect(lambda: create(table("mig_users"))))
    await repo.query("INSERT INTO mig_users (id) VALUES (1), (2)")
    before = await catalog(repo)

    def change() -> None:
        with create(table("mig_posts")):
            add("author_id", references("mig_users", on_delete="default_all", on_update="nilify_all"), default=1)
            add("editor_id", references("mig_users", on_delete=("default", ["editor_id"])), default=1)
        with create(table("mig_events", primary_key=False, options="PARTITION BY RANGE (day)")):
            add("day", "date")
        create(index("mig_events", ["day"], only=True))
        execute_file(tmp_path / "up.sql", tmp_path / "down.sql")

    cat = await up_and_down(repo, change)
    fks = cons(cat, "mig_posts")
    assert fks["mig_posts_author_id_fkey"][1] == (
        "FOREIGN KEY (author_id) REFERENCES mig_users(id) ON UPDATE SET NULL ON DELETE SET DEFAULT"
    )
    assert fks["mig_posts_editor_id_fkey"][1] == (
        "FOREIGN KEY (editor_id) REFERENCES mig_users(id) ON DELETE SET DEFAULT (editor_id)"
    )
    assert idx(cat, "mig_events")["mig_events_day_index"][0] == (
        "CREATE INDEX mig_events_day_index ON ONLY public.mig_events USING btree (day)"
    )
    assert "mig_from_file" in [t[1] for t in cat["tables"]]
    await repo.query("INSERT INTO mig_posts (author_id, editor_id) VALUES (2, 2)")
    await repo.query("DELETE FROM mig_users WHERE id = 2")
    assert (await repo.query("SELECT author_id, editor_id FROM mig_posts")).rows == [(1, 1)]
    await repo.query("DELETE FROM mig_posts")
    await down(repo, change, before)
