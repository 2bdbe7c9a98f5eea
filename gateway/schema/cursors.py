"""Opaque keyset cursors for the schema's connections: a tagged JSON value in the shared codec."""

from __future__ import annotations

from typing import Any

from gateway.edge.errors import GatewayError, bad_user_input
from queries import cursors as codec


def encode_cursor(tag: str, value: Any) -> str:
    return codec.encode([tag, value])


def decode_cursor(tag: str, cursor: str) -> Any:
    """The value inside a cursor made by ``encode_cursor(tag, ...)``; BAD_USER_INPUT otherwise."""
    try:
        decoded = codec.decode(cursor)
    except codec.MalformedCursor:
        raise not_a_cursor() from None
    if not isinstance(decoded, list) or len(decoded) != 2 or decoded[0] != tag:
        raise not_a_cursor()
    return decoded[1]


def not_a_cursor() -> GatewayError:
    """The refusal of an ``after`` this connection did not make."""
    return bad_user_input("after is not a cursor from this connection", argument="after")


def check_first(first: int | None, default: int, maximum: int) -> int:
    value = default if first is None else first
    if not 1 <= value <= maximum:
        raise bad_user_input(f"first must be between 1 and {maximum}", argument="first")
    return value
