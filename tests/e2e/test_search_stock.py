"""Stock reaches search: in_stock per variant and product, the inStockOnly filter, after rebuilds."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import gql

UPSERT = """mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { message } } }"""
SET = """mutation($sku: String!, $n: Int!, $key: String!) {
  inventorySet(sku: $sku, onHand: $n, idempotencyKey: $key) { position userErrors { message } } }"""
SEARCH = """query($stockOnly: Boolean) {
  products(query: "lantern", filter: {inStockOnly: $stockOnly}) { totalCount edges { node { handle } } } }"""


def lantern(title: str = "Storm lantern") -> dict[str, Any]:
    return {
        "handle": "storm-lantern",
        "title": title,
        "currencyCode": "USD",
        "variants": [
            {"sku": "LNT-RED", "title": "Red", "price": "30.00"},
            {"sku": "LNT-BLU", "title": "Blue", "price": "30.00"},
        ],
    }


async def _write(client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str) -> int:
    body = await gql(client, query, variables, token=token)
    payload = next(iter(body["data"].values()))
    assert payload["userErrors"] == [], body
    return int(payload["position"])


async def _search(client: httpx.AsyncClient, container: Container, position: int) -> tuple[int, int]:
    await container.freshness.wait_for("search", position, timeout=10)
    everything = (await gql(client, SEARCH, {"stockOnly": False}))["data"]["products"]["totalCount"]
    in_stock = (await gql(client, SEARCH, {"stockOnly": True}))["data"]["products"]["totalCount"]
    return everything, in_stock


async def test_stock_levels_drive_in_stock_and_survive_reindexing(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    position = await _write(client, UPSERT, {"input": lantern()}, admin)
    assert await _search(client, running, position) == (1, 1), "untracked SKUs count as in stock"

    await _write(client, SET, {"sku": "LNT-RED", "n": 0, "key": "r0"}, admin)
    position = await _write(client, SET, {"sku": "LNT-BLU", "n": 3, "key": "b3"}, admin)
    assert await _search(client, running, position) == (1, 1), "one variant still in stock"

    position = await _write(client, SET, {"sku": "LNT-BLU", "n": 0, "key": "b0"}, admin)
    assert await _search(client, running, position) == (1, 0)

    # A catalog edit rebuilds the document from the product stream; stock must survive it.
    position = await _write(client, UPSERT, {"input": lantern("Storm lantern, brass")}, admin)
    assert await _search(client, running, position) == (1, 0)

    await running.rebuilder.run(running.runner("search"))
    assert await _search(client, running, position) == (1, 0), "a rebuild folds stock the same way"

    position = await _write(client, SET, {"sku": "LNT-RED", "n": 5, "key": "r5"}, admin)
    assert await _search(client, running, position) == (1, 1)
