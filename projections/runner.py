"""Runs one projection: gap-safe batches, checkpoint per batch, wake-ups, backoff.

With a ``LeaseKeeper`` the runner applies only while it holds the projection's lease
(``projections.lease``) and stands by otherwise; every acquisition reloads the stored
checkpoint (a read model in this process's memory starts over instead). Setting up the
store is part of the retried work: a store that is down at start is retried with backoff
and reported (failures, last error, FAILED) until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.driver import PgConnection, asyncpg_of, discard
from commands.store.ledger.reader import Checkpoint, RecordedEvent
from projections import checkpoints
from projections.batch_commits import Apply, BatchCommits, GroupFailed
from projections.checkpoints import CheckpointMoved
from projections.lease import LeaseKeeper
from projections.tail import LedgerTail

log = logging.getLogger(__name__)


class Projection(Protocol):
    """A read model builder. ``apply`` must be idempotent per event.

    ``conn`` is an asyncpg connection. For a PostgreSQL projection (``store ==
    "postgres"``) it is inside the transaction that also moves the checkpoint (rows and
    checkpoint commit together); projections into other stores write there idempotently
    (at-least-once) and use ``conn`` for ledger reads only.
    """

    name: str
    store: str

    async def setup(self) -> None: ...

    def wants(self, event: RecordedEvent) -> bool:
        """Whether ``apply`` would do anything with ``event`` (a cheap filter, no I/O)."""
        ...

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None: ...


class SagasInFlight(Protocol):
    """Whether a saga of this process is in flight (``commands.sagas_in_flight``)."""

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True)
class RunnerConfig:
    batch_size: int = 500
    poll_interval: float = 1.0
    # A batch stopped at the xmin horizon: an older transaction is still open.
    held_back_interval: float = 0.02
    # After a wake-up, wait this long for more commits to arrive, so a burst of transactions
    # (one checkout commits several) costs one batch instead of one each.
    gather_seconds: float = 0.004
    # While any saga of this process is in flight (a checkout commits its order, then its
    # settlement a few milliseconds later), keep gathering until none is, up to this long after
    # the wake-up. Never while a reader waits for a position not yet applied (``hurry``).
    saga_gather_seconds: float = 0.025
    # A batch the projection has nothing to apply from moves its checkpoint in memory only
    # (announced in this process at once); the stored checkpoint follows with the next batch
    # it applies, or after this long. Other processes see such positions this much later.
    save_after_seconds: float = 0.1
    backoff_initial: float = 0.1
    backoff_max: float = 30.0
    failed_after: int = 3
    # A standby retries the lease this often (and on every control notification).
    lease_retry_seconds: float = 1.0
    # An owner re-checks its lease session and pauses this often (pauses are also notified).
    lease_check_seconds: float = 1.0


Listener = Callable[[str, Checkpoint], None]


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        engine: AsyncEngine,
        config: RunnerConfig | None = None,
        on_advance: Listener | None = None,
        lease: LeaseKeeper | None = None,
        *,
        volatile: bool = False,
        tail: LedgerTail | None = None,
        sagas: SagasInFlight | None = None,
        commits: BatchCommits | None = None,
    ) -> None:
        self.projection = projection
        self._engine = engine
        self._config = config or RunnerConfig()
        self._on_advance = on_advance
        self._lease = lease
        self._tail = tail or LedgerTail(engine)
        # The store lives in this process's memory: whatever another owner applied is not in it.
        self._volatile = volatile
        self._start_over = False
        self._lease_checked_at = 0.0
        self._control = asyncio.Event()
        self._wake = asyncio.Event()
        # The newest position a reader waits for: no gathering while the checkpoint is below it.
        self._wanted = Checkpoint()
        # Ends a gathering's sleep (a reader's hurry, or stop()).
        self._hurried = asyncio.Event()
        self._sagas = sagas
        # Shared by the process's runners: batches ready together commit in one transaction.
        self._commits = commits
        self._gathering = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Applied (in memory) and stored: the stored one trails while only ignored events passed.
        self.checkpoint = Checkpoint()
        self._stored = Checkpoint()
        self._unsaved_since: float | None = None
        # While the loop runs, the connection of the last batch is kept for the next one
        # (a pool checkout per batch costs about as much as the batch's own statements).
        self._holding = False
        self._held: AsyncConnection | None = None
        self.consecutive_failures = 0
        self._last_error = ""
        self._drained = False
        self._prepared = False

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def leased(self) -> bool:
        return self._lease is not None

    @property
    def owns(self) -> bool:
        """Whether this runner may apply now (holds the lease, or runs without one)."""
        return self._lease is None or self._lease.holds(self.name)

    def wake(self) -> None:
        self._wake.set()

    def hurry(self, target: Checkpoint) -> None:
        """A reader waits for ``target``: apply what there is instead of gathering more, until
        the checkpoint has passed it (a hurry is not used up by a batch that missed it)."""
        if target > self._wanted:
            self._wanted = target
        if self._readers_wait():  # else applied already: nothing to wake up for
            self._hurried.set()
            self._wake.set()

    def _readers_wait(self) -> bool:
        return self.checkpoint < self._wanted

    def sagas_ended(self) -> None:
        """The last saga in flight ended: a gathering in progress waits for nothing more."""
        if self._gathering:
            self._wake.set()

    def control(self) -> None:
        """A pause was requested or a lease released somewhere: check the lease now."""
        self._lease_checked_at = 0.0
        self._control.set()
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"projector:{self.name}")
        self._task.add_done_callback(self._report_end)
        return self._task

    def _report_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "projector ended by an error", extra={"projection": self.name}, exc_info=task.exception()
            )

    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in hand, then exit; cancel if it takes longer than ``timeout``."""
        self._stopping = True
        self._control.set()
        self._hurried.set()
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
        # The row first: a failing setup is recorded on it.
        async with self._engine.begin() as conn:
            stored = (await checkpoints.ensure(conn, self.name)).checkpoint
            # A store in this process's memory holds what this runner applied up to the checkpoint
            # it stored last. If the row still says so, nobody else applied since (every advance is
            # a compare-and-set): keep going from there instead of folding the ledger again.
            if self._start_over and stored != self._stored:
                await checkpoints.reset(conn, self.name)
                stored = Checkpoint()
            self.adopt(stored)
        self._start_over = False
        await self.projection.setup()
        self._prepared = True
        if self.consecutive_failures:
            async with self._engine.begin() as conn:
                await checkpoints.clear_failures(conn, self.name)
            self.consecutive_failures = 0
            log.info("projection store answers again", extra={"projection": self.name})

    def adopt(self, checkpoint: Checkpoint) -> None:
        """Stand at ``checkpoint``, which is what the store holds (start, reload, rebuild swap)."""
        self.checkpoint = self._stored = checkpoint
        self._unsaved_since = None

    async def run(self) -> None:
        self._holding = True
        try:
            await self._run()
        finally:
            self._holding = False
            try:
                if self._prepared and self.owns:
                    await self.save()
            except Exception:
                log.warning("could not store the checkpoint at stop", extra={"projection": self.name})
            finally:
                await self._let_go()
                if self._lease is not None:
                    await self._lease.release(self.name)

    async def _run(self) -> None:
        woken_to_save = False
        while not self._stopping:
            # Only the turn right after such a wake-up may skip its read.
            skip_read, woken_to_save = woken_to_save, False
            try:
                if not await self._own():
                    await self._let_go()
                    await self._hold(self._config.lease_retry_seconds)
                    continue
                if not self._prepared:
                    await self._prepare()
                if self._save_due() <= 0:
                    await self.save()
                if skip_read:
                    # The sleep ended only to store the deferred checkpoint: no notification came,
                    # so there is nothing new to read (a read per runner for nothing).
                    progressed, held_back = False, False
                else:
                    progressed, held_back = await self.step()
            except asyncio.CancelledError:
                raise
            except CheckpointMoved as exc:
                # Someone else moved the stored checkpoint; this batch rolled back. Start from it.
                log.warning(
                    "checkpoint moved elsewhere; reloading",
                    extra={"projection": self.name, "error": str(exc)},
                )
                self._prepared = False
                continue
            except Exception as exc:
                await self._failed(exc)
                continue
            # A short batch that was not held back drained the ledger: wait for the next wake-up
            # instead of reading again at once (an empty read costs a transaction per projector).
            if not progressed or (self._drained and not held_back):
                if self._stopping:
                    # stop() may have set the wake-up before step() cleared it: do not sleep on it.
                    break
                interval = self._config.held_back_interval if held_back else self._config.poll_interval
                interval = min(interval, self._config.lease_check_seconds) if self._lease else interval
                save_due = self._save_due()
                woke = await self._sleep(max(0.0, min(interval, save_due)))
                if woke:
                    await self._gather()
                # A held-back batch must be read again whatever woke us.
                woken_to_save = not woke and not held_back and save_due < interval

    async def _gather(self) -> None:
        """After a wake-up, let more commits arrive so that a burst costs one batch."""
        config = self._config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.saga_gather_seconds
        self._hurried.clear()
        if config.gather_seconds > 0 and not self._readers_wait() and not self._stopping:
            await self._sleep(config.gather_seconds, self._hurried)
        sagas = self._sagas
        self._gathering = True
        try:
            while sagas is not None and sagas.active and not self._readers_wait() and not self._stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                # The next commit's notification, the end of the last saga, a hurry or stop().
                self._wake.clear()
                await self._sleep(remaining)
        finally:
            self._gathering = False

    async def _own(self) -> bool:
        """Hold (or take) the lease; False means stand by."""
        lease = self._lease
        if lease is None:
            return True
        now = asyncio.get_running_loop().time()
        if lease.holds(self.name):
            if now - self._lease_checked_at < self._config.lease_check_seconds:
                return True
            self._lease_checked_at = now
            if await lease.confirm(self.name):
                return True
            self._prepared = False
            return False
        if not await lease.acquire(self.name):
            return False
        self._lease_checked_at = now
        # Another owner may have moved the checkpoint (or a rebuild swapped the model): reload it.
        self._prepared = False
        self._start_over = self._volatile
        log.info("projection lease taken", extra={"projection": self.name, "holder": lease.holder})
        return True

    async def step(self, *, shared: bool = True) -> tuple[bool, bool]:
        """Apply one batch. Returns (read anything, stopped at the xmin horizon).

        ``shared`` reads through the process's tail; without it the read starts now, so it sees
        every commit that ended before the call, notified or not.
        """
        # Cleared before reading: a notification during the batch re-arms the wake-up.
        self._wake.clear()
        if shared:
            batch = await self._tail.read(self.checkpoint, self._config.batch_size)
        else:
            batch = await self._tail.read_now(self.checkpoint, self._config.batch_size)
        self._drained = len(batch.events) < self._config.batch_size
        if not batch.events:
            return False, batch.held_back
        new_checkpoint = batch.events[-1].checkpoint
        wanted = [e for e in batch.events if self.projection.wants(e)]
        if wanted:
            await self._store(new_checkpoint, wanted)
        elif self._unsaved_since is None:
            self._unsaved_since = asyncio.get_running_loop().time()
        self.checkpoint = new_checkpoint
        self.consecutive_failures = 0
        if self._on_advance is not None:
            self._on_advance(self.name, new_checkpoint)
        return True, batch.held_back

    async def save(self) -> None:
        """Store the checkpoint that only ignored events moved."""
        if self.checkpoint != self._stored:
            await self._store(self.checkpoint, [])
        self._unsaved_since = None

    async def _store(self, checkpoint: Checkpoint, events: Sequence[RecordedEvent]) -> None:
        """Apply ``events`` and move the stored checkpoint (in one transaction for PostgreSQL)."""
        if self._commits is not None:
            await self._store_with_others(self._commits, checkpoint, events)
        else:
            await self._store_alone(checkpoint, events)
        self._stored = checkpoint
        self._unsaved_since = None

    async def _store_with_others(
        self, commits: BatchCommits, checkpoint: Checkpoint, events: Sequence[RecordedEvent]
    ) -> None:
        apply: Apply | None = None
        if events and self.projection.store == "postgres":
            apply = partial(self.projection.apply, events)
        elif events:
            # Another store: written (idempotently) before the checkpoint moves.
            await self._with_connection(partial(self.projection.apply, events))
        try:
            await commits.commit(self.name, checkpoint, self._stored, apply)
        except GroupFailed:
            # Its group rolled back: alone, on this runner's own connection, with the outcome
            # (and the waits) of this projection only.
            await self._store_alone(checkpoint, events if apply is not None else [])

    async def _store_alone(self, checkpoint: Checkpoint, events: Sequence[RecordedEvent]) -> None:
        async def store(conn: PgConnection) -> None:
            if events and self.projection.store == "postgres":
                async with conn.transaction():
                    await self.projection.apply(events, conn)
                    await checkpoints.advance(conn, self.name, checkpoint, self._stored)
                return
            if events:
                await self.projection.apply(events, conn)
            # One statement, its own transaction: the compare-and-set needs no more.
            await checkpoints.advance(conn, self.name, checkpoint, self._stored)

        await self._with_connection(store)

    async def _with_connection(self, work: Apply) -> None:
        """Run ``work`` on the connection kept between batches (from the pool if none is kept)."""
        held = self._held
        pooled = held if held is not None else await self._engine.connect()
        try:
            await work(await asyncpg_of(pooled))
        except BaseException:
            # A failed or cancelled batch may leave the session dead or anywhere: never reuse it.
            self._held = None
            await discard(pooled)
            raise
        if self._holding and held is None:
            self._held = pooled
        elif held is None:
            await pooled.close()

    async def _let_go(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.close()

    def _save_due(self) -> float:
        """Seconds until the unsaved checkpoint must be stored (infinite when none is)."""
        if self._unsaved_since is None:
            return float("inf")
        return self._unsaved_since + self._config.save_after_seconds - asyncio.get_running_loop().time()

    async def catch_up_once(self) -> tuple[bool, bool]:
        """One step, for callers that drive the projector by hand (tests, rebuilds)."""
        if not self._prepared:
            await self._prepare()
        return await self.step(shared=False)

    async def catch_up(self) -> int:
        """Apply batches until nothing is left below the horizon; returns batches applied."""
        if not self._prepared:
            await self._prepare()
        applied = 0
        while True:
            progressed, held_back = await self.step(shared=False)
            if progressed:
                applied += 1
            elif held_back:
                await asyncio.sleep(self._config.held_back_interval)
            else:
                await self.save()
                return applied

    async def _failed(self, exc: Exception) -> None:
        await self._let_go()
        self.consecutive_failures += 1
        error = f"{type(exc).__name__}: {exc}"
        if self.consecutive_failures == 1 or error != self._last_error:
            log.exception(
                "projection batch failed",
                extra={"projection": self.name, "failures": self.consecutive_failures},
            )
        else:
            # The same failure again (a store down: every retry would print the same traceback).
            log.warning(
                "projection batch failed again",
                extra={"projection": self.name, "failures": self.consecutive_failures, "error": error},
            )
        self._last_error = error
        if not self.owns:
            # The row belongs to the owner; our failure (to reach the lease session) is logged only.
            await self._hold(self._config.lease_retry_seconds)
            return
        try:
            async with self._engine.begin() as conn:
                await checkpoints.record_failure(conn, self.name, error, self._config.failed_after)
        except Exception as unrecorded:
            log.warning(
                "could not record projection failure",
                extra={"projection": self.name, "error": f"{type(unrecorded).__name__}: {unrecorded}"},
                exc_info=self.consecutive_failures == 1,
            )
        delay = min(
            self._config.backoff_initial * 2 ** (self.consecutive_failures - 1), self._config.backoff_max
        )
        # New events must not cut a backoff short; stop() and a pause request (which must not
        # wait out a long backoff for the lease) do.
        await self._hold(delay)

    async def _hold(self, seconds: float) -> None:
        """Stand by or back off: cut short by stop() and control notifications only."""
        if self._stopping:
            return
        self._control.clear()
        await self._sleep(seconds, self._control)

    async def _sleep(self, seconds: float, until: asyncio.Event | None = None) -> bool:
        """Wait for the event or the timeout; True when the event woke us."""
        event = until or self._wake
        if event.is_set():
            return True
        if seconds <= 0:
            return False
        # A timeout scope, not wait_for: every runner sleeps several times per purchase, and
        # wait_for wraps each wait in a task of its own.
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True
