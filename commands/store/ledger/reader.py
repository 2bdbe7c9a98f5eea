"""Reading the ledger: recorded events, stream loads, and the gap-safe global read
that projections use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
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
# How many columns RECORDED_COLUMNS are (one per field of RecordedEvent).
RECORDED_WIDTH = len(fields(RecordedEvent))


def recorded_event(row: Any) -> RecordedEvent:
    """The RecordedEvent of an asyncpg record selected with RECORDED_COLUMNS (in that order)."""
    return RecordedEvent(*row[:RECORDED_WIDTH])


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
# The settled rows past the checkpoint, and at most one committed row above the horizon (the
# sign to come back soon). Rows above the horizon are never sent in bulk: while checkouts wait
# on a hot row their open transactions hold the horizon back, and the read used to carry every
# event committed since (hundreds, many times a second) only to drop them. The probe is bounded
# by the horizon alone (a btree scan starts at the first of two row comparisons): no checkpoint
# lies past the horizon, since checkpoints advance over settled rows only. ORDER BY names the
# table's columns: a bare ``tx_id`` is the output column (``tx_id::text::bigint``), which no index
# has, and the read then sorted every row past the checkpoint (a scan of the ledger per read).
_READ_BATCH = (
    "WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) "
    f"(SELECT {RECORDED_COLUMNS}, true AS settled FROM ledger_events "
    "WHERE (tx_id, position) > (CAST($1::text AS xid8), $2) AND tx_id < (SELECT xmin FROM horizon) "
    "ORDER BY ledger_events.tx_id, ledger_events.position LIMIT $3) "
    "UNION ALL "
    f"(SELECT {RECORDED_COLUMNS}, false FROM ledger_events "
    "WHERE (tx_id, position) >= ((SELECT xmin FROM horizon), 0) "
    "ORDER BY ledger_events.tx_id, ledger_events.position LIMIT 1)"
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
    in_order = True
    last = (after.tx_id, after.position)
    for row in rows:
        if not row["settled"]:
            held_back = True
            continue
        event = recorded_event(row)
        here = (event.tx_id, event.position)
        in_order = in_order and here > last
        last = here
        events.append(event)
    if not in_order:  # the statement orders each part, not their union (see _READ_BATCH)
        events.sort(key=lambda event: (event.tx_id, event.position))
    return Batch(events, held_back)


async def head_position(conn: AsyncConnection) -> int:
    result = await conn.execute(text("SELECT coalesce(max(position), 0) FROM ledger_events"))
    return int(result.scalar_one())
