"""Batches ready together commit in one transaction; each still gets its own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection, asyncpg_of
from commands.store.ledger.reader import Checkpoint, RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections import checkpoints
from projections.batch_commits import Apply, BatchCommits, GroupFailed
from projections.runner import ProjectionRunner
from projections.tail import LedgerTail
from tests.support.projections import AmountRecorded
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")


async def _table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS test_grouped (projection text NOT NULL, n bigint NOT NULL)")
        )


def _insert(projection: str, n: int) -> Apply:
    async def apply(conn: PgConnection) -> None:
        await conn.execute("INSERT INTO test_grouped (projection, n) VALUES ($1, $2)", projection, n)

    return apply


def _failing(projection: str) -> Apply:
    async def apply(conn: PgConnection) -> None:
        await conn.execute("INSERT INTO test_grouped (projection, n) VALUES ($1, 1)", projection)
        await conn.execute("SELECT 1 / 0")

    return apply


async def _rows(engine: AsyncEngine, projection: str, table: str = "test_grouped") -> list[int]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT n FROM {table} WHERE projection = :p ORDER BY n"), {"p": projection}
        )
        return [r.n for r in result]


async def _stored(engine: AsyncEngine, name: str) -> Checkpoint:
    async with engine.begin() as conn:
        return (await checkpoints.ensure(conn, name)).checkpoint


async def test_batches_submitted_together_commit_in_one_transaction(container: Container) -> None:
    engine = container.engine
    await _table(engine)
    names = [f"grouped-{uuid.uuid4().hex[:8]}-{i}" for i in range(4)]
    for name in names:
        await _stored(engine, name)
    async with engine.begin() as conn:  # a model being rebuilt keeps that state while it advances
        await conn.execute(
            text("UPDATE projection_checkpoints SET state = 'REBUILDING' WHERE name = :n"), {"n": names[0]}
        )
    heard: list[str] = []
    async with engine.connect() as listening:
        listener = await asyncpg_of(listening)
        await listener.add_listener(checkpoints.CHECKPOINT_CHANNEL, lambda *args: heard.append(args[-1]))
        commits = BatchCommits(engine)
        try:
            # The last one moves its checkpoint only (a batch for another store, or ignored events).
            applies: list[Apply | None] = [_insert(name, i) for i, name in enumerate(names[:3])] + [None]
            await asyncio.gather(
                *(
                    commits.commit(name, Checkpoint(7, 10 + i), Checkpoint(), apply)
                    for i, (name, apply) in enumerate(zip(names, applies, strict=True))
                )
            )
        finally:
            await commits.close()
        expected = {f"{name}:7:{10 + i}" for i, name in enumerate(names)}
        await eventually(lambda: expected <= set(heard), message=f"announcements heard: {heard}")
    assert (commits.groups, commits.grouped_batches) == (1, 4)
    for i, name in enumerate(names):
        assert await _stored(engine, name) == Checkpoint(7, 10 + i)
        assert await _rows(engine, name) == ([i] if i < 3 else [])
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT name, state FROM projection_checkpoints WHERE name = ANY(:n)"), {"n": names}
        )
        states = {row.name: row.state for row in result}
    assert states == {names[0]: "REBUILDING", **{name: "RUNNING" for name in names[1:]}}


async def test_a_failing_batch_rolls_its_group_back_and_every_batch_is_handed_back(
    container: Container,
) -> None:
    engine = container.engine
    await _table(engine)
    good, bad = (f"grouped-{uuid.uuid4().hex[:8]}-{kind}" for kind in ("good", "bad"))
    for name in (good, bad):
        await _stored(engine, name)
    commits = BatchCommits(engine)
    try:
        outcomes = await asyncio.gather(
            commits.commit(good, Checkpoint(3, 5), Checkpoint(), _insert(good, 1)),
            commits.commit(bad, Checkpoint(3, 5), Checkpoint(), _failing(bad)),
            return_exceptions=True,
        )
        assert all(isinstance(outcome, GroupFailed) for outcome in outcomes), outcomes
        assert "division by zero" in str(outcomes[1])
        assert commits.groups == 0
        # Nothing of the group is kept: not the good batch, not the failed one's first statement.
        for name in (good, bad):
            assert await _rows(engine, name) == [] and await _stored(engine, name) == Checkpoint()
        # A new connection serves the next group.
        await commits.commit(bad, Checkpoint(3, 5), Checkpoint(), _insert(bad, 2))
        assert await _rows(engine, bad) == [2] and commits.groups == 1
    finally:
        await commits.close()


async def test_a_checkpoint_moved_elsewhere_rolls_the_group_back(container: Container) -> None:
    engine = container.engine
    await _table(engine)
    # Another owner moved ``taken`` on: this process's batch starts from a stale checkpoint.
    mine, taken = await _second_moved_on(engine, ("mine", "taken"), Checkpoint(2, 9))
    commits = BatchCommits(engine)
    try:
        outcomes = await asyncio.gather(
            commits.commit(mine, Checkpoint(2, 4), Checkpoint(), _insert(mine, 1)),
            commits.commit(taken, Checkpoint(2, 4), Checkpoint(), _insert(taken, 1)),
            return_exceptions=True,
        )
        assert all(isinstance(outcome, GroupFailed) for outcome in outcomes), outcomes
        assert await _stored(engine, mine) == Checkpoint() and await _rows(engine, mine) == []
        assert await _stored(engine, taken) == Checkpoint(2, 9) and await _rows(engine, taken) == []
    finally:
        await commits.close()


async def test_a_checkpoint_alone_moves_in_one_statement_only_from_where_its_batch_started(
    container: Container,
) -> None:
    """A batch of events its projection ignores moves the checkpoint without a transaction: it
    moves when nobody else moved it, and is handed back untouched when somebody did."""
    engine = container.engine
    ignoring, overtaken = await _second_moved_on(engine, ("ignoring", "overtaken"), Checkpoint(3, 7))
    commits = BatchCommits(engine)
    try:
        await commits.commit(ignoring, Checkpoint(2, 4), Checkpoint(), None)
        assert await _stored(engine, ignoring) == Checkpoint(2, 4)
        with pytest.raises(GroupFailed):
            await commits.commit(overtaken, Checkpoint(2, 4), Checkpoint(), None)
        assert await _stored(engine, overtaken) == Checkpoint(3, 7)
        # The connection is still good for a group in a transaction.
        await commits.commit(ignoring, Checkpoint(2, 6), Checkpoint(2, 4), None)
        assert await _stored(engine, ignoring) == Checkpoint(2, 6)
    finally:
        await commits.close()


async def test_closed_commits_hand_back_what_is_queued_and_refuse_new_batches(container: Container) -> None:
    engine = container.engine
    await _table(engine)
    name = f"grouped-{uuid.uuid4().hex[:8]}"
    await _stored(engine, name)
    commits = BatchCommits(engine)
    queued = asyncio.ensure_future(commits.commit(name, Checkpoint(1, 1), Checkpoint(), _insert(name, 1)))
    await asyncio.sleep(0)  # queued; its flush has not run yet
    await commits.close()
    with pytest.raises(GroupFailed):
        await asyncio.wait_for(queued, 5)
    with pytest.raises(GroupFailed):
        await commits.commit(name, Checkpoint(1, 1), Checkpoint(), _insert(name, 2))
    assert await _rows(engine, name) == [] and await _stored(engine, name) == Checkpoint()


class _Positions:
    """Records each event's position in ``test_grouped`` under its own name."""

    store = "postgres"

    def __init__(self, name: str) -> None:
        self.name = name

    async def setup(self) -> None:
        return None

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type == "test"

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        await conn.executemany(
            "INSERT INTO test_grouped (projection, n) VALUES ($1, $2)",
            [(self.name, e.position) for e in events],
        )


