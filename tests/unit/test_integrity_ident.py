"""Issue 16, defect 8 (names PostgreSQL truncates) and defect 9 (Python's exceptions for bad names,
payloads and field names), without a database: every check raises before any SQL exists."""

from __future__ import annotations

import pickle
import re
from typing import Any

import pytest

from asyncecto import Repo, embedded_schema, field, put_meta, schema
from asyncecto._names import MAX_NAME_BYTES, check_generated_name, check_name
from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.adapters.postgres._ddl import ddl_sql
from asyncecto.adapters.postgres._sql import MAX_NAME_BYTES as PG_MAX_NAME_BYTES
from asyncecto.adapters.postgres._sql import quote_name, quote_table
from asyncecto.changeset import change, check_constraint, foreign_key_constraint, unique_constraint
from asyncecto.errors import ArgumentError, AsyncEctoError, IdentifierError, QueryError
from asyncecto.migration import add, alter, collect, constraint, create, index, references, rename, table
from asyncecto.migration._dsl import CreateIndex
from asyncecto.query import (
    field as qfield,
)
from asyncecto.query import (
    from_,
    identifier,
    join,
    order_by,
    put_query_prefix,
    select,
    selected_as,
    values,
    where,
    windows,
    with_cte,
)
from asyncecto.repo._core import executor_of
from asyncecto.repo._notifications import check_channel, check_payload
from asyncecto.schema import many_to_many

from ..schemas import Post

REPO = Repo("postgres://localhost/never_connected")
LONG = "t" * 63 + "_other_tenant"  # 76 bytes; PostgreSQL would read schema "ttt…t" (63 t's)
AT_LIMIT = [("a" * 63), ("é" * 31 + "a"), ("€" * 21), ("😀" * 15 + "abc")]  # all exactly 63 bytes
OVER = [("a" * 64), ("é" * 32), ("€" * 21 + "a"), ("😀" * 16)]  # 64 bytes each


# -- the check itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", AT_LIMIT)
def test_defect_8_a_name_of_exactly_63_bytes_passes(name: str) -> None:
    assert len(name.encode()) == 63
    assert check_name(name, "prefix") == name
    assert quote_name(name) == f'"{name}"'


@pytest.mark.parametrize("name", OVER)
def test_defect_8_a_name_over_63_bytes_is_refused_counting_utf8_bytes(name: str) -> None:
    assert len(name.encode()) == 64
    with pytest.raises(IdentifierError) as info:
        check_name(name, "prefix")
    err = info.value
    assert (err.kind, err.name, err.size, err.limit) == ("prefix", name, 64, 63)
    text = str(err)
    assert text.startswith("invalid prefix ")
    assert "64 bytes long in UTF-8" in text
    assert "PostgreSQL keeps only 63 bytes of a name" in text
    assert text.endswith("fix: shorten it to at most 63 bytes")


def test_defect_8_the_message_abbreviates_a_long_name_and_names_its_size() -> None:
    name = "t" * 500 + "_tenant"
    with pytest.raises(IdentifierError) as info:
        check_name(name, "prefix")
    text = str(info.value)
    assert "507 bytes long" in text
    assert "(507 characters)" in text
    assert "…" in text and "_tenant'" in text
    assert len(text) < 400  # the name is not pasted whole


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a\x00b", "NUL character"),
        ("a\ud800b", "lone surrogate '\\ud800' at position 1"),
        ("", "it is empty"),
        (5, "expected a str, got int"),
        (None, "expected a str, got NoneType"),
        (b"posts", "expected a str, got bytes"),
    ],
)
def test_defect_8_nul_lone_surrogates_empty_and_non_str_names_are_refused(name: Any, reason: str) -> None:
    with pytest.raises(IdentifierError, match=re.escape(reason)) as info:
        check_name(name, "table")
    assert isinstance(info.value, ArgumentError)
    assert isinstance(info.value, AsyncEctoError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_defect_8_identifier_error_keeps_its_data_through_pickle() -> None:
    with pytest.raises(IdentifierError) as info:
        check_name("é" * 40, "column")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.kind, copy.name, copy.size, copy.limit, str(copy)) == (
        "column",
        "é" * 40,
        80,
        63,
        str(info.value),
    )


def test_defect_8_core_limit_is_the_postgres_adapters_limit() -> None:
    assert MAX_NAME_BYTES == PG_MAX_NAME_BYTES == 63
    assert PostgresAdapter.max_channel_bytes == 63


