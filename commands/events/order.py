"""Order stream events (``order-<uuid>``): the durable commercial record."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from commands.events.base import Event


class OrderLineData(msgspec.Struct, frozen=True):
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class AddressData(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country_code: str
    # State or province, where a tax rate depends on it; absent from older orders.
    region: str | None = None


class TaxLineData(msgspec.Struct, frozen=True):
    rate: Decimal
    base: Decimal
    amount: Decimal


class OrderTotalsData(msgspec.Struct, frozen=True):
    """What the order charges beyond its lines (see ``commands.domain.money``)."""

    subtotal: Decimal
    shipping: Decimal
    discounts: Decimal
    tax: Decimal
    total: Decimal
    tax_lines: tuple[TaxLineData, ...] = ()
    prices_include_tax: bool = False
    shipping_method: str | None = None
    discount_code: str | None = None


class OrderEvent(Event, frozen=True):
    stream_type = "order"
    order_id: str


class OrderPlaced(OrderEvent, frozen=True, omit_defaults=True):
    """``totals`` is absent from orders placed before shipping, tax and discounts (or without any)."""

    number: str
    customer_id: str | None
    cart_id: str
    email: str
    currency: str
    lines: tuple[OrderLineData, ...]
    subtotal: Decimal
    total: Decimal
    shipping_address: AddressData
    payment_attempt_id: str
    reservation_expires_at: datetime | None
    totals: OrderTotalsData | None = None


class PaymentAuthorized(OrderEvent, frozen=True):
    provider_reference: str
    amount: Decimal
    currency: str


class PaymentDeclined(OrderEvent, frozen=True):
    reason: str


class PaymentOutcomeUnknown(OrderEvent, frozen=True):
    reason: str


class OrderConfirmed(OrderEvent, frozen=True):
    pass


class PaymentCaptured(OrderEvent, frozen=True):
    provider_reference: str
    amount: Decimal


class FulfillmentRequested(OrderEvent, frozen=True):
    pass


class OrderShipped(OrderEvent, frozen=True):
    tracking_number: str | None


class OrderDelivered(OrderEvent, frozen=True):
    pass


class PaymentVoided(OrderEvent, frozen=True):
    provider_reference: str


class PaymentRefunded(OrderEvent, frozen=True):
    provider_reference: str
    amount: Decimal
    reason: str | None


class OrderCancelled(OrderEvent, frozen=True):
    reason: str
    cancelled_by: str


class OrderRefunded(OrderEvent, frozen=True):
    reason: str | None


class OrderNeedsAttention(OrderEvent, frozen=True):
    reason: str
