"""Unknown payment outcomes: provider timeouts settled later by webhook or by reconciliation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.checkout import SANDBOX_HOLD, Shop

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings


async def _pending_checkout(shop: Shop, cart: str, key: str, token: str = "tok_timeout") -> dict[str, Any]:
    payload = await shop.checkout(cart, key, token=token)
    assert payload["userErrors"] == []
    assert payload["order"]["status"] == "PAYMENT_PENDING"
    assert payload["order"]["payment"]["status"] == "UNKNOWN"
    return payload


async def _replay_webhooks(shop: Shop, order_gid: str) -> list[dict[str, Any]]:
    """Deliver the provider's (held back) events for the order's payment, as the provider would."""
    order_id = order_gid.rsplit("/", 1)[1]

    async def settled() -> bool:
        events = (await shop.sandbox.get("/_sandbox/webhooks")).json()["webhooks"]
        return any(w["event"]["data"]["reference_hint"] == order_id for w in events)

    await shop.eventually(settled, timeout=SANDBOX_HOLD + 3)
    records = (await shop.sandbox.get("/_sandbox/webhooks")).json()["webhooks"]
    results = []
    for record in records:
        if record["event"]["data"]["reference_hint"] == order_id and not record["delivered"]:
            response = await shop.sandbox.post(
                "/_sandbox/webhooks/replay", json={"event_id": record["event"]["id"]}
            )
            results.append(response.json())
    return results


async def test_a_cart_whose_order_awaits_payment_is_not_checked_out_again(shop: Shop) -> None:
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    await _pending_checkout(shop, cart, "first-try")
    again = await shop.checkout(cart, "second-try")
    assert [(e["code"], e["field"], e["message"]) for e in again["userErrors"]] == [
        ("CART_NOT_ACTIVE", ["input", "cartId"], "an order for this cart is awaiting payment")
    ]
    assert again["order"] is None
    assert await shop.stock("TEE") == (2, 1)  # the second try took nothing
    assert (await shop.provider_payments())["total_charges"] <= 1


async def test_timeout_then_late_success_by_webhook(shop: Shop) -> None:
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    payload = await _pending_checkout(shop, cart, "slow-card")
    assert await shop.stock("TEE") == (2, 1)  # stock stays held while the outcome is unknown
    order = await shop.status_becomes(payload["order"]["id"], "CONFIRMED")
    assert order.payment_status.value == "AUTHORIZED"
    assert await shop.order_event_types(payload["order"]["id"]) == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderConfirmed",
    ]
    assert (await shop.provider_payments())["total_charges"] == 1
    # The replay of the checkout still answers with the stored outcome (the order as it is now).
    replay = await shop.checkout(cart, "slow-card", token="tok_timeout")
    assert replay["position"] == payload["position"] and replay["order"]["id"] == payload["order"]["id"]


async def test_timeout_then_late_decline_by_webhook(shop: Shop) -> None:
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 2))
    payload = await _pending_checkout(shop, cart, "late-no", token="tok_late_decline")
    order = await shop.status_becomes(payload["order"]["id"], "CANCELLED")
    assert order.payment_status.value == "DECLINED"
    assert await shop.stock("TEE") == (2, 0)
    # The cart was never closed: the buyer can pay with another card.
    again = await shop.checkout(cart, "other-card")
    assert again["order"]["status"] == "CONFIRMED"


async def test_timeout_without_webhook_is_settled_by_reconciliation(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    payload = await _pending_checkout(shop, cart, "silent")
    order_gid = payload["order"]["id"]
    first = await shop.reconcile()  # the provider has no outcome yet (still holding)
    assert first.unknown == 1 and first.settled == 0
    assert (await shop.order(order_gid)).status.value == "PAYMENT_PENDING"

    async def settled() -> bool:
        return (await shop.reconcile()).settled == 1

    await shop.eventually(settled, timeout=SANDBOX_HOLD + 3)
    order = await shop.order(order_gid)
    assert (order.status.value, order.payment_status.value) == ("CONFIRMED", "AUTHORIZED")
    assert (await shop.reconcile()).checked == 0  # nothing left to settle
    assert (await shop.provider_payments())["total_charges"] == 1


async def test_late_success_after_lease_expired_and_stock_sold_voids_and_cancels(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("LAST", on_hand=1)
    slow = await _pending_checkout(shop, await shop.cart(("LAST", 1)), "slow")
    await shop.expire_lease(slow["order"]["id"])
    assert await shop.stock("LAST") == (1, 0)
    fast = await shop.checkout(await shop.cart(("LAST", 1)), "fast")
    assert fast["order"]["status"] == "CONFIRMED"

    results = await _replay_webhooks(shop, slow["order"]["id"])
    assert [r["status"] for r in results] == [200]
    order = await shop.order(slow["order"]["id"])
    assert (order.status.value, order.payment_status.value) == ("CANCELLED", "VOIDED")
    assert await shop.order_event_types(slow["order"]["id"]) == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderCancelled",
        "PaymentVoided",
    ]
    payments = (await shop.provider_payments(slow["order"]["id"]))["payments"]
    assert [p["status"] for p in payments] == ["VOIDED"]
    assert await shop.stock("LAST") == (1, 1)  # still the fast buyer's


async def test_late_success_when_the_void_fails_needs_attention(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("LAST", on_hand=1)
    slow = await _pending_checkout(shop, await shop.cart(("LAST", 1)), "slow")
    await shop.expire_lease(slow["order"]["id"])
    await shop.checkout(await shop.cart(("LAST", 1)), "fast")
    await shop.configure(fail_voids=True)
    await _replay_webhooks(shop, slow["order"]["id"])
    order = await shop.order(slow["order"]["id"])
    assert (order.status.value, order.payment_status.value) == ("NEEDS_ATTENTION", "AUTHORIZED")
    assert (await shop.order_event_types(slow["order"]["id"]))[-1] == "OrderNeedsAttention"


async def test_late_success_after_lease_expired_reserves_again_when_it_can(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=3)
    slow = await _pending_checkout(shop, await shop.cart(("TEE", 2)), "slow")
    await shop.expire_lease(slow["order"]["id"])
    assert await shop.stock("TEE") == (3, 0)
    await _replay_webhooks(shop, slow["order"]["id"])
    order = await shop.order(slow["order"]["id"])
    assert (order.status.value, order.payment_status.value) == ("CONFIRMED", "AUTHORIZED")
    assert await shop.stock("TEE") == (3, 2)


async def test_cancelled_while_pending_then_late_success_is_voided(shop: Shop) -> None:
    await shop.configure(webhooks_enabled=False)
    await shop.product("TEE", on_hand=2)
    customer = shop.customer("cust-9")
    cart = await shop.cart(("TEE", 1), customer="cust-9")
    payload = await shop.checkout(cart, "pending", token="tok_timeout", auth=customer)
    order_gid = payload["order"]["id"]
    body = await shop.order_op("orderCancel", order_gid, "cancel", customer, reason="too slow")
    cancelled = body["data"]["orderCancel"]
    assert (cancelled["order"]["status"], cancelled["order"]["payment"]["status"]) == ("CANCELLED", "UNKNOWN")
    assert await shop.stock("TEE") == (2, 0)
    await _replay_webhooks(shop, order_gid)
    order = await shop.order(order_gid)
    assert (order.status.value, order.payment_status.value) == ("CANCELLED", "VOIDED")
    assert [p["status"] for p in (await shop.provider_payments(order_gid))["payments"]] == ["VOIDED"]


ATTACH = """mutation($cart: ID!) {
  cartAttachCustomer(cartId: $cart) { cart { id } position userErrors { code message } } }"""
CART_STATUS = "query($id: ID!, $at: Position) { cart(id: $id, consistentWith: $at) { status } }"


async def test_a_cart_merged_while_its_payment_was_pending_stays_merged_and_the_order_confirms(
    shop: Shop,
) -> None:
    await shop.product("TEE", on_hand=3)
    customer = shop.customer("cust-merging")
    kept = await shop.cart(("TEE", 1), customer="cust-merging")
    guest = await shop.cart(("TEE", 1))
    payload = await _pending_checkout(shop, guest, "pending-then-merged")
    # The guest signs in while the card is still being decided: the guest cart merges into theirs.
    attached = (await shop.gql(ATTACH, {"cart": guest}, customer))["data"]["cartAttachCustomer"]
    assert attached["userErrors"] == [] and attached["cart"]["id"] == kept
    # The late success settles the order; closing its cart is refused (merged), not the settlement.
    order = await shop.status_becomes(payload["order"]["id"], "CONFIRMED", timeout=10)
    assert order.payment_status.value == "AUTHORIZED"
    assert await shop.stock("TEE") == (3, 1)
    types = await shop.order_event_types(payload["order"]["id"])
    assert types == ["OrderPlaced", "PaymentOutcomeUnknown", "PaymentAuthorized", "OrderConfirmed"]
    body = await shop.gql(CART_STATUS, {"id": guest, "at": attached["position"]}, customer)
    assert body["data"]["cart"]["status"] == "MERGED", body
    assert await shop.count_events("CartCheckedOut") == 0


async def test_a_checkout_is_a_saga_in_flight_until_it_settles(shop: Shop) -> None:
    await shop.product("TEE", on_hand=1)
    cart = await shop.cart(("TEE", 1))
    sagas = shop.container.bus.sagas
    assert not sagas.active
    checkout = asyncio.create_task(_pending_checkout(shop, cart, "in-flight"))

    async def in_flight() -> bool:
        return sagas.active

    # While the provider keeps the answer (the projectors of this process gather meanwhile).
    await shop.eventually(in_flight)
    await checkout
    assert not sagas.active
