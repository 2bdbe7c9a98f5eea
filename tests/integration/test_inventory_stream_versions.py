"""The inventory row counts its ledger stream: every write's events take their versions from the
row it changed (no look at the ledger), and a one-line reservation appends its event in the
stock UPDATE's own statement."""

from __future__ import annotations

import msgspec
from sqlalchemy import text

from commands.events.base import encode_event
from commands.events.inventory import StockReserved
from commands.inventory import lease_sweep, reservations
from commands.messages.inventory import AdjustStock, SetStock
from gateway.bootstrap.container import Container
from tests.support.inventory import (
    LEASE,
    META,
    PRODUCT_ID,
    assert_versions_counted,
    expire_now,
    in_uow,
    inventory_events,
    items,
    ledger_fold,
    new_order,
    reserve,
)
from tests.support.migrations import down_and_up


async def test_every_inventory_write_counts_the_events_it_appends(stocked: Container) -> None:
    await assert_versions_counted(stocked)
    await stocked.bus.dispatch(AdjustStock("INV-A", 3, "found a box"), META)
    await stocked.bus.dispatch_batch([SetStock("INV-A", 20), SetStock("INV-B", 6)], META)
    await assert_versions_counted(stocked)

    kept, dropped, lapsed = new_order(), new_order(), new_order()
    await reserve(stocked, kept, [("INV-A", 2)])  # one line: the event goes with the UPDATE
    await reserve(stocked, dropped, [("INV-A", 1), ("INV-B", 2)])
    await reserve(stocked, lapsed, [("INV-B", 1)])
    await assert_versions_counted(stocked)

    await in_uow(stocked, lambda uow: reservations.commit(uow, kept))
    await in_uow(stocked, lambda uow: reservations.release(uow, dropped, reason="declined"))
    await expire_now(stocked, lapsed)
    assert await lease_sweep.expire_due(stocked.engine, META) == [lapsed]
    await assert_versions_counted(stocked)

    # A late payment takes the stock again and commits it: two events for one row change.
    assert await in_uow(stocked, lambda uow: reservations.rereserve(uow, lapsed, lease=LEASE))
    await in_uow(stocked, lambda uow: reservations.consume(uow, kept))
    await assert_versions_counted(stocked)
    assert await ledger_fold(stocked) == await items(stocked)


async def test_the_one_statement_reservation_records_what_the_event_type_encodes(stocked: Container) -> None:
    order = new_order()

    async def take(uow: object) -> tuple[object, int | None]:
        expires = await reservations.reserve(
            uow,  # type: ignore[arg-type]
            order,
            [reservations.ReservationLine("INV-A", 2)],
            lease=LEASE,
        )
        return expires, uow.last_position  # type: ignore[attr-defined]

    expires, last_position = await in_uow(stocked, take)
    (event,) = [e for e in await inventory_events(stocked) if e.type == "StockReserved"]
    expected = StockReserved(
        sku="INV-A",
        product_id=str(PRODUCT_ID),
        on_hand=10,
        reserved=2,
        available=8,
        order_id=order,
        quantity=2,
        expires_at=expires,  # type: ignore[arg-type]
    )
    assert event.decode() == expected
    assert event.data == msgspec.json.decode(encode_event(expected))
    assert event.metadata == META.as_dict() and event.stream_version == 2
    # The command's position covers it (read-your-writes waits for this event too).
    assert last_position == event.position


async def test_a_count_behind_the_ledger_catches_up_at_the_next_write(stocked: Container) -> None:
    # As if a writer of an older release had appended without counting (a rolling deploy).
    async with stocked.engine.begin() as conn:
        await conn.execute(text("UPDATE inventory_items SET stream_version = 0 WHERE sku = 'INV-A'"))
    order = new_order()
    await reserve(stocked, order, [("INV-A", 1)])
    await stocked.bus.dispatch(AdjustStock("INV-A", 1), META)
    await assert_versions_counted(stocked)
    assert [e.type for e in await inventory_events(stocked) if e.stream_id == "inventory-INV-A"] == [
        "StockSet",
        "StockReserved",
        "StockAdjusted",
    ]


async def test_the_migration_starts_each_row_at_its_streams_version(stocked: Container) -> None:
    await reserve(stocked, new_order(), [("INV-A", 2)])
    await stocked.bus.dispatch(AdjustStock("INV-B", 1), META)
    await stocked.connections.close()  # no kept session holds the table while it is altered
    async with stocked.engine.connect() as conn:
        await conn.run_sync(down_and_up("0013_pricing_view"))
        await conn.commit()
    await assert_versions_counted(stocked)
    async with stocked.engine.connect() as conn:
        counted = dict((await conn.execute(text("SELECT sku, stream_version FROM inventory_items"))).all())
    assert counted == {"INV-A": 2, "INV-B": 2, "INV-C": 1}
