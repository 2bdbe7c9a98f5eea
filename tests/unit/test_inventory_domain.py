"""Pure inventory rules: admin changes, reservation lines, events and the fold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commands.domain import inventory as domain
from commands.domain.inventory import OutOfStock, ReservationLine, StockLevel
from commands.errors import InvalidInput
from commands.events.base import decode_event
from commands.events.inventory import (
    INVENTORY_EVENT_TYPES,
    ReservationExpired,
    StockAdjusted,
    StockReserved,
    StockSet,
)
from commands.inventory import reservations
from commands.messages.inventory import AdjustStock, SetStock, StockResult

LEVEL = StockLevel("SKU-1", on_hand=10, reserved=4)


def test_set_never_below_reserved() -> None:
    assert domain.decide_set(LEVEL, 4) == 4
    assert domain.decide_set(LEVEL, 25) == 25
    with pytest.raises(InvalidInput, match="below the 4 units reserved") as caught:
        domain.decide_set(LEVEL, 3)
    assert caught.value.field == ["onHand"]
    with pytest.raises(InvalidInput):
        domain.decide_set(StockLevel("SKU-1", 0, 0), -1)
    with pytest.raises(InvalidInput):
        domain.decide_set(LEVEL, domain.MAX_ON_HAND + 1)


@pytest.mark.parametrize(
    ("delta", "reason", "field"),
    [
        (0, None, ["delta"]),
        (domain.MAX_DELTA + 1, None, ["delta"]),
        (-domain.MAX_DELTA - 1, None, ["delta"]),
        (-7, None, ["delta"]),
        (1, "x" * (domain.MAX_REASON_LENGTH + 1), ["reason"]),
    ],
)
def test_adjust_refusals(delta: int, reason: str | None, field: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        domain.decide_adjust(LEVEL, delta, reason)
    assert caught.value.field == field


def test_adjust_within_bounds() -> None:
    assert domain.decide_adjust(LEVEL, -6, "damaged") == 4
    assert domain.decide_adjust(LEVEL, 5, None) == 15
    with pytest.raises(InvalidInput):
        domain.decide_adjust(StockLevel("S", domain.MAX_ON_HAND, 0), 1, None)


def test_sku_validation() -> None:
    domain.validate_sku("A" * domain.MAX_SKU_LENGTH)
    for bad in ("", " A", "A" * (domain.MAX_SKU_LENGTH + 1)):
        with pytest.raises(InvalidInput):
            domain.validate_sku(bad)


def test_lines_merge_per_sku_in_sku_order() -> None:
    lines = [ReservationLine("B", 1), ReservationLine("A", 2), ReservationLine("B", 3)]
    assert domain.merge_lines(lines) == [("A", 2), ("B", 4)]
    with pytest.raises(InvalidInput):
        domain.merge_lines([ReservationLine("A", 0)])
    with pytest.raises(InvalidInput):
        domain.merge_lines([ReservationLine("A", -1)])


def test_out_of_stock_names_every_sku_once() -> None:
    error = OutOfStock(["B", "A", "B"])
    assert error.code == "OUT_OF_STOCK"
    assert error.skus == ["A", "B"]
    assert error.message == "not enough stock for: A, B"
    # With what is left of each, when known.
    told = OutOfStock(["B", "A"], ["cartId"], {"A": 2})
    assert told.message == "not enough stock for: A (2 available), B" and told.available == {"A": 2}


def test_events_round_trip_and_fold_takes_the_latest_numbers() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    events = [
        StockSet("S", "p1", on_hand=5, reserved=0, available=5, previous_on_hand=0),
        StockReserved(
            "S", "p1", on_hand=5, reserved=2, available=3, order_id="o1", quantity=2, expires_at=at
        ),
        StockAdjusted("T", None, on_hand=1, reserved=0, available=1, delta=1, reason=None),
        ReservationExpired("S", "p1", on_hand=5, reserved=0, available=5, order_id="o1", quantity=2),
    ]
    for event in events:
        assert decode_event(event.event_type(), event.to_data()) == event
        assert event.event_type() in INVENTORY_EVENT_TYPES
        assert event.stream_type == "inventory"
    assert domain.fold((f"inventory-{e.sku}", e) for e in events) == {
        "S": StockLevel("S", 5, 0),
        "T": StockLevel("T", 1, 0),
    }


def test_request_hash_inputs_and_stored_responses() -> None:
    assert SetStock("S", 3).idempotency_request() == {"sku": "S", "on_hand": 3}
    assert AdjustStock("S", -1, "r").idempotency_request() == {"sku": "S", "delta": -1, "reason": "r"}
    result = StockResult("S", 5, 2, 3, 42)
    replayed = StockResult.from_response(result.to_json())
    assert replayed.replayed and replayed == StockResult("S", 5, 2, 3, 42, replayed=True)


def test_a_line_the_stock_read_found_short_is_refused_before_the_rows() -> None:
    lease_end = datetime(2026, 1, 2, tzinfo=UTC)
    lines = [ReservationLine("HOT", 2), ReservationLine("TEE", 1), ReservationLine("FREE", 5)]
    # HOT in three buckets (1 + 0 + 0 free), TEE in one row with 4 free; FREE is not tracked.
    pending = reservations.prepare_new(
        "order-1",
        lines,
        lease_end=lease_end,
        tracked=["HOT", "HOT", "HOT", "TEE"],
        tracked_free=[1, 0, -1, 4],
    )
    assert pending.lines == (("HOT", 2), ("TEE", 1)) and pending.buckets == {"HOT": 3}
    assert pending.free == {"HOT": 1, "TEE": 4}
    assert reservations.short_when_read(pending) == {"HOT": 1}
    # Without the free units read, the rows decide.
    unread = reservations.prepare_new("order-2", lines, lease_end=lease_end, tracked=["HOT", "TEE"])
    assert reservations.short_when_read(unread) == {}
