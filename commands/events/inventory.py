"""Inventory stream events (``inventory-<sku>``).

Every event carries the SKU's numbers *after* the change (on_hand, reserved,
available), so a reader can take the latest event of a stream as the level
without folding deltas; the rest of each event says what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from commands.events.base import Event


@dataclass(frozen=True)
class InventoryEvent(Event):
    stream_type = "inventory"
    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    available: int


@dataclass(frozen=True)
class StockSet(InventoryEvent):
    previous_on_hand: int


@dataclass(frozen=True)
class StockAdjusted(InventoryEvent):
    delta: int
    reason: str | None


@dataclass(frozen=True)
class StockReserved(InventoryEvent):
    order_id: str
    quantity: int
    expires_at: datetime | None


@dataclass(frozen=True)
class ReservationCommitted(InventoryEvent):
    order_id: str
    quantity: int


@dataclass(frozen=True)
class StockReleased(InventoryEvent):
    order_id: str
    quantity: int
    reason: str


@dataclass(frozen=True)
class ReservationExpired(InventoryEvent):
    order_id: str
    quantity: int


@dataclass(frozen=True)
class StockShipped(InventoryEvent):
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
