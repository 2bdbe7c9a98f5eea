"""Writing the ledger: append with optimistic concurrency (readers are woken after the commit:
``commands.store.ledger.announcer``)."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.errors import VersionConflict
from commands.events.base import Event, encode_event
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import (
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
    caller may retry the whole command. One statement reads the stream's version,
    checks the expected one and inserts.
    """
    if not events:
        return []
    driver = await asyncpg_of(conn)
    async with conflicts_raised(f"stream {stream_id} was appended to concurrently"):
        rows = await driver.fetch(
            _APPEND,
            stream_id,
            stream_type,
            expected_version,
            [uuid.uuid4() for _ in events],
            *_encoded(events, metadata),
        )
    recorded = sorted((recorded_event(r) for r in rows), key=lambda e: e.stream_version)
    if not recorded:
        current = await stream_version(conn, stream_id)
        raise VersionConflict(
            f"stream {stream_id} is at version {current}, expected {expected_version}",
            code="VERSION_CONFLICT",
        )
    return recorded


async def append_to_streams(
    conn: AsyncConnection,
    appends: Sequence[tuple[str, str, Event]],
    *,
    metadata: dict[str, Any],
) -> list[RecordedEvent]:
    """Append one event to each of many streams in one statement, inside the caller's transaction
    (bulk loads). ``appends``: (stream_type, stream_id, event) with distinct stream ids, each
    appended after whatever its stream holds now; positions follow the order of ``appends``,
    and so do the recorded events returned.

    A concurrent writer to one of the streams surfaces as StreamConflict, as in ``append``.
    """
    if not appends:
        return []
    stream_ids = [stream_id for _, stream_id, _ in appends]
    if len(set(stream_ids)) != len(stream_ids):
        raise ValueError("append_to_streams takes one event per stream")
    driver = await asyncpg_of(conn)
    event_ids = [uuid.uuid4() for _ in appends]
    async with conflicts_raised("a stream of the batch was appended to concurrently"):
        rows = await driver.fetch(
            _APPEND_TO_STREAMS,
            [stream_type for stream_type, _, _ in appends],
            stream_ids,
            event_ids,
            *_encoded([event for _, _, event in appends], metadata),
        )
    recorded = {event.event_id: event for event in map(recorded_event, rows)}
    return [recorded[event_id] for event_id in event_ids]


class ReadAlong(NamedTuple):
    """A read of at most one row made in an append's own statement (one round trip, in the
    append's snapshot and under the locks its caller holds), and what that row must show:
    ``check`` raises when it does not, and the caller's transaction is then rolled back with the
    events. Its columns must not be named as RECORDED_COLUMNS are."""

    select: Callable[[int], str]  # the SELECT, its parameters numbered from the one given
    args: tuple[Any, ...]
    # Given the statement's first row: the read's columns by name (NULL when it found no row).
    check: Callable[[Any], None]


async def append_at_versions(
    conn: AsyncConnection,
    appends: Sequence[tuple[str, str, int, Event]],
    *,
    metadata: dict[str, Any],
    along: ReadAlong | None = None,
) -> list[RecordedEvent]:
    """Append each (stream_type, stream_id, version, event) at the version its caller counted on a
    row it holds locked (``inventory_items.stream_version``), in one statement and without
    reading the ledger. A version already taken means the count fell behind: StreamConflict.
    ``along``: a read made in the same statement, checked before this returns."""
    if not appends:
        if along is not None:
            raise ValueError("a read along an append needs an append")
        return []
    driver = await asyncpg_of(conn)
    appending = appending_at_versions(appends, metadata=metadata, first_parameter=1)
    if along is None:
        statement, args = f"WITH {appending.ctes} SELECT * FROM {APPENDED}", appending.args
    else:
        statement = (
            f"WITH {appending.ctes}, along AS ({along.select(len(appending.args) + 1)}) "
            f"SELECT {APPENDED}.*, along.* FROM {APPENDED} LEFT JOIN along ON true"
        )
        args = (*appending.args, *along.args)
    async with conflicts_raised("a stream's counted version was taken already"):
        rows = await driver.fetch(statement, *args)
    if along is not None:
        if len(rows) != len(appends):
            raise ValueError("a read along an append must find one row at most")
        along.check(rows[0])
    return appending.recorded(rows)


