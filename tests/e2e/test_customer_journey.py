"""A scripted customer journey, as a support agent later reads it in the timeline.

Guest cart, sign in and attach, checkout whose payment times out and succeeds
late, fulfillment, delivery, refund: every step through GraphQL over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import error_codes
from tests.support.checkout import Shop, order_mutation

# Short payment timeouts and a large cost budget (see tests.support.checkout).
pytestmark = pytest.mark.checkout_settings

NEW_CART = """mutation { cartCreate(input: {lines: [{sku: "MUG", quantity: 2}]}) {
  cart { id } position userErrors { message } } }"""
ADD = """mutation($cart: ID!) { cartLinesAdd(cartId: $cart, lines: [{sku: "TEE", quantity: 1}]) {
  position userErrors { message } } }"""
ATTACH = """mutation($cart: ID!) {
  cartAttachCustomer(cartId: $cart) { cart { id customerId } userErrors { message } } }"""
TIMELINE = """query($customer: ID!, $at: Position) {
  customerTimeline(customerId: $customer, first: 200, consistentWith: $at) {
    edges { node { type kind summary orderId cartId data } } } }"""


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    assert payload.get("userErrors", []) == [], payload
    return payload


async def test_journey_reads_as_a_timeline_for_support_only(shop: Shop) -> None:
    await shop.product("MUG", "12.50", on_hand=5)
    await shop.product("TEE", "20.00", on_hand=5)
    cart = _data(await shop.gql(NEW_CART, {}))["cart"]["id"]
    _data(await shop.gql(ADD, {"cart": cart}))
    customer = shop.customer("cust-journey")
    attached = _data(await shop.gql(ATTACH, {"cart": cart}, customer))
    assert attached["cart"]["customerId"] == "cust-journey"

    placed = await shop.checkout(cart, "journey-1", token="tok_timeout", auth=customer)
    assert placed["userErrors"] == [] and placed["order"]["status"] == "PAYMENT_PENDING"
    order = placed["order"]["id"]
    await shop.status_becomes(order, "CONFIRMED", timeout=10)  # the late success arrives by webhook

    admin = shop.admin()
    last: dict[str, Any] = {}
    for step, extra in (
        ("orderRequestFulfillment", {}),
        ("orderMarkShipped", {"trackingNumber": "1Z-JOURNEY"}),
        ("orderMarkDelivered", {}),
        ("orderRefund", {"reason": "arrived damaged"}),
    ):
        body = await shop.gql(
            order_mutation(step, *extra), {"orderId": order, "key": f"journey-{step}", **extra}, admin
        )
        last = _data(body)
    assert last["order"]["status"] == "REFUNDED"

    support = shop.tokens.mint("agent-1", ["support"])
    body = await shop.gql(TIMELINE, {"customer": "cust-journey", "at": last["position"]}, support)
    entries = [edge["node"] for edge in reversed(body["data"]["customerTimeline"]["edges"])]
    types = [e["type"] for e in entries]
    expected_order = [
        "CartCreated",
        "CartLinesAdded",
        "CartCustomerAttached",
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderConfirmed",
        "PaymentCaptured",  # money moves first, then the status change is recorded
        "FulfillmentRequested",
        "OrderShipped",
        "OrderDelivered",
        "PaymentRefunded",
        "OrderRefunded",
    ]
    positions = [types.index(t) for t in expected_order]
    assert positions == sorted(positions), ", ".join(types)
    assert "CartCheckedOut" in types

    summaries = {e["type"]: e["summary"] for e in entries}
    assert summaries["CartCreated"].startswith("Created a cart in USD with 2 x MUG")
    assert (
        summaries["OrderPlaced"].startswith("Placed order #")
        and "3 item(s), 45.00 USD" in summaries["OrderPlaced"]
    )
    assert summaries["PaymentAuthorized"].startswith("Paid 45.00 USD by card, ref ")
    assert summaries["OrderShipped"] == "Shipped, tracking 1Z-JOURNEY"
    assert summaries["PaymentRefunded"].startswith("Refunded 45.00")
    kinds = {e["type"]: e["kind"] for e in entries}
    assert (kinds["CartLinesAdded"], kinds["PaymentAuthorized"], kinds["OrderShipped"]) == (
        "CART",
        "PAYMENT",
        "FULFILLMENT",
    )
    assert all(e["data"] is not None for e in entries)
    assert {e["orderId"] for e in entries if e["kind"] != "CART"} == {order}

    own = await shop.gql(TIMELINE, {"customer": "cust-journey"}, customer)
    assert error_codes(own) == ["FORBIDDEN"]

    metrics = (await shop.http.get("/metrics")).text
    assert 'commerce_checkout_outcomes_total{outcome="placed"}' in metrics
    for operation, status in (("authorize", "AUTHORIZED"), ("capture", "CAPTURED"), ("refund", "REFUNDED")):
        assert f'commerce_payment_outcomes_total{{operation="{operation}",status="{status}"}}' in metrics
    assert 'commerce_http_requests_total{operation="/webhooks/payments",outcome="ok"}' in metrics
