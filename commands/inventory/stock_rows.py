"""Row-level stock writes shared by reservations and the admin commands.

Every write here changes stock rows (a SKU's bucket 0, or one of a hot SKU's buckets) and
appends one event per changed row to that row's stream (``inventory-<sku>``,
``inventory-<sku>~<b>``). The row counts the stream's version (``stream_version``): each UPDATE
adds one, and the append takes its version from the row the UPDATE returned, so appends to one
stream are ordered by the row lock (the ledger's own maximum is only a floor: ``NEXT_VERSION``).
Taking stock for orders is ``commands.inventory.stock_taking``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.events.inventory import InventoryEvent, stream_id
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import RecordedEvent
from commands.store.unit_of_work import UnitOfWork

STREAM_TYPE = "inventory"

ITEM_COLUMNS = (
    "i.sku, i.on_hand, i.reserved, "
    "(SELECT CAST(v.product_id AS text) FROM catalog_variants v WHERE v.sku = i.sku) AS product_id, "
    "i.stream_version, i.bucket"
)


def stream_of(row: str) -> str:
    """SQL naming the stream of the stock row ``row`` (an alias), as ``stream_id`` does."""
    return f"'inventory-' || {row}.sku || CASE WHEN {row}.bucket = 0 THEN '' ELSE '~' || {row}.bucket END"


# The next version: the row's count, or the ledger's own if the count fell behind it (a writer
# of an older release, during a rolling deploy, appended without counting): it heals at the next
# write. The ledger's maximum comes from the statement's snapshot, which may predate the row lock
# it waited for, so it is only a floor; a version taken meanwhile is a StreamConflict, retried.
NEXT_VERSION = (
    "greatest(i.stream_version, (SELECT coalesce(max(l.stream_version), 0) FROM ledger_events AS l "
    f"WHERE l.stream_id = {stream_of('i')})) + 1"
)


def change_item_sql(bucket: str) -> str:
    """The conditional UPDATE of one of the SKU's rows: ``bucket`` is the SQL that picks it."""
    return (
        "UPDATE inventory_items AS i SET on_hand = i.on_hand + $2, reserved = i.reserved + $3, "
        f"stream_version = {NEXT_VERSION}, updated_at = now() "
        f"WHERE i.sku = $1 AND i.bucket = {bucket} AND i.on_hand - i.reserved >= $4 "
        f"RETURNING {ITEM_COLUMNS}"
    )


_CHANGE_ITEM = change_item_sql("$5")


@dataclass(frozen=True)
class ItemRow:
    """One stock row's numbers after a change (and the product its SKU belongs to)."""

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
    """Each event at the version its stock row counted when it changed (one event per change),
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


async def set_on_hand(driver: Any, on_hand: Mapping[tuple[str, int], int]) -> list[ItemRow]:
    """Set the on-hand of locked stock rows, (sku, bucket) -> on-hand, in one statement (one
    event each to follow); their rows after it, in (sku, bucket) order."""
    if not on_hand:
        return []
    rows = await driver.fetch(
        _SET_ON_HAND,
        [sku for sku, _ in on_hand],
        [bucket for _, bucket in on_hand],
        list(on_hand.values()),
    )
    return sorted((ItemRow(*row) for row in rows), key=lambda row: (row.sku, row.bucket))


_SET_ON_HAND = (
    f"UPDATE inventory_items AS i SET on_hand = u.on_hand, stream_version = {NEXT_VERSION}, "
    "updated_at = now() FROM unnest($1::varchar[], $2::smallint[], $3::int[]) AS u(sku, bucket, on_hand) "
    f"WHERE i.sku = u.sku AND i.bucket = u.bucket RETURNING {ITEM_COLUMNS}"
)


async def available_of(conn: AsyncConnection, skus: Sequence[str]) -> dict[str, int]:
    """Free units of each tracked SKU (over all its buckets), as a new snapshot sees them."""
    rows = await (await asyncpg_of(conn)).fetch(
        "SELECT sku, sum(on_hand - reserved) AS free FROM inventory_items "
        "WHERE sku = ANY($1::text[]) GROUP BY sku",
        list(skus),
    )
    return {row["sku"]: max(0, int(row["free"])) for row in rows}