async def test_runners_sharing_a_tail_apply_every_event_once_through_shared_commits(
    container: Container,
) -> None:
    engine = container.engine
    await _table(engine)
    tail, commits = LedgerTail(engine), BatchCommits(engine)
    projections = [_Positions(f"grouped-{uuid.uuid4().hex[:8]}-{i}") for i in range(3)]
    runners = [ProjectionRunner(p, engine, FAST_RUNNERS, tail=tail, commits=commits) for p in projections]
    for runner in runners:
        runner.start()
    positions: list[int] = []
    try:
        for k in range(20):
            async with UnitOfWork(engine, META) as uow:
                recorded = await uow.append("test", f"acct-{uuid.uuid4().hex[:8]}", [AmountRecorded(k)])
                await uow.commit()
            positions.extend(e.position for e in recorded)
            tail.notified()
            for runner in runners:
                runner.wake()
        for projection in projections:
            await eventually(partial(_has_all, engine, projection.name, positions))
    finally:
        await asyncio.gather(*(runner.stop() for runner in runners))
        await commits.close()
    for projection in projections:
        applied = [n for n in await _rows(engine, projection.name) if n in set(positions)]
        assert applied == sorted(positions)  # every event once, none twice
    # The runners read the same batches, so at least some of them committed together.
    assert commits.groups >= 1 and commits.grouped_batches >= 2


