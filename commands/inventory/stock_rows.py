"""Row-level inventory writes shared by reservations and the admin commands.

Every write here locks the SKU's ``inventory_items`` row and appends one event to
``inventory-<sku>``. The row counts the stream's version (``stream_version``): each UPDATE adds
one, and the append takes its version from the row the UPDATE returned, so appends to one
stream are ordered by the row lock (the ledger's own maximum is only a floor: ``_NEXT_VERSION``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.inventory import stream_id
from commands.errors import InvalidInput
from commands.events.base import encode_event
from commands.events.inventory import InventoryEvent, StockReserved
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import RECORDED_COLUMNS, RecordedEvent, recorded_event
from commands.store.ledger.writer import ANNOUNCE, INSERT_EVENTS, conflicts_raised, encoded_metadata
from commands.store.unit_of_work import UnitOfWork

STREAM_TYPE = "inventory"

_ITEM_COLUMNS = (
    "i.sku, i.on_hand, i.reserved, "
    "(SELECT CAST(v.product_id AS text) FROM catalog_variants v WHERE v.sku = i.sku) AS product_id, "
    "i.stream_version"
)
# The next version: the row's count, or the ledger's own if the count fell behind it (a writer
# of an older release, during a rolling deploy, appended without counting): it heals at the next
# write. The ledger's maximum comes from the statement's snapshot, which may predate the row lock
# it waited for, so it is only a floor; a version taken meanwhile is a StreamConflict, retried.
_NEXT_VERSION = (
    "greatest(i.stream_version, (SELECT coalesce(max(l.stream_version), 0) FROM ledger_events AS l "
    "WHERE l.stream_id = 'inventory-' || i.sku)) + 1"
)
_CHANGE_ITEM = (
    "UPDATE inventory_items AS i SET on_hand = i.on_hand + $2, reserved = i.reserved + $3, "
    f"stream_version = {_NEXT_VERSION}, updated_at = now() "
    f"WHERE i.sku = $1 AND i.on_hand - i.reserved >= $4 RETURNING {_ITEM_COLUMNS}"
)


@dataclass(frozen=True)
class ItemRow:
    """One SKU's ``inventory_items`` numbers after a change (and the product it belongs to)."""

    sku: str
    on_hand: int
    reserved: int
    product_id: str | None
    # The SKU's stream version once this change's events are appended.
    stream_version: int


def event_fields(row: Any) -> dict[str, Any]:
    """The after-change numbers every inventory event carries, from an inventory_items row."""
    return {
        "sku": row.sku,
        "product_id": row.product_id,
        "on_hand": row.on_hand,
        "reserved": row.reserved,
        "available": row.on_hand - row.reserved,
    }


async def append_events(
    uow: UnitOfWork, events: Sequence[tuple[ItemRow, InventoryEvent]]
) -> list[RecordedEvent]:
    """Each event at the version its SKU's row counted when it changed (one event per change),
    in one statement for all."""
    return await uow.append_at_versions(
        [(STREAM_TYPE, stream_id(row.sku), row.stream_version, event) for row, event in events]
    )


async def change_item(
    conn: AsyncConnection, sku: str, *, on_hand: int = 0, reserved: int = 0, need: int = 0
) -> Any:
    """Apply deltas to one SKU's row (locking it, counting the one event that will follow) if
    ``need`` units are available; None otherwise."""
    driver = await asyncpg_of(conn)
    row = await driver.fetchrow(_CHANGE_ITEM, sku, on_hand, reserved, need)
    return None if row is None else ItemRow(*row)


async def reserve_one(
    uow: UnitOfWork,
    sku: str,
    quantity: int,
    *,
    order_id: uuid.UUID,
    expires_at: datetime | None,
    status: str,
) -> tuple[ItemRow, RecordedEvent] | None:
    """Reserve ``quantity`` of one SKU, record the order's reservation row and append its
    StockReserved, in one statement: after the row's lock is taken only the COMMIT follows.
    None, and nothing written, when it is short."""
    # The event's row-dependent fields are filled in by the statement (it alone knows them).
    event = StockReserved(
        sku=sku,
        product_id=None,
        on_hand=0,
        reserved=0,
        available=0,
        order_id=str(order_id),
        quantity=quantity,
        expires_at=expires_at,
    )
    driver = await asyncpg_of(uow.conn)
    async with conflicts_raised(f"the version counted for {stream_id(sku)} was taken already"):
        row = await driver.fetchrow(
            _RESERVE_ONE,
            sku,
            0,
            quantity,
            quantity,
            uuid.uuid4(),
            order_id,
            status,
            expires_at,
            uuid.uuid4(),
            StockReserved.event_type(),
            encode_event(event).decode(),
            encoded_metadata(uow.metadata.as_dict()),
            stream_id(sku),
        )
    if row is None:
        return None
    item, recorded = ItemRow(*row[:5]), recorded_event(row[5:])
    uow.appended_by_statement([recorded])
    return item, recorded


async def record_reservations(
    conn: AsyncConnection,
    order_id: uuid.UUID,
    taken: Sequence[tuple[str, int]],
    *,
    status: str,
    expires_at: datetime | None,
) -> None:
    """The order's reservation rows for stock already taken: (sku, quantity) each."""
    await (await asyncpg_of(conn)).execute(
        "INSERT INTO inventory_reservations (id, order_id, sku, quantity, status, expires_at) "
        "SELECT unnest($1::uuid[]), $2::uuid, unnest($3::text[]), unnest($4::int[]), $5::text, "
        "$6::timestamptz",
        [uuid.uuid4() for _ in taken],
        order_id,
        [sku for sku, _ in taken],
        [quantity for _, quantity in taken],
        status,
        expires_at,
    )


