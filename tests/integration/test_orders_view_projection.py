"""The orders projection against real PostgreSQL: every event type, idempotent re-apply,
the stream-version guard on out-of-order versions, rebuild equals incremental, and the
status relay publishing after commit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from commands.events import order as ev
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import Checkpoint, read_batch
from commands.store.unit_of_work import UnitOfWork
from gateway.bootstrap.container import Container
from projections.orders import OrdersProjection
from projections.runner import ProjectionRunner, RunnerConfig
from queries.orders import OrderQueries
from tests.support.order_ledger import META, append, positions, view_rows
from tests.support.orders import happy_path, new_order_id, placed
from tests.support.waiting import eventually


async def test_every_order_event_type_lands_in_order_view(container: Container) -> None:
    delivered, declined, refunded = new_order_id(), new_order_id(), new_order_id()
    start = placed(delivered, "cust-1")
    history = [*await append(container.engine, delivered, start)]
    history += await append(container.engine, delivered, *happy_path(delivered, start.total))
    await append(
        container.engine,
        declined,
        placed(declined, None),
        ev.PaymentDeclined(declined, reason="insufficient funds"),
        ev.OrderCancelled(declined, reason="payment declined", cancelled_by="system"),
    )
    await append(container.engine, refunded, placed(refunded, "cust-2"))
    await append(
        container.engine,
        refunded,
        ev.PaymentAuthorized(refunded, provider_reference="p9", amount=Decimal("53.48"), currency="USD"),
        ev.OrderNeedsAttention(refunded, reason="stock gone"),
        ev.PaymentVoided(refunded, provider_reference="p9"),
        ev.OrderCancelled(refunded, reason="no stock", cancelled_by="system"),
    )
    await container.runner("orders").catch_up()

    rows = await view_rows(container.engine)
    assert {oid: (r["status"], r["payment_status"], r["stream_version"]) for oid, r in rows.items()} == {
        delivered: ("DELIVERED", "CAPTURED", 8),
        declined: ("CANCELLED", "DECLINED", 3),
        refunded: ("CANCELLED", "VOIDED", 5),
    }
    row = rows[delivered]
    assert [h["position"] for h in row["history"]] == positions(history)
    assert [h["type"] for h in row["history"]][:3] == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
    ]
    assert row["created_at"] == history[0].recorded_at and row["updated_at"] == history[-1].recorded_at
    assert (row["payment_amount"], row["provider_reference"], row["customer_id"]) == (
        start.total,
        "pay_1",
        "cust-1",
    )
    assert rows[declined]["customer_id"] is None

    view = await OrderQueries(container.engine).get(delivered)
    assert view is not None and view.lines[0].unit_price == Decimal("19.99")
    assert view.history[-1].type == "OrderDelivered" and view.version == 8
    assert view.shipping_address.country_code == "GB"


async def test_reapplying_a_batch_changes_nothing(container: Container) -> None:
    oid = new_order_id()
    events = await append(container.engine, oid, placed(oid), ev.OrderConfirmed(oid))
    projection = OrdersProjection(container.engine)
    await projection.setup()
    for _ in range(2):
        async with container.engine.begin() as conn:
            await projection.apply(events, await asyncpg_of(conn))
    once = await view_rows(container.engine)
    async with container.engine.begin() as conn:
        # An old redelivery must not move the row back.
        await projection.apply(events[:1], await asyncpg_of(conn))
    assert await view_rows(container.engine) == once
    assert once[oid]["stream_version"] == 2 and len(once[oid]["history"]) == 2


async def test_out_of_order_stream_versions_reload_the_stream(container: Container) -> None:
    oid = new_order_id()
    async with UnitOfWork(container.engine, META) as early:
        # This transaction takes its xid first, so its later stream version sorts first.
        await early.conn.execute(text("SELECT pg_current_xact_id()"))
        await append(container.engine, oid, placed(oid), ev.PaymentAuthorized(oid, "p1", Decimal("1"), "USD"))
        jumped = await early.append("order", f"order-{oid}", [ev.OrderConfirmed(oid)])
        await early.commit()
    assert jumped[0].stream_version == 3
    async with container.engine.connect() as conn:
        batch = await read_batch(conn, Checkpoint(), 10)
    assert [e.stream_version for e in batch.events] == [3, 1, 2]

    runner = ProjectionRunner(
        OrdersProjection(container.engine), container.engine, RunnerConfig(batch_size=1)
    )
    await runner.catch_up_once()
    rows = await view_rows(container.engine)
    assert (rows[oid]["status"], rows[oid]["payment_status"], rows[oid]["stream_version"]) == (
        "CONFIRMED",
        "AUTHORIZED",
        3,
    )
    assert [h["type"] for h in rows[oid]["history"]] == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]
    await runner.catch_up()
    assert await view_rows(container.engine) == rows


async def test_rebuild_equals_incremental(container: Container) -> None:
    runner = container.runner("orders")
    ids = [new_order_id() for _ in range(12)]
    for i, oid in enumerate(ids):
        start = placed(oid, f"cust-{i % 3}" if i % 4 else None)
        await append(container.engine, oid, start)
        await runner.catch_up()
        for event in happy_path(oid, start.total)[: i % 8]:
            await append(container.engine, oid, event)
            if i % 2:
                await runner.catch_up()
    await runner.catch_up()
    incremental = await view_rows(container.engine)
    assert len(incremental) == 12

    await container.rebuilder.run(runner)
    assert await view_rows(container.engine) == incremental
    async with container.engine.connect() as conn:
        names = {
            r.indexname
            for r in await conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'order_view'")
            )
        }
        leftovers = await conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'order_view_%'")
        )
        assert leftovers.scalar_one() == 0
    assert names == {"order_view_pkey", "order_view_customer_created", "order_view_status"}

    # The promoted table keeps following the ledger.
    await append(container.engine, ids[0], ev.PaymentAuthorized(ids[0], "p", Decimal("1"), "USD"))
    await runner.catch_up()
    assert (await view_rows(container.engine))[ids[0]]["payment_status"] == "AUTHORIZED"


async def test_status_changes_are_published_after_commit(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = container.services.order_updates
    published: list[dict[str, Any]] = []
    publish_many = broker.publish_many

    async def recorded(updates: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        # Recorded once Redis has them: a subscriber that joins after this cannot receive them.
        sent = await publish_many(updates)
        published.extend(dict(payload) for _, payload in updates)
        return sent

    monkeypatch.setattr(broker, "publish_many", recorded)
    oid = new_order_id()
    await append(container.engine, oid, placed(oid))
    runner = container.runner("orders")
    await runner.catch_up()
    # The placement's status goes out on its own task: let it, before this subscriber joins.
    await eventually(lambda: bool(published), message="the placement's status was never published")
    updates = broker.subscribe(oid)
    received = asyncio.ensure_future(anext(updates))

    async def joined() -> bool:
        ((_, subscribers),) = await container.redis.pubsub_numsub(broker.channel(oid))
        return bool(subscribers == 1)

    await eventually(joined, message="the broker never joined the order's channel")

    confirmed = await append(
        container.engine,
        oid,
        ev.PaymentAuthorized(oid, "p1", Decimal("1"), "USD"),  # payment only: no status message
        ev.OrderConfirmed(oid),
    )
    await runner.catch_up()
    message = await asyncio.wait_for(received, 5)
    assert message == {
        "orderId": oid,
        "status": "CONFIRMED",
        "version": 3,
        "position": confirmed[-1].position,
    }
    # Sent once the batch was committed: the row is already readable.
    view = await OrderQueries(container.engine).get(oid)
    assert view is not None and view.status == "CONFIRMED"

    await append(container.engine, oid, ev.PaymentCaptured(oid, "p1", Decimal("1")))
    await runner.catch_up()
    nothing = asyncio.ensure_future(anext(updates))
    done, _ = await asyncio.wait({nothing}, timeout=0.3)
    assert not done
    nothing.cancel()
    await asyncio.gather(nothing, return_exceptions=True)
    await updates.aclose()  # type: ignore[attr-defined]
