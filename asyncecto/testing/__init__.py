"""Tests in a transaction that is rolled back: Ecto's SQL sandbox, and a pytest plugin.

.. code-block:: python

    from asyncecto.testing import sandbox

    async with repo:
        async with sandbox(repo):            # every task's queries on this repo run in it
            await repo.insert(Post(title="hello"))
            assert await repo.aggregate(Post, "count") == 1
        # rolled back: nothing was committed

With pytest, the plugin (registered through the ``pytest11`` entry point) gives each test
a sandbox through the ``sandbox`` fixture; see ``docs/testing.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from asyncecto.errors import ArgumentError, SandboxError
from asyncecto.repo._core import RepoCore, executor_of
from asyncecto.repo._sandbox import Sandbox

__all__ = ("Sandbox", "checkin", "checkout", "mode", "sandbox", "unboxed", "unboxed_run")


def _core(repo: Any) -> RepoCore:
    return executor_of(repo)


def sandbox(
    repo: Any,
    *,
    shared: bool = True,
    isolation: str | None = None,
    wait_timeout: float | None = None,
    ownership_timeout: float | None = None,
) -> Sandbox:
    """A sandbox on ``repo``: ``async with sandbox(repo) as sb:`` — rolled back at the end.

    :param shared: every task's statements on the repo run in it (Ecto's shared mode); with
        ``False`` only this task and the tasks it spawns do (others enter with ``sb.allow()``)
    :param isolation: the sandbox transaction's isolation level (``repeatable_read``, ``serializable``)
    :param wait_timeout: seconds a task waits for the connection while another task holds it
        (default: the repo's ``pool_timeout``); then :class:`~asyncecto.errors.SandboxError`
    :param ownership_timeout: seconds the sandbox may be held (Ecto's ``ownership_timeout``; default
        ``None``, no limit): past it the transaction is rolled back, the connection taken back (cut
        if a statement is in flight) and any further use, or the block's end, raises
        :class:`~asyncecto.errors.SandboxOwnershipTimeoutError`
    """
    return Sandbox(
        _core(repo), shared=shared, isolation=isolation, wait_timeout=wait_timeout, ownership_timeout=ownership_timeout
    )


async def checkout(
    repo: Any,
    *,
    shared: bool = True,
    isolation: str | None = None,
    wait_timeout: float | None = None,
    ownership_timeout: float | None = None,
) -> Sandbox:
    """Open a sandbox without a block (Ecto's ``Sandbox.checkout/2``); end it with :func:`checkin`.

    For setup/teardown hooks that cannot wrap the test in ``async with sandbox(repo):``. A private
    one (``shared=False``) is seen only in the context that called ``checkout``.
    """
    sb = sandbox(
        repo, shared=shared, isolation=isolation, wait_timeout=wait_timeout, ownership_timeout=ownership_timeout
    )
    await sb.__aenter__()
    return sb


async def checkin(repo: Any) -> None:
    """Roll back and end this task's sandbox on ``repo`` (Ecto's ``Sandbox.checkin/1``).

    :raises SandboxError: no sandbox is open for this task
    :raises SandboxOwnershipTimeoutError: it was held past its ``ownership_timeout``
    """
    core = _core(repo)
    sb = core.ownership.current()
    if sb is None or (sb.state != "open" and not sb.timed_out):
        raise SandboxError(core.name, "there is no open sandbox to check in", "call checkout(repo) first")
    await sb.close()  # after an ownership timeout, raises SandboxOwnershipTimeoutError


def mode(repo: Any, value: str) -> None:
    """``"manual"``: a statement from a task with no sandbox raises ``SandboxError`` (Ecto's
    ``:manual``); ``"auto"`` (the default): such a statement runs on the pool and commits."""
    core = _core(repo)
    if value not in ("auto", "manual"):
        raise ArgumentError(f"sandbox mode must be 'auto' or 'manual', got {value!r}")
    core.ownership.mode = value
    if value == "manual":
        core.ownership.active = True


@contextlib.contextmanager
def unboxed(repo: Any) -> Iterator[None]:
    """Run the block's statements outside any sandbox, on the pool, committing (Ecto's ``unboxed_run``);
    inside a sandboxed transaction too (the block does not see that transaction's writes).

    .. code-block:: python

        with unboxed(repo):
            await repo.insert(Setting(key="seeded"))   # committed: clean it up yourself
    """
    with _core(repo).ownership.outside():
        yield


async def unboxed_run(repo: Any, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """``await fn(repo)`` outside any sandbox, committing; its result (Ecto's ``unboxed_run/2``)."""
    with unboxed(repo):
        return await fn(repo)
