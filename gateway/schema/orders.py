"""Checkout, order and inventory GraphQL types and resolvers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import Freshness, Money, Node, PageInfo, UserError
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


@strawberry.input
class AddressInput:
    name: str
    line1: str
    city: str
    postal_code: str
    country_code: str
    line2: str | None = None


@strawberry.input
class PaymentInput:
    token: str


@strawberry.input
class CheckoutInput:
    cart_id: strawberry.ID
    idempotency_key: str
    email: str
    shipping_address: AddressInput
    payment: PaymentInput
    expected_cart_version: int | None = None


@strawberry.type
class CheckoutPayload:
    order: Order | None
    position: Position | None  # type: ignore[valid-type]
    user_errors: list[UserError]


@strawberry.type
class OrderPayload:
    order: Order | None
    position: Position | None  # type: ignore[valid-type]
    user_errors: list[UserError]


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


async def resolve_inventory(info: Info, sku: str, consistent_with: int | None) -> InventoryLevel | None:
    raise not_implemented("inventory")


async def resolve_checkout_complete(info: Info, input: CheckoutInput) -> CheckoutPayload:
    raise not_implemented("checkoutComplete")


async def resolve_order_cancel(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    raise not_implemented("orderCancel")


async def resolve_order_request_fulfillment(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    raise not_implemented("orderRequestFulfillment")


async def resolve_order_mark_shipped(
    info: Info, order_id: strawberry.ID, tracking_number: str | None, idempotency_key: str
) -> OrderPayload:
    raise not_implemented("orderMarkShipped")


async def resolve_order_mark_delivered(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    raise not_implemented("orderMarkDelivered")


async def resolve_order_refund(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    raise not_implemented("orderRefund")


async def resolve_inventory_set(info: Info, sku: str, on_hand: int, idempotency_key: str) -> InventoryPayload:
    raise not_implemented("inventorySet")


async def resolve_inventory_adjust(
    info: Info, sku: str, delta: int, reason: str | None, idempotency_key: str
) -> InventoryPayload:
    raise not_implemented("inventoryAdjust")


async def subscribe_order_updated(info: Info, order_id: strawberry.ID) -> AsyncGenerator[Order, None]:
    raise not_implemented("orderUpdated")
    yield  # pragma: no cover
