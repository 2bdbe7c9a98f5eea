"""One ledger read per wake-up for every projector of a process.

The projectors of a process wake on the same notification and mostly stand at the same
checkpoint, so each would send the same gap-safe read. The tail shares a read in flight
among the runners that ask for the same (checkpoint, batch size) while no newer
notification has arrived: a runner woken by a later commit never joins a read started
before that commit. Callers that must see their own commit without waiting for its
notification (``ProjectionRunner.catch_up``) read on their own.

What a read returned stays in an ``EventWindow``: a runner whose checkpoint lies inside it
gets the events that follow from memory. Such a batch says "held back" (come back at once)
unless it reaches the window's end and the read that ended the window found nothing more,
with no notification since it began: a commit after that read has its notification still
to come, which wakes the runner as it would have after reading the ledger itself.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.driver import discard
from commands.store.ledger.reader import Batch, Checkpoint, read_batch
from projections.event_window import EventWindow

_Key = tuple[Checkpoint, int, int]
# Events kept in memory: a few batches of every projector of a process.
WINDOW_EVENTS = 4096


class LedgerTail:
    def __init__(self, engine: AsyncEngine, *, hold_connection: bool = False) -> None:
        self._engine = engine
        self._generation = 0
        self._reads: dict[_Key, asyncio.Task[Batch]] = {}
        # A long-lived tail (the process's) keeps a connection for its reads: a pool checkout
        # and return cost about four times the read itself. Reads that overlap use the pool.
        self._hold = hold_connection
        self._held: AsyncConnection | None = None
        self._held_busy = False
        self._window = EventWindow(WINDOW_EVENTS)
        # The generation in which the read that ended the window began, when it found nothing
        # more past its events; None when it stopped short (a full batch, or held back).
        self._quiet_since: int | None = None

    def notified(self) -> None:
        """New commits (or a reconnect): reads from before no longer show the newest events."""
        self._generation += 1
        self._reads.clear()

    async def read(self, after: Checkpoint, limit: int) -> Batch:
        known = self._window.after(after, limit)
        if known is not None:
            events, reaches_end = known
            quiet = reaches_end and self._quiet_since == self._generation
            return Batch(events, held_back=not quiet)
        key = (after, limit, self._generation)
        task = self._reads.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(after, limit), name="ledger-tail-read")
            self._reads[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: one runner's cancellation (stop) must not fail the others' read.
        return await asyncio.shield(task)

    async def read_now(self, after: Checkpoint, limit: int) -> Batch:
        """A read of its own, started now."""
        return await self._fetch(after, limit)

    async def _fetch(self, after: Checkpoint, limit: int) -> Batch:
        generation = self._generation
        batch = await self._read_ledger(after, limit)
        if self._window.learn(after, batch.events):
            drained = len(batch.events) < limit and not batch.held_back
            self._quiet_since = generation if drained else None
        return batch

    async def _read_ledger(self, after: Checkpoint, limit: int) -> Batch:
        # No transaction: one statement has one snapshot, which is all the gap-safe read needs.
        if not self._hold or self._held_busy:
            async with self._engine.connect() as conn:
                return await read_batch(conn, after, limit)
        self._held_busy = True
        try:
            if self._held is None:
                self._held = await self._engine.connect()
            return await read_batch(self._held, after, limit)
        except BaseException:
            # A failed or cancelled read may leave the session dead or anywhere: never reuse it.
            held, self._held = self._held, None
            if held is not None:
                await discard(held)
            raise
        finally:
            self._held_busy = False
            if not self._hold:  # closed while this read was in flight
                await self._let_go()

    async def close(self) -> None:
        self._hold = False
        if not self._held_busy:
            await self._let_go()

    async def _let_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.close()

    def _settled(self, key: _Key, task: asyncio.Task[Batch]) -> None:
        # Shared while in flight only: a commit can be visible before its notification
        # arrives, and a later read must see it.
        if self._reads.get(key) is task:
            del self._reads[key]
