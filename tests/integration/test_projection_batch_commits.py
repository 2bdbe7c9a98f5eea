"""Batches ready together commit in one transaction; each still gets its own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from functools import partial

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import PgConnection
from commands.store.ledger.reader import Checkpoint, RecordedEvent
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from projections import checkpoints
from projections.batch_commits import Apply, BatchCommits
from projections.checkpoints import CheckpointMoved
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


async def _rows(engine: AsyncEngine, projection: str) -> list[int]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT n FROM test_grouped WHERE projection = :p ORDER BY n"), {"p": projection}
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
        assert (commits.groups, commits.grouped_batches) == (1, 4)
        for i, name in enumerate(names):
            assert await _stored(engine, name) == Checkpoint(7, 10 + i)
            assert await _rows(engine, name) == ([i] if i < 3 else [])
    finally:
        await commits.close()


async def test_a_failing_batch_fails_alone_and_the_others_commit(container: Container) -> None:
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
        assert outcomes[0] is None
        assert isinstance(outcomes[1], Exception) and "division by zero" in str(outcomes[1])
        assert commits.groups == 0  # the group rolled back; each ran alone
        assert await _rows(engine, good) == [1] and await _stored(engine, good) == Checkpoint(3, 5)
        # Nothing of the failed batch is kept, not even its first statement, nor its checkpoint.
        assert await _rows(engine, bad) == [] and await _stored(engine, bad) == Checkpoint()
        # The connection is usable again for the next group.
        await commits.commit(bad, Checkpoint(3, 5), Checkpoint(), _insert(bad, 2))
        assert await _rows(engine, bad) == [2]
    finally:
        await commits.close()


async def test_a_checkpoint_moved_elsewhere_rolls_back_only_its_own_batch(container: Container) -> None:
    engine = container.engine
    await _table(engine)
    mine, taken = (f"grouped-{uuid.uuid4().hex[:8]}-{kind}" for kind in ("mine", "taken"))
    for name in (mine, taken):
        await _stored(engine, name)
    # Another owner moved ``taken`` on: this process's batch starts from a stale checkpoint.
    async with engine.begin() as conn:
        await checkpoints.advance(conn, taken, Checkpoint(2, 9), Checkpoint())
    commits = BatchCommits(engine)
    try:
        outcomes = await asyncio.gather(
            commits.commit(mine, Checkpoint(2, 4), Checkpoint(), _insert(mine, 1)),
            commits.commit(taken, Checkpoint(2, 4), Checkpoint(), _insert(taken, 1)),
            return_exceptions=True,
        )
        assert outcomes[0] is None and isinstance(outcomes[1], CheckpointMoved)
        assert await _stored(engine, mine) == Checkpoint(2, 4) and await _rows(engine, mine) == [1]
        assert await _stored(engine, taken) == Checkpoint(2, 9) and await _rows(engine, taken) == []
    finally:
        await commits.close()


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
