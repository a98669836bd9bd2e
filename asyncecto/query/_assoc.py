"""Queries over associations: ``assoc(struct, "comments")``, joins on associations, and the
queries the preloader runs (related rows whose key is in a list, sent as one array parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from asyncecto._names import check_optional_name
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.schema import meta, schema_info
from asyncecto.schema._assocs import Association

from . import _expr
from ._ast import (
    AssocPath,
    Compare,
    Expr,
    FieldRef,
    Fragment,
    Ident,
    In,
    IsNil,
    Not,
    Param,
    PathColumn,
    PathTable,
    Query,
    Shape,
)
from ._build import from_, join, select, to_query, where

__all__ = ("assoc", "assoc_join_on", "hops", "related_query")

JOIN_ALIAS = "assoc_join"


def hops(schema: type, path: str | Sequence[str]) -> list[Association]:
    """The plain associations walked by ``path`` (``through`` ones expanded), from ``schema`` on."""
    names = [path] if isinstance(path, str) else list(path)
    if not names or not all(isinstance(n, str) for n in names):
        raise ArgumentError(f"expected an association name or a list of names, got {path!r}")
    out: list[Association] = []
    current = schema
    for name in names:
        a = schema_info(current).association(name)
        out.extend(a.chain() if a.through is not None else (a,))
        current = a.related
    return out


def conditions(b: Any, conds: tuple[tuple[str, Any], ...]) -> Any:
    """An association's ``where=`` (or ``join_where=``) as an expression on binding ``b``, or ``None``."""
    expr: Any = None
    for name, value in conds:
        f = getattr(b, name)
        if value is None:
            term = _expr.is_nil(f)
        elif isinstance(value, tuple) and value[0] == "not":
            term = ~_expr.is_nil(f)
        elif isinstance(value, tuple) and value[0] == "in":
            term = f.in_(list(value[1]))
        elif isinstance(value, tuple) and value[0] == "fragment":
            term = _expr.fragment(value[1], f)
        else:
            term = f == value
        expr = term if expr is None else expr & term
    return expr


def _matches(f: Any, keys: Any) -> Any:
    """``f`` is one of ``keys`` (a list or a subquery), or equals ``keys`` (an expression)."""
    return f == keys if isinstance(keys, _expr.E) else f.in_(keys)


def related_query(a: Association, keys: Any, base: Any = None, *, with_owner_key: bool = False) -> Query[Any]:
    """Rows of ``a.related`` belonging to owners whose ``a.owner_key`` is in ``keys`` (a list, sent
    as one array parameter, or a subquery) or equals ``keys`` (an expression: one owner's key, as
    in a per-parent lateral query). ``with_owner_key`` selects ``(owner key, struct)``
    (many_to_many, where the key is in the join table).
    """
    q = to_query(base) if base is not None else from_(a.related)
    if q.source.schema is not a.related:
        raise QueryError(f"the query given for association {a.name!r} must read from {a.related.__name__}, got {q!r}")
    rkey = a.related_key
    assert rkey is not None
    if a.kind == "many_to_many":
        (jo, _), (jr, _) = a.join_keys
        through = a.join_through if isinstance(a.join_through, type) else a.join_table  # a schema keeps its prefix
        q = q | join("inner", through, on=lambda *b: getattr(b[-1], jr) == getattr(b[0], rkey), as_=JOIN_ALIAS)
        q = q | where(lambda *b, assoc_join: _matches(getattr(assoc_join, jo), keys))
        jconds = a.join_where
        if jconds:
            q = q | where(lambda *b, assoc_join: conditions(assoc_join, jconds))
        if with_owner_key:
            merged = q.select  # a select_merge into the struct stays around it
            q = attrs.evolve(q, select=None) | select(lambda *b, assoc_join: (getattr(assoc_join, jo), b[0]))
            if merged is not None:
                assert isinstance(q.select, Shape)
                q = attrs.evolve(q, select=Shape("tuple", (q.select.items[0], merged)))
    else:
        q = q | where(lambda *b: _matches(getattr(b[0], rkey), keys))
    if a.where:
        conds = a.where
        q = q | where(lambda *b: conditions(b[0], conds))
    return q


def assoc(structs: Any, path: str | Sequence[str], *, prefix: str | None = None) -> Query[Any]:
    """A query for the rows associated with ``structs`` (one struct or a list) along ``path``.

    >>> from asyncecto import schema, has_many, belongs_to
    >>> @schema("posts")
    ... class Post:
    ...     comments: list = has_many("Comment")
    >>> @schema("comments")
    ... class Comment:
    ...     post: Post | None = belongs_to(Post)
    >>> assoc(Post(id=1), "comments")
    Query<from_(Comment) | where(lambda: b0.post_id.in_([1]))>
    """
    check_optional_name(prefix, "prefix")
    items = structs if isinstance(structs, list | tuple) else [structs]
    name = path if isinstance(path, str) else ".".join(map(str, path))
    if structs is None or not items or any(s is None for s in items):
        raise ArgumentError(f"cannot retrieve association {name!r} for None (or an empty list)")
    schema = type(items[0])
    if isinstance(items[0], type):
        raise ArgumentError(
            f"cannot retrieve association {name!r} for the class {items[0].__name__}; "
            "pass a struct (or a list of structs) loaded from the database"
        )
    if any(type(s) is not schema for s in items):
        raise ArgumentError(f"cannot retrieve association {name!r} for structs of different schemas")
    chain = hops(schema, path)
    first = chain[0]
    assert first.owner_key is not None
    keys: Any = list(dict.fromkeys(k for s in items if (k := getattr(s, first.owner_key)) is not None))
    pre = prefix if prefix is not None else meta(items[0]).prefix
    q: Query[Any] | None = None
    for i, hop in enumerate(chain):
        if i:
            assert hop.owner_key is not None and q is not None
            keys = _expr.subquery(q | select(_field_of_first(hop.owner_key)))
        q = related_query(hop, keys)
    assert q is not None
    # a query prefix, as Ecto's: every table without its own (or its schema's) follows the first
    # struct's prefix, the earlier hops' subqueries included, and a call's prefix= still wins
    return q if pre is None else attrs.evolve(q, prefix=pre)


def _field_of_first(name: str) -> Any:
    """``lambda b0: b0.<name>`` (a default argument would be read as a named binding)."""
    return lambda *b: getattr(b[0], name)


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
        parts = _expr.fragment_parts(value[1])
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
