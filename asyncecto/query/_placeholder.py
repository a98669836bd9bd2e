"""The placeholder a prepared query is built with (one per parameter of its builder), and the
bound call ``prepared(*args)`` that the Repo's reads accept. The prepared query itself is in ``_prepared``."""

from __future__ import annotations

from typing import Any, Generic, NoReturn, TypeVar

from asyncecto.errors import QueryError

__all__ = ("BoundQuery", "Placeholder")

_T = TypeVar("_T")


class Placeholder:
    """A parameter of a prepared query while its builder runs once: it may only be passed into the query
    (compared with, assigned, given to ``limit``/``in_``…); any Python use of its value fails clearly."""

    __slots__ = ("index", "name")

    def __init__(self, index: int, name: str) -> None:
        self.index = index
        self.name = name

    def __repr__(self) -> str:
        return f"<prepared parameter {self.name!r}>"

    def _refuse(self, use: str) -> NoReturn:
        raise QueryError(
            f"prepare(): parameter {self.name!r} was used as a Python value ({use}) while building the query; "
            "the builder runs once with placeholders, so it may only pass its parameters into the query "
            f"(w.field == {self.name}, limit({self.name}), w.id.in_({self.name}) …); "
            "compute derived values before calling the prepared query and pass them as parameters"
        )

    def __bool__(self) -> bool:
        self._refuse("as a bool: `if`, `and`, `or`, `not`")

    # comparing with a query expression builds SQL (the expression's reflected operator runs);
    # comparing with anything else is Python on the value
    def _compare(self, other: object, op: str) -> Any:
        if _is_expression(other):
            return NotImplemented
        self._refuse(f"compared: {op} {other!r}")

    def __eq__(self, other: object) -> Any:
        return self._compare(other, "==")

    def __ne__(self, other: object) -> Any:
        return self._compare(other, "!=")

    def __lt__(self, other: object) -> Any:
        return self._compare(other, "<")

    def __le__(self, other: object) -> Any:
        return self._compare(other, "<=")

    def __gt__(self, other: object) -> Any:
        return self._compare(other, ">")

    def __ge__(self, other: object) -> Any:
        return self._compare(other, ">=")

    def __hash__(self) -> int:  # `x in {...}`, a dict lookup: Python on the value
        self._refuse("hashed: a set or dict lookup")

    def __str__(self) -> str:
        self._refuse("str()")

    def __format__(self, spec: str) -> str:
        self._refuse("formatted into a string")

    def __len__(self) -> int:
        self._refuse("len()")

    def __iter__(self) -> NoReturn:
        self._refuse("iterated")

    def __index__(self) -> int:
        self._refuse("as an int")

    def __int__(self) -> int:
        self._refuse("int()")

    def __float__(self) -> float:
        self._refuse("float()")

    def __getitem__(self, key: object) -> NoReturn:
        self._refuse(f"[{key!r}]")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse(f".{name}")


#: the query expression classes (``E``, ``Binding``, ``Dynamic``); ``_expr``, which imports this
#: module, registers them when it loads (no import of it here: that would be a cycle)
_EXPRESSIONS: tuple[type, ...] = ()


def register_expression_types(*types: type) -> None:
    """Called once by ``_expr``: what :func:`_is_expression` recognises."""
    global _EXPRESSIONS
    _EXPRESSIONS = types


def _is_expression(value: object) -> bool:
    return isinstance(value, _EXPRESSIONS)


class BoundQuery(Generic[_T]):
    """``prepared(*args)``: a prepared query with its parameter values, accepted by ``repo.all``,
    ``one``, ``exists``, ``aggregate`` and ``stream``. ``query()`` builds the plain :class:`Query`
    (what the call stands for), which is what every path without a fast path uses."""

    __slots__ = ("args", "prepared")

    def __init__(self, prepared: Any, args: tuple[Any, ...]) -> None:
        self.prepared = prepared
        self.args = args

    def query(self) -> Any:
        """The query this call stands for, built by the builder with the call's values."""
        return self.prepared.build(self.args)

    @property
    def lock(self) -> Any:
        """The query's lock clause (a locking read goes to the primary)."""
        return self.prepared.query.lock

    def __repr__(self) -> str:
        return f"{self.prepared!r}{self.args!r}"
