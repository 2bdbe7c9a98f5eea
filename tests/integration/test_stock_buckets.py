"""A hot SKU's stock in buckets: spread, sold, given back, rebalanced and gathered again, with
every stock row's numbers, its reservation rows and its ledger stream agreeing throughout."""

from __future__ import annotations

import asyncio

import pytest

from commands.domain.inventory import StockLevel
from commands.errors import InvalidInput
from commands.inventory import buckets, lease_sweep, reservations
from commands.inventory.reservations import OutOfStock
from commands.messages.inventory import AdjustStock, SetStockBuckets, StockResult
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    LEASE,
    META,
    assert_stock_consistent,
    bucket_rows,
    expire_now,
    in_uow,
    inventory_events,
    items,
    new_order,
    reservation_rows,
    reserve,
    set_stock,
)
from tests.support.migrations import down_and_up, migrate


async def flag(container: Container, sku: str, count: int) -> StockResult:
    return await container.bus.dispatch(SetStockBuckets(sku, count), META)


async def test_flagging_spreads_the_free_stock_evenly_and_keeps_the_total(stocked: Container) -> None:
    await set_stock(stocked, "INV-A", 10)
    result = await flag(stocked, "INV-A", 4)
    assert (result.on_hand, result.reserved, result.available) == (10, 0, 10)
    assert [level.on_hand for level in (await bucket_rows(stocked, "INV-A")).values()] == [3, 3, 2, 2]
    streams = {e.stream_id for e in await inventory_events(stocked) if e.type == "StockRebalanced"}
    assert streams == {"inventory-INV-A", "inventory-INV-A~1", "inventory-INV-A~2", "inventory-INV-A~3"}
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 0)
    await assert_stock_consistent(stocked)


async def test_spreading_a_sku_as_it_already_is_records_nothing(stocked: Container) -> None:
    first = await flag(stocked, "INV-A", 4)
    events = len(await inventory_events(stocked))
    again = await flag(stocked, "INV-A", 4)
    assert first.position is not None and again.position is None
    assert (again.on_hand, again.available) == (10, 10)
    assert len(await inventory_events(stocked)) == events


async def test_a_bucket_count_outside_one_to_sixteen_is_refused_and_changes_nothing(
    stocked: Container,
) -> None:
    for count in (0, 17, -1):
        with pytest.raises(InvalidInput, match="buckets must be between 1 and 16"):
            await flag(stocked, "INV-A", count)
    assert list(await bucket_rows(stocked, "INV-A")) == [0]


async def test_an_untracked_sku_is_not_spread(stocked: Container) -> None:
    with pytest.raises(InvalidInput, match="the stock of INV-UNTRACKED is not tracked"):
        await flag(stocked, "INV-UNTRACKED", 4)
    assert await bucket_rows(stocked, "INV-UNTRACKED") == {}


async def test_setting_stock_while_the_sku_is_being_spread_counts_every_bucket(stocked: Container) -> None:
    # A set that waited for bucket 0 while the flag added rows must still see (and count) them.
    await set_stock(stocked, "INV-A", 100)
    for count in (4, 1, 8, 2, 6, 1, 3):
        await asyncio.gather(flag(stocked, "INV-A", count), set_stock(stocked, "INV-A", 100))
        assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 100, 0)
    await assert_stock_consistent(stocked)


async def test_a_line_larger_than_any_bucket_takes_from_several(stocked: Container) -> None:
    await flag(stocked, "INV-A", 4)  # 10 units: 3, 3, 2, 2
    order = new_order()
    await reserve(stocked, order, [("INV-A", 7)])
    rows = await reservation_rows(stocked, order)
    assert sum(r.quantity for r in rows) == 7 and len(rows) > 1
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 7)
    with pytest.raises(OutOfStock):
        await reserve(stocked, new_order(), [("INV-A", 4)])
    await reserve(stocked, new_order(), [("INV-A", 3)])  # the last 3, wherever they are
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 10)
    await assert_stock_consistent(stocked)


async def test_releases_and_expiries_give_units_back_to_the_bucket_they_came_from(stocked: Container) -> None:
    await flag(stocked, "INV-A", 5)  # 2 units in each bucket
    released, expired = new_order(), new_order()
    await reserve(stocked, released, [("INV-A", 2)])
    await reserve(stocked, expired, [("INV-A", 2)], lease=LEASE)
    before = {(r.sku, r.quantity) for r in await reservation_rows(stocked, released)}
    assert before == {("INV-A", 2)}
    await in_uow(stocked, lambda uow: reservations.release(uow, released, reason="cancelled"))
    await expire_now(stocked, expired)
    assert await lease_sweep.expire_due(stocked.engine, META) == [expired]
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 0)
    assert all(level.reserved == 0 for level in (await bucket_rows(stocked, "INV-A")).values())
    await assert_stock_consistent(stocked)


