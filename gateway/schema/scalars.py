"""Contract scalars: Position (decimal string), a bounded Decimal, plus Strawberry's DateTime and JSON.

A value a scalar cannot take is the caller's mistake: each parser raises
``InvalidInputValue``, which the edge reports as BAD_USER_INPUT at the value's
location (any other exception would be masked as INTERNAL_SERVER_ERROR).
"""

from __future__ import annotations

import decimal
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from gateway.edge.errors import InvalidInputValue

MAX_POSITION = 2**63 - 1
# Money and prices: far above any real amount, and exact in a float (the search engine's type).
MAX_DECIMAL = decimal.Decimal(10) ** 15

Position = NewType("Position", int)


def bad_input(message: str) -> InvalidInputValue:
    return InvalidInputValue(message)


def parse_position(value: object) -> int:
    """A Position from a variable's value or a literal's text; InvalidInputValue if it is not one."""
    if isinstance(value, bool):
        raise bad_input("Position must be a decimal string")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        number = int(value)
    else:
        raise bad_input("Position must be a non-negative integer as a decimal string")
    if not 0 <= number <= MAX_POSITION:
        raise bad_input(f"Position is out of range (0 to {MAX_POSITION})")
    return number


def _parse_decimal(value: object) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad_input('Decimal must be a number as a string, like "19.99"')
    text = str(value).strip()
    if len(text) > 40:
        raise bad_input("Decimal has too many digits")
    try:
        number = decimal.Decimal(text)
    except decimal.DecimalException:
        raise bad_input(f"Decimal cannot represent {text[:40]!r}") from None
    if not number.is_finite():
        raise bad_input(f"Decimal must be a finite number, not {text[:40]!r}")
    if abs(number) >= MAX_DECIMAL:
        raise bad_input(f"Decimal is out of range (below {MAX_DECIMAL:,})")
    return number


def optional_position(value: int | None) -> Position | None:
    """A mutation's position: None when it appended nothing."""
    return None if value is None else Position(value)


SCALAR_MAP: dict[object, ScalarDefinition] = {
    decimal.Decimal: strawberry.scalar(
        name="Decimal",
        description="Decimal (fixed-point)",
        serialize=str,
        parse_value=_parse_decimal,
    ),
    Position: strawberry.scalar(
        name="Position",
        description="Global ledger position: a non-negative 64-bit integer, serialized as a decimal string.",
        serialize=lambda value: str(int(value)),
        parse_value=parse_position,
    ),
}
