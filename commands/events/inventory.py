"""Inventory stream events (``inventory-<sku>``).

Every event carries the SKU's numbers *after* the change (on_hand, reserved,
available), so a reader can take the latest event of a stream as the level
without folding deltas; the rest of each event says what happened.
"""

from __future__ import annotations

from datetime import datetime

from commands.events.base import Event


class InventoryEvent(Event, frozen=True):
    stream_type = "inventory"
    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    available: int


class StockSet(InventoryEvent, frozen=True):
    previous_on_hand: int


class StockAdjusted(InventoryEvent, frozen=True):
    delta: int
    reason: str | None


class StockReserved(InventoryEvent, frozen=True):
    order_id: str
    quantity: int
    expires_at: datetime | None


class ReservationCommitted(InventoryEvent, frozen=True):
    """No longer appended: a reservation is committed by the order's confirmation (the order
    stream's events, in the same transaction). It changed no number, and appending it to the
    SKU's stream took the SKU's row lock a second time per purchase. Ledgers that hold it
    still decode and fold."""

    order_id: str
    quantity: int


class StockReleased(InventoryEvent, frozen=True):
    order_id: str
    quantity: int
    reason: str


class ReservationExpired(InventoryEvent, frozen=True):
    order_id: str
    quantity: int


class StockShipped(InventoryEvent, frozen=True):
    order_id: str
    quantity: int


INVENTORY_EVENT_TYPES: frozenset[str] = frozenset(
    cls.__name__
    for cls in (
        StockSet,
        StockAdjusted,
        StockReserved,
        ReservationCommitted,
        StockReleased,
        ReservationExpired,
        StockShipped,
    )
)
