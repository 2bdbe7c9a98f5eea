"""The Decimal scalar: what it takes, and what it says about what it refuses."""

from __future__ import annotations

import decimal

import pytest

from gateway.edge.errors import InvalidInputValue
from gateway.schema.scalars import _parse_decimal


def test_numbers_as_strings_and_ints_are_taken_exactly() -> None:
    assert _parse_decimal("19.99") == decimal.Decimal("19.99")
    assert _parse_decimal(" 7 ") == decimal.Decimal(7)
    assert _parse_decimal(3) == decimal.Decimal(3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "Decimal must be a finite number, not 'NaN'"),
        ("-Infinity", "Decimal must be a finite number, not '-Infinity'"),
        ("1e30", "Decimal is out of range (below 1,000,000,000,000,000)"),
        ("twelve", "Decimal cannot represent 'twelve'"),
        (True, 'Decimal must be a number as a string, like "19.99"'),
    ],
)
def test_refusals_name_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(InvalidInputValue) as refused:
        _parse_decimal(value)
    assert str(refused.value) == message
