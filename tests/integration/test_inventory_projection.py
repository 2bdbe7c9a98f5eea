"""The inventory read model equals a fold of the ledger, incrementally, out of order and rebuilt."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from commands.domain.inventory import StockLevel
from commands.events.inventory import sku_and_bucket
from commands.inventory import lease_sweep, reservations
from commands.messages.inventory import AdjustStock
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import RecordedEvent
from gateway.bootstrap.container import Container
from projections.inventory import InventoryProjection
from tests.support.inventory import (
    META,
    PRODUCT_ID,
    append_bucket_event,
    expire_now,
    in_uow,
    inventory_events,
    items,
    ledger_fold,
    new_order,
    reserve,
    set_stock,
)
from tests.support.migrations import migrate


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
    await lease_sweep.expire_due(container.engine, META)
    await in_uow(container, lambda uow: reservations.rereserve(uow, lapsed, lease=timedelta(minutes=1)))
    await container.bus.dispatch(AdjustStock("INV-A", -3, "damaged"), META)


async def _view(container: Container, table: str = "inventory_view") -> dict[tuple[str, int], Any]:
    """Rows by (sku, bucket): (sku, product_id, on_hand, reserved, available, version, updated_at)."""
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT sku, bucket, product_id, on_hand, reserved, available, stream_version, updated_at "
                f"FROM {table} ORDER BY sku, bucket"
            )
        )
        return {(row.sku, row.bucket): (row[0], *row[2:]) for row in result}


def _levels(view: dict[tuple[str, int], Any]) -> dict[str, StockLevel]:
    """Per SKU, the sum over its bucket rows."""
    levels: dict[str, StockLevel] = {}
    for (sku, _), row in view.items():
        before = levels.get(sku, StockLevel(sku, 0, 0))
        levels[sku] = StockLevel(sku, before.on_hand + row[2], before.reserved + row[3])
    return levels


async def test_projection_equals_the_fold_of_the_ledger(stocked: Container) -> None:
    await _history(stocked)
    await stocked.runner("inventory").catch_up()
    view = await _view(stocked)
    assert _levels(view) == await ledger_fold(stocked) == await items(stocked)
    assert (await items(stocked))["INV-A"] == StockLevel("INV-A", 5, 1)
    for row in view.values():
        assert row[1] == str(PRODUCT_ID)
        assert row[4] == row[2] - row[3]
    last_versions: dict[tuple[str, int], int] = {}
    for event in await inventory_events(stocked):
        last_versions[sku_and_bucket(event.stream_id)] = event.stream_version
    assert {key: row[5] for key, row in view.items()} == last_versions
    assert {bucket for _, bucket in view} == {0}

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


# -- stock buckets: a row per bucket stream, a SKU's level the sum of its rows ---------------------


async def _spread_inv_a(container: Container) -> None:
    """INV-A's 10 units (bucket 0, version 1 after ``stocked``) spread over three buckets, bucket
    0's stream ahead of the others: applied first, a guard per SKU would drop the others."""
    await append_bucket_event(container, "INV-A", 0, str(PRODUCT_ID), 6)
    await append_bucket_event(container, "INV-A", 0, str(PRODUCT_ID), 4)  # inventory-INV-A v3
    await container.runner("inventory").catch_up()
    await append_bucket_event(container, "INV-A", 1, str(PRODUCT_ID), 3)  # inventory-INV-A~1 v1
    await append_bucket_event(container, "INV-A", 2, str(PRODUCT_ID), 3)
    await append_bucket_event(container, "INV-A", 2, str(PRODUCT_ID), 3, reserved=2)  # inventory-INV-A~2 v2


SPREAD_ROWS = {("INV-A", 0): (4, 0, 4, 3), ("INV-A", 1): (3, 0, 3, 1), ("INV-A", 2): (3, 2, 1, 2)}


def _numbers(view: dict[tuple[str, int], Any], sku: str) -> dict[tuple[str, int], tuple[int, ...]]:
    """(on_hand, reserved, available, stream_version) of each of ``sku``'s rows."""
    return {key: tuple(row[2:6]) for key, row in view.items() if key[0] == sku}


async def _primary_key(container: Container) -> tuple[str, list[str]]:
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) AS columns "
                    "FROM pg_constraint c "
                    "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (num, ord) "
                    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num "
                    "WHERE c.conrelid = 'inventory_view'::regclass AND c.contype = 'p' GROUP BY c.conname"
                )
            )
        ).one()
    return row.conname, list(row.columns)


