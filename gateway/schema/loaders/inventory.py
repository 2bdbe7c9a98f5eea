"""Per-request DataLoaders for the inventory read model: one query for many SKUs."""

from __future__ import annotations

from aiodataloader import DataLoader

from gateway.edge.context import Info
from gateway.schema.loaders.base import keyed_loader, request_freshness
from queries.freshness import Freshness
from queries.inventory import PROJECTION, InventoryQueries


def queries(info: Info) -> InventoryQueries:
    return info.context.services.inventory


def levels(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(info, "inventory:levels", queries(info).by_skus)


async def freshness(info: Info) -> Freshness:
    """The inventory model's freshness, computed once per request however many fields ask."""
    return await request_freshness(info, PROJECTION)
