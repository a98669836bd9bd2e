"""Where a constraint violation becomes a changeset error.

The adapter reads the database's error as ``(kind, constraint name)`` (``to_constraint``: PostgreSQL's
unique, foreign key, check and exclusion violations); the Repo's write path asks
:func:`match_constraint` whether the changeset declared that constraint (``unique_constraint`` and
the others, in ``_constraints``). If so, the violation is an error on the changeset and the write
raises ``InvalidChangesetError``; if not, ``ConstraintError`` names the constraint to declare.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._changeset import Changeset
from ._constraints import Constraint

__all__ = ("match_constraint",)


def match_constraint(cs: Changeset[Any], kind: str, name: str) -> Changeset[Any] | None:
    """The changeset with the violation as an error, if a declared constraint matches it."""
    for c in cs.constraints:
        if isinstance(c, Constraint) and c.matches(kind, name):
            keys = {"constraint": c.error_type, "constraint_name": name}
            return attrs.evolve(cs, errors=((c.field, (c.error_message, keys)), *cs.errors), valid=False)
    return None
