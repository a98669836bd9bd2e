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
"""

from __future__ import annotations

# -- the DSL (asyncecto/migration/_dsl.py) --------------------------------------------------------
# -- the migrator (asyncecto/migration/_migrator.py) ----------------------------------------------
from ._migrator import FILE_NOT_FOUND as FILE_NOT_FOUND
from ._migrator import down as down
from ._migrator import migrated_versions as migrated_versions
from ._migrator import migrations as migrations
from ._migrator import run as run
from ._migrator import up as up
