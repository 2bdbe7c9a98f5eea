"""Opaque keyset cursors for connections: base64 of a tagged JSON value."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from gateway.edge.errors import bad_user_input


def encode_cursor(tag: str, value: Any) -> str:
    raw = json.dumps([tag, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(tag: str, cursor: str) -> Any:
    """The value inside a cursor made by ``encode_cursor(tag, ...)``; BAD_USER_INPUT otherwise."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_user_input("`after` is not a cursor from this connection") from None
    if not isinstance(decoded, list) or len(decoded) != 2 or decoded[0] != tag:
        raise bad_user_input("`after` is not a cursor from this connection")
    return decoded[1]


def check_first(first: int | None, default: int, maximum: int) -> int:
    value = default if first is None else first
    if not 1 <= value <= maximum:
        raise bad_user_input(f"`first` must be between 1 and {maximum}", argument="first")
    return value
