"""Budget leases over real Redis: a busy owner's charges counted in memory against points taken
from its bucket, given back when unused, never spent twice, and none while the bucket is low."""

from __future__ import annotations

import asyncio
import random
import uuid

from gateway.bootstrap.container import Container
from gateway.edge.budget import LEASE_SECONDS, LEASED_CHARGES, BudgetPolicy, CostBudget
from tests.support.edge import FakeClock


def _budgets(container: Container, clock: FakeClock, count: int) -> list[CostBudget]:
    """``count`` gateway processes' budgets, sharing Redis and a clock."""
    return [CostBudget(container.redis, container.settings.redis_prefix, clock=clock) for _ in range(count)]


def _policy(budget: CostBudget, capacity: int) -> BudgetPolicy:
    return budget.policy(f"user:lease-{uuid.uuid4().hex[:8]}", capacity=capacity, restore_rate=0.0)


async def _in_redis(budget: CostBudget, policy: BudgetPolicy) -> float:
    """What the bucket holds as another process sees it (a peek takes nothing)."""
    state = await budget.peek(policy)
    assert state is not None
    return state.available


async def test_a_busy_owner_is_charged_from_its_lease_without_a_round_trip(container: Container) -> None:
    clock = FakeClock()
    here, elsewhere = _budgets(container, clock, 2)
    policy = _policy(here, 1_000)
    first = await here.charge(policy, 10)
    assert first is not None and first.allowed and first.available == 990
    lease = 10 * LEASED_CHARGES
    # The lease is taken from the bucket: no other process can spend it.
    assert await _in_redis(elsewhere, policy) == 990 - lease
    for spent in range(1, LEASED_CHARGES + 1):
        state = await here.charge(policy, 10)
        assert state is not None and state.allowed and state.available == 990 - 10 * spent
    # Eight charges and not one reached Redis.
    assert await _in_redis(elsewhere, policy) == 990 - lease
    # The lease is spent: a 304's point is taken from what Redis said, without the spent lease...
    small = await here.charge_small(policy, 1)
    assert small is not None and small.allowed and small.available == 990 - lease - 1
    # ...and the next charge is a round trip, which carries that point and takes the next lease.
    state = await here.charge(policy, 10)
    assert state is not None and state.available == 990 - lease - 1 - 10
    assert await _in_redis(elsewhere, policy) == 990 - lease - 1 - 10 - lease


async def test_unused_points_go_back_with_the_next_round_trip_once_the_lease_is_old(
    container: Container,
) -> None:
    clock = FakeClock()
    here, elsewhere = _budgets(container, clock, 2)
    policy = _policy(here, 1_000)
    await here.charge(policy, 10)
    await here.charge(policy, 10)  # from the lease
    clock.now += LEASE_SECONDS
    # An old lease covers nothing: this charge asks Redis, and gives back the 70 unused points.
    state = await here.charge(policy, 0)
    assert state is not None and state.available == 980
    assert await _in_redis(elsewhere, policy) == 980


async def test_a_charge_from_the_lease_shows_the_bucket_refilled_since(container: Container) -> None:
    clock = FakeClock()
    (here,) = _budgets(container, clock, 1)

    async def after_half_a_second(restore_rate: float) -> float:
        policy = here.policy(f"user:lease-{uuid.uuid4().hex[:8]}", capacity=1_000, restore_rate=restore_rate)
        first = await here.charge(policy, 10)
        assert first is not None and first.available == 990
        clock.now += 0.5
        state = await here.charge(policy, 10)  # from the lease
        assert state is not None and state.allowed
        return state.available

    assert await after_half_a_second(10.0) == 985  # 5 points restored meanwhile
    assert await after_half_a_second(200.0) == 1_000  # shown at most the capacity


async def test_settlements_are_counted_against_the_lease_and_an_excess_beyond_it_goes_to_redis(
    container: Container,
) -> None:
    clock = FakeClock()
    here, elsewhere = _budgets(container, clock, 2)
    policy = _policy(here, 1_000)
    await here.charge(policy, 10)  # 990, of which 80 leased
    assert here.settle(policy, 10, 30) == 20  # an excess of 20, from the lease
    state = await here.charge(policy, 10)
    assert state is not None and state.available == 960
    here.settle(policy, 10, 0)  # a refund of 10, into the lease
    state = await here.charge(policy, 0)
    assert state is not None and state.available == 970
    assert await _in_redis(elsewhere, policy) == 910  # nothing of that reached Redis yet
    # An excess larger than what is left of the lease (60): the 40 beyond it are owed to Redis,
    # and the next charge takes them there at once rather than spending the lease.
    here.settle(policy, 0, 100)
    state = await here.charge(policy, 1)
    assert state is not None and state.allowed and state.available == 869
    assert await _in_redis(elsewhere, policy) == 869 - LEASED_CHARGES  # and a new lease taken
    clock.now += LEASE_SECONDS
    back = await here.charge(policy, 0)
    assert back is not None and back.available == 869
    assert await _in_redis(elsewhere, policy) == 869


async def test_nothing_is_leased_from_the_lower_half_of_a_bucket(container: Container) -> None:
    clock = FakeClock()
    here, elsewhere = _budgets(container, clock, 2)
    policy = _policy(here, 100)
    await here.charge(policy, 60)
    # 40 left: every charge is decided by Redis, so every process sees it at once.
    assert await _in_redis(elsewhere, policy) == 40
    for left in (30, 20, 10, 0):
        state = await here.charge(policy, 10)
        assert state is not None and state.allowed and state.available == left
        assert await _in_redis(elsewhere, policy) == left
    refused = await here.charge(policy, 1)
    assert refused is not None and not refused.allowed


async def test_processes_leasing_one_bucket_never_spend_more_than_it_holds_nor_lose_a_point(
    container: Container,
) -> None:
    """Four processes, 400 concurrent charges and refunds of one owner's bucket, which cannot
    hold them all: what was allowed, less what was refunded, never exceeds the bucket, and once
    the leases are old and given back the bucket holds exactly the rest."""
    clock = FakeClock()
    processes = _budgets(container, clock, 4)
    capacity = 1_500
    policy = _policy(processes[0], capacity)
    rng = random.Random(7)
    spent: list[int] = []

    async def buyer(i: int) -> None:
        budget = processes[i % len(processes)]
        for _ in range(4):
            cost = rng.randint(1, 20)
            state = await budget.charge(policy, cost)
            assert state is not None
            if state.allowed:
                actual = rng.randint(0, cost)  # a refund of what it did not use
                budget.settle(policy, cost, actual)
                spent.append(actual)
            await asyncio.sleep(0)

    await asyncio.gather(*(buyer(i) for i in range(100)))
    assert 0 < sum(spent) <= capacity
    assert len(spent) < 400  # the bucket ran out: some were refused
    clock.now += LEASE_SECONDS
    for budget in processes:
        await budget.charge(policy, 0)  # each gives its lease and refunds back
    assert await _in_redis(processes[0], policy) == capacity - sum(spent)
