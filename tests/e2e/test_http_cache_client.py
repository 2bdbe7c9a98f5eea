"""A shared HTTP cache (a CDN's behaviour) in front of the gateway, driven the way Apollo Client's
persisted-query link with ``useGETForHashedQueries`` sends requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from gateway.edge.auth import JwtAuthenticator
from tests.helpers import gql
from tests.support.http_cache import ACCEPT, SharedCache, directives, url_of

SEARCH = (
    "query Search($q: String) { products(query: $q) { edges { node { title } } freshness { position } } }"
)
WAIT_SEARCH = "query($at: Position) { products(consistentWith: $at, first: 1) { totalCount } }"
UPSERT = "mutation($input: ProductUpsertInput!) { productUpsert(input: $input) { position } }"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def apollo_via(
    cache: SharedCache, query: str, variables: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """Apollo's link through the cache: the hash alone, then with the query if it is unknown."""
    all_headers = {"accept": ACCEPT, **(headers or {})}
    response = await cache.get(url_of(query, variables), all_headers)
    codes = [e["extensions"]["code"] for e in response.json().get("errors", [])]
    if codes == ["PERSISTED_QUERY_NOT_FOUND"]:
        response = await cache.get(url_of(query, variables, with_query=True), all_headers)
    return response


async def write_lamp(client: httpx.AsyncClient, admin: str, title: str) -> None:
    product = {
        "handle": "brass-lamp",
        "title": title,
        "currencyCode": "USD",
        "variants": [{"sku": "LAMP-1", "title": "Brass", "price": "30.00"}],
    }
    written = await gql(client, UPSERT, {"input": product}, token=admin)
    await gql(client, WAIT_SEARCH, {"at": written["data"]["productUpsert"]["position"]})


def titles(response: httpx.Response) -> list[str]:
    return [edge["node"]["title"] for edge in response.json()["data"]["products"]["edges"]]


async def test_a_shared_cache_serves_revalidates_and_never_shares_private_answers(
    client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    await write_lamp(client, admin, "Brass lamp")
    clock = Clock()
    cache = SharedCache(client, clock)
    variables = {"q": "lamp"}

    # Hash unknown (an error, not stored), then registered with the query: stored under that URL.
    first = await apollo_via(cache, SEARCH, variables)
    assert titles(first) == ["Brass lamp"] and cache.origin_statuses == [400, 200]
    produced_at = first.json()["data"]["products"]["freshness"]["position"]
    # From now on the hash alone is known: one more answer from the origin, then from the cache.
    await apollo_via(cache, SEARCH, variables)
    assert cache.origin_statuses == [400, 200, 200]
    served = await apollo_via(cache, SEARCH, variables)
    assert cache.hits == 1 and cache.origin_statuses == [400, 200, 200]
    assert titles(served) == ["Brass lamp"]

    # Past max-age: revalidated with one 304, and the stored answer keeps the freshness it had.
    clock.now += float(directives(served)["max-age"]) + 1
    revalidated = await apollo_via(cache, SEARCH, variables)
    assert cache.origin_statuses[-1] == 304
    assert revalidated.json()["data"]["products"]["freshness"]["position"] == produced_at

    # A signed-in shopper gets an answer of their own: from the origin, private, never stored.
    customer = {"authorization": f"Bearer {tokens.mint('cust-1', ['customer'])}"}
    before = len(cache.origin_statuses)
    for _ in range(2):
        own = await apollo_via(cache, SEARCH, variables, customer)
        assert "private" in directives(own)
    assert cache.origin_statuses[before:] == [200, 200]
    assert all(
        stored.response.headers["cache-control"].startswith("public") for stored in cache.entries.values()
    )

    # The product changes: the next revalidation brings the new page.
    await write_lamp(client, admin, "Copper lamp")
    clock.now += 6
    changed = await apollo_via(cache, SEARCH, variables)
    assert cache.origin_statuses[-1] == 200
    assert titles(changed) == ["Copper lamp"]
    assert int(changed.json()["data"]["products"]["freshness"]["position"]) > int(produced_at)
