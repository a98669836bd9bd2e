"""Queries for associated rows: ``assoc(struct, "comments")``, and the queries the preloader runs
(related rows whose key is in a list, sent as one array parameter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from asyncecto._names import check_optional_name
from asyncecto.errors import ArgumentError, QueryError
from asyncecto.schema import meta, schema_info
from asyncecto.schema._associations import Association

from . import _functions
from ._assoc_join import conditions
from ._ast import Shape
from ._clauses.from_ import from_
from ._clauses.join import join
from ._clauses.select import select
from ._clauses.where import where
from ._expr import E
from ._query import Query
from ._sources import to_query

__all__ = ("assoc", "hops", "related_query")


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


def _matches(f: Any, keys: Any) -> Any:
    """``f`` is one of ``keys`` (a list or a subquery), or equals ``keys`` (an expression)."""
    return f == keys if isinstance(keys, E) else f.in_(keys)


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
    # an embedded struct has no meta (as Ecto: no prefix of its own)
    pre = prefix if prefix is not None else None if schema_info(schema).embedded else meta(items[0]).prefix
    q: Query[Any] | None = None
    for i, hop in enumerate(chain):
        if i:
            assert hop.owner_key is not None and q is not None
            keys = _functions.subquery(q | select(_field_of_first(hop.owner_key)))
        q = related_query(hop, keys)
    assert q is not None
    # a query prefix, as Ecto's: every table without its own (or its schema's) follows the first
    # struct's prefix, the earlier hops' subqueries included, and a call's prefix= still wins
    return q if pre is None else attrs.evolve(q, prefix=pre)


def _field_of_first(name: str) -> Any:
    """``lambda b0: b0.<name>`` (a default argument would be read as a named binding)."""
    return lambda *b: getattr(b[0], name)
