"""A fake adapter (Ecto's ``Ecto.TestAdapter``): no database, every request of the Repo recorded.

It implements the adapter contracts of :mod:`asyncecto.adapters` and nothing more, so a Repo
running on it shows that the layers above ``adapters/`` need no PostgreSQL. Its "SQL" is a
readable record of what was asked (``insert posts (title) returning (id)``), not SQL.

Use it by URL: ``register()`` makes ``fake://`` serve it, and the URL's database names the
:class:`FakeDatabase` every adapter of that name shares (the script and the log)::

    register()
    db = FakeDatabase.named("blog")
    db.respond("insert posts", [(1,)])  # the next insert into posts returns the row (1,)
    async with Repo("fake://localhost/blog") as repo:
        post = await repo.insert(Post(title="hi"))
    db.statements()  # [Call('fetch', 'insert posts (title, …) returning (id)', ('hi', …)), …]
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from asyncecto import errors
from asyncecto.adapters import (
    Connection,
    ConnectionSettings,
    ListenConnection,
    NotificationCallback,
    RepoAdapter,
    Worker,
    register_adapter,
    unregister_adapter,
)
from asyncecto.errors import AsyncEctoError
from asyncecto.migration._ddl_commands import Execute
from asyncecto.migration._dsl import Command
from asyncecto.query._on_conflict import ConflictPlan
from asyncecto.query._plan import Planned

__all__ = ("SCHEME", "Call", "FakeAdapter", "FakeConnection", "FakeDatabase", "register", "unregister")

SCHEME = "fake"

#: the statement kinds a Connection runs (the rest of the log is lifecycle: checkout, checkin …)
STATEMENTS = ("fetch", "fetchrow", "execute", "command", "query", "copy", "copy_out", "batches")

_CONSTRAINTS: dict[type[AsyncEctoError], str] = {
    errors.UniqueViolationError: "unique",
    errors.ForeignKeyViolationError: "foreign_key",
    errors.CheckViolationError: "check",
    errors.ExclusionViolationError: "exclusion",
}


@attrs.frozen
class Call:
    """One request of the Repo: a statement (``kind`` is the Connection method), or a lifecycle
    step (``checkout``, ``checkin``, ``start``, ``stop`` …) with ``sql`` empty.

    :ivar conn: the number of the connection it ran on (0: none)
    :ivar plan: the planned query the statement was compiled from, if any
    """

    kind: str
    sql: str = ""
    params: tuple[Any, ...] = ()
    conn: int = 0
    plan: Planned | None = attrs.field(default=None, eq=False, repr=False)


Answer = Any | Callable[[Call], Any]


class FakeDatabase:
    """What every fake adapter of one database name shares: scripted answers and the log."""

    _all: ClassVar[dict[str, FakeDatabase]] = {}

    def __init__(self, name: str) -> None:
        self.name = name
        self.log: list[Call] = []
        self._script: list[tuple[str, deque[Answer]]] = []
        self.plans: dict[str, Planned] = {}
        self.exists = True  # for storage_up / storage_down
        self.connections = itertools.count(1)  # numbers the connections opened, from 1

    @classmethod
    def named(cls, name: str) -> FakeDatabase:
        """The database of that name, made empty the first time."""
        if name not in cls._all:
            cls._all[name] = FakeDatabase(name)
        return cls._all[name]

    @classmethod
    def drop(cls, name: str) -> None:
        cls._all.pop(name, None)

    # -- scripting --------------------------------------------------------------
    def respond(self, prefix: str, *answers: Answer) -> None:
        """The next statements whose text starts with ``prefix`` get ``answers``, one each, in order.

        An answer is the Connection method's result (rows for ``fetch``, a count for ``execute``,
        a tag for ``command`` …), an exception to raise, or a function of the :class:`Call`
        returning either. Statements with no answer left get the default (see :meth:`default`).
        """
        self._script.append((prefix, deque(answers)))

    def answer(self, call: Call) -> Any:
        for prefix, answers in self._script:
            if answers and call.sql.startswith(prefix):
                found = answers.popleft()
                found = found(call) if callable(found) and not isinstance(found, BaseException) else found
                if isinstance(found, BaseException):
                    raise found
                return found
        return self.default(call)

    @staticmethod
    def default(call: Call) -> Any:
        """No rows, one row hit by a write, the statement's text as its tag."""
        return {
            "fetch": [],
            "fetchrow": None,
            "execute": 1,
            "command": call.sql,
            "query": ([], [], "SELECT 0"),
            "copy": 0,
            "copy_out": 0,
        }.get(call.kind)

    def unused(self) -> list[tuple[str, list[Answer]]]:
        """Scripted answers no statement took."""
        return [(prefix, list(answers)) for prefix, answers in self._script if answers]

    # -- reading the log --------------------------------------------------------
    def statements(self) -> list[Call]:
        """The statements sent, in order."""
        return [c for c in self.log if c.kind in STATEMENTS]

    def texts(self) -> list[str]:
        """The text of each statement sent, in order."""
        return [c.sql for c in self.statements()]

    def steps(self) -> list[str]:
        """The whole log in short: ``checkout``, the statements' texts, ``checkin`` …"""
        return [c.sql if c.kind in STATEMENTS else c.kind for c in self.log]

    def clear(self) -> None:
        self.log.clear()
        self._script.clear()


