"""Reading the ledger: recorded events, stream loads, and the gap-safe global read
that projections use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.events.base import Event, decode_event
from commands.store.driver import PgConnection, asyncpg_of

# The writer notifies this channel after every append; readers LISTEN on it.
LEDGER_CHANNEL = "ledger"


@dataclass(frozen=True, order=True)
class Checkpoint:
    """A point in the gap-safe (tx_id, position) order. (0, 0) is the start."""

    tx_id: int = 0
    position: int = 0


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    tx_id: int
    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.tx_id, self.position)

    def decode(self) -> Event:
        return decode_event(self.type, self.data)


RECORDED_COLUMNS = (
    "position, tx_id::text::bigint AS tx_id, event_id, stream_type, stream_id, stream_version, "
    "type, data, metadata, recorded_at"
)


def recorded_event(row: Any) -> RecordedEvent:
    """The RecordedEvent of an asyncpg record selected with RECORDED_COLUMNS (in that order)."""
    return RecordedEvent(*row[:10])


async def stream_version(conn: AsyncConnection | PgConnection, stream_id: str) -> int:
    driver = await asyncpg_of(conn)
    return int(await driver.fetchval(_STREAM_VERSION, stream_id))


async def load_stream(
    conn: AsyncConnection | PgConnection, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    driver = await asyncpg_of(conn)
    return [recorded_event(r) for r in await driver.fetch(_LOAD_STREAM, stream_id, after_version)]


_STREAM_VERSION = "SELECT coalesce(max(stream_version), 0) FROM ledger_events WHERE stream_id = $1"
_LOAD_STREAM = (
    f"SELECT {RECORDED_COLUMNS} FROM ledger_events WHERE stream_id = $1 AND stream_version > $2 "
    "ORDER BY stream_version"
)
_READ_BATCH = (
    f"SELECT {RECORDED_COLUMNS}, tx_id < pg_snapshot_xmin(pg_current_snapshot()) AS settled "
    "FROM ledger_events WHERE (tx_id, position) > (CAST($1::text AS xid8), $2) "
    "ORDER BY tx_id, position LIMIT $3"
)


@dataclass(frozen=True)
class Batch:
    events: list[RecordedEvent]
    # True when committed-looking rows exist past the batch that are not yet
    # below the xmin horizon: the reader should come back soon, not sleep long.
    held_back: bool


async def read_batch(conn: AsyncConnection | PgConnection, after: Checkpoint, limit: int) -> Batch:
    """Gap-safe global read.

    Rows are returned in (tx_id, position) order and only while their tx_id is
    below the snapshot's xmin: every transaction below that horizon has ended,
    so no event can later appear before the returned ones.
    """
    driver = await asyncpg_of(conn)
    rows = await driver.fetch(_READ_BATCH, str(after.tx_id), after.position, limit)
    events: list[RecordedEvent] = []
    held_back = False
    for row in rows:
        if not row["settled"]:
            held_back = True
            break
        events.append(recorded_event(row))
    return Batch(events, held_back)


async def head_position(conn: AsyncConnection) -> int:
    result = await conn.execute(text("SELECT coalesce(max(position), 0) FROM ledger_events"))
    return int(result.scalar_one())
