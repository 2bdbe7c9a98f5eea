"""Reservations against real PostgreSQL: leases, commit, release, consume, re-reserve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.domain.inventory import StockLevel
from commands.errors import InvalidInput
from commands.inventory import lease_sweep, reservations, stock_taking
from commands.inventory.reservations import OutOfStock, ReservationLine
from commands.messages.inventory import SetStockBuckets
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import UnitOfWork
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    META,
    assert_stock_consistent,
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
)


async def test_reserve_takes_tracked_lines_and_ignores_untracked(stocked: Container) -> None:
    order = new_order()
    before = datetime.now(UTC)
    expires = await reserve(stocked, order, [("INV-B", 2), ("INV-A", 3), ("INV-UNTRACKED", 7), ("INV-A", 1)])
    assert expires is not None and before + timedelta(minutes=14) < expires < before + timedelta(minutes=16)
    levels = await items(stocked)
    assert levels["INV-A"] == StockLevel("INV-A", 10, 4)
    assert levels["INV-B"] == StockLevel("INV-B", 5, 2)
    assert "INV-UNTRACKED" not in levels
    rows = await reservation_rows(stocked, order)
    assert [(r.sku, r.quantity, r.status) for r in rows] == [("INV-A", 4, "active"), ("INV-B", 2, "active")]
    reserved = [e for e in await inventory_events(stocked) if e.type == "StockReserved"]
    assert [(e.stream_id, e.data["order_id"], e.data["available"]) for e in reserved] == [
        ("inventory-INV-A", order, 6),
        ("inventory-INV-B", order, 3),
    ]
    assert reserved[0].metadata["actor"] == META.actor
    # Asking again for the same order holds nothing more.
    assert await reserve(stocked, order, [("INV-A", 4), ("INV-B", 2)]) == expires
    assert (await items(stocked))["INV-A"].reserved == 4


async def test_out_of_stock_names_every_short_sku_and_changes_nothing(stocked: Container) -> None:
    order = new_order()
    async with UnitOfWork(stocked.engine, META) as uow:
        with pytest.raises(OutOfStock) as caught:
            await reservations.reserve(
                uow,
                order,
                [ReservationLine("INV-A", 3), ReservationLine("INV-C", 1), ReservationLine("INV-B", 6)],
                lease=timedelta(minutes=5),
            )
        # The refusal rolled back only its own savepoint: the caller's transaction is usable.
        assert (
            await reservations.reserve(uow, order, [ReservationLine("INV-A", 1)], lease=timedelta(1))
            is not None
        )
        await uow.commit()
    assert caught.value.code == "OUT_OF_STOCK"
    assert caught.value.skus == ["INV-B", "INV-C"]
    assert "INV-B" in caught.value.message and "INV-C" in caught.value.message
    assert (await items(stocked))["INV-A"].reserved == 1
    assert (await items(stocked))["INV-B"].reserved == 0
    assert [r.sku for r in await reservation_rows(stocked, order)] == ["INV-A"]


async def test_nothing_tracked_returns_none(stocked: Container) -> None:
    order = new_order()
    assert await reserve(stocked, order, [("INV-UNTRACKED", 2), ("NOT-IN-CATALOG", 1)]) is None
    assert await reservation_rows(stocked, order) == []
    assert await in_uow(stocked, lambda uow: reservations.reservation_status(uow, order)) is None


async def test_a_sku_tracked_after_the_reservation_was_prepared_is_not_taken(stocked: Container) -> None:
    """The checkout writes its order between ``prepare`` and ``take``: what ``take`` reserves is
    exactly what ``prepare`` announced (the order's expiry included)."""
    order = new_order()
    lines = [ReservationLine("INV-A", 1), ReservationLine("INV-UNTRACKED", 2)]
    async with UnitOfWork(stocked.engine, META) as uow:
        pending = await reservations.prepare(uow, order, lines, lease=timedelta(minutes=5))
        assert pending.lines == (("INV-A", 1),) and pending.expires_at is not None
        await set_stock(stocked, "INV-UNTRACKED", 9)  # another transaction starts tracking it
        assert await reservations.take(uow, pending) == pending.expires_at
        await uow.commit()
    assert [r.sku for r in await reservation_rows(stocked, order)] == ["INV-A"]
    levels = await items(stocked)
    assert levels["INV-A"].reserved == 1 and levels["INV-UNTRACKED"].reserved == 0

    untracked = new_order()
    async with UnitOfWork(stocked.engine, META) as uow:
        nothing = await reservations.prepare(
            uow, untracked, [ReservationLine("NOT-IN-CATALOG", 1)], lease=timedelta(minutes=5)
        )
        assert nothing.lines == () and nothing.expires_at is None
        assert await reservations.take(uow, nothing) is None


async def test_bad_lines_are_refused(stocked: Container) -> None:
    with pytest.raises(InvalidInput):
        await reserve(stocked, new_order(), [("INV-A", 0)])
    with pytest.raises(InvalidInput):
        await reserve(stocked, "not-a-uuid", [("INV-A", 1)])


async def test_commit_release_consume_lifecycle(stocked: Container) -> None:
    shipped, cancelled = new_order(), new_order()
    await reserve(stocked, shipped, [("INV-A", 2), ("INV-B", 1)])
    await reserve(stocked, cancelled, [("INV-A", 3)])

    # Consuming before the payment is committed does nothing.
    await in_uow(stocked, lambda uow: reservations.consume(uow, shipped))
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 5)

    for _ in range(2):
        await in_uow(stocked, lambda uow: reservations.commit(uow, shipped))
    rows = await reservation_rows(stocked, shipped)
    assert {(r.status, r.expires_at) for r in rows} == {("committed", None)}
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 5)

    for _ in range(2):
        await in_uow(stocked, lambda uow: reservations.release(uow, cancelled, reason="payment declined"))
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 2)
    assert {r.status for r in await reservation_rows(stocked, cancelled)} == {"released"}

    for _ in range(2):
        await in_uow(stocked, lambda uow: reservations.consume(uow, shipped))
    levels = await items(stocked)
    assert levels["INV-A"] == StockLevel("INV-A", 8, 0)
    assert levels["INV-B"] == StockLevel("INV-B", 4, 0)
    assert await in_uow(stocked, lambda uow: reservations.reservation_status(uow, shipped)) == "consumed"
    # Shipped stock cannot be released back.
    await in_uow(stocked, lambda uow: reservations.release(uow, shipped, reason="too late"))
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 8, 0)

    types = [e.type for e in await inventory_events(stocked) if e.stream_id == "inventory-INV-A"]
    assert types == [
        "StockSet",
        "StockReserved",
        "StockReserved",
        "StockReleased",
        "StockShipped",
    ]
    released = next(e for e in await inventory_events(stocked) if e.type == "StockReleased")
    assert released.data["reason"] == "payment declined" and released.data["order_id"] == cancelled
    assert await ledger_fold(stocked) == {k: v for k, v in (await items(stocked)).items()}
    await assert_versions_counted(stocked)


