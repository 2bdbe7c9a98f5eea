"""A reader waiting for a position hurries the projection's runner, wherever it runs.

Runners gather commits for a few milliseconds after a wake-up (``projections.runner``), longer
while a saga of their process is in flight. A reader that waits for a position
(read-your-writes) should not pay for that: its wait hurries the owner of the projection.
The owner is this process's runner when it holds the lease; otherwise another process owns it,
and a control notification carries the request there, at most once per projection per
``NOTIFY_INTERVAL`` (a gathering lasts no longer than that, so more would tell it nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import asyncpg_of
from projections.lease import CONTROL_CHANNEL
from projections.runner import ProjectionRunner

log = logging.getLogger(__name__)

HURRY_PREFIX = "hurry:"
NOTIFY_INTERVAL = 0.025


class ProjectorHurry:
    def __init__(self, engine: AsyncEngine, runners: Sequence[ProjectionRunner]) -> None:
        self._engine = engine
        # The container's own list: runners added later are seen too.
        self._runners = runners
        self._told: dict[str, float] = {}
        self._sending: set[asyncio.Task[None]] = set()

    def want(self, projection: str) -> None:
        """A reader of this process waits for ``projection`` to apply a position."""
        local = [r for r in self._runners if r.name == projection and r.running and r.owns]
        for runner in local:
            runner.hurry()
        if local:
            return
        now = asyncio.get_running_loop().time()
        if now - self._told.get(projection, float("-inf")) < NOTIFY_INTERVAL:
            return
        self._told[projection] = now
        task = asyncio.create_task(self._tell(projection), name="projector-hurry")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def heard(self, payload: str) -> bool:
        """A control notification; True when it was a hurry (handled here)."""
        if not payload.startswith(HURRY_PREFIX):
            return False
        projection = payload.removeprefix(HURRY_PREFIX)
        for runner in self._runners:
            if runner.name == projection:
                runner.hurry()
        return True

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _tell(self, projection: str) -> None:
        try:
            # A notification is delivered at COMMIT.
            async with self._engine.begin() as conn:
                driver = await asyncpg_of(conn)
                await driver.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, HURRY_PREFIX + projection)
        except Exception:
            # The reader still gets its answer: the owner applies within its gathering bound.
            log.warning("could not hurry the projector", extra={"projection": projection}, exc_info=True)
