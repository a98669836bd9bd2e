"""What a repo behind a transaction pooler refuses, and what its BEGIN carries (pure: no database)."""

from __future__ import annotations

import pytest

from asyncecto.adapters.postgres._pooling import begin_with_timeout, is_begin, refuse, session_operation
from asyncecto.errors import AsyncEctoError, UnsupportedInTransactionPoolingError


@pytest.mark.parametrize(
    ("sql", "operation"),
    [
        ("SELECT pg_advisory_lock(1)", "a session advisory lock"),
        ("select pg_try_advisory_lock($1)", "a session advisory lock"),
        ("SELECT pg_advisory_lock_shared(1, 2)", "a session advisory lock"),
        ("SELECT pg_advisory_unlock_all()", "a session advisory lock"),
        ("SET search_path TO app", "a session-level SET, RESET or DISCARD"),
        ("  /* hi */ set statement_timeout = 0", "a session-level SET, RESET or DISCARD"),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "a session-level SET, RESET or DISCARD"),
        ("SELECT 1; SET x.y = 1", "a session-level SET, RESET or DISCARD"),
        ("RESET ALL", "a session-level SET, RESET or DISCARD"),
        ("DISCARD ALL", "a session-level SET, RESET or DISCARD"),
        ("SELECT set_config('search_path', 'app', false)", "set_config(..., false) (a session-level setting)"),
        ("LISTEN jobs", "LISTEN"),
    ],
)
def test_session_statements_are_found(sql: str, operation: str) -> None:
    found = session_operation(sql)
    assert found is not None and found[0] == operation
    with pytest.raises(UnsupportedInTransactionPoolingError) as info:
        refuse(sql)
    assert info.value.query == sql and info.value.fix
    assert isinstance(info.value, AsyncEctoError)
    assert "fix:" in str(info.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_try_advisory_xact_lock_shared(1)",
        "SET LOCAL search_path TO app",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET CONSTRAINTS ALL IMMEDIATE",
        "SELECT set_config('app.tenant', $1, true)",
        'UPDATE "posts" SET "title" = $1 WHERE "id" = $2',
        "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a",
        "SELECT settings, listens FROM t",
        "UNLISTEN *",
        "SELECT pg_notify('jobs', 'x')",
    ],
)
def test_transaction_safe_statements_pass(sql: str) -> None:
    assert session_operation(sql) is None
    refuse(sql)


def test_begin_carries_the_timeout_in_the_same_message() -> None:
    assert is_begin("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY")
    assert is_begin("  start transaction")
    assert not is_begin("SAVEPOINT asyncecto_2")
    assert not is_begin("DO $$ BEGIN PERFORM 1; END $$")
    assert begin_with_timeout("BEGIN", 1.5) == "BEGIN; SET LOCAL statement_timeout = '1500'"
    assert begin_with_timeout("BEGIN", None) == "BEGIN; SET LOCAL statement_timeout = '0'"
    assert begin_with_timeout("BEGIN", 0.0001).endswith("'1'")  # never 0 (no limit) by rounding


def test_the_error_pickles_with_its_fields() -> None:
    import pickle

    error = UnsupportedInTransactionPoolingError("LISTEN", "why", "how", "LISTEN x")
    again = pickle.loads(pickle.dumps(error))
    assert (again.operation, again.reason, again.fix, again.query) == ("LISTEN", "why", "how", "LISTEN x")
    assert str(again) == str(error)
