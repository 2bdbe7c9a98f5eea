"""Order read types and resolvers: ``order``, ``orders``, ``orderUpdated``, and ``order_as_of``
for mutation payloads.

Visibility: a customer sees their own orders; support and admin see any order
(guest orders, without a customer, only they). ``order`` answers null to
everyone else, and ``orderUpdated`` FORBIDDEN whether or not the order exists,
so an id never reveals anything. ``orders``: anonymous -> UNAUTHENTICATED; a
customer lists their own (naming another customer -> FORBIDDEN); staff must
name the customer (else BAD_USER_INPUT).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import strawberry

from commands.domain.order import OrderStatus, PaymentStatus
from gateway.edge.auth import Principal
from gateway.edge.context import Info
from gateway.edge.errors import bad_user_input, forbidden, unauthenticated
from gateway.schema.common import Freshness, Money, Node, PageInfo
from gateway.schema.ids import global_id, parse_global_id
from gateway.schema.list_sizes import bounded
from gateway.schema.loaders import orders as loaders
from gateway.schema.scalars import Position
from queries.freshness import Freshness as FreshnessModel
from queries.freshness import StaleRead
from queries.orders import PROJECTION, InvalidCursor, OrderCursor, OrderView

DEFAULT_PAGE = 20
MAX_PAGE = 100
# Pub/sub is at-most-once: subscribers re-read the order this often even without messages,
# and once soon after joining (a change may land between the first read and the join).
RESYNC_SECONDS = 15.0
FIRST_RESYNC_SECONDS = 1.0


# The contract's enums are the domain's: schema.graphql (checked against the contract by a
# test) is what keeps an internal rename from reaching clients unnoticed.
strawberry.enum(OrderStatus)
strawberry.enum(PaymentStatus)


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


@strawberry.type(description="One fact in the order's ledger history, oldest first.")
class OrderEvent:
    type: str
    at: datetime
    position: Position


@strawberry.type
class Address:
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country_code: str
    region: str | None = None


@strawberry.type(description="Tax at one rate: on what base (before tax) and how much.")
class TaxLine:
    rate: Decimal = strawberry.field(description="A fraction: 0.19 is 19 %.")
    base: Money
    amount: Money


@strawberry.type
class Order(Node):
    id: strawberry.ID
    number: str = strawberry.field(description="Human-friendly order number.")
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
    shipping: Money
    discounts: Money
    tax: Money = strawberry.field(description="Included in the prices when `pricesIncludeTax`, else added.")
    tax_lines: list[TaxLine]
    prices_include_tax: bool
    shipping_method: str | None
    discount_code: str | None
    # Set when the caller already knows it (lists, subscriptions); else computed once per request.
    known_freshness: strawberry.Private[FreshnessModel | None] = None

    @strawberry.field
    async def freshness(self, info: Info) -> Freshness:
        return Freshness.of(self.known_freshness or await loaders.freshness(info))


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo
    freshness: Freshness


# ---------------------------------------------------------------- reads


async def resolve_order(info: Info, id: strawberry.ID, consistent_with: int | None) -> Order | None:
    key = order_key(str(id))
    if key is None:
        return None
    await _wait(info, consistent_with)
    view = await loaders.order(info, key)
    if view is None or not can_see(info.context.principal, view):
        return None
    return to_order(view)


async def resolve_orders(
    info: Info,
    customer_id: strawberry.ID | None,
    status: OrderStatus | None,
    first: int | None,
    after: str | None,
    consistent_with: int | None,
) -> OrderConnection:
    owner = _listing_owner(info.context.principal, None if customer_id is None else str(customer_id))
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise bad_user_input(f"first must be between 1 and {MAX_PAGE}", argument="first")
    try:
        cursor = None if after is None else OrderCursor.decode(after)
    except InvalidCursor as exc:
        raise bad_user_input(str(exc), argument="after") from None
    await _wait(info, consistent_with)
    # Measured before reading, so the page is at least as fresh as it claims.
    fresh = await info.context.container.freshness.freshness(PROJECTION)
    page = await loaders.queries(info).list_for_customer(
        owner, status=None if status is None else status.value, first=size, after=cursor
    )
    loaders.prime(info, page.orders)
    edges = [OrderEdge(cursor=view.cursor.encode(), node=to_order(view, fresh)) for view in page.orders]
    return OrderConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=cursor is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        freshness=Freshness.of(fresh),
    )


async def order_as_of(info: Info, order_id: str, position: int | None) -> Order | None:
    """The order once the read model has applied ``position`` (mutation payloads; no access check).

    ``order_id`` is the raw order id or its global id. Raises StaleRead when the
    read model does not get there within the read wait.
    """
    key = order_key(order_id) or order_key(global_id("Order", order_id))
    if key is None:
        return None
    if position is not None:
        container = info.context.container
        await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)
    view = await loaders.order(info, key, fresh=position is not None)
    return None if view is None else to_order(view)


# ---------------------------------------------------------------- subscription


async def subscribe_order_updated(info: Info, order_id: strawberry.ID) -> AsyncGenerator[Order, None]:
    principal = info.context.principal
    if principal.anonymous and principal.client is None:
        raise unauthenticated()
    key = order_key(str(order_id))
    service = loaders.queries(info)
    view = None if key is None else await service.get(key)
    if view is None or not can_see(principal, view):
        # Same answer for "no such order" and "not yours", so ids reveal nothing.
        raise forbidden("You may only follow your own orders")
    container = info.context.container
    updates = cast(
        AsyncGenerator[dict[str, Any], None], container.services.order_updates.subscribe(view.order_id)
    )
    last_status = view.status
    next_update: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(anext(updates))
    timeout = FIRST_RESYNC_SECONDS
    try:
        while True:
            done, _ = await asyncio.wait({next_update}, timeout=timeout)
            timeout = RESYNC_SECONDS
            position: int | None = None
            if done:
                position = _position(next_update.result())
                next_update = asyncio.ensure_future(anext(updates))
            current = await _current(info, view.order_id, position)
            if current is not None and current.status != last_status:
                last_status = current.status
                yield to_order(current, await container.freshness.freshness(PROJECTION))
    finally:
        next_update.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await next_update
        await updates.aclose()


async def _current(info: Info, order_id: str, position: int | None) -> OrderView | None:
    container = info.context.container
    if position is not None:
        # The projector publishes after its commit; another process may not have seen it yet.
        with contextlib.suppress(StaleRead):
            await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)
    # Not the request's DataLoader: a subscription's context lives as long as its connection.
    return await loaders.queries(info).get(order_id)


def _position(payload: dict[str, Any]) -> int | None:
    value = payload.get("position")
    return value if isinstance(value, int) and value > 0 else None


# ---------------------------------------------------------------- access and mapping


def can_see(principal: Principal, view: OrderView) -> bool:
    if principal.staff:
        return True
    return view.customer_id is not None and view.customer_id == principal.customer_id


def _listing_owner(principal: Principal, customer_id: str | None) -> str:
    """Whose orders ``orders`` lists: a customer only their own; staff must name the customer."""
    if principal.anonymous and principal.client is None:
        raise unauthenticated()
    if customer_id is not None:
        if principal.staff or customer_id == principal.customer_id:
            return customer_id
        raise forbidden("You may only list your own orders")
    if principal.customer_id is not None:
        return principal.customer_id
    if principal.staff:
        raise bad_user_input("customerId is required for support and admin", argument="customerId")
    raise forbidden("Listing orders requires the customer, support or admin role")


def order_key(value: str) -> str | None:
    """The order id inside ``gid://commerce/Order/<uuid>``; None when malformed (treated as not found)."""
    parsed = parse_global_id(value, "Order")
    if parsed is None:
        return None
    try:
        return str(uuid.UUID(parsed[1]))
    except ValueError:
        return None