async def set_items(driver: Any, on_hand: Mapping[str, int]) -> dict[str, ItemRow]:
    """Set the on-hand stock of many locked SKU rows in one statement (one event each to
    follow); their rows after it."""
    if not on_hand:
        return {}
    rows = await driver.fetch(_SET_ITEMS, list(on_hand), list(on_hand.values()))
    return {row["sku"]: ItemRow(*row) for row in rows}


# The reservation row and the event go with the UPDATE (whose RETURNING is all they need): the
# event's data is the caller's, with the row's numbers merged in, as event_fields() gives them.
_RESERVE_ONE = (
    f"WITH item AS ({_CHANGE_ITEM}), "
    "held AS (INSERT INTO inventory_reservations (id, order_id, sku, quantity, status, expires_at) "
    "SELECT $5::uuid, $6::uuid, item.sku, $3, $7::text, $8::timestamptz FROM item), "
    f"{ANNOUNCE}, "
    f"appended AS ({INSERT_EVENTS} "
    f"SELECT $9::uuid, '{STREAM_TYPE}', $13::text, item.stream_version, $10::text, "
    "$11::text::jsonb || jsonb_build_object('sku', item.sku, 'product_id', item.product_id, "
    "'on_hand', item.on_hand, 'reserved', item.reserved, 'available', item.on_hand - item.reserved), "
    "$12::text::jsonb FROM item CROSS JOIN told "
    f"RETURNING {RECORDED_COLUMNS}) "
    "SELECT item.sku, item.on_hand, item.reserved, item.product_id, item.stream_version, "
    "appended.* FROM item CROSS JOIN appended"
)

_SET_ITEMS = (
    f"UPDATE inventory_items AS i SET on_hand = u.on_hand, stream_version = {_NEXT_VERSION}, "
    "updated_at = now() FROM unnest($1::varchar[], $2::int[]) AS u(sku, on_hand) WHERE i.sku = u.sku "
    f"RETURNING {_ITEM_COLUMNS}"
)


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


async def lock_reservations(
    conn: AsyncConnection, order_id: str, statuses: frozenset[str], *, due_only: bool = False
) -> list[ReservationRow]:
    """The order's reservations in ``statuses`` (only those whose lease ran out with
    ``due_only``), locked, by SKU."""
    rows = await (await asyncpg_of(conn)).fetch(
        _LOCK_DUE if due_only else _LOCK, order_uuid(order_id), sorted(statuses)
    )
    return [ReservationRow(row["id"], row["sku"], row["quantity"]) for row in rows]


_LOCK = (
    "SELECT id, sku, quantity FROM inventory_reservations "
    "WHERE order_id = $1 AND status = ANY($2::text[]) ORDER BY sku FOR UPDATE"
)
_LOCK_DUE = (
    "SELECT id, sku, quantity FROM inventory_reservations "
    "WHERE order_id = $1 AND status = ANY($2::text[]) AND expires_at <= now() ORDER BY sku FOR UPDATE"
)


async def take_all_or_nothing(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]]
) -> tuple[list[tuple[Any, int]], list[str]]:
    """``_take`` in a savepoint: when a line is short, the caller's transaction is left as it
    was (the rows already taken, and their locks, are given back)."""
    if len(wanted) <= 1:
        # One line changes nothing when it is short (its UPDATE matched no row): no savepoint,
        # two round trips fewer while the row is locked.
        return await _take(conn, wanted)
    savepoint = await conn.begin_nested()
    try:
        taken, short = await _take(conn, wanted)
    except BaseException:
        await savepoint.rollback()
        raise
    if short:
        await savepoint.rollback()
        return [], short
    await savepoint.commit()
    return taken, short


async def _take(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]]
) -> tuple[list[tuple[Any, int]], list[str]]:
    """Conditionally reserve each (sku, quantity) in order; the rows taken and the SKUs short."""
    taken: list[tuple[Any, int]] = []
    short: list[str] = []
    for sku, quantity in wanted:
        if short:
            # Already refused: only find out whether this line is short too, without locking it.
            available = await (await asyncpg_of(conn)).fetchval(
                "SELECT on_hand - reserved FROM inventory_items WHERE sku = $1", sku
            )
            if available is not None and available < quantity:
                short.append(sku)
            continue
        row = await change_item(conn, sku, reserved=quantity, need=quantity)
        if row is not None:
            taken.append((row, quantity))
            continue
        tracked = await (await asyncpg_of(conn)).fetchval("SELECT 1 FROM inventory_items WHERE sku = $1", sku)
        if tracked is not None:
            short.append(sku)
    return taken, short


async def settle(
    uow: UnitOfWork,
    rows: Sequence[ReservationRow],
    status: str,
    event: Callable[[dict[str, Any], int], InventoryEvent],
    *,
    on_hand: int = 0,
    reserved: int = 0,
) -> None:
    """Move locked reservation rows to ``status``, apply ``sign * quantity`` to each SKU, record it."""
    if not rows:
        return
    await mark(uow.conn, rows, status)
    events = []
    for res in rows:
        item = await change_item(
            uow.conn, res.sku, on_hand=on_hand * res.quantity, reserved=reserved * res.quantity
        )
        events.append((item, event(event_fields(item), res.quantity)))
    await append_events(uow, events)


async def mark(conn: AsyncConnection, rows: Sequence[ReservationRow], status: str) -> None:
    """Only active reservations are leases: every other status has no expiry."""
    await (await asyncpg_of(conn)).execute(
        "UPDATE inventory_reservations SET status = $1, expires_at = NULL, updated_at = now() "
        "WHERE id = ANY($2::uuid[])",
        status,
        [r.id for r in rows],
    )
