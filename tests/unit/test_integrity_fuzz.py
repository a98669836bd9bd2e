"""Issue 16, defect 9 (pure parts): what the fuzz of the public entry points turned up outside the
identifier and value classes. Each bad input is a library exception naming it, never a Python one.
"""

from __future__ import annotations

import re
import types
from typing import Any

import pytest

from asyncecto import embedded, schema
from asyncecto.adapters.postgres._text import check_statement
from asyncecto.changeset import (
    cast,
    optimistic_lock,
    traverse_errors,
    validate_format,
    validate_length,
    validate_number,
)
from asyncecto.errors import ArgumentError, SchemaError
from asyncecto.migration import constraint, index, references, table
from asyncecto.repo import build_config


@schema("docs")
class Doc:
    id: int | None = None
    body: str | None = None
    visits: int | None = None
    lock_version: int | None = 1


# -- SQL text PostgreSQL cannot receive ------------------------------------------------------------


@pytest.mark.parametrize("sql", ["SELECT '\ud800'", "SELECT 1 -- \udfff", "SELECT 1\x00; DROP TABLE docs"])
def test_defect_9_sql_text_with_a_lone_surrogate_or_nul_is_refused_before_it_is_sent(sql: str) -> None:
    with pytest.raises(ArgumentError, match="PostgreSQL cannot receive") as caught:
        check_statement(sql)
    assert "nothing was sent" in str(caught.value) and "fix:" in str(caught.value)


def test_defect_9_sql_text_check_lets_any_valid_unicode_through() -> None:
    for sql in ("SELECT 1", "SELECT 'é ü \U0001f469\u200d\U0001f467 \u202e'", "SELECT '" + "x" * 100_000 + "'"):
        check_statement(sql)


# -- changesets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["back\\", "?", "[a-", "(unclosed", "*"])
def test_defect_9_validate_format_with_an_invalid_regex_is_an_argument_error(pattern: str) -> None:
    cs = cast(Doc(), {"body": "text"}, ["body"])
    with pytest.raises(ArgumentError, match="invalid regular expression for 'body'") as caught:
        validate_format(cs, "body", pattern)
    assert repr(pattern) in str(caught.value) and "re.escape" in str(caught.value)


def test_defect_9_validate_format_still_takes_strings_and_compiled_patterns() -> None:
    cs = cast(Doc(), {"body": "text"}, ["body"])
    assert validate_format(cs, "body", "^t").valid
    assert not validate_format(cs, "body", re.compile("^x")).valid
    with pytest.raises(ArgumentError, match="regex or a string pattern"):
        validate_format(cs, "body", 42)


@pytest.mark.parametrize(
    "options", [{"is_": "it's"}, {"min": "1"}, {"max": 1.5}, {"max": True}, {"min": 1, "max": "{}"}]
)
def test_defect_9_validate_length_with_a_bound_that_is_no_integer_is_refused(options: dict[str, Any]) -> None:
    cs = cast(Doc(), {"body": "abc"}, ["body"])
    with pytest.raises(ArgumentError, match=r"validate_length .*= must be an integer for 'body'"):
        validate_length(cs, "body", **options)


@pytest.mark.parametrize("bound", ["'; DROP TABLE docs; --", "3", None, True, [1]])
def test_defect_9_validate_number_with_a_bound_that_is_no_number_is_refused(bound: Any) -> None:
    cs = cast(Doc(), {"visits": 3}, ["visits"])
    with pytest.raises(ArgumentError, match="validate_number greater_than= must be a number for 'visits'"):
        validate_number(cs, "visits", greater_than=bound)


def test_defect_9_an_empty_message_is_kept_not_replaced_by_the_default() -> None:
    cs = cast(Doc(), {"body": "too long", "visits": 1}, ["body", "visits"])
    cs = validate_length(cs, "body", max=1, message="")
    cs = validate_number(cs, "visits", greater_than=5, message="")
    assert traverse_errors(cs) == {"body": [""], "visits": [""]}


