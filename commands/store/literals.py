"""SQL literals for the few statements sent without parameters (a simple query runs several
statements in one round trip, but takes no parameters)."""

from __future__ import annotations

import uuid
from typing import Any


def text(value: str) -> str:
    """``value`` as a string literal. The ``E''`` form reads backslashes the same whatever
    ``standard_conforming_strings`` says; PostgreSQL's text holds no NUL character."""
    if "\x00" in value:
        raise ValueError("SQL text cannot hold a NUL character")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def of(value: Any) -> str | None:
    """A literal PostgreSQL reads as it would the same value sent as a parameter (an untyped
    literal takes the type its place asks for, as a parameter does); None for a value of a type
    not written this way, or one that could not be sent at all (its statement then goes with
    parameters, and fails or not as it would)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        # In parentheses: a negative number after a minus would otherwise open a comment
        # (``n -$1`` -> ``n --5``) or bind looser than a cast (``-5::text``); int() for an
        # int subclass (an IntEnum) whose str() is its name.
        return f"({int(value)})"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, str) and "\x00" not in value:
        return text(value)
    return None
