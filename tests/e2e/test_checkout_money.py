"""Checkout with shipping, taxes and discount codes, through GraphQL over HTTP.

The payment authorizes exactly the order total; a discount code limited to N
uses is used N times however many buyers race for it; a declined payment gives
its use back; a tax rate changed since the buyer saw the total is PRICE_CHANGED.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from commands.events.order import OrderPlaced
from commands.store.ledger.reader import load_stream
from gateway.schema.ids import parse_global_id
from tests.support.checkout import CHECKOUT, Shop
from tests.support.money import DE, DEFINE_CODE, SET_RATE, P, admin, configure_store

pytestmark = pytest.mark.checkout_settings

D = Decimal


async def _checkout(shop: Shop, cart: str, key: str, auth: str | None = None, **extra: Any) -> dict[str, Any]:
    query = extra.pop("query", CHECKOUT)
    token = extra.pop("token", "tok_ok")
    address = extra.pop("address", DE)
    variables = {
        "input": {
            "cartId": cart,
            "idempotencyKey": key,
            "email": "ada@example.com",
            "shippingAddress": address,
            "payment": {"token": token},
            **extra,
        }
    }
    body = await shop.gql(query, variables, auth)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["checkoutComplete"]
    return payload


async def _placed(shop: Shop, order_gid: str) -> OrderPlaced:
    parsed = parse_global_id(order_gid, "Order")
    assert parsed is not None
    async with shop.container.engine.connect() as conn:
        first = (await load_stream(conn, f"order-{parsed[1]}"))[0].decode()
    assert isinstance(first, OrderPlaced)
    return first


async def _uses(shop: Shop, code: str) -> int:
    async with shop.container.engine.connect() as conn:
        return int(
            (
                await conn.execute(text("SELECT uses FROM discount_codes WHERE code = :c"), {"c": code})
            ).scalar_one()
        )


async def test_the_payment_authorizes_the_total_with_shipping_tax_and_discount(shop: Shop) -> None:
    await configure_store(shop)
    cart = await shop.cart(("TEE", 3), ("BOOK", 1))
    # Hand-computed (tests/unit/test_money_totals.py): 34.99 + 4.90 - 3.50 + 6.06 + 0.31 = 42.76.
    outcome = await _checkout(
        shop,
        cart,
        "k-1",
        address={**DE, "region": "BE"},
        shippingMethod="std",
        discountCode="TEN",
        expectedTotal="42.76",
    )
    assert outcome["userErrors"] == []
    order = outcome["order"]
    assert order["status"] == "CONFIRMED"
    assert order["total"] == {"amount": "42.76", "currencyCode": "EUR"}
    assert order["payment"]["amount"]["amount"] == "42.76"
    placed = await _placed(shop, order["id"])
    assert placed.totals is not None
    assert (placed.subtotal, placed.total) == (D("34.99"), D("42.76"))
    assert (placed.totals.shipping, placed.totals.discounts, placed.totals.tax) == (
        D("4.90"),
        D("3.50"),
        D("6.37"),
    )
    assert [(t.rate, t.base, t.amount) for t in placed.totals.tax_lines] == [
        (D("0.19"), D("31.90"), D("6.06")),
        (D("0.07"), D("4.49"), D("0.31")),
    ]
    assert (placed.totals.shipping_method, placed.totals.discount_code) == ("std", "TEN")
    assert await _uses(shop, "TEN") == 1
    assert await shop.count_events("DiscountCodeUseCommitted") == 1
    # The orders read model and the API show the same money.
    body = await shop.gql(ORDER_MONEY, {"id": order["id"], "at": outcome["position"]}, shop.admin())
    assert body["data"]["order"] == {
        "subtotal": {"amount": "34.99"},
        "shipping": {"amount": "4.90"},
        "discounts": {"amount": "3.50"},
        "tax": {"amount": "6.37"},
        "taxLines": [
            {"rate": "0.19", "base": {"amount": "31.90"}, "amount": {"amount": "6.06"}},
            {"rate": "0.07", "base": {"amount": "4.49"}, "amount": {"amount": "0.31"}},
        ],
        "total": {"amount": "42.76"},
        "pricesIncludeTax": False,
        "shippingMethod": "std",
        "discountCode": "TEN",
        "shippingAddress": {"countryCode": "DE", "region": "BE"},
    }


async def test_free_shipping_from_the_threshold(shop: Shop) -> None:
    await configure_store(shop)
    at = await _checkout(shop, await shop.cart(("TEE", 5)), "k-at", shippingMethod="std")
    under = await _checkout(shop, await shop.cart(("TEE", 4), ("BOOK", 2)), "k-under", shippingMethod="std")
    assert (await _placed(shop, at["order"]["id"])).totals.shipping == D("0.00")  # type: ignore[union-attr]
    # 49.98: one cent or more under 50.00 pays shipping.
    assert (await _placed(shop, under["order"]["id"])).totals.shipping == D("4.90")  # type: ignore[union-attr]


async def test_a_store_with_methods_needs_an_eligible_one(shop: Shop) -> None:
    await configure_store(shop)
    cart = await shop.cart(("TEE", 1))
    missing = await _checkout(shop, cart, "k-1")
    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [
        ("SHIPPING_METHOD_REQUIRED", ["input", "shippingMethod"])
    ]
    abroad = await _checkout(shop, cart, "k-2", shippingMethod="fr-only")
    assert [e["code"] for e in abroad["userErrors"]] == ["SHIPPING_METHOD_INELIGIBLE"]
    unknown = await _checkout(shop, cart, "k-3", shippingMethod="teleport")
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [
        ("NOT_FOUND", ["input", "shippingMethod"])
    ]
    assert missing["order"] is None and abroad["order"] is None and unknown["order"] is None
    assert await shop.count_events("OrderPlaced") == 0


async def test_a_store_without_methods_refuses_a_method_named_at_checkout(shop: Shop) -> None:
    await shop.product("TEE", on_hand=5)
    cart = await shop.cart(("TEE", 1))
    typo = await _checkout(shop, cart, "k-1", shippingMethod="warp")
    assert [(e["code"], e["field"]) for e in typo["userErrors"]] == [
        ("NOT_FOUND", ["input", "shippingMethod"])
    ]
    assert "no shipping method warp" in typo["userErrors"][0]["message"]
    assert typo["order"] is None and await shop.count_events("OrderPlaced") == 0
    # Without one it ships as the store does, by no method.
    shipped = await _checkout(shop, cart, "k-2")
    assert shipped["userErrors"] == [] and shipped["order"]["status"] == "CONFIRMED"


async def test_expired_and_below_minimum_codes_name_the_field(shop: Shop) -> None:
    await configure_store(shop)
    await admin(
        shop,
        DEFINE_CODE,
        {"code": "OLD", "kind": "PERCENTAGE", "value": "5", "endsAt": "2020-01-01T00:00:00Z"},
    )
    await admin(
        shop,
        DEFINE_CODE,
        {"code": "BIG", "kind": "FIXED", "value": "5", "currencyCode": "EUR", "minimumSubtotal": "100"},
    )
    cart = await shop.cart(("TEE", 1))
    expired = await _checkout(shop, cart, "k-1", shippingMethod="std", discountCode="OLD")
    below = await _checkout(shop, cart, "k-2", shippingMethod="std", discountCode="BIG")
    unknown = await _checkout(shop, cart, "k-3", shippingMethod="std", discountCode="NOPE")
    assert [(e["code"], e["field"]) for e in expired["userErrors"]] == [
        ("DISCOUNT_CODE_EXPIRED", ["input", "discountCode"])
    ]
    assert [(e["code"], e["field"]) for e in below["userErrors"]] == [
        ("DISCOUNT_CODE_MINIMUM_NOT_MET", ["input", "discountCode"])
    ]
    assert [e["code"] for e in unknown["userErrors"]] == ["DISCOUNT_CODE_INVALID"]


async def test_a_declined_payment_gives_the_code_use_back(shop: Shop) -> None:
    await configure_store(shop, limit=1)
    cart = await shop.cart(("TEE", 1))
    declined = await _checkout(
        shop, cart, "k-1", shippingMethod="std", discountCode="TEN", token="tok_decline"
    )
    assert [e["code"] for e in declined["userErrors"]] == ["PAYMENT_DECLINED"]
    assert await _uses(shop, "TEN") == 0
    assert await shop.count_events("DiscountCodeUseReleased") == 1
    retried = await _checkout(shop, cart, "k-2", shippingMethod="std", discountCode="TEN")
    assert retried["userErrors"] == [] and retried["order"]["status"] == "CONFIRMED"
    assert await _uses(shop, "TEN") == 1
    other = await _checkout(
        shop, await shop.cart(("TEE", 1)), "k-3", shippingMethod="std", discountCode="TEN"
    )
    assert [e["code"] for e in other["userErrors"]] == ["DISCOUNT_CODE_USAGE_LIMIT_REACHED"]


async def test_a_customer_uses_a_code_only_as_often_as_it_allows(shop: Shop) -> None:
    await configure_store(shop, per_customer=1)
    auth = shop.customer("cust-7")
    first = await _checkout(
        shop,
        await shop.cart(("TEE", 1), customer="cust-7"),
        "k-1",
        auth,
        shippingMethod="std",
        discountCode="TEN",
    )
    again = await _checkout(
        shop,
        await shop.cart(("TEE", 1), customer="cust-7"),
        "k-2",
        auth,
        shippingMethod="std",
        discountCode="TEN",
    )
    assert first["userErrors"] == []
    assert [e["code"] for e in again["userErrors"]] == ["DISCOUNT_CODE_USAGE_LIMIT_REACHED"]
    assert await _uses(shop, "TEN") == 1
    # The customer's timeline explains the order's money and the code's use.
    variables = {"customer": "cust-7", "at": first["position"]}
    body = await shop.gql(TIMELINE, variables, shop.tokens.mint("agent", ["support"]))
    summaries = [edge["node"]["summary"] for edge in body["data"]["customerTimeline"]["edges"]]
    assert any(
        s.startswith("Placed order")
        and "(subtotal 10.00 EUR, shipping 4.90 EUR, discount -1.00 EUR (TEN)" in s
        for s in summaries
    ), summaries
    assert "Discount code TEN used by the order" in summaries


async def test_price_changed_when_a_tax_rate_changes_after_the_buyer_saw_the_total(shop: Shop) -> None:
    await configure_store(shop)
    cart = await shop.cart(("TEE", 1))
    # Shown: 10.00 + 4.90 + 19 % of 14.90 (2.831 -> 2.83) = 17.73. Then the rate drops to 7 %: 14.90 + 1.04.
    await admin(shop, SET_RATE, {"countryCode": "DE", "category": "standard", "rate": "0.07"})
    changed = await _checkout(shop, cart, "k-1", shippingMethod="std", expectedTotal="17.73")
    assert [(e["code"], e["field"]) for e in changed["userErrors"]] == [
        ("PRICE_CHANGED", ["input", "expectedTotal"])
    ]
    assert "15.94 EUR" in changed["userErrors"][0]["message"]
    accepted = await _checkout(shop, cart, "k-2", shippingMethod="std", expectedTotal="15.94")
    assert accepted["order"]["total"]["amount"] == "15.94"


async def test_a_store_without_money_configuration_charges_the_lines_as_before(shop: Shop) -> None:
    await shop.product("PLAIN", "7.50")
    outcome = await shop.checkout(await shop.cart(("PLAIN", 2)), "k-1")
    assert outcome["order"]["total"]["amount"] == "15.00"
    assert (await _placed(shop, outcome["order"]["id"])).totals is None


ORDER_MONEY = """
query O($id: ID!, $at: Position) {
  order(id: $id, consistentWith: $at) {
    subtotal { amount } shipping { amount } discounts { amount } tax { amount }
    taxLines { rate base { amount } amount { amount } }
    total { amount } pricesIncludeTax shippingMethod discountCode
    shippingAddress { countryCode region }
  }
}
"""
TIMELINE = """
query T($customer: ID!, $at: Position) {
  customerTimeline(customerId: $customer, consistentWith: $at) { edges { node { summary } } }
}
"""
WRITE_ONLY = """
mutation Checkout($input: CheckoutInput!) {
  checkoutComplete(input: $input) { orderId position userErrors { field message code } }
}
"""
BUYERS = 200
LIMIT = 20
IN_FLIGHT = 64


async def test_a_code_limited_to_n_uses_is_used_exactly_n_times_under_contention(shop: Shop) -> None:
    await configure_store(shop, limit=LIMIT)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def new_cart() -> str:
        async with gate:
            return await shop.cart(("TEE", 1))

    carts = await asyncio.gather(*(new_cart() for _ in range(BUYERS)))

    async def buy(i: int, cart: str) -> dict[str, Any]:
        async with gate:
            # Not reading the order back: under this load the orders view may lag past the read wait.
            return await _checkout(
                shop, cart, f"rush-{i}", query=WRITE_ONLY, shippingMethod="std", discountCode="TEN"
            )

    outcomes = await asyncio.gather(*(buy(i, cart) for i, cart in enumerate(carts)))
    confirmed = [o for o in outcomes if not o["userErrors"] and o["orderId"] is not None]
    used_up = [
        o for o in outcomes if [e["code"] for e in o["userErrors"]] == ["DISCOUNT_CODE_USAGE_LIMIT_REACHED"]
    ]
    assert len(confirmed) == LIMIT
    assert len(used_up) == BUYERS - LIMIT
    assert await _uses(shop, "TEN") == LIMIT
    assert await shop.count_events("DiscountCodeUseReserved") == LIMIT
    assert await shop.count_events("DiscountCodeUseCommitted") == LIMIT
    assert await shop.count_events("OrderConfirmed") == LIMIT
    # Stock was taken back from every buyer the code refused: only the winners hold any.
    assert await shop.stock("TEE") == (1000, LIMIT)


async def test_cancelling_before_capture_gives_the_use_back_and_refunds_return_the_whole_total(
    shop: Shop,
) -> None:
    await configure_store(shop)
    admin = shop.admin()
    voided = await _checkout(
        shop, await shop.cart(("TEE", 3), ("BOOK", 1)), "k-1", shippingMethod="std", discountCode="TEN"
    )
    cancelled = await shop.order_op("orderCancel", voided["order"]["id"], "c-1", admin, reason="changed")
    assert cancelled["data"]["orderCancel"]["order"]["payment"]["status"] == "VOIDED"
    assert await _uses(shop, "TEN") == 0

    captured = await _checkout(
        shop, await shop.cart(("TEE", 3), ("BOOK", 1)), "k-2", shippingMethod="std", discountCode="TEN"
    )
    order = captured["order"]["id"]
    await shop.order_op("orderRequestFulfillment", order, "f-1", admin)
    refunded = await shop.order_op("orderCancel", order, "c-2", admin, reason="warehouse")
    assert refunded["data"]["orderCancel"]["order"]["payment"]["status"] == "REFUNDED"
    # Captured money came back whole (lines, shipping and tax, less the discount); the use stays spent.
    payments = (await shop.provider_payments(order))["payments"]
    assert [(p["status"], Decimal(p["amount"])) for p in payments] == [("REFUNDED", D("42.76"))]
    assert await _uses(shop, "TEN") == 1


SET_POLICY = f"mutation M($input: TaxPolicyInput!) {{ taxPolicySet(input: $input) {P} }}"


async def test_tax_inclusive_prices_charge_the_prices_and_carry_their_tax(shop: Shop) -> None:
    await configure_store(shop)
    await admin(shop, SET_POLICY, {"currencyCode": "EUR", "pricesIncludeTax": True, "rounding": "PER_LINE"})
    cart = await shop.cart(("TEE", 3), ("BOOK", 1))
    # Hand-computed (tests/unit/test_money_totals.py, DE inclusive): 34.99 + 4.90, of which tax 5.57 + 0.33.
    outcome = await _checkout(shop, cart, "k-1", shippingMethod="std", expectedTotal="39.89")
    assert outcome["userErrors"] == [] and outcome["order"]["payment"]["amount"]["amount"] == "39.89"
    totals = (await _placed(shop, outcome["order"]["id"])).totals
    assert totals is not None and totals.prices_include_tax
    assert [(t.rate, t.base, t.amount) for t in totals.tax_lines] == [
        (D("0.19"), D("29.33"), D("5.57")),
        (D("0.07"), D("4.66"), D("0.33")),
    ]