@pytest.mark.parametrize("name", ["__class__", "__dict__", "nope", "'; DROP TABLE docs; --"])
def test_defect_9_optimistic_lock_on_an_unknown_field_is_an_argument_error(name: str) -> None:
    with pytest.raises(ArgumentError, match=f"unknown field {re.escape(repr(name))}"):
        optimistic_lock(Doc(id=1), name)
    assert optimistic_lock(Doc(id=1), "lock_version").filters == {"lock_version": 1}


# -- schemas --------------------------------------------------------------------------------------


def _schema_with_field(name: str) -> type:
    namespace = {"__annotations__": {name: str | None}, name: None}
    return schema("docs")(types.new_class("Hostile", (), {}, lambda ns: ns.update(namespace)))


@pytest.mark.parametrize(
    "name", ["it's", 'say "hi"', "a-b", "", " ", "$1", "{}", "a\x00b", "a\ud800", "\u202eevil", "class", "None", "1st"]
)
def test_defect_9_a_field_name_that_is_no_python_identifier_is_a_schema_error(name: str) -> None:
    with pytest.raises(SchemaError, match="is not a Python identifier") as caught:
        _schema_with_field(name)
    assert "field(source=" in str(caught.value)


def test_defect_9_unicode_identifiers_stay_valid_field_names() -> None:
    cls = _schema_with_field("café")
    assert cls(café="x").café == "x"


# -- config and URLs ------------------------------------------------------------------------------

URL = "postgres://u@localhost/db"


@pytest.mark.parametrize(
    "options",
    [
        {"server_settings": {"application_name": "a\x00b"}},
        {"server_settings": {"fuzz.v": "\ud800"}},
        {"server_settings": {"a\udfff": "x"}},
    ],
)
def test_defect_9_server_settings_a_connection_cannot_carry_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ArgumentError, match="which a connection cannot carry"):
        build_config(URL, **options)


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("postgres://u@localhost/a%00b", "database"),
        ("postgres://u@localhost/a\ud800", "database"),
        ("postgres://a%00b@localhost/db", "user"),
        ("postgres://u:p%00w@localhost/db", "the password"),
    ],
)
def test_defect_9_url_parts_a_connection_cannot_carry_are_refused(url: str, part: str) -> None:
    with pytest.raises(ArgumentError, match=part.removeprefix("the ")) as caught:
        build_config(url)
    if part == "the password":
        assert "p\x00w" not in str(caught.value) and "p\\x00w" not in str(caught.value)


@pytest.mark.parametrize(
    ("database", "ok"), [("n" * 63, True), ("n" * 64, False), ("\u00e9" * 31, True), ("\u00e9" * 32, False)]
)
def test_defect_9_database_and_user_names_the_server_would_cut_are_refused(database: str, ok: bool) -> None:
    for options in ({"database": database}, {"user": database, "database": "db"}):
        if ok:
            build_config(**options)
            continue
        with pytest.raises(ArgumentError, match="PostgreSQL keeps only 63 bytes"):
            build_config(**options)


@pytest.mark.parametrize("database", ["", "a\x00b", "a\ud800b", "\udfff", None])
def test_defect_9_embedded_database_url_refuses_a_name_no_url_can_hold(database: Any) -> None:
    with pytest.raises(ArgumentError, match="database_url expects a database name"):
        embedded.database_url(database, env="ASYNCECTO_FUZZ_URL")


def test_defect_9_embedded_database_url_percent_encodes_a_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCECTO_FUZZ_URL", raising=False)
    monkeypatch.setattr(embedded, "force_embedded", lambda: False)
    monkeypatch.setattr(embedded, "server_answers", lambda *a, **k: True)
    url = embedded.database_url("../x y", env="ASYNCECTO_FUZZ_URL")
    assert build_config(url).database == "../x y"


# -- the migration DSL ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: table("t", prefix=""),
        lambda: index("t", ["c"], prefix=""),
        lambda: constraint("t", "c", check="true", prefix=""),
        lambda: references("t", prefix=""),
    ],
)
def test_defect_9_an_empty_prefix_in_the_migration_dsl_is_refused_not_dropped(make: Any) -> None:
    with pytest.raises(ArgumentError, match="prefix"):
        make()
