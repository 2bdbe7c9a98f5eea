"""The ``orders`` read model: one PostgreSQL row per order (``order_view``).

Rows are written through the batch's connection, so they commit together with
the checkpoint. Each row remembers the stream version it has folded; the
stream-version guard skips replays and reloads the stream on a jump, and the
upsert only ever moves a row forward, so applying a batch twice changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import quoted_name

from commands.events import order as ev
from commands.store.driver import PgConnection
from commands.store.ledger.reader import Checkpoint, RecordedEvent, load_stream
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection
from projections.tables import order_view
from projections.version_guard import events_to_fold, group_by_stream

log = logging.getLogger(__name__)

NAME = "orders"
TABLE = order_view.name
STREAM_TYPE = "order"
STREAM_PREFIX = "order-"
COLUMNS = tuple(column.name for column in order_view.columns)
_JSON_COLUMNS = frozenset({"lines", "shipping_address", "history", "totals"})

# Statuses as the order aggregate names them (strings: a projection works from events only).
PLACED_STATUS = "PAYMENT_PENDING"
PLACED_PAYMENT_STATUS = "PENDING"
_ORDER_STATUS: dict[type[ev.OrderEvent], str] = {
    ev.OrderConfirmed: "CONFIRMED",
    ev.FulfillmentRequested: "FULFILLMENT_REQUESTED",
    ev.OrderShipped: "SHIPPED",
    ev.OrderDelivered: "DELIVERED",
    ev.OrderCancelled: "CANCELLED",
    ev.OrderRefunded: "REFUNDED",
    ev.OrderNeedsAttention: "NEEDS_ATTENTION",
}
_PAYMENT_STATUS: dict[type[ev.OrderEvent], str] = {
    ev.PaymentAuthorized: "AUTHORIZED",
    ev.PaymentDeclined: "DECLINED",
    ev.PaymentOutcomeUnknown: "UNKNOWN",
    ev.PaymentCaptured: "CAPTURED",
    ev.PaymentVoided: "VOIDED",
    ev.PaymentRefunded: "REFUNDED",
}
_INDEX_SUFFIXES = sorted(str(index.name).removeprefix(f"{TABLE}_") for index in order_view.indexes)


def shaped_like_order_view(table: str) -> Table:
    """``order_view``'s definition under another name, its indexes renamed to match
    (index names are unique per schema, so a copy cannot reuse the live ones)."""
    if table == TABLE:
        return order_view
    copy = order_view.to_metadata(MetaData(), name=table)
    for index in copy.indexes:
        index.name = quoted_name(f"{table}_{str(index.name).removeprefix(f'{TABLE}_')}", None)
    return copy


@dataclass
class OrderRow:
    """One ``order_view`` row; JSON columns hold JSON-ready values (amounts as strings)."""

    order_id: str
    number: str
    customer_id: str | None
    email: str
    cart_id: str
    status: str
    payment_status: str
    payment_amount: Decimal
    currency: str
    provider_reference: str | None
    lines: list[dict[str, Any]]
    subtotal: Decimal
    total: Decimal
    shipping_address: dict[str, Any]
    history: list[dict[str, Any]]
    stream_version: int
    created_at: datetime
    updated_at: datetime
    totals: dict[str, Any] | None = None

    @classmethod
    def from_db(cls, row: Any) -> OrderRow:
        return cls(**{name: row[name] for name in COLUMNS})

    def params(self) -> tuple[Any, ...]:
        """The values in COLUMNS order, JSON columns as JSON text."""
        values = ((name, getattr(self, name)) for name in COLUMNS)
        return tuple(json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in values)


@dataclass(frozen=True)
class StatusChange:
    """An order's status after a batch.

    Reported from inside the batch's transaction, so listeners must hold it until
    the read model's checkpoint passes ``checkpoint`` (the batch committed).
    """

    order_id: str
    status: str
    stream_version: int
    position: int
    checkpoint: Checkpoint = field(compare=False)


StatusListener = Callable[[StatusChange], None]


def fold_row(row: OrderRow | None, recorded: RecordedEvent) -> OrderRow:
    """The row after one more event of its stream (events must come in stream order)."""
    event = recorded.decode()
    if not isinstance(event, ev.OrderEvent):
        raise ValueError(f"{recorded.type} is not an order event")
    if row is None:
        if not isinstance(event, ev.OrderPlaced):
            raise ValueError(f"{recorded.stream_id}: {recorded.type} before OrderPlaced")
        row = _placed(recorded, event)
    else:
        if isinstance(event, ev.OrderPlaced):
            raise ValueError(f"{recorded.stream_id}: OrderPlaced twice")
        row = replace(row, history=list(row.history))
        _apply(row, event)
    row.history.append(
        {"type": recorded.type, "at": recorded.recorded_at.isoformat(), "position": recorded.position}
    )
    row.stream_version = recorded.stream_version
    row.updated_at = recorded.recorded_at
    return row


def _placed(recorded: RecordedEvent, event: ev.OrderPlaced) -> OrderRow:
    address = event.shipping_address
    return OrderRow(
        order_id=recorded.stream_id[len(STREAM_PREFIX) :],
        number=event.number,
        customer_id=event.customer_id,
        email=event.email,
        cart_id=event.cart_id,
        status=PLACED_STATUS,
        payment_status=PLACED_PAYMENT_STATUS,
        payment_amount=event.total,
        currency=event.currency,
        provider_reference=None,
        lines=[
            {
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "line_total": str(line.line_total),
            }
            for line in event.lines
        ],
        subtotal=event.subtotal,
        total=event.total,
        shipping_address={
            "name": address.name,
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "country_code": address.country_code,
            **({} if address.region is None else {"region": address.region}),
        },
        history=[],
        stream_version=0,
        created_at=recorded.recorded_at,
        updated_at=recorded.recorded_at,
        totals=None if event.totals is None else _totals(event.totals),
    )


def _totals(totals: ev.OrderTotalsData) -> dict[str, Any]:
    return {
        "shipping": str(totals.shipping),
        "discounts": str(totals.discounts),
        "tax": str(totals.tax),
        "tax_lines": [
            {"rate": str(t.rate), "base": str(t.base), "amount": str(t.amount)} for t in totals.tax_lines
        ],
        "prices_include_tax": totals.prices_include_tax,
        "shipping_method": totals.shipping_method,
        "discount_code": totals.discount_code,
    }


def _apply(row: OrderRow, event: ev.OrderEvent) -> None:
    status = _ORDER_STATUS.get(type(event))
    if status is not None:
        row.status = status
    payment = _PAYMENT_STATUS.get(type(event))
    if payment is not None:
        row.payment_status = payment
    reference = getattr(event, "provider_reference", None)
    if isinstance(reference, str):
        row.provider_reference = reference
    # Refunds keep the charged amount; the status says the money went back.
    if isinstance(event, ev.PaymentAuthorized | ev.PaymentCaptured):
        row.payment_amount = event.amount


_UPSERT = """
    INSERT INTO {table} ({columns}) VALUES ({values})
    ON CONFLICT (order_id) DO UPDATE SET {updates}
    WHERE {table}.stream_version < EXCLUDED.stream_version
