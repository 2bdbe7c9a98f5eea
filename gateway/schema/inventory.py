"""Inventory GraphQL types and resolvers (read side: the inventory read model).

Admin mutations dispatch stock commands under an idempotency key; their
payload's level waits until the inventory projection has applied the change.
Variant availability hints are batched: one read model query per request.
"""

from __future__ import annotations

import strawberry
from aiodataloader import DataLoader

from commands.errors import DomainError
from commands.messages.inventory import AdjustStock, SetStock, StockResult
from gateway.edge.context import Info
from gateway.schema.catalog import StockHint
from gateway.schema.common import Freshness, UserError
from gateway.schema.loaders.base import keyed_loader, request_freshness
from gateway.schema.scalars import Position, optional_position
from queries.freshness import Freshness as FreshnessModel
from queries.inventory import PROJECTION, InventoryLevelView, InventoryQueries


@strawberry.type
class InventoryLevel:
    sku: str
    on_hand: int
    reserved: int
    available: int
    freshness: Freshness


async def _payload_level(root: InventoryPayload, info: Info) -> InventoryLevel | None:
    if root.result is None:
        return None
    if root.result.position is not None:
        await _wait(info, root.result.position)
    # Not through the request's DataLoader: an earlier field may have cached an older level.
    view = await _queries(info).get(root.result.sku)
    return None if view is None else await _level(info, view, after_wait=True)


@strawberry.type
class InventoryPayload:
    level: InventoryLevel | None = strawberry.field(resolver=_payload_level)
    position: Position | None
    user_errors: list[UserError]
    result: strawberry.Private[StockResult | None] = None


async def resolve_inventory(info: Info, sku: str, consistent_with: int | None) -> InventoryLevel | None:
    info.context.principal.require("admin", "support")
    if consistent_with is None:
        view = await _levels(info).load(sku)
        return None if view is None else await _level(info, view)
    await _wait(info, consistent_with)
    view = await _queries(info).get(sku)
    return None if view is None else await _level(info, view, after_wait=True)


async def resolve_inventory_set(info: Info, sku: str, on_hand: int, idempotency_key: str) -> InventoryPayload:
    info.context.principal.require("admin")
    return await _execute(info, SetStock(sku, on_hand, idempotency_key=idempotency_key))


async def resolve_inventory_adjust(
    info: Info, sku: str, delta: int, reason: str | None, idempotency_key: str
) -> InventoryPayload:
    info.context.principal.require("admin")
    return await _execute(info, AdjustStock(sku, delta, reason, idempotency_key=idempotency_key))


async def stock_hint(info: Info, sku: str) -> StockHint:
    """A variant's availability from the inventory read model; untracked SKUs are always in stock."""
    view = await _levels(info).load(sku)
    freshness = Freshness.of(await _freshness(info))
    if view is None:
        return StockHint(in_stock=True, available=None, freshness=freshness)
    return StockHint(in_stock=view.available > 0, available=view.available, freshness=freshness)


async def _execute(info: Info, command: SetStock | AdjustStock) -> InventoryPayload:
    ctx = info.context
    try:
        result = await ctx.bus.dispatch(command, ctx.metadata())
    except DomainError as err:
        return InventoryPayload(position=None, user_errors=UserError.from_domain(err))
    return InventoryPayload(position=optional_position(result.position), user_errors=[], result=result)


def _queries(info: Info) -> InventoryQueries:
    return info.context.services.inventory


def _levels(info: Info) -> DataLoader:  # type: ignore[type-arg]
    return keyed_loader(info, "inventory:levels", _queries(info).by_skus)


async def _freshness(info: Info) -> FreshnessModel:
    """The inventory model's freshness, computed once per request however many fields ask."""
    return await request_freshness(info, PROJECTION)


async def _level(info: Info, view: InventoryLevelView, *, after_wait: bool = False) -> InventoryLevel:
    # After a wait the request's cached freshness may predate it.
    fresh = await info.context.container.freshness.freshness(PROJECTION) if after_wait else None
    return InventoryLevel(
        sku=view.sku,
        on_hand=view.on_hand,
        reserved=view.reserved,
        available=view.available,
        freshness=Freshness.of(fresh or await _freshness(info)),
    )


async def _wait(info: Info, position: int) -> None:
    container = info.context.container
    await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)
