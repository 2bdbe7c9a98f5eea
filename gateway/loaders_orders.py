"""Per-request DataLoaders for the orders read model: one query for many order ids."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from gateway.context import Info
from queries.freshness import Freshness
from queries.orders import PROJECTION, OrderQueries, OrderView


def queries(info: Info) -> OrderQueries:
    return info.context.container.get(OrderQueries)


def by_id(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = queries(info)

    async def load(ids: Sequence[str]) -> list[OrderView | None]:
        found = await service.get_many(ids)
        return [found.get(i) for i in ids]

    return info.context.loader("orders:by-id", lambda: DataLoader(load))


async def order(info: Info, order_id: str, *, fresh: bool = False) -> OrderView | None:
    """The order, batched with its siblings; ``fresh`` forgets what this request saw before."""
    loader = by_id(info)
    if fresh:
        # A second mutation in the same request must not see the first one's snapshot.
        loader.clear(order_id)
        _freshness_loader(info).clear(PROJECTION)
    result: OrderView | None = await loader.load(order_id)
    return result


def prime(info: Info, views: Sequence[OrderView]) -> None:
    loader = by_id(info)
    for view in views:
        loader.prime(view.order_id, view)


def _freshness_loader(info: Info) -> DataLoader:  # type: ignore[type-arg]
    service = info.context.container.freshness

    async def load(names: Sequence[str]) -> list[Freshness]:
        return [await service.freshness(name) for name in names]

    return info.context.loader("orders:freshness", lambda: DataLoader(load))


async def freshness(info: Info) -> Freshness:
    """The orders read model's freshness, computed once per request however many orders ask."""
    result: Freshness = await _freshness_loader(info).load(PROJECTION)
    return result