async def _wait(info: Info, position: int | None) -> None:
    if position is None:
        return
    container = info.context.container
    await container.freshness.wait_for(PROJECTION, position, container.settings.read_wait_seconds)


def to_order(view: OrderView, freshness: FreshnessModel | None = None) -> Order:
    currency = view.currency
    address = view.shipping_address
    return Order(
        id=strawberry.ID(global_id("Order", view.order_id)),
        number=view.number,
        customer_id=None if view.customer_id is None else strawberry.ID(view.customer_id),
        email=view.email,
        status=OrderStatus(view.status),
        lines=[
            OrderLine(
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_price=Money.of(line.unit_price, currency),
                line_total=Money.of(line.line_total, currency),
            )
            for line in bounded("Order", "lines", view.lines)
        ],
        subtotal=Money.of(view.subtotal, currency),
        total=Money.of(view.total, currency),
        payment=PaymentSummary(
            status=PaymentStatus(view.payment_status),
            amount=Money.of(view.payment_amount, currency),
            provider_reference=view.provider_reference,
        ),
        shipping_address=Address(
            name=address.name,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country_code=address.country_code,
            region=address.region,
        ),
        shipping=Money.of(view.money.shipping, currency),
        discounts=Money.of(view.money.discounts, currency),
        tax=Money.of(view.money.tax, currency),
        tax_lines=[
            TaxLine(rate=t.rate, base=Money.of(t.base, currency), amount=Money.of(t.amount, currency))
            for t in view.money.tax_lines
        ],
        prices_include_tax=view.money.prices_include_tax,
        shipping_method=view.money.shipping_method,
        discount_code=view.money.discount_code,
        history=[
            OrderEvent(type=h.type, at=h.at, position=Position(h.position))
            for h in bounded("Order", "history", view.history)
        ],
        created_at=view.created_at,
        updated_at=view.updated_at,
        known_freshness=freshness,
    )
