"""Checkout and order mutations (write side): thin resolvers over commands."""

from __future__ import annotations

import strawberry

from gateway.context import Info
from gateway.errors import not_implemented
from gateway.schema.common import UserError
from gateway.schema.orders import Order
from gateway.schema.scalars import Position


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
