"""Checkout through GraphQL over HTTP: success, decline, validation, idempotency keys."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from tests.support.checkout import Shop

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings


async def test_guest_checkout_confirms_commits_stock_and_closes_cart(shop: Shop) -> None:
    await shop.product("TEE", "19.99", on_hand=5)
    cart = await shop.cart(("TEE", 2))
    payload = await shop.checkout(cart, "k-1", expected_version=1)
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["status"] == "CONFIRMED"
    assert order["payment"]["status"] == "AUTHORIZED"
    assert order["total"] == {"amount": "39.98", "currencyCode": "USD"}
    assert order["customerId"] is None
    assert await shop.stock("TEE") == (5, 2)
    assert (await shop.provider_payments(order["id"]))["total_charges"] == 1
    types = await shop.order_event_types(order["id"])
    assert types == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]
    # The cart is closed: another checkout of it creates nothing.
    again = await shop.checkout(cart, "k-2")
    assert [e["code"] for e in again["userErrors"]] == ["CART_NOT_ACTIVE"]
    assert await shop.count_events("OrderPlaced") == 1
    # An edit with the version the buyer last saw is told the cart is closed (no version would do),
    # not that its version moved.
    edit = await shop.gql(
        'mutation($c: ID!) { cartLinesAdd(cartId: $c, lines: [{sku: "TEE", quantity: 1}], '
        "expectedVersion: 1) { userErrors { code } } }",
        {"c": cart},
    )
    assert [e["code"] for e in edit["data"]["cartLinesAdd"]["userErrors"]] == ["CART_NOT_ACTIVE"]


async def test_declined_payment_releases_stock_and_lets_the_buyer_retry(shop: Shop) -> None:
    await shop.product("MUG", "8.50", on_hand=1)
    cart = await shop.cart(("MUG", 1))
    declined = await shop.checkout(cart, "first-card", token="tok_decline")
    assert [(e["code"], e["field"]) for e in declined["userErrors"]] == [
        ("PAYMENT_DECLINED", ["input", "payment", "token"])
    ]
    assert declined["order"]["status"] == "CANCELLED"
    assert declined["order"]["payment"]["status"] == "DECLINED"
    assert await shop.stock("MUG") == (1, 0)
    # The declined outcome is stored: the same key and input replays it. The cart is open again,
    # so the repeat's first phase runs up to its claim of the key, which finds the key and rolls
    # the phase back: no second order, no stock held, no second charge attempt.
    assert await shop.checkout(cart, "first-card", token="tok_decline") == declined
    assert await shop.count_events("OrderPlaced") == 1
    assert await shop.stock("MUG") == (1, 0)
    assert len((await shop.provider_payments())["payments"]) == 1
    retried = await shop.checkout(cart, "second-card", token="tok_ok")
    assert retried["userErrors"] == []
    assert retried["order"]["status"] == "CONFIRMED"
    assert retried["order"]["id"] != declined["order"]["id"]
    assert await shop.stock("MUG") == (1, 1)


def _refusals_counted(code: str) -> float:
    return REGISTRY.get_sample_value("commerce_checkout_outcomes_total", {"outcome": code}) or 0.0


async def test_sequential_duplicate_submit_replays_the_first_outcome(shop: Shop) -> None:
    await shop.product("CAP", on_hand=3)
    cart = await shop.cart(("CAP", 1))
    first = await shop.checkout(cart, "dup-1")
    refused_before = _refusals_counted("cart_not_active")
    # The repeat's first phase meets the checked-out cart (a refusal), finds the key and replays:
    # the caller gets the first outcome, and no refusal is counted.
    second = await shop.checkout(cart, "dup-1")
    assert first == second
    assert _refusals_counted("cart_not_active") == refused_before
    assert await shop.count_events("OrderPlaced") == 1
    assert (await shop.provider_payments())["total_charges"] == 1


async def test_concurrent_duplicate_submit_waits_and_replays(shop: Shop) -> None:
    await shop.product("CAP", on_hand=3)
    await shop.configure(latency_ms=300)  # the first request is still paying when the others arrive
    customer = shop.customer("cust-dup")
    cart = await shop.cart(("CAP", 1), customer="cust-dup")
    barrier = asyncio.Barrier(5)

    async def submit() -> dict[str, object]:
        await barrier.wait()
        return await shop.checkout(cart, "double-click", auth=customer)

    payloads = await asyncio.gather(*(submit() for _ in range(5)))
    assert all(p == payloads[0] for p in payloads), payloads
    assert payloads[0]["userErrors"] == []
    assert await shop.count_events("OrderPlaced") == 1
    payments = await shop.provider_payments()
    assert payments["total_charges"] == 1 and len(payments["payments"]) == 1


async def test_same_key_for_another_cart_is_refused(shop: Shop) -> None:
    await shop.product("TEE", on_hand=5)
    customer = shop.customer("cust-7")
    first_cart = await shop.cart(("TEE", 1), customer="cust-7")
    second_cart = await shop.cart(("TEE", 2), customer="cust-7")
    first = await shop.checkout(first_cart, "my-key", auth=customer)
    assert first["userErrors"] == []
    reused = await shop.checkout(second_cart, "my-key", auth=customer)
    assert [(e["code"], e["field"]) for e in reused["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
    ]
    assert reused["order"] is None
    assert await shop.count_events("OrderPlaced") == 1


async def test_refusals_create_nothing_and_are_not_stored(shop: Shop) -> None:
    await shop.product("TEE", "19.99", on_hand=1)
    await shop.product("MUG", "8.50", on_hand=1)
    cart = await shop.cart(("TEE", 2), ("MUG", 1))

    too_long = await shop.checkout(cart, "x" * 256)
    assert [e["code"] for e in too_long["userErrors"]] == ["INVALID_INPUT"]
    empty = await shop.checkout(cart, "")
    assert [e["field"] for e in empty["userErrors"]] == [["input", "idempotencyKey"]]

    short = await shop.checkout(cart, "retry-me")
    assert [(e["code"], e["field"]) for e in short["userErrors"]] == [("OUT_OF_STOCK", ["input", "cartId"])]
    assert "TEE" in short["userErrors"][0]["message"] and "MUG" not in short["userErrors"][0]["message"]
    # It says what is left, so the buyer can ask for that.
    assert "TEE (1 available)" in short["userErrors"][0]["message"]

    stale = await shop.checkout(cart, "retry-me", expected_version=7)
    assert [(e["code"], e["field"]) for e in stale["userErrors"]] == [
        ("VERSION_CONFLICT", ["input", "expectedCartVersion"])
    ]

    async with shop.container.engine.begin() as conn:
        await conn.execute(text("UPDATE catalog_variants SET price = 21.00 WHERE sku = 'TEE'"))
    repriced = await shop.checkout(cart, "retry-me")
    assert [e["code"] for e in repriced["userErrors"]] == ["PRICE_CHANGED"]
    assert "TEE" in repriced["userErrors"][0]["message"]
    assert await shop.count_events("OrderPlaced") == 0
    assert await shop.stock("TEE") == (1, 0) and await shop.stock("MUG") == (1, 0)

    # None of those was stored under the key: fixing the cause, the same key goes through.
    async with shop.container.engine.begin() as conn:
        await conn.execute(text("UPDATE catalog_variants SET price = 19.99 WHERE sku = 'TEE'"))
    await shop.set_stock("TEE", 2)
    ok = await shop.checkout(cart, "retry-me")
    assert ok["userErrors"] == [] and ok["order"]["status"] == "CONFIRMED"


async def test_empty_cart_and_someone_elses_cart(shop: Shop) -> None:
    empty = await shop.cart()
    assert [e["code"] for e in (await shop.checkout(empty, "k"))["userErrors"]] == ["CART_EMPTY"]
    await shop.product("TEE", on_hand=3)
    theirs = await shop.cart(("TEE", 1), customer="cust-a")
    mine = shop.customer("cust-b")
    refused = await shop.checkout(theirs, "k", auth=mine)
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_FOUND"]
    anonymous = await shop.checkout(theirs, "k2")
    assert [e["code"] for e in anonymous["userErrors"]] == ["NOT_FOUND"]
    assert [e["code"] for e in (await shop.checkout("gid://commerce/Cart/nope", "k3"))["userErrors"]] == [
        "NOT_FOUND"
    ]
