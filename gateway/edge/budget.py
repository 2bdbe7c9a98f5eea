"""Per-caller cost budgets: a leaky bucket in Redis, updated atomically by one Lua script.

A bucket holds up to ``capacity`` points and refills at ``restore_rate`` points
per second. A query takes its estimated cost up front (or is refused with the
time until enough has leaked back); once it has run, the difference between
its actual cost and the estimate (a refund, or the excess it still owes) is
kept in this process and applied by the same script call that charges the
owner's next request. Every point an operation actually cost is charged: the
bucket may go below zero by one operation's excess, which its owner then waits
out like any other debt.

A busy owner's charges mostly need no round trip at all: while a bucket is more
than half full, the script also hands this process a lease of a few charges'
worth of points (taken from the bucket like a charge, so no other process can
spend them). Charges and settlements are then counted against the lease in
memory until it is spent or a second old; its unused points go back with the
owner's next round trip. Near exhaustion nothing is leased, so every charge
there is decided by Redis, exactly, across all gateway processes. Two bounds
follow: while a lease is out (a second at most, unless its owner goes quiet) the
bucket refills up to its capacity besides it, so a burst may exceed the capacity
by the leases out (eight charges per process at most); and a quiet owner's lease
comes back only with its next request (its points are then clipped at capacity).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as redis_async
from cachetools import LRUCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: capacity, restore rate, cost (negative = refund), now (< 0: use Redis TIME),
# adjustment (what earlier operations cost beyond their charge; negative = unused, given back),
# lease wanted (points to hand this process besides the cost, if the bucket can spare them).
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local adjustment = tonumber(ARGV[5])
local wanted = tonumber(ARGV[6])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 'available', 'ts')
local available = tonumber(state[1])
local ts = tonumber(state[2])
if available == nil or ts == nil then
  available = capacity
  ts = now
end
if now > ts then
  available = available + (now - ts) * rate
  ts = now
end
if available > capacity then available = capacity end
available = math.min(capacity, available - adjustment)
local allowed = 0
local retry = 0
local leased = 0
if cost <= available then
  available = math.min(capacity, available - cost)
  allowed = 1
  -- Only from the upper half of the bucket, a quarter of it at most: others keep the rest.
  local spare = math.floor((available - capacity / 2) / 4)
  if wanted > 0 and spare > 0 then
    leased = math.min(wanted, spare)
    available = available - leased
  end
elseif rate > 0 then
  retry = (cost - available) / rate
else
  retry = -1
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'ts', tostring(ts))
-- A bucket that has refilled completely carries no information; let it go.
local ttl = 3600
if rate > 0 then ttl = math.ceil((capacity - available) / rate) + 60 end
redis.call('EXPIRE', KEYS[1], ttl)
return {allowed, tostring(available), tostring(retry), leased}
"""


@dataclass(frozen=True)
class BudgetPolicy:
    key: str
    capacity: int
    restore_rate: float


@dataclass(frozen=True)
class BudgetState:
    allowed: bool
    available: float
    retry_after_seconds: float
    policy: BudgetPolicy

    def settled(self, adjustment: float) -> BudgetState:
        """This state once ``adjustment`` (applied with the owner's next charge) is counted."""
        return replace(self, available=min(self.policy.capacity, self.available - adjustment))

    def throttle_status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.policy.capacity,
            "currentlyAvailable": math.floor(self.available),
            "restoreRate": self.policy.restore_rate,
        }


# Owners with an adjustment not yet applied, per process; the least recent are forgotten first
# (a forgotten refund is the owner's loss, a forgotten excess at most one operation's).
_PENDING_OWNERS = 100_000
# A small charge (a 304) is taken from what Redis said the caller had at most this long ago.
_KNOWN_SECONDS = 1.0
# A lease covers this many more charges like the one that asked for it, for at most this long.
LEASED_CHARGES = 8
LEASE_SECONDS = 1.0


@dataclass
class _Lease:
    """Points taken from an owner's bucket for this process to spend without asking Redis."""

    points: float
    # What the bucket held besides the lease when it was granted: the rest of what the owner has.
    elsewhere: float
    granted_at: float


