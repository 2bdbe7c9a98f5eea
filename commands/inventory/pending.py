"""What a new order will reserve, decided from reads before any stock row is locked.

The checkout reads these with its cart (``new_order_columns``, in the same statement) and
decides here, without a round trip: which lines are tracked, over how many stock rows
(buckets), and whether the stock read had their units at all (``short_when_read``).
``commands.inventory.reservations`` takes what this prepared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from commands.domain.inventory import ReservationLine, merge_lines


@dataclass(frozen=True)
class PendingReservation:
    """What ``take`` will reserve for an order, decided before any stock row is touched."""

    order_id: str
    # The lease's end when a line is tracked (or the order's existing expiry); None otherwise.
    expires_at: datetime | None
    # Tracked SKUs and quantities, in lock (SKU) order; empty when the order holds stock already.
    lines: tuple[tuple[str, int], ...]
    # How many stock rows (buckets) each of them has; a SKU absent here has one.
    buckets: Mapping[str, int] = field(default_factory=dict)
    # Their free units when read (``prepare_new``), over all their rows; absent when not read.
    free: Mapping[str, int] = field(default_factory=dict)


def new_order_columns(skus: str, lease: str) -> str:
    """The columns ``prepare_new`` reads (``lease_end``; ``tracked``: each stock row's SKU and
    free units, read by ``tracked_rows``), for a caller's query with the order's SKUs (a
    ``text[]``) and the lease (an ``interval``) as the parameters named."""
    return (
        f"now() + {lease}::interval AS lease_end, "
        "ARRAY(SELECT ROW(sku, on_hand - reserved) FROM inventory_items "
        f"WHERE sku = ANY({skus}::text[]) ORDER BY sku, bucket) AS tracked"
    )


def tracked_rows(tracked: Sequence[tuple[str, int]]) -> tuple[list[str], list[int]]:
    """``new_order_columns``' ``tracked`` as ``prepare_new`` takes it: the rows' SKUs, and their
    free units in the same order."""
    return [sku for sku, _ in tracked], [free for _, free in tracked]


def prepare_new(
    order_id: str,
    lines: Sequence[ReservationLine],
    *,
    lease_end: datetime,
    tracked: Sequence[str],
    tracked_free: Sequence[int] = (),
) -> PendingReservation:
    """``reservations.prepare`` for an order that cannot hold stock yet (its id was just made), from the
    columns of ``new_order_columns`` read with the caller's other reads."""
    wanted = merge_lines(lines)
    rows: dict[str, int] = {}
    free: dict[str, int] = {}
    for i, sku in enumerate(tracked):  # one entry per stock row: a hot SKU appears once per bucket
        rows[sku] = rows.get(sku, 0) + 1
        if i < len(tracked_free):
            free[sku] = free.get(sku, 0) + max(0, tracked_free[i])
    taking = tuple((sku, quantity) for sku, quantity in wanted if sku in rows)
    buckets = {sku: count for sku, count in rows.items() if count > 1}
    return PendingReservation(order_id, lease_end if taking else None, taking, buckets, free)


def short_when_read(pending: PendingReservation) -> dict[str, int]:
    """The lines the stock did not have when ``prepare_new``'s columns were read, and what it had
    of them: refused at once, without queueing for the rows (after a sale's last unit, every
    buyer but the lucky few). A line the read found enough for is decided by the rows."""
    return {
        sku: pending.free[sku]
        for sku, quantity in pending.lines
        if sku in pending.free and pending.free[sku] < quantity
    }
