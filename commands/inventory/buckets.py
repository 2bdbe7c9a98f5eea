"""Stock buckets of hot SKUs: flagging, spreading free stock, and the rebalancing sweep.

A SKU flagged hot (``inventory_hot_skus``, ``n`` buckets) keeps its stock in rows 0..n-1 of
``inventory_items``, each with its own CHECK and stream, so its buyers do not queue on one row
lock (``docs/scaling.md`` section 8). Only free units ever move between buckets: what is
reserved stays in the bucket a reservation row names. Every change here locks all of the SKU's
rows in bucket order (the order every multi-row writer uses) and appends one event per row it
changed. Giving a SKU one bucket again collapses it: its free stock moves to bucket 0, and units
released later into another bucket are moved back by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.domain.inventory import BucketLevel, StockLevel, needs_rebalancing, spread
from commands.errors import InvalidInput
from commands.events.inventory import InventoryEvent, StockRebalanced
from commands.inventory.stock_rows import ItemRow, append_events, event_fields, set_on_hand
from commands.metrics import STOCK_REBALANCES
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

log = logging.getLogger(__name__)


# Who set a SKU's bucket count (``inventory_hot_skus.set_by``).
ADMIN = "admin"
AUTO = "auto"


@dataclass(frozen=True)
class LockedStock:
    """All stock rows of one SKU, locked, and how many buckets it should have."""

    sku: str
    rows: list[BucketLevel]
    buckets: int

    @property
    def level(self) -> StockLevel:
        return StockLevel(self.sku, sum(r.on_hand for r in self.rows), sum(r.reserved for r in self.rows))


async def lock_stock(driver: Any, sku: str) -> LockedStock:
    """The SKU's rows, locked in bucket order (the SKU has at least its bucket 0).

    Bucket 0 first, alone: ``flag`` adds rows while it holds it, and a statement that waited for
    it reads the table as of its snapshot, from before those rows existed. The rows are then
    read by a statement begun once bucket 0 is ours: it sees every row (none can be added now)."""
    await driver.execute(LOCK_FIRST, sku)
    return await _lock_rows(driver, sku)


async def _lock_rows(driver: Any, sku: str) -> LockedStock:
    """All the SKU's rows, locked, once its bucket 0 is held (see ``lock_stock``)."""
    rows = await driver.fetch(_LOCK_ROWS, sku)
    target = rows[0]["target"] if rows else None
    return LockedStock(
        sku, [BucketLevel(r["bucket"], r["on_hand"], r["reserved"]) for r in rows], target or 1
    )


LOCK_FIRST = "SELECT 1 FROM inventory_items WHERE sku = $1 AND bucket = 0 FOR UPDATE"
_LOCK_ROWS = (
    "SELECT bucket, on_hand, reserved, (SELECT buckets FROM inventory_hot_skus WHERE sku = $1) AS target "
    "FROM inventory_items WHERE sku = $1 ORDER BY bucket FOR UPDATE"
)


async def respread(
    uow: UnitOfWork,
    stock: LockedStock,
    free: int,
    event: Callable[[ItemRow, BucketLevel], InventoryEvent],
    *,
    always_record: bool,
) -> list[ItemRow]:
    """Spread ``free`` units over the SKU's buckets and record each changed row with ``event``
    (given the row after and as it was). With ``always_record`` bucket 0 is recorded even when
    it does not change, so the command that asked has an event (and a position) of its own."""
    on_hand = spread(stock.rows, stock.buckets, free)
    if always_record and 0 not in on_hand:
        on_hand[0] = stock.rows[0].on_hand
    driver = await asyncpg_of(uow.conn)
    changed = await set_on_hand(driver, {(stock.sku, bucket): units for bucket, units in on_hand.items()})
    before = {row.bucket: row for row in stock.rows}
    await append_events(uow, [(row, event(row, before[row.bucket])) for row in changed])
    return changed


def rebalanced(row: ItemRow, before: BucketLevel) -> StockRebalanced:
    return StockRebalanced(**event_fields(row), previous_on_hand=before.on_hand)