async def test_rereserve_after_expiry_commits_when_stock_is_there(stocked: Container) -> None:
    order = new_order()
    await reserve(stocked, order, [("INV-A", 2), ("INV-B", 5)])
    await expire_now(stocked, order)
    assert await lease_sweep.expire_due(stocked.engine, META) == [order]
    assert (await items(stocked))["INV-B"].reserved == 0

    lease = timedelta(minutes=1)
    assert await in_uow(stocked, lambda uow: reservations.rereserve(uow, order, lease=lease)) is True
    rows = await reservation_rows(stocked, order)
    assert {(r.status, r.expires_at) for r in rows} == {("committed", None)}
    assert (await items(stocked))["INV-B"] == StockLevel("INV-B", 5, 5)
    # Already holding: nothing more is taken.
    assert await in_uow(stocked, lambda uow: reservations.rereserve(uow, order, lease=lease)) is True
    assert (await items(stocked))["INV-B"].reserved == 5
    assert await ledger_fold(stocked) == await items(stocked)
    await assert_versions_counted(stocked)


async def test_rereserve_when_sold_out_changes_nothing(stocked: Container) -> None:
    late, other = new_order(), new_order()
    await reserve(stocked, late, [("INV-A", 2), ("INV-B", 3)])
    await in_uow(stocked, lambda uow: reservations.release(uow, late, reason="timeout"))
    await reserve(stocked, other, [("INV-B", 4)])
    events_before = len(await inventory_events(stocked))

    ok = await in_uow(stocked, lambda uow: reservations.rereserve(uow, late, lease=timedelta(minutes=1)))
    assert ok is False
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 0)
    assert {r.status for r in await reservation_rows(stocked, late)} == {"released"}
    assert len(await inventory_events(stocked)) == events_before


