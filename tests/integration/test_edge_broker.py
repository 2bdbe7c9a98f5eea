"""The order updates broker over real Redis, and the budget script's arithmetic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

from redis.asyncio import Redis

from commands.store.ledger.reader import Checkpoint
from gateway.bootstrap.container import Container
from gateway.edge.budget import CostBudget
from gateway.realtime.status_relay import StatusRelay
from gateway.realtime.subscriptions import OrderUpdatesBroker
from projections.orders import StatusChange
from queries.freshness import CheckpointWatcher
from tests.support.edge import FakeClock
from tests.support.waiting import eventually

Updates = AsyncGenerator[dict[str, Any], None]


def _subscribe(broker: OrderUpdatesBroker, order_id: str) -> Updates:
    return cast(Updates, broker.subscribe(order_id))


async def _next(updates: Updates) -> dict[str, Any]:
    return await anext(updates)


async def _subscribers(container: Container, broker: OrderUpdatesBroker, order_id: str, count: int) -> None:
    async def subscribed() -> bool:
        ((_, found),) = await container.redis.pubsub_numsub(broker.channel(order_id))
        return bool(found == count)

    await eventually(subscribed, timeout=2, message=f"expected {count} subscribers on the order channel")


async def test_an_update_published_anywhere_reaches_every_subscriber(container: Container) -> None:
    local = container.services.order_updates
    assert container.services.edge.broker is local
    # Another gateway instance: its own broker on the same Redis.
    elsewhere = OrderUpdatesBroker(container.redis, container.settings.redis_prefix)
    try:
        first, second = _subscribe(local, "o-1"), _subscribe(local, "o-1")
        other_order = _subscribe(local, "o-2")
        waits = [asyncio.create_task(_next(it)) for it in (first, second, other_order)]
        # Both local subscribers share one Redis subscription.
        await _subscribers(container, local, "o-1", 1)
        await _subscribers(container, local, "o-2", 1)
        assert await elsewhere.publish("o-1", {"status": "CONFIRMED", "version": 2}) == 1
        assert await asyncio.wait_for(waits[0], 5) == {"status": "CONFIRMED", "version": 2}
        assert await asyncio.wait_for(waits[1], 5) == {"status": "CONFIRMED", "version": 2}
        assert not waits[2].done()
        waits[2].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waits[2]
        for iterator in (first, second, other_order):
            await iterator.aclose()
        await _subscribers(container, local, "o-1", 0)
        await _subscribers(container, local, "o-2", 0)
        # Subscribing again after everyone left works on the same connection.
        again = _subscribe(local, "o-1")
        wait = asyncio.create_task(_next(again))
        await _subscribers(container, local, "o-1", 1)
        await elsewhere.publish("o-1", {"status": "SHIPPED"})
        assert await asyncio.wait_for(wait, 5) == {"status": "SHIPPED"}
        await again.aclose()
    finally:
        await elsewhere.close()


async def test_the_relay_sends_each_orders_newest_change_after_its_commit(container: Container) -> None:
    broker = container.services.order_updates
    watcher = CheckpointWatcher()
    relay = StatusRelay(watcher, broker, name="orders")
    first, second = _subscribe(broker, "o-1"), _subscribe(broker, "o-2")
    try:
        waits = [asyncio.create_task(_next(it)) for it in (first, second)]
        await _subscribers(container, broker, "o-1", 1)
        await _subscribers(container, broker, "o-2", 1)
        relay.notice(StatusChange("o-1", "PAYMENT_PENDING", 1, 10, Checkpoint(5, 10)))
        relay.notice(StatusChange("o-2", "CONFIRMED", 3, 11, Checkpoint(5, 11)))
        relay.notice(StatusChange("o-1", "CONFIRMED", 3, 12, Checkpoint(6, 12)))
        await asyncio.sleep(0.2)
        assert not any(w.done() for w in waits), "sent before the batch committed"
        watcher.observe("orders", (6, 12))
        first_update = await asyncio.wait_for(waits[0], 5)
        assert first_update == {"orderId": "o-1", "status": "CONFIRMED", "version": 3, "position": 12}
        assert (await asyncio.wait_for(waits[1], 5))["status"] == "CONFIRMED"
        # The superseded PAYMENT_PENDING was never sent.
        late = asyncio.create_task(_next(first))
        await asyncio.sleep(0.3)
        assert not late.done()
        late.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await late
    finally:
        await relay.close()
        await first.aclose()
        await second.aclose()


async def test_budget_leaks_back_at_the_restore_rate(container: Container) -> None:
    clock = FakeClock()
    budget = CostBudget(container.redis, container.settings.redis_prefix, clock=clock)
    policy = budget.policy("client:test", capacity=10, restore_rate=2.0)

    async def available(cost: int = 0) -> float:
        state = await budget.charge(policy, cost) if cost >= 0 else await budget.refund(policy, -cost)
        assert state is not None
        return state.available

    assert await available(10) == 0
    refused = await budget.charge(policy, 3)
    assert refused is not None and not refused.allowed and refused.retry_after_seconds == 1.5
    clock.now += 1.0
    assert await available() == 2
    assert await available(-5) == 7
    clock.now += 100
    assert await available() == 10
    # Concurrent charges never overspend: the script is atomic.
    results = await asyncio.gather(*(budget.charge(policy, 3) for _ in range(6)))
    assert sum(bool(r and r.allowed) for r in results) == 3


async def test_the_edge_runs_without_a_budget_when_redis_fails(container: Container) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        budget = CostBudget(broken, "x:")
        assert await budget.charge(budget.policy("ip:1", 10, 1.0), 5) is None
    finally:
        await broken.aclose()