def test_defect_8_a_derived_name_over_63_bytes_tells_to_pass_name() -> None:
    with pytest.raises(IdentifierError) as info:
        check_generated_name("x" * 60 + "_index", "index name", "index(..., name=)")
    assert "derived from the table and column names" in str(info.value)
    assert info.value.fix == "pass index(..., name=) explicitly with a name of at most 63 bytes"


# -- the adapter's own guard, where it quotes ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["x" * 64, "a\x00b", "a\udcffb", ""])
def test_defect_8_quote_name_refuses_what_postgres_would_not_keep(name: str) -> None:
    with pytest.raises(IdentifierError) as info:
        quote_name(name, "column")
    assert info.value.kind == "column"


def test_defect_8_quote_table_names_the_prefix_or_the_table() -> None:
    with pytest.raises(IdentifierError, match=r"^invalid prefix "):
        quote_table(LONG, "posts")
    with pytest.raises(IdentifierError, match=r"^invalid table "):
        quote_table("public", LONG)
    assert quote_table("t" * 63, "posts") == f'"{"t" * 63}"."posts"'


# -- prefixes: queries, repo calls, repo options, schemas, structs -------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda p: from_(Post, prefix=p),
        lambda p: from_(Post) | put_query_prefix(p),
        lambda p: from_(Post) | join("inner", Post, on=lambda a, b: a.id == b.id, prefix=p),
    ],
    ids=["from_", "put_query_prefix", "join"],
)
@pytest.mark.parametrize("prefix", [LONG, "é" * 32, "a\x00b", "a\ud800"])
def test_defect_8_query_prefix_is_refused_when_the_query_is_built(build: Any, prefix: str) -> None:
    with pytest.raises(IdentifierError) as info:
        build(prefix)
    assert "prefix" in info.value.kind


@pytest.mark.parametrize("prefix", [LONG, "a\x00b"])
def test_defect_8_repo_call_prefix_is_refused_before_sql(prefix: str) -> None:
    with pytest.raises(IdentifierError, match=r"^invalid prefix "):
        REPO.to_sql(from_(Post), prefix=prefix)


def test_defect_8_repo_prefix_option_and_url_are_refused() -> None:
    with pytest.raises(IdentifierError, match=r"^invalid repo prefix "):
        Repo("postgres://localhost/db", prefix=LONG)
    with pytest.raises(IdentifierError, match=r"^invalid repo prefix "):
        Repo(f"postgres://localhost/db?prefix={LONG}")
    with pytest.raises(IdentifierError, match=r"^invalid database name "):
        Repo("postgres://localhost/" + "d" * 64)
    assert Repo("postgres://localhost/db", prefix="é" * 31 + "a").config.prefix == "é" * 31 + "a"


def test_defect_8_schema_source_prefix_and_columns_are_checked_when_defined() -> None:
    with pytest.raises(IdentifierError, match=r"^invalid schema prefix "):

        @schema("notes", prefix=LONG)
        class A:
            text: str | None = None

    with pytest.raises(IdentifierError, match=r"^invalid schema source"):

        @schema("n" * 64)
        class B:
            text: str | None = None

    with pytest.raises(IdentifierError, match=r"^invalid column of field \S*C\.text ") as info:

        @schema("notes")
        class C:
            text: str | None = field(source="c" * 64)

    assert info.value.size == 64

    long_field = "f" * 64
    with pytest.raises(IdentifierError, match=r"field\(source=\.\.\.\)"):
        schema("notes")(type("D", (), {"__annotations__": {long_field: "str | None"}, long_field: None}))


def test_defect_8_embedded_field_names_are_json_keys_not_identifiers() -> None:
    long_field = "k" * 70

    embedded = embedded_schema(type("E", (), {"__annotations__": {long_field: "str | None"}, long_field: None}))
    assert long_field in embedded.__schema__.fields


def test_defect_8_many_to_many_join_table_and_keys_are_checked() -> None:
    with pytest.raises(IdentifierError, match="join_through table"):
        many_to_many(Post, join_through="j" * 64)
    with pytest.raises(IdentifierError, match="join_keys column"):
        many_to_many(Post, join_through="posts_tags", join_keys=[("p" * 64, "id"), ("tag_id", "id")])


def test_defect_8_put_meta_refuses_a_long_prefix_or_source() -> None:
    with pytest.raises(IdentifierError, match=r"^invalid meta prefix "):
        put_meta(Post(), prefix=LONG)
    with pytest.raises(IdentifierError, match=r"^invalid meta source"):
        put_meta(Post(), source="s" * 64)
    assert put_meta(Post(), prefix="p" * 63) is not None


