"""A reader waiting for a position hurries the projection's runner, wherever it runs.

Runners gather commits for a few milliseconds after a wake-up (``projections.runner``), longer
while a saga of their process is in flight. A reader that waits for a position
(read-your-writes) should not pay for that: its wait tells the projection's owner the position,
and the owner does not gather again until its checkpoint has passed it. The owner is this
process's runner when it holds the lease; otherwise another process owns it, and a control
notification (``hurry:<name>:<tx_id>:<position>``) carries the position there, once per newer
position (an owner asked for a later one passes this one before gathering again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import Checkpoint
from projections.lease import CONTROL_CHANNEL
from projections.runner import ProjectionRunner

log = logging.getLogger(__name__)

HURRY_PREFIX = "hurry:"


class ProjectorHurry:
    def __init__(self, engine: AsyncEngine, runners: Sequence[ProjectionRunner]) -> None:
        self._engine = engine
        # The container's own list: runners added later are seen too.
        self._runners = runners
        self._told: dict[str, Checkpoint] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    def want(self, projection: str, target: tuple[int, int]) -> None:
        """A reader of this process waits for ``projection`` to apply ``target`` (tx id, position)."""
        wanted = Checkpoint(*target)
        local = [r for r in self._runners if r.name == projection and r.running and r.owns]
        for runner in local:
            runner.hurry(wanted)
        if local or self._closed or wanted <= self._told.get(projection, Checkpoint()):
            return
        self._told[projection] = wanted
        task = asyncio.create_task(self._tell(projection, wanted), name="projector-hurry")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def heard(self, payload: str) -> bool:
        """A control notification; True when it was a hurry (handled here)."""
        if not payload.startswith(HURRY_PREFIX):
            return False
        try:
            projection, tx_id, position = payload.removeprefix(HURRY_PREFIX).rsplit(":", 2)
            wanted = Checkpoint(int(tx_id), int(position))
        except ValueError:
            log.warning("unreadable projector hurry", extra={"payload": payload[:200]})
            return True
        for runner in self._runners:
            if runner.name == projection:
                runner.hurry(wanted)
        return True

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def _tell(self, projection: str, wanted: Checkpoint) -> None:
        payload = f"{HURRY_PREFIX}{projection}:{wanted.tx_id}:{wanted.position}"
        try:
            # Outside a transaction: the statement commits, and the notification goes, at once.
            async with self._engine.connect() as conn:
                driver = await asyncpg_of(conn)
                await driver.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, payload)
        except Exception:
            # The reader still gets its answer: the owner applies within its gathering bound.
            log.warning("could not hurry the projector", extra={"projection": projection}, exc_info=True)
