"""Inventory admin command handlers: set or adjust on-hand stock, idempotently.

Both run once per idempotency key: the bus claims the key before the handler
runs and stores the response in the command's transaction, so a retry with the
same key replays it and a failed attempt leaves no trace. Without a key (bulk imports),
``SetStock`` also runs set-based for a batch of SKUs (``commands.batching``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.batching import BatchedHandler, BatchFallback
from commands.bus import CommandBus, KeyPolicy
from commands.domain import inventory as domain
from commands.domain.inventory import StockLevel
from commands.errors import DomainError, NotFound
from commands.events.inventory import InventoryEvent, StockAdjusted, StockSet
from commands.inventory.stock_rows import (
    ItemRow,
    append_events,
    change_item,
    event_fields,
    set_items,
)
from commands.messages.inventory import AdjustStock, SetStock, StockResult
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork

KEY_FIELD = ("idempotencyKey",)


def register(bus: CommandBus) -> None:
    keys = KeyPolicy(replay=StockResult.from_response)
    bus.register(SetStock, set_stock, keys=keys)
    bus.register(AdjustStock, adjust_stock, keys=keys)


async def _set_one(command: SetStock, uow: UnitOfWork) -> StockResult:
    domain.validate_sku(command.sku)
    level = await _lock_level(uow.conn, command.sku)
    on_hand = domain.decide_set(level, command.on_hand)
    row = await change_item(uow.conn, command.sku, on_hand=on_hand - level.on_hand)
    event = StockSet(**event_fields(row), previous_on_hand=level.on_hand)
    return await _finish(uow, row, event)


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
    rows = await set_items(driver, on_hand)
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
    level = await _lock_level(uow.conn, command.sku)
    on_hand = domain.decide_adjust(level, command.delta, command.reason)
    row = await change_item(uow.conn, command.sku, on_hand=on_hand - level.on_hand)
    event = StockAdjusted(**event_fields(row), delta=command.delta, reason=command.reason)
    return await _finish(uow, row, event)


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


async def _variant_skus(driver: Any, skus: Sequence[str]) -> set[str]:
    rows = await driver.fetch("SELECT sku FROM catalog_variants WHERE sku = ANY($1::varchar[])", list(skus))
    return {r["sku"] for r in rows}


async def _lock_levels(driver: Any, skus: Sequence[str]) -> dict[str, StockLevel]:
    """``_lock_level`` for many variant SKUs, their rows locked in SKU order."""
    if not skus:
        return {}
    await driver.execute(
        "INSERT INTO inventory_items (sku, on_hand, reserved) "
        "SELECT s, 0, 0 FROM unnest($1::varchar[]) AS s ORDER BY s ON CONFLICT DO NOTHING",
        list(skus),
    )
    rows = await driver.fetch(
        "SELECT sku, on_hand, reserved FROM inventory_items WHERE sku = ANY($1::varchar[]) "
        "ORDER BY sku FOR UPDATE",
        list(skus),
    )
    return {r["sku"]: StockLevel(r["sku"], r["on_hand"], r["reserved"]) for r in rows}


async def _finish(uow: UnitOfWork, row: ItemRow, event: InventoryEvent) -> StockResult:
    await append_events(uow, [(row, event)])
    return StockResult(event.sku, event.on_hand, event.reserved, event.available, uow.last_position)
