"""SQL the migrator runs besides the migrations' DDL: the versions table and the migration lock. Pure: no I/O.

The versions table is Ecto's ``schema_migrations``: ``version bigint PRIMARY KEY`` and
``inserted_at timestamp(0)`` (UTC). The lock is a session advisory lock taking one ``bigint`` key.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._sql import quote_table

__all__ = (
    "create_versions_table_sql",
    "current_schema_sql",
    "delete_version_sql",
    "dump_versions_sql",
    "insert_version_sql",
    "lost_create_race",
    "lock_sql",
    "lock_table_sql",
    "no_statement_timeout_sql",
    "table_exists_sql",
    "try_lock_sql",
    "unlock_sql",
    "versions_sql",
)


def lost_create_race(sqlstate: str | None) -> bool:
    """Two sessions creating the versions table at once: one loses on the catalog's unique index
    (23505), or finds the table (42P07) or its row type (42710) just made by the other."""
    return sqlstate in ("23505", "42P07", "42710")


def create_versions_table_sql(prefix: str | None, table: str) -> str:
    """The versions table, unless it exists.

    >>> create_versions_table_sql(None, "schema_migrations")
    'CREATE TABLE IF NOT EXISTS "schema_migrations" (version bigint PRIMARY KEY, inserted_at timestamp(0))'
    """
    columns = "version bigint PRIMARY KEY, inserted_at timestamp(0)"
    return f"CREATE TABLE IF NOT EXISTS {quote_table(prefix, table)} ({columns})"


def versions_sql(prefix: str | None, table: str) -> str:
    """The applied versions, ascending.

    >>> versions_sql("tenant", "schema_migrations")
    'SELECT version FROM "tenant"."schema_migrations" ORDER BY version'
    """
    return f"SELECT version FROM {quote_table(prefix, table)} ORDER BY version"


def insert_version_sql(prefix: str | None, table: str) -> str:
    """Record the version ``$1`` as applied, now (UTC).

    >>> insert_version_sql(None, "schema_migrations")
    'INSERT INTO "schema_migrations" (version, inserted_at) VALUES ($1, timezone(\\'UTC\\', now()))'
    """
    return f"INSERT INTO {quote_table(prefix, table)} (version, inserted_at) VALUES ($1, timezone('UTC', now()))"


def delete_version_sql(prefix: str | None, table: str) -> str:
    """Forget the version ``$1``.

    >>> delete_version_sql(None, "schema_migrations")
    'DELETE FROM "schema_migrations" WHERE version = $1'
    """
    return f"DELETE FROM {quote_table(prefix, table)} WHERE version = $1"


def no_statement_timeout_sql() -> str:
    """Lift the statement timeout for the rest of the session (DDL runs unbounded, as Ecto's ``:infinity``).

    >>> no_statement_timeout_sql()
    "SELECT set_config('statement_timeout', '0', false)"
    """
    return "SELECT set_config('statement_timeout', '0', false)"


def current_schema_sql() -> str:
    """The schema unprefixed names resolve to: one row, one text column.

    >>> current_schema_sql()
    'SELECT current_schema()'
    """
    return "SELECT current_schema()"


def try_lock_sql() -> str:
    """Take the session advisory lock of key ``$1`` if free: one row, one boolean column.

    >>> try_lock_sql()
    'SELECT pg_try_advisory_lock($1)'
    """
    return "SELECT pg_try_advisory_lock($1)"


def lock_sql() -> str:
    """Wait for the session advisory lock of key ``$1``.

    >>> lock_sql()
    'SELECT pg_advisory_lock($1)'
    """
    return "SELECT pg_advisory_lock($1)"


def unlock_sql() -> str:
    """Release the session advisory lock of key ``$1``.

    >>> unlock_sql()
    'SELECT pg_advisory_unlock($1)'
    """
    return "SELECT pg_advisory_unlock($1)"


def lock_table_sql(prefix: str | None, table: str) -> str:
    """Ecto's migration lock: held by the transaction until it ends; other migrators' ``LOCK``
    waits, while reads and the version inserts of the migrations (on other connections) go on.

    >>> lock_table_sql(None, "schema_migrations")
    'LOCK TABLE "schema_migrations" IN SHARE UPDATE EXCLUSIVE MODE'
    """
    return f"LOCK TABLE {quote_table(prefix, table)} IN SHARE UPDATE EXCLUSIVE MODE"


def table_exists_sql(prefix: str | None, table: str) -> str:
    """Whether ``table`` exists (without a prefix: on the search path): one row, one boolean column.

    >>> table_exists_sql(None, "schema_migrations")
    'SELECT to_regclass(\\'"schema_migrations"\\') IS NOT NULL'
    >>> table_exists_sql("it's", "t")
    'SELECT to_regclass(\\'"it\\'\\'s"."t"\\') IS NOT NULL'
    """
    name = quote_table(prefix, table).replace("'", "''")
    return f"SELECT to_regclass('{name}') IS NOT NULL"


def dump_versions_sql(prefix: str | None, table: str, versions: Sequence[int]) -> str:
    """The statement a structure dump ends with to record ``versions``, or ``""`` for none.

    >>> dump_versions_sql("public", "schema_migrations", [20240101000000, 20240102000000])
    'INSERT INTO "public"."schema_migrations" (version) VALUES (20240101000000), (20240102000000);\\n'
    >>> dump_versions_sql("public", "schema_migrations", [])
    ''
    """
    if not versions:
        return ""
    values = ", ".join(f"({int(v)})" for v in versions)
    return f"INSERT INTO {quote_table(prefix, table)} (version) VALUES {values};\n"