class FakeConnection:
    """A checked-out fake connection: each statement is logged, then answered from the script."""

    def __init__(self, db: FakeDatabase, number: int) -> None:
        self.db = db
        self.number = number
        self.pid = number
        self.dirty = False
        self.closed = False
        self.statement_timeout: float | None = None
        #: as a server keeps it: in a transaction?, its savepoints, failed (every statement refused
        #: until a rollback, as PostgreSQL's "current transaction is aborted")
        self.transaction = False
        self.savepoints: list[str] = []
        self.failed = False

    def __repr__(self) -> str:
        return f"<FakeConnection {self.number}>"

    def _call(self, kind: str, sql: str, params: Sequence[Any]) -> Any:
        if self.closed:
            raise errors.ConnectionLostError(f"fake connection {self.number} was terminated")
        call = Call(kind, sql, tuple(params), self.number, self.db.plans.get(sql))
        self.db.log.append(call)
        control = self._control(sql)
        if control is not None:
            return control
        if self.failed:
            raise errors.TransactionAbortedError("current transaction is aborted (fake)", sqlstate="25P02")
        try:
            return self.db.answer(call)
        except AsyncEctoError:
            self.failed = self.transaction
            raise

    def _control(self, sql: str) -> str | None:
        """Play a transaction statement of :class:`FakeAdapter` on the connection's state; its tag."""
        word, _, name = sql.partition(" ")
        if word == "begin":
            self.transaction, self.savepoints, self.failed = True, [], False
        elif word == "commit":
            tag = "rolled back" if self.failed else "commit"
            self.transaction, self.savepoints, self.failed = False, [], False
            return tag
        elif sql == "rollback":
            self.transaction, self.savepoints, self.failed = False, [], False
        elif word == "rollback" and name.startswith("to "):
            self.savepoints = self.savepoints[: self.savepoints.index(name[3:]) + 1]
            self.failed = False
        elif word in ("savepoint", "release"):
            if self.failed:
                raise errors.TransactionAbortedError("current transaction is aborted (fake)", sqlstate="25P02")
            if word == "release":
                del self.savepoints[self.savepoints.index(name) :]
            else:
                self.savepoints.append(name)
        else:
            return None
        return sql

    async def fetch(self, sql: str, params: Sequence[Any], timeout: float | None) -> list[Any]:
        rows: list[Any] = self._call("fetch", sql, params)
        return rows

    async def fetchrow(self, sql: str, params: Sequence[Any], timeout: float | None) -> Any:
        return self._call("fetchrow", sql, params)

    async def uncached(self, kind: str, sql: str, params: Sequence[Any], timeout: float | None) -> Any:
        """``query_cache=False``: answered as the cached kinds are (a fake has no statement cache)."""
        return self._call(kind, sql, params)

    async def execute(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        count: int = self._call("execute", sql, params)
        return count

    async def command(self, sql: str, params: Sequence[Any], timeout: float | None) -> str:
        tag: str = self._call("command", sql, params)
        return tag

    async def query(self, sql: str, params: Sequence[Any], timeout: float | None) -> tuple[list[str], list[Any], str]:
        result: tuple[list[str], list[Any], str] = self._call("query", sql, params)
        return result

    async def set_statement_timeout(self, seconds: float | None) -> None:
        self.db.log.append(Call("set_statement_timeout", "", (seconds,), self.number))
        self.statement_timeout = seconds

    async def batches(
        self, sql: str, params: Sequence[Any], size: int, timeout: float | None = None
    ) -> AsyncGenerator[list[Any], None]:
        rows: list[Any] = self._call("batches", sql, params) or []
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    async def copy(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        count: int = self._call("copy", sql, params)
        return count

    async def copy_out(self, sql: str, params: Sequence[Any], timeout: float | None) -> int:
        count: int = self._call("copy_out", sql, params)
        return count

    def in_transaction(self) -> bool:
        return self.transaction

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.db.log.append(Call("terminate", conn=self.number))
        self.closed = True


def _cols(names: Sequence[str]) -> str:
    return "(" + ", ".join(names) + ")"


def _table(prefix: str | None, table: str) -> str:
    return f"{prefix}.{table}" if prefix else table


class FakeAdapter(RepoAdapter):
    """Every adapter contract, answered from the :class:`FakeDatabase` named by the URL's database."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.db = FakeDatabase.named(settings.database)
        self.idle: list[FakeConnection] = []
        self.in_use = 0
        self.checkouts = 0

    def _log(self, kind: str, conn: int = 0, *params: Any) -> None:
        self.db.log.append(Call(kind, "", params, conn))

    # -- Adapter ----------------------------------------------------------------
    async def start(self) -> None:
        self._log("start")

    async def stop(self, timeout: float) -> None:
        self._log("stop")

    async def checkout(self, timeout: float | None = None) -> Connection:
        conn = self.idle.pop() if self.idle else FakeConnection(self.db, next(self.db.connections))
        self.in_use += 1
        self.checkouts += 1
        self._log("checkout", conn.number)
        return conn

    async def checkin(self, conn: Connection) -> None:
        assert isinstance(conn, FakeConnection)
        self.in_use -= 1
        self._log("checkin", conn.number)
        if not conn.closed:
            if conn.transaction:  # as the PostgreSQL pool's reset
                conn._call("command", self.rollback_sql(), ())
            conn.dirty = False
            self.idle.append(conn)

    def workers(self) -> list[Worker]:
        return []

    def stats(self) -> dict[str, int]:
        return {
            "size": len(self.idle) + self.in_use,
            "idle": len(self.idle),
            "in_use": self.in_use,
            "checkouts": self.checkouts,
        }

    # -- QueryableAdapter -------------------------------------------------------
    def compile(self, planned: Planned) -> str:
        for text, known in self.db.plans.items():
            if known == planned:
                return text
        text = f"{planned.op} {_table(planned.prefix, planned.table)} #{len(self.db.plans) + 1}"
        self.db.plans[text] = planned
        return text

    def compile_aggregate(self, planned: Planned, func: str, column: int | None, wrap: bool) -> str:
        return f"{func}({'*' if column is None else column}) of {self.compile(planned)}"

    def copy_stdio(self, sql: str) -> Literal["in", "out"] | None:
        return None

    def copy_out_sql(self, query: str, format: str, header: bool) -> str:
        return f"copy out of ({query}) as {format}"

    def per_parent_sql(self, inner: str, key_param: int, key_type: Any, alias: str) -> str:
        return f"per key of ${key_param}: {inner}"

    def explain_sql(self, sql: str, options: Mapping[str, object]) -> str:
        return f"explain ({sql}) as {options.get('format', 'text')}"

    def rows_of_status(self, status: str, returned: int) -> int:
        return returned

    # -- TransactionAdapter -----------------------------------------------------
    def begin_sql(self, isolation: str | None, read_only: bool) -> str:
        return " ".join(["begin", *([isolation] if isolation else []), *(["read_only"] if read_only else [])])

    def commit_sql(self) -> str:
        return "commit"

    def rollback_sql(self) -> str:
        return "rollback"

    def savepoint_sql(self, name: str) -> str:
        return f"savepoint {name}"

    def release_sql(self, name: str) -> str:
        return f"release {name}"

    def rollback_to_sql(self, name: str) -> str:
        return f"rollback to {name}"

    def remark_sql(self, name: str, released: bool) -> str:
        return f"savepoint {name}"  # the fake's savepoints of one name stack up harmlessly

    def commit_rolled_back(self, status: str) -> bool:
        return status == "rolled back"

    def transaction_control(self, sql: str) -> str | None:
        word = sql.strip().split(" ", 1)[0].lower()
        return word if word in ("begin", "commit", "rollback") else None

    # -- SchemaAdapter ----------------------------------------------------------
    def insert_sql(self, prefix: str | None, table: str, columns: Sequence[str], returning: Sequence[str]) -> str:
        return f"insert {_table(prefix, table)} {_cols(columns)} returning {_cols(returning)}"

    def update_sql(
        self,
        prefix: str | None,
        table: str,
        columns: Sequence[str],
        filters: Sequence[str],
        returning: Sequence[str],
    ) -> str:
        return (
            f"update {_table(prefix, table)} set {_cols(columns)} where {_cols(filters)} returning {_cols(returning)}"
        )

    def delete_sql(self, prefix: str | None, table: str, filters: Sequence[str], returning: Sequence[str]) -> str:
        return f"delete {_table(prefix, table)} where {_cols(filters)} returning {_cols(returning)}"

    def insert_rows_sql(
        self,
        prefix: str | None,
        table: str,
        columns: Sequence[str],
        body: str,
        returning: Sequence[str],
        conflict: ConflictPlan | None,
        inserted_key: Sequence[str] | None,
    ) -> str:
        text = f"insert rows {_table(prefix, table)} {_cols(columns)} {body} returning {_cols(returning)}"
        if conflict is not None:
            text += f" on conflict {conflict.action}"
        return text

    def values_body(self, start: int, width: int, count: int) -> str:
        return f"values(${start}, {count}x{width})"

    def cells_body(self, rows: Sequence[Sequence[int | str | None]]) -> str:
        return f"cells{[list(r) for r in rows]}"

    def unnest_body(self, start: int, types: Sequence[Any], columns: Sequence[Sequence[Any]] = ()) -> str | None:
        return None  # rows go as one parameter per value

    def select_sql(self, planned: Planned) -> str:
        return f"({self.compile(planned)})"

    def copy_sql(self, prefix: str | None, table: str, columns: Sequence[str]) -> str:
        return f"copy into {_table(prefix, table)} {_cols(columns)}"

    def to_constraint(self, exc: AsyncEctoError) -> tuple[str, str] | None:
        kind = _CONSTRAINTS.get(type(exc))
        if kind is None or not isinstance(exc, errors.DatabaseError):
            return None
        return kind, exc.constraint_name or ""

    # -- MigrationAdapter -------------------------------------------------------
    def ddl_sql(self, command: Command, prefix: str | None) -> list[str]:
        up = getattr(command, "up", None)
        if isinstance(command, Execute) and isinstance(up, str | list):  # raw text: passed through as given
            return [up] if isinstance(up, str) else list(up)
        return [f"ddl {self.ddl_log(command, prefix)}"]

    def ddl_log(self, command: Command, prefix: str | None = None) -> str:
        return f"{type(command).__name__} {prefix or ''}".strip()

    def create_versions_table_sql(self, prefix: str | None, table: str) -> str:
        return f"create versions {_table(prefix, table)}"

    def lost_create_race(self, exc: errors.DatabaseError) -> bool:
        return "already exists" in exc.message

    def versions_sql(self, prefix: str | None, table: str) -> str:
        return f"versions of {_table(prefix, table)}"

    def insert_version_sql(self, prefix: str | None, table: str) -> str:
        return f"insert version into {_table(prefix, table)}"

    def delete_version_sql(self, prefix: str | None, table: str) -> str:
        return f"delete version from {_table(prefix, table)}"

    def dump_versions_sql(self, prefix: str | None, table: str, versions: Sequence[int]) -> str:
        return ""

    def table_exists_sql(self, prefix: str | None, table: str) -> str:
        return f"exists {_table(prefix, table)}"

    def no_statement_timeout_sql(self) -> str:
        return "no statement timeout"

    def current_schema_sql(self) -> str:
        return "current schema"

    def try_lock_sql(self) -> str:
        return "try lock $1"

    def lock_sql(self) -> str:
        return "lock $1"

    def unlock_sql(self) -> str:
        return "unlock $1"

    async def expire_statement_caches(self) -> int:
        return 0

    # -- StorageAdapter ---------------------------------------------------------
    async def storage_up(self) -> Literal["created", "already_up"]:
        self._log("storage_up")
        created, self.db.exists = not self.db.exists, True
        return "created" if created else "already_up"

    async def storage_down(self, *, force: bool = False) -> Literal["dropped", "already_down"]:
        self._log("storage_down")
        dropped, self.db.exists = self.db.exists, False
        return "dropped" if dropped else "already_down"

    # -- NotificationAdapter ----------------------------------------------------
    def notify_sql(self) -> str:
        return "notify $1 $2"

    async def open_listener(
        self, on_notification: NotificationCallback, on_lost: Callable[[], None]
    ) -> ListenConnection:
        raise errors.DatabaseUnavailableError("the fake adapter has no listener connection")


def register() -> None:
    """Serve ``fake://`` URLs with :class:`FakeAdapter` (tests only)."""
    register_adapter(SCHEME, FakeAdapter)


def unregister() -> None:
    unregister_adapter(SCHEME)