async def flag(uow: UnitOfWork, sku: str, buckets: int, *, set_by: str = ADMIN) -> LockedStock:
    """Give a tracked SKU ``buckets`` rows (1 unflags it) and spread its free stock over them.
    InvalidInput for a SKU whose stock is not tracked (spreading it would start it at zero).

    ``set_by``: ``ADMIN``, or ``AUTO`` for the automatic switch. An admin's one bucket is kept
    as a pin: the switch spreads only SKUs no admin has decided on."""
    driver = await asyncpg_of(uow.conn)
    if await driver.fetchval(LOCK_FIRST, sku) is None:
        raise InvalidInput(
            f"the stock of {sku} is not tracked: set it (inventorySet) before spreading it over buckets",
            ["sku"],
        )
    await driver.execute(
        "INSERT INTO inventory_items (sku, bucket, on_hand, reserved) "
        "SELECT $1, b, 0, 0 FROM generate_series(0, $2::int - 1) AS b ORDER BY b ON CONFLICT DO NOTHING",
        sku,
        buckets,
    )
    if buckets > 1 or set_by == ADMIN:
        await driver.execute(
            "INSERT INTO inventory_hot_skus (sku, buckets, set_by) VALUES ($1, $2, $3) "
            "ON CONFLICT (sku) DO UPDATE SET buckets = EXCLUDED.buckets, set_by = EXCLUDED.set_by, "
            "updated_at = now()",
            sku,
            buckets,
            set_by,
        )
    else:
        await driver.execute("DELETE FROM inventory_hot_skus WHERE sku = $1", sku)
    stock = await _lock_rows(driver, sku)  # bucket 0 is held since the check above
    # Nothing is recorded when no row changes (the SKU already had this spread): the answer then
    # carries no position, as there is nothing to wait for.
    await respread(uow, stock, stock.level.available, rebalanced, always_record=False)
    return stock


async def rebalance_due(engine: AsyncEngine, metadata: MessageMetadata) -> list[str]:
    """Respread the free stock of every SKU whose buckets drifted apart (buyers empty buckets
    unevenly, releases land where their reservations were); one transaction per SKU. The look
    at the numbers takes no lock; a SKU that needs it is locked and looked at again."""
    async with engine.connect() as conn:
        found = await (await asyncpg_of(conn)).fetch(_BUCKETED)
    rebalanced_skus: list[str] = []
    for row in found:
        rows = [
            BucketLevel(b, o, r)
            for b, o, r in zip(row["buckets"], row["on_hand"], row["reserved"], strict=True)
        ]
        if not needs_rebalancing(rows, row["target"]):
            continue
        try:
            async with UnitOfWork(engine, metadata) as uow:
                stock = await lock_stock(await asyncpg_of(uow.conn), row["sku"])
                if needs_rebalancing(stock.rows, stock.buckets):
                    await respread(uow, stock, stock.level.available, rebalanced, always_record=False)
                    await uow.commit()
                    rebalanced_skus.append(stock.sku)
        except Exception:
            log.exception("rebalancing a SKU's stock buckets failed", extra={"sku": row["sku"]})
    STOCK_REBALANCES.inc(len(rebalanced_skus))
    return rebalanced_skus


# SKUs with more than one row, or flagged: their rows' numbers (unlocked) and target bucket count.
_BUCKETED = (
    "SELECT i.sku, array_agg(i.bucket ORDER BY i.bucket) AS buckets, "
    "array_agg(i.on_hand ORDER BY i.bucket) AS on_hand, array_agg(i.reserved ORDER BY i.bucket) AS reserved, "
    "coalesce(max(h.buckets), 1) AS target "
    "FROM inventory_items AS i LEFT JOIN inventory_hot_skus AS h ON h.sku = i.sku "
    "WHERE i.sku IN (SELECT sku FROM inventory_items WHERE bucket > 0) GROUP BY i.sku ORDER BY i.sku"
)
