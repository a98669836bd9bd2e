"""Find a PostgreSQL to talk to, starting an embedded one when none is around.

Order: the ``DATABASE_URL`` environment variable; a server answering on
``127.0.0.1:5432``; a real PostgreSQL started from the ``pgserver`` package
(``pip install "asyncecto[embedded]"``) in a local folder. ``ASYNCECTO_EMBEDDED=1``
skips the first two and always uses the embedded server. Used by the examples
and the test suite; an application normally just passes its URL to ``Repo``.

.. code-block:: python

    url = asyncecto.embedded.database_url("weather_demo")
    async with Repo(url) as repo: ...
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from asyncecto.errors import ArgumentError, DatabaseUnavailableError

__all__ = ("bundled_bin", "database_url", "force_embedded", "server_answers", "start_embedded")

_servers: dict[Path, Any] = {}
# A unix socket path must stay under ~107 bytes; pgserver puts the socket in its data folder.
_MAX_SOCKET_DIR = 80


def force_embedded() -> bool:
    """Whether ``ASYNCECTO_EMBEDDED=1`` asks for the embedded server whatever else is around."""
    return os.environ.get("ASYNCECTO_EMBEDDED") == "1"


def server_answers(host: str = "127.0.0.1", port: int = 5432, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def bundled_bin() -> Path | None:
    """The folder of the PostgreSQL programs that the embedded server ships (``pg_dump``, ``psql``),
    or ``None`` when it is not installed. Nothing is started."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if folder.is_dir() else None


def start_embedded(folder: str | os.PathLike[str] = ".asyncecto/pgdata") -> str:
    """Start (or reuse) an embedded PostgreSQL keeping its data in ``folder``; its socket directory.

    The server stops when the process exits.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise DatabaseUnavailableError(
            "no PostgreSQL found: DATABASE_URL is not set, nothing answers on 127.0.0.1:5432, "
            'and the embedded server is not installed; pip install "asyncecto[embedded]", '
            "or start a server and set DATABASE_URL"
        ) from exc
    path = Path(folder).expanduser().resolve()
    if len(str(path)) > _MAX_SOCKET_DIR:
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"asyncecto-{digest}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path not in _servers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _servers[path] = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
    return str(path)


def database_url(
    database: str = "asyncecto_dev", *, folder: str | os.PathLike[str] = ".asyncecto/pgdata", env: str = "DATABASE_URL"
) -> str:
    """A URL for ``database``: ``$DATABASE_URL`` (or the variable ``env`` names), the local server,
    or an embedded one keeping its data in ``folder``.

    The database itself is not created; ``await Repo(url).storage_up()`` does that.

    :raises ArgumentError: ``database`` is not a non-empty name PostgreSQL can take (no NUL, valid Unicode)
    """
    name = _database_name(database)
    if not force_embedded():
        given = os.environ.get(env)
        if given:
            return given
        if server_answers():
            return f"postgres://postgres@127.0.0.1:5432/{name}"
    socket_dir = start_embedded(folder)
    return f"postgres://postgres@/{name}?host={quote(socket_dir)}"


def _database_name(database: object) -> str:
    """``database`` percent-encoded for a URL's path (a ``/`` in it too)."""
    if isinstance(database, str) and database and "\x00" not in database:
        try:
            return quote(database, safe="")
        except UnicodeEncodeError:
            pass
    raise ArgumentError(
        f"database_url expects a database name, got {database!r}\n\n"
        "fix: pass a non-empty str without NUL characters or lone surrogates, e.g. database_url('my_app_dev')"
    )
