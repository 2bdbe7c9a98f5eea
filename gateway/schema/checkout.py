"""Checkout and order mutations (write side): thin resolvers over commands."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import strawberry

from commands.errors import DomainError, Forbidden, NotFound
from commands.messages.orders import (
    AddressData,
    CancelOrder,
    CompleteCheckout,
    MarkOrderDelivered,
    MarkOrderShipped,
    OrderActor,
    OrderCommand,
    OrderOutcome,
    RefundOrder,
    RequestFulfillment,
)
from gateway.edge.context import Info
from gateway.schema import cart as cart_api
from gateway.schema import orders as orders_api
from gateway.schema.common import UserError
from gateway.schema.ids import global_id, parse_global_id
from gateway.schema.orders import Order
from gateway.schema.scalars import Position, optional_position

MAX_CART_KEY = 64


@strawberry.input
class AddressInput:
    name: str
    line1: str
    city: str
    postal_code: str
    country_code: str
    line2: str | None = None
    region: str | None = strawberry.field(
        default=None, description="State or province, where a tax rate depends on it."
    )


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
    shipping_method: str | None = strawberry.field(
        default=None, description="Code of the shipping method; required when the store has any."
    )
    discount_code: str | None = None
    expected_total: Decimal | None = strawberry.field(
        default=None, description="The total the buyer was shown; another total now is PRICE_CHANGED."
    )


async def _payload_order(root: CheckoutPayload | OrderPayload, info: Info) -> Order | None:
    if root.order_id is None:
        return None
    return await orders_api.order_as_of(info, root.order_id, root.position)


def _written_order_id(root: CheckoutPayload | OrderPayload) -> strawberry.ID | None:
    return None if root.order_id is None else strawberry.ID(global_id("Order", root.order_id))


@strawberry.type
class CheckoutPayload:
    order: Order | None = strawberry.field(resolver=_payload_order)
    written_order_id: strawberry.ID | None = strawberry.field(
        name="orderId",
        resolver=_written_order_id,
        description="Id of the order this command wrote, even when `order` could not be read back in time.",
    )
    position: Position | None
    user_errors: list[UserError]
    order_id: strawberry.Private[str | None] = None


@strawberry.type
class OrderPayload:
    order: Order | None = strawberry.field(resolver=_payload_order)
    written_order_id: strawberry.ID | None = strawberry.field(
        name="orderId",
        resolver=_written_order_id,
        description="Id of the order this command wrote, even when `order` could not be read back in time.",
    )
    position: Position | None
    user_errors: list[UserError]
    order_id: strawberry.Private[str | None] = None


def _errors(outcome: OrderOutcome, prefix: list[str] | None) -> list[UserError]:
    error = outcome.to_error()
    return [] if error is None else UserError.from_domain(error, prefix)


async def resolve_checkout_complete(info: Info, input: CheckoutInput) -> CheckoutPayload:
    context = info.context
    principal = context.principal
    parsed = parse_global_id(str(input.cart_id), "Cart")
    address = input.shipping_address
    try:
        if parsed is None or len(parsed[1]) > MAX_CART_KEY:
            raise NotFound("cart not found", ["cartId"])
        if cart_api.cart_actor(principal).reads_only:
            raise Forbidden("support may read carts and orders but not check out", ["cartId"])
        command = CompleteCheckout(
            cart_id=parsed[1],
            idempotency_key=input.idempotency_key,
            email=input.email.strip(),
            shipping_address=AddressData(
                address.name,
                address.line1,
                address.line2,
                address.city,
                address.postal_code,
                address.country_code,
                address.region,
            ),
            payment_token=input.payment.token,
            expected_cart_version=input.expected_cart_version,
            customer_id=principal.customer_id,
            # Checking out someone else's cart is an admin's (recorded as the command's actor).
            staff=principal.has_role("admin"),
            shipping_method=input.shipping_method,
            discount_code=input.discount_code,
            expected_total=input.expected_total,
        )
        outcome = await context.bus.dispatch(command, context.metadata())
    except DomainError as error:
        return CheckoutPayload(position=None, user_errors=UserError.from_domain(error, ["input"]))
    return CheckoutPayload(
        position=optional_position(outcome.position),
        user_errors=_errors(outcome, ["input"]),
        order_id=outcome.order_id,
    )


_Build = Callable[[OrderActor], OrderCommand]


async def _order_mutation(info: Info, roles: tuple[str, ...], build: _Build) -> OrderPayload:
    context = info.context
    principal = context.principal
    principal.require(*roles)
    actor = OrderActor(principal.actor, principal.customer_id, principal.has_role("admin"))
    try:
        outcome = await context.bus.dispatch(build(actor), context.metadata())
    except DomainError as error:
        return OrderPayload(position=None, user_errors=UserError.from_domain(error))
    return OrderPayload(
        position=optional_position(outcome.position),
        user_errors=_errors(outcome, None),
        order_id=outcome.order_id,
    )


def _order_key(order_id: strawberry.ID) -> str:
    """The order's key inside its global id; an id that names no order reads as not found downstream."""
    return orders_api.order_key(str(order_id)) or ""


async def resolve_order_cancel(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    key = _order_key(order_id)
    return await _order_mutation(
        info, ("customer", "admin"), lambda actor: CancelOrder(key, actor, idempotency_key, reason)
    )


async def resolve_order_request_fulfillment(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    key = _order_key(order_id)
    return await _order_mutation(
        info, ("admin",), lambda actor: RequestFulfillment(key, actor, idempotency_key)
    )


async def resolve_order_mark_shipped(
    info: Info, order_id: strawberry.ID, tracking_number: str | None, idempotency_key: str
) -> OrderPayload:
    key = _order_key(order_id)
    return await _order_mutation(
        info, ("admin",), lambda actor: MarkOrderShipped(key, actor, idempotency_key, tracking_number)
    )


async def resolve_order_mark_delivered(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    key = _order_key(order_id)
    return await _order_mutation(
        info, ("admin",), lambda actor: MarkOrderDelivered(key, actor, idempotency_key)
    )


async def resolve_order_refund(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    key = _order_key(order_id)
    return await _order_mutation(
        info, ("admin",), lambda actor: RefundOrder(key, actor, idempotency_key, reason)
    )