"""


class OrdersProjection:
    store = "postgres"

    def __init__(
        self,
        engine: AsyncEngine,
        table: str = TABLE,
        name: str = NAME,
        on_status_changed: StatusListener | None = None,
    ) -> None:
        self.name = name
        self.table = table
        self._engine = engine
        self._on_status_changed = on_status_changed
        values = ", ".join(
            f"${i}::jsonb" if c in _JSON_COLUMNS else f"${i}" for i, c in enumerate(COLUMNS, 1)
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "order_id")
        self._upsert = _UPSERT.format(table=table, columns=", ".join(COLUMNS), values=values, updates=updates)
        self._select = f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE order_id = ANY($1::text[])"

    async def setup(self) -> None:
        # The live table comes from the migration (a no-op here); a rebuild copy is built
        # from the same definition.
        table = shaped_like_order_view(self.table)
        async with self._engine.begin() as conn:
            await conn.run_sync(table.create, checkfirst=True)

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type == STREAM_TYPE and event.stream_id.startswith(STREAM_PREFIX)

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        streams = group_by_stream(
            e for e in events if e.stream_type == STREAM_TYPE and e.stream_id.startswith(STREAM_PREFIX)
        )
        if not streams:
            return
        order_ids = [stream_id[len(STREAM_PREFIX) :] for stream_id in streams]
        known = {row["order_id"]: OrderRow.from_db(row) for row in await conn.fetch(self._select, order_ids)}

        async def reload(stream_id: str, after: int) -> list[RecordedEvent]:
            return await load_stream(conn, stream_id, after)

        writes: list[OrderRow] = []
        changes: list[StatusChange] = []
        for order_id, stream_events in zip(order_ids, streams.values(), strict=True):
            before = known.get(order_id)
            run = await events_to_fold(0 if before is None else before.stream_version, stream_events, reload)
            if not run:
                continue
            row = before
            for recorded in run:
                row = fold_row(row, recorded)
            assert row is not None
            writes.append(row)
            if before is None or before.status != row.status:
                last = run[-1]
                changes.append(
                    StatusChange(order_id, row.status, row.stream_version, last.position, last.checkpoint)
                )
        if writes:
            await conn.executemany(self._upsert, [row.params() for row in writes])
        if self._on_status_changed is not None:
            for change in changes:
                self._on_status_changed(change)

    def rebuild_copy(self, generation: str) -> Projection:
        return OrdersProjection(self._engine, f"{self.table}_{generation}", f"{self.name}{COPY_SUFFIX}")

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, OrdersProjection)
        old, new = self.table, copy.table
        async with self._engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {old}"))
            await conn.execute(text(f"ALTER TABLE {new} RENAME TO {old}"))
            await conn.execute(text(f"ALTER TABLE {old} RENAME CONSTRAINT {new}_pkey TO {old}_pkey"))
            for suffix in _INDEX_SUFFIXES:
                await conn.execute(text(f"ALTER INDEX {new}_{suffix} RENAME TO {old}_{suffix}"))
