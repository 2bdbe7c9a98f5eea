"""API clients (partner apps): keys, roles, budgets and the persisted-only flag.

A key is shown once at creation; only its SHA-256 is stored. Keys carry 256
random bits, so a fast hash is enough (nothing to brute-force) and lets the
lookup be a single indexed equality.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.edge.auth import ROLES, JwtAuthenticator, Principal
from gateway.edge.errors import unauthenticated
from gateway.edge.tables import api_clients
from gateway.edge.ttl_cache import TtlCache

KEY_PREFIX = "cgk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CACHE_ENTRIES = 10_000
_UNKNOWN_KEY_SECONDS = 5.0
# What create() issues: the prefix and 32 random bytes, URL-safe base64 (43 characters).
_KEY_SHAPE = re.compile(r"^cgk_[A-Za-z0-9_-]{43}$")


class ClientError(ValueError):
    """A client command that cannot be carried out (bad name, duplicate, unknown)."""


@dataclass(frozen=True)
class ApiClient:
    id: uuid.UUID
    name: str
    roles: frozenset[str]
    persisted_only: bool
    budget: int | None
    restore_rate: float | None
    # A storefront server calling for many buyers: its requests may name the buyer (X-Buyer-IP).
    storefront: bool = False

    def principal(self) -> Principal:
        return Principal(roles=self.roles, client=self.name)


@dataclass(frozen=True)
class ClientListing:
    client: ApiClient
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _client(row: Row[Any]) -> ApiClient:
    return ApiClient(
        id=row.id,
        name=row.name,
        roles=frozenset(row.roles),
        persisted_only=row.persisted_only,
        budget=row.budget,
        restore_rate=row.restore_rate,
        storefront=row.storefront,
    )


class ApiClients:
    """Creates, revokes and authenticates clients; lookups are cached briefly in-process.

    A revocation through this object takes effect here at once; other
    processes notice it when their cache entry expires (``cache_seconds``).
    """

    def __init__(
        self, engine: AsyncEngine, cache_seconds: float = 10.0, *, max_entries: int = _CACHE_ENTRIES
    ) -> None:
        self._engine = engine
        self._by_hash: TtlCache[str, ApiClient] = TtlCache(max_entries, cache_seconds)
        # Unknown keys are cached apart, briefly: a flood of bad keys neither reaches
        # PostgreSQL for each one nor evicts the valid keys from their cache.
        self._unknown: TtlCache[str, bool] = TtlCache(max_entries, min(cache_seconds, _UNKNOWN_KEY_SECONDS))

    async def authenticate(self, key: str) -> ApiClient:
        key = key.strip()
        if not key:
            raise unauthenticated("empty API key")
        if not _KEY_SHAPE.match(key):
            raise unauthenticated("invalid API key")
        digest = hash_key(key)
        found, cached = self._by_hash.get(digest)
        if not found:
            if self._unknown.get(digest)[0]:
                raise unauthenticated("invalid API key")
            async with self._engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(api_clients).where(
                            api_clients.c.key_hash == digest, api_clients.c.revoked_at.is_(None)
                        )
                    )
                ).first()
            if row is None:
                self._unknown.put(digest, True)
                raise unauthenticated("invalid API key")
            cached = _client(row)
            self._by_hash.put(digest, cached)
        assert cached is not None
        return cached

    async def create(
        self,
        name: str,
        *,
        roles: frozenset[str] = frozenset(),
        persisted_only: bool = False,
        budget: int | None = None,
        restore_rate: float | None = None,
        storefront: bool = False,
    ) -> tuple[ApiClient, str]:
        """The new client and its key (the only time the key is available)."""
        if not _NAME.match(name):
            raise ClientError("client names are 1-100 letters, digits, '.', '_' or '-'")
        if unknown := roles - ROLES:
            raise ClientError(f"unknown roles: {', '.join(sorted(unknown))}")
        if budget is not None and budget <= 0:
            raise ClientError("budget must be positive")
        if restore_rate is not None and restore_rate <= 0:
            raise ClientError("restore rate must be positive")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        client = ApiClient(uuid.uuid4(), name, roles, persisted_only, budget, restore_rate, storefront)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(api_clients).values(
                        id=client.id,
                        name=name,
                        key_hash=hash_key(key),
                        key_prefix=key[: len(KEY_PREFIX) + 4],
                        roles=sorted(roles),
                        persisted_only=persisted_only,
                        budget=budget,
                        restore_rate=restore_rate,
                        storefront=storefront,
                        created_at=func.now(),
                    )
                )
        except IntegrityError:
            raise ClientError(f"an active client named {name!r} already exists") from None
        return client, key

    async def revoke(self, name: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_clients)
                .where(api_clients.c.name == name, api_clients.c.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
        if result.rowcount == 0:
            raise ClientError(f"no active client named {name!r}")
        self._by_hash.discard_where(lambda _key, client: client.name == name)

    async def active(self, name: str) -> ApiClient | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(api_clients).where(api_clients.c.name == name, api_clients.c.revoked_at.is_(None))
                )
            ).first()
        return _client(row) if row is not None else None

    async def listing(self) -> list[ClientListing]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(api_clients).order_by(api_clients.c.created_at))).all()
        return [ClientListing(_client(row), row.key_prefix, row.created_at, row.revoked_at) for row in rows]


async def authenticate(
    jwt: JwtAuthenticator, clients: ApiClients, *, authorization: str | None, api_key: str | None
) -> tuple[Principal, ApiClient | None]:
    """JWT bearer and/or API key (``X-Api-Key`` or ``Authorization: ApiKey <key>``).

    With both, the caller is the token's user acting through the client: the
    token's identity and roles, the client's name, budget and document policy.
    """
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "apikey":
        api_key = api_key if api_key is not None else credentials
        authorization = None
    principal = jwt.authenticate(authorization)
    if api_key is None:
        return principal, None
    client = await clients.authenticate(api_key)
    if principal.anonymous:
        return client.principal(), client
    return replace(principal, client=client.name), client
