"""Inventory test helpers: catalog rows inserted directly, stock set through the real
command, reservations run in real units of work, and ledger/table inspection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from commands.domain.inventory import StockLevel, fold
from commands.events.inventory import InventoryEvent, StockRebalanced, stream_id
from commands.inventory import reservations
from commands.inventory.reservations import ReservationLine
from commands.messages.inventory import SetStock, StockResult
from commands.store.ledger.reader import RecordedEvent
from commands.store.ledger.writer import append
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container

META = MessageMetadata(actor="admin:test")
PRODUCT_ID = uuid.UUID("7a8b1c7e-0000-4000-8000-000000000001")
SKUS = ("INV-A", "INV-B", "INV-C", "INV-UNTRACKED")
LEASE = timedelta(minutes=15)


async def seed_variants(container: Container, skus: Sequence[str] = SKUS) -> None:
    """One product with a variant per SKU, inserted straight into the catalog tables."""
    async with container.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog_products (id, handle, title, currency) "
                "VALUES (:id, 'inventory-test', 'Inventory test', 'USD') ON CONFLICT DO NOTHING"
            ),
            {"id": PRODUCT_ID},
        )
        for i, sku in enumerate(skus):
            await conn.execute(
                text(
                    "INSERT INTO catalog_variants (sku, product_id, title, price, currency, sort_order) "
                    "VALUES (:sku, :pid, :title, 10, 'USD', :i)"
                ),
                {"sku": sku, "pid": PRODUCT_ID, "title": sku, "i": i},
            )


async def set_stock(container: Container, sku: str, on_hand: int) -> StockResult:
    return await container.bus.dispatch(SetStock(sku, on_hand), META)


def new_order() -> str:
    return str(uuid.uuid4())


async def reserve(
    container: Container, order_id: str, lines: Sequence[tuple[str, int]], lease: timedelta = LEASE
) -> Any:
    async with UnitOfWork(container.engine, META) as uow:
        expires = await reservations.reserve(
            uow, order_id, [ReservationLine(sku, q) for sku, q in lines], lease=lease
        )
        await uow.commit()
        return expires


async def in_uow(container: Container, action: Any) -> Any:
    """Run ``action(uow)`` in a committed unit of work and return its result."""
    async with UnitOfWork(container.engine, META) as uow:
        result = await action(uow)
        await uow.commit()
        return result


async def items(container: Container) -> dict[str, StockLevel]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT sku, sum(on_hand) AS on_hand, sum(reserved) AS reserved "
                "FROM inventory_items GROUP BY sku"
            )
        )
        return {r.sku: StockLevel(r.sku, int(r.on_hand), int(r.reserved)) for r in rows}


async def reservation_rows(container: Container, order_id: str) -> list[Any]:
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT sku, quantity, status, expires_at FROM inventory_reservations "
                "WHERE order_id = :o ORDER BY sku"
            ),
            {"o": uuid.UUID(order_id)},
        )
        return list(result)


async def inventory_events(container: Container) -> list[RecordedEvent]:
    """Every inventory event, in stream order per SKU."""
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT position, tx_id::text::bigint AS tx_id, event_id, stream_type, stream_id, "
                "stream_version, type, data, metadata, recorded_at FROM ledger_events "
                "WHERE stream_type = 'inventory' ORDER BY stream_id, stream_version"
            )
        )
        return [RecordedEvent(**row._mapping) for row in result]


async def ledger_fold(container: Container) -> dict[str, StockLevel]:
    decoded = [(e.stream_id, e.decode()) for e in await inventory_events(container)]
    return fold((stream, e) for stream, e in decoded if isinstance(e, InventoryEvent))


async def expire_now(container: Container, order_id: str) -> None:
    """Move an order's active leases into the past."""
    async with container.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE inventory_reservations SET expires_at = now() - interval '1 second' "
                "WHERE order_id = :o AND status = 'active'"
            ),
            {"o": uuid.UUID(order_id)},
        )


async def assert_versions_counted(container: Container) -> None:
    """Every ``inventory_items`` row counts its stream: its ``stream_version`` is the version of
    the last event in its stream (``inventory-<sku>``, ``inventory-<sku>~<bucket>``), whose
    versions run 1..n without a gap."""
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT i.sku, i.bucket, i.stream_version, "
                "coalesce(array_agg(l.stream_version ORDER BY l.stream_version) "
                "FILTER (WHERE l.stream_version IS NOT NULL), '{}') AS versions "
                "FROM inventory_items i LEFT JOIN ledger_events l ON l.stream_id = 'inventory-' || i.sku "
                "|| CASE WHEN i.bucket = 0 THEN '' ELSE '~' || i.bucket END "
                "GROUP BY i.sku, i.bucket, i.stream_version"
            )
        )
        wrong = {
            (r.sku, r.bucket): (r.stream_version, list(r.versions))
            for r in rows
            if list(r.versions) != list(range(1, r.stream_version + 1))
        }
    assert wrong == {}, f"rows whose count is not their stream's version (count, versions): {wrong}"


async def bucket_rows(container: Container, sku: str) -> dict[int, StockLevel]:
    """The SKU's stock rows by bucket."""
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT bucket, on_hand, reserved FROM inventory_items WHERE sku = :sku ORDER BY bucket"),
            {"sku": sku},
        )
        return {r.bucket: StockLevel(sku, r.on_hand, r.reserved) for r in rows}


async def held_by_reservations(container: Container) -> dict[tuple[str, int], int]:
    """Units the active and committed reservation rows hold, per (SKU, bucket)."""
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT sku, bucket, sum(quantity) AS held FROM inventory_reservations "
                "WHERE status IN ('active', 'committed') GROUP BY sku, bucket"
            )
        )
        return {(r.sku, r.bucket): int(r.held) for r in rows}


async def reserved_per_row(container: Container) -> dict[tuple[str, int], int]:
    """What each stock row counts as reserved (rows reserving nothing left out)."""
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT sku, bucket, reserved FROM inventory_items WHERE reserved > 0")
        )
        return {(r.sku, r.bucket): r.reserved for r in rows}


async def worst_overdraft(container: Container, stop: asyncio.Event) -> int:
    """Sample every stock row until ``stop``; the worst reserved - on_hand seen (0: never over)."""
    worst = 0
    async with container.engine.connect() as conn:
        while not stop.is_set():
            over = (
                await conn.execute(text("SELECT coalesce(max(reserved - on_hand), 0) FROM inventory_items"))
            ).scalar_one()
            await conn.rollback()
            worst = max(worst, int(over))
            await asyncio.sleep(0.005)  # sampling rate of the watcher while buyers race
    return worst


async def append_bucket_event(
    container: Container, sku: str, bucket: int, product_id: str, on_hand: int, reserved: int = 0
) -> RecordedEvent:
    """An event on one bucket's stream carrying that bucket's numbers, as the command side appends."""
    event = StockRebalanced(
        sku=sku,
        product_id=product_id,
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        previous_on_hand=0,
    )
    async with container.engine.begin() as conn:
        (recorded,) = await append(
            conn, "inventory", stream_id(sku, bucket), [event], expected_version=None, metadata={}
        )
    return recorded


async def assert_stock_consistent(container: Container) -> None:
    """Each stock row's reserved is what its reservation rows hold, the ledger folds to the rows,
    and every row counts its stream's versions."""
    assert await reserved_per_row(container) == await held_by_reservations(container)
    assert await ledger_fold(container) == await items(container)
    await assert_versions_counted(container)
