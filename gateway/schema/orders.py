"""Checkout, order and inventory GraphQL types and resolvers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import Freshness, Money, Node, PageInfo
from gateway.schema.scalars import Position


@strawberry.enum
class OrderStatus(Enum):
    PAYMENT_PENDING = "PAYMENT_PENDING"
    CONFIRMED = "CONFIRMED"
    FULFILLMENT_REQUESTED = "FULFILLMENT_REQUESTED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"


@strawberry.enum
class PaymentStatus(Enum):
    PENDING = "PENDING"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    UNKNOWN = "UNKNOWN"


@strawberry.type
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Money
    line_total: Money


@strawberry.type
class PaymentSummary:
    status: PaymentStatus
    amount: Money
    provider_reference: str | None


@strawberry.type
class OrderEvent:
    type: str
    at: datetime
    position: Position  # type: ignore[valid-type]


@strawberry.type
class Address:
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country_code: str


@strawberry.type
class Order(Node):
    id: strawberry.ID
    number: str
    customer_id: strawberry.ID | None
    email: str
    status: OrderStatus
    lines: list[OrderLine]
    subtotal: Money
    total: Money
    payment: PaymentSummary
    shipping_address: Address
    history: list[OrderEvent]
    created_at: datetime
    updated_at: datetime
    freshness: Freshness


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo
    freshness: Freshness


async def resolve_order(info: Info, id: strawberry.ID, consistent_with: int | None) -> Order | None:
    raise not_implemented("order")


async def resolve_orders(
    info: Info,
    customer_id: strawberry.ID | None,
    status: OrderStatus | None,
    first: int | None,
    after: str | None,
    consistent_with: int | None,
) -> OrderConnection:
    raise not_implemented("orders")


async def subscribe_order_updated(info: Info, order_id: strawberry.ID) -> AsyncGenerator[Order, None]:
    raise not_implemented("orderUpdated")
    yield  # pragma: no cover
