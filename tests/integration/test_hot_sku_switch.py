"""The automatic hot-SKU switch: a SKU reserved faster than the threshold is spread over buckets
by itself, as the switch's doing; SKUs an admin decided on, quiet ones and nearly sold-out ones
are left as they are; and buyers reserving while it switches never get more than the stock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from commands.domain.inventory import StockLevel
from commands.inventory import buckets, hot_switch
from commands.inventory.hot_switch import HotSwitch
from commands.inventory.reservations import OutOfStock
from commands.messages.inventory import SetStockBuckets
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    META,
    assert_stock_consistent,
    bucket_rows,
    inventory_events,
    items,
    new_order,
    reserve,
    set_stock,
)
from tests.support.migrations import migrate

SWITCH_META = MessageMetadata(actor="system:stock-hot-switch")
# Ten reservations within five seconds make a SKU hot.
SWITCH = HotSwitch(per_second=2.0, buckets=4, window_seconds=5.0)


async def _reserve_many(container: Container, sku: str, count: int) -> None:
    for _ in range(count):
        await reserve(container, new_order(), [(sku, 1)])


async def _set_by(container: Container, sku: str) -> tuple[int, str] | None:
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT buckets, set_by FROM inventory_hot_skus WHERE sku = :s"), {"s": sku}
            )
        ).first()
    return None if row is None else (int(row.buckets), str(row.set_by))


async def test_a_sku_reserved_faster_than_the_threshold_is_spread_as_the_switchs_doing(
    stocked: Container,
) -> None:
    await set_stock(stocked, "INV-A", 100)
    await _reserve_many(stocked, "INV-A", 12)
    await _reserve_many(stocked, "INV-B", 3)  # reserved, but not often enough
    assert await hot_switch.hot_skus(stocked.engine, SWITCH) == {"INV-A": 12}
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH) == ["INV-A"]
    rows = await bucket_rows(stocked, "INV-A")
    assert list(rows) == [0, 1, 2, 3]
    # The free units are spread; what buyers hold stays in bucket 0, where they took it.
    assert sum(level.on_hand for level in rows.values()) == 100
    assert rows[0].reserved == 12 and [rows[b].available for b in (0, 1, 2, 3)] == [22, 22, 22, 22]
    assert await _set_by(stocked, "INV-A") == (4, buckets.AUTO)
    spread = [e for e in await inventory_events(stocked) if e.type == "StockRebalanced"]
    assert {e.metadata["actor"] for e in spread} == {"system:stock-hot-switch"}
    assert list(await bucket_rows(stocked, "INV-B")) == [0] and await _set_by(stocked, "INV-B") is None
    # Still hot, but decided: a second look changes nothing and records nothing.
    events = len(await inventory_events(stocked))
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH) == []
    assert len(await inventory_events(stocked)) == events
    await assert_stock_consistent(stocked)


async def test_skus_an_admin_decided_on_are_left_as_the_admin_set_them(stocked: Container) -> None:
    await set_stock(stocked, "INV-A", 100)
    await set_stock(stocked, "INV-B", 100)
    await stocked.bus.dispatch(SetStockBuckets("INV-A", 1), META)  # pinned to its one row
    await stocked.bus.dispatch(SetStockBuckets("INV-B", 2), META)
    await _reserve_many(stocked, "INV-A", 12)
    await _reserve_many(stocked, "INV-B", 12)
    # Decided SKUs are not even looked at (no lock on their busy rows).
    assert await hot_switch.hot_skus(stocked.engine, SWITCH) == {}
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH) == []
    assert list(await bucket_rows(stocked, "INV-A")) == [0]
    assert await _set_by(stocked, "INV-A") == (1, buckets.ADMIN)
    assert list(await bucket_rows(stocked, "INV-B")) == [0, 1]
    assert await _set_by(stocked, "INV-B") == (2, buckets.ADMIN)
    # An admin may spread a SKU the switch spread, or gather it back: the admin's word then holds.
    await stocked.bus.dispatch(SetStockBuckets("INV-B", 1), META)
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH) == []
    assert await _set_by(stocked, "INV-B") == (1, buckets.ADMIN)
    await assert_stock_consistent(stocked)


async def test_nearly_sold_out_quiet_and_switched_off_skus_are_not_spread(stocked: Container) -> None:
    await set_stock(stocked, "INV-B", 14)
    await _reserve_many(stocked, "INV-B", 12)  # hot, but 2 free units for 4 buckets
    assert "INV-B" in await hot_switch.hot_skus(stocked.engine, SWITCH)
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH) == []
    await set_stock(stocked, "INV-A", 100)
    await _reserve_many(stocked, "INV-A", 12)
    off = HotSwitch(per_second=0.0, buckets=4)
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, off) == []
    await asyncio.sleep(0.6)
    # Those reservations are older than a half-second window: not hot any more.
    short = HotSwitch(per_second=2.0, buckets=4, window_seconds=0.5)
    assert await hot_switch.hot_skus(stocked.engine, short) == {}
    assert await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, short) == []
    assert list(await bucket_rows(stocked, "INV-A")) == [0]
    assert list(await bucket_rows(stocked, "INV-B")) == [0]


async def test_buyers_reserving_while_the_switch_spreads_get_exactly_the_stock(stocked: Container) -> None:
    """75 buyers of one unit each for 60 units: the first 15 make the SKU hot, and the switch
    spreads it while the other 60 reserve. 60 are served and 15 refused, and every row,
    reservation and stream agrees at the end."""
    await set_stock(stocked, "INV-A", 60)
    served: list[str] = []
    refused: list[str] = []

    async def buyer(i: int) -> None:
        await asyncio.sleep(i * 0.002)  # a sale that lasts a while, not one burst
        order = new_order()
        try:
            await reserve(stocked, order, [("INV-A", 1)])
            served.append(order)
        except OutOfStock:
            refused.append(order)

    async def switch() -> list[str]:
        spread: list[str] = []
        while not spread and len(served) + len(refused) < 75:
            spread = await hot_switch.spread_hot_skus(stocked.engine, SWITCH_META, SWITCH)
        return spread

    await asyncio.gather(*(buyer(0) for _ in range(15)))
    spread, _ = await asyncio.gather(switch(), asyncio.gather(*(buyer(i) for i in range(60))))
    assert spread == ["INV-A"]
    assert (len(served), len(refused)) == (60, 15)
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 60, 60)
    assert len(await bucket_rows(stocked, "INV-A")) == 4
    await assert_stock_consistent(stocked)


async def test_the_migration_round_trip_keeps_flags_and_pins_skus_gathered_before_it(
    stocked: Container,
) -> None:
    await set_stock(stocked, "INV-A", 10)
    await stocked.bus.dispatch(SetStockBuckets("INV-A", 4), META)
    await stocked.bus.dispatch(SetStockBuckets("INV-A", 1), META)  # its empty rows 1-3 remain
    await stocked.bus.dispatch(SetStockBuckets("INV-B", 2), META)
    await stocked.connections.close()  # no kept session holds the tables while they are altered
    async with stocked.engine.connect() as conn:
        await conn.run_sync(migrate("0016_inventory_view_buckets"))
        await conn.commit()
        # As the release before this one left a SKU gathered back: extra rows, no flag.
        assert (await conn.execute(text("SELECT sku FROM inventory_hot_skus"))).scalars().all() == ["INV-B"]
        await conn.run_sync(migrate("head"))
        await conn.commit()
    assert await _set_by(stocked, "INV-A") == (1, buckets.ADMIN)  # pinned again by the upgrade
    assert await _set_by(stocked, "INV-B") == (2, buckets.ADMIN)


async def test_a_busy_ledger_is_judged_over_the_time_its_newest_events_cover(
    stocked: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer events looked at than the window held: the rate is theirs, not spread over 5 s."""
    await set_stock(stocked, "INV-A", 100)
    await _reserve_many(stocked, "INV-A", 12)
    steady = HotSwitch(per_second=3.0, buckets=4, window_seconds=5.0)  # 15 within 5 s
    assert await hot_switch.hot_skus(stocked.engine, steady) == {}
    monkeypatch.setattr(hot_switch, "LOOKED_AT_EVENTS", 10)
    # The newest 10 events are those reservations, all within a second or two.
    assert await hot_switch.hot_skus(stocked.engine, steady) == {"INV-A": 10}
