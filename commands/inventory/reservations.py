"""Stock reservations (leases), inside the caller's unit of work.

Never oversell: a reservation is one conditional UPDATE per stock row
(``on_hand - reserved >= q``), and the table's CHECK backs it up. Lock order
is the same for every writer of more than one row, so concurrent writers wait
instead of deadlocking: an order's reservation rows (by SKU and bucket), then
``inventory_items`` rows (by SKU and bucket); the one-line reservation of a SKU in
buckets is the exception that cannot close a cycle (``commands.inventory.stock_taking``).
Every writer of a stock row's stream holds that row's lock while it appends, so
appends to one stream are serialized too.

A hot SKU's stock is spread over buckets (``commands.inventory.buckets``): a one-line
order takes from any bucket no other buyer holds, so its buyers do not queue on one row.

SKUs without an ``inventory_items`` row are untracked: never reserved, never short.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.inventory import (
    ACTIVE,
    COMMITTED,
    CONSUMED,
    EXPIRED,
    HOLDING,
    LAPSED,
    RELEASED,
    OutOfStock,
    ReservationLine,
    merge_lines,
)
from commands.errors import InvalidStateTransition
from commands.events.inventory import (
    StockReleased,
    StockReserved,
    StockShipped,
)
from commands.inventory.pending import (
    PendingReservation,
    new_order_columns,
    prepare_new,
    short_when_read,
    tracked_rows,
)
from commands.inventory.reservation_rows import (
    lock_reservations,
    order_uuid,
    record_reservations,
    remove,
    settle,
)
from commands.inventory.stock_rows import ItemRow, append_events, event_fields
from commands.inventory.stock_taking import (
    OneLine,
    ReservingInOneRow,
    reserve_one,
    reserving_in_one_row,
    stock_rows_of,
    take_all_or_nothing,
)
from commands.metrics import RESERVATION_CONFLICTS
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

__all__ = [
    "OutOfStock",
    "PendingReservation",
    "ReservationLine",
    "commit",
    "consume",
    "lapsed_column",
    "new_order_columns",
    "prepare",
    "prepare_new",
    "release",
    "rereserve",
    "reservation_status",
    "reserve",
    "short_when_read",
    "take",
]


async def reservation_status(uow: UnitOfWork, order_id: str) -> str | None:
    """Where the order's reservations stand: 'active', 'committed', 'released', 'expired',
    'consumed', or None when it reserved nothing (every line untracked)."""
    result = await (await asyncpg_of(uow.conn)).fetch(
        "SELECT DISTINCT status FROM inventory_reservations WHERE order_id = $1", order_uuid(order_id)
    )
    statuses = {row["status"] for row in result}
    for status in (ACTIVE, COMMITTED, CONSUMED, EXPIRED, RELEASED):
        if status in statuses:
            return status
    return None


async def reserve(
    uow: UnitOfWork, order_id: str, lines: Sequence[ReservationLine], *, lease: timedelta
) -> datetime | None:
    """Reserve every tracked line or none (OutOfStock names all short SKUs).

    Returns the lease expiry, or None when no line is tracked. Calling it again
    for an order that already holds stock returns the existing expiry.
    """
    return await take(uow, await prepare(uow, order_id, lines, lease=lease))


async def prepare(
    uow: UnitOfWork, order_id: str, lines: Sequence[ReservationLine], *, lease: timedelta
) -> PendingReservation:
    """Everything a reservation needs that locks nothing: its expiry, whether the order holds
    stock already (a retried phase), which lines are tracked. The checkout writes its order
    with the expiry *before* ``take`` locks the stock rows, so little follows those locks.

    Tracking only ever starts (``inventory_items`` rows are never deleted): a SKU tracked here
    is tracked at ``take``; one that starts being tracked in between is not reserved, as if its
    stock had been set after this checkout.
    """
    wanted = merge_lines(lines)
    # One round trip: the lease's end, what the order holds already, which SKUs are tracked.
    found = await (await asyncpg_of(uow.conn)).fetch(
        f"SELECT {new_order_columns('$3', '$2')}, r.status, r.expires_at "
        "FROM (SELECT 1) AS one LEFT JOIN inventory_reservations AS r ON r.order_id = $1",
        order_uuid(order_id),
        lease,
        [sku for sku, _ in wanted],
    )
    existing = [r for r in found if r["status"] is not None]
    if existing:
        if any(r["status"] not in HOLDING for r in existing):
            raise InvalidStateTransition(f"order {order_id} already had its reservations; use rereserve")
        expiry = max((r["expires_at"] for r in existing if r["status"] == ACTIVE), default=None)
        return PendingReservation(order_id, expiry, ())
    tracked, tracked_free = tracked_rows(found[0]["tracked"])
    return prepare_new(
        order_id, lines, lease_end=found[0]["lease_end"], tracked=tracked, tracked_free=tracked_free
    )


async def take(uow: UnitOfWork, pending: PendingReservation) -> datetime | None:
    """Reserve the prepared lines, all or none (OutOfStock names the short SKUs, and nothing
    is written). From the first stock UPDATE the row stays locked until the caller commits."""
    if not pending.lines:
        return pending.expires_at
    if len(pending.lines) == 1:
        await _take_one(uow, pending)  # its event goes with the stock UPDATE
        return pending.expires_at
    reserved = await _take_many(uow.conn, pending)
    await _append_reserved(uow, pending.order_id, pending.expires_at, reserved)
    return pending.expires_at


async def _append_reserved(
    uow: UnitOfWork, order_id: str, expires_at: datetime | None, reserved: Sequence[tuple[ItemRow, int]]
) -> None:
    """One StockReserved per stock row taken from, with what it gave."""
    events = [
        (row, StockReserved(**event_fields(row), order_id=order_id, quantity=quantity, expires_at=expires_at))
        for row, quantity in reserved
    ]
    await append_events(uow, events)


async def _take_one(uow: UnitOfWork, pending: PendingReservation) -> None:
    line = _one_line(pending)
    buckets = pending.buckets.get(line.sku, 1)
    if await reserve_one(uow, line, buckets=buckets) is None:
        await _one_missed(uow, pending, buckets)


def reserving_new(
    uow: UnitOfWork, pending: PendingReservation, *, first_parameter: int
) -> ReservingInOneRow | None:
    """``take`` as CTEs of the caller's own statement (``stock_taking.ReservingInOneRow``), when
    ``pending`` is one line of a SKU seen with its stock in one row; else None (call ``take``).
    After the statement, ``taken_with`` completes it."""
    if len(pending.lines) != 1 or pending.lines[0][0] in pending.buckets:
        return None
    return reserving_in_one_row(uow, _one_line(pending), first_parameter=first_parameter)


def _one_line(pending: PendingReservation) -> OneLine:
    ((sku, quantity),) = pending.lines
    return OneLine(sku, quantity, order_uuid(pending.order_id), pending.expires_at, ACTIVE)


async def taken_with(
    uow: UnitOfWork, pending: PendingReservation, reserving: ReservingInOneRow, row: Any
) -> None:
    """``take``'s end, after the caller's statement carried ``reserving`` and returned ``row``:
    nothing when the row had the units; else what ``take`` does when its first try finds them
    short (OutOfStock, or the SKU spread over buckets since: taken from those)."""
    if reserving.reserved(uow, row) is None:
        await _one_missed(uow, pending, 1)


async def _one_missed(uow: UnitOfWork, pending: PendingReservation, buckets: int) -> None:
    ((sku, _),) = pending.lines
    if buckets == 1 and await stock_rows_of(uow.conn, sku) == 1:
        # Tracked (prepare saw its row, and rows are never deleted), in one row, so short.
        RESERVATION_CONFLICTS.inc()
        raise OutOfStock([sku])
    # No bucket alone had the units, or the one waited for was emptied meanwhile, or the SKU was
    # spread over buckets since ``prepare``: lock its rows in bucket order and take from as many
    # as the line needs (or learn it is short).
    reserved = await _take_many(uow.conn, pending, one_row=())
    await _append_reserved(uow, pending.order_id, pending.expires_at, reserved)


async def _take_many(
    conn: AsyncConnection, pending: PendingReservation, one_row: Collection[str] | None = None
) -> list[tuple[ItemRow, int]]:
    if one_row is None:
        one_row = {sku for sku, _ in pending.lines if sku not in pending.buckets}
    reserved, short = await take_all_or_nothing(conn, pending.lines, one_row)
    if short:
        RESERVATION_CONFLICTS.inc(len(short))
        raise OutOfStock(short)
    await record_reservations(
        conn, order_uuid(pending.order_id), reserved, status=ACTIVE, expires_at=pending.expires_at
    )
    return reserved


async def commit(uow: UnitOfWork, order_id: str) -> None:
    """Payment authorized: active reservations become committed (they no longer expire).

    The stock rows are not touched (no number changes) and nothing is appended to the SKUs'
    streams: the order's confirmation, in the same transaction, is the record. A purchase so
    locks a SKU's row once, when it reserves.
    """
    # Written with the COMMIT (commands.store.writes_at_commit): the caller holds the order's
    # lock, which every other writer of its reservations takes first (the lease sweep included),
    # so no other transaction holds these rows, and nothing after this reads them.
    uow.write_at_commit(
        "UPDATE inventory_reservations SET status = $1, expires_at = NULL, updated_at = now() "
        "WHERE order_id = $2 AND status = $3",
        COMMITTED,
        order_uuid(order_id),
        ACTIVE,
    )


async def release(uow: UnitOfWork, order_id: str, *, reason: str) -> None:
    """Decline or cancel: active or committed reservations give their stock back."""
    rows = await lock_reservations(uow.conn, order_id, HOLDING)
    await settle(
        uow,
        rows,
        RELEASED,
        lambda f, q: StockReleased(**f, order_id=order_id, quantity=q, reason=reason),
        reserved=-1,
    )


async def consume(uow: UnitOfWork, order_id: str) -> None:
    """Shipment: committed reservations leave the warehouse (on_hand and reserved both drop)."""
    rows = await lock_reservations(uow.conn, order_id, frozenset({COMMITTED}))
    await settle(
        uow,
        rows,
        CONSUMED,
        lambda f, q: StockShipped(**f, order_id=order_id, quantity=q),
        on_hand=-1,
        reserved=-1,
    )


def lapsed_column(order_id: str) -> str:
    """A column ``stock_lapsed``: whether the order ``order_id`` (an SQL expression of type uuid)
    has reservations that lapsed (released or expired), for ``rereserve``'s ``lapsed``. Read under
    the order's lock, which every writer of its reservations takes, it stays true to the commit."""
    statuses = ", ".join(f"'{status}'" for status in sorted(LAPSED))
    return (
        "EXISTS (SELECT 1 FROM inventory_reservations AS lapsed "
        f"WHERE lapsed.order_id = {order_id} AND lapsed.status IN ({statuses})) AS stock_lapsed"
    )


async def rereserve(uow: UnitOfWork, order_id: str, *, lease: timedelta, lapsed: bool | None = None) -> bool:
    """Late payment success after the stock was released or expired: take the same lines
    again, all or nothing. False changes nothing.

    The payment is authorized, so re-taken stock is committed at once (no lease to
    expire; ``lease`` is accepted for symmetry with ``reserve``). True also when the
    order still holds its stock or reserved nothing.
    """
    del lease
    if lapsed is False:
        return True  # the caller read that nothing lapsed (``lapsed_column``), under the order's lock
    rows = await lock_reservations(uow.conn, order_id, LAPSED)
    if not rows:
        return True
    conn = uow.conn
    lines = merge_lines(ReservationLine(r.sku, r.quantity) for r in rows)
    taken, short = await take_all_or_nothing(conn, lines)
    if short:
        return False
    # The stock may come from other buckets than the first time: the lapsed rows give way to
    # rows naming where it was taken now, committed at once (no lease, like ``commit``).
    await remove(conn, rows)
    await record_reservations(conn, order_uuid(order_id), taken, status=COMMITTED, expires_at=None)
    await _append_reserved(uow, order_id, None, taken)
    return True
