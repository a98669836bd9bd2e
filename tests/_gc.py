"""Collecting the garbage one test made without scanning the whole heap again (test support).

A full ``gc.collect()`` walks every tracked object of the worker (the modules, hypothesis's caches, ...);
a test's leak check only needs the objects the test allocated. ``gc.freeze()`` at the test's start moves
everything alive then out of the collector's sight; a collection at its end then walks only what the
test allocated (garbage cycles among them, with their finalizers: a task's unretrieved exception, an
unclosed connection's ``ResourceWarning``), and ``gc.unfreeze()`` hands the older objects back.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ("freeze_what_lives_on", "new_objects_only")


@contextlib.contextmanager
def new_objects_only() -> Iterator[None]:
    """Inside the block, collections (``gc.collect()`` too) walk only the objects allocated in it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def freeze_what_lives_on(module: str) -> None:
    """At the first test of each ``module``: collect, then take what is alive out of the collector's
    sight (the imported modules, the collected tests, session fixtures, hypothesis's strategies).
    Nearly all of it lives to the end of the run, and every automatic full collection would walk it
    again: about a tenth of a worker's CPU. Skipped while something is frozen (a ``new_objects_only``
    block undoes it at its end, and the next module freezes again)."""
    global _last_module
    if module == _last_module:
        return
    _last_module = module
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


_last_module = ""