class Appending(NamedTuple):
    """``append_at_versions`` as CTEs (``ctes``, with its ``args``) of a caller's own statement:
    the events are written with the caller's other writes in one round trip. The CTE named
    ``APPENDED`` returns the recorded events' RECORDED_COLUMNS, one row per event."""

    ctes: str
    args: tuple[Any, ...]
    event_ids: list[uuid.UUID]

    def recorded(self, rows: Sequence[Any]) -> list[RecordedEvent]:
        """The recorded events, in the order they were given, from rows that start with
        RECORDED_COLUMNS (those of ``APPENDED``)."""
        recorded = {event.event_id: event for event in map(recorded_event, rows)}
        return [recorded[event_id] for event_id in self.event_ids]


APPENDED = "appended"


def appending_at_versions(
    appends: Sequence[tuple[str, str, int, Event]], *, metadata: dict[str, Any], first_parameter: int
) -> Appending:
    """The CTEs of ``append_at_versions``, its parameters numbered from ``first_parameter``.
    A version already taken raises a unique violation (``conflicts_raised`` makes it StreamConflict)."""
    event_ids = [uuid.uuid4() for _ in appends]
    args = (
        [stream_type for stream_type, _, _, _ in appends],
        [stream_id for _, stream_id, _, _ in appends],
        [version for _, _, version, _ in appends],
        event_ids,
        *_encoded([event for _, _, _, event in appends], metadata),
    )
    return Appending(_appending_ctes(first_parameter), args, event_ids)


@functools.cache
def _appending_ctes(first_parameter: int) -> str:
    """The text of ``appending_at_versions``' CTEs (one per parameter offset: built once)."""
    p = [f"${first_parameter + i}" for i in range(7)]
    return (
        f"{APPENDED} AS ({INSERT_EVENTS} "
        f"SELECT e.id, e.stream_type, e.stream_id, e.version, e.type, e.data::jsonb, {p[6]}::text::jsonb "
        f"FROM unnest({p[0]}::text[], {p[1]}::text[], {p[2]}::bigint[], {p[3]}::uuid[], {p[4]}::text[], "
        f"{p[5]}::text[]) WITH ORDINALITY AS e(stream_type, stream_id, version, id, type, data, n) "
        f"ORDER BY e.n RETURNING {RECORDED_COLUMNS})"
    )


def encoded_metadata(metadata: dict[str, Any]) -> str:
    """Metadata as the append statements take it (JSON text, cast to jsonb in SQL)."""
    return _METADATA_ENCODER.encode(metadata).decode()


def _encoded(events: Sequence[Event], metadata: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """The statements' event columns: types, data and the shared metadata, as JSON text."""
    return (
        [event.event_type() for event in events],
        [encode_event(event).decode() for event in events],
        encoded_metadata(metadata),
    )


@contextlib.asynccontextmanager
async def conflicts_raised(message: str) -> AsyncIterator[None]:
    """A stream version taken by a concurrent transaction becomes StreamConflict."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "ledger_events_stream_version_key":
            raise StreamConflict(message) from exc
        raise


INSERT_EVENTS = (
    "INSERT INTO ledger_events (event_id, stream_type, stream_id, stream_version, type, data, metadata)"
)
# The jsonb values travel as text: the connection's jsonb codec would encode them again.
_APPEND = (
    "WITH current AS (SELECT coalesce(max(stream_version), 0) AS version "
    "FROM ledger_events WHERE stream_id = $1) "
    f"{INSERT_EVENTS} "
    "SELECT e.id, $2, $1, current.version + e.n, e.type, e.data::jsonb, $7::text::jsonb "
    "FROM current, unnest($4::uuid[], $5::text[], $6::text[]) WITH ORDINALITY AS e(id, type, data, n) "
    "WHERE $3::int IS NULL OR current.version = $3::int "
    f"RETURNING {RECORDED_COLUMNS}"
)
# ORDER BY e.n: rows are inserted, and so numbered by the identity column, in the caller's order.
_APPEND_TO_STREAMS = (
    f"{INSERT_EVENTS} "
    "SELECT e.id, e.stream_type, e.stream_id, current.version + 1, e.type, e.data::jsonb, $6::text::jsonb "
    "FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[]) WITH ORDINALITY "
    "AS e(stream_type, stream_id, id, type, data, n) "
    "CROSS JOIN LATERAL (SELECT coalesce(max(l.stream_version), 0) AS version "
    "FROM ledger_events l WHERE l.stream_id = e.stream_id) AS current "
    "ORDER BY e.n "
    f"RETURNING {RECORDED_COLUMNS}"
)
