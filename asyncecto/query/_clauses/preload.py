"""``preload``: associations to load with the results.

Preload specifications: every accepted shape normalised into a tree of :class:`Preload` nodes.

Shapes: ``"comments"``; lists of them; ``{"comments": "author"}`` (nested);
``{"comments": query}`` and ``{"comments": (query, nested)}`` (a custom query);
``{"comments": fn}`` and ``{"comments": (fn, nested)}`` (a preload function, given the parents' keys);
and, in a query, bindings of its joins (``lambda p, c: {"comments": c}``): a join preload,
nested as ``{"comments": (c, {"author": a})}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from asyncecto.errors import QueryError
from asyncecto.schema import schema_info
from asyncecto.schema._embeds import embed_schema_of

from .. import _expr
from .._expr import Binding
from .._query import Query
from .._sources import Step

_T = TypeVar("_T")

__all__ = ("is_preload_function", "merge_preloads", "normalize_preloads", "Preload", "preload")


#: the nodes of a ``preload`` of association names, by schema and names (nodes are immutable)
_NAMED: dict[tuple[type, tuple[Any, ...]], tuple[Preload, ...]] = {}
_NAMED_MAX = 1024


def preload(*assocs: Any) -> Step[Any]:
    """Associations to load with the results.

    ``preload("comments")``, ``preload("comments", "author")``, nested
    ``preload({"comments": "author"})``, a custom query ``preload({"comments": query})`` or
    ``{"comments": (query, "author")}``, a preload function ``{"comments": fn}`` (given the
    parents' keys, it returns the children: see ``Repo.preload``), and join preloads that reuse a joined binding:
    ``preload(lambda p, c: {"comments": c})``. A custom query with ``limit``/``offset``
    applies them per parent. An embed field names the associations declared in its embedded
    schema: ``preload({"items": "product"})`` (the embed alone, or with a query, is refused, as
    Ecto). Names are checked against the schema when the query is built.
    """

    named = all(type(spec) is str for spec in assocs)

    def step(q: Query[_T]) -> Query[_T]:
        schema = q.source.schema
        if named and not q.preloads and schema is not None:  # the common case: names, normalised once
            key = (schema, assocs)
            hit = _NAMED.get(key)
            if hit is None:
                if len(_NAMED) >= _NAMED_MAX:
                    _NAMED.clear()
                hit = _NAMED[key] = normalize_preloads(list(assocs), schema)
            return attrs.evolve(q, preloads=hit)
        nodes: list[Any] = []
        for spec in assocs:
            if callable(spec) and not isinstance(spec, type | Query):
                nodes.extend(normalize_preloads(_expr.apply(q, spec, "preload"), schema, bindings=True))
            else:
                nodes.extend(normalize_preloads(spec, schema))
        return attrs.evolve(q, preloads=merge_preloads([*q.preloads, *nodes]))

    return step


@attrs.frozen
class Preload:
    """One association to load: its custom query (or preload function), or the join binding it comes from, and what to
    load beneath it."""

    name: str
    query: Any = None
    binding: int | None = None
    children: tuple[Preload, ...] = ()
    take: Any = None  # the select's field list for these rows (a Take), set by the preloader

    def __repr__(self) -> str:
        inner = f", {list(self.children)!r}" if self.children else ""
        src = f" from binding {self.binding}" if self.binding is not None else ""
        return f"{self.name}{src}{' (query)' if self.query is not None else ''}{inner}"


def normalize_preloads(spec: Any, schema: type | None, *, bindings: bool = False) -> tuple[Preload, ...]:
    """The tree for ``spec`` on ``schema``, names checked; ``bindings`` allows join preloads."""
    nodes: list[Preload] = []
    _collect(spec, schema, nodes, bindings)
    return merge_preloads(nodes)


def merge_preloads(nodes: list[Preload] | tuple[Preload, ...]) -> tuple[Preload, ...]:
    """Nodes with the same name merged (their children too); a second custom query is refused."""
    out: dict[str, Preload] = {}
    for n in nodes:
        prev = out.get(n.name)
        if prev is None:
            out[n.name] = n
            continue
        if prev.query is not None and n.query is not None and prev.query is not n.query:
            raise QueryError(f"association {n.name!r} is preloaded twice with a custom query; give one")
        if prev.binding is not None and n.binding is not None and prev.binding != n.binding:
            raise QueryError(f"association {n.name!r} is preloaded from two different join bindings")
        out[n.name] = Preload(
            n.name,
            prev.query if prev.query is not None else n.query,
            prev.binding if prev.binding is not None else n.binding,
            merge_preloads([*prev.children, *n.children]),
            prev.take if prev.take is not None else n.take,
        )
    return tuple(out.values())


def is_preload_function(value: Any) -> bool:
    """Whether a preload value is a custom preload function (``{"comments": fn}``), called
    with the parents' keys; not a query, a join binding, a schema or a spec."""
    return callable(value) and not isinstance(value, type | Query | Binding | Preload | str | Mapping)


def _related(schema: type | None, name: str) -> type | None:
    if schema is None:
        raise QueryError(f"cannot preload {name!r}: the query has no schema (preload needs associations)")
    info = schema_info(schema)
    if name not in info.associations:
        inner = embed_schema_of(info, name)  # an embed: its structs' associations are preloaded
        if inner is not None:
            return inner  # type: ignore[no-any-return]
        raise QueryError(
            f"schema {info.name} has no association {name!r} to preload; "
            f"associations: {', '.join(info.associations) or 'none declared'}"
        )
    return info.associations[name].related


def _embed_node(schema: type | None, name: str, sub: Any, children: tuple[Preload, ...]) -> None:
    """An embed field in a preload names the associations of its structs to load (Ecto's rule):
    never bare, from a join, or with a query of its own."""
    if schema is None or name in schema_info(schema).associations:
        return
    info = schema_info(schema)
    if embed_schema_of(info, name) is None:
        return
    if sub is not None:
        raise QueryError(
            f"cannot preload embed {name!r} of {info.name} with a query, a preload function or a join binding: "
            f"an embed is stored in the {info.name} row itself; give the associations of its structs to load "
            f"instead, e.g. preload({{{name!r}: 'product'}})"
        )
    if not children:
        raise QueryError(
            f"cannot preload embedded field {name!r} of {info.name} without also preloading one of its "
            f"associations as it has no effect (the embed is loaded with the row); fix: name the associations "
            f"of its structs, e.g. preload({{{name!r}: 'product'}})"
        )


def _collect(spec: Any, schema: type | None, out: list[Preload], bindings: bool) -> None:
    if isinstance(spec, str):
        _related(schema, spec)
        _embed_node(schema, spec, None, ())
        out.append(Preload(spec))
    elif isinstance(spec, Preload):
        out.append(spec)
    elif isinstance(spec, list | tuple):
        for item in spec:
            _collect(item, schema, out, bindings)
    elif isinstance(spec, Mapping):
        for name, sub in spec.items():
            if not isinstance(name, str):
                raise QueryError(f"preload keys are association names, got {name!r}")
            related = _related(schema, name)
            node = _node(name, sub, related, bindings)
            _embed_node(schema, name, node.query if node.binding is None else node.binding, node.children)
            out.append(node)
    else:
        raise QueryError(
            f"preload expects association names, lists or dicts of them (values: nested preloads, a query, "
            f"a preload function, or (query or function, nested)), got {spec!r}"
        )


def _node(name: str, sub: Any, related: type | None, bindings: bool) -> Preload:
    query: Any = None
    binding: int | None = None
    nested: Any = ()
    if (
        isinstance(sub, tuple)
        and len(sub) == 2
        and (isinstance(sub[0], Query | Binding) or is_preload_function(sub[0]))
    ):
        head, nested = sub
    elif isinstance(sub, Query | Binding) or is_preload_function(sub):
        head = sub
    else:
        head, nested = None, sub
    if isinstance(head, Binding):
        if not bindings:
            raise QueryError(f"preload of {name!r} from a join binding is only possible inside a query")
        if head._index == 0:
            raise QueryError(f"preload of {name!r} from binding 0, the query's own source; give a joined binding")
        if head._schema is not None and related is not None and head._schema is not related:
            raise QueryError(
                f"cannot preload {name!r} (a {related.__name__}) from join binding {head._index}, "
                f"which reads {head._schema.__name__}; give the binding joined on {name!r}"
            )
        binding = head._index
    elif head is not None:  # a query, or a preload function (run by the preloader)
        query = head
    children: list[Preload] = []
    _collect(nested, related, children, bindings)
    return Preload(name, query, binding, merge_preloads(children))
