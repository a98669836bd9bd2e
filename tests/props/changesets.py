"""Random changeset inputs and the reference model of what ``cast`` and the validations make of them (issue 18).

The model follows Ecto's rules as asyncecto documents them: outside params are cast per field type
(an empty or whitespace-only string is "empty" and becomes the field's default; a value that does
not cast is an ``"is invalid"`` error and no change); a change is recorded only when it differs
from the struct's value; the validations look at changes only, except ``validate_required`` which
looks at the field's current value, drops a blank change and adds no second error to a field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from hypothesis import strategies as st

from asyncecto import changeset as c
from asyncecto import schema

__all__ = (
    "CAST",
    "DDL",
    "KINDS",
    "Model",
    "Person",
    "Validation",
    "cast_inputs",
    "data_values",
    "raw_params",
    "validations",
)


@schema("props_people")
class Person:
    id: int | None = None
    name: str | None = None
    nick: str | None = "anon"
    age: int | None = None
    score: int | None = 0
    active: bool | None = None


DDL = (
    "CREATE TABLE props_people (id bigserial PRIMARY KEY, name text, nick text DEFAULT 'anon', "
    "age bigint, score bigint DEFAULT 0, active boolean)",
)
KINDS: dict[str, str] = {"name": "string", "nick": "string", "age": "integer", "score": "integer", "active": "boolean"}
DEFAULTS: dict[str, Any] = {"name": None, "nick": "anon", "age": None, "score": 0, "active": None}
CAST = tuple(KINDS)

# -- inputs -------------------------------------------------------------------------------------------

#: ASCII letters, spaces and one non-ASCII letter: a length is the same in graphemes and code points
_TEXT = st.text(alphabet="ab é", max_size=5)
_INT = st.integers(-20, 20)
#: values a string field cannot take, strings an integer field cannot parse, and so on
_NOT_STRINGS = st.sampled_from([5, 1.5, True, ["a"]])
_NOT_INTEGERS = st.sampled_from(["abc", "1.5", " 3", "3 ", "3.0", "1e3", "1_000", "0x1", 1.5, 2.0, True, False, [1]])
_NOT_BOOLEANS = st.sampled_from(["yes", "no", "t", "f", 1, 0, "2", 1.0, [True]])
_EMPTY = st.sampled_from(["", " ", "  ", "\t", "\n "])

RAW: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(_TEXT, _TEXT, _EMPTY, _NOT_STRINGS, st.none()),
    "integer": st.one_of(
        _INT, _INT.map(str), st.integers(0, 20).map(lambda n: f"+{n}"), _EMPTY, _NOT_INTEGERS, st.none()
    ),
    "boolean": st.one_of(st.booleans(), st.sampled_from(["true", "false", "1", "0"]), _EMPTY, _NOT_BOOLEANS, st.none()),
}
CASTABLE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(_TEXT, st.none()),
    "integer": st.one_of(_INT, _INT.map(str), st.none()),
    "boolean": st.one_of(st.booleans(), st.sampled_from(["true", "false", "1", "0"]), st.none()),
}
TYPED: dict[str, st.SearchStrategy[Any]] = {
    "string": st.none() | _TEXT,
    "integer": st.none() | _INT,
    "boolean": st.none() | st.booleans(),
}


def data_values() -> st.SearchStrategy[dict[str, Any]]:
    """A struct's field values (what a loaded row may hold)."""
    return st.fixed_dictionaries({name: TYPED[kind] for name, kind in KINDS.items()})


@st.composite
def raw_params(draw: st.DrawFn) -> dict[str, Any]:
    """Outside params: each field or not (valid, empty, invalid or ``None``), maybe an unknown key."""
    raw = CASTABLE if draw(st.booleans()) else RAW  # half the time, every value casts
    params = {}
    for name, kind in (*KINDS.items(), ("admin", "boolean")):
        if draw(st.booleans()):
            params[name] = draw(raw[kind])
    return params


