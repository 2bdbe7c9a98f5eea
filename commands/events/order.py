"""Order stream events (``order-<uuid>``): the durable commercial record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from commands.events.base import Event


@dataclass(frozen=True)
class OrderLineData:
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class AddressData:
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country_code: str


@dataclass(frozen=True)
class OrderEvent(Event):
    stream_type = "order"
    order_id: str


@dataclass(frozen=True)
class OrderPlaced(OrderEvent):
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


@dataclass(frozen=True)
class PaymentAuthorized(OrderEvent):
    provider_reference: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class PaymentDeclined(OrderEvent):
    reason: str


@dataclass(frozen=True)
class PaymentOutcomeUnknown(OrderEvent):
    reason: str


@dataclass(frozen=True)
class OrderConfirmed(OrderEvent):
    pass


@dataclass(frozen=True)
class PaymentCaptured(OrderEvent):
    provider_reference: str
    amount: Decimal


@dataclass(frozen=True)
class FulfillmentRequested(OrderEvent):
    pass


@dataclass(frozen=True)
class OrderShipped(OrderEvent):
    tracking_number: str | None


@dataclass(frozen=True)
class OrderDelivered(OrderEvent):
    pass


@dataclass(frozen=True)
class PaymentVoided(OrderEvent):
    provider_reference: str


@dataclass(frozen=True)
class PaymentRefunded(OrderEvent):
    provider_reference: str
    amount: Decimal
    reason: str | None


@dataclass(frozen=True)
class OrderCancelled(OrderEvent):
    reason: str
    cancelled_by: str


@dataclass(frozen=True)
class OrderRefunded(OrderEvent):
    reason: str | None


@dataclass(frozen=True)
class OrderNeedsAttention(OrderEvent):
    reason: str
