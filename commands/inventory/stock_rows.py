"""Row-level inventory writes shared by reservations and the admin commands.

Every write here locks one stock row (a SKU's bucket 0, or one of a hot SKU's buckets) and
appends one event to that row's stream (``inventory-<sku>``, ``inventory-<sku>~<b>``). The row
counts the stream's version (``stream_version``): each UPDATE adds one, and the append takes its
version from the row the UPDATE returned, so appends to one stream are ordered by the row lock
(the ledger's own maximum is only a floor: ``_NEXT_VERSION``). Rows of one SKU are locked in
bucket order, SKUs in SKU order, except by the one-line reservation that takes any free bucket
without waiting (``reserve_one``), which holds no other stock row.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.domain.inventory import take_in_bucket_order
from commands.events.base import encode_event
from commands.events.inventory import MAX_BUCKETS, InventoryEvent, StockReserved, stream_id
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import RECORDED_COLUMNS, RecordedEvent, recorded_event
from commands.store.ledger.writer import ANNOUNCE, INSERT_EVENTS, conflicts_raised, encoded_metadata
from commands.store.unit_of_work import UnitOfWork

STREAM_TYPE = "inventory"

_ITEM_COLUMNS = (
    "i.sku, i.on_hand, i.reserved, "
    "(SELECT CAST(v.product_id AS text) FROM catalog_variants v WHERE v.sku = i.sku) AS product_id, "
    "i.stream_version, i.bucket"
)
# The row's stream, as commands.events.inventory.stream_id names it.
STREAM_OF_ROW = "'inventory-' || i.sku || CASE WHEN i.bucket = 0 THEN '' ELSE '~' || i.bucket END"
# The next version: the row's count, or the ledger's own if the count fell behind it (a writer
# of an older release, during a rolling deploy, appended without counting): it heals at the next
# write. The ledger's maximum comes from the statement's snapshot, which may predate the row lock
# it waited for, so it is only a floor; a version taken meanwhile is a StreamConflict, retried.
_NEXT_VERSION = (
    "greatest(i.stream_version, (SELECT coalesce(max(l.stream_version), 0) FROM ledger_events AS l "
    f"WHERE l.stream_id = {STREAM_OF_ROW})) + 1"
)


def _change_item(bucket: str) -> str:
    """The conditional UPDATE of one of the SKU's rows: ``bucket`` is the SQL that picks it."""
    return (
        "UPDATE inventory_items AS i SET on_hand = i.on_hand + $2, reserved = i.reserved + $3, "
        f"stream_version = {_NEXT_VERSION}, updated_at = now() "
        f"WHERE i.sku = $1 AND i.bucket = {bucket} AND i.on_hand - i.reserved >= $4 "
        f"RETURNING {_ITEM_COLUMNS}"
    )


_CHANGE_ITEM = _change_item("$5")
# A bucket that has the units free, starting from bucket $13 (buyers start at different buckets,
# so they rarely even try the same row): first one whose row no other transaction holds; when
# every such row is held, the first of them, queueing for its lock (the UPDATE checks the units
# again once it has the row). Buyers so spread over the buckets instead of all queueing on one.
_A_BUCKET_WITH_UNITS = (
    "(SELECT b.bucket FROM inventory_items AS b WHERE b.sku = $1 AND b.on_hand - b.reserved >= $4 "
    f"ORDER BY (b.bucket + {MAX_BUCKETS} - $13::int) % {MAX_BUCKETS} LIMIT 1"
)
_A_FREE_BUCKET = f"{_A_BUCKET_WITH_UNITS} FOR UPDATE SKIP LOCKED)"
_A_BUSY_BUCKET = f"{_A_BUCKET_WITH_UNITS})"
# Either attempt can leave a row locked that it did not take (SKIP LOCKED locks a row's newest
# version before finding it has too few units left; an UPDATE that waited for a bucket keeps it
# when it finds it emptied). Holding one while locking another out of bucket order could
# deadlock, so each attempt that takes nothing is rolled back to this savepoint, set before the
# first (before any stock row is locked: it costs no lock time).
_BUCKET_PICK = "reserve_in_a_bucket"


