"""Writing the ledger: append with optimistic concurrency, then NOTIFY the readers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.errors import VersionConflict
from commands.events.base import Event, encode_event
from commands.store.ledger.reader import (
    LEDGER_CHANNEL,
    RECORDED_COLUMNS,
    RecordedEvent,
    recorded_event,
    stream_version,
)

_METADATA_ENCODER = msgspec.json.Encoder()


class StreamConflict(VersionConflict):
    """Another transaction appended the same stream version first."""


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
    encoded_metadata = _METADATA_ENCODER.encode(metadata).decode()
    try:
        result = await conn.execute(
            text(
                "INSERT INTO ledger_events "
                "(event_id, stream_type, stream_id, stream_version, type, data, metadata) "
                "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:stypes AS text[]), "
                "CAST(:sids AS text[]), CAST(:versions AS int[]), CAST(:types AS text[]), "
                "CAST(:datas AS jsonb[]), CAST(:metas AS jsonb[])) "
                f"RETURNING {RECORDED_COLUMNS}"
            ),
            {
                "ids": [uuid.uuid4() for _ in events],
                "stypes": [stream_type] * len(events),
                "sids": [stream_id] * len(events),
                "versions": [current + i + 1 for i in range(len(events))],
                "types": [event.event_type() for event in events],
                "datas": [encode_event(event).decode() for event in events],
                "metas": [encoded_metadata] * len(events),
            },
        )
        recorded = sorted((recorded_event(r) for r in result), key=lambda e: e.stream_version)
    except IntegrityError as exc:
        if "ledger_events_stream_version_key" in str(exc.orig):
            raise StreamConflict(f"stream {stream_id} was appended to concurrently") from exc
        raise
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": LEDGER_CHANNEL, "payload": str(recorded[-1].position)},
    )
    return recorded
