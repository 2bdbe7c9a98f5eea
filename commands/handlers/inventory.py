"""Inventory admin command handlers: set or adjust on-hand stock, idempotently.

Both run once per idempotency key: the bus claims the key before the handler
runs and stores the response in the command's transaction, so a retry with the
same key replays it and a failed attempt leaves no trace.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.bus import CommandBus, KeyPolicy
from commands.domain import inventory as domain
from commands.domain.inventory import StockLevel
from commands.errors import NotFound
from commands.events.inventory import InventoryEvent, StockAdjusted, StockSet
from commands.inventory.stock_rows import append_event, change_item, event_fields
from commands.messages.inventory import AdjustStock, SetStock, StockResult
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

KEY_FIELD = ("idempotencyKey",)


def register(bus: CommandBus) -> None:
    keys = KeyPolicy(replay=StockResult.from_response)
    bus.register(SetStock, set_stock, keys=keys)
    bus.register(AdjustStock, adjust_stock, keys=keys)


async def set_stock(command: SetStock, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    level = await _lock_level(uow.conn, command.sku)
    on_hand = domain.decide_set(level, command.on_hand)
    row = await change_item(uow.conn, command.sku, on_hand=on_hand - level.on_hand)
    event = StockSet(**event_fields(row), previous_on_hand=level.on_hand)
    return await _finish(uow, event)


async def adjust_stock(command: AdjustStock, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    level = await _lock_level(uow.conn, command.sku)
    on_hand = domain.decide_adjust(level, command.delta, command.reason)
    row = await change_item(uow.conn, command.sku, on_hand=on_hand - level.on_hand)
    event = StockAdjusted(**event_fields(row), delta=command.delta, reason=command.reason)
    return await _finish(uow, event)


async def _lock_level(conn: AsyncConnection, sku: str) -> StockLevel:
    """The SKU's stock, row locked; a catalog SKU never stocked before starts at zero."""
    driver = await asyncpg_of(conn)
    if await driver.fetchval("SELECT 1 FROM catalog_variants WHERE sku = $1", sku) is None:
        raise NotFound(f"no product variant has SKU {sku}", ["sku"])
    await driver.execute(
        "INSERT INTO inventory_items (sku, on_hand, reserved) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING", sku
    )
    row = await driver.fetchrow(
        "SELECT on_hand, reserved FROM inventory_items WHERE sku = $1 FOR UPDATE", sku
    )
    return StockLevel(sku, row["on_hand"], row["reserved"])


async def _finish(uow: UnitOfWork, event: InventoryEvent) -> StockResult:
    await append_event(uow, event)
    return StockResult(event.sku, event.on_hand, event.reserved, event.available, uow.last_position)
