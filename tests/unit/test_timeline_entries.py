"""Timeline entries: kinds, links and summaries a support agent can read."""

from __future__ import annotations

from projections.timeline.entries import entry_for, money


def test_payment_summary_reads_like_a_sentence() -> None:
    entry = entry_for(
        "order",
        "order-o1",
        "PaymentAuthorized",
        {"order_id": "o1", "provider_reference": "pay_8f2c", "amount": "59.8", "currency": "USD"},
    )
    assert entry is not None
    assert (entry.kind, entry.order_id, entry.summary) == (
        "PAYMENT",
        "o1",
        "Paid 59.80 USD by card, ref pay_8f2c",
    )


def test_order_placed_names_the_customer_cart_and_total() -> None:
    entry = entry_for(
        "order",
        "order-o2",
        "OrderPlaced",
        {
            "order_id": "o2",
            "number": "100042",
            "customer_id": "cust-1",
            "cart_id": "c9",
            "currency": "EUR",
            "total": "10",
            "lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}],
        },
    )
    assert entry is not None
    assert entry.summary == "Placed order #100042: 3 item(s), 10.00 EUR"
    assert (entry.kind, entry.customer_id, entry.cart_id, entry.order_id) == ("ORDER", "cust-1", "c9", "o2")


def test_cart_events_link_the_cart_and_say_what_changed() -> None:
    created = entry_for(
        "cart", "cart-abc", "CartCreated", {"cart_id": "abc", "currency_code": "USD", "lines": []}
    )
    added = entry_for("cart", "cart-abc", "CartLinesAdded", {"lines": [{"sku": "TEE-M", "quantity": 2}]})
    attached = entry_for("cart", "cart-abc", "CartCustomerAttached", {"customer_id": "cust-3"})
    assert created is not None and created.cart_id == "abc" and created.kind == "CART"
    assert added is not None and added.summary == "Cart now has 2 x TEE-M" and added.cart_id == "abc"
    assert attached is not None and attached.customer_id == "cust-3"


def test_fulfillment_cancellation_and_expiry() -> None:
    shipped = entry_for("order", "order-o3", "OrderShipped", {"order_id": "o3", "tracking_number": "1Z99"})
    cancelled = entry_for(
        "order",
        "order-o3",
        "OrderCancelled",
        {"order_id": "o3", "reason": "payment declined", "cancelled_by": "system"},
    )
    expired = entry_for("inventory", "inventory-TEE", "ReservationExpired", {"order_id": "o3", "sku": "TEE"})
    assert shipped is not None and (shipped.kind, shipped.summary) == (
        "FULFILLMENT",
        "Shipped, tracking 1Z99",
    )
    assert cancelled is not None and cancelled.summary == "Order cancelled by system: payment declined"
    assert expired is not None and expired.kind == "INVENTORY" and expired.order_id == "o3"


def test_catalog_and_stock_counts_are_not_customer_events() -> None:
    assert entry_for("product", "product-1", "ProductCreated", {}) is None
    assert entry_for("inventory", "inventory-X", "StockSet", {"sku": "X"}) is None


def test_money_formatting_respects_currency_decimals() -> None:
    assert money("1200", "JPY") == "1200 JPY"
    assert money("3.5", "USD") == "3.50 USD"
