"""``prepare(builder)``: a query built once with placeholders and planned once per operation and
prefix; each call only checks, casts and dumps its values, exactly as the planner would.

>>> from asyncecto import schema
>>> from asyncecto.query import from_, where, limit, prepare
>>> @schema("weather")
... class Weather:
...     city: str | None = None
...     temp_lo: int | None = None
>>> by_city = prepare(lambda city, n: from_(Weather) | where(city=city) | limit(n))
>>> by_city
Prepared<from_(Weather) | where(city=<prepared parameter 'city'>) | limit(<prepared parameter 'n'>)>
>>> by_city("Oslo", 5).query()
Query<from_(Weather) | where(city='Oslo') | limit(5)>

A call whose values would make other SQL than the plan's (``None``, an int beyond ``integer``
beside an integer field, a float beside an integer field, a value of a type other than the
built-in scalars, lists and dicts) is built and planned as an unprepared query would be, so its
result and its errors are always those of ``builder(*args)``.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import inspect
import uuid
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from asyncecto import types as t
from asyncecto.errors import QueryError

from ._ast import Param, Values
from ._param_types import INT4, literal_db_type, shift
from ._placeholder import BoundQuery, Placeholder
from ._plan import Params, Planned
from ._planner import _Planner, dump_param
from ._query import Query
from ._sources import to_query

__all__ = ("Prepared", "PreparedPlan", "prepare")

_T = TypeVar("_T")

#: types whose values the builder passes into the query as they are (a parameter), and with which a
#: query expression's operators win (``5 < w.x`` is ``w.x > 5``); a value of any other type takes the
#: unprepared path
_PLAIN = frozenset(
    {
        str,
        int,
        float,
        bool,
        decimal.Decimal,
        _dt.datetime,
        _dt.date,
        _dt.time,
        _dt.timedelta,
        uuid.UUID,
        bytes,
        list,
        tuple,
        dict,
    }
)
_SCALARS = _PLAIN - {list, tuple, dict}
_INTEGERS = (t.Integer, t.Id)
#: plans kept per prepared query (one per operation and prefix), and value signatures remembered per plan
_MAX_PLANS = 256
_MAX_SIGNATURES = 1024


class _RecordingParams(Params):
    """The planner's parameter list while a prepared query is planned: it also records, per
    placeholder, its position and how it is typed (``_Planner.param``)."""

    __slots__ = ("recipes",)

    def __init__(self) -> None:
        super().__init__()
        self.recipes: list[tuple[int, Any, int, t.Type[Any] | None, str | None]] = []


@attrs.frozen
class PreparedPlan:
    """One operation's plan of a prepared query under one prefix: the plan, the parameters that are
    constants (cast and dumped once), and where each call's values go."""

    planned: Planned
    sent: tuple[Any, ...]
    cast: tuple[Any, ...]
    recipes: tuple[tuple[int, Any, int, t.Type[Any] | None, str | None], ...]
    #: ``args -> (plan, params)`` as unprepared (the builder run with the values, then planned)
    unprepared: Callable[[tuple[Any, ...]], tuple[Planned, Params]] = attrs.field(eq=False, repr=False)
    #: per signature of the values (their exact types; a bool by value): whether the unprepared path
    #: was seen to make this plan, with the parameters this plan binds
    checked: dict[tuple[Any, ...], bool] = attrs.field(factory=dict, eq=False, repr=False)

    def bind(self, args: tuple[Any, ...]) -> Params | None:
        """The call's parameters, or ``None`` when a value would make other SQL than this plan's
        (the caller then builds and plans the query as it would unprepared).

        The first call with each signature of values is also run unprepared and compared: a builder
        that branches on its parameters' types or on a bool (which a placeholder cannot refuse, as
        ``isinstance`` and ``is`` cannot be intercepted) then takes the unprepared path for that signature.
        """
        for _pos, kind, index, typ, _name in self.recipes:  # first every check, as the build comes first
            if index < 0:
                continue
            v = args[index]
            vt = type(v)
            if kind == "value":
                if vt not in _PLAIN:
                    return None
                if isinstance(typ, _INTEGERS) and (
                    vt is float or vt is decimal.Decimal or (vt is int and not -INT4 <= v < INT4)
                ):
                    return None
            elif kind == "count":
                if vt is not int or v < 0:
                    return None
            elif kind[0] == "literal":
                # in a select a list, tuple or dict is a shape, not a value
                if vt not in _SCALARS or literal_db_type(v, kind[1]) is not None:
                    return None
            elif kind[0] == "in":
                if vt is not list and vt is not tuple:
                    return None
                wide = v and type(kind[1]) in _INTEGERS and all(type(x) is int for x in v)
                if wide and any(not -INT4 <= x < INT4 for x in v):
                    return None
        signature = tuple(v if type(v) is bool else type(v) for v in args)
        checked = self.checked.get(signature)
        if checked is None:
            return self._check(signature, args)
        if not checked:
            return None
        return self._dump(args)

    def _dump(self, args: tuple[Any, ...]) -> Params:
        sent = list(self.sent)
        cast = list(self.cast)
        now: _dt.datetime | None = None
        for pos, kind, index, typ, name in self.recipes:
            if index < 0:  # ago/from_now: the time of this call
                if now is None:
                    now = _dt.datetime.now(_dt.UTC)
                v: Any = shift(now, kind[1], kind[2])
            else:
                v = args[index]
                if type(kind) is tuple and kind[0] == "in":
                    v = list(v)
            sent[pos], cast[pos] = dump_param(v, typ, name)
        return Params(sent, cast)

    def _check(self, signature: tuple[Any, ...], args: tuple[Any, ...]) -> Params | None:
        """The first call of a signature: bind only if the unprepared path makes the same plan and parameters."""
        try:
            planned, expected = self.unprepared(args)
        except Exception:
            return None
        same = planned == self.planned
        params: Params | None = None
        if same:
            try:
                params = self._dump(args)
            except Exception:
                same = False
        if same and params is not None:
            timed = {pos for pos, _k, index, _t, _n in self.recipes if index < 0}  # ago(): taken at each call
            same = len(params) == len(expected) and all(
                i in timed or (_same_value(a, b) and _same_value(c, d))
                for i, (a, b, c, d) in enumerate(zip(params, expected, params.cast, expected.cast, strict=True))
            )
        if len(self.checked) < _MAX_SIGNATURES:
            self.checked[signature] = same
        return params if same else None


