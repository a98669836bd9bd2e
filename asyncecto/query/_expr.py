"""Building expressions: binding proxies (``p.title``), operator overloading (:class:`E`), dynamics,
and calling a clause's lambda with the query's bindings. The functions usable inside expressions
(``is_nil``, ``fragment``, aggregates…) are in ``_functions``.

A lambda's positional parameters are the query's bindings in order (the ``from``,
then each join); its keyword-only parameters are named bindings (``as_=``). Python
values inside an expression become parameters: Ecto's ``^`` is implicit.

>>> from asyncecto import schema
>>> from asyncecto.query import from_, is_nil, where
>>> @schema("weather")
... class Weather:
...     city: str | None = None
...     prcp: float | None = None
>>> from_(Weather) | where(lambda w: (w.prcp > 0.5) | is_nil(w.prcp))
Query<from_(Weather) | where(lambda: (b0.prcp > 0.5) | (is_nil(b0.prcp)))>
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asyncecto._names import check_name
from asyncecto.errors import QueryError
from asyncecto.schema import schema_info

from ._ast import (
    And,
    Arith,
    Compare,
    Const,
    Contains,
    Expr,
    FieldRef,
    HasKey,
    Ident,
    In,
    JsonPath,
    Like,
    Neg,
    Not,
    Now,
    Or,
    OrderBy,
    Param,
    Shape,
    SourceRef,
    Splice,
    Subquery,
)
from ._inspect import render_expr
from ._placeholder import Placeholder, register_expression_types
from ._query import Query

__all__ = (
    "apply",
    "AssocRef",
    "Binding",
    "bindings",
    "Dynamic",
    "dynamic",
    "E",
    "node",
    "order_term",
    "to_expr",
    "to_select",
)


class E:
    """An expression under construction: Python operators build SQL, not Python values.

    ``&``, ``|`` and ``~`` are SQL ``AND``, ``OR`` and ``NOT``; ``and``/``or``/``not``
    cannot be overloaded and raise, as does comparing with ``None`` (use :func:`is_nil`).
    """

    __slots__ = ("node",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, node: Expr) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"E<{render_expr(self.node)}>"

    def __bool__(self) -> bool:
        raise QueryError(
            f"cannot use the query expression {self!r} as a Python bool; "
            "use & | ~ instead of and/or/not, and split chained comparisons (a < b < c) with &"
        )

    def _cmp(self, op: str, other: object) -> E:
        if other is None:
            raise QueryError(
                f"comparing {self!r} with None is forbidden as it is unsafe; "
                "use is_nil() to check whether a value is NULL"
            )
        return E(Compare(op, self.node, node(other)))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> E:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: object) -> E:  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other: object) -> E:
        return self._cmp("<", other)

    def __le__(self, other: object) -> E:
        return self._cmp("<=", other)

    def __gt__(self, other: object) -> E:
        return self._cmp(">", other)

    def __ge__(self, other: object) -> E:
        return self._cmp(">=", other)

    def __and__(self, other: object) -> E:
        return E(_flat(And, self.node, node(other)))

    def __rand__(self, other: object) -> E:
        return E(_flat(And, node(other), self.node))

    def __or__(self, other: object) -> E:
        return E(_flat(Or, self.node, node(other)))

    def __ror__(self, other: object) -> E:
        return E(_flat(Or, node(other), self.node))

    def __invert__(self) -> E:
        return E(Not(self.node))

    def _arith(self, op: str, other: object, reverse: bool = False) -> E:
        left, right = (node(other), self.node) if reverse else (self.node, node(other))
        return E(Arith(op, left, right))  # type: ignore[arg-type]

    def __add__(self, other: object) -> E:
        return self._arith("+", other)

    def __radd__(self, other: object) -> E:
        return self._arith("+", other, True)

    def __sub__(self, other: object) -> E:
        return self._arith("-", other)

    def __rsub__(self, other: object) -> E:
        return self._arith("-", other, True)

    def __mul__(self, other: object) -> E:
        return self._arith("*", other)

    def __rmul__(self, other: object) -> E:
        return self._arith("*", other, True)

    def __truediv__(self, other: object) -> E:
        return self._arith("/", other)

    def __rtruediv__(self, other: object) -> E:
        return self._arith("/", other, True)

    def __neg__(self) -> E:
        return E(Neg(self.node))

    def __getitem__(self, key: str | int | E) -> E:
        """A path into a JSON (map) value: ``p.meta["tags"][0]`` (PostgreSQL ``#>``); an element
        may be another field, ``p.meta[p.key_name]`` (its value as text)."""
        if isinstance(key, bool) or not isinstance(key, str | int | E):
            raise QueryError(f"a JSON path element must be a string or an integer (or a field expression), got {key!r}")
        elem: Any = key.node if isinstance(key, E) else key
        if isinstance(self.node, JsonPath):
            return E(JsonPath(self.node.arg, (*self.node.path, elem)))
        return E(JsonPath(self.node, (elem,)))

    def __contains__(self, value: object) -> bool:
        raise QueryError(
            f"`{value!r} in {render_expr(self.node)}` cannot build SQL (Python's `in` must return a bool); "
            f"write {render_expr(self.node)}.contains({value!r}) for a value in an array field"
        )

    def contains(self, value: object) -> E:
        """Containment, by the type of this expression (Ecto's ``"x" in p.tags`` and PostgreSQL ``@>``):

        - an array field: ``p.tags.contains("x")`` is ``$1 = ANY(p.tags)``; a list,
          ``p.tags.contains(["x", "y"])``, is ``p.tags @> $1`` (every element present);
        - a JSON (map) field or path: ``p.meta.contains({"a": 1})`` is ``p.meta @> $1::jsonb``;
          the value is a dict or a list, sent as jsonb (JSON text in a str is refused).
        """
        if value is None:
            raise QueryError(f"{self!r}.contains(None) is forbidden as it is unsafe; use is_nil() for NULL")
        if isinstance(value, Query):
            raise QueryError("contains got a query; did you mean x.in_(subquery(query))?")
        return E(Contains(self.node, node(value)))

    def has_key(self, key: object) -> E:
        """A JSON object with the top-level key ``key`` (or a JSON array with the string element): ``?``."""
        return E(HasKey("?", self.node, node(key)))

    def has_any_keys(self, keys: object) -> E:
        """A JSON object with any of the top-level ``keys`` (a list of str): ``?|``."""
        return E(HasKey("?|", self.node, node(_key_list(keys, "has_any_keys"))))

    def has_all_keys(self, keys: object) -> E:
        """A JSON object with all of the top-level ``keys`` (a list of str): ``?&``."""
        return E(HasKey("?&", self.node, node(_key_list(keys, "has_all_keys"))))

    def in_(self, values: object) -> E:
        """``x IN values``: a list (one array parameter, ``= ANY($1)``), an array field, or ``subquery(q)``."""
        if isinstance(values, Query):
            raise QueryError("in_ got a query; did you mean to write x.in_(subquery(query))?")
        if isinstance(values, Subquery):
            return E(In(self.node, values))
        if isinstance(values, E):
            return E(In(self.node, values.node))
        if isinstance(values, Placeholder):  # a prepared query's parameter: the list is given per call
            return E(In(self.node, Param(values)))
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise QueryError(f"in_ expects a list of values or an array field, got {values!r}")
        return E(In(self.node, Param(list(values))))

    def like(self, pattern: object) -> E:
        """``x LIKE pattern`` (case-sensitive)."""
        return E(Like("like", self.node, node(pattern)))

    def ilike(self, pattern: object) -> E:
        """``x ILIKE pattern`` (case-insensitive)."""
        return E(Like("ilike", self.node, node(pattern)))


def _key_list(keys: object, what: str) -> object:
    if isinstance(keys, E):
        return keys
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise QueryError(f"{what} expects a list of key strings, got {keys!r}")
    items = list(keys)
    bad = [k for k in items if not isinstance(k, str)]
    if bad:
        raise QueryError(f"{what} expects a list of key strings, got {bad[0]!r} in {items!r}")
    return items


def _flat(cls: type[And] | type[Or], left: Expr, right: Expr) -> Expr:
    args: list[Expr] = []
    for side in (left, right):
        args.extend(side.args if isinstance(side, cls) else (side,))
    return cls(tuple(args))


def node(value: object) -> Expr:
    """The AST node for an expression, a binding, or a Python value (which becomes a parameter)."""
    if isinstance(value, E):
        return value.node
    if isinstance(value, Binding):
        return SourceRef(value._index)
    if isinstance(value, Ident | Const | Splice | Subquery | Now):
        return value
    if isinstance(value, Dynamic):
        q = _CURRENT.get()
        if q is None:
            raise QueryError("a dynamic expression can only be used inside a query clause")
        return to_expr(q, value.fn, "dynamic")
    if isinstance(value, AssocRef):
        value._refuse()
    return Param(value)


_CURRENT: contextvars.ContextVar[Query[Any] | None] = contextvars.ContextVar("asyncecto_query", default=None)


class Dynamic:
    """An expression built later, against the bindings of the query it is used in.

    >>> from asyncecto.query import dynamic
    >>> cold = dynamic(lambda w: w.temp_hi < 5)
    >>> either = dynamic(lambda w: cold | (w.prcp > 1.0))   # dynamics compose
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return "Dynamic<...>"

    def __bool__(self) -> bool:
        raise QueryError("cannot use a dynamic as a Python bool; combine dynamics with & | ~")

    # Inside a clause (a query is current) combining evaluates at once; outside, it makes a new dynamic.
    def _combine(self, make: Callable[[], Any]) -> Any:
        return make() if _CURRENT.get() is not None else Dynamic(lambda *_a, **_k: make())

    def __and__(self, other: object) -> Any:
        return self._combine(lambda: E(node(self)) & other)

    def __rand__(self, other: object) -> Any:
        return self._combine(lambda: E(node(other)) & E(node(self)))

    def __or__(self, other: object) -> Any:
        return self._combine(lambda: E(node(self)) | other)

    def __ror__(self, other: object) -> Any:
        return self._combine(lambda: E(node(other)) | E(node(self)))

    def __invert__(self) -> Any:
        return self._combine(lambda: ~E(node(self)))


def dynamic(fn: Callable[..., Any]) -> Dynamic:
    """A reusable expression: a function of the bindings, evaluated where it is used (Ecto's ``dynamic``)."""
    if not callable(fn):
        raise QueryError(f"dynamic expects a function of the bindings, got {fn!r}")
    return Dynamic(fn)


class Binding:
    """A query source seen from inside a lambda: ``p.title`` is the field ``title`` of that source."""

    __slots__ = ("_index", "_schema")

    def __init__(self, index: int, schema: type | None) -> None:
        self._index = index
        self._schema = schema

    def __getattr__(self, name: str) -> E:
        if name.startswith("__"):  # Python's protocols (copy, pickle, hasattr) probe these
            raise AttributeError(name)
        return self._field(name)

    def _field(self, name: object) -> E:
        """The field ``name`` of this source (``field(b, name)`` and ``b.name``): a
        :class:`QueryError` naming the schema's fields when it has none by that name."""
        if not isinstance(name, str):
            raise QueryError(f"a field name must be a str, got {type(name).__name__} {name!r}")
        if self._schema is None:  # schemaless: the name is the column, written as given
            check_name(name, "column")
            return E(FieldRef(self._index, name))
        info = schema_info(self._schema)
        f = info.fields.get(name)
        if f is None and name in info.associations:
            return AssocRef(self._index, info.associations[name])  # type: ignore[return-value]
        if f is None or f.virtual:
            known = ", ".join(n for n, x in info.fields.items() if not x.virtual)
            assocs = f"; associations: {', '.join(info.associations)}" if info.associations else ""
            raise QueryError(f"field {name!r} does not exist in schema {info.name}; fields are: {known}{assocs}")
        return E(FieldRef(self._index, name))

    def __repr__(self) -> str:
        return f"b{self._index}"


def bindings(q: Query[Any]) -> list[Binding]:
    return [Binding(i, s.schema) for i, s in enumerate(q.sources)]


_SIGNATURES: dict[Any, tuple[int, tuple[str, ...]]] = {}


class AssocRef:
    """``p.comments`` inside a lambda: an association of a binding (a join target, not a value)."""

    __slots__ = ("assoc", "binding")

    def __init__(self, binding: int, assoc: Any) -> None:
        self.binding = binding
        self.assoc = assoc

    def __repr__(self) -> str:
        return f"b{self.binding}.{self.assoc.name}"

    def _refuse(self, *_: Any) -> Any:
        n = self.assoc.name
        raise QueryError(
            f"association {n!r} is not a value; join it and use the joined binding: "
            f"join('inner', lambda p: p.{n}, as_={n!r}) | where(lambda *, {n}: ...)"
        )

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __and__ = __or__ = __invert__ = _refuse
    __hash__ = object.__hash__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()


def apply(q: Query[Any], fn: Callable[..., Any], what: str) -> Any:
    """Call ``fn`` with the query's bindings: positional in order, keyword-only by ``as_`` name."""
    # keyed by code object (a lambda is a new function each call); a decorated function is not
    # cached, since every function wrapped by one decorator shares the wrapper's code
    code = fn if hasattr(fn, "__wrapped__") else getattr(fn, "__code__", fn)
    shape = _SIGNATURES.get(code) if code is not fn else None
    if shape is None:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError) as exc:
            raise QueryError(f"{what} expects a function of the query's bindings, got {fn!r}") from exc
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            positional = -1
        named = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        shape = (positional, named)
        if code is not fn:
            _SIGNATURES[code] = shape
    positional, named = shape
    bound = bindings(q)
    if positional > len(bound):
        raise QueryError(f"{what} takes {positional} binding(s) but the query has {len(bound)} source(s): {q!r}")
    args = bound if positional < 0 else bound[:positional]
    kwargs = {}
    for name in named:
        if name not in q.aliases:
            known = ", ".join(q.aliases) or "none"
            raise QueryError(f"could not find named binding {name!r} in query {q!r}; named bindings: {known}")
        kwargs[name] = bound[q.aliases[name]]
    token = _CURRENT.set(q)
    try:
        return fn(*args, **kwargs)
    finally:
        _CURRENT.reset(token)


def to_expr(q: Query[Any], value: Any, what: str) -> Expr:
    """A filter-like argument (a lambda, a dynamic, an expression) as an AST node."""
    if isinstance(value, Dynamic):
        value = apply(q, value.fn, what)
    elif callable(value) and not isinstance(value, E | Binding):
        value = apply(q, value, what)
    while isinstance(value, Dynamic):  # a lambda (or dynamic) that returned a dynamic
        value = apply(q, value.fn, what)
    if isinstance(value, E | Binding):
        return node(value)
    if value is True:
        return Const(True)  # Ecto's `on: true` (a cross-like join condition)
    raise QueryError(f"{what} expects an expression or a function of the bindings, got {value!r}")


def to_select(q: Query[Any], value: Any) -> Any:
    """A select's shape: a source, an expression, or tuples/lists/dicts of them (dynamics included)."""
    if callable(value) and not isinstance(value, E | Binding):
        value = apply(q, value, "select")
    token = _CURRENT.set(q)
    try:
        return _shape(value)
    finally:
        _CURRENT.reset(token)


def _shape(value: Any) -> Any:
    if isinstance(value, E | Binding | Subquery | Dynamic | Const):
        return node(value)
    if isinstance(value, tuple):
        return Shape("tuple", tuple(_shape(v) for v in value))
    if isinstance(value, list):
        return Shape("list", tuple(_shape(v) for v in value))
    if isinstance(value, Mapping):
        return Shape("dict", tuple(_shape(v) for v in value.values()), tuple(value))
    if isinstance(value, AssocRef):
        value._refuse()
    return Param(value)


def order_term(value: Any) -> OrderBy:
    """An order term from an expression or a ``desc(...)``-style wrapper."""
    direction = getattr(value, "direction", None)
    if direction is not None:
        return OrderBy(direction, node(value.value))
    return OrderBy("asc", node(value))


register_expression_types(E, Binding, Dynamic)
