"""The migration DSL without a database: buffering, the SQL of every command, reversal, log lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.adapters.postgres._ddl import ddl_log, ddl_sql
from asyncecto.errors import ArgumentError, MigrationError
from asyncecto.migration import (
    add,
    add_if_not_exists,
    alter,
    collect,
    constraint,
    create,
    create_if_not_exists,
    direction,
    drop,
    drop_if_exists,
    execute,
    execute_file,
    flush,
    fragment,
    index,
    modify,
    prefix,
    references,
    remove,
    remove_if_exists,
    rename,
    repo,
    reverse,
    running,
    table,
    timestamps,
    unique_index,
)
from asyncecto.migration._dsl import (
    Add,
    AlterTable,
    ColumnOptions,
    Command,
    CreateIndex,
    CreateTable,
    DropIndex,
    DropTable,
    Execute,
    Flush,
    Modify,
    Remove,
    RenameColumn,
    RenameIndex,
    RenameTable,
)
from asyncecto.repo import build_config


def sql(fn: Callable[[], object], prefix: str | None = None) -> list[str]:
    return [s for c in collect(fn) for s in ddl_sql(c, prefix)]


def one(fn: Callable[[], object], prefix: str | None = None) -> str:
    statements = sql(fn, prefix)
    assert len(statements) == 1, statements
    return statements[0]


def down_sql(fn: Callable[[], object]) -> list[str]:
    return [s for c in reverse(collect(fn)) for s in ddl_sql(c, None)]


# -- buffering -----------------------------------------------------------------------------------------


def test_collect_returns_commands_in_order() -> None:
    def change() -> None:
        with create(table("posts")):
            add("title", "string")
        create(index("posts", ["title"]))
        execute("SELECT 1")
        flush()
        drop(table("old"))

    commands = collect(change)
    assert [type(c) for c in commands] == [CreateTable, CreateIndex, Execute, Flush, DropTable]
    first = commands[0]
    assert isinstance(first, CreateTable)
    assert [a.column for a in first.columns] == ["id", "title"]


def test_collect_turns_returned_sql_into_executes_after_buffered_commands() -> None:
    assert collect(lambda: "CREATE TABLE a (x int)") == [Execute("CREATE TABLE a (x int)")]
    assert collect(lambda: ["SELECT 1", "SELECT 2"]) == [Execute("SELECT 1"), Execute("SELECT 2")]

    def up() -> str:
        create(table("t"))
        return "SELECT 3"

    commands = collect(up)
    assert isinstance(commands[0], CreateTable)
    assert commands[1] == Execute("SELECT 3")


def test_collect_refuses_other_return_values_and_coroutines() -> None:
    with pytest.raises(MigrationError, match="expected it to return None, SQL text or a list of SQL texts, got: 42"):
        collect(lambda: 42)

    async def change() -> None:
        pass

    with pytest.raises(MigrationError, match="not coroutines"):
        collect(change)


def test_each_collect_has_a_fresh_buffer() -> None:
    def change() -> None:
        create(table("a"))

    assert len(collect(change)) == 1
    assert len(collect(change)) == 1


def test_commands_outside_a_migration_are_refused() -> None:
    with pytest.raises(MigrationError, match="outside of a migration"):
        create(table("posts"))


def test_nested_commands_are_refused() -> None:
    def nested_create() -> None:
        with create(table("a")):
            create(table("b"))

    def index_in_block() -> None:
        with alter(table("a")):
            create(index("a", ["x"]))

    def execute_in_block() -> None:
        with create(table("a")):
            execute("SELECT 1")

    for fn in (nested_create, index_in_block, execute_in_block):
        with pytest.raises(MigrationError, match=r"^cannot execute nested commands$"):
            collect(fn)


def test_column_commands_outside_a_block_are_refused() -> None:
    for fn in (lambda: add("x", "integer"), lambda: remove("x"), lambda: modify("x", "text"), timestamps):
        with pytest.raises(MigrationError, match=r"^cannot execute command outside of block$"):
            collect(fn)

    def after_block() -> None:
        with create(table("a")):
            pass
        add("x", "integer")

    with pytest.raises(MigrationError, match="outside of block"):
        collect(after_block)


def test_alter_without_with_is_refused() -> None:
    with pytest.raises(MigrationError, match="cannot alter table posts without a block"):
        collect(lambda: alter(table("posts")))


def test_create_block_takes_only_adds() -> None:
    def change() -> None:
        with create(table("a")):
            remove("x")

    with pytest.raises(MigrationError, match=r"cannot remove\('x'\) in create table a"):
        collect(change)


def test_an_error_inside_a_block_propagates_and_closes_it() -> None:
    def change() -> None:
        with create(table("a")):
            raise KeyError("boom")

    with pytest.raises(KeyError):
        collect(change)


# -- the migrator's context ----------------------------------------------------------------------------


def test_running_sets_direction_repo_and_prefix() -> None:
    marker = object()
    with running("down", marker, "tenant"):
        assert direction() == "down"
        assert repo() is marker
        assert prefix() == "tenant"
    with running("up", marker):
        assert direction() == "up"
        assert prefix() is None
    with pytest.raises(MigrationError, match=r"cannot call direction\(\): no migration is running"):
        direction()
    with pytest.raises(ArgumentError, match="expected direction 'up' or 'down'"), running("sideways", None):  # type: ignore[arg-type]
        pass


def test_an_object_prefix_must_match_the_migrator_prefix() -> None:
    with running("up", None, "tenant"):
        assert len(collect(lambda: create(table("a", prefix="tenant")))) == 1
        with pytest.raises(MigrationError, match="the prefix option 'other' does not match the migrator prefix"):
            collect(lambda: create(table("a", prefix="other")))
        with pytest.raises(MigrationError, match="does not match"):
            collect(lambda: create(index("a", ["x"], prefix="other")))


# -- create table -------------------------------------------------------------------------------------


def test_create_table_with_default_primary_key() -> None:
    assert one(lambda: create(table("posts"))) == 'CREATE TABLE "posts" ("id" bigserial, PRIMARY KEY ("id"))'


def test_create_table_primary_key_options() -> None:
    assert one(lambda: create(table("t", primary_key=False))) == 'CREATE TABLE "t" ()'
    assert (
        one(lambda: create(table("t", primary_key={"name": "uuid", "type": "binary_id"})))
        == 'CREATE TABLE "t" ("uuid" uuid, PRIMARY KEY ("uuid"))'
    )

    def composite() -> None:
        with create(table("t", primary_key=False)):
            add("a", "integer", primary_key=True)
            add("b", "integer", primary_key=True)

    assert one(composite) == 'CREATE TABLE "t" ("a" integer, "b" integer, PRIMARY KEY ("a", "b"))'

    def identity() -> None:
        with create(table("t", primary_key=False)):
            add("id", "identity", primary_key=True, start_value=100, increment=20)

    assert one(identity) == (
        'CREATE TABLE "t" ("id" bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 20), '
        'PRIMARY KEY ("id"))'
    )
    with pytest.raises(ArgumentError, match="primary_key must be True, False or a dict"):
        table("t", primary_key="id")  # type: ignore[arg-type]


def test_create_table_columns_types_and_options() -> None:
    def change() -> None:
        with create(table("posts")):
            add("title", "string", null=False, default="untitled")
            add("slug", "string", size=40, collation="C")
            add("body", "text", null=True)
            add("views", "integer", default=0)
            add("ratio", "float", default=0.5)
            add("public", "boolean", default=False)
            add("price", "decimal", precision=10, scale=2)
            add("meta", "map", default={"a": 1})
            add("tags", ["string"], default=["a", "b"])
            add("scores", ("array", "integer"), default=[1, 2])
            add("blob", "binary")
            add("uid", "binary_id")
            add("ref", "id")
            add("at", "utc_datetime", default=fragment("now()"))
            add("at_usec", "utc_datetime_usec")
            add("naive", "naive_datetime_usec", precision=3)
            add("t", "time")
            add("t_usec", "time_usec")
            add("d", "date", default=None)
            add("span", "duration", fields="HOUR TO MINUTE")
            add("bits", "bitstring")
            add("ci", "citext")
            add("total", "integer", generated="ALWAYS AS (views * 2) STORED")

    assert one(change) == (
        'CREATE TABLE "posts" ("id" bigserial, '
        "\"title\" varchar(255) DEFAULT 'untitled' NOT NULL, "
        '"slug" varchar(40) COLLATE "C", '
        '"body" text NULL, '
        '"views" integer DEFAULT 0, '
        '"ratio" float DEFAULT 0.5, '
        '"public" boolean DEFAULT false, '
        '"price" decimal(10,2), '
        '"meta" jsonb DEFAULT \'{"a":1}\', '
        "\"tags\" varchar(255)[] DEFAULT ARRAY['a','b']::varchar[], "
        '"scores" integer[] DEFAULT ARRAY[1,2]::integer[], '
        '"blob" bytea, '
        '"uid" uuid, '
        '"ref" integer, '
        '"at" timestamptz(0) DEFAULT now(), '
        '"at_usec" timestamptz, '
        '"naive" timestamp(3), '
        '"t" time(0), '
        '"t_usec" time, '
        '"d" date DEFAULT NULL, '
        '"span" interval HOUR TO MINUTE, '
        '"bits" varbit, '
        '"ci" citext, '
        '"total" integer GENERATED ALWAYS AS (views * 2) STORED, '
        'PRIMARY KEY ("id"))'
    )


def test_string_defaults_are_quoted() -> None:
    def change() -> None:
        with create(table("t", primary_key=False)):
            add("s", "text", default="it's")

    assert one(change) == "CREATE TABLE \"t\" (\"s\" text DEFAULT 'it''s')"


def test_create_table_if_not_exists_modifiers_options_and_prefix() -> None:
    def change() -> None:
        with create_if_not_exists(
            table("logs", prefix="archive", modifiers="UNLOGGED", options="WITH (fillfactor=70)")
        ):
            add("line", "text")

    assert one(change) == (
        'CREATE UNLOGGED TABLE IF NOT EXISTS "archive"."logs" ("id" bigserial, "line" text, PRIMARY KEY ("id")) '
        "WITH (fillfactor=70)"
    )


def test_migrator_prefix_applies_to_objects_without_one() -> None:
    def change() -> None:
        with create(table("posts")):
            add("author_id", references("users"))
        create(table("other", prefix="mine", primary_key=False))

    assert sql(change, "tenant") == [
        'CREATE TABLE "tenant"."posts" ("id" bigserial, "author_id" bigint, CONSTRAINT "posts_author_id_fkey" '
        'FOREIGN KEY ("author_id") REFERENCES "tenant"."users"("id"), PRIMARY KEY ("id"))',
        'CREATE TABLE "mine"."other" ()',
    ]


def test_comments_on_table_and_columns() -> None:
    def change() -> None:
        with create(table("posts", comment="the posts")):
            add("title", "string", comment="it's the title")
            add("body", "text")

    assert sql(change) == [
        'CREATE TABLE "posts" ("id" bigserial, "title" varchar(255), "body" text, PRIMARY KEY ("id"))',
        "COMMENT ON TABLE \"posts\" IS 'the posts'",
        "COMMENT ON COLUMN \"posts\".\"title\" IS 'it''s the title'",
    ]


def test_timestamps() -> None:
    def change() -> None:
        with create(table("t", primary_key=False)):
            timestamps()

    assert one(change) == 'CREATE TABLE "t" ("inserted_at" timestamp(0) NOT NULL, "updated_at" timestamp(0) NOT NULL)'

    def custom() -> None:
        with create(table("t", primary_key=False)):
            timestamps(type="utc_datetime_usec", inserted_at="created_at", updated_at=False, default=fragment("now()"))

    assert one(custom) == 'CREATE TABLE "t" ("created_at" timestamptz DEFAULT now() NOT NULL)'

    def nullable() -> None:
        with create(table("t", primary_key=False)):
            timestamps(null=True)

    assert one(nullable) == 'CREATE TABLE "t" ("inserted_at" timestamp(0) NULL, "updated_at" timestamp(0) NULL)'


def test_references_options() -> None:
    def change() -> None:
        with create(table("comments", primary_key=False)):
            add("post_id", references("posts", on_delete="delete_all", on_update="update_all"))
            add("user_id", references("users", on_delete="nilify_all", on_update="nilify_all", match="full"))
            add("a_id", references("a", on_delete="restrict", on_update="restrict", validate=False))
            add("b_id", references("b", on_delete="default_all", column="key", type="binary_id", name="b_fk"))
            add("group_id", "integer")
            add("c_id", references("c", with_={"group_id": "group_id"}, on_delete=("nilify", ["c_id"])))
            add("d_id", references("d", type="serial", prefix="other", on_delete=("default", ["d_id"])))

    assert one(change) == (
        'CREATE TABLE "comments" ('
        '"post_id" bigint, CONSTRAINT "comments_post_id_fkey" FOREIGN KEY ("post_id") REFERENCES "posts"("id") '
        "ON DELETE CASCADE ON UPDATE CASCADE, "
        '"user_id" bigint, CONSTRAINT "comments_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") '
        "MATCH FULL ON DELETE SET NULL ON UPDATE SET NULL, "
        '"a_id" bigint, CONSTRAINT "comments_a_id_fkey" FOREIGN KEY ("a_id") REFERENCES "a"("id") '
        "ON DELETE RESTRICT ON UPDATE RESTRICT NOT VALID, "
        '"b_id" uuid, CONSTRAINT "b_fk" FOREIGN KEY ("b_id") REFERENCES "b"("key") ON DELETE SET DEFAULT, '
        '"group_id" integer, '
        '"c_id" bigint, CONSTRAINT "comments_c_id_fkey" FOREIGN KEY ("c_id", "group_id") '
        'REFERENCES "c"("id", "group_id") ON DELETE SET NULL ("c_id"), '
        '"d_id" integer, CONSTRAINT "comments_d_id_fkey" FOREIGN KEY ("d_id") REFERENCES "other"."d"("id") '
        'ON DELETE SET DEFAULT ("d_id"))'
    )


def test_reference_errors() -> None:
    with pytest.raises(ArgumentError, match="unknown on_delete value: 'cascade'"):
        references("posts", on_delete="cascade")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="unknown on_delete value"):
        references("posts", on_delete=("nilify", "id"))
    with pytest.raises(ArgumentError, match="unknown on_update value: 'delete_all'"):
        references("posts", on_update="delete_all")  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="unknown match value"):
        references("posts", match="loose")  # type: ignore[arg-type]


def test_type_and_option_errors() -> None:
    def datetime_type() -> None:
        with create(table("t")):
            add("at", "datetime")

    with pytest.raises(ArgumentError, match='the "datetime" type in migrations is not supported, please use'):
        collect(datetime_type)

    def class_type() -> None:
        with create(table("t")):
            add("at", int)  # type: ignore[arg-type]

    with pytest.raises(ArgumentError, match=r"invalid migration type: <class 'int'>\. Expected one of"):
        collect(class_type)

    def scale_only() -> None:
        with create(table("t")):
            add("price", "decimal", scale=2)

    with pytest.raises(ArgumentError, match=r"^column price is missing precision option$"):
        collect(scale_only)

    def unknown_option() -> None:
        with create(table("t")):
            add("x", "integer", nullable=False)  # type: ignore[call-arg]

    with pytest.raises(ArgumentError, match="unknown option 'nullable' for column 'x'"):
        collect(unknown_option)

    def bad_default() -> None:
        with create(table("t")):
            add("x", "integer", default=object())

    with pytest.raises(ArgumentError, match="unknown default <object object"):
        sql(bad_default)

    def nul_default() -> None:
        with create(table("t")):
            add("x", "text", default="a\x00b")

    with pytest.raises(ArgumentError, match="cannot contain null bytes"):
        sql(nul_default)


# -- alter table --------------------------------------------------------------------------------------


def test_alter_table_changes() -> None:
    def change() -> None:
        with alter(table("posts", comment="new comment")):
            add("summary", "text", comment="short")
            add_if_not_exists("views", "integer", default=0)
            add("author_id", references("users"))
            add_if_not_exists("editor_id", references("users"))
            modify("title", "text", null=False, default="", from_="string")
            modify("slug", "string", size=80, collation="C")
            remove("old")
            remove("price", "decimal", precision=10, scale=2)
            remove("owner_id", references("users"))
            remove_if_exists("gone")
            remove_if_exists("gone_id", references("users"))

    assert sql(change) == [
        'ALTER TABLE "posts" ADD COLUMN "summary" text, '
        'ADD COLUMN IF NOT EXISTS "views" integer DEFAULT 0, '
        'ADD COLUMN "author_id" bigint, ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id") '
        'REFERENCES "users"("id"), '
        'ADD COLUMN IF NOT EXISTS "editor_id" bigint, ADD CONSTRAINT "posts_editor_id_fkey" FOREIGN KEY '
        '("editor_id") REFERENCES "users"("id"), '
        'ALTER COLUMN "title" TYPE text, ALTER COLUMN "title" SET NOT NULL, ALTER COLUMN "title" SET DEFAULT \'\', '
        'ALTER COLUMN "slug" TYPE varchar(80) COLLATE "C", '
        'DROP COLUMN "old", '
        'DROP COLUMN "price", '
        'DROP CONSTRAINT "posts_owner_id_fkey", DROP COLUMN "owner_id", '
        'DROP COLUMN IF EXISTS "gone", '
        'DROP CONSTRAINT IF EXISTS "posts_gone_id_fkey", DROP COLUMN IF EXISTS "gone_id"',
        "COMMENT ON TABLE \"posts\" IS 'new comment'",
        'COMMENT ON COLUMN "posts"."summary" IS \'short\'',
    ]


def test_modify_a_reference_drops_the_old_foreign_key() -> None:
    def change() -> None:
        with alter(table("comments")):
            modify(
                "post_id",
                references("posts", on_delete="delete_all"),
                null=False,
                from_=references("posts", on_delete="nothing"),
            )

    assert one(change) == (
        'ALTER TABLE "comments" DROP CONSTRAINT "comments_post_id_fkey", ALTER COLUMN "post_id" TYPE bigint, '
        'ADD CONSTRAINT "comments_post_id_fkey" FOREIGN KEY ("post_id") REFERENCES "posts"("id") ON DELETE CASCADE, '
        'ALTER COLUMN "post_id" SET NOT NULL'
    )


def test_alter_adds_a_primary_key_and_an_empty_alter_only_comments() -> None:
    def change() -> None:
        with alter(table("t")):
            add("code", "string", primary_key=True)

    assert one(change) == 'ALTER TABLE "t" ADD COLUMN "code" varchar(255), ADD PRIMARY KEY ("code")'

    def comment_only() -> None:
        with alter(table("t", comment="c")):
            pass

    assert sql(comment_only) == ["COMMENT ON TABLE \"t\" IS 'c'"]


# -- drop and rename ----------------------------------------------------------------------------------


def test_drops() -> None:
    def change() -> None:
        drop(table("posts"))
        drop_if_exists(table("posts", prefix="p"), mode="cascade")
        drop(index("posts", ["title"]))
        drop_if_exists(index("posts", ["title"], concurrently=True, prefix="p"), mode="cascade")
        drop(constraint("posts", "price_positive"))
        drop_if_exists(constraint("posts", "price_positive", prefix="p"), mode="cascade")

    assert sql(change) == [
        'DROP TABLE "posts"',
        'DROP TABLE IF EXISTS "p"."posts" CASCADE',
        'DROP INDEX "posts_title_index"',
        'DROP INDEX CONCURRENTLY IF EXISTS "p"."posts_title_index" CASCADE',
        'ALTER TABLE "posts" DROP CONSTRAINT "price_positive"',
        'ALTER TABLE "p"."posts" DROP CONSTRAINT IF EXISTS "price_positive" CASCADE',
    ]
    with pytest.raises(ArgumentError, match="expected mode 'restrict' or 'cascade'"):
        collect(lambda: drop(table("t"), mode="all"))  # type: ignore[arg-type]


def test_renames() -> None:
    def change() -> None:
        rename(table("posts", prefix="p"), to=table("articles"))
        rename(table("posts"), "title", to="headline")
        rename(index("posts", ["title"], prefix="p"), to="posts_headline_index")

    assert sql(change) == [
        'ALTER TABLE "p"."posts" RENAME TO "articles"',
        'ALTER TABLE "posts" RENAME "title" TO "headline"',
        'ALTER INDEX "p"."posts_title_index" RENAME TO "posts_headline_index"',
    ]
    with pytest.raises(ArgumentError, match="renaming keeps the table's prefix"):
        collect(lambda: rename(table("a"), to=table("b", prefix="x")))
    with pytest.raises(ArgumentError, match="cannot rename"):
        collect(lambda: rename(index("a", ["x"]), "col", to="y"))  # type: ignore[call-overload]


# -- indexes ------------------------------------------------------------------------------------------


def test_index_default_names() -> None:
    assert index("posts", ["title"]).name == "posts_title_index"
    assert index("posts", "title").name == "posts_title_index"
    assert index("posts", ["lower(title)", ("desc", "inserted_at")]).name == "posts_lower_title_inserted_at_index"
    # as Ecto: every non-word character becomes "_", trailing ones dropped
    assert index("public.posts", [fragment("(meta->>'k')")]).name == "public_posts__meta____k_index"
    assert unique_index("posts", ["slug"], name="by_slug").name == "by_slug"


def test_create_index_variants() -> None:
    def change() -> None:
        create(index("posts", ["title"]))
        create(unique_index("posts", ["slug", "lower(title)"], prefix="p", comment="unique slugs"))
        create_if_not_exists(index("posts", [("desc_nulls_last", "views"), fragment("(meta->>'k')")], using="btree"))
        create(index("posts", ["body"], using="gin", options="fastupdate = off", name="posts_body_gin"))
        create(
            index(
                "posts",
                ["author_id"],
                concurrently=True,
                include=["title", "views"],
                where="published",
                only=True,
            )
        )
        create(unique_index("posts", ["code"], nulls_distinct=False))
        create(unique_index("posts", ["code2"], nulls_distinct=True))

    assert sql(change) == [
        'CREATE INDEX "posts_title_index" ON "posts" ("title")',
        'CREATE UNIQUE INDEX "posts_slug_lower_title_index" ON "p"."posts" ("slug", lower(title))',
        'COMMENT ON INDEX "p"."posts_slug_lower_title_index" IS \'unique slugs\'',
        'CREATE INDEX IF NOT EXISTS "posts_views__meta____k_index" ON "posts" USING btree '
        "(\"views\" DESC NULLS LAST, (meta->>'k'))",
        'CREATE INDEX "posts_body_gin" ON "posts" USING gin ("body") WITH (fastupdate = off)',
        'CREATE INDEX CONCURRENTLY "posts_author_id_index" ON ONLY "posts" ("author_id") INCLUDE ("title", "views") '
        "WHERE published",
        'CREATE UNIQUE INDEX "posts_code_index" ON "posts" ("code") NULLS NOT DISTINCT',
        'CREATE UNIQUE INDEX "posts_code2_index" ON "posts" ("code2") NULLS DISTINCT',
    ]


def test_index_errors() -> None:
    with pytest.raises(ArgumentError, match="the `nulls_distinct` option can only be used with unique indexes"):
        index("posts", ["code"], nulls_distinct=False)
    with pytest.raises(ArgumentError, match="cannot index no columns"):
        index("posts", [])
    with pytest.raises(ArgumentError, match="expected an index column"):
        index("posts", [("sideways", "x")])


# -- constraints and execute ---------------------------------------------------------------------------


def test_constraints() -> None:
    def change() -> None:
        create(constraint("products", "price_positive", check="price > 0", comment="must be positive"))
        create(constraint("products", "cheap", check="price < 100", validate=False, prefix="p"))
        create(constraint("rooms", "no_overlap", exclude="gist (room WITH =, during WITH &&)"))

    assert sql(change) == [
        'ALTER TABLE "products" ADD CONSTRAINT "price_positive" CHECK (price > 0)',
        'COMMENT ON CONSTRAINT "price_positive" ON "products" IS \'must be positive\'',
        'ALTER TABLE "p"."products" ADD CONSTRAINT "cheap" CHECK (price < 100) NOT VALID',
        'ALTER TABLE "rooms" ADD CONSTRAINT "no_overlap" EXCLUDE USING gist (room WITH =, during WITH &&)',
    ]
    with pytest.raises(ArgumentError, match=r"^a constraint must have either a check or exclude option$"):
        collect(lambda: create(constraint("t", "c")))
    with pytest.raises(ArgumentError, match=r"^a constraint must not have both check and exclude options$"):
        collect(lambda: create(constraint("t", "c", check="x > 0", exclude="gist (x WITH =)")))
    with pytest.raises(ArgumentError, match="cannot create_if_not_exists"):
        collect(lambda: create_if_not_exists(constraint("t", "c", check="x")))  # type: ignore[call-overload]


def test_execute_file_reads_the_sql_now(tmp_path: Path) -> None:
    (tmp_path / "up.sql").write_text("CREATE TABLE a (x int);\n")
    (tmp_path / "down.sql").write_text("DROP TABLE a;\n")

    def change() -> None:
        execute_file(tmp_path / "up.sql", tmp_path / "down.sql")
        execute_file(str(tmp_path / "up.sql"))

    commands = collect(change)
    assert commands == [
        Execute("CREATE TABLE a (x int);\n", "DROP TABLE a;\n"),
        Execute("CREATE TABLE a (x int);\n"),
    ]
    assert reverse(commands[:1]) == [Execute("DROP TABLE a;\n", "CREATE TABLE a (x int);\n")]
    with pytest.raises(FileNotFoundError):
        collect(lambda: execute_file(tmp_path / "missing.sql"))


def test_execute_and_flush_sql() -> None:
    async def data(r: object) -> None:
        pass

    def up() -> None:
        execute("SELECT 1")
        execute(["SELECT 2", "SELECT 3"], "")
        execute(data)
        flush()

    commands = collect(up)
    assert commands == [Execute("SELECT 1"), Execute(["SELECT 2", "SELECT 3"], ""), Execute(data), Flush()]
    assert ddl_sql(commands[0]) == ["SELECT 1"]
    assert ddl_sql(commands[1]) == ["SELECT 2", "SELECT 3"]
    assert ddl_sql(Execute("  ")) == []
    assert ddl_sql(commands[3]) == []
    with pytest.raises(ArgumentError, match="the migrator runs a function itself"):
        ddl_sql(commands[2])
    with pytest.raises(ArgumentError, match="expected SQL text"):
        collect(lambda: execute(42))  # type: ignore[arg-type]


# -- reversal -----------------------------------------------------------------------------------------


def test_reverse_tables_indexes_constraints_renames_and_execute() -> None:
    def change() -> None:
        with create(table("posts")):
            add("title", "string")
        create_if_not_exists(table("tags"))
        create(index("posts", ["title"]))
        create_if_not_exists(index("posts", ["slug"]))
        drop(index("posts", ["old"]))
        drop_if_exists(index("posts", ["older"]))
        create(constraint("posts", "c", check="id > 0"))
        rename(table("posts"), to=table("articles"))
        rename(table("articles"), "title", to="headline")
        rename(index("articles", ["title"]), to="articles_headline_index")
        execute("CREATE EXTENSION x", "DROP EXTENSION x")

    assert down_sql(change) == [
        "DROP EXTENSION x",
        'ALTER INDEX "articles_headline_index" RENAME TO "articles_title_index"',
        'ALTER TABLE "articles" RENAME "headline" TO "title"',
        'ALTER TABLE "articles" RENAME TO "posts"',
        'ALTER TABLE "posts" DROP CONSTRAINT "c"',
        'CREATE INDEX IF NOT EXISTS "posts_older_index" ON "posts" ("older")',
        'CREATE INDEX "posts_old_index" ON "posts" ("old")',
        'DROP INDEX IF EXISTS "posts_slug_index"',
        'DROP INDEX "posts_title_index"',
        'DROP TABLE IF EXISTS "tags"',
        'DROP TABLE "posts"',
    ]


def test_reversing_twice_gives_back_the_commands() -> None:
    def change() -> None:
        rename(table("a", prefix="p"), to=table("b"))
        rename(index("a", ["x"]), to="y")
        execute("up", "down")
        with alter(table("a")):
            add("x", "integer")
            modify("y", "text", from_=("string", {"null": True}), null=False)

    commands = collect(change)
    twice = reverse(reverse(commands))
    assert [ddl_sql(c) for c in twice] == [ddl_sql(c) for c in commands]


def test_reverse_alter() -> None:
    def change() -> None:
        with alter(table("posts")):
            add("summary", "text", default="")
            add("author_id", references("users"))
            remove("views", "integer", default=0)
            modify("title", "text", from_="string")
            modify("body", "text", null=False, from_=("string", {"null": True, "size": 100}))

    commands = reverse(collect(change))
    assert commands == [
        AlterTable(
            table=table("posts"),
            changes=(
                Modify(
                    column="body",
                    type="string",
                    opts=ColumnOptions(null=True, size=100),
                    from_=("text", ColumnOptions(null=False)),
                ),
                Modify(column="title", type="string", from_=("text", None)),
                Add(column="views", type="integer", opts=ColumnOptions(default=0)),
                Remove(column="author_id", type=references("users")),
                Remove(column="summary", type="text"),
            ),
        )
    ]
    assert [s for c in commands for s in ddl_sql(c)] == [
        'ALTER TABLE "posts" ALTER COLUMN "body" TYPE varchar(100), ALTER COLUMN "body" DROP NOT NULL, '
        'ALTER COLUMN "title" TYPE varchar(255), '
        'ADD COLUMN "views" integer DEFAULT 0, '
        'DROP CONSTRAINT "posts_author_id_fkey", DROP COLUMN "author_id", '
        'DROP COLUMN "summary"'
    ]


SUFFIX = "You will need to explicitly define up() and down() in your migration"


@pytest.mark.parametrize(
    ("fn", "text", "hint"),
    [
        (lambda: drop(table("posts")), "drop table posts", None),
        (lambda: drop_if_exists(table("posts")), "drop table if exists posts", None),
        (lambda: drop(constraint("posts", "c")), "drop constraint c from table posts", None),
        (lambda: execute("SELECT 1"), 'execute "SELECT 1"', "give execute() its down side"),
        (lambda: execute(["A", "B"]), 'execute ["A", "B"]', None),
    ],
)
def test_irreversible_commands(fn: Callable[[], object], text: str, hint: str | None) -> None:
    with pytest.raises(MigrationError) as info:
        reverse(collect(fn))
    message = str(info.value)
    assert message.startswith(f"cannot reverse migration command: {text}. {SUFFIX}")
    if hint:
        assert hint in message


def _alter_with(change: Callable[[], None]) -> Callable[[], None]:
    def fn() -> None:
        with alter(table("posts")):
            add("fine", "integer")
            change()

    return fn


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        (lambda: remove("title"), "remove('title') needs the column's type"),
        (lambda: modify("title", "text"), "modify('title') needs from_="),
        (lambda: add_if_not_exists("title", "text"), "add_if_not_exists('title') cannot be reversed"),
        (lambda: remove_if_exists("title"), "remove_if_exists('title') cannot be reversed"),
    ],
)
def test_irreversible_column_changes(change: Callable[[], None], hint: str) -> None:
    with pytest.raises(MigrationError) as info:
        reverse(collect(_alter_with(change)))
    assert str(info.value) == f"cannot reverse migration command: alter table posts. {SUFFIX}\n{hint}" or (
        str(info.value).startswith(f"cannot reverse migration command: alter table posts. {SUFFIX}\n{hint}")
    )


def test_flush_in_a_reversed_change_is_refused() -> None:
    with pytest.raises(
        MigrationError, match=r"calling flush\(\) inside change\(\) when doing rollback is not supported"
    ):
        reverse(collect(flush))


# -- log lines ----------------------------------------------------------------------------------------


def test_log_lines() -> None:
    async def data(r: object) -> None:
        pass

    def change() -> None:
        create(table("posts"))
        create_if_not_exists(table("logs", modifiers="UNLOGGED", prefix="archive"))
        with alter(table("posts")):
            add("x", "integer")
        drop(table("posts"), mode="cascade")
        drop_if_exists(table("x"))
        create(index("posts", ["title"]))
        create_if_not_exists(index("posts", ["slug"], prefix="p"))
        drop(index("posts", ["title"]))
        drop_if_exists(index("posts", ["title"]), mode="cascade")
        rename(index("posts", ["title"]), to="t_index")
        rename(table("posts"), to=table("articles"))
        rename(table("posts"), "title", to="headline")
        create(constraint("posts", "c", check="x > 0"))
        create(constraint("rooms", "e", exclude="gist (r WITH =)"))
        drop(constraint("posts", "c"))
        drop_if_exists(constraint("posts", "c"))
        execute('SELECT "x"\n')
        execute(data)
        flush()

    assert [ddl_log(c) for c in collect(change)] == [
        "create table posts",
        "create UNLOGGED table if not exists archive.logs",
        "alter table posts",
        "drop table posts cascade",
        "drop table if exists x",
        "create index posts_title_index",
        "create index if not exists p.posts_slug_index",
        "drop index posts_title_index",
        "drop index if exists posts_title_index cascade",
        "rename index posts_title_index to t_index",
        "rename table posts to articles",
        "rename column title to headline on table posts",
        "create check constraint c on table posts",
        "create exclude constraint e on table rooms",
        "drop constraint c from table posts",
        "drop constraint if exists c from table posts",
        'execute "SELECT \\"x\\"\\n"',
        "execute fn test_log_lines.<locals>.data",
        "flush",
    ]
    assert ddl_log(collect(lambda: create(table("posts")))[0], "tenant") == "create table tenant.posts"


def test_adapter_methods_delegate() -> None:
    adapter = PostgresAdapter(build_config("postgres://u@localhost/db").connection_settings())
    command: Command = collect(lambda: create(index("posts", ["title"])))[0]
    assert adapter.ddl_sql(command, "tenant") == ['CREATE INDEX "posts_title_index" ON "tenant"."posts" ("title")']
    assert adapter.ddl_log(command) == "create index posts_title_index"
    assert adapter.ddl_sql(DropIndex(index=index("a", ["b"])), None) == ['DROP INDEX "a_b_index"']
    assert isinstance(reverse([RenameIndex(index=index("a", ["b"]), to="c")])[0], RenameIndex)
    assert isinstance(reverse([RenameTable(table=table("a"), to=table("b"))])[0], RenameTable)
    assert isinstance(reverse([RenameColumn(table=table("a"), column="b", to="c")])[0], RenameColumn)
