"""Contract scalars: Position (decimal string), plus Strawberry's Decimal, DateTime and JSON."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

MAX_POSITION = 2**63 - 1

Position = NewType("Position", int)


def _parse_position(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("Position must be a decimal string")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise ValueError("Position must be a non-negative integer as a decimal string")
    if not 0 <= number <= MAX_POSITION:
        raise ValueError("Position is out of range")
    return number


def optional_position(value: int | None) -> Position | None:
    """A mutation's position: None when it appended nothing."""
    return None if value is None else Position(value)


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Position: strawberry.scalar(
        name="Position",
        description="Global ledger position: a non-negative 64-bit integer, serialized as a decimal string.",
        serialize=lambda value: str(int(value)),
        parse_value=_parse_position,
    )
}
