"""Projector crashes, failures and restarts: no event lost, none applied twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection
from commands.store.ledger.reader import _READ_BATCH, Batch, Checkpoint, RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections import checkpoints
from projections.runner import ProjectionRunner, RunnerConfig
from projections.tail import LedgerTail
from tests.support.projections import AmountRecorded, AppliedLog, RedisDocs
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")


async def _append_many(container: Container, streams: int, per_stream: int) -> list[int]:
    positions: list[int] = []
    for k in range(per_stream):
        for s in range(streams):
            async with UnitOfWork(container.engine, META) as uow:
                recorded = await uow.append("test", f"acct-{s}", [AmountRecorded(s * 100 + k)])
                await uow.commit()
            positions.extend(e.position for e in recorded)
    return positions


async def _applied_positions(container: Container) -> list[int]:
    async with container.engine.connect() as conn:
        return [r.position for r in await conn.execute(text("SELECT position FROM test_applied ORDER BY 1"))]


async def test_killed_mid_batch_then_restarted_applies_each_event_once(container: Container) -> None:
    positions = await _append_many(container, streams=6, per_stream=5)
    docs = RedisDocs(container.redis, container.settings.redis_prefix)
    docs.pause_after_streams = 3  # half the documents are written, then the batch blocks
    runner = ProjectionRunner(docs, container.engine, FAST_RUNNERS)
    task = runner.start()
    await asyncio.wait_for(docs.paused.wait(), 10)
    task.cancel()  # the process dies: Redis has half the batch, the checkpoint has none of it
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with container.engine.connect() as conn:
        row = await checkpoints.load(conn, "redis_docs")
    assert row is not None and row.checkpoint.position == 0
    assert sum([len(await docs.folded(f"acct-{s}")) for s in range(6)]) == 3 * 5

    restarted = RedisDocs(container.redis, container.settings.redis_prefix)
    await ProjectionRunner(restarted, container.engine, FAST_RUNNERS).catch_up()
    for s in range(6):
        assert await restarted.folded(f"acct-{s}") == [s * 100 + k for k in range(5)]
    async with container.engine.connect() as conn:
        row = await checkpoints.load(conn, "redis_docs")
    assert row is not None and row.checkpoint.position == max(positions)


async def test_postgres_projection_killed_mid_batch_rolls_back_with_its_checkpoint(
    container: Container,
) -> None:
    await _append_many(container, streams=4, per_stream=5)

    class SlowLog(AppliedLog):
        def __init__(self, *args: object) -> None:
            super().__init__(container.engine)
            self.halfway = asyncio.Event()

        async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
            await super().apply(events[: len(events) // 2], conn)
            self.halfway.set()
            await asyncio.sleep(3600)  # the scenario: a batch that never finishes until it is killed

    slow = SlowLog()
    runner = ProjectionRunner(slow, container.engine, FAST_RUNNERS)
    task = runner.start()
    await asyncio.wait_for(slow.halfway.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _applied_positions(container) == []

    await ProjectionRunner(AppliedLog(container.engine), container.engine, FAST_RUNNERS).catch_up()
    async with container.engine.connect() as conn:
        in_ledger = [
            r.position for r in await conn.execute(text("SELECT position FROM ledger_events ORDER BY 1"))
        ]
    assert await _applied_positions(container) == in_ledger


async def _checkpoint(container: Container) -> checkpoints.CheckpointRow | None:
    async with container.engine.connect() as conn:
        return await checkpoints.load(conn, "applied_log")


async def test_failing_projector_records_the_error_backs_off_and_recovers(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="projections.runner")
    await _append_many(container, streams=2, per_stream=3)
    attempts: list[float] = []
    allow = asyncio.Event()

    class Flaky(AppliedLog):
        async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
            attempts.append(asyncio.get_running_loop().time())
            if not allow.is_set():
                raise RuntimeError("search cluster unreachable")
            await super().apply(events, conn)

    config = RunnerConfig(
        batch_size=100, poll_interval=0.5, backoff_initial=0.05, backoff_max=1, failed_after=3
    )
    runner = ProjectionRunner(Flaky(container.engine), container.engine, config)

    async def failed() -> bool:
        row = await _checkpoint(container)
        return row is not None and row.state == "FAILED"

    runner.start()
    try:
        await eventually(failed, timeout=10, message="the projector never reported FAILED")
        row = await _checkpoint(container)
        assert row is not None and row.state == "FAILED"
        assert row.last_error == "RuntimeError: search cluster unreachable"
        assert row.failures >= 3 and row.checkpoint.position == 0
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        # Retries back off (0.05 s, then 0.1 s), not spin. Lower bounds only: a sleep never ends
        # early, but on a loaded machine any gap can run long (comparing gaps flaked).
        assert gaps[0] >= 0.9 * config.backoff_initial, gaps
        assert gaps[1] >= 0.9 * 2 * config.backoff_initial, gaps
        # One traceback for the failure; its repeats are one line each.
        failures = [r for r in caplog.records if r.getMessage().startswith("projection batch failed")]
        assert [r.exc_info is not None for r in failures[:3]] == [True, False, False]
        assert failures[1].getMessage() == "projection batch failed again"
        allow.set()
        await runner.catch_up()
    finally:
        await runner.stop()
    async with container.engine.connect() as conn:
        row = await checkpoints.load(conn, "applied_log")
        total = (await conn.execute(text("SELECT count(*) FROM ledger_events"))).scalar_one()
    assert row is not None and row.state == "RUNNING" and row.last_error is None and row.failures == 0
    assert len(await _applied_positions(container)) == total


async def test_stop_is_clean_and_restart_resumes_from_the_checkpoint(container: Container) -> None:
    first = await _append_many(container, streams=2, per_stream=2)
    runner = ProjectionRunner(AppliedLog(container.engine), container.engine, FAST_RUNNERS)
    runner.start()
    await container.freshness.wait_for("applied_log", max(first), timeout=5)
    await runner.stop()
    assert not runner.running
    second = await _append_many(container, streams=2, per_stream=2)
    assert await _applied_positions(container) == first
    runner.start()
    await container.freshness.wait_for("applied_log", max(second), timeout=5)
    await runner.stop()
    assert await _applied_positions(container) == first + second


class CountingTail(LedgerTail):
    """The process's shared ledger tail, counting the reads it sends to PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.fetches = 0

    async def _fetch(self, after: Checkpoint, limit: int) -> Batch:
        self.fetches += 1
        return await super()._fetch(after, limit)


