"""Tests for asyncecto.changeset: the Changeset value and change()."""

from __future__ import annotations

import decimal

import attrs
import pytest

from asyncecto.changeset import Changeset, change
from asyncecto.errors import ArgumentError
from asyncecto.schema import field, schema


@schema("weather")
class Weather:
    city: str | None = None
    temp_lo: int | None = None
    temp_hi: int | None = None
    prcp: float | None = 0.0
    price: decimal.Decimal | None = None


@schema("users")
class User:
    email: str | None = None
    password: str | None = field(redact=True, default=None)


def invalidate(cs: Changeset[Weather]) -> Changeset[Weather]:
    return attrs.evolve(cs, valid=False, errors=(("city", ("is invalid", {})), *cs.errors))


def test_new_changeset_is_valid_without_errors_or_action() -> None:
    w = Weather(city="x")
    cs = change(w)
    assert isinstance(cs, Changeset)
    assert cs.data is w
    assert cs.changes == {}
    assert cs.valid is True
    assert cs.errors == ()
    assert cs.action is None


def test_change_with_a_mapping_records_only_differing_values() -> None:
    w = Weather(city="Kraków", temp_lo=1)
    cs = change(w, {"city": "Kraków", "temp_lo": 5, "temp_hi": None})
    assert cs.changes == {"temp_lo": 5}
    assert cs.data is w
    # the struct itself is untouched
    assert w.temp_lo == 1


def test_change_with_keywords_records_only_differing_values() -> None:
    w = Weather(city="Kraków", temp_lo=1)
    cs = change(w, city="Warszawa", temp_lo=1)
    assert cs.changes == {"city": "Warszawa"}


def test_keywords_win_over_the_mapping() -> None:
    cs = change(Weather(), {"city": "a"}, city="b")
    assert cs.changes == {"city": "b"}


def test_equality_uses_the_field_type() -> None:
    w = Weather(prcp=1.0, price=decimal.Decimal("1.0"))
    assert change(w, prcp=1.0, price=decimal.Decimal("1.00")).changes == {}
    assert change(w, price=decimal.Decimal("1.5")).changes == {"price": decimal.Decimal("1.5")}


def test_setting_none_on_a_set_field_is_a_change() -> None:
    cs = change(Weather(city="x"), city=None)
    assert cs.changes == {"city": None}
    assert change(Weather(), city=None).changes == {}


def test_values_are_not_cast() -> None:
    cs = change(Weather(temp_lo=1), temp_lo="1")
    assert cs.changes == {"temp_lo": "1"}


def test_an_equal_value_removes_an_existing_change() -> None:
    w = Weather(city="Kraków", temp_lo=1)
    cs = change(w, city="Warszawa", temp_lo=2)
    assert cs.changes == {"city": "Warszawa", "temp_lo": 2}
    back: Changeset[Weather] = change(cs, temp_lo=1)
    assert back.changes == {"city": "Warszawa"}
    # the earlier changeset is unchanged
    assert cs.changes == {"city": "Warszawa", "temp_lo": 2}


def test_unknown_field_raises_naming_it() -> None:
    with pytest.raises(ArgumentError) as info:
        change(Weather(), town="Kraków")
    message = str(info.value)
    assert "'town'" in message
    assert "Weather" in message
    assert "id, city, temp_lo, temp_hi, prcp, price" in message


def test_unknown_field_raises_even_next_to_valid_ones() -> None:
    with pytest.raises(ArgumentError) as info:
        change(Weather(), {"city": "x", "nope": 1})
    assert "'nope'" in str(info.value)


def test_change_of_a_non_schema_raises() -> None:
    with pytest.raises(ArgumentError):
        change(object(), a=1)
    with pytest.raises(ArgumentError):
        change({"a": 1})


def test_chaining_change_accumulates() -> None:
    w = Weather()
    cs: Changeset[Weather] = change(change(w, temp_lo=1), temp_hi=2)
    assert cs.changes == {"temp_lo": 1, "temp_hi": 2}
    assert cs.data is w


def test_change_of_a_changeset_without_changes_returns_it() -> None:
    cs = change(Weather(), city="x")
    same: Changeset[Weather] = change(cs)
    assert same is cs


def test_change_keeps_the_rest_of_the_changeset() -> None:
    cs = invalidate(change(Weather(), city="x"))
    more: Changeset[Weather] = change(cs, temp_lo=3)
    assert more.valid is False
    assert more.errors == cs.errors
    assert more.changes == {"city": "x", "temp_lo": 3}


def test_changeset_is_frozen() -> None:
    cs = change(Weather(), city="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cs.valid = False  # type: ignore[misc]
    assert cs.valid is True


def test_pipe_applies_the_step() -> None:
    cs = change(Weather(), city="x")
    out = cs | invalidate
    assert out.valid is False
    assert out.errors == (("city", ("is invalid", {})),)
    assert out.changes == {"city": "x"}
    assert cs.valid is True


def test_pipe_composes_left_to_right() -> None:
    seen: list[str] = []

    def first(cs: Changeset[Weather]) -> Changeset[Weather]:
        seen.append("first")
        return change(cs, temp_lo=1)

    def second(cs: Changeset[Weather]) -> Changeset[Weather]:
        seen.append("second")
        return change(cs, temp_lo=2)

    out = change(Weather()) | first | second
    assert seen == ["first", "second"]
    assert out.changes == {"temp_lo": 2}


def test_changesets_compare_by_value() -> None:
    w = Weather()
    assert change(w, city="x") == change(w, city="x")
    assert change(w, city="x") != change(w, city="y")


def test_repr() -> None:
    cs = change(Weather(), city="Kraków")
    assert repr(cs) == ("Changeset<action=None, changes={'city': 'Kraków'}, errors=[], data=Weather, valid=True>")
    assert repr(cs | invalidate) == (
        "Changeset<action=None, changes={'city': 'Kraków'}, errors=[('city', 'is invalid')], data=Weather, valid=False>"
    )


def test_repr_hides_redacted_values() -> None:
    u = User(email="a@b.c", password="old-SECRET")
    cs = change(u, password="new-SECRET", email="d@e.f")
    text = repr(cs)
    assert "password': '**redacted**'" in text
    assert "new-SECRET" not in text
    assert "old-SECRET" not in text
    assert "'d@e.f'" in text
    # the change itself is kept
    assert cs.changes["password"] == "new-SECRET"
