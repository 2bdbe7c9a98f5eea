"""The automatic hot-SKU switch: a SKU reserved faster than a threshold is spread over buckets.

A flash sale rarely waits for an admin: every buyer of one SKU queues on its one stock row, and
the row's commit rate becomes the sale's ceiling (``docs/scaling.md`` section 8). This looks at
the ledger's newest reservations (each ``StockReserved`` of a SKU's row 0 stream, in the last
few seconds), and spreads a SKU reserved at ``per_second`` or more over ``buckets`` rows, as
``inventorySetBuckets`` would, recorded as the switch's doing (``set_by = 'auto'``).

It never spreads a SKU already decided on (any ``inventory_hot_skus`` row: an admin's, one
bucket included, which pins the SKU to its row, or its own earlier spread), never gathers a SKU
back (buckets cost a busy SKU nothing and a quiet one little; an admin gathers with
``inventorySetBuckets(sku, 1)``), and leaves a SKU with fewer free units than buckets alone
(nothing left to spread).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events.inventory import STREAM_PREFIX, StockReserved, sku_and_bucket
from commands.inventory import buckets as stock_buckets
from commands.inventory.stock_rows import STREAM_TYPE
from commands.metrics import HOT_SKUS_SPREAD
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

log = logging.getLogger(__name__)

# The newest inventory events looked at, at most: the look stays a short backward scan of an
# index however busy the ledger is. When they cover less than the window (more than 4,000
# inventory events a second), the rate is judged over the time they do cover.
LOOKED_AT_EVENTS = 20_000


@dataclass(frozen=True)
class HotSwitch:
    """``per_second``: reservations per second of one SKU that make it hot (0: never);
    ``buckets``: how many rows a hot SKU gets; ``window_seconds``: how far back it looks."""

    per_second: float
    buckets: int
    window_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return self.per_second > 0


async def hot_skus(engine: AsyncEngine, switch: HotSwitch) -> dict[str, int]:
    """SKUs in one row, not decided on, reserved at the switch's rate or faster, and how many
    times within the window."""
    async with engine.connect() as conn:
        rows = await (await asyncpg_of(conn)).fetch(
            _RESERVED_LATELY,
            STREAM_TYPE,
            StockReserved.event_type(),
            LOOKED_AT_EVENTS,
            switch.window_seconds,
            switch.per_second,
            STREAM_PREFIX,
        )
    # Row 0 streams only (the statement leaves the others out).
    return {sku_and_bucket(row["stream_id"])[0]: int(row["reserved"]) for row in rows}


async def spread_hot_skus(engine: AsyncEngine, metadata: MessageMetadata, switch: HotSwitch) -> list[str]:
    """Spread every hot SKU no admin decided on; one transaction per SKU. The SKUs spread."""
    if not switch.enabled:
        return []
    try:
        hot = await hot_skus(engine, switch)
    except Exception:
        log.exception("looking for hot SKUs failed")
        return []
    spread: list[str] = []
    for sku, reserved in hot.items():
        try:
            async with UnitOfWork(engine, metadata) as uow:
                if await _decided_or_too_small(uow, sku, switch.buckets):
                    continue
                await stock_buckets.flag(uow, sku, switch.buckets, set_by=stock_buckets.AUTO)
                await uow.commit()
        except Exception:
            log.exception("spreading a hot SKU over buckets failed", extra={"sku": sku})
            continue
        spread.append(sku)
        HOT_SKUS_SPREAD.inc()
        log.info(
            "hot SKU spread over buckets",
            extra={
                "sku": sku,
                "buckets": switch.buckets,
                "reservations_per_second": round(reserved / switch.window_seconds, 1),
            },
        )
    return spread


async def _decided_or_too_small(uow: UnitOfWork, sku: str, buckets: int) -> bool:
    """Looked at with the SKU's row 0 locked (as ``flag`` will lock it): an admin's or an earlier
    switch's decision, or too few free units to spread, leaves the SKU as it is."""
    driver = await asyncpg_of(uow.conn)
    if await driver.fetchval(stock_buckets.LOCK_FIRST, sku) is None:
        return True  # not tracked
    # A statement of its own, begun with the row held: it sees a decision committed meanwhile.
    row = await driver.fetchrow(_DECIDED, sku)
    return bool(row["decided"]) or row["free"] < buckets


# Reservations of each one-row stock stream (no '~') not decided on, among the newest inventory
# events (a backward scan of the (stream_type, position) index), within the window; the rate is
# judged over the window, or over the time the events cover when they are fewer than it holds.
_RESERVED_LATELY = (
    "WITH newest AS (SELECT stream_id, type, recorded_at FROM ledger_events WHERE stream_type = $1 "
    # Nothing recent at all (a quiet shop): one row read, not the newest 20,000.
    "AND (SELECT l.recorded_at FROM ledger_events AS l WHERE l.stream_type = $1 ORDER BY l.position DESC "
    "LIMIT 1) > statement_timestamp() - make_interval(secs => $4::float8) "
    "ORDER BY position DESC LIMIT $3), "
    # Materialized: computed once, not once per stream.
    "covered AS MATERIALIZED (SELECT CASE WHEN count(*) < $3 THEN $4::float8 "
    "ELSE greatest(0.1, least($4::float8, "
    "extract(epoch FROM statement_timestamp() - min(recorded_at))::float8)) END AS seconds FROM newest) "
    "SELECT n.stream_id, count(*) AS reserved FROM newest AS n CROSS JOIN covered "
    "WHERE n.type = $2 AND n.recorded_at > statement_timestamp() - make_interval(secs => $4::float8) "
    "AND strpos(n.stream_id, '~') = 0 "
    "AND NOT EXISTS (SELECT 1 FROM inventory_hot_skus AS h WHERE $6 || h.sku = n.stream_id) "
    "GROUP BY n.stream_id, covered.seconds HAVING count(*) >= greatest(1, $5::float8 * covered.seconds)"
)
_DECIDED = (
    "SELECT EXISTS (SELECT 1 FROM inventory_hot_skus WHERE sku = $1) AS decided, "
    "i.on_hand - i.reserved AS free FROM inventory_items AS i WHERE i.sku = $1 AND i.bucket = 0"
)