async def test_bucket_streams_are_rows_of_their_own_and_read_as_one_level_per_sku(stocked: Container) -> None:
    await _spread_inv_a(stocked)
    await stocked.runner("inventory").catch_up()
    view = await _view(stocked)

    assert _numbers(view, "INV-A") == SPREAD_ROWS
    assert _numbers(view, "INV-B") == {("INV-B", 0): (5, 0, 5, 1)}
    assert _levels(view) == await ledger_fold(stocked)
    assert _levels(view)["INV-A"] == StockLevel("INV-A", 10, 2)

    levels = await stocked.services.inventory.by_skus(["INV-A", "INV-B", "INV-UNTRACKED", "INV-A"])
    assert set(levels) == {"INV-A", "INV-B"}
    a = levels["INV-A"]
    assert (a.sku, a.product_id, a.on_hand, a.reserved, a.available) == ("INV-A", str(PRODUCT_ID), 10, 2, 8)
    assert a.version == 3 + 1 + 2
    assert a.updated_at == max(row[6] for key, row in view.items() if key[0] == "INV-A")
    b = levels["INV-B"]
    assert (b.on_hand, b.reserved, b.available, b.version) == (5, 0, 5, 1)

    # Any bucket moving moves the SKU's version forward.
    await append_bucket_event(stocked, "INV-A", 1, str(PRODUCT_ID), 1)
    await stocked.runner("inventory").catch_up()
    a = await stocked.services.inventory.get("INV-A")
    assert a is not None and (a.on_hand, a.available, a.version) == (8, 6, 7)


async def test_bucket_events_late_or_repeated_change_nothing(stocked: Container) -> None:
    await _spread_inv_a(stocked)
    await stocked.runner("inventory").catch_up()
    live = await _view(stocked)
    events = await inventory_events(stocked)
    by_stream = {(e.stream_id, e.stream_version): e for e in events}
    copy = InventoryProjection(stocked.engine).rebuild_copy("buckets")
    assert isinstance(copy, InventoryProjection)
    await copy.setup()

    async def deliver(chunk: Sequence[RecordedEvent]) -> dict[tuple[str, int], tuple[int, ...]]:
        async with stocked.engine.begin() as conn:
            await copy.apply(chunk, await asyncpg_of(conn))
        return _numbers(await _view(stocked, copy.table), "INV-A")

    first, second = by_stream[("inventory-INV-A~2", 1)], by_stream[("inventory-INV-A~2", 2)]
    assert (await deliver([first]))[("INV-A", 2)] == (3, 0, 3, 1)
    assert (await deliver([second]))[("INV-A", 2)] == (3, 2, 1, 2)
    # Bucket 2's older event after its newer one, alone and beside other buckets' events.
    assert (await deliver([first]))[("INV-A", 2)] == (3, 2, 1, 2)
    assert await deliver([by_stream[("inventory-INV-A~1", 1)], first]) == {
        ("INV-A", 2): (3, 2, 1, 2),
        ("INV-A", 1): (3, 0, 3, 1),
    }
    shuffled = list(events)
    random.Random(5).shuffle(shuffled)
    for chunk in (shuffled[:4], shuffled[4:], shuffled, list(reversed(events))):
        await deliver(chunk)
    assert await _view(stocked, copy.table) == live


async def test_rebuild_with_buckets_keeps_the_rows_and_their_key(stocked: Container) -> None:
    await _spread_inv_a(stocked)
    runner = stocked.runner("inventory")
    await runner.catch_up()
    before_view = await _view(stocked)
    before = await stocked.services.inventory.by_skus(["INV-A", "INV-B"])

    await stocked.rebuilder.run(runner)

    assert await _view(stocked) == before_view
    assert await stocked.services.inventory.by_skus(["INV-A", "INV-B"]) == before
    assert (await _primary_key(stocked))[1] == ["sku", "bucket"]
    # The promoted copy takes upserts on (sku, bucket): a known bucket and a new one.
    await append_bucket_event(stocked, "INV-A", 1, str(PRODUCT_ID), 5)
    await append_bucket_event(stocked, "INV-A", 3, str(PRODUCT_ID), 2)
    await runner.catch_up()
    assert _numbers(await _view(stocked), "INV-A") == {
        **SPREAD_ROWS,
        ("INV-A", 1): (5, 0, 5, 2),
        ("INV-A", 3): (2, 0, 2, 1),
    }
    a = await stocked.services.inventory.get("INV-A")
    assert a is not None and (a.on_hand, a.reserved, a.available, a.version) == (14, 2, 12, 8)


async def test_the_migration_finds_the_key_a_rebuild_renamed_both_ways(stocked: Container) -> None:
    await _spread_inv_a(stocked)
    runner = stocked.runner("inventory")
    await runner.catch_up()
    await stocked.rebuilder.run(runner)
    renamed, _ = await _primary_key(stocked)
    assert renamed != "inventory_view_pkey"  # the copy's key, renamed in with it
    bucket_0 = {key[0]: row for key, row in (await _view(stocked)).items() if key[1] == 0}
    await stocked.connections.close()  # no kept session holds the table while it is altered

    async with stocked.engine.connect() as conn:
        await conn.run_sync(migrate("0015_stock_buckets"))
        await conn.commit()
    assert await _primary_key(stocked) == ("inventory_view_pkey", ["sku"])
    async with stocked.engine.connect() as conn:
        rows = await conn.execute(text("SELECT sku, on_hand, stream_version FROM inventory_view"))
        assert {r.sku: (r.on_hand, r.stream_version) for r in rows} == {
            sku: (row[2], row[5]) for sku, row in bucket_0.items()
        }

    async with stocked.engine.connect() as conn:
        await conn.run_sync(migrate("head"))
        await conn.commit()
    assert await _primary_key(stocked) == ("inventory_view_pkey", ["sku", "bucket"])
    assert await _view(stocked) == {(sku, 0): row for sku, row in bucket_0.items()}
