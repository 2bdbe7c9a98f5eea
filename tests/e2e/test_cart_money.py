"""A cart's shipping, discount code and totals, through GraphQL over HTTP; checkout takes them over."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.checkout import CHECKOUT, Shop
from tests.support.money import DE, SET_RATE, admin, configure_store

pytestmark = pytest.mark.checkout_settings

CART_FIELDS = """
  version shipping { countryCode region methodCode } discountCode
  shippingMethods { code name price { amount currencyCode } }
  totals {
    subtotal { amount } shipping { amount } discounts { amount } tax { amount } total { amount }
    taxLines { rate base { amount } amount { amount } } pricesIncludeTax
    discountCodeError { code field }
  }
"""
READ = f"query C($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"
PAYLOAD = f"{{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }}"
SHIP = f"""
mutation S($id: ID!, $country: String!, $method: String) {{
  cartShippingSet(cartId: $id, countryCode: $country, methodCode: $method) {PAYLOAD}
}}
"""
APPLY = (
    f"mutation A($id: ID!, $code: String!) {{ cartDiscountCodeApply(cartId: $id, code: $code) {PAYLOAD} }}"
)
REMOVE = f"mutation R($id: ID!) {{ cartDiscountCodeRemove(cartId: $id) {PAYLOAD} }}"


async def _read(shop: Shop, cart_id: str) -> dict[str, Any]:
    """The cart once the carts read model has it."""
    found: dict[str, Any] = {}

    async def readable() -> bool:
        cart = await _run(shop, READ, id=cart_id)
        found.update(cart or {})
        return cart is not None

    await shop.eventually(readable)
    return found


async def _run(shop: Shop, query: str, **variables: Any) -> dict[str, Any]:
    body = await shop.gql(query, variables)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


async def test_a_cart_without_money_configuration_totals_its_lines(shop: Shop) -> None:
    await shop.product("PLAIN", "7.50")
    cart = await _read(shop, await shop.cart(("PLAIN", 2)))
    assert cart["shipping"] is None and cart["discountCode"] is None and cart["shippingMethods"] == []
    totals = cart["totals"]
    assert [totals[k]["amount"] for k in ("subtotal", "shipping", "discounts", "tax", "total")] == [
        "15.00",
        "0.00",
        "0.00",
        "0.00",
        "15.00",
    ]
    assert totals["taxLines"] == [] and totals["discountCodeError"] is None


async def test_the_cart_quotes_what_checkout_then_charges(shop: Shop) -> None:
    await configure_store(shop)
    cart_id = await shop.cart(("TEE", 3), ("BOOK", 1))
    shipped = await _run(shop, SHIP, id=cart_id, country="DE", method="std")
    assert shipped["userErrors"] == []
    cart = shipped["cart"]
    assert cart["shipping"] == {"countryCode": "DE", "region": None, "methodCode": "std"}
    assert cart["shippingMethods"] == [
        {"code": "std", "name": "Standard", "price": {"amount": "4.90", "currencyCode": "EUR"}}
    ]
    applied = await _run(shop, APPLY, id=cart_id, code="TEN")
    assert applied["userErrors"] == [] and applied["cart"]["discountCode"] == "TEN"
    totals = applied["cart"]["totals"]
    # Hand-computed in tests/unit/test_money_totals.py.
    assert [totals[k]["amount"] for k in ("subtotal", "shipping", "discounts", "tax", "total")] == [
        "34.99",
        "4.90",
        "3.50",
        "6.37",
        "42.76",
    ]
    assert [(t["rate"], t["base"]["amount"], t["amount"]["amount"]) for t in totals["taxLines"]] == [
        ("0.19", "31.90", "6.06"),
        ("0.07", "4.49", "0.31"),
    ]
    # No method or code in the checkout input: the cart's are used.
    outcome = await _checkout(shop, cart_id, "k-1", expectedTotal=totals["total"]["amount"])
    assert outcome["userErrors"] == []
    assert outcome["order"]["total"]["amount"] == "42.76"
    assert outcome["order"]["payment"]["amount"]["amount"] == "42.76"


async def test_price_changed_when_a_tax_rate_changes_between_cart_and_checkout(shop: Shop) -> None:
    await configure_store(shop)
    cart_id = await shop.cart(("TEE", 1))
    quoted = (await _run(shop, SHIP, id=cart_id, country="DE", method="std"))["cart"]["totals"]["total"]
    assert quoted["amount"] == "17.73"  # 10.00 + 4.90 + 19 % of 14.90
    await admin(shop, SET_RATE, {"countryCode": "DE", "category": "standard", "rate": "0.07"})
    changed = await _checkout(shop, cart_id, "k-1", expectedTotal=quoted["amount"])
    assert [(e["code"], e["field"]) for e in changed["userErrors"]] == [
        ("PRICE_CHANGED", ["input", "expectedTotal"])
    ]
    assert "15.94 EUR" in changed["userErrors"][0]["message"]
    requoted = (await _read(shop, cart_id))["totals"]["total"]["amount"]
    assert requoted == "15.94"
    accepted = await _checkout(shop, cart_id, "k-2", expectedTotal=requoted)
    assert accepted["userErrors"] == [] and accepted["order"]["total"]["amount"] == "15.94"


async def test_cart_choices_are_checked_and_codes_removed(shop: Shop) -> None:
    await configure_store(shop)
    cart_id = await shop.cart(("TEE", 1))
    abroad = await _run(shop, SHIP, id=cart_id, country="DE", method="fr-only")
    assert [(e["code"], e["field"]) for e in abroad["userErrors"]] == [
        ("SHIPPING_METHOD_INELIGIBLE", ["methodCode"])
    ]
    no_such = await _run(shop, SHIP, id=cart_id, country="FR", method="teleport")
    assert [(e["code"], e["field"]) for e in no_such["userErrors"]] == [("NOT_FOUND", ["methodCode"])]
    unknown = await _run(shop, APPLY, id=cart_id, code="NOPE")
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [("DISCOUNT_CODE_INVALID", ["code"])]
    # Only France: the French method is offered, at its price.
    france = (await _run(shop, SHIP, id=cart_id, country="FR"))["cart"]
    assert [m["code"] for m in france["shippingMethods"]] == ["fr-only", "std"]
    await _run(shop, APPLY, id=cart_id, code="TEN")
    removed = await _run(shop, REMOVE, id=cart_id)
    assert removed["userErrors"] == [] and removed["cart"]["discountCode"] is None
    again = await _run(shop, REMOVE, id=cart_id)
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_INPUT"]


async def _checkout(shop: Shop, cart: str, key: str, **extra: Any) -> dict[str, Any]:
    variables = {
        "input": {
            "cartId": cart,
            "idempotencyKey": key,
            "email": "ada@example.com",
            "shippingAddress": DE,
            "payment": {"token": "tok_ok"},
            **extra,
        }
    }
    body = await shop.gql(CHECKOUT, variables)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["checkoutComplete"]
    return payload
