"""A command that succeeded always says what it wrote, even when its read model lags past the wait bound."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from tests.helpers import error_codes, gql
from tests.support.checkout import ADDRESS, Shop

NEW_CART = """mutation {
  cartCreate(input: {currencyCode: "USD"}) { cartId position cart { id } userErrors { code } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) {
  checkoutComplete(input: $input) { orderId position order { id } userErrors { code } } }"""
READ = "query($id: ID!, $at: Position) { cart(id: $id, consistentWith: $at) { id version } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, read_wait_seconds=0.3, payment_timeout_seconds=0.5)


async def test_cart_payload_names_the_cart_when_the_read_model_lags(
    running: Container, client: httpx.AsyncClient
) -> None:
    carts = running.runner("carts")
    await carts.stop()
    body = await gql(client, NEW_CART)
    payload = body["data"]["cartCreate"]
    assert payload["cart"] is None and error_codes(body) == ["STALE_READ"]
    assert payload["cartId"].startswith("gid://commerce/Cart/") and payload["position"] is not None
    carts.start()
    later = await gql(client, READ, {"id": payload["cartId"], "at": payload["position"]})
    assert later["data"]["cart"] == {"id": payload["cartId"], "version": 1}


async def test_checkout_payload_names_the_order_when_the_read_model_lags(shop: Shop) -> None:
    await shop.product("LAMP", on_hand=3)
    cart = await shop.cart(("LAMP", 1))
    orders = shop.container.runner("orders")
    await orders.stop()
    variables = {
        "input": {
            "cartId": cart,
            "idempotencyKey": "lagging-order",
            "email": "ada@example.com",
            "shippingAddress": ADDRESS,
            "payment": {"token": "tok_ok"},
        }
    }
    body = await shop.gql(CHECKOUT, variables)
    orders.start()
    payload = body["data"]["checkoutComplete"]
    assert payload["userErrors"] == [] and payload["order"] is None and error_codes(body) == ["STALE_READ"]
    assert payload["orderId"].startswith("gid://commerce/Order/") and payload["position"] is not None
    assert (await shop.status_becomes(payload["orderId"], "CONFIRMED")).status.value == "CONFIRMED"
