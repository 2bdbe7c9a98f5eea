"""Whose budget pays: trusted proxies (FORWARDED_ALLOW_IPS) and the buyer a storefront server
names (X-Buyer-IP, honoured for storefront API clients only)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.edge.settings import EdgeSettings
from gateway.environment import InvalidVariable
from gateway.http.app import build_app
from tests.support.edge import FakeClock, post, use_budget_clock

QUERY = {"query": "{ __schema { types { name } } }"}  # cost 2
SMALL = {"budget_capacity": 5, "budget_restore_rate": 1.0}


@contextlib.asynccontextmanager
async def http_from(container: Container, peer: str, **edge: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app as seen from ``peer``, with edge settings overridden."""
    served = copy.copy(container)
    served.settings = container.settings.with_overrides(edge=container.settings.edge.with_overrides(**edge))
    transport = httpx.ASGITransport(app=build_app(served), client=(peer, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


async def _status(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = await post(http, QUERY, headers=headers)
    throttle: dict[str, Any] = response.json()["extensions"]["cost"]["throttleStatus"]
    return response.status_code, throttle


async def _exhaust(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for _ in range(2):
        assert (await post(http, QUERY, headers=headers)).status_code == 200
    assert (await post(http, QUERY, headers=headers)).status_code == 429


async def test_x_buyer_ip_is_honoured_for_storefront_clients_only(running: Container) -> None:
    use_budget_clock(running, FakeClock())
    clients = running.services.edge.clients
    _, storefront = await clients.create("ssr-shop", storefront=True)
    _, partner = await clients.create("partner-app")
    client_capacity = EdgeSettings().client_budget_capacity
    async with http_from(running, "127.0.0.1", **SMALL) as http:
        buyer_a = {"x-api-key": storefront, "x-buyer-ip": "203.0.113.5"}
        await _exhaust(http, buyer_a)
        # Another buyer behind the same storefront server has a bucket of their own, a shopper's.
        status, throttle = await _status(http, {"x-api-key": storefront, "x-buyer-ip": "203.0.113.6"})
        assert status == 200 and throttle["maximumAvailable"] == 5 and throttle["currentlyAvailable"] == 3
        # The storefront server's own calls (no buyer named) use its client budget.
        status, throttle = await _status(http, {"x-api-key": storefront})
        assert status == 200 and throttle["maximumAvailable"] == client_capacity
        # A partner's header is ignored: one bucket, the partner's, whatever buyer it names.
        _, first = await _status(http, {"x-api-key": partner, "x-buyer-ip": "203.0.113.7"})
        _, second = await _status(http, {"x-api-key": partner, "x-buyer-ip": "203.0.113.8"})
        assert first["maximumAvailable"] == client_capacity
        assert second["currentlyAvailable"] == first["currentlyAvailable"] - 2
        # So is an anonymous caller's: the bucket is its address's.
        await _exhaust(http, {"x-buyer-ip": "198.51.100.1"})
        assert (await post(http, QUERY, headers={"x-buyer-ip": "198.51.100.2"})).status_code == 429


async def test_x_forwarded_for_is_believed_from_trusted_proxies_only(running: Container) -> None:
    use_budget_clock(running, FakeClock())
    # The default trusts loopback: a local proxy's clients get a bucket each.
    async with http_from(running, "127.0.0.1", **SMALL) as http:
        await _exhaust(http, {"x-forwarded-for": "198.51.100.1"})
        assert (await post(http, QUERY, headers={"x-forwarded-for": "198.51.100.2"})).status_code == 200
        # The nearest hop the trusted proxies did not add is the client.
        chained = {"x-forwarded-for": "6.6.6.6, 198.51.100.1, 127.0.0.1"}
        assert (await post(http, QUERY, headers=chained)).status_code == 429
    # From any other peer the header is the caller's own claim, and ignored.
    async with http_from(running, "10.1.2.3", **SMALL) as http:
        await _exhaust(http, {"x-forwarded-for": "198.51.100.3"})
        assert (await post(http, QUERY, headers={"x-forwarded-for": "198.51.100.4"})).status_code == 429
    # Unless FORWARDED_ALLOW_IPS names the proxy's network.
    async with http_from(running, "10.1.2.4", forwarded_allow_ips=("10.0.0.0/8",), **SMALL) as http:
        await _exhaust(http, {"x-forwarded-for": "198.51.100.5"})
        assert (await post(http, QUERY, headers={"x-forwarded-for": "198.51.100.6"})).status_code == 200


def test_forwarded_allow_ips_setting() -> None:
    assert EdgeSettings().forwarded_allow_ips == ("127.0.0.1", "::1")
    parsed = EdgeSettings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.0/8, 192.168.1.10 ,*"})
    assert parsed.forwarded_allow_ips == ("10.0.0.0/8", "192.168.1.10", "*")
    with pytest.raises(InvalidVariable, match="FORWARDED_ALLOW_IPS"):
        EdgeSettings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.0/8,proxy.internal"})
