"""The order state machine: a pure fold of the order stream plus an explicit transition table.

Order and payment status move only along the edges below; anything else is
INVALID_STATE_TRANSITION and appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from commands.errors import InvalidStateTransition
from commands.events import order as ev


class OrderStatus(StrEnum):
    PAYMENT_PENDING = "PAYMENT_PENDING"
    CONFIRMED = "CONFIRMED"
    FULFILLMENT_REQUESTED = "FULFILLMENT_REQUESTED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    UNKNOWN = "UNKNOWN"


S = OrderStatus
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PAYMENT_PENDING: frozenset({S.CONFIRMED, S.CANCELLED, S.NEEDS_ATTENTION}),
    S.CONFIRMED: frozenset({S.FULFILLMENT_REQUESTED, S.CANCELLED, S.NEEDS_ATTENTION}),
    S.FULFILLMENT_REQUESTED: frozenset({S.SHIPPED, S.CANCELLED, S.NEEDS_ATTENTION}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.NEEDS_ATTENTION: frozenset({S.CONFIRMED, S.CANCELLED, S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

P = PaymentStatus
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.AUTHORIZED, P.DECLINED, P.UNKNOWN}),
    P.UNKNOWN: frozenset({P.AUTHORIZED, P.DECLINED}),
    P.AUTHORIZED: frozenset({P.CAPTURED, P.VOIDED}),
    P.CAPTURED: frozenset({P.REFUNDED}),
    P.DECLINED: frozenset(),
    P.VOIDED: frozenset(),
    P.REFUNDED: frozenset(),
}


@dataclass(frozen=True)
class Order:
    order_id: str
    number: str
    customer_id: str | None
    cart_id: str
    currency: str
    total: Decimal
    status: OrderStatus
    payment_status: PaymentStatus
    provider_reference: str | None
    payment_attempt_id: str
    lines: tuple[ev.OrderLineData, ...]
    version: int

    def can_become(self, target: OrderStatus) -> bool:
        return target in ORDER_TRANSITIONS[self.status]

    def require(self, target: OrderStatus) -> None:
        if not self.can_become(target):
            raise InvalidStateTransition(
                f"order {self.number} is {self.status.value} and cannot become {target.value}"
            )

    def require_payment(self, target: PaymentStatus) -> None:
        if target not in PAYMENT_TRANSITIONS[self.payment_status]:
            raise InvalidStateTransition(
                f"payment of order {self.number} is {self.payment_status.value} and cannot become {target.value}"
            )


def fold(events: Iterable[ev.OrderEvent]) -> Order | None:
    order: Order | None = None
    for event in events:
        order = apply(order, event)
    return order


def apply(order: Order | None, event: ev.OrderEvent) -> Order:
    if isinstance(event, ev.OrderPlaced):
        return Order(
            order_id=event.order_id,
            number=event.number,
            customer_id=event.customer_id,
            cart_id=event.cart_id,
            currency=event.currency,
            total=event.total,
            status=OrderStatus.PAYMENT_PENDING,
            payment_status=PaymentStatus.PENDING,
            provider_reference=None,
            payment_attempt_id=event.payment_attempt_id,
            lines=event.lines,
            version=1,
        )
    if order is None:
        raise ValueError(f"{type(event).__name__} before OrderPlaced")
    bumped = replace(order, version=order.version + 1)
    match event:
        case ev.PaymentAuthorized():
            return replace(bumped, payment_status=P.AUTHORIZED, provider_reference=event.provider_reference)
        case ev.PaymentDeclined():
            return replace(bumped, payment_status=P.DECLINED)
        case ev.PaymentOutcomeUnknown():
            return replace(bumped, payment_status=P.UNKNOWN)
        case ev.OrderConfirmed():
            return replace(bumped, status=S.CONFIRMED)
        case ev.PaymentCaptured():
            return replace(bumped, payment_status=P.CAPTURED)
        case ev.FulfillmentRequested():
            return replace(bumped, status=S.FULFILLMENT_REQUESTED)
        case ev.OrderShipped():
            return replace(bumped, status=S.SHIPPED)
        case ev.OrderDelivered():
            return replace(bumped, status=S.DELIVERED)
        case ev.PaymentVoided():
            return replace(bumped, payment_status=P.VOIDED)
        case ev.PaymentRefunded():
            return replace(bumped, payment_status=P.REFUNDED)
        case ev.OrderCancelled():
            return replace(bumped, status=S.CANCELLED)
        case ev.OrderRefunded():
            return replace(bumped, status=S.REFUNDED)
        case ev.OrderNeedsAttention():
            return replace(bumped, status=S.NEEDS_ATTENTION)
    raise ValueError(f"unknown order event {type(event).__name__}")
