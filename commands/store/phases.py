"""What a multi-phase command handler (a saga) works with instead of one unit of work.

Each phase is its own transaction (``unit_of_work``). A phase that finishes a
step records the recovery point in the same transaction (``reached``), so a
retry under the same idempotency key resumes after it instead of repeating it;
the last phase may store the outcome in its transaction too (``finish``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store import idempotency
from commands.store.idempotency import Claim, ClaimedKey, Outcome
from commands.store.unit_of_work import MessageMetadata, UnitOfWork


class Phases:
    def __init__(self, engine: AsyncEngine, metadata: MessageMetadata, key: ClaimedKey) -> None:
        self.engine = engine
        self.metadata = metadata
        self._key = key

    @property
    def claim(self) -> Claim:
        """Where an earlier try under this key got to: ``recovery_point`` and its ``progress``."""
        return self._key.claim

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.metadata)

    async def reached(self, uow: UnitOfWork, recovery_point: str, progress: Mapping[str, Any]) -> None:
        """Inside the phase's transaction: the step is done; a retry resumes after it."""
        self._key.claim = await idempotency.record_progress(
            uow.conn, self._key.claim, recovery_point, progress
        )

    async def finish(self, uow: UnitOfWork, outcome: Outcome) -> None:
        """Inside the last phase's transaction: store the outcome every retry will get."""
        await idempotency.store_outcome(uow.conn, self._key, outcome)
