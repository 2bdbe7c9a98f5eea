"""Per-request DataLoaders for the orders read model: one query for many order ids."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from gateway.edge.context import Info
from gateway.schema.loaders.base import forget_freshness, keyed_loader, request_freshness
from queries.freshness import Freshness
from queries.orders import PROJECTION, OrderQueries, OrderView


def queries(info: Info) -> OrderQueries:
    return info.context.services.orders


def by_id(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(info, "orders:by-id", queries(info).get_many)


async def order(info: Info, order_id: str, *, fresh: bool = False) -> OrderView | None:
    """The order, batched with its siblings; ``fresh`` forgets what this request saw before."""
    loader = by_id(info)
    if fresh:
        # A second mutation in the same request must not see the first one's snapshot.
        loader.clear(order_id)
        forget_freshness(info, PROJECTION)
    result: OrderView | None = await loader.load(order_id)
    return result


def prime(info: Info, views: Sequence[OrderView]) -> None:
    loader = by_id(info)
    for view in views:
        loader.prime(view.order_id, view)


async def freshness(info: Info) -> Freshness:
    """The orders read model's freshness, computed once per request however many orders ask."""
    return await request_freshness(info, PROJECTION)
