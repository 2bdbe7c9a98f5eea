"""A store with shipping, taxes and a discount code, configured through the admin mutations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from commands.messages.catalog import UpsertProduct, VariantSpec
from tests.support.checkout import ADDRESS, META, Shop

DE = {**ADDRESS, "city": "Berlin", "postalCode": "10115", "countryCode": "DE"}
P = "{ position userErrors { field code } }"
DEFINE_METHOD = f"mutation M($input: ShippingMethodInput!) {{ shippingMethodDefine(input: $input) {P} }}"
SET_RATE = f"mutation M($input: TaxRateInput!) {{ taxRateSet(input: $input) {P} }}"
DEFINE_CODE = f"mutation M($input: DiscountCodeInput!) {{ discountCodeDefine(input: $input) {P} }}"


async def admin(shop: Shop, mutation: str, values: dict[str, Any]) -> int:
    """Run an admin configuration mutation; returns its position once the pricing view has it."""
    body = await shop.gql(mutation, {"input": values}, shop.admin())
    assert "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["userErrors"] == [] and payload["position"] is not None, payload
    position = int(payload["position"])
    await shop.container.freshness.wait_for("pricing", position, 5.0)
    return position


async def configure_store(shop: Shop, *, limit: int | None = None, per_customer: int | None = None) -> None:
    """EUR tee (standard) and book (reduced); DE 19 % / 7 %; shipping 4.90, free from 50; code TEN."""
    await shop.container.bus.dispatch(
        UpsertProduct(
            "goods",
            "Goods",
            (
                VariantSpec("TEE", "Tee", Decimal("10.00")),
                VariantSpec("BOOK", "Book", Decimal("4.99"), "reduced"),
            ),
            currency_code="EUR",
        ),
        META,
    )
    await shop.set_stock("TEE", 1000)
    await shop.set_stock("BOOK", 1000)
    await admin(
        shop,
        DEFINE_METHOD,
        {"code": "std", "name": "Standard", "currencyCode": "EUR", "price": "4.90", "freeAbove": "50.00"},
    )
    await admin(
        shop,
        DEFINE_METHOD,
        {"code": "fr-only", "name": "France", "currencyCode": "EUR", "price": "3", "countries": ["FR"]},
    )
    await admin(shop, SET_RATE, {"countryCode": "DE", "category": "standard", "rate": "0.19"})
    await admin(shop, SET_RATE, {"countryCode": "DE", "category": "reduced", "rate": "0.07"})
    code = {
        "code": "TEN",
        "kind": "PERCENTAGE",
        "value": "10",
        "usageLimit": limit,
        "perCustomerLimit": per_customer,
    }
    await admin(shop, DEFINE_CODE, code)
