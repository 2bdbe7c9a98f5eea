"""Variant availability hints from the inventory read model (batched: one query per request)."""

from __future__ import annotations

import strawberry

from gateway.edge.context import Info
from gateway.schema.common import Freshness
from gateway.schema.loaders import inventory as loaders


@strawberry.type
class StockHint:
    in_stock: bool
    available: int | None
    freshness: Freshness


async def stock_hint(info: Info, sku: str) -> StockHint:
    """A variant's availability; untracked SKUs are always in stock."""
    view = await loaders.levels(info).load(sku)
    freshness = Freshness.of(await loaders.freshness(info))
    if view is None:
        return StockHint(in_stock=True, available=None, freshness=freshness)
    return StockHint(in_stock=view.available > 0, available=view.available, freshness=freshness)
