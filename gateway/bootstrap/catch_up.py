"""Readiness of the read models: caught up with the ledger as it was when the projectors started.

A process that has just started may serve reads from read models that are far behind (the
search engine and the MongoDB stand-in start empty and are rebuilt from the ledger): every read
says how stale it is, but a load balancer should not send traffic there yet. ``/readyz`` reports
``read_models`` not ready until every projection has passed the ledger head noted at start;
after that it stays ready (later lag is reported per read, not by taking the process out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.store.ledger.reader import head_position
from queries.freshness import FreshnessService

log = logging.getLogger(__name__)


class NotCaughtUp(Exception):
    """Some read model is still behind the ledger head noted at start (the message says which)."""


class StartupCatchUp:
    def __init__(self, engine: AsyncEngine, freshness: FreshnessService) -> None:
        self._engine = engine
        self._freshness = freshness
        self.floor: int | None = None
        self._reached = False

    async def note_start(self) -> None:
        """Before the projectors start: what they must have applied for the process to be ready."""
        async with self._engine.connect() as conn:
            self.floor = await head_position(conn)
        self._reached = False

    async def check(self, projections: Sequence[str]) -> str:
        """A description when ``projections`` have all caught up; ``NotCaughtUp`` naming those still
        behind otherwise."""
        floor = self.floor
        if floor is None:
            return "no projectors started in this process"
        if not self._reached:
            positions = await asyncio.gather(*(self._freshness.freshness(name) for name in projections))
            behind = [f"{f.projection} at {f.position}" for f in positions if f.position < floor]
            if behind:
                raise NotCaughtUp(
                    f"rebuilding from the ledger: behind position {floor} (the ledger head when the "
                    f"projectors started): {', '.join(behind)}"
                )
            self._reached = True
            log.info("read models caught up with the ledger as it was at start", extra={"position": floor})
        return f"caught up with position {floor}"