def _same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (``1`` is not ``1.0`` or ``True``); NaN is the same as NaN."""
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:
        return False


class Prepared(Generic[_T]):
    """A query built once from ``builder``'s parameters; ``prepared(*args)`` binds values (see :func:`prepare`)."""

    __slots__ = ("_plans", "_signature", "builder", "names", "query")

    def __init__(self, builder: Callable[..., Any]) -> None:
        if not callable(builder):
            raise QueryError(f"prepare expects a function of the query's parameters, got {builder!r}")
        try:
            signature = inspect.signature(builder)
        except (TypeError, ValueError) as exc:
            raise QueryError(f"prepare expects a function of the query's parameters, got {builder!r}") from exc
        names = []
        for p in signature.parameters.values():
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is not p.empty:
                raise QueryError(
                    f"prepare(): parameter {p.name!r} of {builder!r} must be a plain positional parameter "
                    "(no default, *args, **kwargs or keyword-only): each one becomes a query parameter"
                )
            names.append(p.name)
        self.builder = builder
        self.names: tuple[str, ...] = tuple(names)
        self._signature = signature
        self._plans: dict[tuple[str, str | None, Hashable], PreparedPlan] = {}
        holders = [Placeholder(i, n) for i, n in enumerate(names)]
        try:
            built = builder(*holders)
        except QueryError as exc:
            message = str(exc)
            if not message.startswith("prepare()"):
                message = f"prepare(): {message}"
                if "<prepared parameter" in message:
                    message += (
                        "; a prepared query's parameter can only stand where a value is sent as a parameter: "
                        "pass a constant there, or build this query without prepare()"
                    )
            raise QueryError(message) from exc
        except Exception as exc:
            raise QueryError(
                f"prepare(): building the query with its parameters as placeholders failed ({type(exc).__name__}: "
                f"{exc}); the builder may only pass its parameters ({', '.join(names)}) into the query"
            ) from exc
        self.query: Query[_T] = to_query(built)
        _check_placeholders(self.query, "the query")
        self.plan("all", self.query.prefix, lambda q: q)  # planning errors surface now

    def __repr__(self) -> str:
        return f"Prepared<{repr(self.query)[6:-1]}>"

    def __call__(self, *args: Any, **kwargs: Any) -> BoundQuery[_T]:
        if kwargs or len(args) != len(self.names):
            args = tuple(self._signature.bind(*args, **kwargs).arguments.values())  # Python's TypeError if wrong
        return BoundQuery(self, args)

    def build(self, args: tuple[Any, ...]) -> Query[_T]:
        """The unprepared query for ``args``: what a call stands for, and its slow path."""
        built: Query[_T] = to_query(self.builder(*args))
        return built

    def plan(
        self, op: str, prefix: str | None, shape: Callable[[Query[Any]], Query[Any]], key: Hashable = None
    ) -> PreparedPlan:
        """The plan of ``shape(query)`` for ``op`` under ``prefix``, planned once per ``(op, prefix, key)``:
        ``shape`` is what the read does to a query first (``exists`` drops the select), ``key`` what else
        that depends on (``aggregate``'s field)."""
        plan_key = (op, prefix, key)
        found = self._plans.get(plan_key)
        if found is not None:
            return found
        params = _RecordingParams()
        q = shape(self.query)
        planner = _Planner(q, prefix if prefix is not None else q.prefix, params)
        planned = planner.plan_query(op)

        def unprepared(args: tuple[Any, ...]) -> tuple[Planned, Params]:
            built = shape(self.build(args))
            plain = _Planner(built, prefix if prefix is not None else built.prefix)
            return plain.plan_query(op), plain.params  # type: ignore[return-value]

        made = PreparedPlan(planned, tuple(params), tuple(params.cast), tuple(params.recipes), unprepared)
        if len(self._plans) >= _MAX_PLANS:  # many prefixes (a schema per tenant): keep the most recent
            self._plans.pop(next(iter(self._plans)))
        self._plans[plan_key] = made
        return made


