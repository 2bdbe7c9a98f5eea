"""Projectors gather a saga's commits into one batch, and never keep a waiting reader waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container, build_container
from projections.runner import ProjectionRunner, RunnerConfig
from tests.support.projections import AmountRecorded, AppliedLog
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")
# Gathering while a saga is in flight lasts longer than a reader's default wait (2 s): a
# reader that got its answer was not kept waiting by it.
LONG_GATHER = RunnerConfig(batch_size=200, poll_interval=30.0, saga_gather_seconds=30.0)


class BatchLog(AppliedLog):
    """The applied log, remembering the positions of each batch it applied."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.batches: list[list[int]] = []

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        await super().apply(events, conn)
        self.batches.append([e.position for e in events])


async def _append(container: Container, amount: int) -> int:
    async with UnitOfWork(container.engine, META) as uow:
        (event,) = await uow.append("test", f"acct-{amount}", [AmountRecorded(amount)])
        await uow.commit()
    return event.position


async def _started(container: Container, config: RunnerConfig) -> tuple[BatchLog, ProjectionRunner]:
    log = BatchLog(container.engine)
    await log.setup()
    container.add_projections([log], config)
    runner = container.runner(log.name)
    warm_up = await _append(container, 0)
    runner.start()
    await eventually(lambda: runner.checkpoint.position >= warm_up, message="runner caught up")
    log.batches.clear()
    return log, runner


async def test_the_commits_of_a_saga_in_flight_are_applied_in_one_batch(container: Container) -> None:
    config = RunnerConfig(batch_size=200, poll_interval=30.0, saga_gather_seconds=10.0)
    log, runner = await _started(container, config)
    try:
        with container.bus.sagas:
            first = await _append(container, 1)
            await asyncio.sleep(0.3)  # the commit's notification has arrived: the runner is gathering
            assert log.batches == [], "applied while the saga that committed is still in flight"
            second = await _append(container, 2)
        # The last saga ended: the gathering stops at once, not after its 10 s bound.
        await eventually(lambda: log.batches != [], timeout=3.0, message="applied after the saga ended")
        assert log.batches == [[first, second]]
    finally:
        await runner.stop()


async def test_without_a_saga_each_commit_is_applied_at_once(container: Container) -> None:
    log, runner = await _started(container, LONG_GATHER)
    try:
        first = await _append(container, 1)
        await eventually(lambda: log.batches == [[first]], timeout=3.0, message="first commit applied alone")
        second = await _append(container, 2)
        await eventually(lambda: len(log.batches) == 2, timeout=3.0, message="second commit applied")
        assert log.batches == [[first], [second]]
    finally:
        await runner.stop()


async def _read_own_write_during_a_saga(container: Container, log: BatchLog, reader: Container) -> None:
    """A saga commits and stays in flight; ``reader`` reads its write back (read-your-writes)."""
    with container.bus.sagas:
        position = await _append(container, 1)
        await asyncio.sleep(0.3)
        assert log.batches == [], "applied while the saga that committed is still in flight"
        # Would raise StaleRead after 2 s if the runner kept gathering for its 30 s.
        await reader.freshness.wait_for("applied_log", position)
        assert log.batches == [[position]]
        # The hurry ends once its position is applied: the next commit is gathered again.
        await _append(container, 2)
        await asyncio.sleep(0.3)
        assert log.batches == [[position]]


async def test_a_reader_waiting_for_a_position_ends_the_gathering(container: Container) -> None:
    log, runner = await _started(container, LONG_GATHER)
    try:
        await _read_own_write_during_a_saga(container, log, container)
    finally:
        await runner.stop()


async def test_a_reader_in_another_process_hurries_the_owner(container: Container) -> None:
    log, runner = await _started(container, LONG_GATHER)
    # Another gateway on the same database, running no projector: its readers reach the
    # owner through a control notification.
    elsewhere = await build_container(container.settings)
    try:
        await _read_own_write_during_a_saga(container, log, elsewhere)
    finally:
        await elsewhere.close()
        await runner.stop()


async def test_stop_ends_a_gathering_at_once(container: Container) -> None:
    log, runner = await _started(container, LONG_GATHER)
    loop = asyncio.get_running_loop()
    with container.bus.sagas:
        await _append(container, 1)
        await asyncio.sleep(0.3)
        assert log.batches == []
        started = loop.time()
        await runner.stop(timeout=10.0)
        # Not the stop's 10 s timeout, nor the gathering's 30 s bound.
        assert loop.time() - started < 2.0
