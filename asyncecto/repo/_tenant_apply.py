"""Setting ``repo.tenant``'s tenant on a connection's transaction, and putting the enclosing one's
back after a savepoint (see :mod:`asyncecto.repo._tenant`)."""

from __future__ import annotations

from ._core import DEFAULT, Bound, RepoCore

__all__ = ("savepoint_ended", "sync_tenant")

#: a value no setting can hold (PostgreSQL text has no NUL): the connection's value is not known,
#: so the next statement sets it again
_UNKNOWN = "\x00unknown"


async def sync_tenant(core: RepoCore, bound: Bound) -> None:
    """Make ``bound``'s transaction hold the tenant in effect (nothing to send when it does)."""
    want = core.tenant_var.get()
    await _apply(core, bound, None if want is None else want.key)


async def _apply(core: RepoCore, bound: Bound, key: tuple[str, str] | None) -> None:
    had: tuple[str, str] | None = bound.tenant
    if had == key:
        return
    sql = core.adapter.set_local_sql()
    # until the server has answered, the connection's value is not known: a statement after an
    # interruption sets it again
    bound.tenant = (had[0] if had is not None else key[0] if key is not None else "", _UNKNOWN)
    if had is not None and (key is None or had[0] != key[0]):
        await core.run("execute", sql, [had[0], ""], DEFAULT, None, pinned=bound.conn)
    if key is not None:
        await core.run("execute", sql, list(key), DEFAULT, None, pinned=bound.conn)
    bound.tenant = key


async def savepoint_ended(core: RepoCore, bound: Bound, before: tuple[str, str] | None, released: bool) -> None:
    """After a savepoint ends: put back the tenant its enclosing transaction held. A rolled-back
    savepoint was undone by the server; a released one keeps its setting, which is set back."""
    if bound.tenant == before:
        return
    if not released:
        bound.tenant = before
        return
    await _apply(core, bound, before)
