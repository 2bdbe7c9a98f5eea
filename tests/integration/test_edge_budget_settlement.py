"""The budget settles an operation's actual cost with the owner's next charge: one script call
per request, every point charged, refunds given back, nothing lost when Redis is away."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.bootstrap.container import Container
from gateway.edge.budget import CostBudget
from tests.support.edge import FakeClock


async def test_the_excess_and_the_refund_ride_on_the_next_charge(container: Container) -> None:
    clock = FakeClock()
    budget = CostBudget(container.redis, container.settings.redis_prefix, clock=clock)
    policy = budget.policy("user:settle", capacity=100, restore_rate=1.0)
    first = await budget.charge(policy, 10)
    assert first is not None and first.allowed and first.available == 90
    # It returned 40 objects: 30 more than charged, shown at once, applied with the next charge.
    assert budget.settle(policy, 10, 40) == 30
    assert first.settled(30).available == 60
    second = await budget.charge(policy, 5)
    assert second is not None and second.available == 55
    # It returned nothing: the 5 come back with the next charge.
    budget.settle(policy, 5, 0)
    third = await budget.charge(policy, 0)
    assert third is not None and third.available == 60
    # An excess can take the bucket below zero; the owner then waits it out.
    budget.settle(policy, 0, 80)
    refused = await budget.charge(policy, 1)
    assert refused is not None and not refused.allowed
    assert refused.available == -20 and refused.retry_after_seconds == 21
    clock.now += 21
    allowed = await budget.charge(policy, 1)
    assert allowed is not None and allowed.allowed and allowed.available == 0


async def test_a_pending_settlement_survives_a_redis_outage(container: Container) -> None:
    clock = FakeClock()
    broken = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        away = CostBudget(broken, container.settings.redis_prefix, clock=clock)
        policy = away.policy("user:outage", capacity=50, restore_rate=1.0)
        away.settle(policy, 0, 20)
        assert await away.charge(policy, 5) is None  # fails open
        # Same process, Redis back: the 20 are still owed.
        away._script = container.redis.register_script(away._script.script)
        back = await away.charge(policy, 5)
        assert back is not None and back.available == 25
    finally:
        await broken.aclose()


async def test_small_charges_ride_on_the_last_answer_and_reach_redis_with_the_next_round_trip(
    container: Container,
) -> None:
    clock = FakeClock()
    budget = CostBudget(container.redis, container.settings.redis_prefix, clock=clock)
    policy = budget.policy("user:small", capacity=10, restore_rate=0.0)

    # Nothing known about the owner yet: the first small charge is a round trip.
    first = await budget.charge_small(policy, 1)
    assert first is not None and first.allowed and first.available == 9
    # Then the next ones are taken from that answer, without touching Redis...
    for left in (8, 7, 6):
        state = await budget.charge_small(policy, 1)
        assert state is not None and state.allowed and state.available == left
    other = CostBudget(container.redis, container.settings.redis_prefix, clock=clock)
    seen_elsewhere = await other.peek(policy)
    assert seen_elsewhere is not None and seen_elsewhere.available == 9
    # ...and reach it with the owner's next round trip.
    settled = await budget.charge(policy, 0)
    assert settled is not None and settled.available == 6

    # A small charge the last answer does not cover asks Redis, which refuses once it is spent.
    for _ in range(6):
        state = await budget.charge_small(policy, 1)
        assert state is not None and state.allowed
    refused = await budget.charge_small(policy, 1)
    assert refused is not None and not refused.allowed
    # That round trip carried the six taken locally: Redis has them all.
    spent = await other.peek(policy)
    assert spent is not None and spent.available == 0
