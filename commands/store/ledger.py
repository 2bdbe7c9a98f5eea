"""The append-only event ledger: append with optimistic concurrency, load a
stream, and the gap-safe global read that projections use."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.errors import VersionConflict
from commands.events.base import Event, decode_event

LEDGER_CHANNEL = "ledger"


class StreamConflict(VersionConflict):
    """Another transaction appended the same stream version first."""


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


_COLUMNS = (
    "position, tx_id::text::bigint AS tx_id, event_id, stream_type, stream_id, stream_version, "
    "type, data, metadata, recorded_at"
)


def _recorded(row: Any) -> RecordedEvent:
    return RecordedEvent(
        position=row.position,
        tx_id=row.tx_id,
        event_id=row.event_id,
        stream_type=row.stream_type,
        stream_id=row.stream_id,
        stream_version=row.stream_version,
        type=row.type,
        data=row.data,
        metadata=row.metadata,
        recorded_at=row.recorded_at,
    )


async def stream_version(conn: AsyncConnection, stream_id: str) -> int:
    result = await conn.execute(
        text("SELECT coalesce(max(stream_version), 0) FROM ledger_events WHERE stream_id = :s"),
        {"s": stream_id},
    )
    return int(result.scalar_one())


async def append(
    conn: AsyncConnection,
    stream_type: str,
    stream_id: str,
    events: Sequence[Event],
    *,
    expected_version: int | None,
    metadata: dict[str, Any],
) -> list[RecordedEvent]:
    """Append ``events`` to a stream inside the caller's transaction.

    ``expected_version`` None means "after whatever is there now"; a concurrent
    writer then surfaces as StreamConflict from the unique constraint, and the
    caller may retry the whole command.
    """
    if not events:
        return []
    current = await stream_version(conn, stream_id)
    if expected_version is not None and expected_version != current:
        raise VersionConflict(
            f"stream {stream_id} is at version {current}, expected {expected_version}",
            code="VERSION_CONFLICT",
        )
    rows = [
        {
            "event_id": uuid.uuid4(),
            "stream_type": stream_type,
            "stream_id": stream_id,
            "stream_version": current + i + 1,
            "type": event.event_type(),
            "data": json.dumps(event.to_data()),
            "metadata": json.dumps(metadata),
        }
        for i, event in enumerate(events)
    ]
    try:
        result = await conn.execute(
            text(
                "INSERT INTO ledger_events "
                "(event_id, stream_type, stream_id, stream_version, type, data, metadata) "
                "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:stypes AS text[]), "
                "CAST(:sids AS text[]), CAST(:versions AS int[]), CAST(:types AS text[]), "
                "CAST(:datas AS jsonb[]), CAST(:metas AS jsonb[])) "
                f"RETURNING {_COLUMNS}"
            ),
            {
                "ids": [r["event_id"] for r in rows],
                "stypes": [r["stream_type"] for r in rows],
                "sids": [r["stream_id"] for r in rows],
                "versions": [r["stream_version"] for r in rows],
                "types": [r["type"] for r in rows],
                "datas": [r["data"] for r in rows],
                "metas": [r["metadata"] for r in rows],
            },
        )
        recorded = sorted((_recorded(r) for r in result), key=lambda e: e.stream_version)
    except IntegrityError as exc:
        if "ledger_events_stream_version_key" in str(exc.orig):
            raise StreamConflict(f"stream {stream_id} was appended to concurrently") from exc
        raise
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": LEDGER_CHANNEL, "payload": str(recorded[-1].position)},
    )
    return recorded


async def load_stream(conn: AsyncConnection, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
    result = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM ledger_events WHERE stream_id = :s AND stream_version > :v "
            "ORDER BY stream_version"
        ),
        {"s": stream_id, "v": after_version},
    )
    return [_recorded(r) for r in result]


@dataclass(frozen=True)
class Batch:
    events: list[RecordedEvent]
    # True when committed-looking rows exist past the batch that are not yet
    # below the xmin horizon: the reader should come back soon, not sleep long.
    held_back: bool


async def read_batch(conn: AsyncConnection, after: Checkpoint, limit: int) -> Batch:
    """Gap-safe global read.

    Rows are returned in (tx_id, position) order and only while their tx_id is
    below the snapshot's xmin: every transaction below that horizon has ended,
    so no event can later appear before the returned ones.
    """
    result = await conn.execute(
        text(
            f"SELECT {_COLUMNS}, tx_id < pg_snapshot_xmin(pg_current_snapshot()) AS settled "
            "FROM ledger_events WHERE (tx_id, position) > (CAST(CAST(:tx AS text) AS xid8), :pos) "
            "ORDER BY tx_id, position LIMIT :limit"
        ),
        {"tx": str(after.tx_id), "pos": after.position, "limit": limit},
    )
    events: list[RecordedEvent] = []
    held_back = False
    for row in result:
        if not row.settled:
            held_back = True
            break
        events.append(_recorded(row))
    return Batch(events, held_back)


async def head_position(conn: AsyncConnection) -> int:
    result = await conn.execute(text("SELECT coalesce(max(position), 0) FROM ledger_events"))
    return int(result.scalar_one())
