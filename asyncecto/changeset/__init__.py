"""Changesets: filter, cast and validate changes before they reach the database.

A :class:`Changeset` is a frozen value; steps compose with ``|``.
"""

from __future__ import annotations

from ._changeset import Changeset as Changeset
from ._changeset import change as change

__all__ = ("Changeset", "change")
