"""Runs one projection: gap-safe batches, checkpoint per batch, wake-ups, backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.ledger.reader import Checkpoint, RecordedEvent, read_batch
from projections import checkpoints

log = logging.getLogger(__name__)


class Projection(Protocol):
    """A read model builder. ``apply`` must be idempotent per event.

    ``conn`` is the transaction that also moves the checkpoint: PostgreSQL
    projections write through it (rows and checkpoint commit together);
    projections into other stores write there idempotently (at-least-once).
    """

    name: str
    store: str

    async def setup(self) -> None: ...

    async def apply(self, events: Sequence[RecordedEvent], conn: AsyncConnection) -> None: ...


@dataclass(frozen=True)
class RunnerConfig:
    batch_size: int = 500
    poll_interval: float = 1.0
    # A batch stopped at the xmin horizon: an older transaction is still open.
    held_back_interval: float = 0.02
    # After a wake-up, wait this long for more commits to arrive, so a burst of transactions
    # (one checkout commits several) costs one batch instead of one each.
    gather_seconds: float = 0.004
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    failed_after: int = 3


Listener = Callable[[str, Checkpoint], None]


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        engine: AsyncEngine,
        config: RunnerConfig | None = None,
        on_advance: Listener | None = None,
    ) -> None:
        self.projection = projection
        self._engine = engine
        self._config = config or RunnerConfig()
        self._on_advance = on_advance
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.checkpoint = Checkpoint()
        self.consecutive_failures = 0
        self._prepared = False

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._stopping = False
        self._stopped.clear()
        self._task = asyncio.create_task(self.run(), name=f"projector:{self.name}")
        return self._task

    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in hand, then exit; cancel if it takes longer than ``timeout``."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _prepare(self) -> None:
        await self.projection.setup()
        async with self._engine.begin() as conn:
            self.checkpoint = (await checkpoints.ensure(conn, self.name)).checkpoint
        self._prepared = True

    async def run(self) -> None:
        await self._prepare()
        while not self._stopping:
            try:
                progressed, held_back = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(exc)
                continue
            if not progressed:
                interval = self._config.held_back_interval if held_back else self._config.poll_interval
                if await self._sleep(interval) and self._config.gather_seconds > 0:
                    await asyncio.sleep(self._config.gather_seconds)

    async def step(self) -> tuple[bool, bool]:
        """Apply one batch. Returns (applied anything, stopped at the xmin horizon)."""
        # Cleared before reading: a notification during the batch re-arms the wake-up.
        self._wake.clear()
        async with self._engine.connect() as conn, conn.begin():
            batch = await read_batch(conn, self.checkpoint, self._config.batch_size)
            if not batch.events:
                return False, batch.held_back
            await self.projection.apply(batch.events, conn)
            new_checkpoint = batch.events[-1].checkpoint
            await checkpoints.advance(conn, self.name, new_checkpoint)
        self.checkpoint = new_checkpoint
        self.consecutive_failures = 0
        if self._on_advance is not None:
            self._on_advance(self.name, new_checkpoint)
        return True, batch.held_back

    async def catch_up_once(self) -> tuple[bool, bool]:
        """One step, for callers that drive the projector by hand (tests, rebuilds)."""
        if not self._prepared:
            await self._prepare()
        return await self.step()

    async def catch_up(self) -> int:
        """Apply batches until nothing is left below the horizon; returns batches applied."""
        if not self._prepared:
            await self._prepare()
        applied = 0
        while True:
            progressed, held_back = await self.step()
            if progressed:
                applied += 1
            elif held_back:
                await asyncio.sleep(self._config.held_back_interval)
            else:
                return applied

    async def _failed(self, exc: Exception) -> None:
        self.consecutive_failures += 1
        log.exception(
            "projection batch failed",
            extra={"projection": self.name, "failures": self.consecutive_failures},
        )
        try:
            async with self._engine.begin() as conn:
                await checkpoints.record_failure(
                    conn, self.name, f"{type(exc).__name__}: {exc}", self._config.failed_after
                )
        except Exception:
            log.exception("could not record projection failure", extra={"projection": self.name})
        delay = min(
            self._config.backoff_initial * 2 ** (self.consecutive_failures - 1), self._config.backoff_max
        )
        # New events must not cut a backoff short; only stop() does.
        await self._sleep(delay, self._stopped)

    async def _sleep(self, seconds: float, until: asyncio.Event | None = None) -> bool:
        """Wait for the event or the timeout; True when the event woke us."""
        try:
            await asyncio.wait_for((until or self._wake).wait(), seconds)
        except TimeoutError:
            return False
        return True
