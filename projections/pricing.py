"""The ``pricing`` read model: what quotes a cart's shipping, tax and discount (``pricing_view``).

Every money configuration event carries the item's full state, so a row is the
newest event for its (kind, key); product events give each SKU's tax category.
Rows are written through the batch's connection (they commit with the
checkpoint); an older event never overwrites a newer row (``position`` guard).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.events import money as ev
from commands.events.base import Event
from commands.events.catalog import ProductCreated, ProductUpdated
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RecordedEvent
from projections import table_copies
from projections.rebuild import COPY_SUFFIX
from projections.runner import Projection

NAME = "pricing"
TABLE = "pricing_view"
SHIPPING_METHOD, TAX_RATE, TAX_POLICY, DISCOUNT_CODE, VARIANT_TAX = (
    "shipping_method",
    "tax_rate",
    "tax_policy",
    "discount_code",
    "variant_tax",
)


class PricingProjection:
    store = "postgres"

    def __init__(self, engine: AsyncEngine, table: str = TABLE, name: str = NAME) -> None:
        self.name = name
        self.table = table
        self._engine = engine

    async def setup(self) -> None:
        await table_copies.create_like(self._engine, self.table, TABLE)

    def wants(self, event: RecordedEvent) -> bool:
        return event.stream_type in _STREAM_TYPES

    async def apply(self, events: Sequence[RecordedEvent], conn: PgConnection) -> None:
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for recorded in events:
            for kind, key, data in rows_of(recorded.decode()):
                known = newest.get((kind, key))
                if known is None or known["position"] < recorded.position:
                    newest[(kind, key)] = _row(kind, key, data, recorded.position, recorded.recorded_at)
        if not newest:
            return
        rows = list(newest.values())
        await conn.execute(
            f"INSERT INTO {self.table} (kind, key, data, position, updated_at) "
            "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::jsonb[], $4::bigint[], "
            "$5::timestamptz[]) "
            "ON CONFLICT (kind, key) DO UPDATE SET data = EXCLUDED.data, position = EXCLUDED.position, "
            f"updated_at = EXCLUDED.updated_at WHERE {self.table}.position < EXCLUDED.position",
            *[[row[c] for row in rows] for c in ("kind", "key", "data", "position", "updated_at")],
        )

    def rebuild_copy(self, generation: str) -> Projection:
        name = table_copies.copy_name(TABLE, generation)
        return PricingProjection(self._engine, name, f"{self.name}{COPY_SUFFIX}")

    async def promote(self, copy: Projection) -> None:
        assert isinstance(copy, PricingProjection) and copy.table != self.table
        await table_copies.swap_in(self._engine, self.table, copy.table)


_STREAM_TYPES = frozenset(
    {
        ev.ShippingMethodDefined.stream_type,
        ev.TaxRateSet.stream_type,
        ev.TaxPolicySet.stream_type,
        ev.DiscountCodeDefined.stream_type,
        "product",
    }
)


def rows_of(event: Event) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The (kind, key, data) rows an event sets; amounts as strings."""
    match event:
        case ev.ShippingMethodDefined():
            yield SHIPPING_METHOD, event.code, event.to_data()
        case ev.TaxRateSet():
            key = ev.tax_rate_stream(event.country_code, event.region, event.category)
            yield TAX_RATE, key, event.to_data()
        case ev.TaxPolicySet():
            yield TAX_POLICY, event.currency, event.to_data()
        case ev.DiscountCodeDefined():
            yield DISCOUNT_CODE, event.code, event.to_data()
        case ProductCreated() | ProductUpdated():
            for variant in event.product.variants:
                yield VARIANT_TAX, variant.sku, {"category": variant.tax_category}


def _row(kind: str, key: str, data: dict[str, Any], position: int, at: datetime) -> dict[str, Any]:
    return {"kind": kind, "key": key, "data": json.dumps(data), "position": position, "updated_at": at}
