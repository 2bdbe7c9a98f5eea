"""What PostgreSQL's backends of this run's database are doing, sampled while a load runs.

Every ``interval`` seconds, on a connection of its own: the backends of the database by
state and wait event (``pg_stat_activity``; an active backend with no wait event is
running on a CPU), and the lock requests not granted (``pg_locks``). Together with the
processes' CPU this tells a lock-bound load (backends queued on the hot row's lock) from a
CPU-bound one (the gateway's event loop at a full core, PostgreSQL idle in between).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

INTERVAL_SECONDS = 0.1
ACTIVITY_SQL = (
    "SELECT coalesce(state, 'unknown') || ' / ' || "
    "coalesce(wait_event_type || ':' || wait_event, 'running') AS what, count(*) AS n "
    "FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
    "AND state <> 'idle' GROUP BY 1"
)
WAITING_LOCKS_SQL = "SELECT count(*) FROM pg_locks WHERE NOT granted"


@dataclass
class WaitSamples:
    samples: int = 0
    totals: Counter[str] = field(default_factory=Counter)  # backend-samples per state / wait
    lock_waiters: list[int] = field(default_factory=list)  # active backends waiting on a Lock
    locks_not_granted: list[int] = field(default_factory=list)

    def mean(self, what: str) -> float:
        return self.totals[what] / self.samples if self.samples else 0.0

    @property
    def mean_lock_waiters(self) -> float:
        return sum(self.lock_waiters) / len(self.lock_waiters) if self.lock_waiters else 0.0

    @property
    def share_with_lock_waiter(self) -> float:
        """Fraction of samples in which at least one backend waited on a lock."""
        if not self.lock_waiters:
            return 0.0
        return sum(1 for n in self.lock_waiters if n) / len(self.lock_waiters)

    @property
    def mean_row_lock_waiters(self) -> float:
        """Backends queued on a row: they wait for the holder's transaction (or the tuple lock)."""
        return self.mean("active / Lock:transactionid") + self.mean("active / Lock:tuple")

    @property
    def mean_advisory_waiters(self) -> float:
        """Backends queued on an advisory lock (an order's or a cart's, not a stock row)."""
        return self.mean("active / Lock:advisory")

    @property
    def mean_running(self) -> float:
        return self.mean("active / running")

    @property
    def mean_idle_in_transaction(self) -> float:
        return sum(v for k, v in self.totals.items() if k.startswith("idle in transaction")) / max(
            1, self.samples
        )

    def top(self, count: int = 6) -> list[tuple[str, float]]:
        return [(k, round(v / max(1, self.samples), 2)) for k, v in self.totals.most_common(count)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "interval_seconds": INTERVAL_SECONDS,
            "mean_backends_by_state_and_wait": dict(self.top(20)),
            "mean_lock_waiters": round(self.mean_lock_waiters, 2),
            "max_lock_waiters": max(self.lock_waiters, default=0),
            "share_of_samples_with_a_lock_waiter": round(self.share_with_lock_waiter, 3),
            "mean_locks_not_granted": round(
                sum(self.locks_not_granted) / max(1, len(self.locks_not_granted)), 2
            ),
            "mean_row_lock_waiters": round(self.mean_row_lock_waiters, 2),
            "mean_advisory_waiters": round(self.mean_advisory_waiters, 2),
            "mean_running": round(self.mean_running, 2),
            "mean_idle_in_transaction": round(self.mean_idle_in_transaction, 2),
        }


class WaitSampler:
    """``async with WaitSampler(kwargs) as samples:`` samples until the block ends."""

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        self._kwargs = connect_kwargs
        self.samples = WaitSamples()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> WaitSamples:
        self._conn = await asyncpg.connect(**self._kwargs)
        self._task = asyncio.create_task(self._loop(self._conn))
        return self.samples

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            await self._conn.close()

    async def _loop(self, conn: asyncpg.Connection) -> None:
        while True:
            rows = await conn.fetch(ACTIVITY_SQL)
            not_granted = int(await conn.fetchval(WAITING_LOCKS_SQL))
            self.samples.samples += 1
            waiting = 0
            for row in rows:
                what, n = str(row["what"]), int(row["n"])
                self.samples.totals[what] += n
                if what.startswith("active / Lock:"):
                    waiting += n
            self.samples.lock_waiters.append(waiting)
            self.samples.locks_not_granted.append(not_granted)
            await asyncio.sleep(INTERVAL_SECONDS)


@dataclass(frozen=True)
class ConnectionQueue:
    """The gateway's own queue over a load: units of work that waited for one of its command
    connections (``commands.store.connections``), and how long, from its counters."""

    served: int
    waited: int
    seconds_waited: float

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> ConnectionQueue:
        return cls(
            int(after["taken"] - before["taken"]),
            int(after["waited"] - before["waited"]),
            float(after["seconds_waited"] - before["seconds_waited"]),
        )

    @property
    def share_waited(self) -> float:
        return self.waited / self.served if self.served else 0.0

    @property
    def mean_wait_ms(self) -> float:
        """Per unit of work served, waiters and not."""
        return 1000 * self.seconds_waited / self.served if self.served else 0.0

    def describe(self) -> str:
        served, mean = self.served, self.mean_wait_ms
        return f"{100 * self.share_waited:.0f}% of {served} units of work, {mean:.1f} ms each on average"
