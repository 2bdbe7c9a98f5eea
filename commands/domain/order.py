"""The order state machine: a pure fold of the order stream plus an explicit transition table.

Order and payment status move only along the edges below; anything else is
INVALID_STATE_TRANSITION and appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from commands.domain.records import evolved
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
    # Money still held for a cancelled order (the void or refund failed) needs a person.
    S.CANCELLED: frozenset({S.NEEDS_ATTENTION}),
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
    # Who cancelled it: "payment" (declined), "system" (stock lost), or the actor who asked.
    cancelled_by: str | None = None
    # The discount code the order used (it holds one of the code's uses), if any.
    discount_code: str | None = None

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
                f"payment of order {self.number} is {self.payment_status.value} "
                f"and cannot become {target.value}"
            )


def stream_id(order_id: str) -> str:
    """The order's ledger stream; also the key of the order's lock (``checkout.effects.lock_order``)."""
    return f"order-{order_id}"


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
            discount_code=None if event.totals is None else event.totals.discount_code,
        )
    if order is None:
        raise ValueError(f"{type(event).__name__} before OrderPlaced")
    # One copy per event (see commands.domain.records).
    changes: dict[str, Any]
    match event:
        case ev.PaymentAuthorized():
            changes = {"payment_status": P.AUTHORIZED, "provider_reference": event.provider_reference}
        case ev.PaymentDeclined():
            changes = {"payment_status": P.DECLINED}
        case ev.PaymentOutcomeUnknown():
            changes = {"payment_status": P.UNKNOWN}
        case ev.OrderConfirmed():
            changes = {"status": S.CONFIRMED}
        case ev.PaymentCaptured():
            changes = {"payment_status": P.CAPTURED}
        case ev.FulfillmentRequested():
            changes = {"status": S.FULFILLMENT_REQUESTED}
        case ev.OrderShipped():
            changes = {"status": S.SHIPPED}
        case ev.OrderDelivered():
            changes = {"status": S.DELIVERED}
        case ev.PaymentVoided():
            changes = {"payment_status": P.VOIDED}
        case ev.PaymentRefunded():
            changes = {"payment_status": P.REFUNDED}
        case ev.OrderCancelled():
            changes = {"status": S.CANCELLED, "cancelled_by": event.cancelled_by}
        case ev.OrderRefunded():
            changes = {"status": S.REFUNDED}
        case ev.OrderNeedsAttention():
            changes = {"status": S.NEEDS_ATTENTION}
        case _:
            raise ValueError(f"unknown order event {type(event).__name__}")
    return evolved(order, version=order.version + 1, **changes)


# ---------------------------------------------------------------- decisions
#
# Payment outcomes may arrive more than once and in any order (the provider's
# answer, its webhook, reconciliation). Each ``payment_*`` decision is therefore
# idempotent: it returns the events the outcome still implies for the order as
# it stands, and nothing when the order has moved past it.

UNSETTLED = frozenset({P.PENDING, P.UNKNOWN})
CUSTOMER_CANCELLABLE = frozenset({S.PAYMENT_PENDING, S.CONFIRMED})


def evolve(order: Order, events: Iterable[ev.OrderEvent]) -> Order:
    for event in events:
        order = apply(order, event)
    return order


def payment_unknown(order: Order, reason: str) -> list[ev.OrderEvent]:
    if order.payment_status is not P.PENDING:
        return []
    return [ev.PaymentOutcomeUnknown(order.order_id, reason)]


def payment_authorized(order: Order, reference: str, amount: Decimal, currency: str) -> list[ev.OrderEvent]:
    if order.payment_status not in UNSETTLED:
        return []
    return [ev.PaymentAuthorized(order.order_id, reference, amount, currency)]


def confirm(order: Order) -> list[ev.OrderEvent]:
    """After authorization, with the order's stock held."""
    if order.status is S.PAYMENT_PENDING and order.payment_status is P.AUTHORIZED:
        return [ev.OrderConfirmed(order.order_id)]
    return []


def stock_lost(order: Order) -> list[ev.OrderEvent]:
    """Authorized too late: the lease ran out and the stock went to someone else."""
    if order.status is not S.PAYMENT_PENDING:
        return []
    return [ev.OrderCancelled(order.order_id, "stock ran out before the payment was confirmed", "system")]


