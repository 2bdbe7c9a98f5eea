"""Status of every read model: state, freshness, last error.

States are derived at read time from the checkpoint row and the lag:
FAILED and REBUILDING come from the runner; CATCHING_UP when the lag is above
a threshold; STALLED when events wait but the checkpoint has not moved for a
while; RUNNING otherwise.

The owner is the process holding the projection's lease (``projections/lease.py``: a session
advisory lock keyed ``hashtextextended('projection:<name>', 0)``), as it named its session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from queries.freshness import Freshness, FreshnessService


@dataclass(frozen=True)
class StatusThresholds:
    catching_up_events: int = 100
    catching_up_seconds: float = 5.0
    stalled_seconds: float = 30.0


@dataclass(frozen=True)
class ProjectionStatusView:
    name: str
    store: str
    state: str
    freshness: Freshness
    last_error: str | None
    rebuild_progress: float | None = None
    owner: str | None = None


# A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
_OWNER = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock' AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(:key, 0) LIMIT 1"
)


class ProjectionStatusService:
    def __init__(
        self, engine: AsyncEngine, freshness: FreshnessService, thresholds: StatusThresholds | None = None
    ) -> None:
        self._engine = engine
        self._freshness = freshness
        self._thresholds = thresholds or StatusThresholds()

    async def status(
        self, name: str, store: str, rebuild_progress: float | None = None
    ) -> ProjectionStatusView:
        fresh = await self._freshness.freshness(name)
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT state, last_error, updated_at FROM projection_checkpoints WHERE name = :n"),
                    {"n": name},
                )
            ).first()
            owner = (await conn.execute(_OWNER, {"key": f"projection:{name}"})).scalar()
        stored_state = row.state if row is not None else "RUNNING"
        last_error = row.last_error if row is not None else None
        moved_at = row.updated_at if row is not None else None
        return ProjectionStatusView(
            name=name,
            store=store,
            state=self._derive(stored_state, fresh, moved_at, rebuild_progress is not None),
            freshness=fresh,
            last_error=last_error,
            rebuild_progress=rebuild_progress,
            owner=owner,
        )

    def _derive(self, stored: str, fresh: Freshness, moved_at: datetime | None, rebuilding: bool) -> str:
        if stored == "FAILED":
            return "FAILED"
        if rebuilding or stored == "REBUILDING":
            return "REBUILDING"
        if fresh.lag_events == 0:
            return "RUNNING"
        limits = self._thresholds
        idle = (datetime.now(UTC) - moved_at).total_seconds() if moved_at is not None else float("inf")
        if idle > limits.stalled_seconds and fresh.lag_seconds > limits.stalled_seconds:
            return "STALLED"
        if fresh.lag_events > limits.catching_up_events or fresh.lag_seconds > limits.catching_up_seconds:
            return "CATCHING_UP"
        return "RUNNING"