async def _has_all(engine: AsyncEngine, name: str, positions: list[int]) -> bool:
    return set(positions) <= set(await _rows(engine, name))


class _Blockable(_Positions):
    """Writes to a table of its own, which the test can lock, or fails while ``broken``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.broken = False

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        if self.broken:
            raise RuntimeError("this projection's batch fails")
        await conn.executemany(
            "INSERT INTO test_grouped_own (projection, n) VALUES ($1, $2)",
            [(self.name, e.position) for e in events],
        )


async def _append(engine: AsyncEngine, tail: LedgerTail, runners: Sequence[ProjectionRunner]) -> int:
    async with UnitOfWork(engine, META) as uow:
        recorded = await uow.append("test", f"acct-{uuid.uuid4().hex[:8]}", [AmountRecorded(1)])
        await uow.commit()
    tail.notified()
    for runner in runners:
        runner.wake()
    return recorded[-1].position


async def _checkpoint_at(engine: AsyncEngine, name: str, position: int) -> bool:
    return (await _stored(engine, name)).position >= position


async def test_a_waiting_or_failing_projection_holds_no_other_projection_up(container: Container) -> None:
    engine = container.engine
    await _table(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS test_grouped_own (projection text NOT NULL, n bigint NOT NULL)")
        )
    tail, commits = LedgerTail(engine), BatchCommits(engine, lock_timeout_ms=200)
    stuck, steady = (
        _Blockable(f"grouped-{uuid.uuid4().hex[:8]}-stuck"),
        _Positions(f"grouped-{uuid.uuid4().hex[:8]}"),
    )
    runners = [ProjectionRunner(p, engine, FAST_RUNNERS, tail=tail, commits=commits) for p in (stuck, steady)]
    for runner in runners:
        runner.start()
    try:
        first = await _append(engine, tail, runners)
        for projection in (stuck, steady):
            await eventually(partial(_checkpoint_at, engine, projection.name, first))

        # Another session holds the stuck projection's table: its batch waits, alone. (SHARE
        # blocks inserts without taking a transaction id, which would hold the ledger's horizon.)
        async with engine.connect() as locker:
            await locker.execute(text("LOCK TABLE test_grouped_own IN SHARE MODE"))
            second = await _append(engine, tail, runners)
            await eventually(partial(_checkpoint_at, engine, steady.name, second), timeout=5)
            assert not await _checkpoint_at(engine, stuck.name, second)
            await locker.rollback()
        await eventually(partial(_checkpoint_at, engine, stuck.name, second))

        # The stuck projection now fails its batches: the other one goes on.
        stuck.broken = True
        third = await _append(engine, tail, runners)
        await eventually(partial(_checkpoint_at, engine, steady.name, third))
        await eventually(lambda: runners[0].consecutive_failures > 0)
        assert not await _checkpoint_at(engine, stuck.name, third)
        stuck.broken = False
        await eventually(partial(_checkpoint_at, engine, stuck.name, third))
    finally:
        await asyncio.gather(*(runner.stop() for runner in runners))
        await commits.close()
    owned = await _rows(engine, stuck.name, "test_grouped_own")
    assert owned == sorted({first, second, third} & set(owned)) and {first, second, third} <= set(owned)
    assert {first, second, third} <= set(await _rows(engine, steady.name))


async def _second_moved_on(engine: AsyncEngine, kinds: tuple[str, str], to: Checkpoint) -> tuple[str, str]:
    """Two new projections' checkpoints, at the start; the second moved on to ``to`` by another owner."""
    first, second = (f"grouped-{uuid.uuid4().hex[:8]}-{kind}" for kind in kinds)
    for name in (first, second):
        await _stored(engine, name)
    async with engine.begin() as conn:
        await checkpoints.advance(conn, second, to, Checkpoint())
    return first, second
