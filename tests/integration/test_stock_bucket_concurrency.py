"""Many buyers of a hot SKU whose stock is in buckets, racing the rebalancing sweep, admins and
cancellations: no bucket ever oversold, no buyer refused while the SKU had the units, no
deadlock, and every row, reservation and ledger stream agreeing at the end."""

from __future__ import annotations

import asyncio
import random

from commands.domain.inventory import StockLevel
from commands.inventory import buckets, reservations
from commands.inventory.reservations import OutOfStock
from commands.messages.inventory import AdjustStock, SetStockBuckets
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    META,
    assert_stock_consistent,
    in_uow,
    items,
    new_order,
    reserve,
    set_stock,
    worst_overdraft,
)

HOT = "INV-A"
COLD = "INV-B"


async def _sweep_until(container: Container, stop: asyncio.Event) -> int:
    sweeps = 0
    while not stop.is_set():
        await buckets.rebalance_due(container.engine, META)
        sweeps += 1
        await asyncio.sleep(0.01)  # a sweep far more often than in production
    return sweeps


def _quantities_summing_to(total: int, rng: random.Random) -> list[int]:
    quantities: list[int] = []
    while sum(quantities) < total:
        quantities.append(min(rng.randint(1, 3), total - sum(quantities)))
    return quantities


async def test_buyers_of_a_bucketed_sku_all_get_the_stock_there_is_and_none_more(stocked: Container) -> None:
    await set_stock(stocked, HOT, 60)
    await set_stock(stocked, COLD, 40)
    await stocked.bus.dispatch(SetStockBuckets(HOT, 8), META)
    rng = random.Random(7)
    # Exactly the stock there is, in lines of 1 to 3 units, some with a second (cold) SKU: with
    # no cancellation every one of them must get its units, however the buckets were emptied.
    orders: list[list[tuple[str, int]]] = [
        [(HOT, quantity), (COLD, 1)] if i % 4 == 0 else [(HOT, quantity)]
        for i, quantity in enumerate(_quantities_summing_to(60, rng))
    ]
    stop = asyncio.Event()
    watcher = asyncio.create_task(worst_overdraft(stocked, stop))
    sweeper = asyncio.create_task(_sweep_until(stocked, stop))

    async def buy(lines: list[tuple[str, int]]) -> bool:
        try:
            await reserve(stocked, new_order(), lines)
        except OutOfStock as short:
            assert short.skus == [HOT]
            return False
        return True

    first = await asyncio.wait_for(asyncio.gather(*(buy(lines) for lines in orders)), timeout=120)
    late = await asyncio.wait_for(asyncio.gather(*(buy([(HOT, 1)]) for _ in range(10))), timeout=60)
    stop.set()
    assert await watcher == 0
    assert await sweeper > 0
    assert first.count(False) == 0, "a buyer was refused while the SKU still had the units"
    assert late.count(True) == 0
    assert (await items(stocked))[HOT] == StockLevel(HOT, 60, 60)
    await assert_stock_consistent(stocked)


async def test_buyers_cancellations_admins_and_the_sweep_together_leave_everything_consistent(
    stocked: Container,
) -> None:
    await set_stock(stocked, HOT, 80)
    await set_stock(stocked, COLD, 40)
    await stocked.bus.dispatch(SetStockBuckets(HOT, 6), META)
    rng = random.Random(11)
    stop = asyncio.Event()
    sweeper = asyncio.create_task(_sweep_until(stocked, stop))

    async def buy_and_maybe_cancel(lines: list[tuple[str, int]], cancel: bool) -> None:
        order = new_order()
        try:
            await reserve(stocked, order, lines)
        except OutOfStock:
            return
        if cancel:
            await in_uow(stocked, lambda uow: reservations.release(uow, order, reason="cancelled"))

    async def admin(step: int) -> None:
        if step % 3 == 0:
            await stocked.bus.dispatch(SetStockBuckets(HOT, rng.choice((1, 4, 6, 8))), META)
        else:
            await stocked.bus.dispatch(AdjustStock(HOT, 2, f"restock {step}"), META)

    buyers = [
        buy_and_maybe_cancel(
            [(HOT, rng.randint(1, 4))] if i % 4 else [(HOT, rng.randint(1, 2)), (COLD, 1)], rng.random() < 0.4
        )
        for i in range(150)
    ]
    admins = [admin(step) for step in range(12)]
    await asyncio.wait_for(asyncio.gather(*buyers, *admins), timeout=120)
    stop.set()
    await sweeper
    hot = (await items(stocked))[HOT]
    assert hot.on_hand == 80 + 2 * sum(1 for step in range(12) if step % 3)
    assert 0 <= hot.reserved <= hot.on_hand
    await assert_stock_consistent(stocked)
    # Whatever the bucket count ended at, a full sweep leaves the free units evenly spread.
    await buckets.rebalance_due(stocked.engine, META)
    assert await buckets.rebalance_due(stocked.engine, META) == []
    assert (await items(stocked))[HOT] == StockLevel(HOT, hot.on_hand, hot.reserved)
