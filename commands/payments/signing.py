"""Webhook signatures: ``Provider-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>``.

The timestamp is signed with the body so a captured request cannot be replayed
outside the tolerance window. Several ``v1`` entries may appear while the
provider rotates its secret; one matching entry is enough.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Provider-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    """The signature header is missing, malformed, wrong, or outside the time tolerance."""


def compute_signature(secret: str, body: bytes, timestamp: int) -> str:
    signed_payload = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={compute_signature(secret, body, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or not value:
            raise InvalidSignature("malformed signature header")
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                raise InvalidSignature("malformed signature timestamp")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # Other schemes (v0, future versions) are ignored, as senders may add them.
    if timestamp is None or not signatures:
        raise InvalidSignature("signature header lacks t or v1")
    return timestamp, signatures


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise InvalidSignature unless ``header`` signs ``body`` with ``secret`` within tolerance of ``now``."""
    if not header:
        raise InvalidSignature("missing signature header")
    timestamp, signatures = _parse(header)
    if abs(now - timestamp) > tolerance_seconds:
        raise InvalidSignature("signature timestamp outside tolerance")
    expected = compute_signature(secret, body, timestamp).encode("ascii")
    # Check every entry so timing does not reveal which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8"))
    if not matched:
        raise InvalidSignature("no matching signature")
