"""The process's tail answers projectors behind its last read from memory, and nothing is lost."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection
from commands.store.ledger.reader import Batch, Checkpoint, RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections.runner import ProjectionRunner, RunnerConfig
from projections.tail import LedgerTail
from tests.support.projections import AmountRecorded
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")


class LedgerReadsCounted(LedgerTail):
    """The tail, counting the reads (and the events) it takes from PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, hold_connection=True)
        self.reads = 0
        self.events_read = 0

    async def _read_ledger(self, after: Checkpoint, limit: int) -> Batch:
        batch = await super()._read_ledger(after, limit)
        self.reads += 1
        self.events_read += len(batch.events)
        return batch


class HeldRead(LedgerReadsCounted):
    """A tail whose ledger reads wait for ``go`` once they have started."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.go.set()

    async def _read_ledger(self, after: Checkpoint, limit: int) -> Batch:
        self.started.set()
        await self.go.wait()
        return await super()._read_ledger(after, limit)


class RecordedOrder:
    """Keeps the positions it is given, in the order given (a read model of the test)."""

    store = "memory"

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.positions: list[int] = []

    async def setup(self) -> None:
        return None

    def wants(self, event: RecordedEvent) -> bool:
        return True

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.positions.extend(e.position for e in events)


async def _append(container: Container, stream: str, amounts: list[int]) -> None:
    async with UnitOfWork(container.engine, META) as uow:
        await uow.append("test", stream, [AmountRecorded(a) for a in amounts])
        await uow.commit()


async def _ledger_order(container: Container) -> list[int]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT position FROM ledger_events ORDER BY tx_id, position"))
        return [r.position for r in rows]


async def test_a_projector_behind_the_last_read_gets_the_same_events_from_memory(
    container: Container,
) -> None:
    for k in range(4):
        await _append(container, f"acct-{k}", [k, k + 10])
    order = await _ledger_order(container)
    tail = LedgerReadsCounted(container.engine)
    try:
        first = await tail.read(Checkpoint(), 500)
        assert [e.position for e in first.events] == order and not first.held_back
        assert tail.reads == 1

        behind = first.events[2].checkpoint
        from_memory = await tail.read(behind, 500)
        assert tail.reads == 1
        own = await tail.read_now(behind, 500)  # a read of its own goes to the ledger
        assert tail.reads == 2
        assert [e.position for e in from_memory.events] == [e.position for e in own.events] == order[3:]
        # It reaches the end of a read that found nothing more, and no commit was notified since:
        # the projector may sleep until the next notification, as after a read of its own.
        assert not from_memory.held_back

        short = await tail.read(Checkpoint(), 3)
        assert [e.position for e in short.events] == order[:3] and short.held_back and tail.reads == 2

        await _append(container, "acct-new", [99])
        tail.notified()
        # A commit was notified after the last read began: the memory's end is not the ledger's.
        again = await tail.read(behind, 500)
        assert [e.position for e in again.events] == order[3:] and again.held_back and tail.reads == 2
        newest = await tail.read(first.events[-1].checkpoint, 500)
        assert tail.reads == 3 and len(newest.events) == 1
    finally:
        await tail.close()


async def test_a_commit_notified_during_the_read_that_ended_the_window_is_not_taken_as_seen(
    container: Container,
) -> None:
    for k in range(3):
        await _append(container, f"acct-{k}", [k])
    tail = HeldRead(container.engine)
    try:
        first = await tail.read(Checkpoint(), 500)
        end, behind = first.events[-1].checkpoint, first.events[0].checkpoint
        await _append(container, "acct-late", [7])
        tail.go.clear()
        tail.started.clear()
        reading = asyncio.create_task(tail.read(end, 500))
        await tail.started.wait()
        # A commit is notified while the read is in flight: the read may or may not show it.
        tail.notified()
        tail.go.set()
        assert len((await reading).events) == 1
        # So memory that reaches the window's end says "read again", not "sleep until notified".
        again = await tail.read(behind, 500)
        assert [e.position for e in again.events][-1] == (await _ledger_order(container))[-1]
        assert again.held_back
        # A read at the end with no notification since it began: the end is known quiet again.
        newest = again.events[-1].checkpoint
        assert (await tail.read(newest, 500)).events == []
        assert not (await tail.read(behind, 500)).held_back
    finally:
        await tail.close()


async def test_projectors_at_their_own_pace_under_concurrent_commits_apply_every_event_once_in_order(
    container: Container,
) -> None:
    tail = LedgerReadsCounted(container.engine)
    models = [RecordedOrder("fast"), RecordedOrder("mid", delay=0.001), RecordedOrder("slow", delay=0.004)]
    # No polling to fall back on: a wake-up missed for good would leave a projector behind.
    config = RunnerConfig(batch_size=500, poll_interval=30, gather_seconds=0.0, save_after_seconds=0.05)
    sizes = {"fast": 50, "mid": 10, "slow": 3}
    runners = [
        ProjectionRunner(
            model,
            container.engine,
            replace(config, batch_size=sizes[model.name]),
            tail=tail,
        )
        for model in models
    ]
    for runner in runners:
        runner.start()

    async def writer(w: int) -> None:
        rng = random.Random(w)
        for k in range(25):
            await _append(container, f"acct-{w}-{k % 3}", [k] * rng.randint(1, 3))
            # What the process's LISTEN does for every commit it hears of.
            tail.notified()
            for runner in runners:
                runner.wake()

    try:
        await asyncio.gather(*(writer(w) for w in range(8)))
        order = await _ledger_order(container)

        def caught_up() -> bool:
            return all(len(model.positions) >= len(order) for model in models)

        await eventually(caught_up, timeout=20, message="every projector applied the whole ledger")
    finally:
        for runner in runners:
            await runner.stop()
        await tail.close()
    for model in models:
        assert model.positions == order, f"{model.name} applied events out of order, twice or not at all"
    applied = sum(len(model.positions) for model in models)
    # Three projectors applied every event; the ledger was read for little more than one of them.
    assert tail.events_read < applied * 2 // 3
