"""A tenant-scoped table guarded by PostgreSQL row-level security (docs/deployment.md, "Tenants").

Every row carries its tenant; the policy lets a session see and write only the rows of the tenant
that ``async with repo.tenant(tenant_id):`` put in the transaction-local setting ``app.tenant_id``.
Outside such a block the setting is empty and the policy lets nothing through.

- ``FORCE ROW LEVEL SECURITY`` applies the policy to the table's owner too. Superusers and roles
  with ``BYPASSRLS`` are never subject to it: the application must connect as an ordinary role
  (grant it the table, as below, and run migrations as the owner).
- ``NULLIF(current_setting('app.tenant_id', true), '')``: ``true`` makes a missing setting NULL
  instead of an error, and ``NULLIF`` turns the empty text that a connection answers once any
  transaction of it has set the setting (PostgreSQL keeps the name, not the value) into NULL too.
  Without it, ``''::int`` fails with "invalid input syntax for type integer" on a reused connection.
- ``WITH CHECK`` refuses an insert or update that would write another tenant's row.

Run it with ``asyncecto migrate`` (copy it into your migrations folder), or in code with
``await asyncecto.migration.up(repo, 20261208000001, path_of_this_file)``.
"""

from asyncecto.migration import add, create, execute, table

#: the tenant in effect, NULL when there is none
TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::integer"


def change() -> None:
    with create(table("tenant_notes")):
        add("tenant_id", "integer", null=False)
        add("body", "text")
        add("deleted_at", "utc_datetime")
    execute(
        [
            "ALTER TABLE tenant_notes ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE tenant_notes FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant_isolation ON tenant_notes "
            f"USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})",
            # the application's role (not a superuser, no BYPASSRLS); name yours here:
            # "GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_notes TO app",
            # "GRANT USAGE ON SEQUENCE tenant_notes_id_seq TO app",
        ],
        [
            "DROP POLICY tenant_isolation ON tenant_notes",
            "ALTER TABLE tenant_notes NO FORCE ROW LEVEL SECURITY",
            "ALTER TABLE tenant_notes DISABLE ROW LEVEL SECURITY",
        ],
    )
