"""The ``inventory`` read model: one PostgreSQL row per tracked SKU (``inventory_view``).

Rows are written through the batch's connection, so they commit together
with the checkpoint. Every inventory event carries the SKU's numbers after
the change, so a row is the last event of the contiguous run the stream-version
guard hands over; one read and one upsert per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events.inventory import InventoryEvent
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent, load_stream
from projections import table_copies
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.version_guard import events_to_fold, group_by_stream

NAME = "inventory"
TABLE = "inventory_view"
STREAM_TYPE = "inventory"
STREAM_PREFIX = "inventory-"
_COLUMNS = ("sku", "product_id", "on_hand", "reserved", "available", "stream_version", "updated_at")
_TYPES = ("text", "text", "int", "int", "int", "int", "timestamptz")


class InventoryProjection:
    store = "postgres"

    def __init__(self, engine: AsyncEngine, table: str = TABLE, name: str = NAME) -> None:
        self.name = name
        self.table = table
        self._engine = engine
        arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_TYPES, 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT (sku) DO UPDATE SET {updates} "
            f"WHERE {table}.stream_version < EXCLUDED.stream_version"
        )

    async def setup(self) -> None:
        await table_copies.create_like(self._engine, self.table, TABLE)

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type == STREAM_TYPE

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        streams = group_by_stream(e for e in events if e.stream_type == STREAM_TYPE)
        if not streams:
            return
        skus = [stream_id[len(STREAM_PREFIX) :] for stream_id in streams]
        result = await conn.fetch(
            f"SELECT sku, stream_version FROM {self.table} WHERE sku = ANY($1::text[])", skus
        )
        known = {row["sku"]: int(row["stream_version"]) for row in result}

        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        rows: list[dict[str, Any]] = []
        for sku, stream_events in zip(skus, streams.values(), strict=True):
            run = await events_to_fold(known.get(sku, 0), stream_events, reload)
            if run:
                rows.append(_row(run[-1]))
        if rows:
            await self._upsert(conn, rows)

    async def _upsert(self, conn: PgConnection, rows: list[dict[str, Any]]) -> None:
        await conn.execute(self._upsert_sql, *[[row[c] for row in rows] for c in _COLUMNS])

    def rebuild_copy(self, generation: str) -> Projection:
        name = table_copies.copy_name(TABLE, generation)
        return InventoryProjection(self._engine, name, f"{self.name}{COPY_SUFFIX}")

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, InventoryProjection) and copy.table != self.table
        await table_copies.swap_in(self._engine, self.table, copy.table)


def _row(recorded: RecordedEvent) -> dict[str, Any]:
    event = recorded.decode()
    if not isinstance(event, InventoryEvent):
        raise TypeError(f"{recorded.type} on {recorded.stream_id} is not an inventory event")
    return {
        "sku": event.sku,
        "product_id": event.product_id,
        "on_hand": event.on_hand,
        "reserved": event.reserved,
        "available": event.available,
        "stream_version": recorded.stream_version,
        "updated_at": recorded.recorded_at,
    }
