"""Changesets: filter, cast and validate changes before they reach the database.

A :class:`Changeset` is a frozen value; steps compose with ``|``::

    cs = cast(User(), params, ["name", "email"]) | validate_required(["name"])
"""

from __future__ import annotations

from ._assoc_changes import cast_assoc as cast_assoc
from ._assoc_changes import get_assoc as get_assoc
from ._assoc_changes import put_assoc as put_assoc
from ._assoc_changes import reorder_assoc as reorder_assoc
from ._cast import add_error as add_error
from ._cast import cast as cast
from ._cast import changed as changed
from ._cast import delete_change as delete_change
from ._cast import empty_values as empty_values
from ._cast import fetch_change as fetch_change
from ._cast import fetch_field as fetch_field
from ._cast import field_missing as field_missing
from ._cast import force_change as force_change
from ._cast import get_change as get_change
from ._cast import get_field as get_field
from ._change import apply_action as apply_action
from ._change import apply_changes as apply_changes
from ._change import change as change
from ._change import merge as merge
from ._change import update_change as update_change
from ._changeset import Changeset as Changeset
from ._changeset import Step as Step
from ._constraints import Constraint as Constraint
from ._constraints import assoc_constraint as assoc_constraint
from ._constraints import check_constraint as check_constraint
from ._constraints import exclusion_constraint as exclusion_constraint
from ._constraints import foreign_key_constraint as foreign_key_constraint
from ._constraints import no_assoc_constraint as no_assoc_constraint
from ._constraints import unique_constraint as unique_constraint
from ._embed_changes import cast_embed as cast_embed
from ._embed_changes import get_embed as get_embed
from ._embed_changes import put_embed as put_embed
from ._relations import put_change as put_change
from ._traverse import traverse_errors as traverse_errors
from ._traverse import traverse_validations as traverse_validations
from ._unsafe_unique import unsafe_validate_unique as unsafe_validate_unique
from ._validations import validate_acceptance as validate_acceptance
from ._validations import validate_change as validate_change
from ._validations import validate_confirmation as validate_confirmation
from ._validations import validate_exclusion as validate_exclusion
from ._validations import validate_format as validate_format
from ._validations import validate_inclusion as validate_inclusion
from ._validations import validate_length as validate_length
from ._validations import validate_number as validate_number
from ._validations import validate_required as validate_required
from ._validations import validate_subset as validate_subset
from ._validations import validations as validations
from ._write_hooks import optimistic_lock as optimistic_lock
from ._write_hooks import prepare_changes as prepare_changes

__all__ = (
    "Changeset",
    "Constraint",
    "Step",
    "add_error",
    "apply_action",
    "apply_changes",
    "assoc_constraint",
    "cast",
    "cast_assoc",
    "cast_embed",
    "change",
    "changed",
    "check_constraint",
    "delete_change",
    "empty_values",
    "exclusion_constraint",
    "fetch_change",
    "fetch_field",
    "field_missing",
    "force_change",
    "foreign_key_constraint",
    "get_assoc",
    "get_change",
    "get_embed",
    "get_field",
    "merge",
    "no_assoc_constraint",
    "optimistic_lock",
    "prepare_changes",
    "put_assoc",
    "put_change",
    "put_embed",
    "reorder_assoc",
    "traverse_errors",
    "traverse_validations",
    "unique_constraint",
    "unsafe_validate_unique",
    "update_change",
    "validate_acceptance",
    "validate_change",
    "validate_confirmation",
    "validate_exclusion",
    "validate_format",
    "validate_inclusion",
    "validate_length",
    "validate_number",
    "validate_required",
    "validate_subset",
    "validations",
)
