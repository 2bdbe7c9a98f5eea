"""Inventory GraphQL types and resolvers (read side: the inventory read model)."""

from __future__ import annotations

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import Freshness, UserError
from gateway.schema.scalars import Position


@strawberry.type
class InventoryLevel:
    sku: str
    on_hand: int
    reserved: int
    available: int
    freshness: Freshness


@strawberry.type
class InventoryPayload:
    level: InventoryLevel | None
    position: Position | None  # type: ignore[valid-type]
    user_errors: list[UserError]


async def resolve_inventory(info: Info, sku: str, consistent_with: int | None) -> InventoryLevel | None:
    raise not_implemented("inventory")


async def resolve_inventory_set(info: Info, sku: str, on_hand: int, idempotency_key: str) -> InventoryPayload:
    raise not_implemented("inventorySet")


async def resolve_inventory_adjust(
    info: Info, sku: str, delta: int, reason: str | None, idempotency_key: str
) -> InventoryPayload:
    raise not_implemented("inventoryAdjust")
