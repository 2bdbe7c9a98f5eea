"""The ``carts`` read model: one MongoDB document per cart.

Writes are at-least-once; the stream-version guard keeps them idempotent and
in stream order. One ``find`` and one ``bulk_write`` per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from commands.events.base import Event
from commands.events.cart import (
    CartCheckedOut,
    CartCreated,
    CartCustomerAttached,
    CartDiscountCodeApplied,
    CartDiscountCodeRemoved,
    CartLineQuantitiesChanged,
    CartLinesAdded,
    CartLinesMergedIn,
    CartLineSnapshot,
    CartLinesRemoved,
    CartMerged,
    CartShippingChosen,
)
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent, load_stream
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.version_guard import events_to_fold, group_by_stream

NAME = "carts"
COLLECTION = "carts"
STREAM_TYPE = "cart"
STREAM_PREFIX = "cart-"
Document = dict[str, Any]


class CartsProjection:
    store = "mongodb"

    def __init__(self, db: AsyncDatabase[Document], collection: str = COLLECTION, name: str = NAME) -> None:
        self.name = name
        self.collection_name = collection
        self._db = db
        self._ready = False

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._db[self.collection_name]

    async def setup(self) -> None:
        # An unreachable store raises: the runner retries setup with backoff and reports it.
        await self._ensure_indexes()

    async def _ensure_indexes(self) -> None:
        if self._ready:
            return
        await self.collection.create_indexes(
            [
                IndexModel(
                    [("customer_id", ASCENDING), ("status", ASCENDING), ("updated_at", DESCENDING)],
                    name="customer_status_updated",
                )
            ]
        )
        self._ready = True

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type == STREAM_TYPE

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        await self._ensure_indexes()
        streams = group_by_stream(e for e in events if e.stream_type == STREAM_TYPE)
        if not streams:
            return
        cart_ids = [stream_id[len(STREAM_PREFIX) :] for stream_id in streams]
        known = {doc["_id"]: doc async for doc in self.collection.find({"_id": {"$in": cart_ids}})}

        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        writes: list[ReplaceOne[Document]] = []
        for cart_id, (_stream, stream_events) in zip(cart_ids, streams.items(), strict=True):
            doc = known.get(cart_id)
            run = await events_to_fold(0 if doc is None else int(doc["version"]), stream_events, reload)
            if not run:
                continue
            for recorded in run:
                doc = fold_document(doc, recorded)
            assert doc is not None
            writes.append(ReplaceOne({"_id": cart_id}, doc, upsert=True))
        if writes:
            await self.collection.bulk_write(writes, ordered=False)

    def rebuild_copy(self, generation: str) -> Projection:
        return CartsProjection(self._db, f"{COLLECTION}_{generation}", f"{self.name}{COPY_SUFFIX}")

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, CartsProjection)
        await copy.collection.rename(self.collection_name, dropTarget=True)


def fold_document(doc: Document | None, recorded: RecordedEvent) -> Document:
    """The cart document after one more event of its stream."""
    event = recorded.decode()
    if doc is None:
        doc = {
            "_id": recorded.stream_id[len(STREAM_PREFIX) :],
            "customer_id": None,
            "status": "ACTIVE",
            "currency_code": "",
            "lines": [],
            "merged_into": None,
            "version": 0,
            "created_at": recorded.recorded_at,
        }
    doc = {**doc, "lines": list(doc["lines"])}
    _apply_event(doc, event)
    doc["version"] = recorded.stream_version
    doc["updated_at"] = recorded.recorded_at
    return doc


def _apply_event(doc: Document, event: Event) -> None:
    match event:
        case CartCreated():
            doc.update(customer_id=event.customer_id, currency_code=event.currency_code)
            _set_lines(doc, event.lines)
        case CartLinesAdded() | CartLinesMergedIn():
            _set_lines(doc, event.lines)
        case CartLineQuantitiesChanged():
            _set_lines(doc, event.lines)
            _remove_lines(doc, event.removed_line_ids)
        case CartLinesRemoved():
            _remove_lines(doc, event.line_ids)
        case CartCustomerAttached():
            doc["customer_id"] = event.customer_id
        case CartMerged():
            doc.update(status="MERGED", merged_into=event.into_cart_id, customer_id=event.customer_id)
        case CartCheckedOut():
            doc["status"] = "CHECKED_OUT"
        case CartShippingChosen():
            doc["shipping"] = {
                "country_code": event.country_code,
                "region": event.region,
                "method_code": event.method_code,
            }
        case CartDiscountCodeApplied():
            doc["discount_code"] = event.code
        case CartDiscountCodeRemoved():
            doc["discount_code"] = None


def _set_lines(doc: Document, snapshots: Sequence[CartLineSnapshot]) -> None:
    lines: list[Document] = doc["lines"]
    for snap in snapshots:
        line = {
            "id": snap.line_id,
            "sku": snap.sku,
            "quantity": snap.quantity,
            "unit_price": _money(snap.unit_price),
        }
        index = next((i for i, existing in enumerate(lines) if existing["id"] == snap.line_id), None)
        if index is None:
            lines.append(line)
        else:
            lines[index] = line


def _remove_lines(doc: Document, line_ids: Sequence[str]) -> None:
    gone = set(line_ids)
    doc["lines"] = [line for line in doc["lines"] if line["id"] not in gone]


def _money(amount: Decimal) -> str:
    # Decimal strings keep exact amounts; MongoDB has no portable decimal in the stand-in.
    return str(amount)
