"""Cart GraphQL types and resolvers (read side: the carts read model)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.catalog import ProductVariant
from gateway.schema.common import Freshness, Money, Node, UserError
from gateway.schema.scalars import Position


@strawberry.enum
class CartStatus(Enum):
    ACTIVE = "ACTIVE"
    MERGED = "MERGED"
    CHECKED_OUT = "CHECKED_OUT"


@strawberry.type
class CartLine:
    id: strawberry.ID
    sku: str
    quantity: int
    unit_price: Money
    line_total: Money

    @strawberry.field
    async def variant(self, info: Info) -> ProductVariant | None:
        raise not_implemented("CartLine.variant")


@strawberry.type
class Cart(Node):
    id: strawberry.ID
    customer_id: strawberry.ID | None
    status: CartStatus
    currency_code: str
    lines: list[CartLine]
    total_quantity: int
    subtotal: Money
    version: int
    created_at: datetime
    updated_at: datetime
    freshness: Freshness


@strawberry.input
class CartLineInput:
    sku: str
    quantity: int


@strawberry.input
class CartCreateInput:
    currency_code: str | None = None
    lines: list[CartLineInput] | None = None


@strawberry.input
class CartLineUpdateInput:
    line_id: strawberry.ID
    quantity: int


@strawberry.type
class CartPayload:
    cart: Cart | None
    position: Position | None  # type: ignore[valid-type]
    user_errors: list[UserError]


async def resolve_cart(info: Info, id: strawberry.ID, consistent_with: int | None) -> Cart | None:
    raise not_implemented("cart")


async def resolve_my_cart(info: Info, consistent_with: int | None) -> Cart | None:
    raise not_implemented("myCart")


async def resolve_cart_create(info: Info, input: CartCreateInput | None) -> CartPayload:
    raise not_implemented("cartCreate")


async def resolve_cart_lines_add(
    info: Info, cart_id: strawberry.ID, lines: list[CartLineInput], expected_version: int | None
) -> CartPayload:
    raise not_implemented("cartLinesAdd")


async def resolve_cart_lines_update(
    info: Info, cart_id: strawberry.ID, lines: list[CartLineUpdateInput], expected_version: int | None
) -> CartPayload:
    raise not_implemented("cartLinesUpdate")


async def resolve_cart_lines_remove(
    info: Info, cart_id: strawberry.ID, line_ids: list[strawberry.ID], expected_version: int | None
) -> CartPayload:
    raise not_implemented("cartLinesRemove")


async def resolve_cart_attach_customer(info: Info, cart_id: strawberry.ID) -> CartPayload:
    raise not_implemented("cartAttachCustomer")