@dataclass(frozen=True)
class ItemRow:
    """One SKU's ``inventory_items`` numbers after a change (and the product it belongs to)."""

    sku: str
    on_hand: int
    reserved: int
    product_id: str | None
    # The row's stream version once this change's events are appended.
    stream_version: int
    bucket: int = 0


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
        [(STREAM_TYPE, stream_id(row.sku, row.bucket), row.stream_version, event) for row, event in events]
    )


async def change_item(
    conn: AsyncConnection, sku: str, bucket: int = 0, *, on_hand: int = 0, reserved: int = 0, need: int = 0
) -> Any:
    """Apply deltas to one stock row (locking it, counting the one event that will follow) if
    ``need`` units are available; None otherwise."""
    driver = await asyncpg_of(conn)
    row = await driver.fetchrow(_CHANGE_ITEM, sku, on_hand, reserved, need, bucket)
    return None if row is None else ItemRow(*row)


async def reserve_one(
    uow: UnitOfWork,
    sku: str,
    quantity: int,
    *,
    order_id: uuid.UUID,
    expires_at: datetime | None,
    status: str,
    buckets: int = 1,
) -> tuple[ItemRow, RecordedEvent] | None:
    """Reserve ``quantity`` of one SKU, record the order's reservation row and append its
    StockReserved, in one statement: after the row's lock is taken only the COMMIT follows.
    None, and nothing written, when it is short.

    A SKU in ``buckets`` rows is taken from one bucket that has the units, one no other
    transaction holds if there is one; None then also when no bucket alone has them, or the one
    waited for was emptied meanwhile (the caller then takes from the buckets in their order)."""
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
    arguments = (
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
    )
    async with conflicts_raised(f"the version counted for a stream of {sku} was taken already"):
        if buckets <= 1:
            row = await driver.fetchrow(_RESERVE_ONE, *arguments)
        else:
            row = await _reserve_in_a_bucket(driver, arguments, random.randrange(buckets))
    if row is None:
        return None
    item, recorded = ItemRow(*row[:6]), recorded_event(row[6:])
    uow.appended_by_statement([recorded])
    return item, recorded


async def set_items(driver: Any, on_hand: Mapping[str, int]) -> dict[str, ItemRow]:
    """Set the on-hand stock of many locked SKU rows in one statement (one event each to
    follow); their rows after it."""
    if not on_hand:
        return {}
    rows = await driver.fetch(_SET_ITEMS, list(on_hand), list(on_hand.values()))
    return {row["sku"]: ItemRow(*row) for row in rows}


# The reservation row and the event go with the UPDATE (whose RETURNING is all they need): the
# event's data is the caller's, with the row's numbers merged in, as event_fields() gives them.
def _reserve_one(bucket: str) -> str:
    return (
        f"WITH item AS ({_change_item(bucket)}), "
        "held AS (INSERT INTO inventory_reservations "
        "(id, order_id, sku, bucket, quantity, status, expires_at) "
        "SELECT $5::uuid, $6::uuid, item.sku, item.bucket, $3, $7::text, $8::timestamptz FROM item), "
        f"{ANNOUNCE}, "
        f"appended AS ({INSERT_EVENTS} "
        f"SELECT $9::uuid, '{STREAM_TYPE}', "
        "'inventory-' || item.sku || CASE WHEN item.bucket = 0 THEN '' ELSE '~' || item.bucket END, "
        "item.stream_version, $10::text, "
        "$11::text::jsonb || jsonb_build_object('sku', item.sku, 'product_id', item.product_id, "
        "'on_hand', item.on_hand, 'reserved', item.reserved, 'available', item.on_hand - item.reserved), "
        "$12::text::jsonb FROM item CROSS JOIN told "
        f"RETURNING {RECORDED_COLUMNS}) "
        "SELECT item.sku, item.on_hand, item.reserved, item.product_id, item.stream_version, item.bucket, "
        "appended.* FROM item CROSS JOIN appended"
    )


_RESERVE_ONE = _reserve_one("0")
_RESERVE_IN_A_FREE_BUCKET = _reserve_one(_A_FREE_BUCKET)
_RESERVE_IN_A_BUSY_BUCKET = _reserve_one(_A_BUSY_BUCKET)


