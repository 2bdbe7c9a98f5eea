"""Zero-downtime rebuild of a read model from the ledger.

The live model keeps serving while a copy is built beside it:

1. ``projection.rebuild_copy(generation)`` returns the same projection writing
   into a fresh copy (next index version, new collection, new table), under its
   own checkpoint name;
2. the copy replays the ledger from the start and catches up;
3. the live projector pauses, the copy applies the last events, and
   ``projection.promote(copy)`` swaps it in atomically (alias swap, collection
   rename, table rename) and drops the old one;
4. the live checkpoint takes over the copy's, and the live projector resumes.

Step 3 works wherever the live projector runs: the rebuild pauses it through PostgreSQL
(``LeaseKeeper.hold_paused``: a pause lock, a control notification, then the projection's
lease itself, on the rebuild's own session). The owner, in any process, finishes its batch and
releases the lease; it takes the lease back only after the swap and the take-over, and then
reloads the checkpoint, which is the copy's. A runner that missed the pause cannot undo the
swap either: its next checkpoint advance fails the compare-and-set and its batch rolls back.

One rebuild per read model at a time, across processes: a second one is refused
(RebuildInProgress; across processes the claim is an advisory lock, so the error comes
from the rebuild's task).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.store.ledger.reader import head_position
from projections import checkpoints
from projections.lease import LeaseKeeper, process_label, rebuild_key
from projections.runner import Projection, ProjectionRunner, RunnerConfig

log = logging.getLogger(__name__)
COPY_SUFFIX = "~rebuild"


class RebuildInProgress(Exception):
    pass


class NotRebuildable(Exception):
    pass


@runtime_checkable
class Rebuildable(Protocol):
    name: str
    store: str

    def rebuild_copy(self, generation: str) -> Projection:
        """This projection writing into a new, not yet live copy named after ``generation``.

        The copy's ``name`` must be ``f"{self.name}{COPY_SUFFIX}"``.
        """
        ...

    async def promote(self, copy: Projection) -> None:
        """Atomically make ``copy`` the live read model and drop the old one."""
        ...


@dataclass
class RebuildProgress:
    name: str
    started_at: float
    copy_position: int = 0
    head_position: int = 0
    done: bool = False
    error: str | None = None

    @property
    def fraction(self) -> float:
        if self.head_position <= 0:
            return 1.0 if self.done else 0.0
        return min(1.0, self.copy_position / self.head_position)


class Rebuilder:
    """Runs rebuilds for one process; remembers progress for the status query."""

    def __init__(self, engine: AsyncEngine, config: RunnerConfig | None = None) -> None:
        self._engine = engine
        self._config = config or RunnerConfig(batch_size=1000)
        self._active: dict[str, RebuildProgress] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def progress(self, name: str) -> RebuildProgress | None:
        return self._active.get(name)

    def start(self, runner: ProjectionRunner) -> RebuildProgress:
        """Begin a rebuild in the background; refuse when one is already running."""
        name = runner.name
        if name in self._active and not self._active[name].done:
            raise RebuildInProgress(f"a rebuild of {name} is already running")
        if not isinstance(runner.projection, Rebuildable):
            raise NotRebuildable(f"{name} cannot be rebuilt")
        progress = RebuildProgress(name, time.time())
        self._active[name] = progress
        self.tasks[name] = asyncio.create_task(self._run(runner, progress), name=f"rebuild:{name}")
        return progress

    async def run(self, runner: ProjectionRunner) -> RebuildProgress:
        """Rebuild and wait for it to finish (CLI and tests)."""
        progress = self.start(runner)
        await self.tasks[runner.name]
        if progress.error is not None:
            raise RuntimeError(progress.error)
        return progress

    async def _run(self, runner: ProjectionRunner, progress: RebuildProgress) -> None:
        projection = runner.projection
        assert isinstance(projection, Rebuildable)
        generation = time.strftime("%Y%m%d%H%M%S") + f"{int(time.time() * 1000) % 1000:03d}"
        copy = projection.rebuild_copy(generation)
        copy_runner = ProjectionRunner(copy, self._engine, self._config)
        # An unleased runner (driven by hand in this process) is paused by stopping it.
        was_running = runner.running and not runner.leased
        session = LeaseKeeper(
            self._engine.url.render_as_string(hide_password=False), process_label("rebuild")
        )
        claimed = False
        try:
            if not await session.try_exclusive(rebuild_key(runner.name)):
                raise RebuildInProgress(f"a rebuild of {runner.name} is already running in another process")
            claimed = True
            async with self._engine.begin() as conn:
                await checkpoints.reset(conn, copy.name)
                await _set_state(conn, runner.name, "REBUILDING")
                progress.head_position = await head_position(conn)
            while True:
                progressed, _held_back = await copy_runner.catch_up_once()
                progress.copy_position = copy_runner.checkpoint.position
                if not progressed:
                    break
            # Pause the live projector, wherever it runs, only for the last delta and the swap.
            if was_running:
                await runner.stop()
            await session.hold_paused(runner.name)
            await copy_runner.catch_up()
            await projection.promote(copy)
            async with self._engine.begin() as conn:
                await _take_over(conn, runner.name, copy.name)
            if not runner.leased:
                runner.adopt(copy_runner.checkpoint)
            progress.copy_position = copy_runner.checkpoint.position
            progress.done = True
        except Exception as exc:
            log.exception("rebuild failed", extra={"projection": runner.name})
            progress.error = f"{type(exc).__name__}: {exc}"
            progress.done = True
            if claimed:
                async with self._engine.begin() as conn:
                    await _set_state(conn, runner.name, "RUNNING")
        finally:
            # Releases the lease and the pause, and tells standbys to take the lease now.
            await session.close()
            if was_running and not runner.running:
                runner.start()


async def _set_state(conn: AsyncConnection, name: str, state: str) -> None:
    await conn.execute(
        text("UPDATE projection_checkpoints SET state = :s, updated_at = now() WHERE name = :n"),
        {"s": state, "n": name},
    )


async def _take_over(conn: AsyncConnection, live: str, copy: str) -> None:
    await conn.execute(
        text(
            "UPDATE projection_checkpoints AS live SET tx_id = c.tx_id, position = c.position, "
            "state = 'RUNNING', last_error = NULL, failures = 0, updated_at = now(), "
            "last_applied_at = c.last_applied_at "
            "FROM projection_checkpoints AS c WHERE live.name = :live AND c.name = :copy"
        ),
        {"live": live, "copy": copy},
    )
    await conn.execute(text("DELETE FROM projection_checkpoints WHERE name = :copy"), {"copy": copy})
