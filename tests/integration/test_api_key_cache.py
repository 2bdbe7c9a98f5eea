"""Unknown API keys are cached apart from valid ones: a flood of bad keys evicts nothing."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, update

from gateway.bootstrap.container import Container
from gateway.edge.clients import KEY_PREFIX, ApiClients
from gateway.edge.errors import GatewayError
from gateway.edge.tables import api_clients


def _unknown_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def test_unknown_keys_do_not_evict_valid_ones(container: Container) -> None:
    clients = ApiClients(container.engine, cache_seconds=60, max_entries=3)
    client, key = await clients.create("partner")
    assert (await clients.authenticate(key)).name == "partner"
    # Revoked behind this process's back: only the cached entry still knows the key.
    async with container.engine.begin() as conn:
        await conn.execute(
            update(api_clients).where(api_clients.c.id == client.id).values(revoked_at=func.now())
        )
    for _ in range(10):
        with pytest.raises(GatewayError) as refused:
            await clients.authenticate(_unknown_key())
        assert refused.value.code == "UNAUTHENTICATED"
    assert (await clients.authenticate(key)).name == "partner"


async def test_malformed_keys_are_refused_without_a_lookup(container: Container) -> None:
    clients = ApiClients(container.engine, cache_seconds=60)
    for key in ["cgk_unknown", "x" * 47, KEY_PREFIX + "!" * 43, KEY_PREFIX + "a" * 44, "cgk_" + "a" * 10_000]:
        with pytest.raises(GatewayError) as refused:
            await clients.authenticate(key)
        assert refused.value.code == "UNAUTHENTICATED"
