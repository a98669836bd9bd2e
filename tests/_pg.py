"""The PostgreSQL adapter behind a Repo, for tests that look at its pool."""

from __future__ import annotations

from collections.abc import Sequence

from asyncecto import Repo
from asyncecto.adapters.postgres import PostgresAdapter
from asyncecto.adapters.postgres._pool import Pool
from asyncecto.repo._core import executor_of


def pg_pool(repo: Repo) -> Pool:
    """The pool of a Repo on the PostgreSQL adapter."""
    adapter = executor_of(repo).adapter
    assert isinstance(adapter, PostgresAdapter)
    return adapter.pool


def empty_tables_sql(tables: Sequence[str]) -> str:
    """One statement that leaves ``tables`` as ``TRUNCATE … RESTART IDENTITY CASCADE`` does, but
    truncates only those holding rows, and starts every sequence they own at its first value again.

    A TRUNCATE gives a table, its indexes and its TOAST table new files; hundreds of them on tables
    a test never wrote to cost the server more (creating files) than the tests around them.
    """
    names = ", ".join(f"'{table}'" for table in tables)
    return f"""DO $$
DECLARE
  t regclass;
  holding text[] := '{{}}';
  has_rows boolean;
BEGIN
  FOREACH t IN ARRAY ARRAY[{names}]::regclass[] LOOP
    EXECUTE format('SELECT EXISTS (SELECT FROM %s)', t) INTO has_rows;
    IF has_rows THEN holding := holding || t::text; END IF;
  END LOOP;
  IF cardinality(holding) > 0 THEN
    EXECUTE 'TRUNCATE ' || array_to_string(holding, ', ') || ' RESTART IDENTITY CASCADE';
  END IF;
  PERFORM setval(d.objid::regclass, s.seqstart, false)
  FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid = ANY (ARRAY[{names}]::regclass[]::oid[]) AND d.deptype IN ('a', 'i');
END $$"""