async def test_set_and_adjust_of_a_bucketed_sku_change_the_total_and_keep_reservations(
    stocked: Container,
) -> None:
    await flag(stocked, "INV-A", 4)
    order = new_order()
    await reserve(stocked, order, [("INV-A", 3)])
    result = await set_stock(stocked, "INV-A", 21)
    assert (result.on_hand, result.reserved, result.available) == (21, 3, 18)
    adjusted = await stocked.bus.dispatch(AdjustStock("INV-A", -16, "recount"), META)
    assert (adjusted.on_hand, adjusted.available) == (5, 2)
    with pytest.raises(InvalidInput, match="below the 3 units reserved"):
        await stocked.bus.dispatch(AdjustStock("INV-A", -3, "too far"), META)
    rows = await bucket_rows(stocked, "INV-A")
    assert sum(level.on_hand for level in rows.values()) == 5
    assert all(level.reserved <= level.on_hand for level in rows.values())
    await assert_stock_consistent(stocked)


async def test_gathering_into_one_bucket_moves_free_units_and_the_sweep_brings_back_later_releases(
    stocked: Container,
) -> None:
    await flag(stocked, "INV-A", 4)
    holder = new_order()
    await reserve(stocked, holder, [("INV-A", 6)])
    held = [r.quantity for r in await reservation_rows(stocked, holder)]
    await flag(stocked, "INV-A", 1)
    rows = await bucket_rows(stocked, "INV-A")
    assert all(level.on_hand == level.reserved for bucket, level in rows.items() if bucket > 0)
    assert rows[0].available == 4
    await in_uow(stocked, lambda uow: reservations.release(uow, holder, reason="cancelled"))
    assert sum(held) == 6
    # Released units went back to the buckets they were reserved in; the sweep gathers them.
    assert (await bucket_rows(stocked, "INV-A"))[0].available < 10
    assert await buckets.rebalance_due(stocked.engine, META) == ["INV-A"]
    rows = await bucket_rows(stocked, "INV-A")
    assert rows[0] == StockLevel("INV-A", 10, 0)
    assert all(level.on_hand == 0 for bucket, level in rows.items() if bucket > 0)
    assert await buckets.rebalance_due(stocked.engine, META) == []  # nothing left to move
    await assert_stock_consistent(stocked)


async def test_the_sweep_evens_out_buckets_that_buyers_emptied_unevenly(stocked: Container) -> None:
    await set_stock(stocked, "INV-A", 40)
    await flag(stocked, "INV-A", 4)  # 10 each
    await reserve(stocked, new_order(), [("INV-A", 10)])  # one whole bucket, whichever
    free = sorted(level.available for level in (await bucket_rows(stocked, "INV-A")).values())
    assert free == [0, 10, 10, 10]
    assert await buckets.rebalance_due(stocked.engine, META) == ["INV-A"]
    after = [level.available for level in (await bucket_rows(stocked, "INV-A")).values()]
    assert after == [8, 8, 7, 7]
    assert await buckets.rebalance_due(stocked.engine, META) == []
    await assert_stock_consistent(stocked)


async def test_a_late_payment_takes_the_stock_again_from_whichever_buckets_have_it(
    stocked: Container,
) -> None:
    await flag(stocked, "INV-A", 2)  # 5 and 5
    order = new_order()
    await reserve(stocked, order, [("INV-A", 4)])
    await in_uow(stocked, lambda uow: reservations.release(uow, order, reason="declined"))
    # Another buyer takes 5, perhaps from the bucket the first order had used.
    await reserve(stocked, new_order(), [("INV-A", 5)])
    assert await in_uow(stocked, lambda uow: reservations.rereserve(uow, order, lease=LEASE))
    rows = await reservation_rows(stocked, order)
    assert {r.status for r in rows} == {"committed"} and sum(r.quantity for r in rows) == 4
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 9)
    await assert_stock_consistent(stocked)


async def test_going_back_before_buckets_waits_for_them_to_empty_and_merges_split_reservations(
    stocked: Container,
) -> None:
    await flag(stocked, "INV-A", 4)  # 3, 3, 2, 2
    order = new_order()
    await reserve(stocked, order, [("INV-A", 7)])  # from buckets 0, 1 and 2
    await stocked.connections.close()  # no kept session holds the tables while they are altered
    async with stocked.engine.connect() as conn:
        with pytest.raises(Exception, match="stock is still spread over buckets"):
            await conn.run_sync(down_and_up("0014_inventory_stream_version"))
        await conn.rollback()
        # Each migration is its own transaction: those after 0015 went down before it refused.
        await conn.run_sync(migrate("head"))
        await conn.commit()
    await in_uow(stocked, lambda uow: reservations.release(uow, order, reason="cancelled"))
    await flag(stocked, "INV-A", 1)
    await buckets.rebalance_due(stocked.engine, META)
    await stocked.connections.close()
    async with stocked.engine.connect() as conn:
        await conn.run_sync(down_and_up("0014_inventory_stream_version"))
        await conn.commit()
    assert [(r.sku, r.quantity, r.status) for r in await reservation_rows(stocked, order)] == [
        ("INV-A", 7, "released")
    ]
    assert await bucket_rows(stocked, "INV-A") == {0: StockLevel("INV-A", 10, 0)}
