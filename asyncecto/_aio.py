"""Small asyncio helpers shared by the pool and the Repo (internal).

Rule for cleanup code: never two :func:`finish` calls in sequence in one ``except``/``finally``
(the first re-raises the caller's cancellation and the second never runs); group the cleanup
into one job and finish that.

:func:`finish` runs the cleanup in a task of its own; :func:`finish_inline` (same guarantees) runs
it in the caller's task and moves it to a task only when a cancellation arrives — for the hot
path's cleanup (a transaction's COMMIT, SAVEPOINT, RELEASE), whose work holds nothing bound to its
task across an ``await``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import anyio

from asyncecto.errors import ConnectionLostError

__all__ = ("finish", "finish_inline")

logger = logging.getLogger("asyncecto")

#: how long ``finish`` still waits for the work once ``abandon`` has cut its connection
_AFTER_ABANDON = 1.0

#: work given up on (still running after abandon): kept referenced until it ends
_orphans: set[asyncio.Task[None]] = set()


async def finish(
    work: Coroutine[Any, Any, None], *, limit: float | None = None, abandon: Callable[[], None] | None = None
) -> None:
    """Run cleanup ``work`` to its end, even if the caller is cancelled meanwhile.

    The work runs in a task of its own. Not cancelled, the caller waits for it and gets its
    result or error. Cancelled (anyio scope, ``asyncio.timeout``, ``task.cancel()``), the caller
    keeps waiting, shielded, at most ``limit`` seconds more; then ``abandon()`` cuts the work's
    connection and the work gets one more second. Then the caller's own cancellation is raised
    as itself (anyio knows its cancellations by their message), the work's error dropped.
    Nothing here calls ``uncancel()``: the count belongs to whoever cancelled.
    """
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
    me = asyncio.current_task()
    before = me.cancelling() if me is not None else 0
    caught: asyncio.CancelledError | None = None
    try:
        await asyncio.shield(task)  # unshielded from anyio: the first cancellation is seen here
    except asyncio.CancelledError as exc:
        if not task.done() or me is None or me.cancelling() > before:
            caught = exc
    await _settle(task, caught, limit, abandon)


async def finish_inline(
    work: Coroutine[Any, Any, None], *, limit: float | None = None, abandon: Callable[[], None] | None = None
) -> None:
    """:func:`finish`, without a task while no cancellation comes: the work runs in the caller's task.

    The caller's task awaits, in place of each future the work waits for, a proxy future of its own
    (a cancellation cancels the proxy, never the work's future: asyncpg's waiter is not touched). A
    cancellation arriving so (``task.cancel()``, ``asyncio.timeout``, an anyio scope) moves the rest of
    the work into a task, which first waits for the future the work was waiting for; from there on
    it is :func:`finish` exactly: the caller waits shielded (``limit``, ``abandon``), then its own
    cancellation is raised. A work that ends uncancelled costs one more loop pass per wait, no task.

    Only for work that holds nothing bound to its task across an ``await`` — no ``asyncio.timeout``,
    no anyio cancel scope, no context-variable token to reset — since it may move to another task
    half-way (the transaction's COMMIT: one statement; a checkin needing I/O goes through :func:`finish`).
    """
    me = asyncio.current_task()
    before = me.cancelling() if me is not None else 0
    try:
        moved = await _Inline(work)
    except asyncio.CancelledError as exc:  # the work's own future was cancelled, not its caller
        if me is not None and me.cancelling() > before:
            raise
        raise ConnectionLostError("the connection's cleanup was interrupted (its future was cancelled)") from exc
    if moved is not None:
        task, caught = moved
        await _settle(task, caught, limit, abandon)


class _Inline:
    """Awaitable driving ``work`` in the awaiting task (see :func:`finish_inline`): ``None`` once the
    work ended; ``(the task now running the rest of it, the caller's cancellation)`` if one came."""

    __slots__ = ("work",)

    def __init__(self, work: Coroutine[Any, Any, None]) -> None:
        self.work = work

    def __await__(self) -> Generator[Any, Any, tuple[asyncio.Task[None], asyncio.CancelledError] | None]:
        work = self.work
        loop = asyncio.get_running_loop()
        thrown: BaseException | None = None
        while True:
            try:  # the work's errors (and its own cancellation) propagate
                waited = work.send(None) if thrown is None else work.throw(thrown)
            except StopIteration:
                return None
            thrown = None
            blocking = getattr(waited, "_asyncio_future_blocking", None)
            if blocking:  # an asyncio future: wait for a proxy of it (what a cancellation cancels)
                waited._asyncio_future_blocking = False
                proxy: asyncio.Future[None] = loop.create_future()
                done = _resolver(proxy)
                waited.add_done_callback(done)
                try:
                    yield from proxy
                except asyncio.CancelledError as exc:
                    waited.remove_done_callback(done)
                    return _moved(loop, work, waited), exc
            else:  # a bare yield (asyncio.sleep(0)): passed through; the work resumes as after it
                try:
                    yield waited
                except asyncio.CancelledError as exc:
                    return _moved(loop, work, None), exc
                except BaseException as exc:  # what the task throws at a bad yield: the work's to handle
                    thrown = exc


def _resolver(proxy: asyncio.Future[None]) -> Callable[[Any], None]:
    def done(_: Any) -> None:
        if not proxy.done():
            proxy.set_result(None)

    return done


def _moved(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None], waited: Any) -> asyncio.Task[None]:
    """A task running the rest of ``work`` (suspended waiting for ``waited``, if a future)."""
    return loop.create_task(_rest(work, waited))


async def _rest(work: Coroutine[Any, Any, None], waited: Any) -> None:
    try:
        if waited is not None and not waited.done():
            await asyncio.wait((waited,))  # never cancels it
    except BaseException as exc:  # this task cancelled meanwhile (a loop shutting down): the work's to see
        await _Resumed(work, exc)
        return
    await _Resumed(work)


class _Resumed:
    """Awaitable resuming a suspended ``work`` whose wait is over (or throwing ``thrown`` into it):
    ``yield from`` for a started coroutine."""

    __slots__ = ("thrown", "work")

    def __init__(self, work: Coroutine[Any, Any, None], thrown: BaseException | None = None) -> None:
        self.work = work
        self.thrown = thrown

    def __await__(self) -> Generator[Any, Any, None]:
        work = self.work
        sent: Any = None
        thrown = self.thrown
        while True:
            try:
                waited = work.send(sent) if thrown is None else work.throw(thrown)
            except StopIteration:
                return
            sent, thrown = None, None
            try:
                sent = yield waited
            except BaseException as exc:  # the task's cancellation (only abandon's cut makes one likely)
                thrown = exc


async def _settle(
    task: asyncio.Task[None],
    caught: asyncio.CancelledError | None,
    limit: float | None,
    abandon: Callable[[], None] | None,
) -> None:
    """``finish``'s end: a cancelled caller waits for ``task`` (shielded, ``limit``, then ``abandon``),
    then its cancellation is raised; otherwise the work's outcome is."""
    if caught is not None and not task.done():
        caught = await _wait_shielded(task, limit) or caught
        if not task.done() and abandon is not None:
            abandon()  # the work's pending I/O fails at once
            caught = await _wait_shielded(task, _AFTER_ABANDON) or caught
        if not task.done():
            logger.warning("cleanup still running %.1fs after its connection was cut; left behind", _AFTER_ABANDON)
            _orphans.add(task)
            task.add_done_callback(_forget)
    if caught is not None:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the cancellation wins
        raise caught
    if task.cancelled():  # the work was cancelled, its caller was not: never a bare CancelledError
        try:
            task.result()
        except asyncio.CancelledError as exc:
            raise ConnectionLostError("the connection's cleanup was interrupted (its task was cancelled)") from exc
    task.result()


async def _wait_shielded(task: asyncio.Task[None], limit: float | None) -> asyncio.CancelledError | None:
    """Wait for ``task`` at most ``limit`` seconds, shielded from anyio scopes (whose cancellation is
    re-delivered at every wakeup: no busy loop here); the last native cancellation met, if any."""
    caught: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True) as scope:
        if limit is not None:
            scope.deadline = anyio.current_time() + limit
        while not task.done():
            try:
                await asyncio.wait({task})  # never cancels the work, never raises its error
            except asyncio.CancelledError as exc:
                if scope.cancel_called:
                    break  # our own deadline: the scope uncancels what it cancelled
                if not task.done():
                    caught = exc  # another task.cancel(): kept, raised once the work is done
    return caught


def _forget(task: asyncio.Task[None]) -> None:
    _orphans.discard(task)
    if not task.cancelled():
        task.exception()