async def _reserve_in_a_bucket(driver: Any, arguments: tuple[Any, ...], start: int) -> Any:
    await driver.execute(f"SAVEPOINT {_BUCKET_PICK}")
    for statement in (_RESERVE_IN_A_FREE_BUCKET, _RESERVE_IN_A_BUSY_BUCKET):
        row = await driver.fetchrow(statement, *arguments, start)
        if row is not None:
            return row
        await driver.execute(f"ROLLBACK TO SAVEPOINT {_BUCKET_PICK}")
    return None


_SET_ITEMS = (
    f"UPDATE inventory_items AS i SET on_hand = u.on_hand, stream_version = {_NEXT_VERSION}, "
    "updated_at = now() FROM unnest($1::varchar[], $2::int[]) AS u(sku, on_hand) "
    "WHERE i.sku = u.sku AND i.bucket = 0 "
    f"RETURNING {_ITEM_COLUMNS}"
)


async def take_all_or_nothing(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]]
) -> tuple[list[tuple[ItemRow, int]], list[str]]:
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
) -> tuple[list[tuple[ItemRow, int]], list[str]]:
    """Conditionally reserve each (sku, quantity) in order, from the SKU's buckets in bucket
    order; the rows taken (with what each gave) and the SKUs short."""
    driver = await asyncpg_of(conn)
    taken: list[tuple[ItemRow, int]] = []
    short: list[str] = []
    for sku, quantity in wanted:
        if short:
            # Already refused: only find out whether this line is short too, without locking it.
            available = await driver.fetchval(
                "SELECT sum(on_hand - reserved) FROM inventory_items WHERE sku = $1", sku
            )
            if available is not None and available < quantity:
                short.append(sku)
            continue
        free = await driver.fetch(_LOCK_BUCKETS, sku)
        split = take_in_bucket_order([(row["bucket"], row["free"]) for row in free], quantity)
        if split:
            rows = await driver.fetch(_TAKE_FROM_BUCKETS, sku, list(split), list(split.values()))
            taken.extend(
                (ItemRow(*row), split[row["bucket"]]) for row in sorted(rows, key=lambda r: r["bucket"])
            )
            continue
        if free:  # tracked, and short
            short.append(sku)
            continue
    return taken, short


# The SKU's rows locked in bucket order, with what each has free once locked (a row locked after
# waiting for it is read as the transaction it waited for left it).
_LOCK_BUCKETS = (
    "SELECT bucket, on_hand - reserved AS free FROM inventory_items WHERE sku = $1 ORDER BY bucket FOR UPDATE"
)
# Units reserved in rows already locked. No condition on the rows' numbers: the statement scans
# them as of its snapshot, which could predate the lock the previous statement waited for (the
# table's CHECK still guards every row).
_TAKE_FROM_BUCKETS = (
    f"UPDATE inventory_items AS i SET reserved = i.reserved + u.take, stream_version = {_NEXT_VERSION}, "
    "updated_at = now() FROM unnest($2::smallint[], $3::int[]) AS u(bucket, take) "
    f"WHERE i.sku = $1 AND i.bucket = u.bucket RETURNING {_ITEM_COLUMNS}"
)


async def set_bucket_on_hand(driver: Any, sku: str, on_hand: Mapping[int, int]) -> list[ItemRow]:
    """Set the on-hand of some locked rows of one SKU (bucket -> on-hand), one event each to
    follow; their rows after it, in bucket order."""
    if not on_hand:
        return []
    rows = await driver.fetch(_SET_BUCKETS, sku, list(on_hand), list(on_hand.values()))
    return sorted((ItemRow(*row) for row in rows), key=lambda row: row.bucket)


_SET_BUCKETS = (
    f"UPDATE inventory_items AS i SET on_hand = u.on_hand, stream_version = {_NEXT_VERSION}, "
    "updated_at = now() FROM unnest($2::smallint[], $3::int[]) AS u(bucket, on_hand) "
    f"WHERE i.sku = $1 AND i.bucket = u.bucket RETURNING {_ITEM_COLUMNS}"
)
