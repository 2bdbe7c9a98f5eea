"""The opaque cursor codec every connection shares: unpadded URL-safe base64 of compact JSON.

Each reader gives its cursors their own shape (a tag, a fingerprint) and checks it after decoding.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec


class MalformedCursor(ValueError):
    """The text is not base64 of a JSON value, so no connection made it."""


def encode(payload: Any) -> str:
    # msgspec writes the same compact JSON as json.dumps, except non-ASCII text as UTF-8 rather
    # than escapes; decode reads both, so cursors handed out before stay valid.
    raw = msgspec.json.encode(payload)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Any:
    """The JSON value inside ``cursor``; ``MalformedCursor`` if it holds none."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError all are
        raise MalformedCursor("not a cursor") from None
