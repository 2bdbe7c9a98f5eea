"""Order event builders: pure values, no store involved (unit tests use them too)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from commands.events import order as ev

ADDRESS = ev.AddressData("Ada Lovelace", "1 Analytical Way", None, "London", "N1 9GU", "GB")


def new_order_id() -> str:
    return str(uuid.uuid4())


def placed(
    order_id: str, customer_id: str | None = "cust-1", *, number: str | None = None, quantity: int = 2
) -> ev.OrderPlaced:
    unit = Decimal("19.99")
    line = ev.OrderLineData("TEE-S", "Tee, small", quantity, unit, unit * quantity)
    mug = ev.OrderLineData("MUG", "Mug", 1, Decimal("8.50"), Decimal("8.50"))
    subtotal = line.line_total + mug.line_total
    return ev.OrderPlaced(
        order_id=order_id,
        number=number or f"CG-{order_id[:8].upper()}",
        customer_id=customer_id,
        cart_id=f"cart-{order_id[:8]}",
        email="ada@example.com",
        currency="USD",
        lines=(line, mug),
        subtotal=subtotal,
        total=subtotal + Decimal("5.00"),
        shipping_address=ADDRESS,
        payment_attempt_id=f"pa-{order_id[:8]}",
        reservation_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def happy_path(order_id: str, total: Decimal) -> list[ev.OrderEvent]:
    """Every event of an order that is paid, fulfilled and delivered."""
    return [
        ev.PaymentOutcomeUnknown(order_id, reason="timeout"),
        ev.PaymentAuthorized(order_id, provider_reference="pay_1", amount=total, currency="USD"),
        ev.OrderConfirmed(order_id),
        ev.FulfillmentRequested(order_id),
        ev.PaymentCaptured(order_id, provider_reference="pay_1", amount=total),
        ev.OrderShipped(order_id, tracking_number="TRK-1"),
        ev.OrderDelivered(order_id),
    ]
