"""Timeline entries for money: an order's breakdown, cart choices and discount-code uses."""

from __future__ import annotations

from projections.timeline.entries import entry_for


def test_an_order_with_totals_explains_its_total() -> None:
    data = {
        "order_id": "o1",
        "number": "7",
        "cart_id": "c1",
        "currency": "EUR",
        "total": "42.76",
        "lines": [{"sku": "TEE", "quantity": 3}, {"sku": "BOOK", "quantity": 1}],
        "totals": {
            "subtotal": "34.99",
            "shipping": "4.90",
            "discounts": "3.50",
            "tax": "6.37",
            "total": "42.76",
            "discount_code": "TEN",
        },
    }
    entry = entry_for("order", "order-o1", "OrderPlaced", data)
    assert entry is not None
    assert entry.summary == (
        "Placed order #7: 4 item(s), 42.76 EUR "
        "(subtotal 34.99 EUR, shipping 4.90 EUR, discount -3.50 EUR (TEN), tax 6.37 EUR)"
    )
    included = {**data, "totals": {**data["totals"], "discounts": "0.00", "prices_include_tax": True}}  # type: ignore[dict-item]
    entry = entry_for("order", "order-o1", "OrderPlaced", included)
    assert entry is not None and entry.summary.endswith(
        "(subtotal 34.99 EUR, shipping 4.90 EUR, tax 6.37 EUR included)"
    )


def test_cart_choices_and_code_uses_link_their_cart_or_order() -> None:
    shipping = entry_for(
        "cart", "cart-c1", "CartShippingChosen", {"country_code": "US", "region": "CA", "method_code": "std"}
    )
    applied = entry_for("cart", "cart-c1", "CartDiscountCodeApplied", {"code": "TEN"})
    assert shipping is not None and (shipping.kind, shipping.cart_id, shipping.summary) == (
        "CART",
        "c1",
        "Shipping to US (CA) by std",
    )
    assert applied is not None and applied.summary == "Applied discount code TEN"
    released = entry_for(
        "discount_code",
        "discount-code-TEN",
        "DiscountCodeUseReleased",
        {"code": "TEN", "order_id": "o1", "reason": "payment declined", "uses": 0},
    )
    assert released is not None
    assert (released.kind, released.order_id, released.summary) == (
        "ORDER",
        "o1",
        "Discount code TEN given back (payment declined)",
    )
    assert entry_for("discount_code", "discount-code-TEN", "DiscountCodeDefined", {"code": "TEN"}) is None
