"""The :class:`Type` protocol, :class:`BaseType` and helpers shared by the built-in types."""

from __future__ import annotations

import re
import typing as t

__all__ = ("BaseType", "Type", "Unstorable", "text_problem")

T = t.TypeVar("T")
T_co = t.TypeVar("T_co", covariant=True)

_INT_RE = re.compile(r"[+-]?[0-9]+")


@t.runtime_checkable
class Type(t.Protocol[T_co]):
    """What every field type provides; user types only need these five members.

    ``name`` appears in error messages (e.g. ``"array(integer)"``). ``cast`` turns
    external input into an internal value, ``dump`` turns an internal value into what
    asyncpg sends and ``load`` turns what asyncpg returns into an internal value; they
    raise ``ValueError`` or ``TypeError`` on bad input and never receive ``None``.

    >>> from asyncecto.types import Integer
    >>> isinstance(Integer(), Type)
    True
    """

    @property
    def name(self) -> str: ...

    def cast(self, value: t.Any) -> T_co: ...

    def dump(self, value: t.Any) -> t.Any: ...

    def load(self, value: t.Any) -> T_co: ...

    def equal(self, a: t.Any, b: t.Any) -> bool: ...


# -- small helpers -------------------------------------------------------------------


def _show(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than sys.get_int_max_str_digits() allows
        text = f"<{value.bit_length()}-bit integer>" if isinstance(value, int) else "<unprintable>"
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


class Unstorable(ValueError):
    """A value of the right kind that PostgreSQL cannot store; the message is the reason.

    Raised by ``cast`` and ``dump`` for a NUL character or a lone surrogate in a string, an
    integer beyond ``bigint`` or a decimal beyond ``numeric``. A changeset keeps the reason
    in the error's metadata (``"reason"``); ``repo.get`` treats such an id as not found.

    :ivar fix: how to fix the value, for the error message
    """

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(reason)
        self.fix = fix


_NUL_FIX = "remove the NUL characters, e.g. value.replace('\\x00', ''), or keep binary data in a binary (bytea) field"
_SURROGATE_FIX = (
    "lone surrogates come from decoding bytes with errors='surrogateescape' or from JSON with unpaired \\ud800 "
    "escapes; decode the input as UTF-8 (or replace them: value.encode('utf-8', 'replace').decode())"
)


INT8_MIN = -(2**63)
INT8_MAX = 2**63 - 1
INT4_MIN = -(2**31)
INT4_MAX = 2**31 - 1


def text_problem(value: str) -> str | None:
    r"""Why PostgreSQL cannot store the string ``value`` (a NUL, a lone surrogate), or ``None``.

    >>> text_problem("ok") is None
    True
    >>> print(text_problem("a\x00b"))
    contains a NUL character (\x00) at index 1, which PostgreSQL text cannot store
    """
    if "\x00" in value:
        return f"contains a NUL character (\\x00) at index {value.index(chr(0))}, which PostgreSQL text cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"contains a lone surrogate (U+{ord(value[exc.start]):04X}) at index {exc.start}, "
                "which is not valid Unicode and cannot be sent to PostgreSQL (UTF-8)"
            )
    return None


def _check_text(value: str) -> str:
    """``value`` itself, or :class:`Unstorable` saying why PostgreSQL cannot store it."""
    if "\x00" in value or not value.isascii():
        problem = text_problem(value)
        if problem is not None:
            raise Unstorable(problem, _NUL_FIX if "\x00" in value else _SURROGATE_FIX)
    return value


def _check_int(value: int) -> int:
    """``value`` itself, or :class:`Unstorable` when no PostgreSQL integer column can hold it."""
    if INT8_MIN <= value <= INT8_MAX:
        return value
    raise Unstorable(
        "out of range: PostgreSQL integers are at most 64-bit (bigint: -2**63 to 2**63-1)",
        "use a decimal (numeric) field for integers beyond 64 bits",
    )


def _reject(expected: str, value: object) -> TypeError | ValueError:
    msg = f"expected {expected}, got {_show(value)}"
    return ValueError(msg) if isinstance(value, str) else TypeError(msg)


def _is_int(value: object) -> t.TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(type_: object) -> str:
    name = getattr(type_, "name", None)
    return name if isinstance(name, str) else type(type_).__name__


def _db_type(type_: object) -> str:
    db_type = getattr(type_, "db_type", None)
    if not isinstance(db_type, str):
        raise AttributeError(f"type {_type_name(type_)} has no db_type")
    return db_type


def _implements(obj: object) -> bool:
    return all(callable(getattr(obj, attr, None)) for attr in ("cast", "dump", "load", "equal"))


# -- base classes --------------------------------------------------------------------


class BaseType(t.Generic[T]):
    """A convenient base for user types: identity cast/dump/load and ``==`` equality.

    Subclasses set ``name`` and usually ``db_type`` (the PostgreSQL column type), and
    set ``load_is_identity = False`` when their ``load`` does work. Instances compare
    equal when they have the same class and attributes.

    >>> class Money(BaseType[int]):
    ...     name = "money"
    ...     db_type = "bigint"
    ...     def cast(self, value):
    ...         return round(float(value) * 100)
    >>> Money().cast("1.25"), Money().dump(125), Money() == Money()
    (125, 125, True)
    """

    __slots__ = ()

    name: t.ClassVar[str]
    db_type: t.ClassVar[str]
    load_is_identity: t.ClassVar[bool] = True
    dump_passes: t.ClassVar[tuple[type, ...]] = ()
    """Python classes whose instances ``dump`` returns unchanged (bulk inserts skip the call)."""

    def cast(self, value: t.Any) -> T:
        """Turn external input into an internal value (identity by default).

        :param value: the input, never ``None``
        """
        return t.cast(T, value)

    def dump(self, value: t.Any) -> t.Any:
        """Turn an internal value into a driver value (identity by default).

        :param value: the internal value, never ``None``
        """
        return value

    def load(self, value: t.Any) -> T:
        """Turn a driver value into an internal value (identity by default).

        :param value: the driver value, never ``None``
        """
        return t.cast(T, value)

    def equal(self, a: t.Any, b: t.Any) -> bool:
        """Whether two internal values are the same (``==`` by default)."""
        return bool(a == b)

    def _state(self) -> dict[str, t.Any]:
        state = dict(getattr(self, "__dict__", {}))
        for klass in type(self).__mro__:
            for name in getattr(klass, "__slots__", ()):
                if name not in ("__dict__", "__weakref__") and hasattr(self, name):
                    state[name] = getattr(self, name)
        return state

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return bool(self._state() == other._state())

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in getattr(self, "__dict__", {}).items())
        return f"{type(self).__name__}({attrs})"


class _Frozen:
    """Immutable value object with equality, hash, copy and pickle by ``_args``."""

    __slots__ = ()

    def _args(self) -> tuple[t.Any, ...]:
        raise NotImplementedError

    def _key(self) -> t.Hashable:
        return self._args()

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return bool(self._key() == other._key())

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(arg) for arg in self._args())})"

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (type(self), self._args())

    def __copy__(self) -> t.Self:
        return self

    def __deepcopy__(self, memo: dict[int, t.Any]) -> t.Self:
        return self
