"""Loaders: rows into structs, with one loader built per result shape (not per row).

A loader writes each slot through the slot's own member definition, bypassing the
frozen ``__setattr__`` and ``__init__``, and calls a type's ``load`` only where the
type needs it. The C accelerator (``asyncecto._speedups``) does this without a
Python call per slot; without it (no compiler at install, or
``ASYNCECTO_NO_SPEEDUPS=1``) a Python function generated per shape does the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    from asyncecto._speedups import load_rows as _c_load_rows
except ImportError:  # pragma: no cover - built on every supported platform with a compiler
    _c_load_rows = None  # type: ignore[assignment]

from asyncecto import types as t
from asyncecto.errors import CastError
from asyncecto.schema import Meta, SchemaInfo, schema_info
from asyncecto.schema._associations import NotLoaded

__all__ = ("Loader", "build_copier", "build_loader", "load_struct", "speedups_built", "speedups_enabled")

Loader = Callable[[Sequence[Any]], list[Any]]


def speedups_built() -> bool:
    """Whether the C accelerator was compiled at install."""
    return _c_load_rows is not None


def speedups_enabled() -> bool:
    """Whether loaders use the C accelerator (built, and not turned off by ``ASYNCECTO_NO_SPEEDUPS=1``)."""
    return speedups_built() and os.environ.get("ASYNCECTO_NO_SPEEDUPS") != "1"


def build_loader(schema: type, fields: Sequence[str], meta: Meta | None, *, speedups: bool | None = None) -> Loader:
    """A function turning rows (one column per name in ``fields``, in order) into structs.

    :param speedups: force (``True``) or avoid (``False``) the C accelerator; default: use it when built
    """
    if speedups if speedups is not None else speedups_enabled():
        load = _c_loader(schema, fields, meta)
    else:
        load = _python_loader(schema, fields, meta)

    def loader(rows: Sequence[Any]) -> list[Any]:
        try:
            return load(rows)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _load_error(schema, fields, rows, exc) from exc

    return loader


def _load_error(schema: type, fields: Sequence[str], rows: Sequence[Any], exc: Exception) -> Exception:
    """The ``CastError`` naming the field whose type could not load a row's value (found again, slowly)."""
    info = schema_info(schema)
    for row in rows:
        if len(row) != len(fields):
            return exc
        for i, name in enumerate(fields):
            value = row[i]
            if value is None:
                continue
            try:
                info.fields[name].type.load(value)
            except (ValueError, TypeError, OverflowError) as field_exc:
                return CastError(
                    value=value,
                    type=info.fields[name].type.name,
                    field=name,
                    schema=info.name,
                    reason=str(field_exc),
                    action="load",
                )
    return exc


def not_loaded(info: SchemaInfo) -> dict[str, NotLoaded]:
    """The :class:`NotLoaded` value of each association slot (shared by every struct: it is immutable)."""
    return {name: NotLoaded(name, info.name, a.cardinality) for name, a in info.associations.items()}


def _c_loader(schema: type, fields: Sequence[str], meta: Meta | None) -> Loader:
    if _c_load_rows is None:
        raise RuntimeError("asyncecto._speedups is not built")
    info = schema_info(schema)
    selected = set(fields)
    slots = tuple(getattr(schema, name) for name in fields)
    loaders = tuple(
        None if getattr(info.fields[n].type, "load_is_identity", False) else info.fields[n].type.load for n in fields
    )
    consts: list[tuple[Any, Any, bool]] = []
    for f in info.fields.values():
        if f.name not in selected:
            factory = f.default_factory
            consts.append((getattr(schema, f.name), factory if factory is not None else f.default, factory is not None))
    for name, value in not_loaded(info).items():
        consts.append((getattr(schema, name), value, False))
    frozen = tuple(consts)
    meta_slot = schema.__meta__ if meta is not None else None  # type: ignore[attr-defined]
    load = _c_load_rows

    def loader(rows: Sequence[Any]) -> list[Any]:
        return load(schema, rows if type(rows) is list else list(rows), slots, loaders, frozen, meta_slot, meta)

    return loader


def _rows_changed(before: int, after: int) -> RuntimeError:
    """What both loaders raise when the list of rows changed size while they loaded it (as the C one words it)."""
    return RuntimeError(
        f"the rows changed size during loading ({before} rows, then {after}): "
        "a type's load() or a default factory modified the list being loaded"
    )