class IgnoresEverything(AppliedLog):
    def wants(self, event: RecordedEvent) -> bool:
        return False


async def test_a_deferred_checkpoint_is_stored_without_reading_the_ledger_again(container: Container) -> None:
    tail = CountingTail(container.engine)
    config = RunnerConfig(poll_interval=30.0, save_after_seconds=0.1)
    runner = ProjectionRunner(
        IgnoresEverything(container.engine, "ignores"), container.engine, config, tail=tail
    )
    runner.start()
    try:
        await eventually(lambda: tail.fetches >= 1, message="first read")
        positions = await _append_many(container, streams=1, per_stream=1)
        tail.notified()
        runner.wake()
        await eventually(lambda: runner.checkpoint.position == max(positions), message="read past the event")
        reads = tail.fetches

        async def stored() -> bool:
            async with container.engine.connect() as conn:
                row = await checkpoints.load(conn, "ignores")
            return row is not None and row.checkpoint.position == max(positions)

        # Stored within save_after_seconds, by a wake-up that reads nothing.
        await eventually(stored, timeout=2.0, message="deferred checkpoint stored")
        await asyncio.sleep(0.2)
        assert tail.fetches == reads
    finally:
        await runner.stop()


async def test_the_process_tail_reads_on_one_kept_connection_and_gives_it_back_at_close(
    container: Container,
) -> None:
    positions = await _append_many(container, streams=2, per_stream=2)
    pool = container.engine.pool
    before = pool.checkedout()  # type: ignore[attr-defined]
    tail = LedgerTail(container.engine, hold_connection=True)
    try:
        first = await tail.read(Checkpoint(), 100)
        tail.notified()
        again = await tail.read(Checkpoint(), 100)
        assert [e.position for e in first.events] == [e.position for e in again.events] == positions
        assert pool.checkedout() == before + 1  # type: ignore[attr-defined]
        # Reads that overlap (a second tail, nothing in memory yet): one on its kept connection,
        # the other from the pool.
        other = LedgerTail(container.engine, hold_connection=True)
        try:
            both = await asyncio.gather(
                other.read(Checkpoint(), 100), other.read(first.events[1].checkpoint, 100)
            )
            assert [e.position for e in both[0].events] == positions
            assert [e.position for e in both[1].events] == positions[2:]
            assert pool.checkedout() == before + 2  # type: ignore[attr-defined]
        finally:
            await other.close()
    finally:
        await tail.close()
    assert pool.checkedout() == before  # type: ignore[attr-defined]
    # A closed tail still reads, from the pool.
    assert [e.position for e in (await tail.read(Checkpoint(), 100)).events] == positions
    assert pool.checkedout() == before  # type: ignore[attr-defined]


async def test_a_tail_whose_kept_connection_died_reads_on_a_new_one_and_leaves_no_dead_one(
    container: Container,
) -> None:
    positions = await _append_many(container, streams=1, per_stream=2)
    tail = LedgerTail(container.engine, hold_connection=True)
    try:
        await tail.read(Checkpoint(), 100)
        # The kept connection's backend goes away (a restart, an idle timeout, an operator).
        async with container.engine.connect() as admin:
            killed = await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND query LIKE :read_batch"
                ),
                {"read_batch": _READ_BATCH[:40] + "%"},
            )
            assert killed.all(), "the kept connection's backend was found"
        tail.notified()
        with contextlib.suppress(Exception):  # the read on the dead connection fails (or notices)
            await tail.read(Checkpoint(), 100)
        tail.notified()
        assert [e.position for e in (await tail.read(Checkpoint(), 100)).events] == positions
        # Nothing dead went back to the pool: every connection it hands out answers.
        connections = [await container.engine.connect() for _ in range(5)]
        try:
            for conn in connections:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        finally:
            for conn in connections:
                await conn.close()
    finally:
        await tail.close()
