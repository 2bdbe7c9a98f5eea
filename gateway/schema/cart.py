"""Cart GraphQL types and resolvers.

Mutations dispatch cart commands (PostgreSQL only, so they work while the
cart read store is down); reads come from the ``carts`` read model, and a
mutation payload's cart waits until that model has applied the command.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum

import strawberry

from commands.bus import Command
from commands.errors import DomainError, NotFound
from commands.messages.cart import (
    AddCartLines,
    ApplyCartDiscountCode,
    AttachCartToCustomer,
    CartActor,
    CartResult,
    CreateCart,
    LineRequest,
    QuantityChange,
    RemoveCartDiscountCode,
    RemoveCartLines,
    SetCartShipping,
    UpdateCartLines,
)
from gateway.edge.auth import Principal
from gateway.edge.context import Info
from gateway.edge.errors import GatewayError, unauthenticated
from gateway.schema import cart_money
from gateway.schema.catalog import ProductVariant, variant_by_sku
from gateway.schema.common import Freshness, Money, Node, UserError
from gateway.schema.ids import global_id, parse_global_id
from gateway.schema.list_sizes import bounded
from gateway.schema.scalars import Position, optional_position
from queries.carts import PROJECTION, CartLineView, CartQueries, CartStoreUnavailable, CartView
from queries.freshness import StaleRead

# secrets.token_urlsafe(16): 22 URL-safe characters.
_CART_KEY = re.compile(r"^[A-Za-z0-9_-]{22}$")
_Fetch = Callable[[CartQueries], Awaitable[CartView | None]]


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
        return await variant_by_sku(info, self.sku)


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
    shipping: cart_money.CartShipping | None
    discount_code: str | None
    view: strawberry.Private[CartView]

    @strawberry.field
    async def freshness(self, info: Info) -> Freshness:
        return Freshness.of(await info.context.container.freshness.freshness(PROJECTION))

    @strawberry.field
    async def shipping_methods(self, info: Info) -> list[cart_money.ShippingOption]:
        return await cart_money.shipping_options(info, self.view)

    @strawberry.field
    async def totals(self, info: Info) -> cart_money.CartTotals:
        return await cart_money.totals(info, self.view)


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


def _written_cart_id(root: CartPayload) -> strawberry.ID | None:
    return None if root.result is None else strawberry.ID(global_id("Cart", root.result.cart_id))


async def _payload_cart(root: CartPayload, info: Info) -> Cart | None:
    if root.result is None:
        return None
    return await _read_after_write(info, root.result)


@strawberry.type
class CartPayload:
    cart: Cart | None = strawberry.field(resolver=_payload_cart)
    cart_id: strawberry.ID | None = strawberry.field(
        resolver=_written_cart_id,
        description="Id of the cart this command wrote, even when `cart` could not be read back in time.",
    )
    position: Position | None
    user_errors: list[UserError]
    result: strawberry.Private[CartResult | None] = None


# ---------------------------------------------------------------- reads


async def resolve_cart(info: Info, id: strawberry.ID, consistent_with: int | None) -> Cart | None:
    key = cart_key(str(id))
    if key is None:
        return None
    await _wait(info, consistent_with)
    return _visible(info, await _read(info, lambda q: q.get(key)))


async def resolve_my_cart(info: Info, consistent_with: int | None) -> Cart | None:
    principal = info.context.principal
    if principal.anonymous:
        raise unauthenticated()
    customer_id = principal.customer_id
    if customer_id is None:
        return None
    await _wait(info, consistent_with)
    return _visible(info, await _read(info, lambda q: q.active_for_customer(customer_id)))


# ---------------------------------------------------------------- mutations


async def resolve_cart_create(info: Info, input: CartCreateInput | None) -> CartPayload:
    data = input or CartCreateInput()
    lines = tuple(LineRequest(line.sku, line.quantity) for line in data.lines or [])
    return await _dispatch(info, CreateCart(_actor(info), data.currency_code, lines), ["input"])


async def resolve_cart_lines_add(
    info: Info, cart_id: strawberry.ID, lines: list[CartLineInput], expected_version: int | None
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    requests = tuple(LineRequest(line.sku, line.quantity) for line in lines)
    return await _dispatch(info, AddCartLines(key, _actor(info), requests, expected_version))


async def resolve_cart_lines_update(
    info: Info, cart_id: strawberry.ID, lines: list[CartLineUpdateInput], expected_version: int | None
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    changes = tuple(QuantityChange(line_key(key, str(line.line_id)), line.quantity) for line in lines)
    return await _dispatch(info, UpdateCartLines(key, _actor(info), changes, expected_version))


async def resolve_cart_lines_remove(
    info: Info, cart_id: strawberry.ID, line_ids: list[strawberry.ID], expected_version: int | None
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    keys = tuple(line_key(key, str(line_id)) for line_id in line_ids)
    return await _dispatch(info, RemoveCartLines(key, _actor(info), keys, expected_version))


async def resolve_cart_shipping_set(
    info: Info,
    cart_id: strawberry.ID,
    country_code: str,
    region: str | None,
    method_code: str | None,
    expected_version: int | None,
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    command = SetCartShipping(key, _actor(info), country_code, region, method_code, expected_version)
    return await _dispatch(info, command)


async def resolve_cart_discount_code_apply(
    info: Info, cart_id: strawberry.ID, code: str, expected_version: int | None
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    return await _dispatch(info, ApplyCartDiscountCode(key, _actor(info), code.strip(), expected_version))


async def resolve_cart_discount_code_remove(
    info: Info, cart_id: strawberry.ID, expected_version: int | None
) -> CartPayload:
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    return await _dispatch(info, RemoveCartDiscountCode(key, _actor(info), expected_version))


async def resolve_cart_attach_customer(info: Info, cart_id: strawberry.ID) -> CartPayload:
    info.context.principal.require("customer")
    key = cart_key(str(cart_id))
    if key is None:
        return _cart_not_found()
    return await _dispatch(info, AttachCartToCustomer(key, _actor(info)))


# ---------------------------------------------------------------- ids and mapping


def cart_key(value: str) -> str | None:
    """The cart id inside a ``gid://commerce/Cart/<key>``; None when malformed (treated as not found)."""
    parsed = parse_global_id(value, "Cart")
    if parsed is None or not _CART_KEY.match(parsed[1]):
        return None
    return parsed[1]


