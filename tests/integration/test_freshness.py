"""Freshness reporting and read-your-writes waits."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections.runner import ProjectionRunner
from queries.freshness import CheckpointWatcher, FreshnessService, StaleRead
from tests.support.projections import AmountRecorded, AppliedLog
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")


async def _append(container: Container, amount: int) -> int:
    async with UnitOfWork(container.engine, META) as uow:
        (event,) = await uow.append("test", f"acct-{amount % 3}", [AmountRecorded(amount)])
        await uow.commit()
    return event.position


async def _applied_log(container: Container) -> ProjectionRunner:
    """The test projection ``applied_log``, added to the container and set up, not yet run."""
    container.add_projections([AppliedLog(container.engine)], FAST_RUNNERS)
    runner = container.runner("applied_log")
    await runner.projection.setup()
    return runner


async def _rolled_back_append(container: Container, amount: int) -> int:
    """The position of an event appended in a transaction that then rolled back (a gap)."""
    with pytest.raises(LookupError):
        async with UnitOfWork(container.engine, META) as uow:
            (lost,) = await uow.append("test", "acct-gap", [AmountRecorded(amount)])
            raise LookupError("refused after the append")
    return lost.position


async def test_wait_for_returns_when_the_projector_passes_the_position(container: Container) -> None:
    runner = await _applied_log(container)
    position = await _append(container, 1)
    waiter = asyncio.create_task(container.freshness.wait_for("applied_log", position, timeout=10))
    await asyncio.sleep(0.2)  # a window in which a waiter that ignored the position would return
    assert not waiter.done(), "nothing has applied the event yet"
    await runner.catch_up()  # announces the new checkpoint to the watcher
    await asyncio.wait_for(waiter, 1)


async def test_wait_for_is_woken_by_checkpoint_notifications_from_another_process(
    container: Container,
) -> None:
    # No on_advance callback: only the NOTIFY from the checkpoint's commit can wake the waiter.
    runner = ProjectionRunner(AppliedLog(container.engine), container.engine, FAST_RUNNERS)
    await runner.projection.setup()
    position = await _append(container, 2)
    waiter = asyncio.create_task(container.freshness.wait_for("applied_log", position, timeout=10))
    await asyncio.sleep(0.2)  # a window in which a waiter that ignored the position would return
    assert not waiter.done()
    await runner.catch_up()
    await asyncio.wait_for(waiter, 2)


async def test_wait_for_times_out_with_stale_read(container: Container) -> None:
    position = await _append(container, 3)
    with pytest.raises(StaleRead, match="has not reached position") as caught:
        await container.freshness.wait_for("applied_log", position, timeout=0.2)
    assert caught.value.position == position and caught.value.projection == "applied_log"


async def test_wait_for_a_position_ahead_of_the_head_is_stale_at_once(container: Container) -> None:
    position = await _append(container, 4)
    started = asyncio.get_running_loop().time()
    with pytest.raises(StaleRead, match="ahead of the head"):
        await container.freshness.wait_for("applied_log", position + 1000, timeout=10)
    # No committed event can ever take that position: the read is not held for its bound.
    assert asyncio.get_running_loop().time() - started < 5


async def test_wait_for_a_position_no_committed_event_has_returns_once_the_model_covers_it(
    container: Container,
) -> None:
    # A rolled-back append leaves its position unused below the head, and a read's freshness
    # may report it as its watermark: a read consistent with it waits for the model to cover it.
    runner = await _applied_log(container)
    await _append(container, 5)
    lost = await _rolled_back_append(container, 6)
    assert await _append(container, 7) > lost
    waiter = asyncio.create_task(container.freshness.wait_for("applied_log", lost, timeout=10))
    await asyncio.sleep(0.2)  # a window in which a waiter that ignored the position would return
    assert not waiter.done(), "the event before the gap is not applied yet"
    await runner.catch_up()
    await asyncio.wait_for(waiter, 2)
    assert (await container.freshness.freshness("applied_log")).position >= lost


async def test_a_position_nothing_covers_in_time_is_stale_saying_so(container: Container) -> None:
    await _append(container, 7)  # before the gap, and applied by nothing
    lost = await _rolled_back_append(container, 8)
    await _append(container, 9)
    with pytest.raises(StaleRead, match="has not reached position") as caught:
        await container.freshness.wait_for("applied_log", lost, timeout=0.3)
    assert caught.value.position == lost


async def test_freshness_reports_lag_until_applied(container: Container) -> None:
    container.add_projections([AppliedLog(container.engine)], FAST_RUNNERS)
    runner = container.runner("applied_log")
    await runner.catch_up()
    positions = [await _append(container, n) for n in range(5)]

    async def lag_measurable() -> bool:
        return (await container.freshness.freshness("applied_log")).lag_seconds > 0

    await eventually(lag_measurable, message="the unapplied events never showed a lag in seconds")
    behind = await container.freshness.freshness("applied_log")
    assert behind.head_position == positions[-1]
    assert behind.position < positions[0]
    assert behind.lag_events == behind.head_position - behind.position >= 5
    assert behind.lag_seconds > 0
    await runner.catch_up()
    caught_up = await container.freshness.freshness("applied_log")
    assert caught_up.position == caught_up.head_position == positions[-1]
    assert caught_up.lag_events == 0 and caught_up.lag_seconds == 0
    assert caught_up.updated_at is not None


async def test_freshness_is_measured_again_only_when_the_ledger_or_a_checkpoint_moves(
    container: Container,
) -> None:
    runner = await _applied_log(container)
    await runner.catch_up()
    position = await _append(container, 4)
    await asyncio.sleep(0.2)  # the append's notification arrives (a ledger move, measured again)
    behind = await container.freshness.freshness("applied_log")
    assert behind.lag_events >= 1 and behind.position < position

    # Nothing moved: the same measurement, older by the time that passed.
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(container.engine.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.sleep(0.2)
        later = await container.freshness.freshness("applied_log")
        assert statements == [], "served from memory"
        assert later.position == behind.position and later.lag_events == behind.lag_events
        assert later.lag_seconds >= behind.lag_seconds + 0.2

        # The projector moves: measured again, caught up.
        await runner.catch_up()
        caught_up = await container.freshness.freshness("applied_log")
        assert caught_up.lag_events == 0 and caught_up.position >= position
        assert statements, "measured in PostgreSQL again"
    finally:
        event.remove(container.engine.sync_engine, "before_cursor_execute", count)


async def test_a_measurement_tells_the_watcher_the_checkpoint_it_found(container: Container) -> None:
    """Readers keying answers on the watcher (kept search answers) report this measurement: the
    watcher must not stay behind what it says, as it would until another process's checkpoint
    notification arrives."""
    runner = ProjectionRunner(AppliedLog(container.engine), container.engine, FAST_RUNNERS)
    await runner.projection.setup()
    await _append(container, 5)
    await runner.catch_up()
    async with container.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT tx_id, position FROM projection_checkpoints WHERE name = 'applied_log'")
            )
        ).one()
    watcher = CheckpointWatcher()  # hears no notification: knows only what measurements tell it
    measured = await FreshnessService(container.engine, watcher).freshness("applied_log")
    assert measured.lag_events == 0
    assert watcher.latest("applied_log") == (int(stored.tx_id), int(stored.position)) > (0, 0)