def prepare(builder: Callable[..., Query[_T]], /) -> Prepared[_T]:
    """A prepared query: ``builder`` runs once with placeholders for its parameters, and the query is
    planned once per operation and prefix; ``prepared(*args)`` (accepted by ``repo.all``, ``one``,
    ``exists``, ``aggregate`` and ``stream``) costs neither a build nor a plan.

    .. code-block:: python

        by_city = prepare(lambda city, t: from_(Weather)
                          | where(lambda w: (w.city == city) & (w.temp_lo > t))
                          | order_by("temp_lo") | limit(10))
        rows = await repo.all(by_city("Oslo", 5))

    The builder may only pass its parameters into the query (compared with, given to ``limit``,
    ``offset``, ``in_``, ``like``, a fragment, a ``values`` row); using one as a Python value
    (``if city:``, ``f"{x}%"``, ``len(ids)``) fails here, naming it, as does a parameter where its
    value would be written into the SQL (``constant``, ``identifier``, ``contains``, ``has_key``,
    ``ago``'s amount, a prefix). Every call's results and errors are those of ``builder(*args)``:
    values that would make other SQL (``None``, a wide integer beside an integer field…) take
    the unprepared path.
    """
    return Prepared(builder)


def _check_placeholders(node: Any, where: str) -> None:
    """Refuse a placeholder anywhere but as a parameter's value (or a ``values`` cell)."""
    if isinstance(node, Placeholder):
        raise QueryError(
            f"prepare(): parameter {node.name!r} is used in {where}, where its value would be part of the SQL "
            "rather than a parameter; pass a constant there, or build this query without prepare()"
        )
    if isinstance(node, Param):
        if not isinstance(node.value, Placeholder):
            _check_placeholders(node.value, "a list or dict value (pass the whole value as one parameter)")
        return
    if isinstance(node, Values):
        for row in node.rows:
            for cell in row:
                if not isinstance(cell, Placeholder):
                    _check_placeholders(cell, "a values() cell's contents")
        return
    if isinstance(node, str | bytes | int | float | type) or node is None:
        return
    cls = type(node)
    if attrs.has(cls):
        for f in attrs.fields(cls):
            _check_placeholders(getattr(node, f.name), f"{cls.__name__}.{f.name}")
    elif isinstance(node, list | tuple | frozenset | set):
        for x in node:
            _check_placeholders(x, where)
    elif isinstance(node, Mapping):
        for k, v in node.items():
            _check_placeholders(k, where)
            _check_placeholders(v, where)
