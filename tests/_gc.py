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

__all__ = ("new_objects_only",)


@contextlib.contextmanager
def new_objects_only() -> Iterator[None]:
    """Inside the block, collections (``gc.collect()`` too) walk only the objects allocated in it."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
