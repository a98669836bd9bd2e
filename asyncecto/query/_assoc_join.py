"""Joins along associations (``join("inner", lambda p: p.comments)``): the join condition, and for
many_to_many and ``through`` paths an :class:`~asyncecto.query._ast.AssocPath` over the intermediate tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asyncecto.errors import QueryError
from asyncecto.schema import schema_info
from asyncecto.schema._associations import Association

from . import _expr, _functions
from ._ast import AssocPath, Compare, Expr, FieldRef, Fragment, Ident, In, IsNil, Not, Param, PathColumn, PathTable
from ._query import Query

__all__ = ("assoc_join_on", "conditions")


def conditions(b: Any, conds: tuple[tuple[str, Any], ...]) -> Any:
    """An association's ``where=`` (or ``join_where=``) as an expression on binding ``b``, or ``None``."""
    expr: Any = None
    for name, value in conds:
        f = getattr(b, name)
        if value is None:
            term = _functions.is_nil(f)
        elif isinstance(value, tuple) and value[0] == "not":
            term = ~_functions.is_nil(f)
        elif isinstance(value, tuple) and value[0] == "in":
            term = f.in_(list(value[1]))
        elif isinstance(value, tuple) and value[0] == "fragment":
            term = _functions.fragment(value[1], f)
        else:
            term = f == value
        expr = term if expr is None else expr & term
    return expr


def assoc_join_on(q: Query[Any], ref: Any, new: int) -> Any:
    """The ``on`` condition joining ``ref`` (an association of a binding) as binding ``new``."""
    chain = ref.assoc.chain() if ref.assoc.through is not None else (ref.assoc,)
    if len(chain) == 1 and chain[0].kind != "many_to_many":
        a = chain[0]
        owner_key, rkey, conds = a.owner_key, a.related_key, a.where

        def on(*b: Any) -> Any:
            cond = getattr(b[new], rkey) == getattr(b[ref.binding], owner_key)
            extra = conditions(b[new], conds)
            return cond if extra is None else cond & extra

        return on
    # the intermediate tables follow the owner binding's effective prefix, resolved when planned
    path = _path(ref.assoc.name, chain, ref.binding, new)

    def on_path(*b: Any) -> Any:
        extra = conditions(b[new], chain[-1].where)
        return _expr.E(path) if extra is None else _expr.E(path) & extra

    return on_path


def _column(schema: type, field: str) -> str:
    return schema_info(schema).fields[field].source


def _table(schema_or_name: Any, binding: int) -> Ident:
    """An intermediate table: under its schema's prefix, else the effective prefix of the owner's
    binding (the source's, its schema's, the call's or the repo's: known when planned)."""
    if isinstance(schema_or_name, str):
        return Ident(schema_or_name, table=True, binding=binding)
    info = schema_info(schema_or_name)
    assert info.source is not None
    return Ident(info.source, table=True, prefix=info.prefix, binding=binding)


def _path_cond(col: PathColumn, value: Any) -> Expr:
    """One term of an association's ``where=``/``join_where=`` on an intermediate table's column."""
    if value is None:
        return IsNil(col)
    if isinstance(value, tuple) and value[0] == "not":
        return Not(IsNil(col))
    if isinstance(value, tuple) and value[0] == "in":
        return In(col, Param(list(value[1])))
    if isinstance(value, tuple) and value[0] == "fragment":
        parts = _functions.fragment_parts(value[1])
        return Fragment(parts, (col,) * (len(parts) - 1))
    return Compare("==", col, Param(value))


def _path(name: str, chain: Sequence[Association], binding: int, new: int) -> AssocPath:
    """The path linking binding ``binding`` (the first hop's owner) to binding ``new`` (the last
    hop's related row) through the intermediate tables, with each hop's ``where=`` on its
    intermediate rows and each many_to_many's ``join_where=``. The last hop's ``where=`` is the
    caller's (it is about the joined binding)."""
    tables: list[PathTable] = []
    links: list[tuple[Expr, Expr]] = []
    extra: list[Expr] = []
    first_owner_key = chain[0].owner_key
    assert first_owner_key is not None
    prev: Expr = FieldRef(binding, first_owner_key)  # the owner's key, an outer reference
    for i, a in enumerate(chain):
        assert a.owner_key is not None and a.related_key is not None
        if i:
            prev = PathColumn(f"h{i - 1}", _column(a.owner, a.owner_key))
        here: Expr
        if a.kind == "many_to_many":
            (jo, _), (jr, _) = a.join_keys
            tables.append(PathTable(_table(a.join_through, binding), f"j{i}"))
            links.append((PathColumn(f"j{i}", jo), prev))
            here = PathColumn(f"j{i}", jr)
            extra.extend(_path_cond(PathColumn(f"j{i}", field), value) for field, value in a.join_where)
        else:
            here = prev
        if i == len(chain) - 1:
            links.append((here, FieldRef(new, a.related_key)))
        else:
            tables.append(PathTable(_table(a.related, binding), f"h{i}"))
            links.append((PathColumn(f"h{i}", _column(a.related, a.related_key)), here))
            extra.extend(_path_cond(PathColumn(f"h{i}", _column(a.related, f)), v) for f, v in a.where)
    if not tables:
        raise QueryError("an association path needs at least one intermediate table")
    return AssocPath(name, tuple(tables), tuple(links), tuple(extra))
