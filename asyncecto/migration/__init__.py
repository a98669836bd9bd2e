"""Migrations: files in a folder, the DSL they use, and the migrator that applies them.

A migration is a Python file named ``<UTC timestamp>_<name>.py`` (``20240101120000_create_posts.py``)
defining either ``up()``/``down()``, each returning SQL (a string or a list of strings) or issuing
DSL commands, or a reversible ``change()`` written with the DSL::

    from asyncecto.migration import add, create, index, references, table, timestamps

    def change() -> None:
        with create(table("posts")):
            add("title", "string", null=False)
            add("author_id", references("users", on_delete="delete_all"))
            timestamps()
        create(index("posts", ["title"]))

Module attributes ``disable_ddl_transaction = True`` and ``disable_migration_lock = True`` turn
those off for that migration (``CREATE INDEX CONCURRENTLY`` needs the first).

The migrator functions take Ecto's options (``log_migrations_sql``, ``log_migrator_sql``,
``strict_version_order``, ``skip_table_creation``) and its repo keys for migrations
(:class:`MigrationSettings`: ``migration_source``, ``migration_default_prefix``,
``migration_primary_key``, ``migration_foreign_key``, ``migration_timestamps``); the ``asyncecto``
command reads the latter from ``[tool.asyncecto]``.
"""

from __future__ import annotations

# -- the DSL (asyncecto/migration/_dsl.py) --------------------------------------------------------
from ._dsl import add as add
from ._dsl import add_if_not_exists as add_if_not_exists
from ._dsl import alter as alter
from ._dsl import collect as collect
from ._dsl import constraint as constraint
from ._dsl import create as create
from ._dsl import create_if_not_exists as create_if_not_exists
from ._dsl import direction as direction
from ._dsl import drop as drop
from ._dsl import drop_if_exists as drop_if_exists
from ._dsl import execute as execute
from ._dsl import execute_file as execute_file
from ._dsl import flush as flush
from ._dsl import fragment as fragment
from ._dsl import index as index
from ._dsl import modify as modify
from ._dsl import prefix as prefix
from ._dsl import references as references
from ._dsl import remove as remove
from ._dsl import remove_if_exists as remove_if_exists
from ._dsl import rename as rename
from ._dsl import repo as repo
from ._dsl import running as running
from ._dsl import table as table
from ._dsl import timestamps as timestamps
from ._dsl import unique_index as unique_index
from ._reverse import reverse as reverse

# isort: split
# -- the migrator (asyncecto/migration/_migrator.py) ----------------------------------------------
from ._migrator import FILE_NOT_FOUND as FILE_NOT_FOUND
from ._migrator import down as down
from ._migrator import migrated_versions as migrated_versions
from ._migrator import migrations as migrations
from ._migrator import run as run
from ._migrator import up as up
from ._settings import MigrationSettings as MigrationSettings

# isort: split
# -- start-up helpers (asyncecto/migration/_boot.py) ----------------------------------------------
from ._boot import migrate_on_start as migrate_on_start
from ._boot import migrations_path as migrations_path
from ._boot import with_repo as with_repo

__all__ = (
    "FILE_NOT_FOUND",
    "MigrationSettings",
    "add",
    "add_if_not_exists",
    "alter",
    "collect",
    "constraint",
    "create",
    "create_if_not_exists",
    "direction",
    "down",
    "drop",
    "drop_if_exists",
    "execute",
    "execute_file",
    "flush",
    "fragment",
    "index",
    "migrate_on_start",
    "migrated_versions",
    "migrations",
    "migrations_path",
    "modify",
    "prefix",
    "references",
    "remove",
    "remove_if_exists",
    "rename",
    "repo",
    "reverse",
    "run",
    "running",
    "table",
    "timestamps",
    "unique_index",
    "up",
    "with_repo",
)
