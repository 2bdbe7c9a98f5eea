"""Order mutations after checkout: cancel, fulfillment, shipment, delivery, refund; access; illegal moves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import error_codes
from tests.support.checkout import Shop

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings


async def _confirmed(shop: Shop, customer: str = "cust-1", quantity: int = 1) -> str:
    await shop.product("TEE", "19.99", on_hand=5)
    cart = await shop.cart(("TEE", quantity), customer=customer)
    payload = await shop.checkout(cart, f"checkout-{customer}", auth=shop.customer(customer))
    assert payload["order"]["status"] == "CONFIRMED"
    order_gid: str = payload["order"]["id"]
    return order_gid


def _payload(body: dict[str, Any], name: str) -> dict[str, Any]:
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][name]
    return payload


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_customer_cancels_confirmed_order_and_the_authorization_is_voided(shop: Shop) -> None:
    order = await _confirmed(shop, quantity=2)
    me = shop.customer("cust-1")
    payload = _payload(
        await shop.order_op("orderCancel", order, "c-1", me, reason="changed my mind"), "orderCancel"
    )
    assert payload["userErrors"] == []
    assert (payload["order"]["status"], payload["order"]["payment"]["status"]) == ("CANCELLED", "VOIDED")
    assert await shop.stock("TEE") == (5, 0)
    assert [p["status"] for p in (await shop.provider_payments(order))["payments"]] == ["VOIDED"]
    # Same key: the stored outcome; a new key: the transition is no longer legal and appends nothing.
    again = _payload(
        await shop.order_op("orderCancel", order, "c-1", me, reason="changed my mind"), "orderCancel"
    )
    assert again == payload
    events = await shop.order_event_types(order)
    refused = _payload(await shop.order_op("orderCancel", order, "c-2", me), "orderCancel")
    assert _codes(refused) == ["INVALID_STATE_TRANSITION"]
    assert await shop.order_event_types(order) == events


async def test_fulfil_ship_deliver_then_refund(shop: Shop) -> None:
    order = await _confirmed(shop, quantity=2)
    admin = shop.admin()
    requested = _payload(
        await shop.order_op("orderRequestFulfillment", order, "f-1", admin), "orderRequestFulfillment"
    )
    assert (requested["order"]["status"], requested["order"]["payment"]["status"]) == (
        "FULFILLMENT_REQUESTED",
        "CAPTURED",
    )
    shipped = _payload(
        await shop.order_op("orderMarkShipped", order, "s-1", admin, trackingNumber="TRK-1"),
        "orderMarkShipped",
    )
    assert shipped["order"]["status"] == "SHIPPED"
    assert await shop.stock("TEE") == (3, 0)  # the stock left the warehouse
    delivered = _payload(await shop.order_op("orderMarkDelivered", order, "d-1", admin), "orderMarkDelivered")
    assert delivered["order"]["status"] == "DELIVERED"
    refunded = _payload(
        await shop.order_op("orderRefund", order, "r-1", admin, reason="broken"), "orderRefund"
    )
    assert (refunded["order"]["status"], refunded["order"]["payment"]["status"]) == ("REFUNDED", "REFUNDED")
    assert [p["status"] for p in (await shop.provider_payments(order))["payments"]] == ["REFUNDED"]
    assert await shop.order_event_types(order) == [
        "OrderPlaced",
        "PaymentAuthorized",
        "OrderConfirmed",
        "PaymentCaptured",
        "FulfillmentRequested",
        "OrderShipped",
        "OrderDelivered",
        "PaymentRefunded",
        "OrderRefunded",
    ]


async def test_admin_cancels_order_in_fulfillment_and_the_capture_is_refunded(shop: Shop) -> None:
    order = await _confirmed(shop)
    admin = shop.admin()
    _payload(await shop.order_op("orderRequestFulfillment", order, "f-1", admin), "orderRequestFulfillment")
    customer_try = _payload(
        await shop.order_op("orderCancel", order, "c-1", shop.customer("cust-1")), "orderCancel"
    )
    assert _codes(customer_try) == ["INVALID_STATE_TRANSITION"]
    cancelled = _payload(
        await shop.order_op("orderCancel", order, "c-2", admin, reason="warehouse"), "orderCancel"
    )
    assert (cancelled["order"]["status"], cancelled["order"]["payment"]["status"]) == (
        "CANCELLED",
        "REFUNDED",
    )
    assert await shop.stock("TEE") == (5, 0)


async def test_every_illegal_transition_is_refused_and_appends_nothing(shop: Shop) -> None:
    order = await _confirmed(shop)
    admin = shop.admin()
    before = await shop.order_event_types(order)
    for name, extra in [
        ("orderMarkShipped", {}),
        ("orderMarkDelivered", {}),
        ("orderRefund", {"reason": "x"}),
    ]:
        payload = _payload(await shop.order_op(name, order, f"bad-{name}", admin, **extra), name)
        assert _codes(payload) == ["INVALID_STATE_TRANSITION"], name
        assert payload["position"] is None
    assert await shop.order_event_types(order) == before
    _payload(await shop.order_op("orderCancel", order, "cancel", admin), "orderCancel")
    cancelled = await shop.order_event_types(order)
    for name in [
        "orderRequestFulfillment",
        "orderMarkShipped",
        "orderMarkDelivered",
        "orderRefund",
        "orderCancel",
    ]:
        payload = _payload(await shop.order_op(name, order, f"after-{name}", admin), name)
        assert _codes(payload) == ["INVALID_STATE_TRANSITION"], name
    assert await shop.order_event_types(order) == cancelled


async def test_access_rules(shop: Shop) -> None:
    order = await _confirmed(shop)
    other = _payload(await shop.order_op("orderCancel", order, "k", shop.customer("cust-2")), "orderCancel")
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [("NOT_FOUND", ["orderId"])]
    assert other["order"] is None
    unknown = _payload(
        await shop.order_op("orderCancel", "gid://commerce/Order/42", "k", shop.customer("cust-1")),
        "orderCancel",
    )
    assert _codes(unknown) == ["NOT_FOUND"]
    assert error_codes(await shop.order_op("orderMarkShipped", order, "k", shop.customer("cust-1"))) == [
        "FORBIDDEN"
    ]
    support = shop.tokens.mint("agent-1", ["support"])
    assert error_codes(await shop.order_op("orderCancel", order, "k", support)) == ["FORBIDDEN"]
    assert error_codes(await shop.order_op("orderRefund", order, "k", None)) == ["UNAUTHENTICATED"]
    assert (await shop.order(order)).status.value == "CONFIRMED"


async def test_capture_refused_by_the_provider_flags_the_order(shop: Shop) -> None:
    order = await _confirmed(shop)
    reference = (await shop.order(order)).provider_reference
    assert reference is not None
    # Someone voided the authorization at the provider, behind the shop's back.
    provider = shop.container.services.payments
    assert (await provider.void(idempotency_key="outside", provider_reference=reference)).status == "VOIDED"
    payload = _payload(
        await shop.order_op("orderRequestFulfillment", order, "f", shop.admin()), "orderRequestFulfillment"
    )
    assert _codes(payload) == ["INVALID_STATE_TRANSITION"]
    assert "capture" in payload["userErrors"][0]["message"]
    assert payload["order"]["status"] == "NEEDS_ATTENTION"
    assert (await shop.order_event_types(order))[-1] == "OrderNeedsAttention"