def _python_loader(schema: type, fields: Sequence[str], meta: Meta | None) -> Loader:
    info = schema_info(schema)
    ns: dict[str, Any] = {"new": object.__new__, "cls": schema, "changed": _rows_changed}
    cols = [f"c{i}" for i in range(len(fields))]
    body = [
        "def load(rows):",
        "    out = []",
        "    app = out.append",
        "    n = len(rows) if type(rows) is list else -1",
        f"    for ({', '.join(cols)},) in rows:",
        "        o = new(cls)",
    ]
    selected = set(fields)
    for i, name in enumerate(fields):
        f = info.fields[name]
        ns[f"s{i}"] = getattr(schema, name).__set__
        if getattr(f.type, "load_is_identity", False):
            body.append(f"        s{i}(o, c{i})")
        else:
            ns[f"l{i}"] = f.type.load
            body.append(f"        s{i}(o, None if c{i} is None else l{i}(c{i}))")
    for j, f in enumerate(x for x in info.fields.values() if x.name not in selected):
        ns[f"u{j}"] = getattr(schema, f.name).__set__
        if f.default_factory is not None:
            ns[f"d{j}"] = f.default_factory
            body.append(f"        u{j}(o, d{j}())")
        else:
            ns[f"d{j}"] = f.default
            body.append(f"        u{j}(o, d{j})")
    for j, (name, value) in enumerate(not_loaded(info).items()):
        ns[f"a{j}"] = getattr(schema, name).__set__
        ns[f"n{j}"] = value
        body.append(f"        a{j}(o, n{j})")
    if meta is not None:
        ns["M"] = meta
        ns["sm"] = schema.__meta__.__set__  # type: ignore[attr-defined]
        body.append("        sm(o, M)")
    body += [
        "        app(o)",
        "    if n >= 0 and len(rows) != n:",
        "        raise changed(n, len(rows))",
        "    return out",
    ]
    exec(compile("\n".join(body), f"<asyncecto loader {info.name}>", "exec"), ns)
    loader: Loader = ns["load"]
    return loader


def build_copier(schema: type, *, speedups: bool | None = None) -> Loader:
    """A function making ``schema`` structs from rows holding a value for every slot, in the
    order of ``schema_info(schema).slots`` (the meta included): given the values read off
    structs, shallow copies (the preloader's, with associations set). No type's ``load`` runs.

    The C accelerator writes the slots as it does for rows from the database; a copy stays
    tracked by the garbage collector, since its meta is an object the collector handles.
    """
    slots = schema_info(schema).slots
    descriptors = tuple(getattr(schema, name) for name in slots)
    if speedups if speedups is not None else speedups_enabled():
        load, nones = _c_load_rows, (None,) * len(slots)

        def c_copy(rows: Sequence[Any]) -> list[Any]:
            return load(schema, rows if type(rows) is list else list(rows), descriptors, nones, (), None, None)

        return c_copy
    setters = tuple(d.__set__ for d in descriptors)
    new = object.__new__

    def py_copy(rows: Sequence[Any]) -> list[Any]:
        out = []
        for row in rows:
            o: Any = new(schema)
            for put, value in zip(setters, row, strict=True):
                put(o, value)
            out.append(o)
        return out

    return py_copy


def load_struct(schema: type, data: Mapping[str, Any], meta: Meta | None) -> Any:
    """A struct from a mapping of field names (or column names) to driver values.

    Unknown keys are ignored; missing fields take their defaults. A value the field's
    type cannot load raises ``CastError`` naming the field.
    """
    info = schema_info(schema)
    obj: Any = object.__new__(schema)
    for f in info.fields.values():
        if f.name in data:
            raw = data[f.name]
        elif f.source in data:
            raw = data[f.source]
        else:
            object.__setattr__(obj, f.name, f.default_factory() if f.default_factory else f.default)
            continue
        try:
            loaded = t.load_value(f.type, raw)
        except (ValueError, TypeError, OverflowError) as exc:
            raise CastError(
                value=raw, type=f.type.name, field=f.name, schema=info.name, reason=str(exc), action="load"
            ) from exc
        object.__setattr__(obj, f.name, loaded)
    for name, value in not_loaded(info).items():
        object.__setattr__(obj, name, value)
    if meta is not None:
        object.__setattr__(obj, "__meta__", meta)
    return obj
