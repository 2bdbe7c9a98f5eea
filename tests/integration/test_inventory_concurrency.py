"""Many buyers for the last units, and sweepers racing each other and checkout."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from sqlalchemy import text

from commands.domain.inventory import StockLevel
from commands.inventory import lease_sweep, reservations
from commands.inventory.reservations import OutOfStock
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    META,
    assert_versions_counted,
    expire_now,
    in_uow,
    inventory_events,
    items,
    ledger_fold,
    new_order,
    reservation_rows,
    reserve,
    set_stock,
    worst_overdraft,
)


async def test_fifty_buyers_for_five_units(stocked: Container) -> None:
    orders = [new_order() for _ in range(50)]
    stop = asyncio.Event()
    watcher = asyncio.create_task(worst_overdraft(stocked, stop))

    async def buy(order: str) -> bool:
        try:
            await reserve(stocked, order, [("INV-B", 1)])
        except OutOfStock as exc:
            assert exc.skus == ["INV-B"]
            return False
        return True

    outcomes = await asyncio.gather(*(buy(o) for o in orders))
    stop.set()
    assert await watcher == 0
    assert outcomes.count(True) == 5
    assert (await items(stocked))["INV-B"] == StockLevel("INV-B", 5, 5)
    winners = {o for o, ok in zip(orders, outcomes, strict=True) if ok}
    reserved_events = [e for e in await inventory_events(stocked) if e.type == "StockReserved"]
    assert {e.data["order_id"] for e in reserved_events} == winners
    # Stream versions are contiguous: appends of one SKU never raced.
    versions = [e.stream_version for e in await inventory_events(stocked) if e.stream_id == "inventory-INV-B"]
    assert versions == list(range(1, len(versions) + 1))
    assert sorted(e.data["reserved"] for e in reserved_events) == [1, 2, 3, 4, 5]
    assert await ledger_fold(stocked) == await items(stocked)
    await assert_versions_counted(stocked)


async def test_multi_line_buyers_in_any_line_order_never_deadlock_or_oversell(stocked: Container) -> None:
    await set_stock(stocked, "INV-C", 7)
    rng = random.Random(7)
    plans = []
    for _ in range(40):
        lines = [("INV-A", rng.randint(1, 2)), ("INV-B", 1), ("INV-C", rng.randint(1, 2))]
        rng.shuffle(lines)
        plans.append((new_order(), lines))

    async def buy(order: str, lines: list[tuple[str, int]]) -> bool:
        try:
            await reserve(stocked, order, lines)
        except OutOfStock:
            return False
        return True

    outcomes = await asyncio.wait_for(asyncio.gather(*(buy(o, lines) for o, lines in plans)), 30)
    levels = await items(stocked)
    taken: Counter[str] = Counter()
    for (_, lines), ok in zip(plans, outcomes, strict=True):
        if ok:
            for sku, quantity in lines:
                taken[sku] += quantity
    for sku in ("INV-A", "INV-B", "INV-C"):
        assert levels[sku].reserved == taken[sku] <= levels[sku].on_hand
    assert 1 <= outcomes.count(True) <= 5
    assert await ledger_fold(stocked) == levels
    await assert_versions_counted(stocked)


async def test_two_sweepers_release_each_expired_reservation_once(stocked: Container) -> None:
    await set_stock(stocked, "INV-A", 40)
    due = [new_order() for _ in range(20)]
    for order in due:
        # The first order holds two SKUs: one ReservationExpired per SKU, still once each.
        await reserve(stocked, order, [("INV-A", 1), ("INV-B", 1)] if order == due[0] else [("INV-A", 1)])
        await expire_now(stocked, order)
    still_leased = new_order()
    await reserve(stocked, still_leased, [("INV-A", 2)])

    first, second = await asyncio.gather(
        lease_sweep.expire_due(stocked.engine, META), lease_sweep.expire_due(stocked.engine, META, limit=7)
    )
    # A sweeper that skipped an order (another held it) leaves it to the other or the next round.
    leftover = await lease_sweep.expire_due(stocked.engine, META)
    swept = first + second + leftover
    assert sorted(swept) == sorted(due)
    assert len(set(swept)) == len(swept)

    expired = [e for e in await inventory_events(stocked) if e.type == "ReservationExpired"]
    assert Counter(e.data["order_id"] for e in expired) == Counter({**{o: 1 for o in due}, due[0]: 2})
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 40, 2)
    assert (await items(stocked))["INV-B"] == StockLevel("INV-B", 5, 0)
    assert {r.status for r in await reservation_rows(stocked, still_leased)} == {"active"}
    assert await lease_sweep.expire_due(stocked.engine, META) == []
    assert await ledger_fold(stocked) == await items(stocked)
    await assert_versions_counted(stocked)


async def test_commit_racing_the_sweeper_has_one_winner(stocked: Container) -> None:
    for _ in range(10):
        order = new_order()
        await reserve(stocked, order, [("INV-A", 3)])
        await expire_now(stocked, order)
        swept, _ = await asyncio.gather(
            lease_sweep.expire_due(stocked.engine, META),
            in_uow(stocked, lambda uow, o=order: reservations.commit(uow, o)),
        )
        status = {r.status for r in await reservation_rows(stocked, order)}
        level = (await items(stocked))["INV-A"]
        if swept == [order]:
            assert status == {"expired"} and level.reserved == 0
        else:
            assert status == {"committed"} and level.reserved == 3
            await in_uow(stocked, lambda uow, o=order: reservations.release(uow, o, reason="test"))
    assert await ledger_fold(stocked) == await items(stocked)
    await assert_versions_counted(stocked)


async def test_the_sweeper_leaves_an_order_whose_lock_a_settlement_holds(stocked: Container) -> None:
    order = new_order()
    await reserve(stocked, order, [("INV-A", 2)])
    await expire_now(stocked, order)
    async with stocked.engine.begin() as settling:
        # What a settlement of the order holds while it commits or re-takes the reservations.
        await settling.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"order-{order}"}
        )
        assert await lease_sweep.expire_due(stocked.engine, META) == []
        assert [row.status for row in await reservation_rows(stocked, order)] == ["active"]
    assert await lease_sweep.expire_due(stocked.engine, META) == [order]
    assert [row.status for row in await reservation_rows(stocked, order)] == ["expired"]
    await assert_versions_counted(stocked)
