"""One PostgreSQL transaction for the batches a process's projectors have ready together.

The runners of a process wake on the same notification and read the same batch (``tail``),
so their store writes arrive in the same turn of the event loop. Each used to open its own
transaction and move its own checkpoint: a BEGIN, a checkpoint statement and a COMMIT per
projection per wake-up. Here the batches that are ready together are applied in one
transaction, and every checkpoint of the group moves in one statement.

Failure stays per projection: when the group's transaction fails for any reason (a batch
that raises, a checkpoint another owner moved), it rolls back as a whole and each batch is
applied again in a transaction of its own, so every runner gets exactly the outcome it would
have had alone. Applying a PostgreSQL batch again after a rollback is safe because nothing
of it was kept; a batch for another store was applied before it was submitted (idempotently)
and only its checkpoint is part of the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.driver import PgConnection, asyncpg_of
from commands.store.ledger.reader import Checkpoint
from projections import checkpoints
from projections.checkpoints import CheckpointMoved

log = logging.getLogger(__name__)

Apply = Callable[[PgConnection], Awaitable[None]]


@dataclass(frozen=True)
class _Batch:
    name: str
    checkpoint: Checkpoint
    expected: Checkpoint
    # Writes to PostgreSQL inside the transaction; None for a checkpoint-only move.
    apply: Apply | None
    outcome: asyncio.Future[None]


class BatchCommits:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[_Batch] = []
        self._flushing: asyncio.Task[None] | None = None
        # Kept between groups: a pool checkout per group costs about as much as its statements.
        self._held: AsyncConnection | None = None
        self.groups = 0
        self.grouped_batches = 0

    async def commit(
        self, name: str, checkpoint: Checkpoint, expected: Checkpoint, apply: Apply | None
    ) -> None:
        """Apply and move ``name``'s checkpoint from ``expected`` to ``checkpoint``, maybe with
        others; raises what applying it alone would raise (``CheckpointMoved`` included)."""
        outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Batch(name, checkpoint, expected, apply, outcome))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="projection-batch-commits")
        await outcome

    async def close(self) -> None:
        task, self._flushing = self._flushing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._let_go()

    async def _flush(self) -> None:
        try:
            # One more turn of the loop: the runners resumed by the same read submit in it.
            await asyncio.sleep(0)
            while self._queue:
                group, self._queue = self._queue, []
                await self._commit(group)
        finally:
            self._flushing = None
            for batch in self._queue:
                batch.outcome.cancel()
            self._queue = []

    async def _commit(self, group: list[_Batch]) -> None:
        try:
            if len(group) > 1:
                try:
                    await self._transaction(group)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._let_go()
                    log.info(
                        "grouped projection batches failed; applying each alone",
                        extra={
                            "projections": [b.name for b in group],
                            "error": f"{type(exc).__name__}: {exc}",
                        },
                    )
                else:
                    self.groups += 1
                    self.grouped_batches += len(group)
                    for batch in group:
                        _settle(batch, None)
                    return
            for batch in group:
                try:
                    await self._transaction([batch])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._let_go()
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        except BaseException:
            await self._let_go()
            for batch in group:
                batch.outcome.cancel()
            raise

    async def _transaction(self, group: Sequence[_Batch]) -> None:
        if self._held is None:
            self._held = await self._engine.connect()
        conn = await asyncpg_of(self._held)
        async with conn.transaction():
            for batch in group:
                if batch.apply is not None:
                    await batch.apply(conn)
            if len(group) == 1:
                (batch,) = group
                await checkpoints.advance(conn, batch.name, batch.checkpoint, batch.expected)
            else:
                moved = await checkpoints.advance_many(
                    conn, [(b.name, b.checkpoint, b.expected) for b in group]
                )
                if moved != len(group):
                    raise CheckpointMoved("a checkpoint of the group is no longer where its batch started")

    async def _let_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                await held.close()


def _settle(batch: _Batch, error: Exception | None) -> None:
    # The runner may have given up waiting (stopped): nobody reads the outcome then.
    if batch.outcome.done():
        return
    if error is None:
        batch.outcome.set_result(None)
    else:
        batch.outcome.set_exception(error)