async def test_stock_can_be_set_after_reservations(stocked: Container) -> None:
    order = new_order()
    await reserve(stocked, order, [("INV-A", 4)])
    result = await set_stock(stocked, "INV-A", 4)
    assert (result.on_hand, result.reserved, result.available) == (4, 4, 0)
    with pytest.raises(OutOfStock):
        await reserve(stocked, new_order(), [("INV-A", 1)])


async def _reserve_in_a_statement(uow: UnitOfWork, pending: reservations.PendingReservation) -> None:
    """``take`` as the checkout's first phase does it: the reservation's CTEs carried by a
    statement of the caller's own (here a bare one), then ``taken_with``."""
    reserving = reservations.reserving_new(uow, pending, first_parameter=2)
    assert reserving is not None
    row = await (await asyncpg_of(uow.conn)).fetchrow(
        f"WITH mine AS (SELECT $1::text AS mine), {reserving.ctes} "
        f"SELECT mine.mine, {stock_taking.RESERVED_COLUMNS} FROM mine "
        f"LEFT JOIN ({stock_taking.RESERVED_FROM}) ON true",
        "the caller's own column",
        *reserving.args,
    )
    assert row["mine"] == "the caller's own column"
    await reservations.taken_with(uow, pending, reserving, row)


async def test_a_reservation_carried_by_the_callers_statement_takes_the_row_or_refuses(
    stocked: Container,
) -> None:
    order, short = new_order(), new_order()
    async with UnitOfWork(stocked.engine, META) as uow:
        pending = await reservations.prepare(uow, order, [ReservationLine("INV-A", 4)], lease=timedelta(1))
        await _reserve_in_a_statement(uow, pending)
        assert [(e.stream_id, e.type) for e in uow.appended] == [("inventory-INV-A", "StockReserved")]
        await uow.commit()
    with pytest.raises(OutOfStock) as refused:
        async with UnitOfWork(stocked.engine, META) as uow:
            pending = await reservations.prepare(
                uow, short, [ReservationLine("INV-A", 7)], lease=timedelta(1)
            )
            await _reserve_in_a_statement(uow, pending)
    assert refused.value.skus == ["INV-A"]
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 4)
    assert [(r.sku, r.quantity) for r in await reservation_rows(stocked, order)] == [("INV-A", 4)]
    assert await reservation_rows(stocked, short) == []
    reserved = [e for e in await inventory_events(stocked) if e.type == "StockReserved"]
    assert [(e.data["order_id"], e.data["available"]) for e in reserved] == [(order, 6)]
    await assert_versions_counted(stocked)


async def test_a_reservation_carried_by_a_statement_after_the_sku_was_spread_takes_the_buckets(
    stocked: Container,
) -> None:
    """Prepared on one row, spread over buckets (by another transaction) before the statement:
    bucket 0 alone is short, and the line is taken from the buckets in their order."""
    order = new_order()
    async with UnitOfWork(stocked.engine, META) as uow:
        pending = await reservations.prepare(uow, order, [ReservationLine("INV-A", 5)], lease=timedelta(1))
        await stocked.bus.dispatch(SetStockBuckets("INV-A", 4), META)
        await _reserve_in_a_statement(uow, pending)
        await uow.commit()
    rows = await reservation_rows(stocked, order)
    assert sum(r.quantity for r in rows) == 5 and len(rows) == 2
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 10, 5)
    await assert_stock_consistent(stocked)
