"""Ecto parity of the migration DSL's configured defaults and of the command's options (no database).

``migration_primary_key``, ``migration_foreign_key`` and ``migration_timestamps`` reach
``create(table(...))``, :func:`references` and :func:`timestamps` while a migration runs;
``[tool.asyncecto]`` takes them, and ``migrate``/``rollback`` take Ecto's SQL-logging and
version-order flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asyncecto.adapters.postgres._ddl import ddl_sql
from asyncecto.cli import build_parser
from asyncecto.cli._project import find_project
from asyncecto.errors import ArgumentError, CommandError
from asyncecto.migration import add, create, references, table, timestamps
from asyncecto.migration._dsl import collect
from asyncecto.migration._settings import Settings, current, read_settings, using


def sql(fn: Callable[[], object], **settings: Any) -> list[str]:
    with using(read_settings(settings)):
        return [s for c in collect(fn) for s in ddl_sql(c, None)]


def posts() -> None:
    with create(table("posts")):
        add("title", "string")
        timestamps()


def test_defaults_without_settings() -> None:
    assert current() == Settings()
    assert sql(posts) == [
        'CREATE TABLE "posts" ("id" bigserial, "title" varchar(255), "inserted_at" timestamp(0) NOT NULL, '
        '"updated_at" timestamp(0) NOT NULL, PRIMARY KEY ("id"))'
    ]


def test_migration_primary_key_and_timestamps_shape_create_table() -> None:
    got = sql(
        posts,
        migration_primary_key={"name": "uuid", "type": "binary_id"},
        migration_timestamps={"type": "utc_datetime_usec", "inserted_at": "created_at", "updated_at": False},
    )
    assert got == [
        'CREATE TABLE "posts" ("uuid" uuid, "title" varchar(255), "created_at" timestamptz NOT NULL, '
        'PRIMARY KEY ("uuid"))'
    ]


def test_migration_primary_key_false_drops_the_default_key_only() -> None:
    def both() -> None:
        with create(table("a")):
            add("x", "integer")
        with create(table("b", primary_key={"name": "code", "type": "string"})):
            add("x", "integer")

    assert sql(both, migration_primary_key=False) == [
        'CREATE TABLE "a" ("x" integer)',
        'CREATE TABLE "b" ("code" varchar(255), "x" integer, PRIMARY KEY ("code"))',
    ]


def test_timestamps_arguments_and_column_options_beat_the_settings() -> None:
    def fn() -> None:
        with create(table("t", primary_key=False)):
            timestamps(type="naive_datetime", inserted_at="made", null=True)

    got = sql(fn, migration_timestamps={"type": "utc_datetime", "default": "x", "null": False})
    assert got == [
        'CREATE TABLE "t" ("made" timestamp(0) DEFAULT \'x\' NULL, "updated_at" timestamp(0) DEFAULT \'x\' NULL)'
    ]


def test_references_take_the_key_type_and_the_foreign_key_settings() -> None:
    def fn() -> None:
        with create(table("c", primary_key=False)):
            add("post_id", references("posts"))
            add("user_id", references("users", type="integer", column="uid"))

    got = sql(fn, migration_primary_key={"type": "binary_id"}, migration_foreign_key={"column": "uuid"})
    assert got == [
        'CREATE TABLE "c" ("post_id" uuid, CONSTRAINT "c_post_id_fkey" FOREIGN KEY ("post_id") '
        'REFERENCES "posts"("uuid"), "user_id" integer, CONSTRAINT "c_user_id_fkey" FOREIGN KEY ("user_id") '
        'REFERENCES "users"("uid"))'
    ]
    fk_type = sql(fn, migration_primary_key={"type": "binary_id"}, migration_foreign_key={"type": "bigserial"})
    assert '"post_id" bigint' in fk_type[0]  # migration_foreign_key's type wins over the key's


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"migration_primary_key": "uuid"}, "migration_primary_key must be a dict"),
        ({"migration_primary_key": {"name": ""}}, "migration_primary_key name must be a non-empty string"),
        ({"migration_primary_key": {"type": ""}}, "migration_primary_key type must be a type name"),
        ({"migration_timestamps": {"inserted_at": 1}}, "migration_timestamps inserted_at must be a non-empty string"),
        ({"migration_timestamps": {"scale": 2}}, "column inserted_at is missing precision option"),
        ({"migration_foreign_key": {"column": ""}}, "migration_foreign_key column must be a non-empty string"),
        ({"migration_default_prefix": ""}, "migration_default_prefix .* must be a non-empty string"),
        ({"migration_source": 5}, "migration_source .* must be a non-empty string, got: 5"),
        ({"migration_sorce": "x"}, "unknown migration option 'migration_sorce'; expected some of: migration_source"),
    ],
)
def test_bad_settings_name_the_key_and_the_value(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        read_settings(settings)


def test_settings_are_reset_after_the_block() -> None:
    with using(read_settings({"migration_primary_key": False})):
        assert current().primary_key is False
    assert current().primary_key == {}


def test_migrate_and_rollback_flags() -> None:
    parser = build_parser()
    ns = parser.parse_args(["migrate", "--log-migrations-sql", "--log-migrator-sql", "--strict-version-order"])
    assert (ns.log_migrations_sql, ns.log_migrator_sql, ns.strict_version_order) == (True, True, True)
    ns = parser.parse_args(["migrate"])
    assert (ns.log_migrations_sql, ns.log_migrator_sql, ns.strict_version_order) == (False, False, False)
    ns = parser.parse_args(["rollback", "--log-migrations-sql", "--log-migrator-sql"])
    assert (ns.log_migrations_sql, ns.log_migrator_sql) == (True, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["rollback", "--strict-version-order"])  # Ecto's rollback has no such flag


def test_pyproject_takes_the_migration_keys(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.asyncecto]\n"
        'url = "postgres://localhost/x"\n'
        'migration_source = "versions"\n'
        "migration_primary_key = false\n"
        'migration_timestamps = { type = "utc_datetime" }\n'
    )
    project = find_project(tmp_path)
    assert project.migration_source == "versions"
    assert project.migration_settings == {
        "migration_source": "versions",
        "migration_primary_key": False,
        "migration_timestamps": {"type": "utc_datetime"},
    }


def test_pyproject_refuses_bad_migration_keys(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.asyncecto]\nmigration_timestamps = "utc"\n')
    with pytest.raises(CommandError, match=r"\[tool.asyncecto\] migration_timestamps must be a dict") as info:
        find_project(tmp_path)
    assert info.value.code == 2
    (tmp_path / "pyproject.toml").write_text("[tool.asyncecto]\nmigrations = false\n")
    with pytest.raises(CommandError, match=r"\[tool.asyncecto\] migrations must be a non-empty string"):
        find_project(tmp_path)
