"""Development JWTs (HS256), minted without the rest of the edge: ``commerce-gateway token`` runs
in well under a second because it imports only this."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

ROLES = frozenset({"customer", "support", "admin"})


def mint(secret: str, subject: str, roles: Sequence[str], ttl_seconds: int = 3600) -> str:
    unknown = set(roles) - ROLES
    if unknown or not roles:
        raise ValueError(f"roles must be among {sorted(ROLES)}")
    now = int(time.time())
    payload = {"sub": subject, "roles": list(roles), "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(payload, secret, algorithm="HS256")