# -- other names a query writes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda n: from_(n),
        lambda n: from_((n, Post)),
        lambda n: from_("posts") | select(lambda p: qfield(p, n)),
        lambda n: from_("posts") | where(**{n: 1}),
        lambda n: with_cte(n, as_=from_(Post)),
        lambda n: selected_as(1, n),
        lambda n: identifier(n),
        lambda n: values([{n: 1}], {n: int}),
        lambda n: windows(**{n: {"partition_by": lambda p: p.id}}),
    ],
    ids=["table", "table-schema", "schemaless-field", "schemaless-where", "cte", "selected_as", "identifier",
         "values", "window"],
)  # fmt: skip
@pytest.mark.parametrize("name", ["x" * 64, "é" * 32, "x\x00"])
def test_defect_8_query_names_are_refused_when_built(build: Any, name: str) -> None:
    with pytest.raises(IdentifierError):
        build(name)


def test_defect_8_subquery_dict_keys_are_refused_when_written() -> None:
    from asyncecto.query import count, subquery

    inner = from_(Post) | select(lambda p: {"k" * 64: p.id})
    with pytest.raises(IdentifierError, match=r"^invalid subquery column "):
        REPO.to_sql(from_(subquery(inner)) | select(lambda s: count()))


# -- migrations ---------------------------------------------------------------------------------------------


def test_defect_8_migration_names_are_refused_when_written() -> None:
    with pytest.raises(IdentifierError, match=r"^invalid table name "):
        table("t" * 64)
    with pytest.raises(IdentifierError, match=r"^invalid table prefix "):
        table("posts", prefix=LONG)
    with pytest.raises(IdentifierError, match=r"^invalid index name "):
        index("posts", ["title"], name="i" * 64)
    with pytest.raises(IdentifierError, match=r"^invalid constraint name "):
        constraint("posts", "c" * 64, check="true")
    with pytest.raises(IdentifierError, match=r"^invalid foreign key constraint name "):
        references("users", name="f" * 64)
    with pytest.raises(IdentifierError, match=r"^invalid referenced table name "):
        references("u" * 64)

    def add_long_column() -> None:
        with create(table("posts")):
            add("c" * 64, "string")

    with pytest.raises(IdentifierError, match=r"^invalid column name "):
        collect(add_long_column)

    def rename_long() -> None:
        rename(table("posts"), "title", to="t" * 64)

    with pytest.raises(IdentifierError, match=r"^invalid column name "):
        collect(rename_long)


def test_defect_8_a_derived_index_name_over_63_bytes_asks_for_name() -> None:
    columns = ["a_rather_long_column_name", "another_long_column_name"]
    with pytest.raises(IdentifierError) as info:
        index("some_table_name", columns)
    err = info.value
    assert err.name == "some_table_name_a_rather_long_column_name_another_long_column_name_index"
    assert err.size == len(err.name) == 72
    assert "pass index(..., name=) explicitly" in str(err)
    named = index("some_table_name", columns, name="some_table_cols_index")
    assert ddl_sql(CreateIndex(index=named)) == [
        'CREATE INDEX "some_table_cols_index" ON "some_table_name" ("a_rather_long_column_name", '
        '"another_long_column_name")'
    ]


def test_defect_8_a_derived_foreign_key_name_over_63_bytes_asks_for_name() -> None:
    def change_() -> None:
        with alter(table("a_table_with_a_quite_long_name")):
            add("a_reference_column_with_a_long_name_id", references("users"))

    with pytest.raises(IdentifierError, match=r"pass references\(\.\.\., name=\) explicitly") as info:
        collect(change_)
    assert info.value.name == "a_table_with_a_quite_long_name_a_reference_column_with_a_long_name_id_fkey"

    def named() -> None:
        with alter(table("a_table_with_a_quite_long_name")):
            add("a_reference_column_with_a_long_name_id", references("users", name="t_ref_fkey"))

    assert len(collect(named)) == 1


def test_defect_8_ddl_refuses_a_long_plain_index_column() -> None:
    command = CreateIndex(index=index("posts", ["c" * 64], name="posts_c_index"))
    with pytest.raises(IdentifierError, match=r"^invalid index column "):
        ddl_sql(command)


# -- changeset constraint declarations -------------------------------------------------------------------------