class CostBudget:
    def __init__(
        self, redis: redis_async.Redis, prefix: str, clock: Callable[[], float] | None = None
    ) -> None:
        self._script = redis.register_script(_SCRIPT)
        self._prefix = f"{prefix}budget:"
        # None: the Redis server's clock, shared by every gateway instance.
        self._clock = clock
        self._pending: LRUCache[str, float] = LRUCache(_PENDING_OWNERS)
        # (points available, monotonic time) per owner, as of the last round trip.
        self._known: LRUCache[str, tuple[float, float]] = LRUCache(_PENDING_OWNERS)
        self._leases: LRUCache[str, _Lease] = LRUCache(_PENDING_OWNERS)

    def policy(self, caller: str, capacity: int, restore_rate: float) -> BudgetPolicy:
        return BudgetPolicy(self._prefix + caller, capacity, restore_rate)

    # Each returns None when Redis cannot answer: the edge then runs without a budget
    # (fails open) rather than turning a Redis outage into a GraphQL outage.

    async def charge(self, policy: BudgetPolicy, cost: int) -> BudgetState | None:
        """``cost`` from the owner's lease when it covers it; otherwise one round trip, which
        applies the owner's pending adjustment (and returns the lease), then takes ``cost`` if it
        fits and a new lease if the bucket can spare one."""
        return self._from_lease(policy, cost) or await self._run(policy, cost, cost * LEASED_CHARGES)

    async def charge_small(self, policy: BudgetPolicy, cost: int) -> BudgetState | None:
        """A small fixed charge (a 304) without a round trip while Redis's last answer for the owner
        is under a second old and covers it; the points go to Redis with the owner's next round trip.

        Within that second each gateway process can spend at most what the owner had, so a caller
        sending only 304s to several processes may overdraw by a few points, never by a query.
        """
        leased = self._from_lease(policy, cost)
        if leased is not None:
            return leased
        known = self._known.get(policy.key)
        pending = self._pending.get(policy.key, 0.0)
        if known is not None and time.monotonic() - known[1] < _KNOWN_SECONDS:
            # Redis's figure, what this process still holds leased, less what it owes Redis.
            lease = self._leases.get(policy.key)
            left = known[0] + (lease.points if lease is not None else 0.0) - pending - cost
            if left >= 0:
                self._pending[policy.key] = pending + cost
                return BudgetState(True, left, 0.0, policy)
        return await self._run(policy, cost)

    def settle(self, policy: BudgetPolicy, charged: int, actual: int) -> float:
        """Record what an operation charged ``charged`` really cost; no round trip. Returns the difference."""
        adjustment = actual - charged
        if not adjustment:
            return adjustment
        owed = float(adjustment)
        lease = self._leases.get(policy.key)
        if lease is not None:
            # Settled against the lease; what it cannot cover is owed to Redis.
            owed = max(0.0, adjustment - lease.points)
            lease.points = max(0.0, lease.points - adjustment)
        if owed:
            self._pending[policy.key] = self._pending.get(policy.key, 0.0) + owed
        return adjustment

    async def refund(self, policy: BudgetPolicy, points: int) -> BudgetState | None:
        return await self._run(policy, -points)

    async def peek(self, policy: BudgetPolicy) -> BudgetState | None:
        return await self._run(policy, 0)

    def _from_lease(self, policy: BudgetPolicy, cost: int) -> BudgetState | None:
        lease = self._leases.get(policy.key)
        if (
            lease is None
            or lease.points < cost
            or self._lease_clock() - lease.granted_at >= LEASE_SECONDS
            # An excess the lease could not cover goes to Redis with the next charge, not later.
            or self._pending.get(policy.key, 0.0) > 0
        ):
            return None
        lease.points -= cost
        # The bucket has refilled since the lease was granted, as Redis will count it (up to
        # capacity); what the caller has is that and the lease, shown at most the capacity.
        refilled = lease.elsewhere + policy.restore_rate * (self._lease_clock() - lease.granted_at)
        available = min(policy.capacity, min(policy.capacity, refilled) + lease.points)
        return BudgetState(True, available, 0.0, policy)

    def _lease_clock(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    async def _run(self, policy: BudgetPolicy, cost: int, wanted: int = 0) -> BudgetState | None:
        now = self._clock() if self._clock is not None else -1.0
        lease = self._leases.pop(policy.key, None)
        # The lease's unused points go back with this call.
        adjustment = self._pending.pop(policy.key, 0.0) - (lease.points if lease is not None else 0.0)
        try:
            allowed, available, retry, leased = await self._script(
                keys=[policy.key],
                args=[policy.capacity, policy.restore_rate, cost, repr(now), repr(adjustment), wanted],
            )
        except BaseException as exc:
            # Not applied (Redis away, or the request cancelled): owed with the next round trip,
            # the returned lease's points included.
            if adjustment:
                self._pending[policy.key] = self._pending.get(policy.key, 0.0) + adjustment
            if not isinstance(exc, RedisError):
                raise
            log.warning("cost budget unavailable, not enforced: %s", exc)
            return None
        elsewhere, points = float(available), float(leased)
        held = self._leases.get(policy.key)
        if points:
            # A concurrent charge of the same owner may have been granted one meanwhile: kept too.
            held = self._leases[policy.key] = _Lease(
                points + (held.points if held is not None else 0.0), elsewhere, self._lease_clock()
            )
        total = elsewhere + (held.points if held is not None else 0.0)
        self._known[policy.key] = (elsewhere, time.monotonic())
        return BudgetState(bool(int(allowed)), total, float(retry), policy)
