"""Per-request DataLoaders for the catalog: one search-engine call per kind of lookup."""

from __future__ import annotations

from typing import Any

from aiodataloader import DataLoader

from gateway.edge.context import Info
from gateway.edge.search_cache import SearchAnswers
from gateway.schema.loaders.base import keyed_loader, request_freshness
from queries.freshness import Freshness
from queries.products import ProductService

SEARCH_PROJECTION = "search"


def products(info: Info) -> ProductService:
    return info.context.services.products


def product_search(info: Info) -> SearchAnswers:
    """Searches, answered from the answers kept for the search model's current version when they can be."""
    return info.context.services.product_search


def by_id(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(info, "catalog:by-id", products(info).by_ids)


def by_handle(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(
        info, "catalog:by-handle", products(info).by_handles, on_found=lambda views: prime(info, views)
    )


def by_sku(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(
        info, "catalog:by-sku", products(info).by_skus, on_found=lambda views: prime(info, views)
    )


def prime(info: Info, views: Any) -> None:
    """Remember products fetched some other way, so ``node(id)`` on them costs nothing."""
    loader = by_id(info)
    for view in views:
        loader.prime(view.id, view)


async def freshness(info: Info, projection: str = SEARCH_PROJECTION) -> Freshness:
    """The read model's freshness, computed once per request however many fields ask."""
    return await request_freshness(info, projection)
