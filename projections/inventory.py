"""The ``inventory`` read model: one PostgreSQL row per stock bucket (``inventory_view``).

A SKU's stock may be split over buckets, each with its own ledger stream (``inventory-<sku>``
for bucket 0, ``inventory-<sku>~<b>`` for the others); every inventory event carries its
stream's numbers after the change. So a row is keyed by (sku, bucket), is the last event of
the contiguous run the stream-version guard hands over, and readers add a SKU's rows up
(``queries/inventory.py``). Rows are written through the batch's connection, so they commit
together with the checkpoint; one read and one upsert per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events.inventory import InventoryEvent, sku_and_bucket
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent, load_stream
from projections import table_copies
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.version_guard import events_to_fold, group_by_stream

NAME = "inventory"
TABLE = "inventory_view"
STREAM_TYPE = "inventory"
_COLUMNS = (
    "sku",
    "bucket",
    "product_id",
    "on_hand",
    "reserved",
    "available",
    "stream_version",
    "updated_at",
)
_TYPES = ("text", "smallint", "text", "int", "int", "int", "int", "timestamptz")
_KEY = _COLUMNS[:2]


class InventoryProjection:
    store = "postgres"

    def __init__(self, engine: AsyncEngine, table: str = TABLE, name: str = NAME) -> None:
        self.name = name
        self.table = table
        self._engine = engine
        self._versions_sql = (
            f"SELECT v.sku, v.bucket, v.stream_version FROM {table} AS v "
            "JOIN unnest($1::text[], $2::smallint[]) AS k (sku, bucket) "
            "ON v.sku = k.sku AND v.bucket = k.bucket"
        )
        arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_TYPES, 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[len(_KEY) :])
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates} "
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
        keys = [sku_and_bucket(stream_id) for stream_id in streams]
        result = await conn.fetch(self._versions_sql, [sku for sku, _ in keys], [b for _, b in keys])
        known = {(row["sku"], row["bucket"]): int(row["stream_version"]) for row in result}

        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        rows: list[dict[str, Any]] = []
        for key, stream_events in zip(keys, streams.values(), strict=True):
            run = await events_to_fold(known.get(key, 0), stream_events, reload)
            if run:
                rows.append(_row(key, run[-1]))
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


def _row(key: tuple[str, int], recorded: RecordedEvent) -> dict[str, Any]:
    event = recorded.decode()
    if not isinstance(event, InventoryEvent):
        raise TypeError(f"{recorded.type} on {recorded.stream_id} is not an inventory event")
    sku, bucket = key
    return {
        "sku": sku,
        "bucket": bucket,
        "product_id": event.product_id,
        "on_hand": event.on_hand,
        "reserved": event.reserved,
        "available": event.available,
        "stream_version": recorded.stream_version,
        "updated_at": recorded.recorded_at,
    }
