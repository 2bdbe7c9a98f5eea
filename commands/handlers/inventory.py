"""Inventory admin command handlers: set or adjust on-hand stock, idempotently.

Both run once per idempotency key: the bus claims the key before the handler
runs and stores the response in the command's transaction, so a retry with the
same key replays it and a failed attempt leaves no trace. Without a key (bulk imports),
``SetStock`` also runs set-based for a batch of SKUs (``commands.batching``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.batching import BatchedHandler, BatchFallback
from commands.bus import CommandBus, KeyPolicy
from commands.domain import inventory as domain
from commands.domain.inventory import BucketLevel, StockLevel
from commands.errors import DomainError, NotFound
from commands.events.inventory import InventoryEvent, StockAdjusted, StockSet
from commands.inventory import buckets
from commands.inventory.buckets import LockedStock
from commands.inventory.stock_rows import (
    ItemRow,
    append_events,
    change_item,
    event_fields,
    set_on_hand,
)
from commands.messages.inventory import AdjustStock, SetStock, SetStockBuckets, StockResult
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

KEY_FIELD = ("idempotencyKey",)


def register(bus: CommandBus) -> None:
    keys = KeyPolicy(replay=StockResult.from_response)
    bus.register(SetStock, set_stock, keys=keys)
    bus.register(AdjustStock, adjust_stock, keys=keys)
    bus.register(SetStockBuckets, set_stock_buckets, keys=keys)


async def _set_one(command: SetStock, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    stock = await _lock_stock(uow.conn, command.sku)
    on_hand = domain.decide_set(stock.level, command.on_hand)
    return await _change_on_hand(
        uow, stock, on_hand, lambda row, was: StockSet(**event_fields(row), previous_on_hand=was.on_hand)
    )


async def _set_many(commands: Sequence[SetStock], uow: UnitOfWork) -> list[StockResult | DomainError]:
    """``_set_one`` for many distinct SKUs, set-based: the same checks in the same order and the
    same events, with one statement per step for the whole batch and one ledger append."""
    skus = [command.sku for command in commands]
    if len(set(skus)) < len(skus):
        raise BatchFallback("a SKU appears twice in the batch")
    driver = await asyncpg_of(uow.conn)
    known = await _variant_skus(driver, skus)
    outcomes: dict[str, StockResult | DomainError] = {}
    for command in commands:
        try:
            domain.validate_sku(command.sku)
            if command.sku not in known:
                raise NotFound(f"no product variant has SKU {command.sku}", ["sku"])
            # The range check alone (nothing is reserved at zero), before any row is written.
            domain.decide_set(StockLevel(command.sku, 0, 0), command.on_hand)
        except DomainError as refused:
            outcomes[command.sku] = refused
    levels = await _lock_levels(driver, [sku for sku in skus if sku not in outcomes])
    on_hand: dict[str, int] = {}
    for command in commands:
        if command.sku in outcomes:
            continue
        try:
            on_hand[command.sku] = domain.decide_set(levels[command.sku], command.on_hand)
        except DomainError as refused:
            outcomes[command.sku] = refused
    changed = await set_on_hand(driver, {(sku, 0): units for sku, units in on_hand.items()})
    rows = {row.sku: row for row in changed}
    events = [StockSet(**event_fields(rows[sku]), previous_on_hand=levels[sku].on_hand) for sku in on_hand]
    recorded = await append_events(uow, [(rows[event.sku], event) for event in events])
    for event, appended in zip(events, recorded, strict=True):
        outcomes[event.sku] = StockResult(
            event.sku, event.on_hand, event.reserved, event.available, appended.position
        )
    return [outcomes[sku] for sku in skus]


set_stock = BatchedHandler(_set_one, _set_many)


async def adjust_stock(command: AdjustStock, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    stock = await _lock_stock(uow.conn, command.sku)
    on_hand = domain.decide_adjust(stock.level, command.delta, command.reason)
    return await _change_on_hand(
        uow,
        stock,
        on_hand,
        lambda row, was: StockAdjusted(
            **event_fields(row), delta=row.on_hand - was.on_hand, reason=command.reason
        ),
    )


async def set_stock_buckets(command: SetStockBuckets, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    count = domain.validate_buckets(command.buckets)
    await _variant_exists(await asyncpg_of(uow.conn), command.sku)
    stock = await buckets.flag(uow, command.sku, count)
    level = stock.level
    return StockResult(command.sku, level.on_hand, level.reserved, level.available, uow.last_position)


async def _lock_stock(conn: AsyncConnection, sku: str) -> LockedStock:
    """The SKU's stock rows, locked in bucket order; a catalog SKU never stocked before starts
    at zero in one row."""
    driver = await asyncpg_of(conn)
    await _variant_exists(driver, sku)
    await driver.execute(
        "INSERT INTO inventory_items (sku, on_hand, reserved) VALUES ($1, 0, 0) ON CONFLICT DO NOTHING", sku
    )
    return await buckets.lock_stock(driver, sku)


async def _variant_exists(driver: Any, sku: str) -> None:
    if await driver.fetchval("SELECT 1 FROM catalog_variants WHERE sku = $1", sku) is None:
        raise NotFound(f"no product variant has SKU {sku}", ["sku"])


async def _change_on_hand(
    uow: UnitOfWork,
    stock: LockedStock,
    on_hand: int,
    event: Callable[[ItemRow, BucketLevel], InventoryEvent],
) -> StockResult:
    """The SKU's new on-hand total, each changed row recorded by ``event`` (given the row after
    and as it was): a SKU in one row takes the difference; a SKU in buckets has its free units
    spread over them again (bucket 0 recorded at least: the command's position)."""
    reserved = stock.level.reserved
    if len(stock.rows) == 1:
        (was,) = stock.rows
        row = await change_item(uow.conn, stock.sku, on_hand=on_hand - was.on_hand)
        await append_events(uow, [(row, event(row, was))])
    else:
        await buckets.respread(uow, stock, on_hand - reserved, event, always_record=True)
    return StockResult(stock.sku, on_hand, reserved, on_hand - reserved, uow.last_position)


async def _variant_skus(driver: Any, skus: Sequence[str]) -> set[str]:
    rows = await driver.fetch("SELECT sku FROM catalog_variants WHERE sku = ANY($1::varchar[])", list(skus))
    return {r["sku"] for r in rows}


async def _lock_levels(driver: Any, skus: Sequence[str]) -> dict[str, StockLevel]:
    """The levels of many variant SKUs each in one row, locked in SKU order (a SKU in buckets
    sends the batch down the one-by-one path)."""
    if not skus:
        return {}
    await driver.execute(
        "INSERT INTO inventory_items (sku, on_hand, reserved) "
        "SELECT s, 0, 0 FROM unnest($1::varchar[]) AS s ORDER BY s ON CONFLICT DO NOTHING",
        list(skus),
    )
    rows = await driver.fetch(
        "SELECT sku, on_hand, reserved FROM inventory_items WHERE sku = ANY($1::varchar[]) "
        "ORDER BY sku, bucket FOR UPDATE",
        list(skus),
    )
    # A statement that waited for a row reads the table as of its snapshot: bucket rows added
    # meanwhile (``inventorySetBuckets`` holds bucket 0 while it adds them) are counted anew.
    counted = await driver.fetchval(
        "SELECT count(*) FROM inventory_items WHERE sku = ANY($1::varchar[])", list(skus)
    )
    if counted > len(skus):
        raise BatchFallback("a SKU of the batch keeps its stock in buckets")
    return {r["sku"]: StockLevel(r["sku"], r["on_hand"], r["reserved"]) for r in rows}
