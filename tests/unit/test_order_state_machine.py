"""The order state machine: every legal and illegal transition, and idempotent payment outcomes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import msgspec
import pytest

from commands.domain import order as domain
from commands.domain.order import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    Order,
    OrderStatus,
    PaymentStatus,
)
from commands.errors import InvalidStateTransition
from commands.events import order as ev

OID = "00000000-0000-0000-0000-000000000001"
REF = "pay_1"
TOTAL = Decimal("30.00")
S, P = OrderStatus, PaymentStatus


def placed() -> ev.OrderPlaced:
    return ev.OrderPlaced(
        order_id=OID,
        number="100001",
        customer_id="cust-1",
        cart_id="cart-1",
        email="a@example.com",
        currency="EUR",
        lines=(ev.OrderLineData("SKU-1", "Mug", 2, Decimal("15.00"), TOTAL),),
        subtotal=TOTAL,
        total=TOTAL,
        shipping_address=ev.AddressData("A", "1 Road", None, "Town", "1000", "DE"),
        payment_attempt_id="att-1",
        reservation_expires_at=None,
    )


AUTHORIZED = [ev.PaymentAuthorized(OID, REF, TOTAL, "EUR"), ev.OrderConfirmed(OID)]
CAPTURED = [*AUTHORIZED, ev.PaymentCaptured(OID, REF, TOTAL), ev.FulfillmentRequested(OID)]
SHIPPED = [*CAPTURED, ev.OrderShipped(OID, "TRACK")]
DELIVERED = [*SHIPPED, ev.OrderDelivered(OID)]
HISTORIES: dict[OrderStatus, list[ev.OrderEvent]] = {
    S.PAYMENT_PENDING: [],
    S.CONFIRMED: AUTHORIZED,
    S.FULFILLMENT_REQUESTED: CAPTURED,
    S.SHIPPED: SHIPPED,
    S.DELIVERED: DELIVERED,
    S.CANCELLED: [ev.PaymentDeclined(OID, "card_declined"), ev.OrderCancelled(OID, "declined", "payment")],
    S.REFUNDED: [*DELIVERED, ev.PaymentRefunded(OID, REF, TOTAL, None), ev.OrderRefunded(OID, None)],
    S.NEEDS_ATTENTION: [*AUTHORIZED, ev.OrderNeedsAttention(OID, "void failed")],
}


def order_in(status: OrderStatus) -> Order:
    order = domain.fold([placed(), *HISTORIES[status]])
    assert order is not None and order.status is status
    return order


ALL_PAIRS = [(a, b) for a in OrderStatus for b in OrderStatus]


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_order_transition_table_is_enforced(current: OrderStatus, target: OrderStatus) -> None:
    order = order_in(current)
    if target in ORDER_TRANSITIONS[current]:
        order.require(target)
    else:
        with pytest.raises(InvalidStateTransition):
            order.require(target)


@pytest.mark.parametrize(("current", "target"), [(a, b) for a in PaymentStatus for b in PaymentStatus])
def test_payment_transition_table_is_enforced(current: PaymentStatus, target: PaymentStatus) -> None:
    order = replace(order_in(S.PAYMENT_PENDING), payment_status=current)
    if target in PAYMENT_TRANSITIONS[current]:
        order.require_payment(target)
    else:
        with pytest.raises(InvalidStateTransition):
            order.require_payment(target)


def _admin_cancel(order: Order) -> object:
    return domain.cancel(order, "r", "admin:1", by_customer=False)


def _customer_cancel(order: Order) -> object:
    return domain.cancel(order, "r", "customer:1", by_customer=True)


COMMANDS: dict[str, tuple[Callable[[Order], object], set[OrderStatus]]] = {
    "admin cancel": (
        _admin_cancel,
        {S.PAYMENT_PENDING, S.CONFIRMED, S.FULFILLMENT_REQUESTED, S.NEEDS_ATTENTION},
    ),
    "customer cancel": (_customer_cancel, {S.PAYMENT_PENDING, S.CONFIRMED}),
    "request fulfillment": (domain.check_request_fulfillment, {S.CONFIRMED}),
    "ship": (lambda o: domain.ship(o, None), {S.FULFILLMENT_REQUESTED}),
    "deliver": (domain.deliver, {S.SHIPPED}),
    # NEEDS_ATTENTION may become REFUNDED, but only once money was captured (here it was only authorized).
    "refund": (domain.check_refund, {S.SHIPPED, S.DELIVERED}),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_illegal_command_is_rejected(command: str, status: OrderStatus) -> None:
    decide, legal = COMMANDS[command]
    order = order_in(status)
    if status in legal:
        decide(order)
    else:
        with pytest.raises(InvalidStateTransition):
            decide(order)


def test_refund_of_needs_attention_order_with_captured_money_is_allowed() -> None:
    order = domain.evolve(order_in(S.FULFILLMENT_REQUESTED), [ev.OrderNeedsAttention(OID, "x")])
    domain.check_refund(order)


def test_authorization_outcome_is_applied_once() -> None:
    order = order_in(S.PAYMENT_PENDING)
    first = domain.payment_authorized(order, REF, TOTAL, "EUR")
    assert [type(e) for e in first] == [ev.PaymentAuthorized]
    after = domain.evolve(order, first)
    assert domain.payment_authorized(after, REF, TOTAL, "EUR") == []
    assert domain.payment_declined(after, "late") == []  # a regression after success changes nothing
    assert [type(e) for e in domain.confirm(after)] == [ev.OrderConfirmed]


def test_unknown_then_late_outcomes() -> None:
    order = order_in(S.PAYMENT_PENDING)
    unknown = domain.evolve(order, domain.payment_unknown(order, "timeout"))
    assert unknown.payment_status is P.UNKNOWN
    assert domain.payment_unknown(unknown, "timeout again") == []
    declined = domain.payment_declined(unknown, "card_declined")
    assert [type(e) for e in declined] == [ev.PaymentDeclined, ev.OrderCancelled]
    assert [type(e) for e in domain.payment_authorized(unknown, REF, TOTAL, "EUR")] == [ev.PaymentAuthorized]


def test_late_success_after_stock_is_lost_cancels_then_voids() -> None:
    order = order_in(S.PAYMENT_PENDING)
    authorized = domain.evolve(order, domain.payment_authorized(order, REF, TOTAL, "EUR"))
    cancelled = domain.evolve(authorized, domain.stock_lost(authorized))
    assert cancelled.status is S.CANCELLED
    assert domain.compensation_due(cancelled) == "void"
    voided = domain.evolve(cancelled, domain.payment_voided(cancelled, REF))
    assert voided.payment_status is P.VOIDED and domain.compensation_due(voided) is None


def test_failed_void_of_cancelled_order_needs_attention() -> None:
    order = order_in(S.CONFIRMED)
    cancelled = domain.evolve(order, [domain.cancel(order, "changed mind", "customer:1", by_customer=True)])
    events = domain.payment_failed(cancelled, "void", "void_failed")
    assert [type(e) for e in events] == [ev.OrderNeedsAttention]
    flagged = domain.evolve(cancelled, events)
    assert domain.payment_failed(flagged, "void", "again") == []


def test_capture_requests_fulfillment_and_refund_depends_on_status() -> None:
    confirmed = order_in(S.CONFIRMED)
    captured = domain.payment_captured(confirmed, REF, TOTAL)
    assert [type(e) for e in captured] == [ev.PaymentCaptured, ev.FulfillmentRequested]
    delivered = order_in(S.DELIVERED)
    assert [type(e) for e in domain.payment_refunded(delivered, REF, TOTAL, "broken")] == [
        ev.PaymentRefunded,
        ev.OrderRefunded,
    ]
    in_fulfillment = order_in(S.FULFILLMENT_REQUESTED)
    cancelled = domain.evolve(in_fulfillment, [_admin_cancel_event(in_fulfillment)])
    assert domain.compensation_due(cancelled) == "refund"
    assert [type(e) for e in domain.payment_refunded(cancelled, REF, TOTAL, None)] == [ev.PaymentRefunded]


def _admin_cancel_event(order: Order) -> ev.OrderCancelled:
    return domain.cancel(order, "r", "admin:1", by_customer=False)


def test_an_order_knows_the_discount_code_it_placed_with() -> None:
    plain = domain.fold([placed()])
    assert plain is not None and plain.discount_code is None
    totals = ev.OrderTotalsData(
        subtotal=TOTAL,
        shipping=Decimal("0"),
        discounts=Decimal("3.00"),
        tax=Decimal("0"),
        total=TOTAL - Decimal("3.00"),
        discount_code="SAVE10",
    )
    discounted = domain.fold([msgspec.structs.replace(placed(), totals=totals), *AUTHORIZED])
    assert discounted is not None and discounted.discount_code == "SAVE10"
    assert discounted.status is S.CONFIRMED
