"""Who is calling: JWT bearer tokens (HS256) and anonymous guests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt
from cachetools import LRUCache

from gateway.edge import tokens
from gateway.edge.errors import GatewayError, forbidden, unauthenticated
from gateway.edge.tokens import ROLES as ROLES


@dataclass(frozen=True)
class Principal:
    subject: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    client: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.subject is None

    @property
    def customer_id(self) -> str | None:
        """The customer this caller acts as (``sub`` of a customer token)."""
        return self.subject if "customer" in self.roles else None

    @property
    def staff(self) -> bool:
        return bool(self.roles & {"support", "admin"})

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def require(self, *roles: str) -> None:
        """Raise UNAUTHENTICATED for guests and FORBIDDEN for the wrong role."""
        if self.anonymous and self.client is None:
            raise unauthenticated()
        if not self.has_role(*roles):
            raise forbidden(f"requires one of the roles: {', '.join(sorted(roles))}")

    @property
    def actor(self) -> str:
        if self.subject is not None:
            role = next(iter(sorted(self.roles)), "user")
            return f"{role}:{self.subject}"
        if self.client is not None:
            return f"client:{self.client}"
        return "anonymous"


ANONYMOUS = Principal()


# Verified tokens remembered per process: a caller sends the same token with every request,
# and verifying it (HMAC, JSON, claims) costs more than the rest of a small request's edge.
_VERIFIED_TOKENS = 10_000


class JwtAuthenticator:
    def __init__(self, secret: str, *, leeway_seconds: int = 5) -> None:
        self._secret = secret
        self.leeway = leeway_seconds
        # token -> (principal, expiry): only tokens that verified; the expiry is checked on every use.
        self._verified: LRUCache[str, tuple[Principal, float]] = LRUCache(_VERIFIED_TOKENS)

    def authenticate(self, authorization: str | None) -> Principal:
        """Missing header = anonymous; anything wrong with a token = UNAUTHENTICATED."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("Authorization must be 'Bearer <token>'")
        known = self._verified.get(token)
        if known is not None and time.time() <= known[1] + self.leeway:
            return known[0]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub", "exp"]},
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("token expired") from None
        except jwt.InvalidTokenError:
            raise unauthenticated("invalid token") from None
        principal = _principal(claims)
        expiry = claims["exp"]
        if isinstance(expiry, int | float):
            self._verified[token] = (principal, float(expiry))
        return principal

    def mint(self, subject: str, roles: list[str], ttl_seconds: int = 3600) -> str:
        return tokens.mint(self._secret, subject, roles, ttl_seconds)


def _principal(claims: dict[str, object]) -> Principal:
    subject = claims.get("sub")
    roles = claims.get("roles", [])
    if not isinstance(subject, str) or not subject:
        raise unauthenticated("invalid token: sub")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r in ROLES for r in roles):
        raise unauthenticated("invalid token: roles")
    return Principal(subject=subject, roles=frozenset(roles))


__all__ = ["ANONYMOUS", "ROLES", "GatewayError", "JwtAuthenticator", "Principal"]