def payment_declined(order: Order, reason: str) -> list[ev.OrderEvent]:
    if order.payment_status not in UNSETTLED:
        return []
    events: list[ev.OrderEvent] = [ev.PaymentDeclined(order.order_id, reason)]
    if order.status is S.PAYMENT_PENDING:
        events.append(ev.OrderCancelled(order.order_id, f"payment declined ({reason})", "payment"))
    return events


def payment_captured(order: Order, reference: str, amount: Decimal) -> list[ev.OrderEvent]:
    if order.payment_status is not P.AUTHORIZED:
        return []
    captured = [ev.PaymentCaptured(order.order_id, reference, amount)]
    return [*captured, *fulfillment(evolve(order, captured))]


def fulfillment(order: Order) -> list[ev.OrderEvent]:
    """Fulfillment is requested once the money is captured."""
    if order.status is S.CONFIRMED and order.payment_status is P.CAPTURED:
        return [ev.FulfillmentRequested(order.order_id)]
    return []


def payment_voided(order: Order, reference: str) -> list[ev.OrderEvent]:
    if order.payment_status is not P.AUTHORIZED:
        return []
    return [ev.PaymentVoided(order.order_id, reference)]


def payment_refunded(
    order: Order, reference: str, amount: Decimal, reason: str | None
) -> list[ev.OrderEvent]:
    if order.payment_status is not P.CAPTURED:
        return []
    refunded = [ev.PaymentRefunded(order.order_id, reference, amount, reason)]
    return [*refunded, *refund_order(evolve(order, refunded), reason)]


def refund_order(order: Order, reason: str | None) -> list[ev.OrderEvent]:
    """A cancelled order keeps its status when its money goes back; a sold one becomes REFUNDED."""
    if order.payment_status is P.REFUNDED and order.can_become(S.REFUNDED):
        return [ev.OrderRefunded(order.order_id, reason)]
    return []


def payment_failed(order: Order, operation: str, reason: str) -> list[ev.OrderEvent]:
    """The provider refused a capture, void or refund: nothing moved, and someone has to look."""
    return needs_attention(order, f"{operation} failed: {reason}")


def needs_attention(order: Order, reason: str) -> list[ev.OrderEvent]:
    if order.status is S.NEEDS_ATTENTION or not order.can_become(S.NEEDS_ATTENTION):
        return []
    return [ev.OrderNeedsAttention(order.order_id, reason)]


def compensation_due(order: Order) -> str | None:
    """The payment operation that gives a cancelled order's money back, if any is still due."""
    if order.status is not S.CANCELLED:
        return None
    return {P.AUTHORIZED: "void", P.CAPTURED: "refund"}.get(order.payment_status)


# ---------------------------------------------------------------- commands


def cancel(order: Order, reason: str, cancelled_by: str, *, by_customer: bool) -> ev.OrderCancelled:
    if by_customer and order.status not in CUSTOMER_CANCELLABLE:
        raise InvalidStateTransition(
            f"order {order.number} is {order.status.value}; "
            "only an order not yet in fulfillment can be cancelled by its customer"
        )
    order.require(S.CANCELLED)
    return ev.OrderCancelled(order.order_id, reason, cancelled_by)


def check_request_fulfillment(order: Order) -> None:
    order.require(S.FULFILLMENT_REQUESTED)
    if order.payment_status not in {P.AUTHORIZED, P.CAPTURED}:
        raise InvalidStateTransition(
            f"payment of order {order.number} is {order.payment_status.value}; nothing to capture"
        )


def ship(order: Order, tracking_number: str | None) -> ev.OrderShipped:
    order.require(S.SHIPPED)
    return ev.OrderShipped(order.order_id, tracking_number)


def deliver(order: Order) -> ev.OrderDelivered:
    order.require(S.DELIVERED)
    return ev.OrderDelivered(order.order_id)


def check_refund(order: Order) -> None:
    order.require(S.REFUNDED)
    if order.payment_status not in {P.CAPTURED, P.REFUNDED}:
        raise InvalidStateTransition(
            f"payment of order {order.number} is {order.payment_status.value}; "
            "only captured money can be refunded"
        )
