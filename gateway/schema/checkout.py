"""Checkout and order mutations (write side): thin resolvers over commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from commands.checkout.saga import CheckoutService
from commands.errors import DomainError, NotFound
from commands.handlers.orders import OrderCommands
from commands.messages.orders import (
    AddressData,
    CancelOrder,
    CompleteCheckout,
    MarkOrderDelivered,
    MarkOrderShipped,
    OrderActor,
    OrderOutcome,
    RefundOrder,
    RequestFulfillment,
)
from gateway.edge.context import Info
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
            ),
            payment_token=input.payment.token,
            expected_cart_version=input.expected_cart_version,
            customer_id=principal.customer_id,
            staff=principal.staff,
        )
        service = context.container.get(CheckoutService)
        outcome = await service.complete(command, context.metadata(input.idempotency_key))
    except DomainError as error:
        return CheckoutPayload(position=None, user_errors=UserError.from_domain(error, ["input"]))
    return CheckoutPayload(
        position=optional_position(outcome.position),
        user_errors=_errors(outcome, ["input"]),
        order_id=outcome.order_id,
    )


_Run = Callable[[OrderCommands, str, OrderActor], Awaitable[OrderOutcome]]


async def _order_mutation(
    info: Info, order_id: strawberry.ID, roles: tuple[str, ...], run: _Run
) -> OrderPayload:
    context = info.context
    principal = context.principal
    principal.require(*roles)
    actor = OrderActor(principal.actor, principal.customer_id, principal.has_role("admin"))
    order_key = orders_api.order_key(str(order_id))
    try:
        if order_key is None:
            raise NotFound("order not found", ["orderId"])
        outcome = await run(context.container.get(OrderCommands), order_key, actor)
    except DomainError as error:
        return OrderPayload(position=None, user_errors=UserError.from_domain(error))
    return OrderPayload(
        position=optional_position(outcome.position),
        user_errors=_errors(outcome, None),
        order_id=outcome.order_id,
    )


async def resolve_order_cancel(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    metadata = info.context.metadata(idempotency_key)
    return await _order_mutation(
        info,
        order_id,
        ("customer", "admin"),
        lambda commands, key, actor: commands.cancel(
            CancelOrder(key, actor, idempotency_key, reason), metadata
        ),
    )


async def resolve_order_request_fulfillment(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    metadata = info.context.metadata(idempotency_key)
    return await _order_mutation(
        info,
        order_id,
        ("admin",),
        lambda commands, key, actor: commands.request_fulfillment(
            RequestFulfillment(key, actor, idempotency_key), metadata
        ),
    )


async def resolve_order_mark_shipped(
    info: Info, order_id: strawberry.ID, tracking_number: str | None, idempotency_key: str
) -> OrderPayload:
    metadata = info.context.metadata(idempotency_key)
    return await _order_mutation(
        info,
        order_id,
        ("admin",),
        lambda commands, key, actor: commands.mark_shipped(
            MarkOrderShipped(key, actor, idempotency_key, tracking_number), metadata
        ),
    )


async def resolve_order_mark_delivered(
    info: Info, order_id: strawberry.ID, idempotency_key: str
) -> OrderPayload:
    metadata = info.context.metadata(idempotency_key)
    return await _order_mutation(
        info,
        order_id,
        ("admin",),
        lambda commands, key, actor: commands.mark_delivered(
            MarkOrderDelivered(key, actor, idempotency_key), metadata
        ),
    )


async def resolve_order_refund(
    info: Info, order_id: strawberry.ID, reason: str | None, idempotency_key: str
) -> OrderPayload:
    metadata = info.context.metadata(idempotency_key)
    return await _order_mutation(
        info,
        order_id,
        ("admin",),
        lambda commands, key, actor: commands.refund(
            RefundOrder(key, actor, idempotency_key, reason), metadata
        ),
    )
