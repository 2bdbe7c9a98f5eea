"""inventorySet / inventoryAdjust / inventory / ProductVariant.availability over GraphQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event

from commands.domain.inventory import StockLevel
from commands.inventory import reservations
from commands.inventory.reservations import ReservationLine
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql
from tests.support.inventory import LEASE, in_uow, items, new_order, seed_variants

LEVEL = "level { sku onHand reserved available freshness { projection position lagEvents } }"
SET = f"""
mutation($sku: String!, $onHand: Int!, $key: String!) {{
  inventorySet(sku: $sku, onHand: $onHand, idempotencyKey: $key) {{
    position {LEVEL} userErrors {{ field message code }}
  }}
}}"""
ADJUST = f"""
mutation($sku: String!, $delta: Int!, $reason: String, $key: String!) {{
  inventoryAdjust(sku: $sku, delta: $delta, reason: $reason, idempotencyKey: $key) {{
    position {LEVEL} userErrors {{ field message code }}
  }}
}}"""
QUERY = """
query($sku: String!, $at: Position) {
  inventory(sku: $sku, consistentWith: $at) { sku onHand reserved available freshness { projection } }
}"""


@pytest.fixture
async def admin(running: Container, tokens: JwtAuthenticator) -> str:
    await seed_variants(running)
    return tokens.mint("admin-1", ["admin"])


async def _set(client: httpx.AsyncClient, token: str, sku: str, on_hand: int, key: str) -> dict[str, Any]:
    body = await gql(client, SET, {"sku": sku, "onHand": on_hand, "key": key}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["inventorySet"]
    return payload


async def test_set_and_adjust_return_the_level_they_wrote(client: httpx.AsyncClient, admin: str) -> None:
    created = await _set(client, admin, "INV-A", 8, "set-1")
    assert created["userErrors"] == []
    assert created["level"] == {
        "sku": "INV-A",
        "onHand": 8,
        "reserved": 0,
        "available": 8,
        "freshness": {"projection": "inventory", "position": created["position"], "lagEvents": 0},
    }
    body = await gql(
        client, ADJUST, {"sku": "INV-A", "delta": -3, "reason": "broken", "key": "adj-1"}, token=admin
    )
    adjusted = body["data"]["inventoryAdjust"]
    assert adjusted["userErrors"] == [] and int(adjusted["position"]) > int(created["position"])
    assert (adjusted["level"]["onHand"], adjusted["level"]["available"]) == (5, 5)

    read = await gql(client, QUERY, {"sku": "INV-A", "at": adjusted["position"]}, token=admin)
    assert read["data"]["inventory"] == {
        "sku": "INV-A",
        "onHand": 5,
        "reserved": 0,
        "available": 5,
        "freshness": {"projection": "inventory"},
    }
    untracked = await gql(client, QUERY, {"sku": "INV-UNTRACKED"}, token=admin)
    assert untracked["data"]["inventory"] is None


async def test_replay_and_key_reuse(client: httpx.AsyncClient, admin: str) -> None:
    first = await _set(client, admin, "INV-B", 4, "same")
    again = await _set(client, admin, "INV-B", 4, "same")
    assert again["position"] == first["position"] and again["level"]["onHand"] == 4
    reused = await _set(client, admin, "INV-B", 5, "same")
    assert reused["level"] is None and reused["position"] is None
    assert reused["userErrors"] == [
        {
            "field": ["idempotencyKey"],
            "message": reused["userErrors"][0]["message"],
            "code": "IDEMPOTENCY_KEY_REUSED",
        }
    ]
    for key in ("", "   ", "k" * 256):
        bad = await _set(client, admin, "INV-B", 5, key)
        assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [(["idempotencyKey"], "INVALID_INPUT")]


async def test_validation_errors(client: httpx.AsyncClient, admin: str, running: Container) -> None:
    await _set(client, admin, "INV-C", 5, "c-1")
    order = new_order()
    await in_uow(
        running, lambda uow: reservations.reserve(uow, order, [ReservationLine("INV-C", 4)], lease=LEASE)
    )

    below = await _set(client, admin, "INV-C", 3, "c-2")
    assert [(e["field"], e["code"]) for e in below["userErrors"]] == [(["onHand"], "INVALID_INPUT")]
    body = await gql(client, ADJUST, {"sku": "INV-C", "delta": -2, "key": "c-3"}, token=admin)
    errors = body["data"]["inventoryAdjust"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["delta"], "INVALID_INPUT")]
    assert "reserved" in errors[0]["message"]
    unknown = await _set(client, admin, "NO-SUCH-SKU", 1, "c-4")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [(["sku"], "NOT_FOUND")]
    negative = await _set(client, admin, "INV-C", -1, "c-5")
    assert [e["code"] for e in negative["userErrors"]] == ["INVALID_INPUT"]
    for malformed in ("", "  ", " INV-A", "INV-A ", "S" * 200):
        read = await gql(client, QUERY, {"sku": malformed}, token=admin)
        assert error_codes(read) == ["BAD_USER_INPUT"] and read["data"] == {"inventory": None}
        assert "sku must be 1 to" in read["errors"][0]["message"]
    # An untracked SKU is no mistake: it has no level.
    assert (await gql(client, QUERY, {"sku": "INV-UNTRACKED"}, token=admin))["data"]["inventory"] is None

    assert (await items(running))["INV-C"] == StockLevel("INV-C", 5, 4)


@pytest.mark.parametrize(
    ("roles", "code"), [(None, "UNAUTHENTICATED"), (["customer"], "FORBIDDEN"), (["support"], "FORBIDDEN")]
)
async def test_only_admins_change_stock(
    client: httpx.AsyncClient, admin: str, tokens: JwtAuthenticator, roles: list[str] | None, code: str
) -> None:
    token = None if roles is None else tokens.mint("someone", roles)
    body = await gql(client, SET, {"sku": "INV-A", "onHand": 1, "key": "x"}, token=token)
    assert error_codes(body) == [code]
    body = await gql(client, ADJUST, {"sku": "INV-A", "delta": 1, "key": "x"}, token=token)
    assert error_codes(body) == [code]


async def test_inventory_query_roles_and_stale_reads(
    client: httpx.AsyncClient, admin: str, tokens: JwtAuthenticator
) -> None:
    created = await _set(client, admin, "INV-A", 2, "q-1")
    support = tokens.mint("support-1", ["support"])
    read = await gql(client, QUERY, {"sku": "INV-A", "at": created["position"]}, token=support)
    assert read["data"]["inventory"]["onHand"] == 2
    assert error_codes(await gql(client, QUERY, {"sku": "INV-A"})) == ["UNAUTHENTICATED"]
    customer = tokens.mint("cust-1", ["customer"])
    assert error_codes(await gql(client, QUERY, {"sku": "INV-A"}, token=customer)) == ["FORBIDDEN"]
    ahead = str(int(created["position"]) + 1000)
    assert error_codes(await gql(client, QUERY, {"sku": "INV-A", "at": ahead}, token=support)) == [
        "STALE_READ"
    ]


UPSERT = """
mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { message } }
}"""
PRODUCT = """
query($handle: String!) {
  product(handle: $handle) {
    variants { sku availability { inStock available freshness { projection } } }
  }
}"""


async def test_variant_availability_is_batched_from_the_inventory_model(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    variants = [{"sku": f"AV-{i}", "title": f"Size {i}", "price": "10.00"} for i in range(4)]
    product = {"handle": "availability-tee", "title": "Tee", "currencyCode": "USD", "variants": variants}
    body = await gql(client, UPSERT, {"input": product}, token=admin)
    assert body["data"]["productUpsert"]["userErrors"] == [], body
    await _set(client, admin, "AV-0", 3, "av-0")
    await _set(client, admin, "AV-1", 0, "av-1")
    await running.runner("inventory").catch_up()

    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "inventory_view" in statement:
            statements.append(statement)

    event.listen(running.engine.sync_engine, "before_cursor_execute", record)
    try:
        body = await gql(client, PRODUCT, {"handle": "availability-tee"})
    finally:
        event.remove(running.engine.sync_engine, "before_cursor_execute", record)
    assert "errors" not in body, body
    hints = {v["sku"]: v["availability"] for v in body["data"]["product"]["variants"]}
    assert {sku: (h["inStock"], h["available"]) for sku, h in hints.items()} == {
        "AV-0": (True, 3),
        "AV-1": (False, 0),
        "AV-2": (True, None),
        "AV-3": (True, None),
    }
    assert {h["freshness"]["projection"] for h in hints.values()} == {"inventory"}
    assert len(statements) == 1
