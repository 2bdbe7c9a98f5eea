"""Inventory GraphQL types and resolvers (read side: the inventory read model).

Admin mutations dispatch stock commands under an idempotency key; their
payload's level waits until the inventory projection has applied the change.
Variant availability hints live in ``gateway.schema.stock``.
"""

from __future__ import annotations

import strawberry

from commands.domain.inventory import validate_sku
from commands.errors import DomainError, InvalidInput
from commands.messages.inventory import AdjustStock, SetStock, SetStockBuckets, StockResult
from gateway.edge.context import Info
from gateway.edge.errors import bad_user_input
from gateway.schema.common import Freshness, UserError
from gateway.schema.loaders import inventory as loaders
from gateway.schema.scalars import Position, optional_position
from queries.inventory import PROJECTION, InventoryLevelView


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
    view = await loaders.queries(info).get(root.result.sku)
    return None if view is None else await _level(info, view, after_wait=True)


@strawberry.type
class InventoryPayload:
    level: InventoryLevel | None = strawberry.field(resolver=_payload_level)
    position: Position | None
    user_errors: list[UserError]
    result: strawberry.Private[StockResult | None] = None


async def resolve_inventory(info: Info, sku: str, consistent_with: int | None) -> InventoryLevel | None:
    info.context.principal.require("admin", "support")
    try:
        validate_sku(sku)
    except InvalidInput as exc:
        # Null answers "not tracked": a SKU no command would accept is a client's mistake.
        raise bad_user_input(exc.message, argument="sku") from None
    if consistent_with is None:
        view = await loaders.levels(info).load(sku)
        return None if view is None else await _level(info, view)
    await _wait(info, consistent_with)
    view = await loaders.queries(info).get(sku)
    return None if view is None else await _level(info, view, after_wait=True)


async def resolve_inventory_set(info: Info, sku: str, on_hand: int, idempotency_key: str) -> InventoryPayload:
    info.context.principal.require("admin")
    return await _execute(info, SetStock(sku, on_hand, idempotency_key=idempotency_key))


async def resolve_inventory_adjust(
    info: Info, sku: str, delta: int, reason: str | None, idempotency_key: str
) -> InventoryPayload:
    info.context.principal.require("admin")
    return await _execute(info, AdjustStock(sku, delta, reason, idempotency_key=idempotency_key))


async def resolve_inventory_set_buckets(
    info: Info, sku: str, buckets: int, idempotency_key: str
) -> InventoryPayload:
    info.context.principal.require("admin")
    return await _execute(info, SetStockBuckets(sku, buckets, idempotency_key=idempotency_key))


async def _execute(info: Info, command: SetStock | AdjustStock | SetStockBuckets) -> InventoryPayload:
    ctx = info.context
    try:
        result = await ctx.bus.dispatch(command, ctx.metadata())
    except DomainError as err:
        return InventoryPayload(position=None, user_errors=UserError.from_domain(err))
    return InventoryPayload(position=optional_position(result.position), user_errors=[], result=result)


async def _level(info: Info, view: InventoryLevelView, *, after_wait: bool = False) -> InventoryLevel:
    # After a wait the request's cached freshness may predate it.
    fresh = await info.context.container.freshness.freshness(PROJECTION) if after_wait else None
    return InventoryLevel(
        sku=view.sku,
        on_hand=view.on_hand,
        reserved=view.reserved,
        available=view.available,
        freshness=Freshness.of(fresh or await loaders.freshness(info)),
    )


async def _wait(info: Info, position: int) -> None:
    container = info.context.container
    await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)
