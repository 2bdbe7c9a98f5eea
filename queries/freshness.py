"""Freshness of a read model, and read-your-writes waits.

A read model "covers" position P when the projector's checkpoint has passed
the event at P in the gap-safe (tx_id, position) order. Waiting is driven by
checkpoint announcements (CheckpointWatcher.observe), never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# (tx_id, position): ordered the way projectors read the ledger.
TxPosition = tuple[int, int]

DEFAULT_WAIT_SECONDS = 2.0
MAX_WAIT_SECONDS = 10.0
# Pending events scanned to find the covered position; beyond this the lag is
# reported from the scanned part only, which keeps reads cheap during rebuilds.
PENDING_SCAN_LIMIT = 10_000


class StaleRead(Exception):
    """The read model did not reach the requested position within the wait bound."""

    code = "STALE_READ"

    def __init__(self, message: str, projection: str, position: int) -> None:
        super().__init__(message)
        self.projection = projection
        self.position = position


@dataclass(frozen=True)
class Freshness:
    projection: str
    position: int
    head_position: int
    lag_events: int
    lag_seconds: float
    updated_at: datetime | None


class CheckpointWatcher:
    """Latest announced checkpoint per projection; wakes whoever waits on it."""

    def __init__(self) -> None:
        self._latest: dict[str, TxPosition] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._replaced: dict[str, int] = {}
        self._all_replaced = 0
        # Told when a reader starts waiting for a projection to reach a position (the projector
        # then stops gathering until it has passed it).
        self.on_wanted: Callable[[str, TxPosition], None] | None = None

    def want(self, projection: str, target: TxPosition) -> None:
        if self.on_wanted is not None:
            self.on_wanted(projection, target)

    def observe(self, projection: str, checkpoint: TxPosition) -> None:
        if checkpoint > self._latest.get(projection, (0, 0)):
            self._latest[projection] = checkpoint
            self._notify(projection)

    def reset(self, projection: str) -> None:
        """Forget what was announced (a rebuild moved the checkpoint backwards)."""
        self._latest.pop(projection, None)
        self._notify(projection)

    def replaced(self, projection: str | None) -> None:
        """The model may have been swapped for a rebuilt copy (``None``: any model; a notification
        saying so may have been lost): whatever was kept from it is void, whatever its checkpoint."""
        if projection is None:
            self._all_replaced += 1
        else:
            self._replaced[projection] = self._replaced.get(projection, 0) + 1

    def generation(self, projection: str) -> int:
        """How many times the model may have been replaced, as far as this process heard."""
        return self._all_replaced + self._replaced.get(projection, 0)

    def _notify(self, projection: str) -> None:
        event = self._changed.pop(projection, None)
        if event is not None:
            event.set()

    def latest(self, projection: str) -> TxPosition:
        return self._latest.get(projection, (0, 0))

    def changed(self, projection: str) -> asyncio.Event:
        return self._changed.setdefault(projection, asyncio.Event())


_FRESHNESS_SQL = text(
    """
    WITH ck AS (
        SELECT tx_id, position, last_applied_at FROM projection_checkpoints WHERE name = :name
    ), stored AS (
        SELECT CAST(CAST(coalesce(max(tx_id), 0) AS text) AS xid8) AS tx_id,
               coalesce(max(position), 0) AS position
        FROM ck
    ), start AS (
        SELECT CASE WHEN (s.tx_id, s.position) >= (CAST(CAST(:seen_tx AS text) AS xid8), :seen_pos)
                    THEN s.tx_id ELSE CAST(CAST(:seen_tx AS text) AS xid8) END AS tx_id,
               CASE WHEN (s.tx_id, s.position) >= (CAST(CAST(:seen_tx AS text) AS xid8), :seen_pos)
                    THEN s.position ELSE :seen_pos END AS position
        FROM stored s
    ), pending AS (
        SELECT e.position, e.recorded_at
        FROM ledger_events e, start
        WHERE (e.tx_id, e.position) > (start.tx_id, start.position)
        ORDER BY e.tx_id, e.position
        LIMIT :scan
    )
    SELECT (SELECT coalesce(max(position), 0) FROM ledger_events) AS head,
           (SELECT min(position) FROM pending) AS first_pending,
           (SELECT min(recorded_at) FROM pending) AS oldest_pending,
           (SELECT last_applied_at FROM ck) AS last_applied_at,
           (SELECT tx_id FROM ck) AS stored_tx,
           (SELECT position FROM ck) AS stored_position,
           clock_timestamp() AS now
    """
)


_LOOKUP_SQL = text(
    """
    SELECT (SELECT tx_id::text::bigint FROM ledger_events WHERE position = :p) AS target_tx,
           (SELECT coalesce(max(position), 0) FROM ledger_events) AS head,
           c.tx_id AS checkpoint_tx, c.position AS checkpoint_position
    FROM (SELECT 1) AS one LEFT JOIN projection_checkpoints c ON c.name = :n
    """
)


@dataclass(frozen=True)
class _Measured:
    freshness: Freshness
    # What it was measured against: the ledger moves seen, the projection's announced checkpoint.
    ledger_generation: int
    checkpoint: TxPosition
    at: float


class FreshnessService:
    """Freshness is measured in PostgreSQL, then served from memory until the ledger or the
    projection's checkpoint moves (every process hears both): between those, only the age of
    the oldest pending event grows, and that is added on the way out."""

    def __init__(self, engine: AsyncEngine, watcher: CheckpointWatcher) -> None:
        self._engine = engine
        self._watcher = watcher
        self._ledger_generation = 0
        self._measured: dict[str, _Measured] = {}

    def ledger_moved(self) -> None:
        """A commit appended to the ledger (its notification arrived)."""
        self._ledger_generation += 1

    async def freshness(self, projection: str) -> Freshness:
        known = self._measured.get(projection)
        checkpoint = self._watcher.latest(projection)
        if (
            known is not None
            and known.ledger_generation == self._ledger_generation
            and known.checkpoint == checkpoint
        ):
            fresh = known.freshness
            if fresh.lag_events:
                return replace(fresh, lag_seconds=fresh.lag_seconds + time.monotonic() - known.at)
            return fresh
        generation = self._ledger_generation
        fresh, measured_at = await self._measure(projection)
        self._measured[projection] = _Measured(fresh, generation, measured_at, time.monotonic())
        return fresh

    async def _measure(self, projection: str) -> tuple[Freshness, TxPosition]:
        """The freshness, and the checkpoint it was measured against (the watcher's or the stored
        one, whichever is further)."""
        # The announced checkpoint can be ahead of the stored one: a projector stores a
        # checkpoint that only events it ignores moved a little later (projections.runner).
        seen_tx, seen_pos = self._watcher.latest(projection)
        params = {
            "name": projection,
            "scan": PENDING_SCAN_LIMIT,
            "seen_tx": str(seen_tx),
            "seen_pos": seen_pos,
        }
        async with self._engine.connect() as conn:
            row = (await conn.execute(_FRESHNESS_SQL, params)).one()
        against: TxPosition = (seen_tx, seen_pos)
        if row.stored_tx is not None:
            # What this measures must not be ahead of what the watcher knows: readers that key
            # answers on the watcher's checkpoint (kept search answers) report this freshness.
            stored = (int(row.stored_tx), int(row.stored_position))
            self._watcher.observe(projection, stored)
            against = max(against, stored)
        head = int(row.head)
        covered = head if row.first_pending is None else int(row.first_pending) - 1
        lag_seconds = 0.0
        if row.oldest_pending is not None:
            lag_seconds = max(0.0, (row.now - row.oldest_pending).total_seconds())
        fresh = Freshness(
            projection=projection,
            position=covered,
            head_position=head,
            lag_events=max(0, head - covered),
            lag_seconds=lag_seconds,
            updated_at=row.last_applied_at,
        )
        return fresh, against

    async def wait_for(self, projection: str, position: int, timeout: float | None = None) -> None:
        """Return once ``projection`` has applied the event at ``position``; else StaleRead."""
        bound = DEFAULT_WAIT_SECONDS if timeout is None else min(max(timeout, 0.0), MAX_WAIT_SECONDS)
        deadline = time.monotonic() + bound
        target: TxPosition | None = None
        while True:
            # Subscribe before checking, so an announcement in between is not lost.
            changed = self._watcher.changed(projection)
            if target is None:
                target, head = await self._lookup(projection, position)
                if target is None and position > head:
                    # Positions reach callers only once their transaction has committed, so one
                    # past the newest committed event can never arrive: say so now rather than
                    # hold the request for its whole bound. (The lookup reads the primary; a
                    # replica behind it would have to wait instead.)
                    raise self._stale(projection, position, ahead=True)
                if target is not None and self._watcher.latest(projection) < target:
                    # Once: the owner holds the position until its checkpoint has passed it.
                    self._watcher.want(projection, target)
            if target is None:
                # No committed event has it (yet): a freshness watermark, which may name a gap a
                # rolled-back append left or an append still in flight. The model is consistent
                # with it once it covers every event up to it, as that watermark reports.
                if (await self.freshness(projection)).position >= position:
                    return
            elif self._watcher.latest(projection) >= target:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._stale(projection, position)
            # A timeout scope, not wait_for (no task per wait). A change in the same loop turn as
            # the deadline loses to the timeout: the loop looks at the checkpoint again first.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _lookup(self, projection: str, position: int) -> tuple[TxPosition | None, int]:
        """Where event ``position`` sits in (tx_id, position) order (None while it is not
        visible) and the newest committed position, and (as a side effect) what the projector
        has stored, in one round trip."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_LOOKUP_SQL, {"p": position, "n": projection})).one()
        if row.checkpoint_tx is not None:
            self._watcher.observe(projection, (int(row.checkpoint_tx), int(row.checkpoint_position)))
        target = None if row.target_tx is None else (int(row.target_tx), position)
        return target, int(row.head)

    @staticmethod
    def _stale(projection: str, position: int, *, ahead: bool = False) -> StaleRead:
        if ahead:
            message = f"position {position} is not in the ledger (ahead of the head)"
        else:
            message = f"the {projection} read model has not reached position {position} yet"
        return StaleRead(message, projection, position)
