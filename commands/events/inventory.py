"""Inventory stream events (``inventory-<sku>``, and ``inventory-<sku>~<b>`` per stock bucket).

Every event carries its stream's numbers *after* the change (on_hand, reserved,
available), so a reader can take the latest event of a stream as the level
without folding deltas; the rest of each event says what happened.

A SKU flagged hot keeps its stock in several rows (buckets, ``docs/scaling.md`` section 8),
each with its own stream so that buyers of different buckets never meet on one version
counter: bucket 0 is the SKU's own stream, bucket ``b`` is ``inventory-<sku>~<b>``. An event's
numbers are then its bucket's, and the SKU's level is the sum over its streams' latest events.
``~`` cannot occur in a SKU (``commands.domain.catalog.SKU_PATTERN``), so the names never collide.
"""

from __future__ import annotations

from datetime import datetime

from commands.events.base import Event

STREAM_PREFIX = "inventory-"
BUCKET_SEPARATOR = "~"
# Buckets per SKU at most: on one machine the gain stops well before (docs/scaling.md, section 8),
# and a reader of every stream of a SKU (``stream_ids``) names them all.
MAX_BUCKETS = 16


def stream_id(sku: str, bucket: int = 0) -> str:
    """The ledger stream of one stock row: the SKU's own (bucket 0) or one of its buckets."""
    return f"{STREAM_PREFIX}{sku}" if bucket == 0 else f"{STREAM_PREFIX}{sku}{BUCKET_SEPARATOR}{bucket}"


def stream_ids(sku: str) -> list[str]:
    """Every stream a SKU's stock can be recorded in (most have only the first)."""
    return [stream_id(sku, bucket) for bucket in range(MAX_BUCKETS)]


def sku_and_bucket(stream: str) -> tuple[str, int]:
    """The SKU and bucket an inventory stream records; ValueError for another stream."""
    if not stream.startswith(STREAM_PREFIX):
        raise ValueError(f"{stream!r} is not an inventory stream")
    sku, separator, bucket = stream[len(STREAM_PREFIX) :].partition(BUCKET_SEPARATOR)
    if not separator:
        return sku, 0
    number = int(bucket)
    if not 0 < number < MAX_BUCKETS or str(number) != bucket:
        raise ValueError(f"{stream!r} names no stock bucket")
    return sku, number


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


class StockRebalanced(InventoryEvent, frozen=True):
    """Free stock moved between the buckets of one SKU (never what is reserved): one event per
    bucket whose on-hand changed; the SKU's total is the same before and after."""

    previous_on_hand: int


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
        StockRebalanced,
    )
)
