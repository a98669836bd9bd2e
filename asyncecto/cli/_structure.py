"""``dump`` and ``load``: the database structure through PostgreSQL's own ``pg_dump`` and ``psql``.

As ecto_sql does: ``pg_dump --schema-only --no-acl --no-owner`` (one ``--schema`` per prefix),
followed by the statements recording the applied versions (the adapter's ``dump_versions_sql``:
``INSERT INTO "<prefix>"."schema_migrations" (version) VALUES …``); ``psql --file … -v
ON_ERROR_STOP=1 --single-transaction`` loads it back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from asyncecto.embedded import bundled_bin
from asyncecto.errors import CommandError
from asyncecto.repo import RepoConfig

__all__ = ("client_env", "find_program", "pg_dump", "psql_load")


def find_program(name: str, action: str) -> str:
    """The full path of the PostgreSQL client program ``name``, or a :class:`CommandError` saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise CommandError(
            f"cannot {action}: {name} was not found on PATH\n\n"
            f"fix: install the PostgreSQL client programs (Debian/Ubuntu: apt-get install postgresql-client; "
            f"macOS: brew install libpq) and put the folder holding {name} on PATH"
        )
    return found


def client_env(config: RepoConfig) -> dict[str, str]:
    """The environment for libpq programs: the connection settings as ``PG*`` variables."""
    env = dict(os.environ)
    # libpq's multi-host lists: the programs reach the same server the repo does
    env["PGHOST"] = ",".join(host for host, _ in config.all_endpoints())
    env["PGPORT"] = ",".join(str(port) for _, port in config.all_endpoints())
    if config.target_session_attrs is not None:
        env["PGTARGETSESSIONATTRS"] = config.target_session_attrs
    env["PGDATABASE"] = config.database
    env["PGCONNECT_TIMEOUT"] = str(max(1, round(config.connect_timeout)))
    if config.user is not None:
        env["PGUSER"] = config.user
    if config.password is not None:
        env["PGPASSWORD"] = config.password
    if isinstance(config.ssl, str):
        env["PGSSLMODE"] = config.ssl
    elif config.ssl is not None:
        env["PGSSLMODE"] = "require" if config.ssl else "disable"
    if "application_name" in config.server_settings:
        env["PGAPPNAME"] = config.server_settings["application_name"]
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandError(
            (result.stderr or result.stdout).strip() or f"{Path(args[0]).name} exited with {result.returncode}"
        )


def pg_dump(config: RepoConfig, path: Path, prefixes: Sequence[str], inserts: str) -> None:
    """Dump the schema of ``config``'s database to ``path``, then append ``inserts`` (the applied versions)."""
    program = find_program("pg_dump", "dump the structure")
    args = [program, "--file", str(path), "--schema-only", "--no-acl", "--no-owner", "--no-password"]
    for prefix in prefixes:
        args += ["--schema", prefix]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run(args, client_env(config))  # the database comes from PGDATABASE
    except CommandError as exc:
        # pg_dump refuses a newer server; the embedded server ships a pg_dump of its own version
        bundled = bundled_bin()
        if "server version mismatch" not in str(exc) or bundled is None or not (bundled / "pg_dump").is_file():
            raise
        _run([str(bundled / "pg_dump"), *args[1:]], client_env(config))
    if inserts:
        with path.open("a", encoding="utf-8") as file:
            file.write("\n" + inserts)


def psql_load(config: RepoConfig, path: Path) -> None:
    """Run the SQL file ``path`` in ``config``'s database in one transaction, stopping at the first error."""
    program = find_program("psql", "load the structure")
    args = [program, "--quiet", "--no-psqlrc", "--no-password", "--file", str(path)]
    args += ["-v", "ON_ERROR_STOP=1", "--single-transaction"]  # the database comes from PGDATABASE
    _run(args, client_env(config))
