"""The inventory read model equals a fold of the ledger, incrementally, out of order and rebuilt."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from commands.domain.inventory import StockLevel
from commands.inventory import reservations
from commands.messages.inventory import AdjustStock
from commands.store.driver import asyncpg_of
from gateway.bootstrap.container import Container
from projections.inventory import InventoryProjection
from tests.support.inventory import (
    META,
    PRODUCT_ID,
    expire_now,
    in_uow,
    inventory_events,
    items,
    ledger_fold,
    new_order,
    reserve,
    set_stock,
)


async def _history(container: Container) -> None:
    """A bit of everything: set, adjust, reserve, commit, consume, release, expire."""
    shipped, cancelled, lapsed = new_order(), new_order(), new_order()
    await container.bus.dispatch(AdjustStock("INV-C", 6, "delivery"), META)
    await reserve(container, shipped, [("INV-A", 2), ("INV-C", 1)])
    await reserve(container, cancelled, [("INV-B", 2)])
    await reserve(container, lapsed, [("INV-A", 1), ("INV-B", 1)])
    await in_uow(container, lambda uow: reservations.commit(uow, shipped))
    await in_uow(container, lambda uow: reservations.consume(uow, shipped))
    await in_uow(container, lambda uow: reservations.release(uow, cancelled, reason="declined"))
    await expire_now(container, lapsed)
    await reservations.expire_due(container.engine, META)
    await in_uow(container, lambda uow: reservations.rereserve(uow, lapsed, lease=timedelta(minutes=1)))
    await container.bus.dispatch(AdjustStock("INV-A", -3, "damaged"), META)


async def _view(container: Container, table: str = "inventory_view") -> dict[str, Any]:
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT sku, product_id, on_hand, reserved, available, stream_version, updated_at "
                f"FROM {table} ORDER BY sku"
            )
        )
        return {row.sku: tuple(row) for row in result}


def _levels(view: dict[str, Any]) -> dict[str, StockLevel]:
    return {sku: StockLevel(sku, row[2], row[3]) for sku, row in view.items()}


async def test_projection_equals_the_fold_of_the_ledger(stocked: Container) -> None:
    await _history(stocked)
    await stocked.runner("inventory").catch_up()
    view = await _view(stocked)
    assert _levels(view) == await ledger_fold(stocked) == await items(stocked)
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 5, 1)
    for row in view.values():
        assert row[1] == str(PRODUCT_ID)
        assert row[4] == row[2] - row[3]
    last_versions: dict[str, int] = {}
    for event in await inventory_events(stocked):
        last_versions[event.data["sku"]] = event.stream_version
    assert {sku: row[5] for sku, row in view.items()} == last_versions

    level = await stocked.services.inventory.get("INV-A")
    assert level is not None and (level.on_hand, level.reserved, level.available) == (5, 1, 4)
    assert await stocked.services.inventory.get("INV-UNTRACKED") is None


async def test_out_of_order_and_repeated_delivery_folds_to_the_same_rows(stocked: Container) -> None:
    await _history(stocked)
    events = await inventory_events(stocked)
    copy = InventoryProjection(stocked.engine).rebuild_copy("shuffled")
    assert isinstance(copy, InventoryProjection)
    await copy.setup()
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    for chunk in (shuffled[:9], shuffled[9:], shuffled):
        async with stocked.engine.begin() as conn:
            await copy.apply(chunk, await asyncpg_of(conn))
    assert _levels(await _view(stocked, copy.table)) == await ledger_fold(stocked)


async def test_rebuild_gives_the_same_rows_and_keeps_serving(stocked: Container) -> None:
    await _history(stocked)
    runner = stocked.runner("inventory")
    await runner.catch_up()
    queries = stocked.services.inventory
    before_view = await _view(stocked)
    before = await queries.by_skus(["INV-A", "INV-B"])

    await stocked.rebuilder.run(runner)

    assert await _view(stocked) == before_view
    assert await queries.by_skus(["INV-A", "INV-B"]) == before
    async with stocked.engine.connect() as conn:
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'inventory_view%'"))
        ).scalars()
        assert list(tables) == ["inventory_view"]
        names = (await conn.execute(text("SELECT name FROM projection_checkpoints"))).scalars().all()
        assert "inventory~rebuild" not in names
    # The promoted table is the live one: new events keep flowing into it.
    await set_stock(stocked, "INV-B", 9)
    await runner.catch_up()
    level = await queries.get("INV-B")
    assert level is not None and level.on_hand == 9
    assert _levels(await _view(stocked)) == await ledger_fold(stocked)
