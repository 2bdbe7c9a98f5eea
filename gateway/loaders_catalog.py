"""Per-request DataLoaders for the catalog: one search-engine call per kind of lookup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiodataloader import DataLoader

from gateway.context import Info
from queries.freshness import Freshness
from queries.products import ProductService, ProductView

SEARCH_PROJECTION = "search"


def products(info: Info) -> ProductService:
    return info.context.container.get(ProductService)


def by_id(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = products(info)

    async def load(ids: Sequence[str]) -> list[ProductView | None]:
        found = await service.by_ids(ids)
        return [found.get(i) for i in ids]

    return info.context.loader("catalog:by-id", lambda: DataLoader(load))


def by_handle(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = products(info)

    async def load(handles: Sequence[str]) -> list[ProductView | None]:
        found = await service.by_handles(handles)
        prime(info, found.values())
        return [found.get(h) for h in handles]

    return info.context.loader("catalog:by-handle", lambda: DataLoader(load))


def by_sku(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = products(info)

    async def load(skus: Sequence[str]) -> list[ProductView | None]:
        found = await service.by_skus(skus)
        prime(info, found.values())
        return [found.get(s) for s in skus]

    return info.context.loader("catalog:by-sku", lambda: DataLoader(load))


def prime(info: Info, views: Any) -> None:
    """Remember products fetched some other way, so ``node(id)`` on them costs nothing."""
    loader = by_id(info)
    for view in views:
        loader.prime(view.id, view)


async def freshness(info: Info, projection: str = SEARCH_PROJECTION) -> Freshness:
    """The read model's freshness, computed once per request however many fields ask."""
    service = info.context.container.freshness

    async def load(names: Sequence[str]) -> list[Freshness]:
        return [await service.freshness(name) for name in names]

    loader: DataLoader = info.context.loader("catalog:freshness", lambda: DataLoader(load))  # type: ignore[type-arg]
    result: Freshness = await loader.load(projection)
    return result
