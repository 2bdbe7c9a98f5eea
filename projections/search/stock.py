"""Stock inside search documents (``variants[].in_stock``, product ``in_stock``), for filtering.

Inventory streams (``inventory-<sku>``) are not the product stream, so each
variant keeps the version of its own inventory stream (``stock_version``) and
only moves forward. A product document built from catalog events takes the
latest stock per SKU from the ledger, so the result does not depend on which
of the two streams the projector reached first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from commands.events.inventory import INVENTORY_EVENT_TYPES
from commands.store.driver import PgConnection, asyncpg_of
from commands.store.ledger.reader import RecordedEvent

__all__ = ["INVENTORY_EVENT_TYPES", "StockLevel", "apply_stock", "latest_stock", "stock_from_events"]


@dataclass(frozen=True)
class StockLevel:
    product_id: str
    available: int
    version: int


def _sku(stream_id: str) -> str:
    return stream_id.removeprefix("inventory-")


def stock_from_events(events: Iterable[RecordedEvent]) -> dict[str, StockLevel]:
    """The newest level per SKU among ``events`` (by inventory stream version)."""
    levels: dict[str, StockLevel] = {}
    for event in events:
        sku = _sku(event.stream_id)
        current = levels.get(sku)
        if current is None or event.stream_version > current.version:
            levels[sku] = StockLevel(
                str(event.data["product_id"]), int(event.data["available"]), event.stream_version
            )
    return levels


async def latest_stock(conn: AsyncConnection | PgConnection, skus: Sequence[str]) -> dict[str, StockLevel]:
    if not skus:
        return {}
    driver = await asyncpg_of(conn)
    result = await driver.fetch(
        "SELECT DISTINCT ON (stream_id) stream_id, stream_version, data FROM ledger_events "
        "WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, stream_version DESC",
        [f"inventory-{sku}" for sku in skus],
    )
    return {
        _sku(r["stream_id"]): StockLevel(
            str(r["data"]["product_id"]), int(r["data"]["available"]), r["stream_version"]
        )
        for r in result
    }


def apply_stock(document: dict[str, Any], levels: Mapping[str, StockLevel]) -> bool:
    """Fold newer stock levels into a product document; True when what search filters on (a
    variant's ``in_stock``, hence maybe the product's) changed, the only case worth a write.

    Exact numbers are not kept here: the API reads them from the inventory read model
    (``gateway.schema.stock``). A document is therefore rewritten when a SKU sells out or comes
    back, not on every sale; a purchase of a SKU in stock costs the engine nothing.
    """
    flipped = False
    for variant in document.get("variants", []):
        level = levels.get(variant["sku"])
        if level is None or level.version <= int(variant.get("stock_version") or 0):
            continue
        in_stock = level.available > 0
        flipped = flipped or in_stock != variant["in_stock"]
        variant["in_stock"] = in_stock
        variant["stock_version"] = level.version
    if flipped:
        document["in_stock"] = any(v["in_stock"] for v in document.get("variants", []))
    return flipped
