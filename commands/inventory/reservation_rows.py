"""The ``inventory_reservations`` rows of an order: one per (SKU, bucket) it took stock from.

A reservation row names the stock row it holds units of, so releasing, expiring and shipping
give them back to (or take them from) that same row. Rows of an order are locked by SKU and
bucket, the order every stock writer locks stock rows in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.errors import InvalidInput
from commands.events.inventory import InventoryEvent
from commands.inventory.stock_rows import ItemRow, append_events, change_item, event_fields
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork


def order_uuid(order_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise InvalidInput(f"order id {order_id!r} is not a UUID") from None


@dataclass(frozen=True)
class ReservationRow:
    id: uuid.UUID
    sku: str
    quantity: int
    bucket: int = 0


async def lock_reservations(
    conn: AsyncConnection, order_id: str, statuses: frozenset[str], *, due_only: bool = False
) -> list[ReservationRow]:
    """The order's reservations in ``statuses`` (only those whose lease ran out with
    ``due_only``), locked, by SKU and bucket."""
    rows = await (await asyncpg_of(conn)).fetch(
        _LOCK_DUE if due_only else _LOCK, order_uuid(order_id), sorted(statuses)
    )
    return [ReservationRow(row["id"], row["sku"], row["quantity"], row["bucket"]) for row in rows]


_LOCK = (
    "SELECT id, sku, bucket, quantity FROM inventory_reservations "
    "WHERE order_id = $1 AND status = ANY($2::text[]) ORDER BY sku, bucket FOR UPDATE"
)
_LOCK_DUE = (
    "SELECT id, sku, bucket, quantity FROM inventory_reservations "
    "WHERE order_id = $1 AND status = ANY($2::text[]) AND expires_at <= now() "
    "ORDER BY sku, bucket FOR UPDATE"
)


async def settle(
    uow: UnitOfWork,
    rows: Sequence[ReservationRow],
    status: str,
    event: Callable[[dict[str, Any], int], InventoryEvent],
    *,
    on_hand: int = 0,
    reserved: int = 0,
) -> None:
    """Move locked reservation rows to ``status``, apply ``sign * quantity`` to the stock row
    each holds units of, record it."""
    if not rows:
        return
    await mark(uow.conn, rows, status)
    events = []
    for res in rows:
        item = await change_item(
            uow.conn, res.sku, res.bucket, on_hand=on_hand * res.quantity, reserved=reserved * res.quantity
        )
        events.append((item, event(event_fields(item), res.quantity)))
    await append_events(uow, events)


async def remove(conn: AsyncConnection, rows: Sequence[ReservationRow]) -> None:
    await (await asyncpg_of(conn)).execute(
        "DELETE FROM inventory_reservations WHERE id = ANY($1::uuid[])", [r.id for r in rows]
    )


async def mark(conn: AsyncConnection, rows: Sequence[ReservationRow], status: str) -> None:
    """Only active reservations are leases: every other status has no expiry."""
    await (await asyncpg_of(conn)).execute(
        "UPDATE inventory_reservations SET status = $1, expires_at = NULL, updated_at = now() "
        "WHERE id = ANY($2::uuid[])",
        status,
        [r.id for r in rows],
    )


async def record_reservations(
    conn: AsyncConnection,
    order_id: uuid.UUID,
    taken: Sequence[tuple[ItemRow, int]],
    *,
    status: str,
    expires_at: datetime | None,
) -> None:
    """The order's reservation rows for stock already taken: (row taken from, quantity) each."""
    await (await asyncpg_of(conn)).execute(
        "INSERT INTO inventory_reservations (id, order_id, sku, bucket, quantity, status, expires_at) "
        "SELECT unnest($1::uuid[]), $2::uuid, unnest($3::text[]), unnest($4::smallint[]), "
        "unnest($5::int[]), $6::text, $7::timestamptz",
        [uuid.uuid4() for _ in taken],
        order_id,
        [row.sku for row, _ in taken],
        [row.bucket for row, _ in taken],
        [quantity for _, quantity in taken],
        status,
        expires_at,
    )
