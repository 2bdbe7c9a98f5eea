"""One representative instance of every production event type, for codec tests.

Values exercise each field kind the ledger stores: Decimals with trailing zeros,
UTC datetimes with and without microseconds, None, empty and nested tuples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from commands.events import cart, catalog, inventory, money, order
from commands.events.base import Event

AT = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
AT_MICROS = datetime(2026, 11, 22, 10, 30, 5, 123456, tzinfo=UTC)

_LINE = cart.CartLineSnapshot("1", "TEE-S", 2, Decimal("19.90"))
_OTHER_LINE = cart.CartLineSnapshot("2", "MUG", 1, Decimal("8"))
_PRODUCT = catalog.ProductState(
    product_id="p-1",
    handle="tee",
    title="Tee",
    description='Soft "organic" cotton',
    brand=None,
    categories=("apparel", "tees"),
    currency="EUR",
    variants=(
        catalog.ProductVariantState("TEE-S", "Tee, small", Decimal("19.90"), catalog.ACTIVE),
        catalog.ProductVariantState("TEE-M", "Tee, medium", Decimal("21.00"), catalog.WITHDRAWN),
    ),
    created_at=AT,
    updated_at=AT_MICROS,
)
# sku, product_id, on_hand, reserved, available
_STOCK = ("TEE-S", "p-1", 10, 2, 8)
_ORDER_LINE = order.OrderLineData("TEE-S", "Tee, small", 2, Decimal("19.90"), Decimal("39.80"))
_ADDRESS = order.AddressData("Ada Lovelace", "1 Analytical Way", None, "London", "N1 9GU", "GB")

SAMPLES: tuple[Event, ...] = (
    cart.CartCreated("c-1", "EUR", "cust-1", (_LINE,)),
    cart.CartLinesAdded((_LINE, _OTHER_LINE)),
    cart.CartLineQuantitiesChanged((_LINE,), removed_line_ids=("2",)),
    cart.CartLinesRemoved(("1", "2")),
    cart.CartCustomerAttached("cust-1"),
    cart.CartMerged("c-2", "cust-1"),
    cart.CartLinesMergedIn("c-3", (_LINE,), dropped_skus=("MUG",)),
    cart.CartCheckedOut("o-1"),
    cart.CartShippingChosen("US", "CA", "std"),
    cart.CartDiscountCodeApplied("TEN"),
    cart.CartDiscountCodeRemoved("TEN"),
    catalog.ProductCreated(_PRODUCT),
    catalog.ProductUpdated(_PRODUCT, changed=("title", "variants")),
    inventory.InventoryEvent(*_STOCK),
    inventory.StockSet(*_STOCK, previous_on_hand=4),
    inventory.StockAdjusted(*_STOCK, delta=-3, reason=None),
    inventory.StockReserved(*_STOCK, order_id="o-1", quantity=2, expires_at=AT_MICROS),
    inventory.ReservationCommitted(*_STOCK, order_id="o-1", quantity=2),
    inventory.StockReleased(*_STOCK, order_id="o-1", quantity=2, reason="payment declined"),
    inventory.ReservationExpired(*_STOCK, order_id="o-1", quantity=2),
    inventory.StockShipped(*_STOCK, order_id="o-1", quantity=2),
    inventory.StockRebalanced(*_STOCK, previous_on_hand=3),
    order.OrderEvent("o-1"),
    order.OrderPlaced(
        order_id="o-1",
        number="R-1001",
        customer_id=None,
        cart_id="c-1",
        email="ada@example.com",
        currency="EUR",
        lines=(_ORDER_LINE,),
        subtotal=Decimal("39.80"),
        total=Decimal("39.80"),
        shipping_address=_ADDRESS,
        payment_attempt_id="pa-1",
        reservation_expires_at=AT,
    ),
    order.PaymentAuthorized("o-1", "psp-1", Decimal("39.80"), "EUR"),
    order.PaymentDeclined("o-1", "card declined"),
    order.PaymentOutcomeUnknown("o-1", "timeout"),
    order.OrderConfirmed("o-1"),
    order.PaymentCaptured("o-1", "psp-1", Decimal("39.80")),
    order.FulfillmentRequested("o-1"),
    order.OrderShipped("o-1", "TRACK-1"),
    order.OrderDelivered("o-1"),
    order.PaymentVoided("o-1", "psp-1"),
    order.PaymentRefunded("o-1", "psp-1", Decimal("0.10"), None),
    order.OrderCancelled("o-1", "customer request", "customer:cust-1"),
    order.OrderRefunded("o-1", "damaged"),
    order.OrderNeedsAttention("o-1", "capture failed"),
    money.ShippingMethodDefined(
        "standard",
        "Standard",
        "EUR",
        Decimal("4.90"),
        Decimal("50.00"),
        (money.CountryPrice("FR", Decimal("6.90")),),
        ("DE", "FR"),
        True,
    ),
    money.TaxRateSet("DE", None, "reduced", Decimal("0.07")),
    money.TaxPolicySet("EUR", True, "PER_LINE"),
    money.DiscountCodeDefined(
        "TEN", "PERCENTAGE", Decimal("10"), "SUBTOTAL", None, Decimal("20.00"), AT, AT_MICROS, 20, 1, True
    ),
    money.DiscountCodeUseReserved("TEN", "o-1", "cust-1", 3),
    money.DiscountCodeUseCommitted("TEN", "o-1"),
    money.DiscountCodeUseReleased("TEN", "o-1", "payment declined", 2),
)
