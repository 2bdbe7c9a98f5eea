"""One PostgreSQL transaction for the batches a process's projectors have ready together.

The runners of a process wake on the same notification and read the same batch (``tail``),
so their store writes arrive in the same turn of the event loop. Each used to open its own
transaction and move its own checkpoint: a BEGIN, a checkpoint statement and a COMMIT per
projection per wake-up. Here the batches that are ready together are applied in one
transaction, and every checkpoint of the group moves in one statement.

Failure stays per projection: when the group's transaction fails for any reason (a batch
that raises, a checkpoint another owner moved, a lock not granted within
``lock_timeout_ms``), it rolls back as a whole and every batch of it is handed back
(``GroupFailed``): its runner applies it alone, on its own connection, exactly as it would
without a group, so one projection that waits or fails never holds the others up. Applying
a PostgreSQL batch again after the rollback is safe because nothing of it was kept; a batch
for another store was written (idempotently) before it was submitted, and only its
checkpoint is part of the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.driver import PgConnection, asyncpg_of, discard
from commands.store.ledger.reader import Checkpoint
from projections import checkpoints
from projections.checkpoints import CheckpointMoved

log = logging.getLogger(__name__)

Apply = Callable[[PgConnection], Awaitable[None]]


class GroupFailed(Exception):
    """The batch was not committed (its group rolled back, or the commits are closed): the
    caller applies it alone."""


@dataclass(frozen=True)
class _Batch:
    name: str
    checkpoint: Checkpoint
    expected: Checkpoint
    # Writes to PostgreSQL inside the transaction; None for a checkpoint-only move.
    apply: Apply | None
    outcome: asyncio.Future[None]


class BatchCommits:
    def __init__(self, engine: AsyncEngine, *, lock_timeout_ms: int = 1000) -> None:
        self._engine = engine
        self._lock_timeout_ms = lock_timeout_ms
        self._queue: list[_Batch] = []
        self._flushing: asyncio.Task[None] | None = None
        self._closed = False
        # Kept between groups: a pool checkout per group costs about as much as its statements.
        self._held: AsyncConnection | None = None
        self.groups = 0
        self.grouped_batches = 0

    async def commit(
        self, name: str, checkpoint: Checkpoint, expected: Checkpoint, apply: Apply | None
    ) -> None:
        """Apply and move ``name``'s checkpoint from ``expected`` to ``checkpoint``, maybe in
        one transaction with others; ``GroupFailed`` when the caller must do it alone."""
        if self._closed:
            raise GroupFailed("the batch commits are closed")
        outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Batch(name, checkpoint, expected, apply, outcome))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="projection-batch-commits")
        await outcome

    async def close(self) -> None:
        self._closed = True
        task, self._flushing = self._flushing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A task cancelled before its first step never ran its own clean-up.
        self._hand_back(self._queue, "the batch commits are closed")
        self._queue = []
        await self._release(reset=True)

    async def _flush(self) -> None:
        try:
            # One more turn of the loop: the runners resumed by the same read submit in it.
            await asyncio.sleep(0)
            while self._queue:
                group, self._queue = self._queue, []
                await self._commit(group)
        finally:
            if self._flushing is asyncio.current_task():
                self._flushing = None
            self._hand_back(self._queue, "the batch commits stopped")
            self._queue = []

    async def _commit(self, group: list[_Batch]) -> None:
        # A runner that stopped waiting (stop()) gave its batch up: it must not be written later.
        live = sorted((b for b in group if not b.outcome.done()), key=lambda b: b.name)
        if not live:
            return
        try:
            await self._transaction(live)
        except BaseException as exc:
            await self._release(reset=False)
            self._hand_back(live, f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise
            log.info(
                "grouped projection batches rolled back; each is applied alone",
                extra={"projections": [b.name for b in live], "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        self.groups += 1
        self.grouped_batches += len(live)
        for batch in live:
            if not batch.outcome.done():
                batch.outcome.set_result(None)

    async def _transaction(self, group: Sequence[_Batch]) -> None:
        conn = await self._connection()
        moves = [(b.name, b.checkpoint, b.expected) for b in group]
        if len(group) == 1 and group[0].apply is None:
            # One checkpoint moved over events it ignores: a single statement, atomic on its own.
            if await checkpoints.advance_many(conn, moves) != 1:
                raise CheckpointMoved("the checkpoint is no longer where its batch started")
            return
        # The batches in name order, like the checkpoint rows: two processes' groups lock alike.
        async with conn.transaction():
            for batch in group:
                if batch.apply is not None:
                    await batch.apply(conn)
            if await checkpoints.advance_many(conn, moves) != len(group):
                raise CheckpointMoved("a checkpoint of the group is no longer where its batch started")

    async def _connection(self) -> PgConnection:
        if self._held is None:
            held = await self._engine.connect()
            try:
                driver = await asyncpg_of(held)
                # A lock another session holds fails the group instead of holding every projection.
                await driver.execute(f"SET lock_timeout = {int(self._lock_timeout_ms)}")
            except BaseException:
                await discard(held)
                raise
            self._held = held
        return await asyncpg_of(self._held)

    async def _release(self, *, reset: bool) -> None:
        """Give the connection back (its lock_timeout reset first) or, after a failure, discard it."""
        held, self._held = self._held, None
        if held is None:
            return
        if reset:
            with contextlib.suppress(Exception):
                await (await asyncpg_of(held)).execute("RESET lock_timeout")
                await held.close()
                return
        await discard(held)

    @staticmethod
    def _hand_back(batches: Sequence[_Batch], reason: str) -> None:
        for batch in batches:
            if not batch.outcome.done():
                batch.outcome.set_exception(GroupFailed(reason))