def test_defect_8_changeset_constraint_names_postgres_cannot_report_are_refused() -> None:
    cs = change(Post())
    with pytest.raises(IdentifierError, match=r"^invalid unique constraint name "):
        unique_constraint(cs, "title", name="u" * 64)
    with pytest.raises(IdentifierError, match=r"^invalid check constraint name "):
        check_constraint(cs, "title", name="a\x00b")
    assert unique_constraint(cs, "title", name="u" * 63).constraints[0].constraint == "u" * 63
    assert unique_constraint(cs, "title", name=re.compile("x" * 80)).constraints  # a regex is no name


def test_defect_8_changeset_derived_constraint_names_over_63_bytes_ask_for_name() -> None:
    @schema("a_table_with_a_rather_long_name_for_constraints")
    class Wide:
        a_long_field_name_that_is_unique: str | None = None

    cs = change(Wide())
    with pytest.raises(IdentifierError, match=r"pass unique_constraint\(\.\.\., name=\) explicitly"):
        unique_constraint(cs, "a_long_field_name_that_is_unique")
    with pytest.raises(IdentifierError, match=r"pass foreign_key_constraint\(\.\.\., name=\) explicitly"):
        foreign_key_constraint(cs, "a_long_field_name_that_is_unique")


# -- defect 9: notifications --------------------------------------------------------------------------------


def test_defect_9_notify_payload_with_a_lone_surrogate_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError, match=r"lone surrogate '\\ud800' at position 2") as info:
        check_payload("ab\ud800", executor_of(REPO).adapter)
    assert not isinstance(info.value, UnicodeError)
    assert "json.dumps" in str(info.value)


@pytest.mark.parametrize("channel", ["\ud800", "c" * 64, "é" * 32, "a\x00b"])
def test_defect_9_bad_channel_names_are_identifier_errors(channel: str) -> None:
    with pytest.raises(IdentifierError) as info:
        check_channel(channel, executor_of(REPO).adapter)
    assert info.value.kind == "channel"


def test_defect_8_a_63_byte_channel_is_accepted() -> None:
    assert check_channel("é" * 31 + "a", executor_of(REPO).adapter) == "é" * 31 + "a"


# -- defect 9: hostile field names in the query DSL ---------------------------------------------------------

HOSTILE = ["__dict__", "__class__", "__init__", "_index", "_schema", "_field", "", "x\x00", 'a"b', "$1", "'; DROP"]
BUILDERS = {
    "field": lambda n: from_(Post) | where(lambda p: qfield(p, n) == 1),
    "field-select": lambda n: from_(Post) | select(lambda p: qfield(p, n)),
    "order_by": lambda n: from_(Post) | order_by([n]),
    "order_by-kw": lambda n: from_(Post) | order_by(desc=n),
    "select-list": lambda n: from_(Post) | select([n]),
    "where-kw": lambda n: from_(Post) | where(**{n: 1}),
}


@pytest.mark.parametrize("how", BUILDERS)
@pytest.mark.parametrize("name", HOSTILE)
def test_defect_9_unknown_field_names_are_query_errors_naming_schema_and_fields(how: str, name: str) -> None:
    with pytest.raises(QueryError) as info:
        BUILDERS[how](name)
    text = str(info.value)
    assert f"field {name!r} does not exist in schema Post" in text
    assert "fields are: id, title, body" in text


@pytest.mark.parametrize("name", [1, None, b"title", ("title",)])
def test_defect_9_a_field_name_that_is_not_a_str_is_a_query_error(name: Any) -> None:
    with pytest.raises(QueryError, match="a field name must be a str"):
        from_(Post) | select(lambda p: qfield(p, name))


def test_defect_9_field_on_a_schemaless_source_is_the_column_as_written() -> None:
    sql, _ = REPO.to_sql(from_("posts") | select(lambda p: [qfield(p, "__dict__"), qfield(p, 'a"b')]))
    assert sql == 'SELECT p0."__dict__", p0."a""b" FROM "posts" AS p0'
    with pytest.raises(IdentifierError, match="NUL"):
        from_("posts") | select(lambda p: qfield(p, "x\x00"))


def test_defect_9_attribute_protocol_of_a_binding_is_unchanged() -> None:
    seen: list[bool] = []

    def spy(p: Any) -> Any:
        seen.append(hasattr(p, "__dict__"))
        return p.id == 1

    from_(Post) | where(spy)
    assert seen == [False]
