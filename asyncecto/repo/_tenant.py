"""Tenants for PostgreSQL row-level security: ``async with repo.tenant(tenant_id):``.

Inside the block, every statement of this repo (from this task and the tasks it spawns) runs in a
transaction whose setting ``app.tenant_id`` (or the one named) holds the tenant, set with the
adapter's transaction-local statement (``SELECT set_config($1, $2, true)``, SET LOCAL semantics),
so RLS policies reading ``current_setting('app.tenant_id', true)`` see it:

- in a transaction (``repo.transaction()``, a Multi, a stream's), the setting is sent once,
  before the transaction's first statement, and again only if the tenant in effect changes;
- a statement outside a transaction runs in a short one of its own (BEGIN, the setting, the
  statement, COMMIT) — wrap many calls in one ``repo.transaction()`` to save round trips;
- nothing is set for the session: the setting ends with the transaction, so a connection goes
  back to the pool (or through a transaction pooler) without it, and a later checkout sees no
  tenant. A savepoint (nested transaction) that changed the tenant puts the enclosing one's
  back when it is released; a rolled-back one is undone by the server.

Which tenant a connection's transaction holds is tracked on its :class:`~._core.Bound`
(``bound.tenant``: ``(setting, value)``, or ``None``), so a statement costs one comparison when
nothing changes.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from asyncecto.errors import ArgumentError

from ._core import Bound, RepoCore
from ._tenant_apply import sync_tenant
from ._transaction import Transaction

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("DEFAULT_SETTING", "Tenant", "TenantScope", "Tenants", "run_for_tenant")

#: the setting ``repo.tenant`` sets unless told otherwise
DEFAULT_SETTING = "app.tenant_id"
#: a custom setting's name: PostgreSQL wants a prefix and a dot (``app.tenant_id``)
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)+\Z")


class Tenant(NamedTuple):
    """The tenant in effect: the setting, its text, and the id as given (``repo.current_tenant()``)."""

    setting: str
    value: str
    id: Any

    @property
    def key(self) -> tuple[str, str]:
        return (self.setting, self.value)


def _text(tenant_id: Any) -> str:
    if isinstance(tenant_id, bool) or not isinstance(tenant_id, int | str | uuid.UUID):
        raise ArgumentError(
            f"repo.tenant expects the tenant's id as an int, a str or a UUID, got {tenant_id!r}\n\n"
            "fix: async with repo.tenant(account.id): ... (or repo.tenant(None) for a block without a tenant)"
        )
    text = str(tenant_id)
    if "\x00" in text:
        raise ArgumentError(f"a tenant id cannot hold a NUL character, got {tenant_id!r}")
    return text


def _checked_setting(setting: Any) -> str:
    if not isinstance(setting, str) or not _SETTING_NAME.match(setting):
        raise ArgumentError(
            f"repo.tenant setting= must be a custom setting name with a prefix, such as 'app.tenant_id', "
            f"got {setting!r}\n\nfix: repo.tenant(42, setting='app.tenant_id'); the RLS policy reads it with "
            "NULLIF(current_setting('app.tenant_id', true), '')::int"
        )
    return setting


class TenantScope:
    """``async with repo.tenant(42):`` (also a plain ``with``): the tenant for the block.

    It holds for the repo in effect when the block is entered (with a dynamic repo, enter
    ``repo.tenant`` inside ``repo.using(other)``). Nesting works; the tenant before comes back on exit.
    """

    __slots__ = ("_repo", "_tenant", "_token", "_var")

    def __init__(self, repo: Tenants, tenant: Tenant | None) -> None:
        self._repo = repo
        self._tenant = tenant
        self._var: contextvars.ContextVar[Tenant | None] | None = None
        self._token: contextvars.Token[Tenant | None] | None = None

    def __enter__(self) -> Any:
        if self._token is not None:
            raise ArgumentError("this repo.tenant(...) block is already entered; call repo.tenant(id) again")
        core = self._repo._executor
        if self._tenant is not None:
            core.adapter.set_local_sql()  # an adapter without transaction-local settings refuses here
        core.tenant_run, core.tenant_sync = run_for_tenant, sync_tenant  # RepoCore.run's way here
        self._var = core.tenant_var
        self._token = self._var.set(self._tenant)
        return None if self._tenant is None else self._tenant.id

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        token, var = self._token, self._var
        self._token = self._var = None
        if token is None or var is None:
            return
        try:
            var.reset(token)
        except ValueError:  # left in another context
            var.set(token.old_value if token.old_value is not contextvars.Token.MISSING else None)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Tenants:
    """The Repo's ``tenant`` and ``current_tenant``."""

    _executor: RepoCore

    def tenant(self, tenant_id: Any, *, setting: str = DEFAULT_SETTING) -> TenantScope:
        """Within the block, every statement of this repo runs in a transaction whose ``setting``
        holds ``tenant_id`` (as text), for row-level security policies to read:

        .. code-block:: python

            async with repo.tenant(account.id):
                posts = await repo.all(Post)           # only the rows the policy lets through
                async with repo.transaction():         # SELECT set_config('app.tenant_id', $1, true)
                    await repo.insert(post)            # right after BEGIN

        The setting is transaction-local (SET LOCAL), never left on a pooled connection, so it
        is safe behind a transaction pooler. A statement outside a transaction runs in a short
        one of its own. ``repo.tenant(None)`` is a block without a tenant (an explicit opt-out
        inside another tenant's block). The policy should read the setting with
        ``NULLIF(current_setting('app.tenant_id', true), '')``: a connection that had a tenant
        in an earlier transaction answers ``''``, not NULL.

        :param tenant_id: an int, a str or a UUID (``None``: no tenant)
        :param setting: the custom setting to set (``prefix.name``)
        :raises ArgumentError: another kind of id, or a setting name without a prefix
        """
        name = _checked_setting(setting)
        return TenantScope(self, None if tenant_id is None else Tenant(name, _text(tenant_id), tenant_id))

    def current_tenant(self) -> Any:
        """The id given to the innermost :meth:`tenant` block in effect here, or ``None``."""
        tenant = self._executor.tenant_var.get()
        return None if tenant is None else tenant.id


# -- the statement path (RepoCore.run calls it through ``core.tenant_run``) ---------------------------
async def run_for_tenant(
    core: RepoCore,
    bound: Bound | None,
    kind: str,
    sql: str,
    params: Any,
    timeout: Any,
    source: str | None,
    decode: Callable[[Any], Any] | None,
    client_timeout: float | None,
) -> tuple[Any, Any]:
    """``core.run`` of a statement whose connection does not yet hold the tenant in effect: in a
    transaction, set it first; outside one, run the statement in a short transaction of its own."""
    if bound is not None:
        core._check_owner(bound)  # a connection of another task, or of a block that has ended: refused
    if bound is not None and bound.depth > 0:
        await sync_tenant(core, bound)
        return await core.run(kind, sql, params, timeout, source, decode, None, client_timeout)
    async with Transaction(core):
        result = await core.run(kind, sql, params, timeout, source, decode, None, client_timeout)
    return result
