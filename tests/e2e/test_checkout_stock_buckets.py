"""A hot SKU spread over buckets through GraphQL, then sold out by concurrent checkouts: exactly
the units there are, and the inventory read model adding the buckets up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.checkout import Shop

pytestmark = pytest.mark.checkout_settings

UNITS = 12
BUYERS = 40
SET_BUCKETS = """
mutation($sku: String!, $buckets: Int!, $key: String!) {
  inventorySetBuckets(sku: $sku, buckets: $buckets, idempotencyKey: $key) {
    position level { sku onHand reserved available } userErrors { field message code }
  }
}"""
LEVEL = """
query($sku: String!, $at: Position) {
  inventory(sku: $sku, consistentWith: $at) { sku onHand reserved available }
}"""


async def _set_buckets(shop: Shop, buckets: int, key: str, token: str | None) -> dict[str, Any]:
    return await shop.gql(SET_BUCKETS, {"sku": "HOT", "buckets": buckets, "key": key}, token)


async def test_only_an_admin_can_spread_a_sku_and_bad_counts_are_user_errors(shop: Shop) -> None:
    await shop.product("HOT", "5.00", on_hand=UNITS)
    denied = await _set_buckets(shop, 4, "b-denied", shop.customer("c-1"))
    assert [e["extensions"]["code"] for e in denied["errors"]] == ["FORBIDDEN"]
    for count in (0, 17):
        refused = (await _set_buckets(shop, count, f"b-{count}", shop.admin()))["data"]["inventorySetBuckets"]
        assert refused["position"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["buckets"], "INVALID_INPUT")]
    unknown = await shop.gql(SET_BUCKETS, {"sku": "NOPE", "buckets": 2, "key": "b-nope"}, shop.admin())
    assert [e["code"] for e in unknown["data"]["inventorySetBuckets"]["userErrors"]] == ["NOT_FOUND"]
    assert await shop.stock("HOT") == (UNITS, 0)


async def test_a_bucketed_sku_sells_exactly_its_units_and_reads_back_as_one_level(shop: Shop) -> None:
    await shop.product("HOT", "5.00", on_hand=UNITS)
    spread = (await _set_buckets(shop, 4, "b-4", shop.admin()))["data"]["inventorySetBuckets"]
    assert spread["userErrors"] == []
    assert spread["level"] == {"sku": "HOT", "onHand": UNITS, "reserved": 0, "available": UNITS}
    again = (await _set_buckets(shop, 4, "b-4", shop.admin()))["data"]["inventorySetBuckets"]
    assert again["position"] == spread["position"]  # the same key replays, nothing is spread twice

    carts = [await shop.cart(("HOT", 1)) for _ in range(BUYERS)]
    outcomes = await asyncio.gather(*(shop.checkout(cart, f"hot-{i}") for i, cart in enumerate(carts)))
    placed = [o for o in outcomes if not o["userErrors"]]
    refused = [o for o in outcomes if [e["code"] for e in o["userErrors"]] == ["OUT_OF_STOCK"]]
    assert len(placed) == UNITS and len(refused) == BUYERS - UNITS
    assert await shop.stock("HOT") == (UNITS, UNITS)

    last = max(int(o["position"]) for o in placed)
    body = await shop.gql(LEVEL, {"sku": "HOT", "at": str(last)}, shop.admin())
    assert body["data"]["inventory"] == {"sku": "HOT", "onHand": UNITS, "reserved": UNITS, "available": 0}
