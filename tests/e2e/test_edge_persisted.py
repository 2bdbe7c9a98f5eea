"""APQ, trusted documents, API clients (keys, roles, revocation) and their CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import ConfigurationError
from gateway.cli import edge as edge_cli
from gateway.edge.clients import ApiClients
from gateway.edge.errors import GatewayError
from tests.support.edge import codes, edge_http, post, sha256

TYPENAME = "{ __typename }"
PROJECTIONS = "query Status { projections { name } }"


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.fixture
async def http(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with edge_http(container) as client:
        yield client


async def _new_client(container: Container, name: str, **options: Any) -> str:
    _, key = await container.services.edge.clients.create(name, **options)
    return key


async def _register(container: Container, client: str, manifest: object, tmp_path: Path) -> str:
    path = tmp_path / f"{client}-manifest.json"
    path.write_text(json.dumps(manifest))
    args = argparse.Namespace(command="persisted", client=client, manifest=path)
    return await edge_cli.execute(args, container.settings)


# ------------------------------------------------------------------ APQ


async def test_apq_miss_register_hit(http: httpx.AsyncClient, container: Container) -> None:
    digest = sha256(TYPENAME)
    miss = await post(http, {"extensions": apq(digest)})
    assert miss.status_code == 200
    assert codes(miss.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = await post(http, {"query": TYPENAME, "extensions": apq(digest)})
    assert registered.json()["data"] == {"__typename": "Query"}
    assert await container.redis.get(f"{container.settings.redis_prefix}apq:{digest}") == TYPENAME.encode()
    hit = await post(http, {"extensions": apq(digest)})
    assert hit.json()["data"] == {"__typename": "Query"}
    # APQ over GET, extensions in the query string (cacheable by CDNs).
    over_get = await http.get("/graphql", params={"extensions": json.dumps(apq(digest))})
    assert over_get.status_code == 200 and over_get.json()["data"] == {"__typename": "Query"}


async def test_apq_hash_mismatch_is_refused_and_not_stored(
    http: httpx.AsyncClient, container: Container
) -> None:
    wrong = sha256("{ somethingElse }")
    body = (await post(http, {"query": TYPENAME, "extensions": apq(wrong)})).json()
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["reason"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await container.redis.get(f"{container.settings.redis_prefix}apq:{wrong}") is None
    bad_version = (
        await post(http, {"query": TYPENAME, "extensions": {"persistedQuery": {"version": 2}}})
    ).json()
    assert codes(bad_version) == ["BAD_USER_INPUT"]


async def test_invalid_documents_are_not_registered(http: httpx.AsyncClient, container: Container) -> None:
    query = "{ nope }"
    body = (await post(http, {"query": query, "extensions": apq(sha256(query))})).json()
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert await container.redis.get(f"{container.settings.redis_prefix}apq:{sha256(query)}") is None


async def test_persisted_documents_skip_parsing(http: httpx.AsyncClient) -> None:
    query = "query Cached { __typename }"
    await post(http, {"query": query, "extensions": apq(sha256(query))})
    app = http._transport.app  # type: ignore[attr-defined]
    view = next(route.endpoint for route in app.routes if getattr(route, "path", "") == "/graphql")
    misses = view.pipeline.documents.misses
    for _ in range(3):
        assert (await post(http, {"extensions": apq(sha256(query))})).json()["data"]
    assert view.pipeline.documents.misses == misses


# ------------------------------------------------------------------ API clients and trusted documents


async def test_api_key_clients_carry_their_roles(http: httpx.AsyncClient, container: Container) -> None:
    staff = await _new_client(container, "ops-dashboard", roles=frozenset({"support"}))
    partner = await _new_client(container, "partner")
    ok = (await post(http, {"query": PROJECTIONS}, headers={"x-api-key": staff})).json()
    assert "errors" not in ok and isinstance(ok["data"]["projections"], list)
    scheme = (await post(http, {"query": PROJECTIONS}, headers={"authorization": f"ApiKey {staff}"})).json()
    assert "errors" not in scheme
    # A client without roles is identified (not anonymous) but may not read staff fields.
    assert codes((await post(http, {"query": PROJECTIONS}, headers={"x-api-key": partner})).json()) == [
        "FORBIDDEN"
    ]


async def test_bad_and_revoked_keys_are_unauthenticated(
    http: httpx.AsyncClient, container: Container
) -> None:
    key = await _new_client(container, "short-lived")
    assert (await post(http, {"query": TYPENAME}, headers={"x-api-key": key})).status_code == 200
    await container.services.edge.clients.revoke("short-lived")
    revoked = await post(http, {"query": TYPENAME}, headers={"x-api-key": key})
    assert revoked.status_code == 401
    assert codes(revoked.json()) == ["UNAUTHENTICATED"]
    unknown = await post(http, {"query": TYPENAME}, headers={"x-api-key": "cgk_not-a-key"})
    assert unknown.status_code == 401


async def test_revocation_elsewhere_is_seen_within_the_cache_ttl(container: Container) -> None:
    key = await _new_client(container, "cached")
    gateway_keys = ApiClients(container.engine, cache_seconds=0.3)
    assert (await gateway_keys.authenticate(key)).name == "cached"
    # Another process (the CLI) revokes: nothing tells this one but its expiring cache.
    args = argparse.Namespace(command="clients", clients_command="revoke", name="cached")
    await edge_cli.execute(args, container.settings)
    assert (await gateway_keys.authenticate(key)).name == "cached"
    await asyncio.sleep(0.35)  # the scenario: the 0.3 s cache TTL runs out
    with pytest.raises(GatewayError) as refused:
        await gateway_keys.authenticate(key)
    assert refused.value.code == "UNAUTHENTICATED"


async def test_trusted_documents_by_id_and_hash(
    http: httpx.AsyncClient, container: Container, tmp_path: Path
) -> None:
    key = await _new_client(container, "mobile-app", persisted_only=True, roles=frozenset({"support"}))
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(PROJECTIONS), "body": PROJECTIONS, "name": "Status", "type": "query"},
            {"id": sha256(TYPENAME), "body": TYPENAME, "name": None, "type": "query"},
        ],
    }
    assert (await _register(container, "mobile-app", manifest, tmp_path)).startswith("2 documents registered")
    again = await _register(container, "mobile-app", manifest, tmp_path)
    assert again.startswith("0 documents registered") and "2 already" in again
    headers = {"x-api-key": key}
    by_id = (await post(http, {"documentId": sha256(PROJECTIONS)}, headers=headers)).json()
    assert "errors" not in by_id and "projections" in by_id["data"]
    prefixed = (await post(http, {"documentId": f"sha256:{sha256(TYPENAME)}"}, headers=headers)).json()
    assert prefixed["data"] == {"__typename": "Query"}
    shouted = (await post(http, {"documentId": f"sha256:{sha256(TYPENAME).upper()}"}, headers=headers)).json()
    assert shouted["data"] == {"__typename": "Query"}, "a hash is the same hash in either case"
    by_hash = (await post(http, {"extensions": apq(sha256(TYPENAME))}, headers=headers)).json()
    assert by_hash["data"] == {"__typename": "Query"}
    unknown = (await post(http, {"documentId": "nope"}, headers=headers)).json()
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_persisted_only_clients_run_nothing_else(
    http: httpx.AsyncClient, container: Container, tmp_path: Path
) -> None:
    key = await _new_client(container, "locked", persisted_only=True)
    await _register(container, "locked", {"my-doc-1": TYPENAME}, tmp_path)  # Relay's format
    headers = {"x-api-key": key}
    assert (await post(http, {"documentId": "my-doc-1"}, headers=headers)).json()["data"]
    freeform = (await post(http, {"query": "{ a: __typename }"}, headers=headers)).json()
    assert codes(freeform) == ["PERSISTED_QUERY_REQUIRED"]
    # APQ registration is ignored: refused, and nothing lands in the APQ cache.
    query = "{ b: __typename }"
    attempt = (await post(http, {"query": query, "extensions": apq(sha256(query))}, headers=headers)).json()
    assert codes(attempt) == ["PERSISTED_QUERY_REQUIRED"]
    assert await container.redis.get(f"{container.settings.redis_prefix}apq:{sha256(query)}") is None
    # Documents are per client: another client cannot use these ids.
    other = await _new_client(container, "other")
    assert codes((await post(http, {"documentId": "my-doc-1"}, headers={"x-api-key": other})).json()) == [
        "PERSISTED_QUERY_NOT_FOUND"
    ]


async def test_manifests_are_checked_before_anything_is_stored(container: Container, tmp_path: Path) -> None:
    await _new_client(container, "strict")
    with pytest.raises(ValueError, match="not the SHA-256 of its body"):
        bad_id = {"format": "apollo-persisted-query-manifest", "operations": [{"id": "x", "body": TYPENAME}]}
        await _register(container, "strict", bad_id, tmp_path)
    with pytest.raises(ValueError, match="not the SHA-256 of its body"):
        await _register(container, "strict", {"doc-0": TYPENAME, "sha256:" + "0" * 64: TYPENAME}, tmp_path)
    with pytest.raises(ConfigurationError, match="doc-2"):
        await _register(container, "strict", {"doc-1": TYPENAME, "doc-2": "{ nope }"}, tmp_path)
    with pytest.raises(ConfigurationError, match="no active client"):
        await _register(container, "ghost", {"doc-1": TYPENAME}, tmp_path)
    assert (await _register(container, "strict", {"doc-1": TYPENAME}, tmp_path)).startswith("1 documents")
    with pytest.raises(ValueError, match="different body"):
        await _register(container, "strict", {"doc-1": "{ a: __typename }"}, tmp_path)


async def test_clients_cli_create_list_revoke(
    container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    def ns(**kw: Any) -> argparse.Namespace:
        return argparse.Namespace(command="clients", **kw)

    key = await edge_cli.execute(
        ns(
            clients_command="create",
            name="cli-partner",
            roles=["support"],
            persisted_only=True,
            budget=300,
            restore_rate=5.0,
        ),
        container.settings,
    )
    assert key.startswith("cgk_") and "not shown again" in capsys.readouterr().err
    listing = await edge_cli.execute(ns(clients_command="list"), container.settings)
    assert "cli-partner" in listing and key not in listing
    (row,) = [line.split("\t") for line in listing.splitlines() if line.startswith("cli-partner")]
    assert row[2:6] == ["support", "yes", "300", "5.0"]
    client = await container.services.edge.clients.authenticate(key)
    assert client.budget == 300 and client.persisted_only
    with pytest.raises(ConfigurationError, match="already exists"):
        await edge_cli.execute(
            ns(
                clients_command="create",
                name="cli-partner",
                roles=[],
                persisted_only=False,
                budget=None,
                restore_rate=None,
            ),
            container.settings,
        )
    assert "revoked" in await edge_cli.execute(
        ns(clients_command="revoke", name="cli-partner"), container.settings
    )
    with pytest.raises(ConfigurationError, match="no active client"):
        await edge_cli.execute(ns(clients_command="revoke", name="cli-partner"), container.settings)


async def test_client_budget_comes_from_the_client(http: httpx.AsyncClient, container: Container) -> None:
    key = await _new_client(container, "small", budget=3, restore_rate=0.001)
    query = {"query": "{ __schema { types { name } } }"}  # cost 2
    first = (await post(http, query, headers={"x-api-key": key})).json()
    assert first["extensions"]["cost"]["throttleStatus"] == {
        "maximumAvailable": 3,
        "currentlyAvailable": 1,
        "restoreRate": 0.001,
    }
    limited = await post(http, query, headers={"x-api-key": key})
    assert limited.status_code == 429 and codes(limited.json()) == ["RATE_LIMITED"]
    assert limited.json()["errors"][0]["extensions"]["retryAfterSeconds"] > 900
