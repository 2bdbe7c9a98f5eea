"""A repeated product search through GraphQL is answered without the engine until the catalog changes."""

from __future__ import annotations

import re

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.e2e.test_search_stock import UPSERT, _write, lantern
from tests.helpers import gql
from tests.support.catalog import CallCounter

SEARCH = """query($at: Position) {
  products(query: "lantern", consistentWith: $at) {
    totalCount
    edges { cursor node { title variants { sku } } }
    facets { brands { value count } prices { count } }
    freshness { position lagEvents }
  }
}"""
_KEPT = re.compile(r'^commerce_search_answers_total\{source="cache"\} (\S+)$', re.MULTILINE)


async def _answered_from_cache(client: httpx.AsyncClient) -> float:
    found = _KEPT.search((await client.get("/metrics")).text)
    return float(found.group(1)) if found else 0.0


async def test_a_repeated_search_is_kept_until_the_catalog_changes(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    position = await _write(client, UPSERT, {"input": lantern()}, admin)
    kept_before = await _answered_from_cache(client)
    counter = CallCounter(running.search)
    try:
        first = await gql(client, SEARCH, {"at": position})
        again = await gql(client, SEARCH, {"at": position})
        assert sum(path.endswith("/_search") for path in counter.paths) == 1
        assert again["data"] == first["data"] and first["data"]["products"]["totalCount"] == 1
        assert int(first["data"]["products"]["freshness"]["position"]) >= position

        changed = await _write(client, UPSERT, {"input": lantern("Hurricane lantern")}, admin)
        after = (await gql(client, SEARCH, {"at": changed}))["data"]["products"]
        assert sum(path.endswith("/_search") for path in counter.paths) == 2
        assert [edge["node"]["title"] for edge in after["edges"]] == ["Hurricane lantern"]
        assert int(after["freshness"]["position"]) >= changed
    finally:
        counter.close()
    assert await _answered_from_cache(client) == kept_before + 1
