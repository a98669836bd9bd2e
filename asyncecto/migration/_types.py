"""Column types and options as a migration writes them, read into what the commands hold.

``add("tags", ["string"], null=False)`` gets the type ``("array", "string")`` and
:class:`~asyncecto.migration._ddl_commands.ColumnOptions` with ``null=False``; a wrong type or an
unknown option raises :class:`~asyncecto.errors.ArgumentError` here, before anything is buffered.

>>> _column_type(["string"])
('array', 'string')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from asyncecto.errors import ArgumentError

from ._ddl_commands import ColumnOptions, ColumnType, Reference

__all__ = ()


def _invalid_type(type: object) -> ArgumentError:
    return ArgumentError(
        f"invalid migration type: {type!r}. Expected one of:\n\n"
        '  * a string, such as "string" or "integer unsigned"\n'
        '  * a tuple for a composite type, such as ("array", "integer") or ("map", "string"),\n'
        '    or a one-element list for an array: ["integer"]\n'
        '  * a reference, such as references("users")\n\n'
        "Strings other than Ecto's type names are sent to the database as is. "
        "asyncecto field types (asyncecto.types) are not migration types: use their database types instead"
    )


def _column_type(type: object, top: bool = True) -> ColumnType:
    if isinstance(type, str):
        if type == "datetime":
            raise ArgumentError(
                'the "datetime" type in migrations is not supported, please use "utc_datetime" or '
                '"naive_datetime" instead'
            )
        if not type:
            raise _invalid_type(type)
        return type
    if isinstance(type, Reference) and top:
        return type
    if isinstance(type, list) and len(type) == 1:
        return ("array", _column_type(type[0], False))
    if isinstance(type, tuple) and len(type) == 2 and isinstance(type[0], str) and type[0]:
        return (type[0], _column_type(type[1], False))
    raise _invalid_type(type)


_OPTION_NAMES = tuple(a.name for a in attrs.fields(ColumnOptions))


def _options(column: str, opts: Mapping[str, Any]) -> ColumnOptions:
    unknown = sorted(set(opts) - set(_OPTION_NAMES))
    if unknown:
        raise ArgumentError(
            f"unknown option {unknown[0]!r} for column {column!r}; expected some of: {', '.join(_OPTION_NAMES)}"
        )
    if opts.get("scale") is not None and opts.get("precision") is None:
        raise ArgumentError(f"column {column} is missing precision option")
    return ColumnOptions(**opts)