def line_key(cart: str, value: str) -> str:
    """The line id inside a CartLine id of ``cart``; "" (matches no line) when it is not one."""
    parsed = parse_global_id(value, "CartLine")
    if parsed is None:
        return ""
    owner, _, line = parsed[1].rpartition(":")
    return line if owner == cart and line else ""


def to_cart(view: CartView) -> Cart:
    return Cart(
        id=strawberry.ID(global_id("Cart", view.cart_id)),
        customer_id=None if view.customer_id is None else strawberry.ID(view.customer_id),
        status=CartStatus(view.status),
        currency_code=view.currency_code,
        lines=[_to_line(view, line) for line in bounded("Cart", "lines", view.lines)],
        total_quantity=view.total_quantity,
        subtotal=Money.of(view.subtotal, view.currency_code),
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
        shipping=None
        if view.shipping is None
        else cart_money.CartShipping(
            country_code=view.shipping.country_code,
            region=view.shipping.region,
            method_code=view.shipping.method_code,
        ),
        discount_code=view.discount_code,
        view=view,
    )


def _to_line(cart: CartView, line: CartLineView) -> CartLine:
    return CartLine(
        id=strawberry.ID(global_id("CartLine", f"{cart.cart_id}:{line.line_id}")),
        sku=line.sku,
        quantity=line.quantity,
        unit_price=Money.of(line.unit_price, cart.currency_code),
        line_total=Money.of(line.line_total, cart.currency_code),
    )


def _actor(info: Info) -> CartActor:
    return cart_actor(info.context.principal)


def cart_actor(principal: Principal) -> CartActor:
    """Who writes a cart: admins may change any cart; support reads every cart and writes one only
    as the customer it also is (``CartActor.reads_only``, checked at checkout too)."""
    admin = principal.has_role("admin")
    return CartActor(
        customer_id=principal.customer_id, staff=admin, support=principal.has_role("support") and not admin
    )


def _cart_not_found() -> CartPayload:
    return CartPayload(
        position=None, user_errors=UserError.from_domain(NotFound("cart not found", ["cartId"]))
    )


async def _dispatch(info: Info, command: Command[CartResult], prefix: list[str] | None = None) -> CartPayload:
    try:
        result = await info.context.container.bus.dispatch(command, info.context.metadata())
    except DomainError as err:
        return CartPayload(position=None, user_errors=UserError.from_domain(err, prefix))
    return CartPayload(position=optional_position(result.position), user_errors=[], result=result)


# ---------------------------------------------------------------- read helpers


def _queries(info: Info) -> CartQueries:
    return info.context.services.carts


async def _read(info: Info, fetch: _Fetch) -> CartView | None:
    try:
        return await fetch(_queries(info))
    except CartStoreUnavailable:
        raise GatewayError(
            "SERVICE_UNAVAILABLE", "The cart store is unavailable right now; cart changes are still saved"
        ) from None


async def _wait(info: Info, position: int | None) -> None:
    if position is None:
        return
    container = info.context.container
    try:
        await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)
    except StaleRead:
        # A projector stuck on an unreachable store explains the staleness better.
        await _read(info, lambda q: q.get(""))
        raise


async def _read_after_write(info: Info, result: CartResult) -> Cart | None:
    view = await _read(info, lambda q: q.get(result.cart_id))
    if view is None or view.version < result.version:
        await _wait(info, result.read_position)
        view = await _read(info, lambda q: q.get(result.cart_id))
    return _visible(info, view)


def _visible(info: Info, view: CartView | None) -> Cart | None:
    """A customer's cart exists only for that customer and staff (others get null, not FORBIDDEN)."""
    if view is None:
        return None
    principal = info.context.principal
    if view.customer_id is not None and not principal.staff and view.customer_id != principal.customer_id:
        return None
    return to_cart(view)
