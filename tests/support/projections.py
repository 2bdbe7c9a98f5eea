"""Read models used to test the projection framework itself.

``AppliedLog`` is a PostgreSQL projection (rows and checkpoint in one
transaction). ``RedisDocs`` is an at-least-once projection into another
store, kept idempotent by the per-document stream-version guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as redis_async
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.events.base import Event
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent, load_stream
from projections.version_guard import events_to_fold, group_by_stream


class AmountRecorded(Event, frozen=True):
    stream_type = "test"
    amount: int


class AppliedLog:
    store = "postgres"

    def __init__(self, engine: AsyncEngine, name: str = "applied_log") -> None:
        self.name = name
        self._engine = engine

    async def setup(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS test_applied (position bigint PRIMARY KEY, "
                    "stream_id text NOT NULL, stream_version int NOT NULL)"
                )
            )

    def wants(self, event: RecordedEvent) -> bool:
        return True

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        await conn.executemany(
            "INSERT INTO test_applied (position, stream_id, stream_version) VALUES ($1, $2, $3)",
            [(e.position, e.stream_id, e.stream_version) for e in events],
        )


class RedisDocs:
    """One Redis hash + list per stream: version and the amounts folded in order."""

    store = "redis"

    def __init__(self, redis: redis_async.Redis, prefix: str, name: str = "redis_docs") -> None:
        self.name = name
        self._redis = redis
        self._prefix = prefix
        self.pause_after_streams: int | None = None
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    def version_key(self, stream_id: str) -> str:
        return f"{self._prefix}ver:{stream_id}"

    def seq_key(self, stream_id: str) -> str:
        return f"{self._prefix}seq:{stream_id}"

    async def setup(self) -> None:
        return None

    def wants(self, event: RecordedEvent) -> bool:
        return True

    async def apply(self, events: Sequence[RecordedEvent], conn: AsyncConnection) -> None:
        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        for done, (stream_id, stream_events) in enumerate(group_by_stream(events).items()):
            if self.pause_after_streams is not None and done == self.pause_after_streams:
                self.paused.set()
                await self.release.wait()
            known = int(await self._redis.get(self.version_key(stream_id)) or 0)
            run = await events_to_fold(known, stream_events, reload)
            if not run:
                continue
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(self.seq_key(stream_id), *[e.data["amount"] for e in run])
                pipe.set(self.version_key(stream_id), run[-1].stream_version)
                await pipe.execute()

    async def folded(self, stream_id: str) -> list[int]:
        return [int(v) for v in await self._redis.lrange(self.seq_key(stream_id), 0, -1)]
