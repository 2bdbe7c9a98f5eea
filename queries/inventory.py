"""Reads the ``inventory`` read model (PostgreSQL ``inventory_view``). Hints, not promises:
only a reservation at checkout promises stock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROJECTION = "inventory"
TABLE = "inventory_view"


@dataclass(frozen=True)
class InventoryLevelView:
    sku: str
    product_id: str | None
    on_hand: int
    reserved: int
    available: int
    version: int
    updated_at: datetime


class InventoryQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, sku: str) -> InventoryLevelView | None:
        return (await self.by_skus([sku])).get(sku)

    async def by_skus(self, skus: Sequence[str]) -> dict[str, InventoryLevelView]:
        """Levels of the tracked SKUs among ``skus`` (untracked ones are absent): the sum over
        each SKU's stock buckets (one row per bucket). ``version`` is the sum of the buckets'
        stream versions, which only grows as any of them moves."""
        if not skus:
            return {}
        async with self._engine.connect() as conn:
            result = await conn.execute(_LEVELS, {"skus": list(dict.fromkeys(skus))})
            return {
                row.sku: InventoryLevelView(
                    sku=row.sku,
                    product_id=row.product_id,
                    on_hand=row.on_hand,
                    reserved=row.reserved,
                    available=row.available,
                    version=row.version,
                    updated_at=row.updated_at,
                )
                for row in result
            }


# Every bucket row names the same product, so any one will do (min skips a null).
_LEVELS = text(
    "SELECT sku, min(product_id) AS product_id, sum(on_hand) AS on_hand, sum(reserved) AS reserved, "
    "sum(available) AS available, sum(stream_version) AS version, max(updated_at) AS updated_at "
    f"FROM {TABLE} WHERE sku = ANY(:skus) GROUP BY sku"
)