@st.composite
def cast_inputs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(data, params, permitted)``; half the time every field is permitted."""
    permitted = list(CAST) if draw(st.booleans()) else draw(st.lists(st.sampled_from(CAST), unique=True))
    return draw(data_values()), draw(raw_params()), permitted


# -- validations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    name: str  # required | length | number | inclusion
    field: str | tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()

    def step(self) -> Any:
        """The validation as a changeset step."""
        opts = dict(self.options)
        match self.name:
            case "required":
                return c.validate_required(list(self.field))
            case "length":
                return c.validate_length(self.field, **opts)
            case "number":
                return c.validate_number(self.field, **opts)
            case _:
                return c.validate_inclusion(self.field, opts["values"])


_NUMBER_KINDS = [
    "less_than",
    "greater_than",
    "less_than_or_equal_to",
    "greater_than_or_equal_to",
    "equal_to",
    "not_equal_to",
]


def validations() -> st.SearchStrategy[list[Validation]]:
    required = st.lists(st.sampled_from(CAST), min_size=1, max_size=3, unique=True).map(
        lambda fs: Validation("required", tuple(fs))
    )
    lengths = st.builds(
        lambda f, opts: Validation("length", f, tuple(opts.items())),
        st.sampled_from(["name", "nick"]),
        st.fixed_dictionaries(
            {}, optional={"is_": st.integers(0, 4), "min": st.integers(0, 4), "max": st.integers(0, 4)}
        ).filter(bool),
    )
    numbers = st.builds(
        lambda f, opts: Validation("number", f, tuple(opts)),
        st.sampled_from(["age", "score"]),
        st.lists(st.tuples(st.sampled_from(_NUMBER_KINDS), _INT), min_size=1, max_size=3, unique_by=lambda kv: kv[0]),
    )
    inclusions = st.builds(
        lambda f, values: Validation("inclusion", f, (("values", tuple(values)),)),
        st.sampled_from(["name", "nick"]),
        st.lists(_TEXT, max_size=3),
    ) | st.builds(
        lambda values: Validation("inclusion", "age", (("values", tuple(values)),)), st.lists(_INT, max_size=4)
    )
    return st.lists(st.one_of(required, lengths, numbers, inclusions), max_size=4)


# -- the model ----------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
Error: TypeAlias = tuple[str, str, Any]  # (field, validation, kind or type)
_INVALID = object()


def cast_value(kind: str, raw: Any, default: Any) -> Any:
    """``raw`` cast to the field's type; :data:`_INVALID` when it does not cast."""
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip() == "":
        return default
    if kind == "string":
        return raw if isinstance(raw, str) else _INVALID
    if kind == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        return int(raw) if isinstance(raw, str) and _INTEGER.fullmatch(raw) else _INVALID
    if isinstance(raw, bool):
        return raw
    return (
        {"true": True, "1": True, "false": False, "0": False}.get(raw, _INVALID) if isinstance(raw, str) else _INVALID
    )


def _compare(value: Any, kind: str, bound: int) -> bool:
    return bool(
        {
            "less_than": value < bound,
            "greater_than": value > bound,
            "less_than_or_equal_to": value <= bound,
            "greater_than_or_equal_to": value >= bound,
            "equal_to": value == bound,
            "not_equal_to": value != bound,
        }[kind]
    )


@dataclass
class Model:
    """What a changeset should hold: the struct's values, the changes, the errors (newest first)."""

    data: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    errors: list[Error] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def _error(self, error: Error) -> None:
        self.errors.insert(0, error)  # newest first, as Ecto's changeset.errors

    def current(self, name: str) -> Any:
        return self.changes.get(name, self.data[name])

    def applied(self) -> dict[str, Any]:
        return {**self.data, **self.changes}

    def put(self, name: str, value: Any) -> None:
        """``put_change``: a value equal to the struct's is no change."""
        if value == self.data[name] and type(value) is type(self.data[name]):
            self.changes.pop(name, None)
        else:
            self.changes[name] = value

    def cast(self, params: Mapping[str, Any], permitted: Sequence[str]) -> None:
        for name in permitted:
            if name not in params:
                continue
            value = cast_value(KINDS[name], params[name], DEFAULTS[name])
            if value is _INVALID:
                self._error((name, "cast", KINDS[name]))
            else:
                self.put(name, value)

    def validate(self, v: Validation) -> None:
        opts = dict(v.options)
        if v.name == "required":
            for name in v.field:
                value = self.current(name)
                if value is None or (isinstance(value, str) and value.strip() == ""):
                    self.changes.pop(name, None)
                    if not any(e[0] == name for e in self.errors):
                        self._error((name, "required", None))
            return
        assert isinstance(v.field, str)
        value = self.changes.get(v.field)
        if value is None:
            return
        if v.name == "length":
            size = len(value)
            for option, kind in (("is_", "is"), ("min", "min"), ("max", "max")):
                bound = opts.get(option)
                if bound is not None and {"is": size != bound, "min": size < bound, "max": size > bound}[kind]:
                    self._error((v.field, "length", kind))
                    return
        elif v.name == "number":
            for kind, bound in v.options:
                if not _compare(value, kind, bound):
                    self._error((v.field, "number", kind))
                    return
        elif value not in opts["values"]:
            self._error((v.field, "inclusion", None))


def errors_of(cs: Any) -> list[Error]:
    """A changeset's errors as the model writes them."""
    out: list[Error] = []
    for name, (_message, meta) in cs.errors:
        validation = meta.get("validation")
        out.append((name, validation, meta.get("type") if validation == "cast" else meta.get("kind")))
    return out
