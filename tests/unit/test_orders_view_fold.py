"""The order_view fold, pure: every order event type, history, and agreement with the
domain state machine; plus cursors and the access rules of the order queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from commands.domain import order as domain
from commands.events import order as ev
from commands.store.ledger.reader import RecordedEvent
from gateway.edge.auth import Principal
from gateway.edge.errors import GatewayError
from gateway.schema.orders import _listing_owner, can_see, order_key
from projections.orders import OrderRow, fold_row
from queries.orders import InvalidCursor, OrderCursor
from tests.support.orders import happy_path, new_order_id, placed

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def recorded(events: list[ev.OrderEvent], order_id: str, first_position: int = 100) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            position=first_position + i,
            tx_id=1000 + i,
            event_id=uuid.uuid4(),
            stream_type="order",
            stream_id=f"order-{order_id}",
            stream_version=i + 1,
            type=e.event_type(),
            data=e.to_data(),
            metadata={},
            recorded_at=T0 + timedelta(seconds=i),
        )
        for i, e in enumerate(events)
    ]


def fold_all(events: list[ev.OrderEvent], order_id: str) -> OrderRow:
    row: OrderRow | None = None
    for r in recorded(events, order_id):
        row = fold_row(row, r)
    assert row is not None
    return row


def test_order_placed_builds_the_whole_row() -> None:
    oid = new_order_id()
    event = placed(oid, "cust-9", number="CG-1001")
    row = fold_all([event], oid)
    assert (row.order_id, row.number, row.customer_id, row.email, row.cart_id) == (
        oid,
        "CG-1001",
        "cust-9",
        "ada@example.com",
        event.cart_id,
    )
    assert (row.status, row.payment_status, row.payment_amount, row.currency) == (
        "PAYMENT_PENDING",
        "PENDING",
        event.total,
        "USD",
    )
    assert (row.subtotal, row.total, row.provider_reference) == (Decimal("48.48"), Decimal("53.48"), None)
    assert row.lines[0] == {
        "sku": "TEE-S",
        "title": "Tee, small",
        "quantity": 2,
        "unit_price": "19.99",
        "line_total": "39.98",
    }
    assert row.shipping_address["city"] == "London" and row.shipping_address["line2"] is None
    assert row.history == [{"type": "OrderPlaced", "at": T0.isoformat(), "position": 100}]
    assert (row.stream_version, row.created_at, row.updated_at) == (1, T0, T0)


@pytest.mark.parametrize(
    ("tail", "status", "payment", "amount", "reference"),
    [
        ([ev.PaymentOutcomeUnknown("", reason="timeout")], "PAYMENT_PENDING", "UNKNOWN", None, None),
        (
            [
                ev.PaymentDeclined("", reason="card"),
                ev.OrderCancelled("", reason="declined", cancelled_by="system"),
            ],
            "CANCELLED",
            "DECLINED",
            None,
            None,
        ),
        (
            [
                ev.PaymentAuthorized("", provider_reference="p1", amount=Decimal("53.48"), currency="USD"),
                ev.OrderConfirmed(""),
                ev.OrderCancelled("", reason="changed mind", cancelled_by="customer:c"),
                ev.PaymentVoided("", provider_reference="p1"),
            ],
            "CANCELLED",
            "VOIDED",
            Decimal("53.48"),
            "p1",
        ),
        (
            [
                ev.PaymentAuthorized("", provider_reference="p2", amount=Decimal("50"), currency="USD"),
                ev.OrderNeedsAttention("", reason="stock gone"),
            ],
            "NEEDS_ATTENTION",
            "AUTHORIZED",
            Decimal("50"),
            "p2",
        ),
        (
            [
                ev.PaymentAuthorized("", provider_reference="p3", amount=Decimal("53.48"), currency="USD"),
                ev.OrderConfirmed(""),
                ev.FulfillmentRequested(""),
                ev.PaymentCaptured("", provider_reference="p3-cap", amount=Decimal("53.48")),
                ev.OrderShipped("", tracking_number=None),
                ev.PaymentRefunded("", provider_reference="p3-ref", amount=Decimal("53.48"), reason=None),
                ev.OrderRefunded("", reason="damaged"),
            ],
            "REFUNDED",
            "REFUNDED",
            Decimal("53.48"),
            "p3-ref",
        ),
    ],
)
def test_each_event_type_moves_status_payment_and_reference(
    tail: list[ev.OrderEvent], status: str, payment: str, amount: Decimal | None, reference: str | None
) -> None:
    oid = new_order_id()
    start = placed(oid)
    events: list[ev.OrderEvent] = [start, *(msgspec.structs.replace(e, order_id=oid) for e in tail)]
    row = fold_all(events, oid)
    assert (row.status, row.payment_status, row.provider_reference) == (status, payment, reference)
    assert row.payment_amount == (start.total if amount is None else amount)
    assert [h["type"] for h in row.history] == [e.event_type() for e in events]
    assert [h["position"] for h in row.history] == list(range(100, 100 + len(events)))
    assert row.stream_version == len(events)
    assert row.updated_at == T0 + timedelta(seconds=len(events) - 1)
    # The view agrees with the write side's state machine.
    state = domain.fold(events)
    assert state is not None
    assert (state.status.value, state.payment_status.value) == (row.status, row.payment_status)


def test_happy_path_ends_delivered_and_captured() -> None:
    oid = new_order_id()
    start = placed(oid)
    row = fold_all([start, *happy_path(oid, start.total)], oid)
    assert (row.status, row.payment_status, row.provider_reference) == ("DELIVERED", "CAPTURED", "pay_1")


def test_fold_does_not_mutate_the_previous_row() -> None:
    oid = new_order_id()
    events = recorded([placed(oid), ev.OrderConfirmed(oid)], oid)
    first = fold_row(None, events[0])
    second = fold_row(first, events[1])
    assert len(first.history) == 1 and first.status == "PAYMENT_PENDING"
    assert len(second.history) == 2 and second.status == "CONFIRMED"


def test_a_stream_not_starting_with_order_placed_is_an_error() -> None:
    oid = new_order_id()
    with pytest.raises(ValueError, match="before OrderPlaced"):
        fold_row(None, recorded([ev.OrderConfirmed(oid)], oid)[0])
    events = recorded([placed(oid), placed(oid)], oid)
    with pytest.raises(ValueError, match="twice"):
        fold_row(fold_row(None, events[0]), events[1])


def test_cursor_round_trips_and_rejects_foreign_values() -> None:
    cursor = OrderCursor(T0 + timedelta(microseconds=123), new_order_id())
    assert OrderCursor.decode(cursor.encode()) == cursor
    for bad in ["", "abc", "bm90IGpzb24", OrderCursor(T0, "x").encode()[:-3], "WyJ4IiwxLDJd"]:
        with pytest.raises(InvalidCursor):
            OrderCursor.decode(bad)


def test_order_ids_are_uuid_global_ids() -> None:
    oid = new_order_id()
    assert order_key(f"gid://commerce/Order/{oid}") == oid
    assert order_key(f"gid://commerce/Order/{oid.upper()}") == oid
    for bad in [oid, f"gid://commerce/Cart/{oid}", "gid://commerce/Order/nope", "gid://commerce/Order/"]:
        assert order_key(bad) is None


CUSTOMER = Principal("c1", frozenset({"customer"}))
OTHER = Principal("c2", frozenset({"customer"}))
SUPPORT = Principal("s1", frozenset({"support"}))
ADMIN = Principal("a1", frozenset({"admin"}))
NO_ROLE = Principal("x1", frozenset())


def test_listing_rules() -> None:
    assert _listing_owner(CUSTOMER, None) == "c1"
    assert _listing_owner(CUSTOMER, "c1") == "c1"
    assert _listing_owner(SUPPORT, "c2") == "c2"
    assert _listing_owner(ADMIN, "c1") == "c1"
    cases = [
        (Principal(), None, "UNAUTHENTICATED"),
        (Principal(), "c1", "UNAUTHENTICATED"),
        (OTHER, "c1", "FORBIDDEN"),
        (NO_ROLE, None, "FORBIDDEN"),
        (SUPPORT, None, "BAD_USER_INPUT"),
    ]
    for principal, customer_id, code in cases:
        with pytest.raises(GatewayError) as err:
            _listing_owner(principal, customer_id)
        assert err.value.code == code


def test_visibility_rules() -> None:
    oid = new_order_id()
    from queries.orders import to_view

    owned = to_view(_FakeRow(fold_all([placed(oid, "c1")], oid)))
    guest = to_view(_FakeRow(fold_all([placed(oid, None)], oid)))
    assert can_see(CUSTOMER, owned) and can_see(SUPPORT, owned) and can_see(ADMIN, owned)
    assert not can_see(OTHER, owned) and not can_see(Principal(), owned) and not can_see(NO_ROLE, owned)
    assert can_see(SUPPORT, guest) and can_see(ADMIN, guest)
    assert not can_see(CUSTOMER, guest) and not can_see(Principal(), guest)


class _FakeRow:
    """A database row stand-in: attribute access over a folded row (JSON columns as stored)."""

    def __init__(self, row: OrderRow) -> None:
        self.__dict__.update(vars(row))
